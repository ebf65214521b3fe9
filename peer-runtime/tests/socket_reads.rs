//! The socket layer the runtime reads and accepts through: glommio's TCP streams and
//! listener as patched in `third_party/glommio` (issue #15).
//!
//! A stream waiting for input keeps a multishot io_uring receive armed whose completions
//! bring bytes in the executor's provided buffers (patch 16; a single-shot receive into
//! the stream's own buffer on kernels without them, or with
//! `PEERWIRE_RECV_SINGLESHOT=1`); bytes a receive brings and the reader's buffer cannot
//! take are held for the next read and for `peek`; a listener accepts without `fcntl` and waits for connections with a
//! poll. These tests drive each path on purpose: a read polled once and dropped leaves
//! its receive armed, so the next bytes arrive through it (no sleeps, no timing: the
//! client sends only when the server says it is waiting).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream as StdStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures_lite::future::poll_once;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// The patched stream's receive size (`URING_RECV_SIZE` in
/// `third_party/glommio/src/net/stream.rs`): chunks of `CHUNK` bytes fit one receive.
const RECV: usize = 64;
/// A chunk one armed receive takes whole.
const CHUNK: usize = RECV - 4;

/// The size of a new stream's first two receives (`URING_EARLY_RECV_SIZE`): a
/// connection's first messages (a `version`, then `wtxidrelay` + `sendaddrv2` +
/// `verack`) are larger than `RECV`.
const EARLY: usize = 256;

/// Blocking client calls never wait longer (a failing test ends instead of hanging).
const LONG: Duration = Duration::from_secs(30);

fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(128 * 1024)
        .make()
        .expect("executor")
}

/// Byte `i` of the test stream (a pattern whose period, 251, divides no read size).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn client(addr: SocketAddr) -> StdStream {
    let s = StdStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_write_timeout(Some(LONG)).unwrap();
    s
}

/// Polls a read once so it arms the stream's receive (the socket is empty: the client
/// waits for our signal), then drops it. The receive stays armed.
async fn arm(stream: &mut TcpStream, size: usize) {
    let mut buf = vec![0u8; size];
    let polled = poll_once(stream.read(&mut buf)).await;
    assert!(polled.is_none(), "a read of an empty socket completed");
}

/// Reads exactly `n` bytes with reads of `size` bytes at most, checking the pattern
/// from `offset`. Returns the new offset.
async fn read_checked(stream: &mut TcpStream, n: usize, size: usize, offset: usize) -> usize {
    let mut got = 0;
    let mut buf = vec![0u8; size];
    while got < n {
        let want = size.min(n - got);
        let r = stream.read(&mut buf[..want]).await.expect("read");
        assert!(r > 0, "end of stream after {got} of {n} bytes");
        for (k, b) in buf[..r].iter().enumerate() {
            assert_eq!(*b, pattern(offset + got + k), "byte {}", offset + got + k);
        }
        got += r;
    }
    offset + n
}

/// Runs `serve` with a listener on 127.0.0.1 on its own thread's executor; returns the
/// listener's address and the thread (joined for what `serve` returns).
fn serve_on_thread<T, F, Fut>(serve: F) -> (SocketAddr, thread::JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await
        })
    });
    (addr_rx.recv().unwrap(), server)
}

/// Runs `serve` on an accepted stream while a client feeds it: each time `serve` sends
/// a round number on its channel (it is waiting, its receive armed), the client writes
/// the next `CHUNK` bytes of the pattern, until `is_last(round)`. Returns what `serve`
/// returns. A server stuck on lost bytes never asks for the next chunk: the end of the
/// stream then fails its read instead of the test hanging.
fn fed_in_chunks<F, Fut>(serve: F, is_last: impl Fn(usize) -> bool) -> usize
where
    F: FnOnce(TcpStream, mpsc::Sender<usize>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = usize> + 'static,
{
    let (go_tx, go_rx) = mpsc::channel::<usize>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        let s = listener.accept().await.unwrap();
        serve(s, go_tx).await
    });
    let mut c = client(addr);
    let mut offset = 0;
    while let Ok(round) = go_rx.recv_timeout(LONG) {
        let chunk: Vec<u8> = (offset..offset + CHUNK).map(pattern).collect();
        c.write_all(&chunk).unwrap();
        offset += CHUNK;
        if is_last(round) {
            break;
        }
    }
    c.shutdown(Shutdown::Write).unwrap();
    server.join().unwrap()
}

