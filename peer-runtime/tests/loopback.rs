//! Two runtimes in one process, talking over loopback TCP.
//!
//! Timeouts are generous and nothing asserts on timing: the tests must pass on a noisy
//! two-core machine.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use peer_runtime::{
    Delivery, Direction, Limits, Notification, PeerHandle, Runtime, RuntimeBuilder,
};
use wire_codec::message::{Ping, ServiceFlags};
use wire_codec::{Message, Network};

const LONG: Duration = Duration::from_secs(30);

/// A config with its own nonce set: two runtimes in one process are two nodes, not a
/// self-connection.
fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

/// The tests' runtimes: their own nonce set, one executor unless told, little io_uring
/// memory.
fn builder() -> RuntimeBuilder {
    Runtime::builder(Network::Regtest)
        .configure(|c| *c = config())
        .executors(1)
        .io_memory(128 * 1024)
}

/// A one-executor server on a free loopback port whose peers get `factory`'s listeners.
fn server_with<F>(factory: F) -> Runtime
where
    F: Fn(&PeerHandle) -> Box<dyn Listener> + Send + Sync + 'static,
{
    builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(factory)
        .start()
        .expect("server starts")
}

fn server(executors: usize, limits: Limits, pings: Arc<PingLog>) -> Runtime {
    builder()
        .executors(executors)
        .limits(limits)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |_h| {
            Box::new(PingRecorder { log: pings.clone() }) as Box<dyn Listener>
        })
        .start()
        .expect("server starts")
}

fn client(executors: usize) -> Runtime {
    builder()
        .executors(executors)
        .start()
        .expect("client starts")
}

/// Connects `cli` to `addr` and waits for the handshake to complete.
fn handshaken(cli: &Runtime, addr: SocketAddr) -> PeerHandle {
    let p = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    p
}

/// Every ping nonce each server-side peer received, in order.
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
        self.log
            .by_peer
            .lock()
            .unwrap()
            .entry(peer.remote_addr())
            .or_default()
            .push(msg.nonce);
        self.log.total.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ping(nonce: u64) -> Message {
    Message::Ping(Ping { nonce })
}

#[test]
fn many_peers_handshake_and_every_notification_resolves_sent() {
    let log = Arc::new(PingLog::default());
    let srv = server(2, Limits::default(), log.clone());
    let cli = client(2);
    let addr = srv.local_addr().unwrap();

    const PEERS: usize = 200;
    const PER_PEER: u64 = 5;
    let requests: Vec<_> = (0..PEERS).map(|_| cli.connect(addr)).collect();
    let peers: Vec<PeerHandle> = requests
        .into_iter()
        .map(|r| r.wait_timeout(LONG).expect("answered").expect("connected"))
        .collect();
    // Both executors got outbound peers (round robin).
    assert!(peers.iter().any(|p| p.executor() == 0));
    assert!(peers.iter().any(|p| p.executor() == 1));
    for p in &peers {
        let v = p
            .wait_for_handshake_timeout(LONG)
            .expect("handshake in time")
            .expect("handshake succeeded");
        assert_eq!(v, 70016);
        assert_eq!(p.direction(), Direction::Outbound);
    }
    wait_until("server handshakes", || srv.stats().handshaken == PEERS);

    let notes: Vec<Notification> = peers
        .iter()
        .flat_map(|p| (0..PER_PEER).map(move |i| p.queue_message(ping(1000 + i))))
        .collect();
    for n in notes {
        assert_eq!(n.wait_timeout(LONG).ok(), Some(Delivery::Sent));
    }
    let want = PEERS * PER_PEER as usize;
    wait_until("server to see every ping", || {
        log.total.load(Ordering::SeqCst) == want
    });
    let by_peer = log.by_peer.lock().unwrap();
    assert_eq!(by_peer.len(), PEERS);
    for nonces in by_peer.values() {
        assert_eq!(nonces, &(1000..1000 + PER_PEER).collect::<Vec<_>>());
    }
    drop(by_peer);

    let s = srv.stats();
    assert_eq!(s.peers, PEERS);
    assert_eq!(s.inbound, PEERS);
    assert!(s.bytes_in > 0 && s.bytes_out > 0);
    assert!(s.messages_in >= want as u64);
    // The inbound side was spread over both executors by SO_REUSEPORT (not guaranteed
    // for tiny counts, but 200 connections from distinct ports land on both).
    let mut per_exec = [0usize; 2];
    for p in srv.peers() {
        per_exec[p.executor()] += 1;
    }
    assert_eq!(per_exec.iter().sum::<usize>(), PEERS);

    cli.shutdown();
    wait_until("server peers to end", || srv.stats().peers == 0);
    srv.shutdown();
}

