//! Connection limits: peers in all, peers per executor, inbound peers per IP address.
//!
//! A seed server facing the internet must not let one address take every slot, and a
//! process must keep descriptors for its listeners and files: these limits are checked
//! before a peer task is started, and the slot a peer holds is given back when its task
//! ends (an admission guard), so the counts cannot drift.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::netgroup::Netgroup;

/// Descriptors kept free for listeners, io_uring rings, event fds and files when the
/// default peer limit is derived from the process's descriptor limit.
pub const RESERVED_FDS: usize = 256;

/// The limits a runtime enforces. Build with [`Limits::default`] and adjust fields.
///
/// ```
/// use peer_runtime::Limits;
/// let mut limits = Limits::default();
/// limits.max_inbound_per_ip = 8;
/// assert!(limits.max_peers > 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Peers (inbound + outbound) in the whole runtime. Default: the process's open-file
    /// limit minus [`RESERVED_FDS`] (each peer is one descriptor), or 1,000 when the
    /// limit cannot be read.
    pub max_peers: usize,
    /// Peers on one executor. Default: no limit beyond `max_peers`.
    pub max_peers_per_core: usize,
    /// Inbound peers from one IP address. Default: no limit (the network-group limit
    /// applies); set it on public listeners that want more.
    pub max_inbound_per_ip: usize,
    /// Inbound peers from one network group ([`Netgroup`]: /16 for IPv4, /32 for
    /// IPv6, all local addresses one group, all other unroutable ones one group, as
    /// Bitcoin Core groups them). Default: an eighth of `max_peers` (at least 1), so
    /// one operator cannot take every slot; when all slots are taken, a peer from
    /// another group gets in by evicting one (Core's `AttemptToEvictConnection`, see
    /// [`Limits::evict_when_full`]). Loopback load tests raise it (or set
    /// [`Limits::local_netgroups_by_address`]).
    pub max_inbound_per_netgroup: usize,
    /// Give each local (loopback) address its own network group instead of Core's
    /// one group for all: for tests whose 127.x source addresses stand for hosts.
    pub local_netgroups_by_address: bool,
    /// When every slot is taken, admit an inbound peer by evicting another inbound one
    /// (protected: network-group diversity, lowest ping, recently useful, longest
    /// connected; evicted: the youngest of the most represented group), which ends
    /// with [`DisconnectReason::Evicted`](peer_core::DisconnectReason::Evicted).
    /// Default: on.
    pub evict_when_full: bool,
    /// How long an acceptor sleeps after `accept` failed for lack of descriptors
    /// (EMFILE/ENFILE) or memory, before it tries again.
    pub accept_backoff: Duration,
    /// How long an outbound connect may take.
    pub connect_timeout: Duration,
    /// Backpressure (Bitcoin Core's `fPauseSend`, `-maxsendbuffer`, default 1,000,000
    /// bytes): while a peer has at least this many encoded bytes waiting to be written,
    /// its input is neither read nor processed, and messages queued through its
    /// [`PeerHandle`](crate::PeerHandle) wait in the runtime instead of being encoded.
    /// Reading resumes by itself once the remote has read enough. A peer that never
    /// reads therefore holds at most this much plus one message.
    pub send_pause_bytes: usize,
    /// A peer whose output made no progress at all (not one byte written) for this long
    /// is disconnected with
    /// [`DisconnectReason::SendStalled`](peer_core::DisconnectReason::SendStalled)
    /// (Core's 20-minute send timeout, `TIMEOUT_INTERVAL`).
    pub send_progress_timeout: Duration,
    /// Hard cap on bytes queued for one peer through its handles and not yet written
    /// (waiting in the runtime plus encoded). Applications pace themselves with
    /// [`PeerHandle::wait_for_room`](crate::PeerHandle::wait_for_room) and never reach
    /// it; one that queues past it without waiting has the peer disconnected with
    /// [`DisconnectReason::OutputQueueFull`](peer_core::DisconnectReason::OutputQueueFull)
    /// and the rest of its messages answered `Failed`. It exists for memory safety only.
    /// Default 128 MiB (16 blocks of 4 MB fit twice).
    pub max_queued_bytes_per_peer: usize,
    /// Process-wide budget for what peers hold: their output buffers and read
    /// buffers (whole allocations), messages waiting in the runtime or kept for the
    /// write report, and undelivered events. Once the runtime holds more than half of
    /// it, a peer that would pass its fair share (half the budget / peers) with one
    /// more answer like its last stops reading and processing input (reading one frame
    /// at a time until then), resuming by itself when the total is back under half.
    /// Peers that grew before that keep what they hold, so the total stays within the
    /// budget (messages queued through handles are paced by `send_pause_bytes` only,
    /// and can pass it). While the total is over the budget itself, acceptors close
    /// new connections at once (counted in `refused`). Default:
    /// [`default_memory_budget`] of the default `max_peers` (recompute it if you
    /// change `max_peers` a lot).
    pub memory_budget: usize,
    /// How often each executor re-sums the memory of all executors against
    /// [`Limits::memory_budget`].
    pub budget_check_interval: Duration,
}

