//! Backpressure on tokio (Core's `fPauseSend`, `NodeBuilder::send_pause_bytes`), over
//! loopback, as peer-runtime's `tests/backpressure.rs` checks it on glommio.
//!
//! The remote is the same raw `std::net::TcpStream` peer-runtime's tests use: it
//! completes a handshake and then reads only when a test says so. A remote that asks
//! and never reads is the attack. peer-tokio has no process-wide memory budget (see
//! `NodeBuilder::send_pause_bytes`); what it bounds is each peer's output, tested here.
//! Nothing asserts on timing; waits are bounded only so a broken build cannot hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use peer_tokio::{Node, NodeBuilder, PeerHandle, DEFAULT_SEND_PAUSE_BYTES};
use wire_codec::message::ServiceFlags;
use wire_codec::{Command, Message, Network};

#[path = "../../peer-runtime/tests/support/raw.rs"]
mod raw;
use raw::Raw;

const WAIT: Duration = Duration::from_secs(60);
/// What the server answers to every `getaddr`.
const ANSWER: usize = 16 * 1024;
const ANSWER_WIRE: usize = 24 + ANSWER;

/// Answers every `getaddr` with 16 KiB and records how the peer ended.
struct Answering {
    answered: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<DisconnectReason>>>,
}

impl Listener for Answering {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        self.answered.fetch_add(1, Ordering::SeqCst);
        peer.queue_message(
            Message::Unknown {
                command: Command::from_static("answer"),
                payload: Bytes::from(vec![0xa5; ANSWER]),
            },
            None,
        );
    }
    fn on_disconnect(&mut self, _peer: &mut Peer, reason: &DisconnectReason) {
        self.ended.lock().unwrap().push(reason.clone());
    }
}

struct Server {
    rt: tokio::runtime::Runtime,
    node: Node,
    addr: SocketAddr,
    answered: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<DisconnectReason>>>,
}

fn server(pause: Option<usize>) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let (a, e) = (answered.clone(), ended.clone());
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    let mut builder = NodeBuilder::with_config(cfg).listener_factory(move |_| {
        Box::new(Answering {
            answered: a.clone(),
            ended: e.clone(),
        })
    });
    if let Some(p) = pause {
        builder = builder.send_pause_bytes(p);
    }
    let node = builder.build().unwrap();
    let addr = rt
        .block_on(node.listen("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    Server {
        rt,
        node,
        addr,
        answered,
        ended,
    }
}

impl Server {
    fn handle(&self, client: SocketAddr) -> PeerHandle {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(p) = self.node.peers().into_iter().find(|p| p.addr() == client) {
                return p;
            }
            assert!(Instant::now() < deadline, "peer never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Encoded bytes waiting in the server's peer for `h`.
    fn queued(&self, h: &PeerHandle) -> usize {
        self.rt
            .block_on(h.with_peer(|p, _| p.queued_bytes()))
            .expect("peer alive")
    }

    /// Waits until the server has stopped answering with output still queued (a full
    /// socket can take a while to refuse more); returns answers and bytes queued.
    fn settle(&self, h: &PeerHandle) -> (usize, usize) {
        let deadline = Instant::now() + WAIT;
        let mut last = usize::MAX;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.answered.load(Ordering::SeqCst);
            let queued = self.queued(h);
            if now == last && queued > 0 {
                return (now, queued);
            }
            last = now;
            assert!(
                Instant::now() < deadline,
                "the server never stopped answering"
            );
        }
    }

    fn shutdown(self) {
        self.rt.block_on(self.node.shutdown());
    }
}

/// Reads until `n` answers arrived.
fn read_answers(c: &mut Raw, n: usize) {
    let mut got = 0;
    while got < n {
        let (cmd, len) = c.recv().expect("server closed");
        if cmd.as_str() == "answer" {
            assert_eq!(len, ANSWER);
            got += 1;
        }
    }
}

/// A remote that asks and never reads is held at the pause mark plus one message: the
/// server stops reading and processing its requests, and resumes by itself —
/// answering every request — once the remote reads.
#[test]
fn a_never_reading_peer_is_held_at_the_mark_and_resumes_when_it_reads() {
    const PAUSE: usize = 64 * 1024;
    const ASKED: usize = 2_000;
    let srv = server(Some(PAUSE));
    let mut c = Raw::connect(srv.addr);
    let h = srv.handle(c.local());
    c.flood_getaddr(ASKED);
    let (answered, queued) = srv.settle(&h);
    println!(
        "never-reader: {answered} of {ASKED} requests answered, {queued} bytes queued (mark {PAUSE})"
    );
    assert!(
        answered < ASKED,
        "every request was processed for a peer that reads nothing"
    );
    assert!(
        (PAUSE..PAUSE + ANSWER_WIRE).contains(&queued),
        "{queued} bytes queued: not held at the mark {PAUSE} + one message"
    );
    assert!(h.connected());
    read_answers(&mut c, ASKED);
    assert_eq!(srv.answered.load(Ordering::SeqCst), ASKED);
    assert!(srv.ended.lock().unwrap().is_empty());
    srv.shutdown();
}

/// With the default mark (Core's 1,000,000 bytes) a never-reader is held there too —
/// not dropped: 2,000 answers of 16 KiB (33 MB) are more than peer-core's output bound
/// (`Config::max_output_bytes`), which without backpressure ended the peer with
/// `OutputQueueFull`.
#[test]
fn the_default_mark_holds_a_never_reader_under_the_output_bound() {
    const ASKED: usize = 2_000;
    let srv = server(None);
    let mut c = Raw::connect(srv.addr);
    let h = srv.handle(c.local());
    c.flood_getaddr(ASKED);
    let (answered, queued) = srv.settle(&h);
    println!("never-reader, default mark: {answered} of {ASKED} answered, {queued} bytes queued");
    assert!(answered < ASKED);
    assert!(
        (DEFAULT_SEND_PAUSE_BYTES..DEFAULT_SEND_PAUSE_BYTES + ANSWER_WIRE).contains(&queued),
        "{queued} bytes queued"
    );
    assert!(
        queued < Config::new(Network::Regtest).max_output_bytes,
        "held under the bound that disconnects"
    );
    assert!(h.connected(), "{:?}", srv.ended.lock().unwrap());
    read_answers(&mut c, ASKED);
    assert!(srv.ended.lock().unwrap().is_empty());
    srv.shutdown();
}
