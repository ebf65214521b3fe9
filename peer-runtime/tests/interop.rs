//! Interop with a real, independently written node: bcoin on regtest (see
//! `../shared/oracle/`). Skipped (printing `SKIP: no oracle`) unless
//! `PEERWIRE_ORACLE_PORT` (its P2P port) and `PEERWIRE_ORACLE_HTTP` (its JSON-RPC port)
//! are set; `cargo xtask interop` starts the node with 2,100 blocks and sets them.
//!
//! The tests only behave well (no bad messages), so they can share the node with each
//! other: every connection must end with ban score 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peer_core::{Config, Listener, NonceSet, Peer};
use peer_helpers::{block_locator_from_slice, push_get_headers, RequestFilter, RequestOutcome};
use peer_runtime::{Delivery, Direction, PeerHandle, Runtime};
use serde_json::{json, Value};
use wire_codec::message::{
    Block, Headers, InvType, InvVect, Inventory, Ping, Pong, ServiceFlags, Version,
};
use wire_codec::{Hash256, Message, Network};

const WAIT: Duration = Duration::from_secs(30);
/// bcoin answers nothing when it has no more headers; silence this long ends a sync.
const QUIET: Duration = Duration::from_secs(5);
const REGTEST_GENESIS: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

struct Oracle {
    p2p: SocketAddr,
    http: u16,
}

fn oracle() -> Option<Oracle> {
    let p2p: u16 = std::env::var("PEERWIRE_ORACLE_PORT").ok()?.parse().ok()?;
    let http: u16 = std::env::var("PEERWIRE_ORACLE_HTTP").ok()?.parse().ok()?;
    Some(Oracle {
        p2p: SocketAddr::from(([127, 0, 0, 1], p2p)),
        http,
    })
}

macro_rules! oracle_or_skip {
    () => {
        match oracle() {
            Some(o) => o,
            None => {
                println!("SKIP: no oracle (set PEERWIRE_ORACLE_PORT and PEERWIRE_ORACLE_HTTP)");
                return;
            }
        }
    };
}

impl Oracle {
    /// A JSON-RPC call over a plain HTTP/1.0 POST (std only).
    fn rpc(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).expect("rpc connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("rpc response");
        let json = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .expect("http body");
        let v: Value = serde_json::from_str(json).expect("rpc json");
        assert!(v["error"].is_null(), "rpc {method} failed: {}", v["error"]);
        v["result"].clone()
    }

    /// bcoin's view of the connection whose far end is `ours` (our address as bcoin
    /// sees it).
    fn peer_info(&self, ours: SocketAddr) -> Option<Value> {
        let peers = self.rpc("getpeerinfo", json!([]));
        peers
            .as_array()?
            .iter()
            .find(|p| p["addr"].as_str() == Some(&ours.to_string()))
            .cloned()
    }
}

/// What the listener forwards to the test thread.
#[derive(Debug)]
enum Seen {
    Version(Box<Version>),
    Pong(Pong),
    Headers(Headers),
    Block(Box<Block>),
}

struct Forward(mpsc::Sender<Seen>);

impl Listener for Forward {
    fn on_version(
        &mut self,
        _peer: &mut Peer,
        msg: &Version,
    ) -> Option<wire_codec::message::Reject> {
        let _ = self.0.send(Seen::Version(Box::new(msg.clone())));
        None
    }
    fn on_pong(&mut self, _peer: &mut Peer, msg: Pong) {
        let _ = self.0.send(Seen::Pong(msg));
    }
    fn on_headers(&mut self, _peer: &mut Peer, msg: Headers) {
        let _ = self.0.send(Seen::Headers(msg));
    }
    fn on_block(&mut self, _peer: &mut Peer, msg: Block, _raw: bytes::Bytes) {
        let _ = self.0.send(Seen::Block(Box::new(msg)));
    }
}

/// bcoin dials out only to peers advertising NODE_NETWORK | NODE_WITNESS.
fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.user_agent_name = "peerwire-interop".into();
    c.user_agent_version = "0".into();
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

fn runtime(listen: bool) -> Runtime {
    let mut b = Runtime::builder(Network::Regtest)
        .configure(|c| *c = config())
        .executors(1)
        .io_memory(128 * 1024);
    if listen {
        b = b.listen("127.0.0.1:0".parse().unwrap());
    }
    b.start().expect("runtime starts")
}

/// Waits for the first message `pick` accepts.
fn expect<T>(rx: &mpsc::Receiver<Seen>, what: &str, mut pick: impl FnMut(Seen) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) => {
                if let Some(t) = pick(seen) {
                    return t;
                }
            }
            Err(e) => panic!("no {what} from bcoin: {e}"),
        }
    }
}

fn connect(rt: &Runtime, o: &Oracle) -> (PeerHandle, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let peer = rt
        .connect_with(o.p2p, Box::new(Forward(tx)))
        .wait_timeout(WAIT)
        .expect("connect answered")
        .expect("connected to bcoin");
    (peer, rx)
}