#[test]
fn a_receive_larger_than_the_readers_buffer_is_held_and_read_in_order() {
    let consumed = fed_in_chunks(
        |mut s, go_tx| async move {
            let mut offset = 0;
            // Chunks smaller than the receive, read back with buffers smaller than
            // what the receive brought.
            for (round, size) in [1usize, 7, 16, CHUNK - 1, CHUNK].into_iter().enumerate() {
                arm(&mut s, 4096).await;
                go_tx.send(round).unwrap();
                offset = read_checked(&mut s, CHUNK, size, offset).await;
            }
            // One more chunk: peek sees the held bytes first, then read returns them.
            arm(&mut s, 4096).await;
            go_tx.send(99).unwrap();
            let mut first = [0u8; 10];
            assert_eq!(s.read(&mut first).await.unwrap(), 10);
            let mut peeked = [0u8; 50];
            let n = s.peek(&mut peeked).await.unwrap();
            assert!(n > 0);
            for (k, b) in peeked[..n].iter().enumerate() {
                assert_eq!(*b, pattern(offset + 10 + k));
            }
            let mut again = vec![0u8; n];
            s.read_exact(&mut again).await.unwrap();
            assert_eq!(&again[..], &peeked[..n], "read returns what peek showed");
            offset + 10 + n
        },
        |round| round == 99,
    );
    assert!(consumed > 5 * CHUNK + 10);
}

/// The patched stream submits the source of its last completed receive again for the
/// next one (no new source per receive): over many receives, each armed by a read that
/// was dropped and some looked at with `peek` first, every byte arrives once, in order.
#[test]
fn a_receive_armed_again_and_again_carries_every_byte_in_order() {
    const CYCLES: usize = 100;
    let consumed = fed_in_chunks(
        |mut s, go_tx| async move {
            let mut offset = 0;
            for cycle in 0..CYCLES {
                arm(&mut s, 4096).await;
                go_tx.send(cycle).unwrap();
                if cycle % 3 == 0 {
                    let mut peeked = [0u8; 8];
                    let n = s.peek(&mut peeked).await.unwrap();
                    assert!(n > 0, "cycle {cycle}: end of stream");
                    for (k, b) in peeked[..n].iter().enumerate() {
                        assert_eq!(*b, pattern(offset + k), "cycle {cycle}: peeked byte {k}");
                    }
                }
                offset = read_checked(&mut s, CHUNK, 1 + cycle % CHUNK, offset).await;
            }
            offset
        },
        |cycle| cycle + 1 == CYCLES,
    );
    assert_eq!(consumed, CYCLES * CHUNK);
}

#[test]
fn a_completed_receive_not_yet_read_is_what_peek_returns() {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut s = listener.accept().await.unwrap();
            arm(&mut s, 4096).await;
            go_tx.send(()).unwrap();
            // The armed receive takes the bytes; peek must wait for it and show them
            // (a peek of the socket would find it empty and wait for more).
            let mut peeked = [0u8; CHUNK];
            let n = s.peek(&mut peeked).await.unwrap();
            assert_eq!(n, CHUNK);
            let mut read = [0u8; CHUNK];
            s.read_exact(&mut read).await.unwrap();
            assert_eq!(peeked, read);
            read.to_vec()
        })
    });
    let mut c = client(addr_rx.recv().unwrap());
    go_rx.recv().unwrap();
    let sent: Vec<u8> = (0..CHUNK).map(pattern).collect();
    c.write_all(&sent).unwrap();
    // The end right behind the bytes: a peek that missed them sees the end, not a hang.
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), sent);
}

