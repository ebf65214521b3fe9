//! Per-peer configuration (a connect, an adopted stream or an accept overriding the
//! runtime's default `Config`, as btcd gives each peer its own) and outbound peers by
//! host name.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_core::{Config, Listener, NonceSet, Peer};
use peer_runtime::{Error, PeerHandle, PeerOptions, Runtime, RuntimeBuilder};
use wire_codec::message::{Reject, Version};
use wire_codec::Network;

const LONG: Duration = Duration::from_secs(30);

fn config(agent: &str) -> Config {
    let mut c = Config::new(Network::Regtest);
    c.nonces = Some(Arc::new(NonceSet::new()));
    c.user_agent_name = agent.into();
    c.user_agent_version = "1".into();
    c
}

fn builder(agent: &str) -> RuntimeBuilder {
    let c = config(agent);
    Runtime::builder(Network::Regtest)
        .configure(move |cfg| *cfg = c)
        .executors(1)
        .io_memory(128 * 1024)
}

/// Records the user agents of the versions its peers receive.
#[derive(Clone, Default)]
struct Agents(Arc<Mutex<Vec<(String, u32)>>>);

impl Listener for Agents {
    fn on_version(&mut self, _peer: &mut Peer, msg: &Version) -> Option<Reject> {
        self.0
            .lock()
            .unwrap()
            .push((msg.user_agent.clone(), msg.version));
        None
    }
}

fn server(agents: Agents, inbound: Option<Arc<Config>>) -> Runtime {
    server_on("127.0.0.1:0".parse().unwrap(), agents, inbound)
}

fn server_on(listen: SocketAddr, agents: Agents, inbound: Option<Arc<Config>>) -> Runtime {
    let mut b = builder("server")
        .listen(listen)
        .listener_factory(move |_| Box::new(agents.clone()) as Box<dyn Listener>);
    if let Some(c) = inbound {
        b = b
            .inbound_config(move |remote: SocketAddr| remote.ip().is_loopback().then(|| c.clone()));
    }
    b.start().expect("server starts")
}

#[test]
fn a_connect_can_bring_its_own_config() {
    let seen = Agents::default();
    let srv = server(seen.clone(), None);
    let cli = builder("client").start().unwrap();
    let addr = srv.local_addr().unwrap();
    let mut special = config("special");
    special.protocol_version = 70015;
    let p = cli
        .connect_with_options(addr, PeerOptions::new().config(Arc::new(special)))
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert_eq!(p.wait_for_handshake_timeout(LONG).unwrap(), Ok(70015));
    let q = cli.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    assert_eq!(q.wait_for_handshake_timeout(LONG).unwrap(), Ok(70016));
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .any(|(ua, v)| ua.contains("special:1") && *v == 70015));
    assert!(seen
        .iter()
        .any(|(ua, v)| ua.contains("client:1") && *v == 70016));
    cli.shutdown();
    srv.shutdown();
}

#[test]
fn an_accept_can_choose_its_config_and_an_adopted_stream_bring_one() {
    let srv = server(Agents::default(), Some(Arc::new(config("inbound-special"))));
    let seen = Agents::default();
    let cli = builder("client")
        .listener_factory({
            let seen = seen.clone();
            move |_| Box::new(seen.clone()) as Box<dyn Listener>
        })
        .start()
        .unwrap();
    let p = cli
        .connect(srv.local_addr().unwrap())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    assert!(seen.0.lock().unwrap()[0].0.contains("inbound-special:1"));

    // A stream the caller connected, adopted with its own config.
    let stream = std::net::TcpStream::connect(srv.local_addr().unwrap()).unwrap();
    let q = cli
        .add_connection_with_options(
            stream,
            peer_runtime::Direction::Outbound,
            PeerOptions::new().config(Arc::new(config("adopted"))),
        )
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    q.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    cli.shutdown();
    srv.shutdown();
}

#[test]
fn outbound_peers_by_host_name() {
    // The runtime dials the first address a name resolves to: listen there (127.0.0.1
    // or ::1, depending on the machine's resolver).
    let first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
        .unwrap()
        .next()
        .unwrap();
    let srv = server_on(first, Agents::default(), None);
    let cli = builder("client").start().unwrap();
    let port = srv.local_addr().unwrap().port();
    let p = cli
        .connect_host(&format!("localhost:{port}"), PeerOptions::new())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert!(p.addr().ip().is_loopback());
    p.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    let err = cli
        .connect_host("no-such-host.invalid:8333", PeerOptions::new())
        .wait_timeout(LONG)
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Resolve { .. }), "{err}");
    cli.shutdown();
    srv.shutdown();
}

/// Compares the handle's negotiated version with peer-core's while the remote's version
/// is being decided (between version and verack).
struct VersionProbe {
    handle: PeerHandle,
    seen: Arc<Mutex<Vec<(u32, u32)>>>,
}

impl Listener for VersionProbe {
    fn on_version(&mut self, peer: &mut Peer, _msg: &Version) -> Option<Reject> {
        self.seen
            .lock()
            .unwrap()
            .push((self.handle.negotiated_version(), peer.negotiated_version()));
        None
    }
}

#[test]
fn the_handle_and_the_peer_agree_on_the_version_during_the_handshake() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let srv = builder("server")
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory({
            let seen = seen.clone();
            move |h: &PeerHandle| {
                Box::new(VersionProbe {
                    handle: h.clone(),
                    seen: seen.clone(),
                }) as Box<dyn Listener>
            }
        })
        .start()
        .unwrap();
    let cli = builder("client").start().unwrap();
    let mut old = config("old");
    old.protocol_version = 70012;
    let p = cli
        .connect_with_options(
            srv.local_addr().unwrap(),
            PeerOptions::new().config(Arc::new(old)),
        )
        .wait_timeout(LONG)
        .unwrap()
        .unwrap();
    assert_eq!(p.wait_for_handshake_timeout(LONG).unwrap(), Ok(70012));
    assert_eq!(*seen.lock().unwrap(), vec![(70012, 70012)]);
    cli.shutdown();
    srv.shutdown();
}
