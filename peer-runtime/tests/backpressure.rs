//! Backpressure, pacing and the memory budget, against a real runtime over loopback.
//!
//! The remotes are plain `std::net::TcpStream`s that complete a handshake and then read
//! only when a test says so: a remote that never reads is the attack; one that reads
//! slowly is a healthy peer that must get everything queued for it.
//! Nothing asserts on timing; waits are bounded only so a broken build cannot hang.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use peer_runtime::{Delivery, Limits, PeerHandle, Runtime, RuntimeBuilder};
use wire_codec::message::{NetAddress, ServiceFlags, Version};
use wire_codec::{Command, Message, Network};

mod support;
use support::{heap, rss_kib, serial};
#[path = "support/raw.rs"]
mod raw;
use raw::{frame, Raw};

const WAIT: Duration = Duration::from_secs(60);
/// What the server answers to every `getaddr` in these tests.
const ANSWER: usize = 16 * 1024;
const ANSWER_WIRE: usize = 24 + ANSWER;

fn answer() -> Message {
    Message::Unknown {
        command: Command::from_static("answer"),
        payload: Bytes::from(vec![0xa5; ANSWER]),
    }
}

/// Answers every `getaddr` with a 16 KiB message (queued on the peer directly, as a
/// listener does) and records how the peer ended.
struct Answering {
    answered: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<DisconnectReason>>>,
}

impl Listener for Answering {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        self.answered.fetch_add(1, Ordering::SeqCst);
        peer.queue_message(answer(), None);
    }
    fn on_disconnect(&mut self, _peer: &mut Peer, reason: &DisconnectReason) {
        self.ended.lock().unwrap().push(reason.clone());
    }
}

struct Server {
    rt: Runtime,
    answered: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<DisconnectReason>>>,
}

fn server(limits: Limits) -> Server {
    let answered = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let (a, e) = (answered.clone(), ended.clone());
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    let rt = RuntimeBuilder::with_config(cfg)
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .limits(limits)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |_| {
            Box::new(Answering {
                answered: a.clone(),
                ended: e.clone(),
            }) as Box<dyn Listener>
        })
        .start()
        .expect("server starts");
    Server {
        rt,
        answered,
        ended,
    }
}