/// Core's default send buffer bound (`DEFAULT_MAXSENDBUFFER`, 1,000 kB).
pub const DEFAULT_SEND_PAUSE_BYTES: usize = 1_000_000;

/// What one idle connected peer costs in memory, rounded up (measured 4.2 KB per peer
/// in a release build with 10,000 idle peers: the driver, peer-core's state, the task).
pub const IDLE_PEER_BYTES: usize = 4 * 1024;

/// The smallest default budget: room for 16 blocks of 4 MB in flight, so a server
/// with few peers is never throttled by it while serving blocks.
pub const MIN_MEMORY_BUDGET: usize = 64 << 20;

/// The default [`Limits::memory_budget`] for `max_peers` peers: what that many idle
/// peers cost ([`IDLE_PEER_BYTES`] each), at least [`MIN_MEMORY_BUDGET`].
///
/// Why: the issue's goal is that peers that never read at most double a server's
/// memory. The runtime reacts at half the budget and keeps the total within it, so
/// a server full of never-readers holds about its idle memory again (measured in a
/// release build: 10,000 never-readers on a 19,744-peer default, 1.65–1.74× the idle
/// RSS; RELIABILITY.md). A fixed budget cannot do that for every peer count: 1 GiB let
/// the same 10,000 take 21× the idle RSS, and too small a one throttles a small server
/// sending blocks.
///
/// ```
/// use peer_runtime::limits::{default_memory_budget, MIN_MEMORY_BUDGET};
/// assert_eq!(default_memory_budget(125), MIN_MEMORY_BUDGET);
/// assert_eq!(default_memory_budget(100_000), 100_000 * 4096);
/// ```
pub fn default_memory_budget(max_peers: usize) -> usize {
    max_peers
        .saturating_mul(IDLE_PEER_BYTES)
        .max(MIN_MEMORY_BUDGET)
}

/// Core's send timeout (`TIMEOUT_INTERVAL`, 20 minutes).
pub const DEFAULT_SEND_PROGRESS_TIMEOUT: Duration = Duration::from_secs(20 * 60);

impl Default for Limits {
    fn default() -> Limits {
        let max_peers = open_file_limit()
            .map(|n| n.saturating_sub(RESERVED_FDS).max(1))
            .unwrap_or(1_000);
        Limits {
            max_peers,
            max_peers_per_core: usize::MAX,
            max_inbound_per_ip: usize::MAX,
            max_inbound_per_netgroup: (max_peers / 8).max(1),
            local_netgroups_by_address: false,
            evict_when_full: true,
            accept_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(10),
            send_pause_bytes: DEFAULT_SEND_PAUSE_BYTES,
            send_progress_timeout: DEFAULT_SEND_PROGRESS_TIMEOUT,
            max_queued_bytes_per_peer: 128 << 20,
            memory_budget: default_memory_budget(max_peers),
            budget_check_interval: Duration::from_millis(100),
        }
    }
}

