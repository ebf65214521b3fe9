//! A many-producer, single-consumer queue whose consumer is a task on one executor and
//! whose producers may be any thread.
//!
//! `PeerHandle`s post commands to their peer's driver through a mailbox, and the runtime
//! posts control requests (connect, adopt a stream, shut down) to each executor through
//! one. An empty mailbox holds no heap memory, which matters at tens of thousands of
//! idle peers; the consumer takes the whole queue at once, so the memory of a burst is
//! released as soon as the burst has been handled.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

pub(crate) struct Mailbox<T> {
    inner: Mutex<Inner<T>>,
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
        }
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
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Takes everything queued (possibly nothing), without registering interest.
    pub(crate) fn take_all(&self) -> VecDeque<T> {
        std::mem::take(&mut self.lock().queue)
    }

    /// Whether something is queued; if not, remembers `cx`'s waker for the next push.
    pub(crate) fn poll_ready(&self, cx: &Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if !inner.queue.is_empty() || inner.closed {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Refuses further pushes and returns what was still queued (to be answered).
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.waker = None;
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
