//! Runtime-wide counters: one set per executor (so executors never share a cache line
//! while counting), summed when somebody asks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters of one executor. Written by that executor only; read from anywhere.
#[derive(Debug, Default)]
pub(crate) struct CoreCounters {
    /// Peers whose task runs on this executor (also the per-core limit's count).
    pub(crate) peers: Arc<AtomicUsize>,
    pub(crate) inbound: AtomicUsize,
    pub(crate) handshaken: AtomicUsize,
    pub(crate) handshakes: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) accept_backoffs: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) disconnects: AtomicU64,
}

/// Adds `n` to a counter only this executor writes: a load and a store, not a locked
/// read-modify-write. `fetch_add` is a `lock xadd` on x86 (about 20 cycles, where a
/// load and a store take a few), and a ping round trip bumps four counters. The
/// callers reach the counters through their executor's `CoreLocal`, which never leaves
/// its thread, so no two bumps of one counter race and none is lost; readers on other
/// threads see whole values, as before.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Totals over all executors of a runtime, at one instant (each counter is read once;
/// counters of different executors are not read atomically together).
///
/// ```
/// let s = peer_runtime::RuntimeStats::default();
/// assert_eq!(s.peers, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Peers connected right now (handshaken or not).
    pub peers: usize,
    /// Of those, inbound.
    pub inbound: usize,
    /// Of those, handshake complete.
    pub handshaken: usize,
    /// Handshakes completed since start.
    pub handshakes: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Accepted connections closed at once because a limit was reached.
    pub refused: u64,
    /// `accept` errors since start (descriptor exhaustion included).
    pub accept_errors: u64,
    /// Times an acceptor slept because descriptors or memory ran out.
    pub accept_backoffs: u64,
    /// Outbound connects that failed.
    pub connect_failures: u64,
    /// Messages received: every frame read when `Config::report_io` is on (the
    /// default), else the messages handed to listeners.
    pub messages_in: u64,
    /// Messages written; counted only when `Config::report_io` is on (peer-core reports
    /// writes through those events).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Peers ended since start.
    pub disconnects: u64,
    /// Memory all peers hold right now: output and read buffers (whole allocations),
    /// messages waiting in the runtime or kept for the write report, undelivered
    /// events (`peer_core::Peer::memory_held`): what
    /// [`Limits::memory_budget`](crate::Limits::memory_budget) bounds.
    pub memory: usize,
}

impl RuntimeStats {
    pub(crate) fn sum<'a>(cores: impl IntoIterator<Item = &'a CoreCounters>) -> RuntimeStats {
        let mut s = RuntimeStats::default();
        for c in cores {
            s.peers += c.peers.load(Ordering::Relaxed);
            s.inbound += c.inbound.load(Ordering::Relaxed);
            s.handshaken += c.handshaken.load(Ordering::Relaxed);
            s.handshakes += c.handshakes.load(Ordering::Relaxed);
            s.accepted += c.accepted.load(Ordering::Relaxed);
            s.refused += c.refused.load(Ordering::Relaxed);
            s.accept_errors += c.accept_errors.load(Ordering::Relaxed);
            s.accept_backoffs += c.accept_backoffs.load(Ordering::Relaxed);
            s.connect_failures += c.connect_failures.load(Ordering::Relaxed);
            s.messages_in += c.messages_in.load(Ordering::Relaxed);
            s.messages_out += c.messages_out.load(Ordering::Relaxed);
            s.bytes_in += c.bytes_in.load(Ordering::Relaxed);
            s.bytes_out += c.bytes_out.load(Ordering::Relaxed);
            s.disconnects += c.disconnects.load(Ordering::Relaxed);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_cores() {
        let a = CoreCounters::default();
        let b = CoreCounters::default();
        a.peers.store(3, Ordering::Relaxed);
        b.peers.store(4, Ordering::Relaxed);
        bump(&a.bytes_in, 10);
        bump(&b.bytes_in, 5);
        bump(&b.handshakes, 2);
        let s = RuntimeStats::sum([&a, &b]);
        assert_eq!(s.peers, 7);
        assert_eq!(s.bytes_in, 15);
        assert_eq!(s.handshakes, 2);
    }
}
