//! BIP324 v2 over loopback: our runtime to itself (v2 both ends), to a v1-only server
//! (one v1 reconnect), a v1 client to a v2-capable server, and our runtime against the
//! `bip324` crate's own async `Protocol` on tokio, as initiator and as responder.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use peer_core::transport::v2_messages::decode_message_type;
use peer_core::transport::TransportVersion;
use peer_core::{Config, Listener, NonceSet, Peer};
use peer_runtime::{Delivery, PeerHandle, Runtime, RuntimeBuilder};
use wire_codec::message::{NetAddress, Ping, ServiceFlags, Version};
use wire_codec::{Command, Context, Message, Network};

const LONG: Duration = Duration::from_secs(30);
const REGTEST: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

fn config(v2: bool) -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c.v2_transport = v2;
    c
}

fn builder(v2: bool) -> RuntimeBuilder {
    Runtime::builder(Network::Regtest)
        .configure(move |c| *c = config(v2))
        .executors(1)
        .io_memory(128 * 1024)
}

#[derive(Default)]
struct Seen {
    handles: Mutex<Vec<PeerHandle>>,
    pings: Mutex<Vec<u64>>,
}

struct Recorder(Arc<Seen>);

impl Listener for Recorder {
    fn on_ping(&mut self, _peer: &mut Peer, msg: Ping) {
        self.0.pings.lock().unwrap().push(msg.nonce);
    }
}

fn server(v2: bool, seen: Arc<Seen>) -> Runtime {
    builder(v2)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |h| {
            seen.handles.lock().unwrap().push(h.clone());
            Box::new(Recorder(seen.clone())) as Box<dyn Listener>
        })
        .start()
        .expect("server starts")
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn v2_to_v2_handshake_messages_and_matching_session_ids() {
    let seen = Arc::new(Seen::default());
    let srv = server(true, seen.clone());
    let cli = builder(true).start().unwrap();
    let p = cli
        .connect_v2(srv.local_addr().unwrap())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(p.transport(), Some(TransportVersion::V2));
    let sent = p.queue_message(Message::Ping(Ping { nonce: 42 }));
    assert!(matches!(sent.wait_timeout(LONG), Ok(Delivery::Sent)));
    wait_until("the ping", || seen.pings.lock().unwrap().contains(&42));
    let server_side = seen.handles.lock().unwrap()[0].clone();
    wait_until("server handshake", || server_side.handshake_complete());
    assert_eq!(server_side.transport(), Some(TransportVersion::V2));
    assert!(p.session_id().is_some());
    assert_eq!(p.session_id(), server_side.session_id());
    let stats = p.stats_snapshot().wait_timeout(LONG).unwrap().unwrap();
    assert_eq!(stats.transport, TransportVersion::V2);
    assert_eq!(stats.session_id, p.session_id());
    // The server advertises NODE_P2P_V2 (config default).
    let remote_services = p
        .with_peer(|peer, _| peer.services())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert!(remote_services.has(ServiceFlags::P2P_V2));
    cli.shutdown();
    srv.shutdown();
}

#[test]
fn v2_to_a_v1_only_server_reconnects_once_with_v1() {
    let seen = Arc::new(Seen::default());
    let srv = server(false, seen.clone());
    let cli = builder(true).start().unwrap();
    let p = cli
        .connect_v2(srv.local_addr().unwrap())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(p.transport(), Some(TransportVersion::V1));
    assert_eq!(p.session_id(), None);
    let sent = p.queue_message(Message::Ping(Ping { nonce: 7 }));
    assert!(matches!(sent.wait_timeout(LONG), Ok(Delivery::Sent)));
    wait_until("the ping", || seen.pings.lock().unwrap().contains(&7));
    // Two connections reached the server: the v2 attempt (dropped at our key: wrong
    // magic for a v1 node) and the v1 one that lasts.
    let handles = seen.handles.lock().unwrap().clone();
    assert_eq!(handles.len(), 2);
    assert!(!handles[0].handshake_complete());
    assert!(!p.connected() || p.handshake_complete());
    cli.shutdown();
    srv.shutdown();
}