#[test]
fn bulk_data_beyond_the_receive_buffer_arrives_whole_and_in_order() {
    const TOTAL: usize = 1 << 20;
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut s = listener.accept().await.unwrap();
            let end = read_checked(&mut s, TOTAL, 64 * 1024, 0).await;
            // Then the end of the stream.
            let mut buf = [0u8; 16];
            assert_eq!(s.read(&mut buf).await.unwrap(), 0);
            end
        })
    });
    let mut c = client(addr_rx.recv().unwrap());
    let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
    for piece in data.chunks(700) {
        c.write_all(piece).unwrap();
    }
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), TOTAL);
}

#[test]
fn a_remote_closing_mid_message_gives_its_bytes_then_the_end() {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut s = listener.accept().await.unwrap();
            arm(&mut s, 4096).await;
            go_tx.send(()).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            // Reads after the end keep saying so.
            let mut buf = [0u8; 8];
            assert_eq!(s.read(&mut buf).await.unwrap(), 0);
            all
        })
    });
    let mut c = client(addr_rx.recv().unwrap());
    go_rx.recv().unwrap();
    // Half of a 24-byte message header, then the connection closes.
    let half: Vec<u8> = (0..12).map(pattern).collect();
    c.write_all(&half).unwrap();
    drop(c);
    assert_eq!(server.join().unwrap(), half);
}

#[test]
fn a_reset_while_a_receive_is_armed_is_an_error() {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut s = listener.accept().await.unwrap();
            arm(&mut s, 4096).await;
            go_tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            s.read(&mut buf).await.map_err(|e| e.kind())
        })
    });
    let c = socket2::Socket::from(client(addr_rx.recv().unwrap()));
    go_rx.recv().unwrap();
    // Linger zero: close sends a reset.
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    assert_eq!(
        server.join().unwrap(),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

#[test]
fn an_accept_that_waits_and_a_queue_of_connections_are_all_served() {
    const QUEUED: usize = 50;
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (queued_tx, queued_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            // Nothing queued yet: the first accept must wait (the poll path).
            assert!(poll_once(listener.accept()).await.is_none());
            go_tx.send(()).unwrap();
            let mut first = listener.accept().await.unwrap();
            first.write_all(b"1").await.unwrap();
            // Then a queue of connections made before these accepts.
            queued_rx.recv().unwrap();
            let mut served = 1;
            for _ in 0..QUEUED {
                let mut s = listener.accept().await.unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.unwrap();
                s.write_all(&b).await.unwrap();
                served += 1;
            }
            served
        })
    });
    let addr = addr_rx.recv().unwrap();
    go_rx.recv().unwrap();
    let mut first = client(addr);
    let mut b = [0u8; 1];
    first.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"1");
    let mut queued: Vec<StdStream> = (0..QUEUED)
        .map(|i| {
            let mut c = client(addr);
            c.write_all(&[i as u8]).unwrap();
            c
        })
        .collect();
    queued_tx.send(()).unwrap();
    for (i, c) in queued.iter_mut().enumerate() {
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i as u8);
    }
    assert_eq!(server.join().unwrap(), QUEUED + 1);
}

#[test]
fn many_streams_echo_small_messages_through_armed_receives() {
    const STREAMS: usize = 200;
    const ROUNDS: usize = 20;
    const SIZE: usize = 32;
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        executor().run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut tasks = Vec::new();
            for _ in 0..STREAMS {
                let mut s = listener.accept().await.unwrap();
                tasks.push(glommio::spawn_local(async move {
                    let mut echoed = 0;
                    let mut msg = [0u8; SIZE];
                    while s.read_exact(&mut msg).await.is_ok() {
                        s.write_all(&msg).await.unwrap();
                        echoed += 1;
                    }
                    echoed
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await;
            }
            total
        })
    });
    let addr = addr_rx.recv().unwrap();
    let mut clients: Vec<StdStream> = (0..STREAMS).map(|_| client(addr)).collect();
    for round in 0..ROUNDS {
        for (i, c) in clients.iter_mut().enumerate() {
            let msg: Vec<u8> = (0..SIZE).map(|k| pattern(i + round + k)).collect();
            c.write_all(&msg).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let mut back = [0u8; SIZE];
            c.read_exact(&mut back).unwrap();
            let msg: Vec<u8> = (0..SIZE).map(|k| pattern(i + round + k)).collect();
            assert_eq!(&back[..], &msg[..], "stream {i}, round {round}");
        }
    }
    drop(clients);
    assert_eq!(server.join().unwrap(), STREAMS * ROUNDS);
}

