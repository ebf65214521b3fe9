//! The driver's deadlines over loopback.
//!
//! A peer's timer is registered with its executor once per deadline, not at every
//! pass of its loop (a registration is a removal and an insertion in the executor's
//! timer tree). These tests check what that must not break: a deadline that fires is
//! followed by the next one, a deadline that moves while traffic keeps the peer busy
//! still fires, and a peer whose deadline passes while it is idle is woken for it
//! (the negotiate deadline of a silent connection: `hostile.rs`).
//! Nothing asserts on timing beyond generous upper bounds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peer_core::{Config, Listener, NonceSet, Peer};
use peer_runtime::{PeerHandle, Runtime, RuntimeBuilder};
use wire_codec::message::{Ping, ServiceFlags};
use wire_codec::{Message, Network};

const LONG: Duration = Duration::from_secs(30);

fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

fn builder(config: Config) -> RuntimeBuilder {
    Runtime::builder(Network::Regtest)
        .configure(move |c| *c = config.clone())
        .executors(1)
        .io_memory(128 * 1024)
}

/// Counts the pings its peer receives.
struct PingCounter(Arc<AtomicUsize>);

impl Listener for PingCounter {
    fn on_ping(&mut self, _peer: &mut Peer, _msg: Ping) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A server whose peers ping every `interval`, and a client whose peers count them.
fn pair(interval: Duration, idle: Duration) -> (Runtime, Runtime, Arc<AtomicUsize>, SocketAddr) {
    let mut server_config = config();
    server_config.timeouts.ping_interval = interval;
    server_config.timeouts.idle = idle;
    let server = builder(server_config)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .expect("server starts");
    let addr = server.local_addr().expect("listening");
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let client = builder(config())
        .listener_factory(move |_h: &PeerHandle| {
            Box::new(PingCounter(counter.clone())) as Box<dyn Listener>
        })
        .start()
        .expect("client starts");
    (server, client, pings, addr)
}

#[test]
fn keepalive_pings_follow_one_another_while_traffic_keeps_the_peer_busy() {
    let (server, client, pings, addr) = pair(Duration::from_millis(50), Duration::from_secs(60));
    let peer = client.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    peer.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    // The client's pings make the server's peer go round its loop many times between
    // two of its own keep-alive deadlines: each deadline is registered once and must
    // still fire, and the next one (later) must be registered after it.
    let mut nonce = 0u64;
    wait_until("ten keep-alive pings from the server", || {
        nonce += 1;
        peer.queue_message_detached(Message::Ping(Ping { nonce }));
        pings.load(Ordering::SeqCst) >= 10
    });
    assert!(peer.connected());
    client.shutdown();
    server.shutdown();
}

#[test]
fn keepalive_pings_reach_an_idle_peer() {
    let (server, client, pings, addr) = pair(Duration::from_millis(50), Duration::from_secs(60));
    let peer = client.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    peer.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    // No traffic of the client's own: only the timer wakes the server's peer.
    wait_until("five keep-alive pings to an idle peer", || {
        pings.load(Ordering::SeqCst) >= 5
    });
    assert!(peer.connected());
    client.shutdown();
    server.shutdown();
}

/// A deadline that moves later keeps the timer armed for the earlier one (it fires
/// early and is moved then): the early wake-up must not act, and the later deadline
/// must still fire. The server's idle deadline moves with every ping the client sends;
/// while they come the peer stays (an early wake-up that acted would end it at the
/// first deadline), and once they stop it ends for being idle.
#[test]
fn an_idle_deadline_that_keeps_moving_later_fires_only_once_traffic_stops() {
    let idle = Duration::from_millis(1500);
    let (server, client, _pings, addr) = pair(Duration::from_secs(600), idle);
    let peer = client.connect(addr).wait_timeout(LONG).unwrap().unwrap();
    peer.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    let busy_until = Instant::now() + 2 * idle;
    let mut nonce = 0u64;
    while Instant::now() < busy_until {
        nonce += 1;
        peer.queue_message_detached(Message::Ping(Ping { nonce }));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(peer.connected(), "ended while pings kept it busy");
    wait_until("the server to drop the idle peer", || !peer.connected());
    client.shutdown();
    server.shutdown();
}