/// The soft limit on open files of this process, read from `/proc/self/limits` (std has
/// no `getrlimit`). `None` when it cannot be read or is unlimited.
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(text: &str) -> Option<usize> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Why a connection was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    Core,
    PerIp,
    PerNetgroup,
}

/// Inbound peers held, per address and per network group.
#[derive(Debug, Default)]
struct Inbound {
    per_ip: HashMap<IpAddr, usize>,
    per_group: HashMap<Netgroup, usize>,
}

/// Counters shared by all executors of one runtime.
#[derive(Debug)]
pub(crate) struct Gate {
    limits: Limits,
    total: AtomicUsize,
    inbound: Mutex<Inbound>,
}

impl Gate {
    pub(crate) fn new(limits: Limits) -> Gate {
        Gate {
            limits,
            total: AtomicUsize::new(0),
            inbound: Mutex::new(Inbound::default()),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Peers holding a slot right now.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a slot for a peer on an executor that currently has `core_peers` peers
    /// (`core_count` is that executor's counter). `inbound_ip` is checked against the
    /// per-IP limit for inbound peers.
    pub(crate) fn admit(
        self: &Arc<Self>,
        core_count: &Arc<AtomicUsize>,
        inbound_ip: Option<IpAddr>,
    ) -> Result<Admission, Refusal> {
        self.admit_over(core_count, inbound_ip, 0)
    }

    /// The network group of `ip` under these limits.
    pub(crate) fn netgroup(&self, ip: IpAddr) -> Netgroup {
        Netgroup::of(ip, self.limits.local_netgroups_by_address)
    }

    /// [`Gate::admit`], allowing `over` peers beyond `max_peers`: a peer admitted
    /// because another was just evicted (whose slot comes back when its task ends).
    pub(crate) fn admit_over(
        self: &Arc<Self>,
        core_count: &Arc<AtomicUsize>,
        inbound_ip: Option<IpAddr>,
        over: usize,
    ) -> Result<Admission, Refusal> {
        let max = self.limits.max_peers.saturating_add(over);
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Refusal::Total)?;
        let max_core = self.limits.max_peers_per_core;
        if core_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_core).then_some(n + 1)
            })
            .is_err()
        {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Core);
        }
        let mut group = None;
        if let Some(ip) = inbound_ip {
            let g = self.netgroup(ip);
            let mut inb = self.inbound.lock().unwrap_or_else(PoisonError::into_inner);
            let by_ip = inb.per_ip.get(&ip).copied().unwrap_or(0);
            let by_group = inb.per_group.get(&g).copied().unwrap_or(0);
            let refusal = if by_ip >= self.limits.max_inbound_per_ip {
                Some(Refusal::PerIp)
            } else if by_group >= self.limits.max_inbound_per_netgroup {
                Some(Refusal::PerNetgroup)
            } else {
                None
            };
            if let Some(r) = refusal {
                drop(inb);
                core_count.fetch_sub(1, Ordering::AcqRel);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(r);
            }
            *inb.per_ip.entry(ip).or_insert(0) += 1;
            *inb.per_group.entry(g).or_insert(0) += 1;
            group = Some(g);
        }
        Ok(Admission {
            gate: self.clone(),
            core_count: core_count.clone(),
            ip: inbound_ip,
            group,
        })
    }

    /// Inbound peers from `ip` holding a slot.
    #[cfg(test)]
    pub(crate) fn inbound_from(&self, ip: IpAddr) -> usize {
        self.inbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_ip
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }
}

/// One peer's slot; given back when dropped (when the peer's task ends).
#[derive(Debug)]
pub(crate) struct Admission {
    gate: Arc<Gate>,
    core_count: Arc<AtomicUsize>,
    ip: Option<IpAddr>,
    group: Option<Netgroup>,
}

