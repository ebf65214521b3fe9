//! glommio's preemption timer under the runtime's glommio (`third_party/glommio`,
//! issue #15). A patch that kept pending preemption timers armed across passes and
//! armed none for an idle executor was tried and reverted: it let a wake-up from
//! another thread go unnoticed (`tests/foreign_wakes.rs` hung in 5 of 150 runs). These
//! tests stay as the guard for any future change to how the executor sleeps.
//!
//! What must hold: a task that runs on is preempted, after the executor slept too; a
//! latency-sensitive task queue gets its shorter time slice although a longer timer is
//! armed; a user timer fires although a longer preemption timer was armed.
//!
//! Each executor runs on its own thread and reports through a channel, so a broken
//! timer fails a test after `LONG` instead of hanging it; no assertion depends on
//! the machine's speed (the bounds are liveness bounds or counts of wake-ups).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};

/// The longest any step may take before the test fails.
const LONG: Duration = Duration::from_secs(30);

/// Runs `f` on an executor with the given preemption time slice, on its own thread;
/// returns `f`'s result, or panics when it does not finish within `LONG`.
fn run<T, F, Fut>(preempt: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(128 * 1024)
            .preempt_timer(preempt)
            .make()
            .expect("executor");
        let out = ex.run(f());
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(LONG + LONG)
        .expect("the executor did not finish: a timer never fired");
    worker.join().expect("executor thread");
    out
}

/// Runs on (never yielding) until the executor asks the task to yield; false if it
/// did not within `LONG`.
fn spin_until_preempted() -> bool {
    let start = Instant::now();
    while start.elapsed() < LONG {
        if glommio::executor().need_preempt() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

#[test]
fn a_task_that_runs_on_is_preempted_also_after_the_executor_slept() {
    let preempted = run(Duration::from_millis(2), || async {
        let mut all = Vec::new();
        for _ in 0..3 {
            // Nothing runnable while the timer waits: the executor parks.
            sleep(Duration::from_millis(1)).await;
            all.push(spin_until_preempted());
        }
        all
    });
    assert_eq!(preempted, vec![true, true, true]);
}

#[test]
fn a_latency_sensitive_queue_gets_its_short_slice_while_a_long_timer_is_armed() {
    // The default slice is an hour: the timer armed for the first pass is that long.
    let preempted = run(Duration::from_secs(3600), || async {
        let tq = glommio::executor().create_task_queue(
            Shares::default(),
            Latency::Matters(Duration::from_millis(2)),
            "latency",
        );
        glommio::spawn_local_into(
            async {
                sleep(Duration::from_millis(1)).await;
                spin_until_preempted()
            },
            tq,
        )
        .expect("spawn")
        .await
    });
    assert!(preempted, "the 2 ms slice was not enforced");
}

#[test]
fn user_timers_fire_while_a_longer_preempt_timer_is_armed() {
    let fired = run(Duration::from_secs(3600), || async {
        let mut fired = 0;
        for _ in 0..3 {
            sleep(Duration::from_millis(2)).await;
            fired += 1;
        }
        fired
    });
    assert_eq!(fired, 3);
}