/// The v2 attempt is held open (its key read) until a message is queued to it, then
/// dropped: the v1 retry must deliver that message (answered Sent, seen by the
/// server), leave from the same local IP, and the handle must describe the v1
/// connection (its local address, the peer id the peer itself reports).
#[test]
fn a_v1_fallback_carries_queued_messages_and_reports_the_new_connection() {
    use std::io::Read;
    use std::sync::mpsc;
    let seen = Arc::new(Seen::default());
    let srv = server(false, seen.clone());
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_addr = front.local_addr().unwrap();
    let (drop_first, first_may_go) = mpsc::channel::<()>();
    let (conns_tx, conns) = mpsc::channel::<SocketAddr>();
    let (second_tx, second) = mpsc::channel::<std::net::TcpStream>();
    let doorman = std::thread::spawn(move || {
        let (mut first, first_from) = front.accept().unwrap();
        conns_tx.send(first_from).unwrap();
        let mut key = [0u8; 64];
        first.read_exact(&mut key).unwrap();
        first_may_go.recv().unwrap();
        drop(first);
        let (second, second_from) = front.accept().unwrap();
        conns_tx.send(second_from).unwrap();
        second_tx.send(second).unwrap();
    });
    let cli = builder(true).start().unwrap();
    let local: SocketAddr = "127.0.0.3:0".parse().unwrap();
    let opts = peer_runtime::PeerOptions::new().v2(true).local_addr(local);
    let p = cli
        .connect_with_options(front_addr, opts)
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    let first_from = conns.recv_timeout(LONG).unwrap();
    assert_eq!(p.local_addr(), Some(first_from));
    let first_id = p.id();
    let sent = p.queue_message(Message::Ping(Ping { nonce: 11 }));
    // Commands run in order: once this answers, the ping waits in the live v2 attempt.
    let (closed, v2) = p
        .with_peer(|peer, _| (peer.is_closed(), peer.transport_version()))
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert_eq!((closed, v2), (false, TransportVersion::V2));
    drop_first.send(()).unwrap();
    let second_from = conns.recv_timeout(LONG).unwrap();
    srv.add_connection(
        second.recv_timeout(LONG).unwrap(),
        peer_runtime::Direction::Inbound,
    )
    .wait_timeout(LONG)
    .unwrap()
    .unwrap();
    doorman.join().unwrap();

    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(p.transport(), Some(TransportVersion::V1));
    assert!(matches!(sent.wait_timeout(LONG), Ok(Delivery::Sent)));
    wait_until("the ping", || seen.pings.lock().unwrap().contains(&11));
    assert_ne!(second_from, first_from);
    assert_eq!(
        second_from.ip(),
        local.ip(),
        "the retry leaves from the chosen IP"
    );
    assert_eq!(p.local_addr(), Some(second_from));
    let id_inside = p
        .with_peer(|peer, _| peer.id())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert_eq!(p.id(), id_inside);
    assert_eq!(p.id(), first_id, "one peer to the application");
    assert!(cli.peers().iter().any(|h| h.id() == p.id()));
    cli.shutdown();
    srv.shutdown();
}

/// The v2 attempt fails and the v1 redial is refused (nothing listens any more): the
/// message queued to the attempt is answered Failed (never left hanging), and the peer
/// ends once, with the attempt's reason.
#[test]
fn a_refused_v1_retry_fails_the_queued_message_and_ends_the_peer() {
    use std::io::Read;
    use std::sync::mpsc;
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_addr = front.local_addr().unwrap();
    let (drop_first, first_may_go) = mpsc::channel::<()>();
    let doorman = std::thread::spawn(move || {
        let (mut first, _) = front.accept().unwrap();
        let mut key = [0u8; 64];
        first.read_exact(&mut key).unwrap();
        first_may_go.recv().unwrap();
        // Nothing listens from here on: the redial is refused.
        drop(front);
        drop(first);
    });
    let cli = builder(true).start().unwrap();
    let p = cli
        .connect_v2(front_addr)
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    let sent = p.queue_message(Message::Ping(Ping { nonce: 12 }));
    let closed = p
        .with_peer(|peer, _| peer.is_closed())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert!(!closed);
    drop_first.send(()).unwrap();
    doorman.join().unwrap();
    assert!(matches!(sent.wait_timeout(LONG), Ok(Delivery::Failed)));
    assert!(p.wait_for_disconnect_timeout(LONG).is_some());
    assert!(!p.handshake_complete());
    cli.shutdown();
}

