//! Wake-ups from other threads reach a sleeping glommio executor (`third_party/glommio`
//! changes how the executor sleeps and when its preemption timers fire, issue #15).
//! Before it sleeps the executor announces it and looks at its remote queues once more;
//! a remote waker that queued a wake-up then writes its eventfd. A missed wake-up would
//! leave the executor asleep: the test fails after `LONG` instead of hanging.
//!
//! The executor must also never sleep while a task is runnable. Stock glommio 0.9 did
//! when a preemption timer fired between its poll of the rings and its first look at
//! the task queues (PATCHES.md change 10): with a 10 µs time slice the second test hung
//! in 9 of 10 runs on stock glommio, 0 of 10 with the fix.
//!
//! A handle's commands reach its peer this way (a `PeerHandle` used from another thread
//! wakes the peer's task on its executor).

use std::future::poll_fn;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

/// The longest the whole exchange may take before the test fails.
const LONG: Duration = Duration::from_secs(60);

/// A flag another thread sets, and the waker of the task waiting for it.
#[derive(Default)]
struct Signal {
    set: bool,
    waker: Option<Waker>,
}

#[test]
fn every_wake_from_another_thread_reaches_the_sleeping_executor() {
    assert_eq!(wake_rounds(None), ROUNDS);
}

#[test]
fn every_wake_reaches_an_executor_that_batches_its_wake_ups() {
    // A batched sleep (glommio change 19) waits for completions the executor expects;
    // the eventfd read that a foreign wake completes is one of them, and it must end
    // the sleep within the batch's delay, not be held for a batch that never comes.
    assert_eq!(wake_rounds_with(None, true), ROUNDS);
}

#[test]
fn every_wake_arrives_while_short_preemption_timers_fire_between_passes() {
    // A 10 µs slice: preemption timers fire at any point of a pass, also after the
    // executor's poll of the rings and before its first look at the task queues (stock
    // glommio then parked with the task runnable and slept on: PATCHES.md change 10).
    assert_eq!(wake_rounds(Some(Duration::from_micros(10))), ROUNDS);
}

/// Wake-ups exchanged between the executor and the remote thread.
const ROUNDS: usize = 2_000;

/// Runs `ROUNDS` exchanges: the executor's task asks, the remote thread wakes it.
/// `slice` is the executor's preemption time slice (glommio's default if `None`).
/// Returns the rounds completed; fails after `LONG` if a wake-up was lost.
fn wake_rounds(slice: Option<Duration>) -> usize {
    wake_rounds_with(slice, false)
}

/// As [`wake_rounds`]; `batched` builds the executor with the runtime's wake batch.
fn wake_rounds_with(slice: Option<Duration>, batched: bool) -> usize {
    let signal = Arc::new(Mutex::new(Signal::default()));
    let (ask_tx, ask_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();

    // The remote thread: for every request, set the flag and wake the waiting task
    // (every few rounds at once, otherwise after the executor has likely gone to sleep).
    let remote_signal = signal.clone();
    let remote = thread::spawn(move || {
        for (i, ()) in ask_rx.iter().enumerate() {
            if i % 3 != 0 {
                thread::sleep(Duration::from_micros(50));
            }
            let waker = {
                let mut s = remote_signal.lock().unwrap();
                s.set = true;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    });

    let local_signal = signal.clone();
    let executor = thread::spawn(move || {
        let mut builder = LocalExecutorBuilder::new(Placement::Unbound).io_memory(128 * 1024);
        if let Some(slice) = slice {
            builder = builder.preempt_timer(slice);
        }
        if batched {
            builder = builder.wake_batch(glommio::WakeBatch {
                max_events: peer_runtime::DEFAULT_WAKE_BATCH_EVENTS,
                max_delay: peer_runtime::DEFAULT_WAKE_BATCH_DELAY,
            });
        }
        let ex = builder.make().expect("executor");
        let rounds = ex.run(async move {
            let mut rounds = 0;
            for _ in 0..ROUNDS {
                ask_tx.send(()).unwrap();
                poll_fn(|cx| {
                    let mut s = local_signal.lock().unwrap();
                    if s.set {
                        s.set = false;
                        Poll::Ready(())
                    } else {
                        s.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
                .await;
                rounds += 1;
            }
            rounds
        });
        let _ = done_tx.send(rounds);
    });

    let rounds = done_rx
        .recv_timeout(LONG)
        .expect("a wake-up from another thread was lost: the executor slept on");
    executor.join().unwrap();
    remote.join().unwrap();
    rounds
}
