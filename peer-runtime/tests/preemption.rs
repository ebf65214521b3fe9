//! glommio's preemption timer as patched in `third_party/glommio` (issue #15): a
//! pending timer stays armed from one pass of the executor's loop to the next (and
//! through a sleep) when it fires no later than the one wanted; a new one is armed only
//! when a task queue has work (PATCHES.md change 11; a kept timer that fires between
//! the executor's poll and its first task queue must not make it sleep with work left,
//! change 10, guarded by `tests/foreign_wakes.rs`).
//!
//! What must still hold: a task that runs on is preempted, after the executor slept
//! too; a latency-sensitive task queue gets its shorter time slice although a longer
//! timer is armed; a user timer fires although a longer preemption timer was armed;
//! and an idle executor is not woken again and again by the preemption timer.
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

#[test]
fn an_idle_executor_is_not_woken_again_and_again_by_the_preempt_timer() {
    // A 1 ms slice: an executor re-armed on every wake-up would wake about 100 times
    // while its only task sleeps 100 ms; one that arms the timer only for runnable
    // work wakes for the user timer (and at most once for a timer already pending).
    let (preempted, passes) = run(Duration::from_millis(1), || async {
        let preempted = spin_until_preempted();
        let before = glommio::executor().executor_stats().scheduler_runs();
        sleep(Duration::from_millis(100)).await;
        let after = glommio::executor().executor_stats().scheduler_runs();
        (preempted, after - before)
    });
    assert!(preempted);
    assert!(
        passes < 20,
        "{passes} scheduler passes while idle for 100 ms"
    );
}