#[test]
fn handle_is_usable_from_foreign_threads_and_keeps_per_thread_order() {
    let log = Arc::new(PingLog::default());
    let srv = server(1, Limits::default(), log.clone());
    let cli = client(1);
    let peer = handshaken(&cli, srv.local_addr().unwrap());

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
                    .map(|n| n.wait_timeout(LONG).ok())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for answer in t.join().unwrap() {
            assert_eq!(answer, Some(Delivery::Sent));
        }
    }
    wait_until("all pings", || {
        log.total.load(Ordering::SeqCst) == (THREADS * EACH) as usize
    });
    let by_peer = log.by_peer.lock().unwrap();
    let nonces = by_peer.values().next().unwrap();
    for t in 0..THREADS {
        let mine: Vec<u64> = nonces
            .iter()
            .filter(|n| *n >> 32 == t)
            .map(|n| n & 0xffff_ffff)
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "thread {t} order");
    }
    drop(by_peer);

    // Statistics through the handle, from this (foreign) thread.
    let stats = peer.stats_snapshot().wait_timeout(LONG).unwrap().unwrap();
    assert!(stats.messages_sent >= THREADS * EACH);
    assert!(stats.bytes_sent > 0);
    assert_eq!(stats.addr, srv.local_addr().unwrap());

    cli.shutdown();
    srv.shutdown();
}

#[test]
fn disconnect_from_either_side_ends_both() {
    let log = Arc::new(PingLog::default());
    let srv = server(1, Limits::default(), log);
    let cli = client(1);
    let addr = srv.local_addr().unwrap();

    // Client side disconnects.
    let a = handshaken(&cli, addr);
    wait_until("server sees a", || srv.stats().handshaken == 1);
    let a_remote = srv.peers().pop().unwrap();
    a.disconnect();
    assert_eq!(
        a.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::LocalRequest)
    );
    assert!(!a.connected());
    assert_eq!(
        a_remote.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::RemoteClosed)
    );

    // Server side disconnects.
    let b = handshaken(&cli, addr);
    wait_until("server sees b", || srv.stats().handshaken == 1);
    let b_remote = srv.peers().pop().unwrap();
    b_remote.disconnect();
    assert_eq!(
        b.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::RemoteClosed)
    );
    assert_eq!(
        b_remote.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::LocalRequest)
    );

    // An ended peer answers at once: messages fail, statistics are the last ones.
    assert_eq!(
        b.queue_message(ping(1)).wait_timeout(LONG).ok(),
        Some(Delivery::Failed)
    );
    let last = b.stats_snapshot().wait_timeout(LONG).unwrap().unwrap();
    assert!(last.bytes_received > 0);
    wait_until("server empty", || srv.stats().peers == 0);
    assert_eq!(srv.stats().disconnects, 2);

    cli.shutdown();
    srv.shutdown();
}

#[test]
fn shutdown_answers_every_queued_notification() {
    let log = Arc::new(PingLog::default());
    let srv = server(1, Limits::default(), log);
    let cli = client(2);
    let addr = srv.local_addr().unwrap();
    let peers: Vec<PeerHandle> = (0..20)
        .map(|_| cli.connect(addr))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|r| r.wait_timeout(LONG).unwrap().unwrap())
        .collect();
    // Half of them handshaken; the rest may still be negotiating: both kinds must
    // answer everything queued.
    for p in peers.iter().take(10) {
        p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    }
    let mut notes = Vec::new();
    for p in &peers {
        for i in 0..200 {
            notes.push(p.queue_message(ping(i)));
        }
    }
    cli.shutdown();
    let (mut sent, mut failed) = (0, 0);
    for n in notes {
        match n.wait_timeout(LONG) {
            Ok(Delivery::Sent) => sent += 1,
            Ok(Delivery::Failed) => failed += 1,
            Err(_) => panic!("a notification was never answered"),
        }
    }
    assert_eq!(sent + failed, 20 * 200);
    for p in &peers {
        assert!(!p.connected());
        assert_eq!(p.queue_message(ping(0)).wait(), Delivery::Failed);
    }
    wait_until("server empty", || srv.stats().peers == 0);
    srv.shutdown();
}