/// A new stream's first read arms a receive without trying the socket (its bytes were
/// seldom there yet), and its first two receives take a `version`-sized message
/// whole: one read each, where 64-byte receives returned a part and left the rest to
/// a `recv`. Then the receives are `RECV` bytes again, and the bytes stay in order.
#[test]
fn a_new_streams_first_two_messages_come_in_one_read_each() {
    const VERSION: usize = 150;
    const VERACK_BATCH: usize = 72;
    // Both larger than a small receive, neither larger than an early one.
    const _: () = assert!(VERSION > RECV && VERACK_BATCH > RECV && VERSION <= EARLY);
    let (go_tx, go_rx) = mpsc::channel::<usize>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        let mut s = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = 0;
        let mut reads = Vec::new();
        // The first read is armed before the bytes are sent; the second receive
        // is armed by the first's completion (it took less than it asked for).
        for (round, n) in [VERSION, VERACK_BATCH].into_iter().enumerate() {
            if round == 0 {
                arm(&mut s, buf.len()).await;
            }
            go_tx.send(n).unwrap();
            let r = s.read(&mut buf).await.expect("read");
            for (k, b) in buf[..r].iter().enumerate() {
                assert_eq!(*b, pattern(offset + k), "byte {}", offset + k);
            }
            offset += r;
            reads.push(r);
            // The rest, if the read returned a part.
            offset = read_checked(&mut s, n - r, 4096, offset).await;
        }
        // Later messages: larger than the small receive, whole and in order.
        for _ in 0..3 {
            go_tx.send(EARLY + 100).unwrap();
            offset = read_checked(&mut s, EARLY + 100, 64 * 1024, offset).await;
        }
        go_tx.send(0).unwrap();
        (reads, offset)
    });
    let mut c = client(addr);
    let mut offset = 0;
    while let Ok(n) = go_rx.recv_timeout(LONG) {
        if n == 0 {
            break;
        }
        let chunk: Vec<u8> = (offset..offset + n).map(pattern).collect();
        c.write_all(&chunk).unwrap();
        offset += n;
    }
    let (reads, consumed) = server.join().unwrap();
    assert_eq!(
        reads,
        vec![VERSION, VERACK_BATCH],
        "each message in one read"
    );
    assert_eq!(consumed, VERSION + VERACK_BATCH + 3 * (EARLY + 100));
}

/// A stream whose first bytes are already there when it is accepted reads them at its
/// first read (through the receive it arms untried, not a `recv` of its own).
#[test]
fn bytes_sent_before_the_accept_are_the_first_read() {
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        // Accept only once the client's bytes are in the socket.
        sent_rx.recv_timeout(LONG).unwrap();
        let mut s = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let r = s.read(&mut buf).await.expect("read");
        buf.truncate(r);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        buf.extend_from_slice(&rest);
        (r, buf)
    });
    let mut c = client(addr);
    let sent: Vec<u8> = (0..200).map(pattern).collect();
    c.write_all(&sent).unwrap();
    sent_tx.send(()).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (first, got) = server.join().unwrap();
    assert_eq!(first, 200, "the first read took the whole message");
    assert_eq!(got, sent);
}

// Multishot receives (glommio patch 16): a stream keeps one receive armed whose
// completions bring bytes in buffers of the executor's provided-buffer ring (2,048 of
// 512 bytes); a stream holding 4 completions unread has its receive cancelled, and one
// that finds the ring empty falls back to a `recv` and arms again. These tests hold for
// single-shot receives too (stock glommio, or `PEERWIRE_RECV_SINGLESHOT=1`).

/// The patched ring's buffer size: messages below, at and above it.
const RING_BUF: usize = 512;