/// Downloads every header with getheaders + locators; returns the chain of hashes
/// (genesis first), checking links and proof of work.
fn sync_headers(peer: &PeerHandle, rx: &mpsc::Receiver<Seen>) -> Vec<Hash256> {
    let mut chain: Vec<Hash256> = vec![REGTEST_GENESIS.parse().unwrap()];
    let mut filter = RequestFilter::new();
    let mut q = peer.clone();
    loop {
        let locator = block_locator_from_slice(&chain);
        let outcome = push_get_headers(&mut q, &mut filter, locator, Hash256::ZERO).unwrap();
        assert_eq!(outcome, RequestOutcome::Queued);
        let reply = loop {
            match rx.recv_timeout(QUIET) {
                Ok(Seen::Headers(h)) => break Some(h),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        let Some(headers) = reply else { break };
        let n = headers.headers.len();
        for h in &headers.headers {
            let hash = h.hash();
            assert_eq!(
                Some(&h.prev_block),
                chain.last(),
                "header {hash} does not link at height {}",
                chain.len()
            );
            assert!(h.meets_target(&hash), "header {hash} misses its target");
            chain.push(hash);
        }
        if n < 2000 {
            break;
        }
    }
    chain
}

fn assert_still_friends(o: &Oracle, peer: &PeerHandle) {
    assert!(
        peer.connected(),
        "our peer ended: {:?}",
        peer.disconnect_reason()
    );
    let ours = peer.local_addr().expect("local address");
    let info = o
        .peer_info(ours)
        .unwrap_or_else(|| panic!("bcoin does not list {ours}"));
    assert_eq!(info["banscore"].as_u64(), Some(0), "{info}");
}

#[test]
fn outbound_handshake_ping_headers_and_block() {
    let o = oracle_or_skip!();
    let rt = runtime(false);
    let (peer, rx) = connect(&rt, &o);

    // Handshake: bcoin speaks 70015, so that is what we negotiate.
    let negotiated = peer
        .wait_for_handshake_timeout(WAIT)
        .expect("handshake in time")
        .expect("handshake succeeded");
    assert_eq!(negotiated, 70015);
    let version = expect(&rx, "version", |s| match s {
        Seen::Version(v) => Some(v),
        _ => None,
    });
    assert!(
        version.user_agent.contains("bcoin"),
        "{}",
        version.user_agent
    );
    assert!(version.services.0 & 1 != 0, "bcoin is a full node");

    // Ping / pong with our nonce.
    let nonce = 0x5eed_0001_u64;
    let sent = peer.queue_message(Message::Ping(Ping { nonce }));
    assert_eq!(sent.wait_timeout(WAIT).ok(), Some(Delivery::Sent));
    let pong = expect(&rx, "pong", |s| match s {
        Seen::Pong(p) => Some(p),
        _ => None,
    });
    assert_eq!(pong.nonce, nonce);

    // Header sync of the whole chain; the tip must be the node's best block.
    let chain = sync_headers(&peer, &rx);
    let height = chain.len() - 1;
    assert!(height >= 2000, "only {height} headers");
    let best: Hash256 = o
        .rpc("getbestblockhash", json!([]))
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(chain.last(), Some(&best));
    assert_eq!(
        o.rpc("getblockcount", json!([])).as_u64(),
        Some(height as u64)
    );

    // getdata of a block in the middle: its txids are the node's.
    let h = 1234.min(height);
    let hash = chain[h];
    peer.queue_message_detached(Message::GetData(Inventory::new(vec![InvVect::new(
        InvType::WITNESS_BLOCK,
        hash,
    )])));
    let block = expect(&rx, "block", |s| match s {
        Seen::Block(b) => Some(b),
        _ => None,
    });
    assert_eq!(block.hash(), hash);
    assert!(block.merkle_root_matches());
    let rpc_block = o.rpc("getblock", json!([hash.to_string()]));
    assert_eq!(rpc_block["height"].as_u64(), Some(h as u64));
    let rpc_txids: Vec<String> = rpc_block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let our_txids: Vec<String> = block.txids().iter().map(|t| t.to_string()).collect();
    assert!(!our_txids.is_empty());
    assert_eq!(our_txids, rpc_txids);

    // Still connected, ban score 0.
    assert_still_friends(&o, &peer);
    let stats = peer.stats_snapshot().wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(stats.negotiated_version, 70015);
    assert!(stats.bytes_received > 80 * 2000);

    peer.disconnect();
    peer.wait_for_disconnect_timeout(WAIT).expect("ended");
    rt.shutdown();
}

#[test]
fn bcoin_dials_in_and_completes_the_handshake() {
    let o = oracle_or_skip!();
    let rt = runtime(true);
    let ours = rt.local_addr().unwrap();
    o.rpc("addnode", json!([ours.to_string(), "onetry"]));

    let deadline = Instant::now() + WAIT;
    let peer = loop {
        if let Some(p) = rt.peers().into_iter().find(|p| p.handshake_complete()) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "bcoin never completed a handshake with us"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(peer.direction(), Direction::Inbound);
    assert_eq!(peer.negotiated_version(), 70015);

    // bcoin lists us as its outbound peer, at our listening address, ban score 0.
    let deadline = Instant::now() + WAIT;
    let info = loop {
        if let Some(i) = o.peer_info(ours) {
            break i;
        }
        assert!(Instant::now() < deadline, "bcoin does not list {ours}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(info["inbound"].as_bool(), Some(false), "{info}");
    assert_eq!(info["banscore"].as_u64(), Some(0), "{info}");

    // It keeps talking to us: a ping round trip still works.
    let sent = peer.queue_message(Message::Ping(Ping { nonce: 42 }));
    assert_eq!(sent.wait_timeout(WAIT).ok(), Some(Delivery::Sent));
    std::thread::sleep(Duration::from_millis(200));
    assert!(peer.connected());
    let again = o.peer_info(ours).expect("still listed");
    assert_eq!(again["banscore"].as_u64(), Some(0), "{again}");

    rt.shutdown();
    assert!(!peer.connected());
}
