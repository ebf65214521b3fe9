//! A one-shot answer that can be awaited on an executor or waited for on a plain thread.
//!
//! The runtime answers many requests across threads: "was this message sent?", "here is
//! the peer you asked to connect to", "here is the peer's statistics snapshot". Each
//! answer travels through one [`Pending`] (the receiving end) and one resolver (the
//! sending end). A resolver that is dropped without answering answers with the fallback
//! it was created with, so a request can never be left hanging: this is how "every
//! queued notification gets exactly one answer" holds even when a peer task ends early.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Shared state of one answer.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

struct SlotState<T> {
    /// The answer, once given and not yet taken.
    value: Option<T>,
    /// Whether the answer was given (stays true after it was taken).
    answered: bool,
    /// The task waiting for the answer, if it is awaited.
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        // A panic while holding this lock cannot leave the state inconsistent (every
        // critical section is a few assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates a connected pair. `fallback` is the answer given when the resolver is
/// dropped without answering.
pub(crate) fn pending<T>(fallback: fn() -> T) -> (Resolver<T>, Pending<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            value: None,
            answered: false,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Resolver {
            slot: Some(slot.clone()),
            fallback,
        },
        Pending { slot },
    )
}

/// The sending end: answers exactly once (by [`Resolver::resolve`] or by being dropped).
pub(crate) struct Resolver<T> {
    slot: Option<Arc<Slot<T>>>,
    fallback: fn() -> T,
}

impl<T> Resolver<T> {
    /// Gives the answer and wakes whoever waits for it.
    pub(crate) fn resolve(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, value);
        }
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, (self.fallback)());
        }
    }
}

impl<T> fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

fn deliver<T>(slot: &Slot<T>, value: T) {
    let waker = {
        let mut st = slot.lock();
        if st.answered {
            return;
        }
        st.value = Some(value);
        st.answered = true;
        st.waker.take()
    };
    slot.ready.notify_all();
    // Wake outside the lock: a glommio waker from another thread goes through the
    // executor's notifier, which must not run under our mutex.
    if let Some(w) = waker {
        w.wake();
    }
}

/// An answer that is coming: a message's delivery, a connection, a statistics snapshot.
///
/// Await it inside an executor (it is a [`Future`]) or block on it from an ordinary
/// thread with [`Pending::wait`] / [`Pending::wait_timeout`]. The runtime always answers:
/// when the peer or the runtime goes away first, the answer is the documented failure
/// value (for example [`Delivery::Failed`](crate::Delivery::Failed)).
///
/// Do not block with [`Pending::wait`] on an executor thread of the runtime that has to
/// answer: that thread would wait for itself. Await instead.
///
/// ```
/// use peer_runtime::{Delivery, Notification};
/// let n = Notification::ready(Delivery::Sent);
/// assert_eq!(n.try_take(), Some(Delivery::Sent));
/// ```
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Pending<T> {
    /// An answer that is already known (useful for tests and for early failures).
    pub fn ready(value: T) -> Pending<T> {
        Pending {
            slot: Arc::new(Slot {
                state: Mutex::new(SlotState {
                    value: Some(value),
                    answered: true,
                    waker: None,
                }),
                ready: Condvar::new(),
            }),
        }
    }

    /// Whether the answer has arrived (it may already have been taken).
    pub fn is_answered(&self) -> bool {
        self.slot.lock().answered
    }

    /// Takes the answer if it has arrived, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.slot.lock().value.take()
    }

    /// Blocks the calling thread until the answer arrives.
    ///
    /// # Panics
    /// Panics if the answer was already taken (by `try_take` or a previous wait).
    pub fn wait(self) -> T {
        let mut st = self.slot.lock();
        loop {
            if let Some(v) = st.value.take() {
                return v;
            }
            assert!(!st.answered, "the answer was already taken");
            st = self
                .slot
                .ready
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until the answer arrives or `timeout` passes; gives `self` back on timeout
    /// so the caller can wait again.
    pub fn wait_timeout(self, timeout: Duration) -> Result<T, Pending<T>> {
        let deadline = Instant::now() + timeout;
        {
            let mut st = self.slot.lock();
            loop {
                if let Some(v) = st.value.take() {
                    return Ok(v);
                }
                let now = Instant::now();
                if now >= deadline || st.answered {
                    break;
                }
                st = self
                    .slot
                    .ready
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        Err(self)
    }
}

impl<T> Future for Pending<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.slot.lock();
        if let Some(v) = st.value.take() {
            return Poll::Ready(v);
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("answered", &self.is_answered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_then_wait() {
        let (r, p) = pending::<u32>(|| 0);
        r.resolve(7);
        assert!(p.is_answered());
        assert_eq!(p.wait(), 7);
    }

    #[test]
    fn dropped_resolver_answers_with_fallback() {
        let (r, p) = pending::<u32>(|| 99);
        drop(r);
        assert_eq!(p.wait(), 99);
    }

    #[test]
    fn wait_across_threads() {
        let (r, p) = pending::<String>(String::new);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            r.resolve("done".into());
        });
        assert_eq!(p.wait(), "done");
        t.join().unwrap();
    }

    #[test]
    fn wait_timeout_gives_pending_back() {
        let (r, p) = pending::<u8>(|| 0);
        let p = p.wait_timeout(Duration::from_millis(5)).unwrap_err();
        r.resolve(3);
        assert_eq!(p.wait_timeout(Duration::from_secs(5)).ok(), Some(3));
    }

    #[test]
    fn future_wakes_on_resolve() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (r, mut p) = pending::<u8>(|| 0);
        assert!(Pin::new(&mut p).poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        r.resolve(5);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut p).poll(&mut cx), Poll::Ready(5));
    }
}