/// Waits without blocking the executor (its other tasks and completions go on) until
/// `flag` is set by the client thread.
async fn until_set(flag: &std::sync::atomic::AtomicBool) {
    let start = std::time::Instant::now();
    while !flag.load(std::sync::atomic::Ordering::Acquire) {
        assert!(start.elapsed() < LONG, "the client never finished");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Byte `k` of stream `i`'s pattern (streams differ, so bytes crossing streams show).
fn pattern_of(i: usize, k: usize) -> u8 {
    pattern(i * 7 + k)
}

/// Reads `n` bytes of stream `i`'s pattern from offset 0, then the end of the stream.
async fn read_all_of(s: &mut TcpStream, i: usize, n: usize) {
    let mut buf = vec![0u8; 1000];
    let mut got = 0;
    while got < n {
        let r = s.read(&mut buf).await.expect("read");
        assert!(r > 0, "stream {i}: end after {got} of {n} bytes");
        for (k, b) in buf[..r].iter().enumerate() {
            assert_eq!(*b, pattern_of(i, got + k), "stream {i}: byte {}", got + k);
        }
        got += r;
    }
    assert_eq!(s.read(&mut buf).await.unwrap(), 0, "stream {i}: the end");
}

/// Echoes `rounds` messages of 32 bytes between a client and a new stream of `listener`
/// (both sides on this thread: the client is a blocking socket driven in steps).
async fn echo_rounds(listener: &TcpListener, rounds: usize) {
    let addr = listener.local_addr().unwrap();
    let c = thread::spawn(move || {
        let mut c = client(addr);
        for r in 0..rounds {
            let msg: Vec<u8> = (0..32).map(|k| pattern(r + k)).collect();
            c.write_all(&msg).unwrap();
            let mut back = [0u8; 32];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back[..], &msg[..], "echo round {r}");
        }
    });
    let mut s = listener.accept().await.unwrap();
    let mut msg = [0u8; 32];
    for _ in 0..rounds {
        s.read_exact(&mut msg).await.unwrap();
        s.write_all(&msg).await.unwrap();
    }
    // The client thread checks and ends; joining it here would block the executor
    // only after every round was served.
    c.join().unwrap();
}

#[test]
fn messages_of_every_size_arrive_whole_and_in_order_through_an_armed_receive() {
    const SIZES: [usize; 10] = [1, 31, 200, 511, 512, 513, 1500, 5000, 24, 70_000];
    const READS: [usize; 9] = [1, 3, 24, 100, 511, 512, 513, 4096, 65_536];
    const REPEAT: usize = 12;
    let total: usize = SIZES.iter().sum::<usize>() * REPEAT;
    let (addr, server) = serve_on_thread(move |listener| async move {
        let mut s = listener.accept().await.unwrap();
        let mut offset = 0;
        let mut i = 0;
        while offset < total {
            let size = READS[i % READS.len()].min(total - offset);
            offset = read_checked(&mut s, size, size, offset).await;
            i += 1;
        }
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        offset
    });
    let mut c = client(addr);
    let mut offset = 0;
    for _ in 0..REPEAT {
        for size in SIZES {
            let msg: Vec<u8> = (offset..offset + size).map(pattern).collect();
            c.write_all(&msg).unwrap();
            offset += size;
        }
    }
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), total);
}

/// A reader that stops reading (peer-runtime does under backpressure) while its peer
/// sends many small segments: the executor serves another stream meanwhile, and when
/// the reader resumes it gets every byte in order, then the end the peer sent last.
#[test]
fn a_reader_that_pauses_gets_every_byte_in_order_when_it_resumes() {
    const TOTAL: usize = 64 * 1024;
    const SEGMENT: usize = 100;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent_c = sent.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        let mut a = listener.accept().await.unwrap();
        arm(&mut a, 4096).await;
        go_tx.send(()).unwrap();
        // Paused: no read of `a` until its peer sent everything and closed.
        until_set(&sent_c).await;
        echo_rounds(&listener, 50).await;
        read_all_of(&mut a, 0, TOTAL).await;
        TOTAL
    });
    let mut c = client(addr);
    go_rx.recv_timeout(LONG).unwrap();
    let data: Vec<u8> = (0..TOTAL).map(|k| pattern_of(0, k)).collect();
    for piece in data.chunks(SEGMENT) {
        c.write_all(piece).unwrap();
    }
    c.shutdown(Shutdown::Write).unwrap();
    sent.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(server.join().unwrap(), TOTAL);
}

