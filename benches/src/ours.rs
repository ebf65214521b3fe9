//! peerwire's client: peers on a peer-runtime [`Runtime`], driven by their listeners.
//!
//! This is how an application uses peerwire: it starts a runtime, connects peers, and
//! reacts in [`Listener`] callbacks on the peers' own executor. The work of each phase
//! happens there, with no cross-thread hop per message: a `pong` callback records the
//! round trip and queues the next `ping`; the "written" callback of an inventory message
//! (`on_write`) tops the peer's queue up with another batch once only one batch is left,
//! so the socket, not the bench, sets the pace — as `write_all` does for the baselines. The worker's main thread only starts phases (one "kick" ping
//! per peer, whose pong starts the peer's part) and watches shared counters.
//!
//! Each worker runs one executor, unpinned: the server's executors are pinned one per
//! CPU, and the clients share the machine with them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use std::{io, thread};

use peer_core::{DisconnectReason, Listener, Peer};
use peer_runtime::{PeerHandle, PeerRequest, Runtime};
use wire_codec::message::command;
use wire_codec::message::{InvType, InvVect, Inventory, Ping, Pong};
use wire_codec::{Hash256, Message, Network};

use crate::histogram::Histogram;
use crate::load::{Plan, INV_FRAME_LEN, PING_FRAME_LEN};
use crate::protocol::{Command, Outcome, Report};

/// What the peers are doing.
const IDLE: u8 = 0;
const PING: u8 = 1;
const FLOOD: u8 = 2;

/// Kick pings carry this tag plus the phase generation; other pings carry a per-peer
/// counter below it.
const KICK_TAG: u64 = 0xB00C_0000_0000_0000;