#[test]
fn caller_owned_streams_can_be_handed_over() {
    let log = Arc::new(PingLog::default());
    let srv = server(1, Limits::default(), log.clone());
    let cli = client(1);

    // Outbound: the caller dialled.
    let stream = StdStream::connect(srv.local_addr().unwrap()).unwrap();
    let out = cli
        .add_connection(stream, Direction::Outbound)
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    out.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(
        out.queue_message(ping(5)).wait_timeout(LONG).ok(),
        Some(Delivery::Sent)
    );
    wait_until("ping", || log.total.load(Ordering::SeqCst) == 1);

    // Inbound: the caller accepted on its own listener.
    let own = StdListener::bind("127.0.0.1:0").unwrap();
    let dial = cli.connect(own.local_addr().unwrap());
    let (accepted, _) = own.accept().unwrap();
    let inbound = srv
        .add_connection(accepted, Direction::Inbound)
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert!(inbound.is_inbound());
    let dialer = dial.wait_timeout(LONG).unwrap().unwrap();
    assert_eq!(inbound.wait_for_handshake_timeout(LONG), Some(Ok(70016)));
    assert_eq!(dialer.wait_for_handshake_timeout(LONG), Some(Ok(70016)));

    cli.shutdown();
    srv.shutdown();
}

/// A one-executor server that takes at most two inbound peers per IP address.
fn server_with_two_per_ip() -> Runtime {
    let mut limits = Limits::default();
    limits.max_inbound_per_ip = 2;
    server(1, limits, Arc::new(PingLog::default()))
}

#[test]
fn inbound_per_ip_limit_refuses_extra_connections() {
    let srv = server_with_two_per_ip();
    let cli = client(1);
    let addr = srv.local_addr().unwrap();
    let peers: Vec<PeerHandle> = (0..3)
        .map(|_| cli.connect(addr).wait_timeout(LONG).unwrap().unwrap())
        .collect();
    let outcomes: Vec<_> = peers
        .iter()
        .map(|p| p.wait_for_handshake_timeout(LONG).expect("decided"))
        .collect();
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(ok, 2, "{outcomes:?}");
    assert_eq!(srv.stats().refused, 1);
    assert_eq!(srv.stats().peers, 2);

    // A slot freed is a slot available again.
    let i = outcomes.iter().position(|o| o.is_ok()).unwrap();
    peers[i].disconnect();
    wait_until("slot freed", || srv.stats().peers == 1);
    let again = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    assert!(again.wait_for_handshake_timeout(LONG).unwrap().is_ok());

    cli.shutdown();
    srv.shutdown();
}

/// Connections from a chosen local address: the server sees that address (its per-IP
/// limit counts each source apart), and an address the machine lacks is a typed error.
#[test]
fn outbound_peers_connect_from_the_local_address_asked_for() {
    let srv = server_with_two_per_ip();
    let cli = client(2);
    let addr = srv.local_addr().unwrap();
    let from = |last: u8| SocketAddr::from(([127, 0, 0, last], 0));
    let peers: Vec<PeerHandle> = [2, 2, 3, 3]
        .iter()
        .map(|&last| {
            let p = cli
                .connect_from(addr, from(last))
                .wait_timeout(LONG)
                .unwrap()
                .unwrap();
            p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
            assert_eq!(p.local_addr().unwrap().ip(), from(last).ip());
            p
        })
        .collect();
    // Two sources, two peers each: within the per-IP limit of 2.
    wait_until("four inbound peers", || srv.stats().peers == 4);
    let mut seen: Vec<_> = srv.peers().iter().map(|p| p.addr()).collect();
    seen.sort();
    let mut ours: Vec<_> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
    ours.sort();
    assert_eq!(seen, ours, "the server sees each peer's chosen source");
    // A third from 127.0.0.2 is over its limit.
    let third = cli
        .connect_from(addr, from(2))
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert!(third.wait_for_handshake_timeout(LONG).unwrap().is_err());
    assert_eq!(srv.stats().refused, 1);

    let err = cli
        .connect_from(addr, SocketAddr::from(([192, 0, 2, 1], 0)))
        .wait_timeout(LONG)
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, peer_runtime::Error::LocalBind { .. }),
        "{err}"
    );
    assert_eq!(cli.stats().connect_failures, 1);
    cli.shutdown();
    srv.shutdown();
}