/// The hostile case at the socket layer: peers that send while their readers are
/// paused (peer-runtime pauses reading under backpressure) hold at most ~4 ring
/// buffers each before their receives are cancelled, so they cannot stall the rest.
/// More paused streams holding unread completions than the ring has buffers (1,000
/// streams x up to 4 held > 2,048): a stream that finds the ring empty still receives (its
/// receive ends with `ENOBUFS`, it reads the socket and arms again), another stream is
/// served meanwhile, and every paused stream then reads all its bytes in order.
#[test]
fn paused_streams_exhausting_the_receive_ring_stall_no_stream_and_lose_no_byte() {
    const STREAMS: usize = 1000;
    const WRITES: usize = 6;
    const WRITE: usize = 300;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent_c = sent.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        let mut streams = Vec::new();
        for _ in 0..STREAMS {
            let mut s = listener.accept().await.unwrap();
            arm(&mut s, 4096).await;
            streams.push(s);
        }
        go_tx.send(()).unwrap();
        until_set(&sent_c).await;
        echo_rounds(&listener, 50).await;
        for (i, s) in streams.iter_mut().enumerate() {
            read_all_of(s, i, WRITES * WRITE).await;
        }
        STREAMS
    });
    let mut clients: Vec<StdStream> = (0..STREAMS).map(|_| client(addr)).collect();
    go_rx.recv_timeout(LONG).unwrap();
    for w in 0..WRITES {
        for (i, c) in clients.iter_mut().enumerate() {
            let piece: Vec<u8> = (w * WRITE..(w + 1) * WRITE)
                .map(|k| pattern_of(i, k))
                .collect();
            c.write_all(&piece).unwrap();
        }
    }
    for c in &clients {
        c.shutdown(Shutdown::Write).unwrap();
    }
    sent.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(server.join().unwrap(), STREAMS);
}

/// Streams dropped with their receive armed, or holding completions nobody read (the
/// kernel may still be writing into the ring when the drop cancels the receive): the
/// ring's buffers come back and later streams are served, byte for byte.
#[test]
fn streams_dropped_while_their_receive_is_armed_or_holds_bytes_leave_the_rest_working() {
    const DROPPED: usize = 300;
    const SENT: usize = 2 * RING_BUF + 100;
    let (go_tx, go_rx) = mpsc::channel::<usize>();
    let (next_tx, next_rx) = mpsc::channel::<()>();
    let (addr, server) = serve_on_thread(move |listener| async move {
        for i in 0..DROPPED {
            let mut s = listener.accept().await.unwrap();
            arm(&mut s, 4096).await;
            go_tx.send(i).unwrap();
            if i % 2 == 1 {
                // Wait for a completion to hold bytes, then drop them unread.
                let mut peeked = [0u8; 8];
                let n = s.peek(&mut peeked).await.unwrap();
                assert!(n > 0);
                assert_eq!(peeked[0], pattern_of(i, 0));
            }
            drop(s);
            next_rx.recv_timeout(LONG).unwrap();
        }
        go_tx.send(usize::MAX).unwrap();
        let mut s = listener.accept().await.unwrap();
        read_all_of(&mut s, DROPPED, 20 * SENT).await;
        echo_rounds(&listener, 20).await;
        DROPPED
    });
    loop {
        let mut c = client(addr);
        let i = go_rx.recv_timeout(LONG).unwrap();
        if i == usize::MAX {
            let data: Vec<u8> = (0..20 * SENT).map(|k| pattern_of(DROPPED, k)).collect();
            for piece in data.chunks(SENT) {
                c.write_all(piece).unwrap();
            }
            c.shutdown(Shutdown::Write).unwrap();
            break;
        }
        let data: Vec<u8> = (0..SENT).map(|k| pattern_of(i, k)).collect();
        // The server may already have closed: a failed write is fine here.
        let _ = c.write_all(&data);
        next_tx.send(()).unwrap();
    }
    assert_eq!(server.join().unwrap(), DROPPED);
}
