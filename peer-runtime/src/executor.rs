//! The executor-local state ([`CoreLocal`]), read by every peer task of one executor:
//! its scratch read buffer, its running tasks, its shutdown signal and the memory
//! budget (checked by [`budget_loop`]). It knows nothing of the tasks themselves, so
//! the per-peer driver can use it without an import circle.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use glommio::timer::Timer;
use tracing::warn;

use crate::counters::CoreCounters;
use crate::error::Error;
use crate::limits::Refusal;
use crate::shared::{CoreShared, RuntimeShared};

/// Size of the per-executor scratch buffer sockets are read into.
pub(crate) const SCRATCH_LEN: usize = 64 * 1024;

/// The executor-local state (lives on the executor thread only).
pub(crate) struct CoreLocal {
    pub(crate) index: usize,
    pub(crate) rt: Arc<RuntimeShared>,
    pub(crate) me: Arc<CoreShared>,
    pub(crate) counters: Arc<CoreCounters>,
    /// Sockets are read into this, then only incomplete frames are copied to peers.
    pub(crate) scratch: RefCell<Box<[u8]>>,
    /// Peer and connect tasks still running.
    tasks: Cell<usize>,
    tasks_done: RefCell<Option<Waker>>,
    pub(crate) stopping: Cell<bool>,
    /// Tasks waiting in [`CoreLocal::stopped`], by waiter key. A waiter removes its
    /// entry when it is dropped: a connect that finishes first must not leave its
    /// waker behind (a waker keeps its whole task allocated).
    stop_wakers: RefCell<HashMap<u64, Waker>>,
    next_stop_waiter: Cell<u64>,
    /// The budget state as of the last check (see [`budget_loop`]).
    pub(crate) budget: BudgetState,
    /// This executor's share of half of `Limits::memory_budget` (the pressure mark).
    core_budget: usize,
}

/// What the last memory-budget check found, read by every peer of the executor.
#[derive(Default)]
pub(crate) struct BudgetState {
    /// The runtime holds more than half of `Limits::memory_budget`: peers pause by
    /// their share (see [`CoreLocal::pressed`]).
    pub(crate) pressed: Cell<bool>,
    /// The runtime holds more than `Limits::memory_budget` itself: the acceptors refuse
    /// (a new peer would only add to it). Refusing from half on instead would let a few
    /// thousand never-readers shut the door for as long as they stay.
    pub(crate) over: Cell<bool>,
    /// Peers paused by the budget, woken at the next check.
    pub(crate) waiters: RefCell<Vec<Waker>>,
    /// Incremented at every check; a paused peer registers once per check.
    pub(crate) epoch: Cell<u64>,
}

impl CoreLocal {
    /// Memory pressure: the last check found the runtime over half of
    /// `Limits::memory_budget`, or this executor alone holds more than its share of
    /// that half (seen at once, without waiting for the check). Two loads and a
    /// compare: asked at every pass.
    ///
    /// Why half: peers that grew before the pressure was seen keep what they hold
    /// (up to the pause mark each), and every other peer may still grow to its fair
    /// share; reacting at half and sharing the other half keeps the sum within the
    /// budget (reacting at the budget itself let 10,000 never-readers hold twice it).
    #[inline]
    pub(crate) fn pressed(&self) -> bool {
        self.budget.pressed.get() || self.me.memory.load(Ordering::Relaxed) > self.core_budget
    }

    /// A peer's fair share of the budget: half of it / peers connected.
    pub(crate) fn fair_share(&self) -> usize {
        self.rt.gate.limits().memory_budget / 2 / self.rt.gate.total().max(1)
    }

    /// Whether a peer that would hold `held` bytes (what it holds, plus what its next
    /// message may add) is over its share of an exceeded budget.
    #[inline]
    pub(crate) fn over_budget(&self, held: usize) -> bool {
        self.pressed() && held > self.fair_share()
    }

    /// Whether a peer that would hold `held` bytes must stop reading and processing
    /// now ([`CoreLocal::over_budget`]), and if so registers its waker for the budget
    /// check that finds the runtime back under the budget (once per check).
    pub(crate) fn budget_pause(&self, held: usize, registered: &mut u64, cx: &Context<'_>) -> bool {
        if !self.over_budget(held) {
            return false;
        }
        let b = &self.budget;
        if *registered != b.epoch.get() {
            *registered = b.epoch.get();
            b.waiters.borrow_mut().push(cx.waker().clone());
        }
        true
    }
}

