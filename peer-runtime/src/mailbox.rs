//! A many-producer, single-consumer queue whose consumer is a task on one executor and
//! whose producers may be any thread.
//!
//! `PeerHandle`s post commands to their peer's driver through a mailbox, and the runtime
//! posts control requests (connect, adopt a stream, shut down) to each executor through
//! one. An empty mailbox holds no heap memory, which matters at tens of thousands of
//! idle peers; the consumer takes the whole queue at once, so the memory of a burst is
//! released as soon as the burst has been handled.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, RawWakerVTable, Waker};

/// The consumer looks at two flags before it takes the lock: a peer's driver checks its
/// mailbox twice per pass (take the commands, then register for the next), almost
/// always to find it empty and its waker already registered, and the four lock and
/// unlock operations this saves per ping round trip were 1 % of a ping-flooded
/// server's CPU (issue #15). Both flags change only under the lock.
pub(crate) struct Mailbox<T> {
    inner: Mutex<Inner<T>>,
    /// Something is queued, or the mailbox is closed.
    ready: AtomicBool,
    /// The registered waker's data and vtable pointers (null when none is registered):
    /// a consumer whose waker `will_wake` the registered one need not lock to find
    /// nothing queued. A push clears them when it takes the waker (and then wakes it).
    waker_data: AtomicPtr<()>,
    waker_vtable: AtomicPtr<RawWakerVTable>,
}

struct Inner<T> {
    queue: VecDeque<T>,
    waker: Option<Waker>,
    closed: bool,
}

impl<T> Mailbox<T> {
    pub(crate) fn new() -> Mailbox<T> {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                waker: None,
                closed: false,
            }),
            ready: AtomicBool::new(false),
            waker_data: AtomicPtr::new(ptr::null_mut()),
            waker_vtable: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Records (under the lock) which waker is registered, or that none is.
    fn note_waker(&self, waker: Option<&Waker>) {
        let (data, vtable) = match waker {
            Some(w) => (w.data() as *mut (), w.vtable() as *const _ as *mut _),
            None => (ptr::null_mut(), ptr::null_mut()),
        };
        self.waker_data.store(data, Ordering::Release);
        self.waker_vtable.store(vtable, Ordering::Release);
    }

    /// Whether `waker` is the registered one (read without the lock).
    fn registered(&self, waker: &Waker) -> bool {
        let data = self.waker_data.load(Ordering::Acquire);
        !data.is_null()
            && ptr::eq(data, waker.data())
            && ptr::eq(self.waker_vtable.load(Ordering::Acquire), waker.vtable())
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Critical sections are a push, a swap or a flag: a panic inside one cannot
        // corrupt the queue, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` and wakes the consumer; gives the item back if the mailbox is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let waker = {
            let mut inner = self.lock();
            if inner.closed {
                return Err(item);
            }
            inner.queue.push_back(item);
            self.ready.store(true, Ordering::Release);
            self.note_waker(None);
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Takes everything queued (possibly nothing), without registering interest.
    pub(crate) fn take_all(&self) -> VecDeque<T> {
        // Nothing queued: no lock. A push racing with this load is seen by the
        // consumer's next `poll_ready` (or it wakes the consumer).
        if !self.ready.load(Ordering::Acquire) {
            return VecDeque::new();
        }
        let mut inner = self.lock();
        self.ready.store(inner.closed, Ordering::Release);
        std::mem::take(&mut inner.queue)
    }

    /// Whether something is queued; if not, remembers `cx`'s waker for the next push.
    pub(crate) fn poll_ready(&self, cx: &Context<'_>) -> Poll<()> {
        if self.ready.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // Registered and nothing queued at the load above: a push since then takes
        // the registered waker and wakes it.
        if self.registered(cx.waker()) {
            return Poll::Pending;
        }
        let mut inner = self.lock();
        if !inner.queue.is_empty() || inner.closed {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        self.note_waker(inner.waker.as_ref());
        Poll::Pending
    }

    /// Refuses further pushes and returns what was still queued (to be answered).
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.waker = None;
        self.ready.store(true, Ordering::Release);
        self.note_waker(None);
        std::mem::take(&mut inner.queue)
    }

    /// Whether [`Mailbox::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn push_wakes_registered_consumer_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        let mb = Mailbox::new();
        assert!(mb.poll_ready(&cx).is_pending());
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(mb.poll_ready(&cx).is_ready());
        assert_eq!(mb.take_all(), [1, 2]);
    }

    #[test]
    fn a_push_after_the_queue_was_taken_wakes_the_registered_consumer_again() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        let mb = Mailbox::new();
        assert!(mb.take_all().is_empty());
        assert!(mb.poll_ready(&cx).is_pending());
        mb.push(1).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(mb.poll_ready(&cx).is_ready());
        assert_eq!(mb.take_all(), [1]);
        // Registers again (the push took the waker), then finds it registered.
        assert!(mb.poll_ready(&cx).is_pending());
        assert!(mb.poll_ready(&cx).is_pending());
        mb.push(2).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(mb.take_all(), [2]);
        assert!(mb.take_all().is_empty());
        assert!(mb.poll_ready(&cx).is_pending());
    }

    #[test]
    fn a_consumer_with_another_waker_replaces_the_registered_one() {
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        let mb = Mailbox::new();
        assert!(mb.poll_ready(&Context::from_waker(&w1)).is_pending());
        assert!(mb.poll_ready(&Context::from_waker(&w1)).is_pending());
        assert!(mb.poll_ready(&Context::from_waker(&w2)).is_pending());
        mb.push(()).unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_closed_mailbox_is_ready_also_for_a_registered_consumer() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        let mb = Mailbox::<u8>::new();
        assert!(mb.poll_ready(&cx).is_pending());
        assert!(mb.close().is_empty());
        assert!(mb.poll_ready(&cx).is_ready());
        assert!(mb.take_all().is_empty());
        assert!(mb.poll_ready(&cx).is_ready());
    }

    /// Wakes a parked thread.
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    #[test]
    fn a_consumer_that_parks_when_empty_receives_every_push_from_other_threads() {
        const EACH: usize = 20_000;
        let mb = Arc::new(Mailbox::new());
        let producers: Vec<_> = (0..3)
            .map(|_| {
                let mb = mb.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        mb.push(i).unwrap();
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let cx = Context::from_waker(&waker);
        let mut got = 0;
        while got < 3 * EACH {
            got += mb.take_all().len();
            if got < 3 * EACH && mb.poll_ready(&cx).is_pending() {
                // A lost wake-up would leave this thread parked: bounded, not timed.
                let parked = std::time::Instant::now();
                std::thread::park_timeout(std::time::Duration::from_secs(20));
                assert!(parked.elapsed().as_secs() < 20, "a push did not wake us");
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(got, 3 * EACH);
        assert!(mb.take_all().is_empty());
    }

    #[test]
    fn close_returns_queued_and_refuses_more() {
        let mb = Mailbox::new();
        mb.push("a").unwrap();
        assert_eq!(mb.close(), ["a"]);
        assert!(mb.is_closed());
        assert_eq!(mb.push("b"), Err("b"));
    }

    #[test]
    fn order_is_kept_across_threads() {
        let mb = Arc::new(Mailbox::new());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let mb = mb.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u32 {
                        mb.push((t, i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = mb.take_all();
        assert_eq!(all.len(), 4000);
        for t in 0..4 {
            let seq: Vec<u32> = all.iter().filter(|x| x.0 == t).map(|x| x.1).collect();
            assert_eq!(seq, (0..1000).collect::<Vec<_>>());
        }
    }
}