#[test]
fn connect_failure_is_reported() {
    let cli = client(1);
    // A port nobody listens on: bind, read the port, close.
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = cli
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .wait_timeout(LONG)
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, peer_runtime::Error::Connect { .. }), "{err}");
    assert_eq!(cli.stats().connect_failures, 1);
    cli.shutdown();
}

/// A connect that gets no answer ends with `TimedOut` after `Limits::connect_timeout`.
/// The listener never accepts; once its accept queue is full the kernel drops further
/// SYNs, so a connect hangs as it would towards a black-holed address.
#[test]
fn connect_times_out_when_syns_go_unanswered() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // std listens with a backlog of 128: fill it (and then some) with completed handshakes.
    for _ in 0..400 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let mut limits = Limits::default();
    limits.connect_timeout = Duration::from_millis(300);
    let cli = builder().limits(limits).start().unwrap();
    let started = Instant::now();
    let err = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap_err();
    match &err {
        peer_runtime::Error::Connect { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{err}")
        }
        other => panic!("unexpected error: {other}"),
    }
    // Bounded, not timed: the attempt ended well before the test's own wait.
    assert!(started.elapsed() < LONG, "{:?}", started.elapsed());
    assert_eq!(cli.stats().connect_failures, 1);
    cli.shutdown();
    drop(fillers);
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
    let srv = server_with(|_| Box::new(Fragile) as Box<dyn Listener>);
    let cli = client(1);
    let addr = srv.local_addr().unwrap();
    let a = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    let b = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    for p in [&a, &b] {
        p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    }
    wait_until("server handshakes", || srv.stats().handshaken == 2);
    let a_local = a.local_addr().unwrap();
    let a_remote = srv
        .peers()
        .into_iter()
        .find(|p| p.addr() == a_local)
        .unwrap();

    a.queue_message_detached(ping(666));
    match a_remote.wait_for_disconnect_timeout(LONG) {
        Some(DisconnectReason::ApplicationPanicked { what, message }) => {
            assert_eq!(what, "listener");
            assert!(message.contains("listener bug"), "{message}");
        }
        other => panic!("unexpected end: {other:?}"),
    }
    assert_eq!(
        a.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::RemoteClosed)
    );
    // The executor and its other peer go on.
    assert_eq!(
        b.queue_message(ping(1)).wait_timeout(LONG).ok(),
        Some(Delivery::Sent)
    );
    let stats = b.stats_snapshot().wait_timeout(LONG).unwrap().unwrap();
    assert!(b.connected(), "{stats:?}");
    assert_eq!(srv.stats().peers, 1);
    cli.shutdown();
    srv.shutdown();
}

/// Answers every ping with its own ping queued with a notification token, and records
/// the tokens the runtime hands back through `on_sent` / `on_failed`.
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
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let srv = server_with(move |_| Box::new(TokenEcho { sent: s.clone() }) as Box<dyn Listener>);
    let cli = client(1);
    let p = handshaken(&cli, srv.local_addr().unwrap());
    // Handle notifications (runtime tokens) resolve as before ...
    for nonce in [0u64, 1, 2] {
        assert_eq!(
            p.queue_message(ping(nonce)).wait_timeout(LONG).ok(),
            Some(Delivery::Sent)
        );
    }
    // ... and the listener's own tokens, including ones equal to the runtime's first
    // counters, reach the listener's on_sent exactly once each.
    wait_until("listener tokens", || sent.lock().unwrap().len() == 3);
    std::thread::sleep(Duration::from_millis(50));
    let mut got = sent.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2]);
    cli.shutdown();
    srv.shutdown();
}