/// Every `Limits::budget_check_interval`, sums the memory of all executors and decides
/// who pauses: while over half the budget, peers that would pass their fair share stop
/// reading (woken once it is back under half); while over the whole budget, the
/// acceptor refuses.
pub(crate) async fn budget_loop(core: Rc<CoreLocal>) {
    let limits = core.rt.gate.limits();
    let (budget, every) = (limits.memory_budget, limits.budget_check_interval);
    loop {
        Timer::new(every).await;
        let used = core.rt.memory_in_use();
        let pressed = used > budget / 2;
        let over = used > budget;
        let b = &core.budget;
        if over && !b.over.get() {
            warn!(
                used,
                budget, "memory budget reached: refusing new connections"
            );
        }
        b.pressed.set(pressed);
        b.over.set(over);
        // Paused peers look again only once the runtime is back under half the budget
        // (waking them all at every check while over would be a wake-up storm).
        if !pressed && !b.waiters.borrow().is_empty() {
            b.epoch.set(b.epoch.get().wrapping_add(1));
            let waiters = std::mem::take(&mut *b.waiters.borrow_mut());
            for w in waiters {
                w.wake();
            }
        }
    }
}

impl CoreLocal {
    pub(crate) fn new(rt: Arc<RuntimeShared>, me: Arc<CoreShared>) -> CoreLocal {
        CoreLocal {
            index: me.index,
            counters: me.counters.clone(),
            rt,
            me,
            scratch: RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice()),
            tasks: Cell::new(0),
            tasks_done: RefCell::new(None),
            stopping: Cell::new(false),
            stop_wakers: RefCell::new(HashMap::new()),
            next_stop_waiter: Cell::new(0),
            budget: BudgetState::default(),
            core_budget: 0,
        }
        .with_core_budget()
    }

    fn with_core_budget(mut self) -> CoreLocal {
        self.core_budget = self.rt.gate.limits().memory_budget / 2 / self.rt.cores.len().max(1);
        self
    }

    pub(crate) fn unregister(&self, id: u64) {
        let mut peers = self.me.peers();
        peers.remove(&id);
        shrink_when_sparse(&mut peers);
    }

    pub(crate) fn task_started(&self) {
        self.tasks.set(self.tasks.get() + 1);
    }

    pub(crate) fn task_ended(&self) {
        let n = self.tasks.get().saturating_sub(1);
        self.tasks.set(n);
        if n == 0 {
            if let Some(w) = self.tasks_done.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub(crate) async fn all_tasks_ended(&self) {
        poll_fn(|cx| {
            if self.tasks.get() == 0 {
                Poll::Ready(())
            } else {
                *self.tasks_done.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    pub(crate) fn stop(&self) {
        self.stopping.set(true);
        let waiters = std::mem::take(&mut *self.stop_wakers.borrow_mut());
        for w in waiters.into_values() {
            w.wake();
        }
    }

    /// Resolves when the executor begins shutting down.
    pub(crate) fn stopped(&self) -> Stopped<'_> {
        Stopped {
            core: self,
            key: None,
        }
    }

    pub(crate) fn refusal_error(&self, refusal: Refusal, remote: SocketAddr) -> Error {
        let limits = self.rt.gate.limits();
        match refusal {
            Refusal::Total => Error::TooManyPeers {
                max: limits.max_peers,
            },
            Refusal::Core => Error::TooManyPeersOnCore {
                executor: self.index,
                max: limits.max_peers_per_core,
            },
            Refusal::PerIp => Error::TooManyFromIp {
                ip: remote.ip(),
                max: limits.max_inbound_per_ip,
            },
            Refusal::PerNetgroup => Error::TooManyFromNetgroup {
                ip: remote.ip(),
                max: limits.max_inbound_per_netgroup,
            },
        }
    }
}

/// The future of [`CoreLocal::stopped`]: registers its waker under its own key while
/// pending and removes it when dropped.
pub(crate) struct Stopped<'a> {
    core: &'a CoreLocal,
    key: Option<u64>,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let core = self.core;
        if core.stopping.get() {
            return Poll::Ready(());
        }
        let key = *self.key.get_or_insert_with(|| {
            let k = core.next_stop_waiter.get();
            core.next_stop_waiter.set(k.wrapping_add(1));
            k
        });
        core.stop_wakers
            .borrow_mut()
            .insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut wakers = self.core.stop_wakers.borrow_mut();
            wakers.remove(&key);
            shrink_when_sparse(&mut wakers);
        }
    }
}

/// Gives a per-peer table's memory back once a surge of peers has left.
///
/// Why: a hash table keeps the capacity of its peak, and the tombstones that removals
/// leave can make it grow again during the next surge of the same size; a server that
/// once held 10,000 peers would keep (and add to) tables sized for them. Shrinking
/// when under a quarter full keeps the amortised cost constant (a table halves at most
/// once per quarter of its capacity removed) and memory near what the peers now hold.
fn shrink_when_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::shrink_when_sparse;
    use std::collections::HashMap;

    #[test]
    fn a_table_shrinks_once_a_surge_has_left_and_keeps_what_remains() {
        let mut map: HashMap<u64, u64> = (0..10_000).map(|i| (i, i * 2)).collect();
        let peak = map.capacity();
        for i in 0..9_990 {
            map.remove(&i);
            shrink_when_sparse(&mut map);
        }
        assert!(map.capacity() < peak / 64, "{} of {peak}", map.capacity());
        assert_eq!(map.len(), 10);
        assert!((9_990..10_000).all(|i| map.get(&i) == Some(&(i * 2))));
    }
}
