//! Fair admission: a per-network-group inbound limit, and Core-like eviction when every
//! slot is taken, so a peer from a new network group always gets in. Loopback addresses
//! stand for hosts here (`Limits::local_netgroups_by_address`): 127.0.0.1 is one
//! group, 127.0.0.2 another.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use peer_runtime::netgroup::Netgroup;
use peer_runtime::{Limits, Runtime, RuntimeBuilder};
use wire_codec::message::ServiceFlags;
use wire_codec::Network;

#[path = "support/raw.rs"]
mod raw;
use raw::Raw;

const WAIT: Duration = Duration::from_secs(30);

type Log = Arc<Mutex<Vec<(SocketAddr, DisconnectReason)>>>;

struct Ends(Log);

impl Listener for Ends {
    fn on_disconnect(&mut self, peer: &mut Peer, reason: &DisconnectReason) {
        self.0
            .lock()
            .unwrap()
            .push((peer.remote_addr(), reason.clone()));
    }
}

fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

fn server(limits: Limits) -> (Runtime, Log) {
    let ends = Arc::new(Mutex::new(Vec::new()));
    let e = ends.clone();
    let rt = RuntimeBuilder::with_config(config())
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .limits(limits)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |_| Box::new(Ends(e.clone())) as Box<dyn Listener>)
        .start()
        .expect("server starts");
    (rt, ends)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Core's grouping is the default: one group for every local address.
#[test]
fn loopback_is_one_group_by_default() {
    let limits = Limits::default();
    assert!(!limits.local_netgroups_by_address);
    assert_eq!(
        limits.max_inbound_per_netgroup,
        (limits.max_peers / 8).max(1)
    );
    let g = |s: &str| Netgroup::of(s.parse().unwrap(), false);
    assert_eq!(g("127.0.0.1"), g("127.0.0.2"));
}

/// One group cannot take more than its limit: the next connection from it is closed
/// at once, while another group still gets in.
#[test]
fn a_group_over_its_limit_is_refused() {
    let mut limits = Limits::default();
    limits.max_inbound_per_netgroup = 5;
    limits.local_netgroups_by_address = true;
    let (rt, _) = server(limits);
    let addr = rt.local_addr().unwrap();
    let held: Vec<Raw> = (0..5).map(|_| Raw::connect(addr)).collect();
    let mut sixth = TcpStream::connect(addr).unwrap();
    sixth.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(
        sixth.read(&mut b).unwrap_or(0),
        0,
        "the sixth was not closed"
    );
    wait_until("the refusal to count", || rt.stats().refused == 1);
    // Another group is not affected.
    let client = RuntimeBuilder::with_config(config())
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .start()
        .unwrap();
    let other = client
        .connect_from(addr, "127.0.0.2:0".parse().unwrap())
        .wait()
        .expect("another group connects");
    assert!(other.wait_for_handshake_blocking().is_ok());
    assert_eq!(rt.stats().peers, 6);
    drop(held);
    client.shutdown();
    rt.shutdown();
}

/// Every slot taken by one group: a peer from a new group gets in, and one of the
/// crowded group's peers is evicted with `Evicted`.
#[test]
fn a_new_group_gets_in_when_all_slots_are_full() {
    const SLOTS: usize = 40;
    let mut limits = Limits::default();
    limits.max_peers = SLOTS;
    limits.max_inbound_per_netgroup = usize::MAX;
    limits.local_netgroups_by_address = true;
    let (rt, ends) = server(limits);
    let addr = rt.local_addr().unwrap();
    let held: Vec<Raw> = (0..SLOTS).map(|_| Raw::connect(addr)).collect();
    wait_until("all slots", || rt.stats().handshaken == SLOTS);
    // Full: with eviction off this would be refused (see below).
    let client = RuntimeBuilder::with_config(config())
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .start()
        .unwrap();
    let newcomer = client
        .connect_from(addr, "127.0.0.2:0".parse().unwrap())
        .wait()
        .expect("connects");
    assert_eq!(newcomer.wait_for_handshake_blocking().map(|_| ()), Ok(()));
    wait_until("an eviction", || !ends.lock().unwrap().is_empty());
    let ended = ends.lock().unwrap().clone();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let (who, why) = &ended[0];
    assert_eq!(why, &DisconnectReason::Evicted);
    assert_eq!(who.ip().to_string(), "127.0.0.1", "the crowded group pays");
    wait_until("the slot to come back", || rt.stats().peers == SLOTS);
    assert!(newcomer.connected());
    drop(held);
    client.shutdown();
    rt.shutdown();
}

/// With eviction off, a full server refuses the newcomer.
#[test]
fn without_eviction_a_full_server_refuses() {
    let mut limits = Limits::default();
    limits.max_peers = 4;
    limits.max_inbound_per_netgroup = usize::MAX;
    limits.evict_when_full = false;
    let (rt, ends) = server(limits);
    let addr = rt.local_addr().unwrap();
    let _held: Vec<Raw> = (0..4).map(|_| Raw::connect(addr)).collect();
    let mut fifth = TcpStream::connect(addr).unwrap();
    fifth.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(fifth.read(&mut b).unwrap_or(0), 0);
    assert!(ends.lock().unwrap().is_empty());
    rt.shutdown();
}
