//! A peer's life as seen from other threads: connecting, handshaken, ended (with why).
//!
//! The driver moves a peer forward; any number of waiters, on executors or on plain
//! threads, wait for the handshake or for the end. Waiting holds one small entry per
//! waiting future; an idle peer nobody waits on holds none.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use peer_core::DisconnectReason;

#[derive(Debug, Default)]
struct State {
    /// The negotiated protocol version once the handshake completed.
    handshake: Option<u32>,
    /// Why the peer ended, once it did.
    ended: Option<DisconnectReason>,
    /// Futures waiting for a change, by key.
    waiters: Vec<(u64, Waker)>,
    next_key: u64,
    /// Threads blocked in [`Lifecycle::wait_blocking`]. std's condition variable makes
    /// a `futex` system call at every notify, waiters or not: one per handshake and
    /// one per end on the executor thread when it was called unconditionally.
    sleepers: usize,
}

/// The shared life state of one peer.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    state: Mutex<State>,
    changed: Condvar,
    /// Set the moment a disconnect is requested or the peer closes, before its driver
    /// has written a farewell and ended (which can take up to the farewell timeout):
    /// `connected()` turns false at once, as btcd's does when `Disconnect` is called.
    closing: AtomicBool,
}

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    Handshake,
    End,
}

/// The answer to a wait: the handshake happened (with the negotiated version), or the
/// peer ended first / has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reached {
    Handshake(u32),
    Ended(DisconnectReason),
}

impl Lifecycle {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few assignments: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, mut st: MutexGuard<'_, State>) {
        let waiters = std::mem::take(&mut st.waiters);
        // Read under the lock a sleeper holds until it waits: none can be missed.
        let sleepers = st.sleepers > 0;
        drop(st);
        if sleepers {
            self.changed.notify_all();
        }
        for (_, w) in waiters {
            w.wake();
        }
    }

    pub(crate) fn set_handshake(&self, version: u32) {
        let mut st = self.lock();
        if st.handshake.is_none() && st.ended.is_none() {
            st.handshake = Some(version);
            self.notify(st);
        }
    }

    pub(crate) fn set_ended(&self, reason: DisconnectReason) {
        self.set_closing();
        let mut st = self.lock();
        if st.ended.is_none() {
            st.ended = Some(reason);
            self.notify(st);
        }
    }

    /// The peer is on its way out: a disconnect was asked for, or it closed.
    pub(crate) fn set_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether the peer is closing or has ended (ending sets it too).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn handshake(&self) -> Option<u32> {
        self.lock().handshake
    }

    pub(crate) fn ended(&self) -> Option<DisconnectReason> {
        self.lock().ended.clone()
    }

    fn check(st: &State, goal: Goal) -> Option<Reached> {
        if goal == Goal::Handshake {
            if let Some(v) = st.handshake {
                return Some(Reached::Handshake(v));
            }
        }
        st.ended.clone().map(Reached::Ended)
    }

    /// Blocks until `goal` (or the end) is reached, or `timeout` passes.
    pub(crate) fn wait_blocking(&self, goal: Goal, timeout: Option<Duration>) -> Option<Reached> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.lock();
        loop {
            if let Some(r) = Self::check(&st, goal) {
                return Some(r);
            }
            match deadline {
                None => {
                    st.sleepers += 1;
                    st = self
                        .changed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                    st.sleepers -= 1;
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    st.sleepers += 1;
                    st = self
                        .changed
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    st.sleepers -= 1;
                }
            }
        }
    }
}

/// A future for a lifecycle goal (see [`PeerHandle::wait_for_disconnect`] and
/// [`PeerHandle::wait_for_handshake`]).
///
/// [`PeerHandle::wait_for_disconnect`]: crate::PeerHandle::wait_for_disconnect
/// [`PeerHandle::wait_for_handshake`]: crate::PeerHandle::wait_for_handshake
///
/// It holds whatever owns the lifecycle (a peer's shared state: the lifecycle is a
/// field of it, not an allocation of its own per peer).
#[derive(Debug)]
pub(crate) struct Wait<L: AsRef<Lifecycle> = Lifecycle> {
    life: Arc<L>,
    goal: Goal,
    key: Option<u64>,
}