/// State shared by the worker's main thread and every peer's listener.
struct Shared {
    base: Instant,
    /// The phase in progress and its generation (bumped per phase).
    kind: AtomicU8,
    generation: AtomicU64,
    /// Nanoseconds after `base` when the phase's traffic stops.
    deadline_ns: AtomicU64,
    batch: AtomicU64,
    /// Peers that have not finished the phase yet (or connects in flight).
    remaining: AtomicUsize,
    ok: AtomicU64,
    failed: AtomicU64,
    ops: AtomicU64,
    bytes: AtomicU64,
    /// Nanoseconds after `base` of the last completion.
    last_ns: AtomicU64,
    latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            base: Instant::now(),
            kind: AtomicU8::new(IDLE),
            generation: AtomicU64::new(0),
            deadline_ns: AtomicU64::new(0),
            batch: AtomicU64::new(1),
            remaining: AtomicUsize::new(0),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            latency: Mutex::new(Histogram::default()),
            first_error: Mutex::new(None),
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn reset_counters(&self) {
        for c in [
            &self.ok,
            &self.failed,
            &self.ops,
            &self.bytes,
            &self.last_ns,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.latency.lock().unwrap_or_else(PoisonError::into_inner) = Histogram::default();
        *self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn done_one(&self, now: Instant) {
        self.last_ns.fetch_max(self.ns(now), Ordering::Relaxed);
        self.remaining.fetch_sub(1, Ordering::AcqRel);
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(why);
        }
    }

    fn outcome(&self, phase: &str, start: Instant) -> Outcome {
        let last = self.last_ns.load(Ordering::Acquire);
        let end = self.base + Duration::from_nanos(last);
        Outcome {
            phase: phase.into(),
            ok: self.ok.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            ops: self.ops.load(Ordering::Acquire),
            bytes: self.bytes.load(Ordering::Acquire),
            elapsed: end.saturating_duration_since(start),
            latency: self
                .latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// One peer's listener: the bench logic of that peer.
struct BenchPeer {
    shared: Arc<Shared>,
    created: Instant,
    /// Whether the connect phase has counted this peer (handshaken or failed).
    counted: bool,
    /// The generation this peer last finished (or failed).
    finished: u64,
    /// The generation this peer is working on (0: none).
    working: u64,
    expect: u64,
    sent_at: Instant,
    next_nonce: u64,
    /// Inventory messages queued and not yet written.
    in_flight: u64,
    barrier_sent: bool,
    hash_counter: u64,
    hist: Histogram,
}

impl BenchPeer {
    fn new(shared: Arc<Shared>, nonce_base: u64) -> BenchPeer {
        let now = Instant::now();
        BenchPeer {
            shared,
            created: now,
            counted: false,
            finished: 0,
            working: 0,
            expect: 0,
            sent_at: now,
            next_nonce: nonce_base & !KICK_TAG,
            in_flight: 0,
            barrier_sent: false,
            hash_counter: nonce_base,
            hist: Histogram::default(),
        }
    }

    fn send_ping(&mut self, peer: &mut Peer, now: Instant) {
        self.next_nonce = (self.next_nonce + 1) & !KICK_TAG;
        self.expect = self.next_nonce;
        self.sent_at = now;
        peer.queue_message(Message::Ping(Ping { nonce: self.expect }), None);
    }

    fn send_batch(&mut self, peer: &mut Peer) {
        let n = self.shared.batch.load(Ordering::Relaxed).max(1);
        for _ in 0..n {
            self.hash_counter = self.hash_counter.wrapping_add(1);
            let mut h = [0x11u8; 32];
            h[..8].copy_from_slice(&self.hash_counter.to_le_bytes());
            let inv = Inventory::new(vec![InvVect {
                kind: InvType::TX,
                hash: Hash256(h),
            }]);
            peer.queue_message(Message::Inv(inv), None);
        }
        self.in_flight += n;
        self.shared.ops.fetch_add(n, Ordering::Relaxed);
        self.shared
            .bytes
            .fetch_add(n * INV_FRAME_LEN, Ordering::Relaxed);
    }

    fn past_deadline(&self, now: Instant) -> bool {
        self.shared.ns(now) >= self.shared.deadline_ns.load(Ordering::Acquire)
    }

    fn finish(&mut self, now: Instant) {
        if self.working == 0 {
            return;
        }
        self.shared
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(&self.hist);
        self.hist = Histogram::default();
        self.finished = self.working;
        self.working = 0;
        self.shared.ok.fetch_add(1, Ordering::Relaxed);
        self.shared.done_one(now);
    }
}

impl Listener for BenchPeer {
    fn on_handshake_complete(&mut self, _peer: &mut Peer, _version: u32) {
        if self.counted {
            return;
        }
        self.counted = true;
        let now = Instant::now();
        let us = u64::try_from((now - self.created).as_micros()).unwrap_or(u64::MAX);
        self.shared
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(us);
        self.shared.ok.fetch_add(1, Ordering::Relaxed);
        self.shared.ops.fetch_add(1, Ordering::Relaxed);
        self.shared.done_one(now);
    }

    fn on_pong(&mut self, peer: &mut Peer, msg: Pong) {
        let now = Instant::now();
        let generation = self.shared.generation.load(Ordering::Acquire);
        if msg.nonce == KICK_TAG | generation && self.working == 0 && self.finished < generation {
            // The kick: this peer's part of the phase starts.
            self.working = generation;
            self.barrier_sent = false;
            self.in_flight = 0;
            match self.shared.kind.load(Ordering::Acquire) {
                PING => self.send_ping(peer, now),
                FLOOD => {
                    self.send_batch(peer);
                    self.send_batch(peer);
                }
                _ => self.finish(now),
            }
            return;
        }
        if self.working == 0 || msg.nonce != self.expect {
            return;
        }
        let us = u64::try_from((now - self.sent_at).as_micros()).unwrap_or(u64::MAX);
        self.hist.record(us);
        match self.shared.kind.load(Ordering::Acquire) {
            PING => {
                self.shared.ops.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .bytes
                    .fetch_add(PING_FRAME_LEN, Ordering::Relaxed);
                if self.past_deadline(now) {
                    self.finish(now);
                } else {
                    self.send_ping(peer, now);
                }
            }
            // The flood's barrier came back: everything before it was consumed.
            _ => self.finish(now),
        }
    }

    fn on_write(&mut self, peer: &mut Peer, _bytes: usize, msg: &Message) {
        if msg.command() != command::INV
            || self.working == 0
            || self.barrier_sent
            || self.shared.kind.load(Ordering::Acquire) != FLOOD
        {
            return;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        let batch = self.shared.batch.load(Ordering::Relaxed).max(1);
        if self.in_flight > batch {
            return;
        }
        let now = Instant::now();
        if !self.past_deadline(now) {
            self.send_batch(peer);
        } else {
            // Queued behind every inventory message still waiting: its pong proves the
            // server consumed them all.
            self.barrier_sent = true;
            self.send_ping(peer, now);
        }
    }

    fn on_disconnect(&mut self, _peer: &mut Peer, reason: &DisconnectReason) {
        let now = Instant::now();
        if !self.counted {
            // Failed before the handshake completed: the connect phase counts it.
            self.counted = true;
            self.shared.fail(format!("before handshake: {reason}"));
            self.shared.done_one(now);
            return;
        }
        if self.working != 0 {
            self.working = 0;
            self.shared.fail(format!("during a phase: {reason}"));
            self.shared.done_one(now);
        }
    }
}

impl Drop for BenchPeer {
    fn drop(&mut self) {
        // A connect that failed before a peer existed drops the listener unused.
        if !self.counted {
            self.shared.fail("connect failed".into());
            self.shared.done_one(Instant::now());
        }
    }
}

const TICK: Duration = Duration::from_millis(5);
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Runs a worker of our peers: one runtime with one executor, phases on command.
pub fn run_worker(
    plan: Plan,
    commands: Receiver<Command>,
    emit: impl Fn(Report),
) -> io::Result<()> {
    let mut limits = peer_runtime::Limits::default();
    limits.connect_timeout = Duration::from_secs(30);
    let rt = Runtime::builder(Network::Regtest)
        .configure(|c| {
            c.user_agent_name = "peer-bench".into();
            c.user_agent_version = env!("CARGO_PKG_VERSION").into();
            // The flood is paced by per-message write events (on_write).
            c.report_io = true;
        })
        .executors(1)
        .pin(false)
        .limits(limits)
        .thread_name("peer-bench")
        .start()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let shared = Arc::new(Shared::new());
    let mut handles: Vec<PeerHandle> = Vec::new();
    emit(Report::Ready);
    loop {
        let cmd = match commands.recv() {
            Ok(c) => c,
            Err(_) => Command::Close,
        };
        let start = Instant::now();
        shared.reset_counters();
        match cmd {
            Command::Connect => {
                connect_all(&rt, &plan, &shared, &mut handles, &emit);
            }
            Command::Ping { duration } | Command::Flood { duration, .. } => {
                let (kind, batch) = match cmd {
                    Command::Flood { batch, .. } => (FLOOD, u64::from(batch)),
                    _ => (PING, 1),
                };
                let live: Vec<&PeerHandle> = handles.iter().filter(|h| h.connected()).collect();
                shared.kind.store(kind, Ordering::Release);
                shared.batch.store(batch, Ordering::Release);
                shared
                    .deadline_ns
                    .store(shared.ns(start + duration), Ordering::Release);
                shared.remaining.store(live.len(), Ordering::Release);
                let generation = shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
                for h in &live {
                    h.queue_message_detached(Message::Ping(Ping {
                        nonce: KICK_TAG | generation,
                    }));
                }
                let limit = start + duration + Duration::from_secs(30);
                wait(&shared, &emit, limit);
                let stuck = shared.remaining.swap(0, Ordering::AcqRel);
                if stuck > 0 {
                    shared.failed.fetch_add(stuck as u64, Ordering::Relaxed);
                }
                shared.kind.store(IDLE, Ordering::Release);
            }
            Command::Hold { duration } => {
                let until = start + duration;
                while Instant::now() < until {
                    thread::sleep(
                        PROGRESS_EVERY.min(until.saturating_duration_since(Instant::now())),
                    );
                    emit(Report::Progress(start.elapsed().as_millis() as u64));
                }
                let live = handles.iter().filter(|h| h.connected()).count() as u64;
                shared.ok.store(live, Ordering::Relaxed);
                shared
                    .failed
                    .store(handles.len() as u64 - live, Ordering::Relaxed);
                shared
                    .last_ns
                    .store(shared.ns(Instant::now()), Ordering::Relaxed);
            }
            Command::Close => {
                let live = handles.iter().filter(|h| h.connected()).count() as u64;
                drop(handles);
                rt.shutdown();
                shared.ok.store(live, Ordering::Relaxed);
                shared
                    .last_ns
                    .store(shared.ns(Instant::now()), Ordering::Relaxed);
                emit(Report::Done(shared.outcome(cmd.name(), start)));
                return Ok(());
            }
        }
        emit(Report::Done(shared.outcome(cmd.name(), start)));
    }
}

/// Opens `plan.count` peers with at most `plan.window` handshakes in flight.
fn connect_all(
    rt: &Runtime,
    plan: &Plan,
    shared: &Arc<Shared>,
    handles: &mut Vec<PeerHandle>,
    emit: &impl Fn(Report),
) {
    let window = plan.window.max(1);
    let mut requests: Vec<PeerRequest> = Vec::with_capacity(plan.count);
    let mut issued = 0usize;
    let mut last_progress = Instant::now();
    shared.remaining.store(0, Ordering::Release);
    while issued < plan.count && !plan.targets.is_empty() {
        while issued < plan.count && shared.remaining.load(Ordering::Acquire) < window {
            shared.remaining.fetch_add(1, Ordering::AcqRel);
            let target = plan.targets[issued % plan.targets.len()];
            let nonce_base = plan.nonce_base.wrapping_add((issued as u64) << 24);
            let listener = BenchPeer::new(shared.clone(), nonce_base);
            let listener = Box::new(listener);
            requests.push(match plan.source {
                None => rt.connect_with(target, listener),
                Some(ip) => rt.connect_from_with(target, SocketAddr::new(ip, 0), listener),
            });
            issued += 1;
        }
        thread::sleep(Duration::from_micros(500));
        if last_progress.elapsed() >= PROGRESS_EVERY {
            emit(Report::Progress(
                shared.ok.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed),
            ));
            last_progress = Instant::now();
        }
    }
    // Connects still in flight: at most the connect timeout plus the handshake's.
    wait(shared, emit, Instant::now() + Duration::from_secs(90));
    for r in requests {
        match r.wait_timeout(Duration::from_secs(5)) {
            Ok(Ok(h)) => {
                if h.handshake_complete() {
                    handles.push(h);
                }
            }
            Ok(Err(e)) => {
                let mut first = shared
                    .first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
            Err(_) => {}
        }
    }
}

/// Waits until every peer finished its part of the phase, or `limit`.
fn wait(shared: &Shared, emit: &impl Fn(Report), limit: Instant) {
    let mut last_progress = Instant::now();
    while shared.remaining.load(Ordering::Acquire) > 0 && Instant::now() < limit {
        thread::sleep(TICK);
        if last_progress.elapsed() >= PROGRESS_EVERY {
            emit(Report::Progress(shared.ops.load(Ordering::Relaxed)));
            last_progress = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kick_nonces_never_collide_with_ping_nonces() {
        let shared = Arc::new(Shared::new());
        let mut p = BenchPeer::new(shared, u64::MAX);
        for _ in 0..1000 {
            p.next_nonce = (p.next_nonce + 1) & !KICK_TAG;
            assert_ne!(p.next_nonce & KICK_TAG, KICK_TAG);
        }
        // A listener dropped before any callback counts as one failed connect.
        let shared = Arc::new(Shared::new());
        shared.remaining.store(1, Ordering::Relaxed);
        drop(BenchPeer::new(shared.clone(), 0));
        assert_eq!(shared.failed.load(Ordering::Relaxed), 1);
        assert_eq!(shared.remaining.load(Ordering::Relaxed), 0);
    }
}
