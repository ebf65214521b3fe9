//! Wake-ups from other threads reach a sleeping glommio executor (`third_party/glommio`
//! changes how the executor sleeps: the preemption timers it keeps armed, issue #15).
//! Before it sleeps the executor announces it and looks at its remote queues once more;
//! a remote waker that queued a wake-up then writes its eventfd. A missed wake-up would
//! leave the executor asleep: the test fails after `LONG` instead of hanging.
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
    const ROUNDS: usize = 2_000;
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
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(128 * 1024)
            .make()
            .expect("executor");
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
    assert_eq!(rounds, ROUNDS);
    executor.join().unwrap();
    remote.join().unwrap();
}