impl Server {
    fn handle(&self, client: SocketAddr) -> PeerHandle {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(p) = self.rt.peers().into_iter().find(|p| p.addr() == client) {
                return p;
            }
            assert!(Instant::now() < deadline, "peer never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Encoded bytes waiting in the server's peer for `h`.
    fn queued(h: &PeerHandle) -> usize {
        h.with_peer(|p, _| p.queued_bytes())
            .wait()
            .expect("peer alive")
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A remote that asks and never reads is held at the pause mark plus one message:
/// the server stops processing its requests, and resumes by itself — answering every
/// request — once the remote reads.
#[test]
fn a_never_reading_peer_is_held_at_the_mark_and_resumes_when_it_reads() {
    let _g = serial();
    const PAUSE: usize = 64 * 1024;
    let mut limits = Limits::default();
    limits.send_pause_bytes = PAUSE;
    let srv = server(limits);
    let mut c = Raw::connect(srv.rt.local_addr().unwrap());
    let h = srv.handle(c.local());
    const ASKED: usize = 2_000;
    c.flood_getaddr(ASKED);
    // The kernel's buffers take what they can; then the peer's output reaches the mark
    // and the requests wait. Wait until the answering has stopped with output queued
    // (a full socket can take a while to refuse more).
    let mut last = usize::MAX;
    wait_until("the server to stop answering", || {
        std::thread::sleep(Duration::from_millis(500));
        let now = srv.answered.load(Ordering::SeqCst);
        let still = now == last && Server::queued(&h) > 0;
        last = now;
        still
    });
    let answered = srv.answered.load(Ordering::SeqCst);
    let queued = Server::queued(&h);
    println!("never-reader: {answered} of {ASKED} requests answered, {queued} bytes queued (mark {PAUSE})");
    assert!(
        answered < ASKED,
        "every request was processed for a peer that reads nothing"
    );
    assert!(
        (PAUSE..PAUSE + ANSWER_WIRE).contains(&queued),
        "{queued} bytes queued: not held at the mark {PAUSE} + one message"
    );
    assert!(h.connected());
    // The remote reads: reading and processing resume by themselves and every request
    // is answered.
    let mut got = 0;
    while got < ASKED {
        let (cmd, len) = c.recv().expect("server closed");
        if cmd.as_str() == "answer" {
            assert_eq!(len, ANSWER);
            got += 1;
        }
    }
    assert_eq!(srv.answered.load(Ordering::SeqCst), ASKED);
    assert!(srv.ended.lock().unwrap().is_empty());
    srv.rt.shutdown();
}

/// A remote that makes no send progress for `send_progress_timeout` is disconnected
/// with `SendStalled`.
#[test]
fn a_peer_making_no_send_progress_is_disconnected() {
    let _g = serial();
    let mut limits = Limits::default();
    limits.send_pause_bytes = 64 * 1024;
    limits.send_progress_timeout = Duration::from_millis(500);
    let srv = server(limits);
    let mut c = Raw::connect(srv.rt.local_addr().unwrap());
    let h = srv.handle(c.local());
    c.flood_getaddr(2_000);
    let reason = h
        .wait_for_disconnect_timeout(WAIT)
        .expect("the never-reader is dropped");
    assert!(
        matches!(reason, DisconnectReason::SendStalled { waited } if waited >= Duration::from_millis(500)),
        "{reason:?}"
    );
    assert!(reason.is_timeout());
    srv.rt.shutdown();
}

/// An application queueing 16 × 4 MB blocks at once to a remote that reads slowly gets
/// every one delivered (`Sent`, and read in full): queueing paces, it never drops a
/// healthy peer. A second round paces itself with `wait_for_room`.
#[test]
fn sixteen_4mb_blocks_queued_to_a_slow_reader_all_arrive() {
    let _g = serial();
    const BLOCK: usize = 4_000_000;
    let srv = server(Limits::default());
    let mut c = Raw::connect(srv.rt.local_addr().unwrap());
    let h = srv.handle(c.local());
    let blob = |i: u8, len: usize| Message::Unknown {
        command: Command::from_static("blob"),
        payload: Bytes::from(vec![i; len]),
    };
    let block = |i: u8| blob(i, BLOCK);
    const SMALL: usize = 256 * 1024;
    let notes: Vec<_> = (0..16u8).map(|i| h.queue_message(block(i))).collect();
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        while got < 32 {
            let (cmd, len) = c.recv().expect("server closed");
            if cmd.as_str() == "blob" {
                assert_eq!(len, if got < 16 { BLOCK } else { SMALL });
                got += 1;
                // A slow reader.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        c
    });
    for n in notes {
        assert_eq!(n.wait_timeout(WAIT).expect("answered"), Delivery::Sent);
    }
    // Paced by the application: it queues only when there is room, so the peer never
    // holds more than the mark + one message.
    for i in 0..16u8 {
        assert!(h.wait_for_room().wait_timeout(WAIT).expect("room"));
        let queued = Server::queued(&h);
        assert!(queued < Limits::default().send_pause_bytes, "{queued}");
        h.queue_message_detached(blob(i, SMALL));
    }
    let _c = reader.join().expect("reader got all 32 blocks");
    assert!(h.connected());
    assert!(srv.ended.lock().unwrap().is_empty());
    srv.rt.shutdown();
}

/// Past the hard cap, queueing without waiting drops the peer with `OutputQueueFull`
/// and every notification is answered.
#[test]
fn queueing_past_the_hard_cap_disconnects_and_answers_everything() {
    let _g = serial();
    let mut limits = Limits::default();
    limits.max_queued_bytes_per_peer = 8 << 20;
    let srv = server(limits);
    let c = Raw::connect(srv.rt.local_addr().unwrap());
    let h = srv.handle(c.local());
    let notes: Vec<_> = (0..64)
        .map(|_| {
            h.queue_message(Message::Unknown {
                command: Command::from_static("blob"),
                payload: Bytes::from(vec![1u8; 1 << 20]),
            })
        })
        .collect();
    let reason = h.wait_for_disconnect_timeout(WAIT).expect("dropped");
    assert!(
        matches!(reason, DisconnectReason::OutputQueueFull { limit, .. } if limit == 8 << 20),
        "{reason:?}"
    );
    let (mut sent, mut failed) = (0, 0);
    for n in notes {
        match n.wait_timeout(WAIT).expect("every notification answered") {
            Delivery::Sent => sent += 1,
            Delivery::Failed => failed += 1,
        }
    }
    assert_eq!(sent + failed, 64);
    assert!(failed > 0);
    assert!(!h.wait_for_room().wait(), "no room on an ended peer");
    drop(c);
    srv.rt.shutdown();
}

/// A python3 program: opens `n` connections with a 4 KiB receive buffer (so the
/// kernel holds little of what the server sends), writes `hello` (version + verack) on
/// each, prints `ready`, waits for a line, writes `flood` on each, prints `flooded`, and
/// holds the connections without reading until stdin closes.
const NEVER_READERS: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hello, flood = bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(hello)
    socks.append(s)
print("ready", flush=True)
sys.stdin.readline()
for s in socks:
    s.sendall(flood)
print("flooded", flush=True)
sys.stdin.read()
"#;

/// 1,000 remotes that ask and never read: each is held at its mark, and the process
/// budget pauses the heaviest, so memory stays bounded (without either, each would
/// be sent every answer: 1,000 × 400 × 16 KiB = 6.5 GB; with the per-peer mark alone,
/// up to 1 GB).
#[test]
fn a_thousand_never_reading_peers_keep_memory_bounded() {
    use std::io::BufRead;
    use std::process::{Command as Process, Stdio};
    let _g = serial();
    const PEERS: usize = 1_000;
    const BUDGET: usize = 32 << 20;
    let mut limits = Limits::default();
    limits.memory_budget = BUDGET;
    limits.max_inbound_per_netgroup = usize::MAX;
    limits.budget_check_interval = Duration::from_millis(20);
    let srv = server(limits);
    let addr = srv.rt.local_addr().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let mut hello = frame(&Message::Version(Box::new(Version {
        version: 70016,
        services,
        timestamp: 1_700_000_000,
        receiver: NetAddress::unspecified(ServiceFlags::NETWORK),
        sender: NetAddress::unspecified(services),
        nonce: 9,
        user_agent: "/never-reader:0.1/".into(),
        start_height: 0,
        relay: true,
        relay_present: true,
    })));
    hello.extend_from_slice(&frame(&Message::Verack));
    let flood: Vec<u8> = std::iter::repeat(frame(&Message::GetAddr))
        .take(400)
        .flat_map(|f| f.to_vec())
        .collect();
    let mut child = Process::new("python3")
        .args([
            "-c",
            NEVER_READERS,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            &PEERS.to_string(),
            &hex(&hello),
            &hex(&flood),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    wait_until("all peers", || srv.rt.stats().handshaken == PEERS);
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib();
    let idle_heap = heap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "flooded");
    // The kernel keeps taking a little of each socket's output for a long while (its
    // send buffers grow); the process's own memory must stay bounded all along.
    let (mut peak, mut held, mut peak_heap) = (0, 0, 0);
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        peak = peak.max(rss_kib());
        peak_heap = peak_heap.max(heap());
        held = held.max(srv.rt.stats().memory);
    }
    let answered = srv.answered.load(Ordering::SeqCst);
    let grown = peak.saturating_sub(idle);
    println!(
        "{PEERS} never-readers: {answered} of {} requests answered in 8 s; peers' memory at most {} KiB (budget {} KiB); RSS idle {idle} KiB -> peak {peak} KiB (+{grown} KiB); live heap +{} KiB",
        PEERS * 400,
        held / 1024,
        BUDGET / 1024,
        peak_heap.saturating_sub(idle_heap) / 1024
    );
    assert!(answered < PEERS * 400);
    // Within the budget, but for each peer's first answer (its size is not known
    // before it is queued; encoded, plus the message kept for the write report).
    let bound = BUDGET + PEERS * 2 * ANSWER_WIRE;
    assert!(held <= bound, "peers held {held} bytes (bound {bound})");
    // And nothing large grows outside that count: the live heap stays within the same
    // bound (before the count included whole buffers and written messages, +55-76 MiB).
    let heap_grown = peak_heap.saturating_sub(idle_heap);
    assert!(
        heap_grown <= bound,
        "live heap grew {heap_grown} bytes (bound {bound})"
    );
    assert!(grown < 160 * 1024, "RSS grew by {grown} KiB");
    // Paused, not dropped.
    assert_eq!(srv.rt.stats().peers, PEERS);
    drop(stdin);
    let _ = child.wait();
    // (Shutting down ends the rest; how fast 1,000 peers notice their remotes went
    // away depends on this machine's load, not on what is tested here.)
    srv.rt.shutdown();
}
