//! peer-tokio nodes talking over loopback TCP: the peer-runtime loopback tests that
//! apply to a tokio driver, and both drivers talking to each other.
//!
//! Timeouts are generous and nothing asserts on timing: the tests must pass on a noisy
//! two-core machine.

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use peer_tokio::{Delivery, Direction, Node, NodeBuilder, PeerHandle};
use wire_codec::message::{Ping, ServiceFlags};
use wire_codec::{Message, Network};

const LONG: Duration = Duration::from_secs(30);

fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

fn builder() -> NodeBuilder {
    NodeBuilder::with_config(config())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LONG, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    within(what, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

fn ping(nonce: u64) -> Message {
    Message::Ping(Ping { nonce })
}

#[derive(Default)]
struct PingLog {
    by_peer: Mutex<HashMap<SocketAddr, Vec<u64>>>,
    total: AtomicUsize,
}

struct PingRecorder {
    log: Arc<PingLog>,
}

impl Listener for PingRecorder {
    fn on_ping(&mut self, peer: &mut Peer, msg: Ping) {
        let mut by_peer = self.log.by_peer.lock().unwrap();
        by_peer
            .entry(peer.remote_addr())
            .or_default()
            .push(msg.nonce);
        self.log.total.fetch_add(1, Ordering::SeqCst);
    }
}

async fn server(log: Arc<PingLog>) -> (Node, SocketAddr) {
    let node = builder()
        .listener_factory(move |_| Box::new(PingRecorder { log: log.clone() }))
        .build()
        .unwrap();
    let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (node, addr)
}

async fn handshaken(cli: &Node, addr: SocketAddr) -> PeerHandle {
    let p = within("connect", cli.connect(addr)).await.unwrap();
    within("handshake", p.wait_for_handshake()).await.unwrap();
    p
}

#[test]
fn many_peers_handshake_and_every_notification_resolves_sent() {
    runtime().block_on(async {
        let log = Arc::new(PingLog::default());
        let (srv, addr) = server(log.clone()).await;
        let cli = builder().build().unwrap();
        const PEERS: usize = 200;
        const PER_PEER: u64 = 5;
        let mut peers = Vec::new();
        for _ in 0..PEERS {
            peers.push(within("connect", cli.connect(addr)).await.unwrap());
        }
        for p in &peers {
            assert_eq!(within("handshake", p.wait_for_handshake()).await, Ok(70016));
            assert_eq!(p.direction(), Direction::Outbound);
        }
        wait_until("server handshakes", || srv.stats().handshaken == PEERS).await;
        let notes: Vec<_> = peers
            .iter()
            .flat_map(|p| (0..PER_PEER).map(move |i| p.queue_message(ping(1000 + i))))
            .collect();
        for n in notes {
            assert_eq!(within("notification", n).await, Delivery::Sent);
        }
        let want = PEERS * PER_PEER as usize;
        wait_until("every ping", || log.total.load(Ordering::SeqCst) == want).await;
        {
            let by_peer = log.by_peer.lock().unwrap();
            assert_eq!(by_peer.len(), PEERS);
            for nonces in by_peer.values() {
                assert_eq!(nonces, &(1000..1000 + PER_PEER).collect::<Vec<_>>());
            }
        }
        let s = srv.stats();
        assert_eq!((s.peers, s.inbound), (PEERS, PEERS));
        assert!(s.bytes_in > 0 && s.bytes_out > 0);
        cli.shutdown().await;
        wait_until("server peers to end", || srv.stats().peers == 0).await;
        srv.shutdown().await;
    });
}

#[test]
fn handle_is_usable_from_foreign_threads_and_keeps_per_thread_order() {
    let rt = runtime();
    let log = Arc::new(PingLog::default());
    let (srv, addr) = rt.block_on(server(log.clone()));
    let cli = builder().build().unwrap();
    let peer = rt.block_on(async { handshaken(&cli, addr).await });

    const THREADS: u64 = 4;
    const EACH: u64 = 250;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let h = peer.clone();
            std::thread::spawn(move || {
                let notes: Vec<_> = (0..EACH)
                    .map(|i| h.queue_message(ping((t << 32) | i)))
                    .collect();
                notes
                    .into_iter()
                    .map(|n| n.blocking_wait())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for answer in t.join().unwrap() {
            assert_eq!(answer, Delivery::Sent);
        }
    }
    rt.block_on(async {
        let want = (THREADS * EACH) as usize;
        wait_until("all pings", || log.total.load(Ordering::SeqCst) == want).await;
        let by_peer = log.by_peer.lock().unwrap().clone();
        let nonces = by_peer.values().next().unwrap();
        for t in 0..THREADS {
            let mine: Vec<u64> = nonces
                .iter()
                .filter(|n| *n >> 32 == t)
                .map(|n| n & 0xffff_ffff)
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "thread {t} order");
        }
        let stats = peer.stats_snapshot().await.unwrap();
        assert!(stats.messages_sent >= THREADS * EACH);
        assert_eq!(stats.addr, addr);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn disconnect_from_either_side_ends_both() {
    runtime().block_on(async {
        let (srv, addr) = server(Arc::default()).await;
        let cli = builder().build().unwrap();

        let a = handshaken(&cli, addr).await;
        wait_until("server sees a", || srv.stats().handshaken == 1).await;
        let a_remote = srv.peers().pop().unwrap();
        a.disconnect();
        assert_eq!(
            within("a", a.wait_for_disconnect()).await,
            DisconnectReason::LocalRequest
        );
        assert!(!a.connected());
        assert_eq!(
            within("a remote", a_remote.wait_for_disconnect()).await,
            DisconnectReason::RemoteClosed
        );

        let b = handshaken(&cli, addr).await;
        wait_until("server sees b", || srv.stats().handshaken == 1).await;
        let b_remote = srv.peers().pop().unwrap();
        b_remote.disconnect();
        assert_eq!(
            within("b", b.wait_for_disconnect()).await,
            DisconnectReason::RemoteClosed
        );
        assert_eq!(
            within("b remote", b_remote.wait_for_disconnect()).await,
            DisconnectReason::LocalRequest
        );
        // An ended peer answers at once: messages fail, statistics are the last ones.
        assert_eq!(
            within("failed", b.queue_message(ping(1))).await,
            Delivery::Failed
        );
        let last = b.stats_snapshot().await.unwrap();
        assert!(last.bytes_received > 0);
        wait_until("server empty", || srv.stats().peers == 0).await;
        assert_eq!(srv.stats().disconnects, 2);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn shutdown_answers_every_queued_notification() {
    runtime().block_on(async {
        let (srv, addr) = server(Arc::default()).await;
        let cli = builder().build().unwrap();
        let mut peers = Vec::new();
        for _ in 0..20 {
            peers.push(within("connect", cli.connect(addr)).await.unwrap());
        }
        for p in peers.iter().take(10) {
            within("handshake", p.wait_for_handshake()).await.unwrap();
        }
        let mut notes = Vec::new();
        for p in &peers {
            for i in 0..200 {
                notes.push(p.queue_message(ping(i)));
            }
        }
        cli.shutdown().await;
        let (mut sent, mut failed) = (0, 0);
        for n in notes {
            match within("every notification", n).await {
                Delivery::Sent => sent += 1,
                Delivery::Failed => failed += 1,
            }
        }
        assert_eq!(sent + failed, 20 * 200);
        for p in &peers {
            assert!(!p.connected());
            assert_eq!(p.queue_message(ping(0)).await, Delivery::Failed);
        }
        assert!(matches!(
            cli.connect(addr).await,
            Err(peer_tokio::Error::ShuttingDown)
        ));
        wait_until("server empty", || srv.stats().peers == 0).await;
        srv.shutdown().await;
    });
}

#[test]
fn caller_owned_streams_can_be_handed_over() {
    runtime().block_on(async {
        let log = Arc::new(PingLog::default());
        let (srv, addr) = server(log.clone()).await;
        let cli = builder().build().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let out = cli.add_connection(stream, Direction::Outbound).unwrap();
        assert_eq!(
            within("handshake", out.wait_for_handshake()).await,
            Ok(70016)
        );
        assert_eq!(
            within("ping", out.queue_message(ping(9))).await,
            Delivery::Sent
        );
        wait_until("the ping", || log.total.load(Ordering::SeqCst) == 1).await;
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn connect_failure_is_reported_and_the_peer_limit_holds() {
    runtime().block_on(async {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cli = builder().build().unwrap();
        let err = cli
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap_err();
        assert!(matches!(err, peer_tokio::Error::Connect { .. }), "{err}");

        let (srv, addr) = server(Arc::default()).await;
        let one = builder().max_peers(1).build().unwrap();
        let _first = handshaken(&one, addr).await;
        assert!(matches!(
            one.connect(addr).await,
            Err(peer_tokio::Error::TooManyPeers { limit: 1 })
        ));
        one.shutdown().await;
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

/// Panics on ping nonce 666 (application bug stand-in).
struct Fragile;

impl Listener for Fragile {
    fn on_ping(&mut self, _peer: &mut Peer, msg: Ping) {
        assert_ne!(msg.nonce, 666, "listener bug");
    }
}

#[test]
fn a_panicking_listener_ends_only_its_peer() {
    runtime().block_on(async {
        let srv = builder()
            .listener_factory(|_| Box::new(Fragile))
            .build()
            .unwrap();
        let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cli = builder().build().unwrap();
        let a = handshaken(&cli, addr).await;
        let b = handshaken(&cli, addr).await;
        wait_until("server handshakes", || srv.stats().handshaken == 2).await;
        let a_local = a.local_addr().unwrap();
        let a_remote = srv
            .peers()
            .into_iter()
            .find(|p| p.addr() == a_local)
            .unwrap();
        a.queue_message_detached(ping(666));
        match within("a remote", a_remote.wait_for_disconnect()).await {
            DisconnectReason::ApplicationPanicked { what, message } => {
                assert_eq!(what, "listener");
                assert!(message.contains("listener bug"), "{message}");
            }
            other => panic!("unexpected end: {other:?}"),
        }
        assert_eq!(
            within("a", a.wait_for_disconnect()).await,
            DisconnectReason::RemoteClosed
        );
        assert_eq!(within("b", b.queue_message(ping(1))).await, Delivery::Sent);
        assert!(b.connected());
        assert_eq!(srv.stats().peers, 1);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

struct TokenEcho {
    sent: Arc<Mutex<Vec<u64>>>,
}

impl Listener for TokenEcho {
    fn on_ping(&mut self, peer: &mut Peer, msg: Ping) {
        peer.queue_message(ping(msg.nonce), Some(msg.nonce));
    }
    fn on_sent(&mut self, _peer: &mut Peer, token: u64) {
        self.sent.lock().unwrap().push(token);
    }
    fn on_failed(&mut self, _peer: &mut Peer, token: u64) {
        self.sent.lock().unwrap().push(u64::MAX - token);
    }
}

#[test]
fn tokens_queued_by_a_listener_come_back_to_the_listener() {
    runtime().block_on(async {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s = sent.clone();
        let srv = builder()
            .listener_factory(move |_| Box::new(TokenEcho { sent: s.clone() }))
            .build()
            .unwrap();
        let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cli = builder().build().unwrap();
        let p = handshaken(&cli, addr).await;
        for nonce in [0u64, 1, 2] {
            assert_eq!(
                within("ping", p.queue_message(ping(nonce))).await,
                Delivery::Sent
            );
        }
        wait_until("listener tokens", || sent.lock().unwrap().len() == 3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut got = sent.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2]);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn a_panicking_listener_factory_ends_only_that_peer() {
    runtime().block_on(async {
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let srv = builder()
            .listener_factory(move |_| {
                if m.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                    panic!("factory bug");
                }
                Box::new(Fragile)
            })
            .build()
            .unwrap();
        let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cli = builder().build().unwrap();
        let good = handshaken(&cli, addr).await;
        wait_until("the first server peer", || srv.stats().handshaken == 1).await;
        let bad = within("connect", cli.connect(addr)).await.unwrap();
        assert_eq!(
            within("bad", bad.wait_for_disconnect()).await,
            DisconnectReason::RemoteClosed
        );
        wait_until("the server to drop the peer", || srv.stats().peers == 1).await;
        assert_eq!(made.load(Ordering::SeqCst), 2);
        assert_eq!(
            within("good", good.queue_message(ping(1))).await,
            Delivery::Sent
        );
        let third = handshaken(&cli, addr).await;
        assert!(good.connected() && third.connected());

        // Outbound: the handle reports why.
        let broken = builder()
            .listener_factory(|_| panic!("outbound factory bug"))
            .build()
            .unwrap();
        let p = within("connect", broken.connect(addr)).await.unwrap();
        match within("end", p.wait_for_disconnect()).await {
            DisconnectReason::ApplicationPanicked { what, message } => {
                assert_eq!(what, "listener factory");
                assert!(message.contains("outbound factory bug"), "{message}");
            }
            other => panic!("unexpected end: {other:?}"),
        }
        broken.shutdown().await;
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn connected_is_false_as_soon_as_disconnect_is_called() {
    runtime().block_on(async {
        let (srv, addr) = server(Arc::default()).await;
        let cli = builder().build().unwrap();
        let p = handshaken(&cli, addr).await;
        assert!(p.connected() && p.handshake_complete());
        p.disconnect();
        assert!(!p.connected());
        assert!(!p.handshake_complete());
        assert_eq!(
            within("end", p.wait_for_disconnect()).await,
            DisconnectReason::LocalRequest
        );
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

/// The same sans-IO core on two runtimes: a tokio node and a glommio (peer-runtime) node
/// handshake and exchange pings in both directions.
#[test]
fn tokio_and_glommio_peers_talk_to_each_other() {
    let log = Arc::new(PingLog::default());
    let l = log.clone();
    let glommio = peer_runtime::Runtime::builder(Network::Regtest)
        .configure(|c| *c = config())
        .executors(1)
        .io_memory(128 * 1024)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |_| Box::new(PingRecorder { log: l.clone() }) as Box<dyn Listener>)
        .start()
        .unwrap();
    let glommio_addr = glommio.local_addr().unwrap();
    let rt = runtime();
    let tokio_log = Arc::new(PingLog::default());
    let (tokio_srv, tokio_addr) = rt.block_on(server(tokio_log.clone()));
    let cli = builder().build().unwrap();
    rt.block_on(async {
        // tokio -> glommio
        let p = handshaken(&cli, glommio_addr).await;
        assert_eq!(
            within("ping", p.queue_message(ping(5))).await,
            Delivery::Sent
        );
        wait_until("glommio sees the ping", || {
            log.total.load(Ordering::SeqCst) == 1
        })
        .await;
    });
    // glommio -> tokio
    let g = glommio
        .connect(tokio_addr)
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert_eq!(g.wait_for_handshake_timeout(LONG).unwrap(), Ok(70016));
    assert_eq!(
        g.queue_message(ping(6)).wait_timeout(LONG).ok(),
        Some(peer_runtime::Delivery::Sent)
    );
    rt.block_on(async {
        wait_until("tokio sees the ping", || {
            tokio_log.total.load(Ordering::SeqCst) == 1
        })
        .await;
        cli.shutdown().await;
        tokio_srv.shutdown().await;
    });
    glommio.shutdown();
}

/// Blocks each server-side peer received, as raw payload bytes.
#[derive(Default)]
struct BlockLog {
    raw: Mutex<Vec<(SocketAddr, bytes::Bytes)>>,
}

struct BlockRecorder {
    log: Arc<BlockLog>,
}

impl Listener for BlockRecorder {
    fn on_block(&mut self, peer: &mut Peer, _msg: wire_codec::message::Block, raw: bytes::Bytes) {
        self.log.raw.lock().unwrap().push((peer.remote_addr(), raw));
    }
}

/// A block of about `size` bytes: one transaction with a large output script.
fn big_block(size: usize) -> Message {
    use wire_codec::message::{Block, BlockHeader, OutPoint, Transaction, TxIn, TxOut};
    let tx = Transaction::build(
        2,
        &[TxIn {
            prevout: OutPoint {
                txid: wire_codec::Hash256([0xbb; 32]),
                vout: 1,
            },
            script_sig: bytes::Bytes::new(),
            sequence: u32::MAX,
            witness: vec![bytes::Bytes::from_static(&[1, 2, 3])],
        }],
        &[TxOut {
            value: 5_000,
            script_pubkey: bytes::Bytes::from((0..size).map(|i| i as u8).collect::<Vec<_>>()),
        }],
        0,
    );
    let header = BlockHeader {
        version: 4,
        prev_block: wire_codec::Hash256::ZERO,
        merkle_root: wire_codec::Hash256::ZERO,
        claim_trie: None,
        time: 0,
        bits: 0x207fffff,
        nonce: 0,
    };
    Message::Block(Box::new(Block::new(header, vec![tx])))
}

/// A 4 MB block encoded once (`SharedFrame`) and queued to several peers between
/// small messages goes out with vectored writes and arrives byte-exact at each; every
/// notification answers Sent.
#[test]
fn a_4mb_block_queued_as_one_frame_to_several_peers_arrives_byte_exact() {
    runtime().block_on(async {
        let log = Arc::new(BlockLog::default());
        let l = log.clone();
        let srv = builder()
            .listener_factory(move |_| Box::new(BlockRecorder { log: l.clone() }))
            .build()
            .unwrap();
        let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cli = builder().build().unwrap();
        let mut peers = Vec::new();
        for _ in 0..4 {
            peers.push(handshaken(&cli, addr).await);
        }
        let frame = peer_core::SharedFrame::new(big_block(3_990_000), Network::Regtest).unwrap();
        let mut notes = Vec::new();
        for (i, p) in peers.iter().enumerate() {
            notes.push(p.queue_message(ping(i as u64 + 1)));
            notes.push(p.queue_frame(frame.clone()));
            notes.push(p.queue_message(ping(100 + i as u64)));
        }
        for n in notes {
            assert_eq!(within("notification", n).await, Delivery::Sent);
        }
        wait_until("every block", || {
            log.raw.lock().unwrap().len() == peers.len()
        })
        .await;
        {
            let raw = log.raw.lock().unwrap();
            let payload = &frame.bytes()[wire_codec::HEADER_LEN..];
            for (from, bytes) in raw.iter() {
                assert!(&bytes[..] == payload, "block from {from} differs");
            }
            let mut from: Vec<SocketAddr> = raw.iter().map(|(a, _)| *a).collect();
            from.sort();
            from.dedup();
            assert_eq!(from.len(), peers.len(), "one block per peer");
        }
        cli.shutdown().await;
        srv.shutdown().await;
    });
}