#[test]
fn a_v1_client_is_served_v1_by_a_v2_capable_server() {
    let seen = Arc::new(Seen::default());
    let srv = server(true, seen.clone());
    let cli = builder(true).start().unwrap();
    let p = cli
        .connect(srv.local_addr().unwrap())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert_eq!(p.transport(), Some(TransportVersion::V1));
    let server_side = seen.handles.lock().unwrap()[0].clone();
    wait_until("server handshake", || server_side.handshake_complete());
    assert_eq!(server_side.transport(), Some(TransportVersion::V1));
    cli.shutdown();
    srv.shutdown();
}

/// A version message's packet contents in BIP324's long form.
fn version_contents(nonce: u64) -> Vec<u8> {
    let v = Version {
        version: 70016,
        services: ServiceFlags::NETWORK,
        timestamp: 1_700_000_000,
        receiver: NetAddress::unspecified(ServiceFlags::NONE),
        sender: NetAddress::unspecified(ServiceFlags::NONE),
        nonce,
        user_agent: "/bip324-crate-test:0.1/".into(),
        start_height: 0,
        relay: true,
        relay_present: true,
    };
    let mut payload = BytesMut::new();
    Message::Version(Box::new(v))
        .encode_payload(&mut payload, &Context::new(Network::Regtest, 70016))
        .unwrap();
    let mut contents = vec![0u8];
    contents.extend_from_slice(&Command::from_static("version").to_bytes());
    contents.extend_from_slice(&payload);
    contents
}

/// Decodes one genuine packet's contents into a message.
fn message_of(contents: &[u8]) -> Message {
    let (cmd, used) = decode_message_type(contents).expect("named message");
    Message::decode(
        cmd,
        Bytes::copy_from_slice(&contents[used..]),
        &Context::new(Network::Regtest, 70016),
    )
    .unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The crate's async Protocol as initiator against our server: it completes the
/// handshake (with its own garbage and decoys), sends a version, and reads our version
/// and verack back.
#[test]
fn the_bip324_crates_protocol_as_initiator_against_our_server() {
    let seen = Arc::new(Seen::default());
    let srv = server(true, seen.clone());
    let addr: SocketAddr = srv.local_addr().unwrap();
    let commands = tokio_rt().block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut p = bip324::futures::Protocol::new(
            REGTEST,
            bip324::Role::Initiator,
            Some(vec![0x42; 1000]),
            Some(vec![vec![1, 2, 3]]),
            tokio::io::BufReader::new(r),
            w,
        )
        .await
        .unwrap();
        p.write(&bip324::io::Payload::decoy(vec![0; 10]))
            .await
            .unwrap();
        p.write(&bip324::io::Payload::genuine(version_contents(99)))
            .await
            .unwrap();
        let mut commands = Vec::new();
        while commands.len() < 2 {
            let got = p.read().await.unwrap();
            let msg = message_of(got.contents());
            if matches!(msg, Message::Version(_) | Message::Verack) {
                commands.push(msg.command().as_str().to_owned());
            }
        }
        commands
    });
    assert_eq!(commands, vec!["version", "verack"]);
    let server_side = seen.handles.lock().unwrap()[0].clone();
    wait_until("version on the server", || {
        server_side.negotiated_version() == 70016
    });
    srv.shutdown();
}

/// Our runtime as initiator against the crate's async Protocol as responder: the
/// crate's side decrypts our version message.
#[test]
fn our_runtime_as_initiator_against_the_bip324_crates_protocol() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let theirs = std::thread::spawn(move || {
        tokio_rt().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (r, w) = stream.into_split();
            let mut p = bip324::futures::Protocol::new(
                REGTEST,
                bip324::Role::Responder,
                Some(vec![0x24; 300]),
                None,
                tokio::io::BufReader::new(r),
                w,
            )
            .await
            .unwrap();
            let got = p.read().await.unwrap();
            message_of(got.contents())
        })
    });
    let cli = builder(true).start().unwrap();
    let p = cli.connect_v2(addr).wait_timeout(LONG).unwrap().unwrap();
    let msg = theirs.join().unwrap();
    let Message::Version(v) = msg else {
        panic!("expected our version, got {msg:?}")
    };
    assert_eq!(v.version, 70016);
    assert!(v.services.has(ServiceFlags::P2P_V2));
    drop(p);
    cli.shutdown();
}