/// A listener factory that panics for every second peer it is asked for.
#[test]
fn a_panicking_listener_factory_ends_only_that_peer() {
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let srv = server_with(move |_| {
        if m.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            panic!("factory bug");
        }
        Box::new(Fragile) as Box<dyn Listener>
    });
    let cli = client(1);
    let addr = srv.local_addr().unwrap();
    let good = handshaken(&cli, addr);
    wait_until("the first server peer", || srv.stats().handshaken == 1);
    // The second accepted peer gets the panic: the server ends it with the reason,
    // the client sees the connection close, and the executor goes on.
    let bad = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    assert_eq!(
        bad.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::RemoteClosed)
    );
    wait_until("the server to drop the peer", || srv.stats().peers == 1);
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert_eq!(
        good.queue_message(ping(1)).wait_timeout(LONG).ok(),
        Some(Delivery::Sent)
    );
    // A third connection is served normally.
    let third = handshaken(&cli, addr);
    assert!(good.connected() && third.connected());
    cli.shutdown();
    srv.shutdown();
}

/// A panic in the factory of an outbound peer ends it with the reason the handle reports.
#[test]
fn a_panicking_factory_of_an_outbound_peer_reports_why() {
    let srv = server(1, Limits::default(), Arc::default());
    let cli = builder()
        .listener_factory(|_| panic!("outbound factory bug"))
        .start()
        .unwrap();
    let p = cli
        .connect(srv.local_addr().unwrap())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    match p.wait_for_disconnect_timeout(LONG) {
        Some(DisconnectReason::ApplicationPanicked { what, message }) => {
            assert_eq!(what, "listener factory");
            assert!(message.contains("outbound factory bug"), "{message}");
        }
        other => panic!("unexpected end: {other:?}"),
    }
    assert!(!p.connected());
    cli.shutdown();
    srv.shutdown();
}

/// `connected()` turns false the moment `disconnect()` is called (btcd's `Connected`),
/// not only once the driver has ended the peer.
#[test]
fn connected_is_false_as_soon_as_disconnect_is_called() {
    let srv = server(1, Limits::default(), Arc::default());
    let cli = client(1);
    let p = handshaken(&cli, srv.local_addr().unwrap());
    assert!(p.connected() && p.handshake_complete());
    p.disconnect();
    assert!(!p.connected());
    assert!(!p.handshake_complete());
    assert_eq!(
        p.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::LocalRequest)
    );
    assert!(!p.connected());
    cli.shutdown();
    srv.shutdown();
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

/// A 4 MB block encoded once (`SharedFrame`) and queued to several peers — between
/// small messages, over v1 and over a v2 connection — arrives byte-exact at each, and
/// every notification answers Sent.
#[test]
fn a_4mb_block_queued_as_one_frame_to_several_peers_arrives_byte_exact() {
    let log = Arc::new(BlockLog::default());
    let l = log.clone();
    let srv =
        server_with(move |_h| Box::new(BlockRecorder { log: l.clone() }) as Box<dyn Listener>);
    let cli = client(1);
    let addr = srv.local_addr().unwrap();
    let mut peers: Vec<PeerHandle> = (0..4).map(|_| handshaken(&cli, addr)).collect();
    let v2 = cli.connect_v2(addr).wait_timeout(LONG).unwrap().unwrap();
    v2.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(
        v2.transport(),
        Some(peer_core::transport::TransportVersion::V2)
    );
    peers.push(v2);
    let frame = peer_core::SharedFrame::new(big_block(3_990_000), Network::Regtest).unwrap();
    assert!(frame.len() > 3_990_000);
    let mut notes = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        notes.push(p.queue_message(ping(i as u64 + 1)));
        notes.push(p.queue_frame(frame.clone()));
        notes.push(p.queue_message(ping(100 + i as u64)));
    }
    for n in notes {
        assert_eq!(n.wait_timeout(LONG).ok(), Some(Delivery::Sent));
    }
    wait_until("every block", || {
        log.raw.lock().unwrap().len() == peers.len()
    });
    let raw = log.raw.lock().unwrap();
    let payload = &frame.bytes()[wire_codec::HEADER_LEN..];
    for (from, bytes) in raw.iter() {
        assert!(&bytes[..] == payload, "block from {from} differs");
    }
    let mut from: Vec<SocketAddr> = raw.iter().map(|(a, _)| *a).collect();
    from.sort();
    from.dedup();
    assert_eq!(from.len(), peers.len(), "one block per peer");
    drop(raw);
    cli.shutdown();
    srv.shutdown();
}
