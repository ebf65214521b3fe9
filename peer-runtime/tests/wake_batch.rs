//! Batched wake-ups (`third_party/glommio` change 19, issue #15): an executor built with
//! a `WakeBatch` sleeps until as many completions as it expects within the batch's
//! delay have arrived, or the delay has passed with at least one. These tests check
//! that nothing is ever held longer: a message that no other follows still wakes the
//! executor within the delay, however many the executor expected; and, where the
//! kernel supports batching (Linux 6.12), that the batch really is awaited, and that a
//! lone flow, whose batches never come, backs off from waiting for them.

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement, WakeBatch};

/// The batch's delay in these tests: long enough to be told apart from scheduling noise.
const DELAY: Duration = Duration::from_millis(200);

/// Blocking client reads never wait longer: a message held for a batch that never
/// comes fails the test instead of hanging it (the kernel's own timeout is a day).
const LONG: Duration = Duration::from_secs(20);

/// An echo server on a batched executor, serving `clients` connections one byte at a
/// time; returns its address once it listens.
fn echo_server(clients: usize) -> std::net::SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(128 * 1024)
            .wake_batch(WakeBatch {
                max_events: 64,
                max_delay: DELAY,
            })
            .make()
            .expect("executor");
        ex.run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let mut stream = listener.accept().await.unwrap();
                tasks.push(glommio::spawn_local(async move {
                    let mut byte = [0u8; 1];
                    while stream.read_exact(&mut byte).await.is_ok() {
                        if stream.write_all(&byte).await.is_err() {
                            break;
                        }
                    }
                }));
            }
            for t in tasks {
                t.await;
            }
        });
    });
    rx.recv_timeout(LONG).expect("server started")
}

fn client(addr: std::net::SocketAddr) -> StdStream {
    let s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One byte there and back; returns how long the echo took.
fn round_trip(s: &mut StdStream, b: u8) -> Duration {
    let start = Instant::now();
    s.write_all(&[b]).unwrap();
    let mut back = [0u8; 1];
    s.read_exact(&mut back)
        .expect("the echo never came: a message was held for a batch that never came");
    assert_eq!(back[0], b);
    start.elapsed()
}

/// Whether this kernel has `IORING_FEAT_MIN_TIMEOUT` (Linux 6.12); older ones run
/// unbatched.
fn kernel_batches() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 12)
}

#[test]
fn a_lone_message_after_a_burst_wakes_the_executor_within_the_delay() {
    let addr = echo_server(1);
    let mut s = client(addr);
    // Quick round trips: the executor sees messages far faster than one per `DELAY`
    // and expects many per sleep, but each round trip brings only one.
    let rounds: Vec<Duration> = (0..12u8).map(|i| round_trip(&mut s, i)).collect();
    for (i, took) in rounds.iter().enumerate() {
        assert!(
            *took < DELAY + Duration::from_secs(5),
            "round {i} took {took:?}: held past the batch's delay"
        );
    }
    if kernel_batches() {
        // The executor did wait for a batch: after a quick round trip it expects more
        // messages than the one that comes, and holds that one for the delay.
        let held = rounds.iter().filter(|t| **t >= DELAY * 3 / 4).count();
        assert!(held > 0, "no round trip waited for a batch: {rounds:?}");
    }
    // Silence, then one message: it is served, not held for the rate seen before.
    thread::sleep(DELAY * 2);
    let took = round_trip(&mut s, 99);
    assert!(
        took < DELAY + Duration::from_secs(5),
        "the lone message took {took:?}"
    );
}

#[test]
fn a_lone_flow_backs_off_from_batches_that_do_not_come() {
    // One peer in a closed loop over loopback: its round trips are so quick that the
    // rate promises many messages per delay, but only one comes per sleep. A batch
    // that brings less than half of what it waited for makes the next sleeps (twice
    // as many each time) wait for one: of 40 round trips a handful are held (the
    // probes), not every other one.
    let addr = echo_server(1);
    let mut s = client(addr);
    let rounds: Vec<Duration> = (0..40u8).map(|i| round_trip(&mut s, i)).collect();
    let held = rounds.iter().filter(|t| **t >= DELAY * 3 / 4).count();
    assert!(
        held <= 8,
        "{held} of 40 round trips waited for a batch: {rounds:?}"
    );
}

#[test]
fn every_message_of_a_burst_from_many_connections_is_served() {
    const CLIENTS: usize = 48;
    let addr = echo_server(CLIENTS);
    let mut socks: Vec<StdStream> = (0..CLIENTS).map(|_| client(addr)).collect();
    for round in 0..5u8 {
        // Every client sends at once: more completions than a sleep waits for, then
        // fewer, then none.
        for (i, s) in socks.iter_mut().enumerate() {
            s.write_all(&[round.wrapping_add(i as u8)]).unwrap();
        }
        for (i, s) in socks.iter_mut().enumerate() {
            let mut back = [0u8; 1];
            s.read_exact(&mut back)
                .expect("an echo of the burst never came");
            assert_eq!(back[0], round.wrapping_add(i as u8));
        }
    }
}

#[test]
fn a_batch_needs_more_than_one_event_and_a_delay() {
    // Builders that ask for no batching in effect run unbatched (and must still work).
    for batch in [
        WakeBatch {
            max_events: 1,
            max_delay: DELAY,
        },
        WakeBatch {
            max_events: 64,
            max_delay: Duration::ZERO,
        },
    ] {
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(128 * 1024)
            .wake_batch(batch)
            .make()
            .expect("executor");
        let answer = ex.run(async {
            glommio::timer::sleep(Duration::from_millis(5)).await;
            7
        });
        assert_eq!(answer, 7);
    }
}