impl Admission {
    /// The inbound peer's network group (`None` for outbound peers).
    pub(crate) fn netgroup(&self) -> Option<Netgroup> {
        self.group
    }
}

/// Takes one from a count, removing the entry at zero.
fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = map.get_mut(k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(k);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut inb = self
                .gate
                .inbound
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            release(&mut inb.per_ip, &ip);
            if let Some(g) = self.group {
                release(&mut inb.per_group, &g);
            }
        }
        self.core_count.fetch_sub(1, Ordering::AcqRel);
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn gate(total: usize, core: usize, ip: usize) -> Arc<Gate> {
        Arc::new(Gate::new(Limits {
            max_peers: total,
            max_peers_per_core: core,
            max_inbound_per_ip: ip,
            max_inbound_per_netgroup: usize::MAX,
            ..Limits::default()
        }))
    }

    #[test]
    fn parses_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            20000                20000                files     \n";
        assert_eq!(parse_open_file_limit(text), Some(20_000));
        assert_eq!(
            parse_open_file_limit("Max open files  unlimited unlimited files"),
            None
        );
    }

    #[test]
    fn total_limit_refuses_and_frees() {
        let g = gate(2, usize::MAX, usize::MAX);
        let core = Arc::new(AtomicUsize::new(0));
        let a = g.admit(&core, None).unwrap();
        let _b = g.admit(&core, None).unwrap();
        assert_eq!(g.admit(&core, None).unwrap_err(), Refusal::Total);
        drop(a);
        assert!(g.admit(&core, None).is_ok());
    }

    #[test]
    fn per_core_limit() {
        let g = gate(10, 1, usize::MAX);
        let c0 = Arc::new(AtomicUsize::new(0));
        let c1 = Arc::new(AtomicUsize::new(0));
        let _a = g.admit(&c0, None).unwrap();
        assert_eq!(g.admit(&c0, None).unwrap_err(), Refusal::Core);
        assert_eq!(g.total(), 1, "a refused peer must not keep a slot");
        assert!(g.admit(&c1, None).is_ok());
    }

    #[test]
    fn per_ip_limit_counts_only_inbound() {
        let g = gate(10, 10, 1);
        let core = Arc::new(AtomicUsize::new(0));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = g.admit(&core, Some(ip)).unwrap();
        assert_eq!(g.admit(&core, Some(ip)).unwrap_err(), Refusal::PerIp);
        assert!(
            g.admit(&core, None).is_ok(),
            "outbound is not per-IP limited"
        );
        drop(a);
        assert_eq!(g.inbound_from(ip), 0);
        assert!(g.admit(&core, Some(ip)).is_ok());
    }

    proptest! {
        /// Whatever the order of admissions and releases, the counters equal the
        /// admissions still held and never exceed the limits.
        #[test]
        fn counters_match_held_slots(ops in proptest::collection::vec((0u8..3, 0u8..4, any::<bool>()), 0..200)) {
            let g = gate(12, 5, 3);
            let cores: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
            let mut held: Vec<(usize, Option<IpAddr>, Admission)> = Vec::new();
            for (core, ip, release) in ops {
                if release && !held.is_empty() {
                    held.swap_remove(usize::from(ip) % held.len());
                } else {
                    let ip = (ip < 3).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, ip + 1)));
                    if let Ok(a) = g.admit(&cores[usize::from(core)], ip) {
                        held.push((usize::from(core), ip, a));
                    }
                }
                prop_assert_eq!(g.total(), held.len());
                prop_assert!(g.total() <= 12);
                for (i, c) in cores.iter().enumerate() {
                    let n = held.iter().filter(|h| h.0 == i).count();
                    prop_assert_eq!(c.load(Ordering::SeqCst), n);
                    prop_assert!(n <= 5);
                }
                for k in 1..=3u8 {
                    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, k));
                    let n = held.iter().filter(|h| h.1 == Some(ip)).count();
                    prop_assert_eq!(g.inbound_from(ip), n);
                    prop_assert!(n <= 3);
                }
            }
        }
    }
}