impl AsRef<Lifecycle> for Lifecycle {
    fn as_ref(&self) -> &Lifecycle {
        self
    }
}

impl<L: AsRef<Lifecycle>> Wait<L> {
    pub(crate) fn new(life: Arc<L>, goal: Goal) -> Wait<L> {
        Wait {
            life,
            goal,
            key: None,
        }
    }
}

impl<L: AsRef<Lifecycle>> Future for Wait<L> {
    type Output = Reached;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reached> {
        let this = &mut *self;
        let mut st = (*this.life).as_ref().lock();
        if let Some(r) = Lifecycle::check(&st, this.goal) {
            this.key = None;
            return Poll::Ready(r);
        }
        let key = match this.key {
            Some(k) => k,
            None => {
                let k = st.next_key;
                st.next_key += 1;
                this.key = Some(k);
                k
            }
        };
        match st.waiters.iter_mut().find(|(k, _)| *k == key) {
            Some((_, w)) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
            }
            None => st.waiters.push((key, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl<L: AsRef<Lifecycle>> Drop for Wait<L> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut st = (*self.life).as_ref().lock();
            st.waiters.retain(|(k, _)| *k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_before_handshake_answers_handshake_waiters() {
        let life = Arc::new(Lifecycle::default());
        let l2 = life.clone();
        let t = std::thread::spawn(move || l2.wait_blocking(Goal::Handshake, None));
        std::thread::sleep(Duration::from_millis(10));
        life.set_ended(DisconnectReason::RemoteClosed);
        assert_eq!(
            t.join().unwrap(),
            Some(Reached::Ended(DisconnectReason::RemoteClosed))
        );
        // A later handshake cannot revive an ended peer.
        life.set_handshake(70016);
        assert_eq!(life.handshake(), None);
    }

    #[test]
    fn first_end_reason_wins_and_timeout_expires() {
        let life = Lifecycle::default();
        assert_eq!(
            life.wait_blocking(Goal::End, Some(Duration::from_millis(5))),
            None
        );
        life.set_handshake(70015);
        assert_eq!(
            life.wait_blocking(Goal::Handshake, Some(Duration::ZERO)),
            Some(Reached::Handshake(70015))
        );
        life.set_ended(DisconnectReason::IdleTimeout);
        life.set_ended(DisconnectReason::LocalRequest);
        assert_eq!(life.ended(), Some(DisconnectReason::IdleTimeout));
    }

    /// A wait holds whatever owns the lifecycle (a peer's shared state keeps it inline):
    /// it is woken by the goal, answers it, and leaves no waiter behind when dropped.
    #[test]
    fn a_wait_on_an_owner_of_the_lifecycle_reaches_its_goal() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Owner {
            _other: u64,
            life: Lifecycle,
        }
        impl AsRef<Lifecycle> for Owner {
            fn as_ref(&self) -> &Lifecycle {
                &self.life
            }
        }
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let owner = Arc::new(Owner {
            _other: 7,
            life: Lifecycle::default(),
        });
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut hs = Wait::new(owner.clone(), Goal::Handshake);
        let mut end = Wait::new(owner.clone(), Goal::End);
        assert!(Pin::new(&mut hs).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut end).poll(&mut cx).is_pending());
        owner.life.set_handshake(70016);
        // Every waiter is woken to look again.
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        assert_eq!(
            Pin::new(&mut hs).poll(&mut cx),
            Poll::Ready(Reached::Handshake(70016))
        );
        assert!(Pin::new(&mut end).poll(&mut cx).is_pending());
        drop(end);
        drop(hs);
        assert!(owner.life.lock().waiters.is_empty());
    }

    #[test]
    fn dropped_future_removes_its_waiter() {
        use std::task::Wake;
        struct Nop;
        impl Wake for Nop {
            fn wake(self: Arc<Self>) {}
        }
        let life = Arc::new(Lifecycle::default());
        let waker = Waker::from(Arc::new(Nop));
        let mut cx = Context::from_waker(&waker);
        let mut w = Wait::new(life.clone(), Goal::End);
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        assert_eq!(life.lock().waiters.len(), 1);
        drop(w);
        assert!(life.lock().waiters.is_empty());
    }
}
