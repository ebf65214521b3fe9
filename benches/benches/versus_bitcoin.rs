//! The protocol work of two peers, without sockets: peerwire (`peer-core` on
//! `wire-codec`) against the same exchange written with the `bitcoin` crate, in one
//! criterion group each so the ratio comes from one run.
//!
//! * `handshake`: version → version + verack → verack, both sides, from nothing to two
//!   handshaken peers.
//! * `ping_pong`: one round trip: encode a ping, frame and checksum it, decode it on the
//!   other side, answer with a pong, decode the pong.
//! * `inv_x64`: 64 one-entry `inv` messages encoded by one side and decoded by the other.
//!
//! peer-core does more than the bitcoin-crate side for the same bytes (handshake rules,
//! statistics, stall bookkeeping, the known-inventory filter every received `inv`
//! entry goes into); the bitcoin side does what the tokio baseline of `peer-bench`
//! does: frame, checksum, typed decode, match.
//!
//! Run: `cargo bench -p benches --bench versus_bitcoin`

#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_blockdata::Inventory as BtcInventory;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags as BtcServices};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peer_core::{dispatch, Config, Listener, NonceSet, Peer};
use wire_codec::message::{InvType, InvVect, Inventory, Ping};
use wire_codec::{Hash256, Message, Network};

struct Quiet;
impl Listener for Quiet {}

/// One side of an in-memory pair: the peer and the bytes it has received.
struct Side {
    peer: Peer,
    inbox: BytesMut,
}

fn config() -> Arc<Config> {
    let mut c = Config::new(Network::Regtest);
    // Each peer its own nonce set: both live in this process, and must not take the
    // other for a connection to itself.
    c.nonces = Some(Arc::new(NonceSet::new()));
    c.report_io = false;
    Arc::new(c)
}

fn drain(s: &mut Side, now: Instant) {
    while let Some(ev) = s.peer.poll_event() {
        dispatch(&mut s.peer, ev, &mut Quiet, now);
    }
}

/// Moves everything `from` wants to write into `to` and lets `to` handle it.
fn transfer(from: &mut Side, to: &mut Side, now: Instant) -> bool {
    let n = from.peer.transmit().len();
    if n == 0 {
        return false;
    }
    to.inbox.extend_from_slice(from.peer.transmit());
    from.peer.advance_transmit(n, now);
    to.peer.handle_read(&mut to.inbox, now);
    true
}

/// Runs the pair until neither side has anything to say.
fn settle(a: &mut Side, b: &mut Side, now: Instant) {
    loop {
        drain(a, now);
        drain(b, now);
        let moved = transfer(a, b, now) | transfer(b, a, now);
        if !moved && !a.peer.wants_write() && !b.peer.wants_write() {
            drain(a, now);
            drain(b, now);
            if !a.peer.wants_write() && !b.peer.wants_write() {
                return;
            }
        }
    }
}

fn pair(now: Instant) -> (Side, Side) {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 18444);
    let a = Peer::new_outbound(config(), addr, now, 1_700_000_000, 1);
    let b = Peer::new_inbound(config(), addr, now, 1_700_000_000, 2);
    let mut a = Side {
        peer: a,
        inbox: BytesMut::new(),
    };
    let mut b = Side {
        peer: b,
        inbox: BytesMut::new(),
    };
    settle(&mut a, &mut b, now);
    (a, b)
}

fn btc_version(nonce: u64) -> NetworkMessage {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    NetworkMessage::Version(VersionMessage::new(
        BtcServices::NONE,
        1_700_000_000,
        Address::new(&any, BtcServices::NONE),
        Address::new(&any, BtcServices::NONE),
        nonce,
        "/bench/".into(),
        0,
    ))
}

fn btc_frame(msg: NetworkMessage) -> Vec<u8> {
    serialize(&RawNetworkMessage::new(Magic::REGTEST, msg))
}

fn btc_read(bytes: &[u8]) -> NetworkMessage {
    let raw: RawNetworkMessage = deserialize(bytes).expect("a frame we just wrote");
    raw.into_payload()
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("versus_bitcoin/handshake");
    g.bench_function("peerwire", |bench| {
        bench.iter(|| {
            let (a, b) = pair(Instant::now());
            assert!(a.peer.handshake_complete() && b.peer.handshake_complete());
            black_box((a, b));
        })
    });
    g.bench_function("bitcoin", |bench| {
        bench.iter(|| {
            // client → version; server → version + verack; client → verack.
            let v = btc_frame(btc_version(1));
            let got = btc_read(&v);
            assert!(matches!(got, NetworkMessage::Version(_)));
            let mut reply = btc_frame(btc_version(2));
            let n = reply.len();
            reply.extend_from_slice(&btc_frame(NetworkMessage::Verack));
            let (first, second) = reply.split_at(n);
            assert!(matches!(btc_read(first), NetworkMessage::Version(_)));
            assert!(matches!(btc_read(second), NetworkMessage::Verack));
            let ack = btc_frame(NetworkMessage::Verack);
            black_box(btc_read(&ack));
        })
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("versus_bitcoin/ping_pong");
    g.throughput(Throughput::Elements(2));
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut nonce = 0u64;
    g.bench_function("peerwire", |bench| {
        bench.iter(|| {
            nonce += 1;
            a.peer.queue_message(Message::Ping(Ping { nonce }), None);
            // Ping to b; b's peer-core answers with a pong; pong back to a.
            transfer(&mut a, &mut b, now);
            drain(&mut b, now);
            transfer(&mut b, &mut a, now);
            drain(&mut a, now);
        })
    });
    assert!(a.peer.handshake_complete() && !a.peer.is_closed());
    g.bench_function("bitcoin", |bench| {
        bench.iter(|| {
            nonce += 1;
            let ping = btc_frame(NetworkMessage::Ping(nonce));
            let pong = match btc_read(&ping) {
                NetworkMessage::Ping(n) => btc_frame(NetworkMessage::Pong(n)),
                other => panic!("expected a ping, got {other:?}"),
            };
            match btc_read(&pong) {
                NetworkMessage::Pong(n) => assert_eq!(n, nonce),
                other => panic!("expected a pong, got {other:?}"),
            }
        })
    });
    g.finish();
}

const INV_BATCH: u64 = 64;

fn inv_flood(c: &mut Criterion) {
    let mut g = c.benchmark_group("versus_bitcoin/inv_x64");
    g.throughput(Throughput::Elements(INV_BATCH));
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut counter = 0u64;
    g.bench_function(BenchmarkId::new("peerwire", INV_BATCH), |bench| {
        bench.iter(|| {
            for _ in 0..INV_BATCH {
                counter += 1;
                let mut h = [0x11u8; 32];
                h[..8].copy_from_slice(&counter.to_le_bytes());
                let inv = Inventory::new(vec![InvVect {
                    kind: InvType::TX,
                    hash: Hash256(h),
                }]);
                a.peer.queue_message(Message::Inv(inv), None);
            }
            transfer(&mut a, &mut b, now);
            drain(&mut b, now);
            drain(&mut a, now);
        })
    });
    assert!(!b.peer.is_closed());
    g.bench_function(BenchmarkId::new("bitcoin", INV_BATCH), |bench| {
        bench.iter(|| {
            let mut wire = Vec::new();
            for _ in 0..INV_BATCH {
                counter += 1;
                let mut h = [0x11u8; 32];
                h[..8].copy_from_slice(&counter.to_le_bytes());
                let inv = BtcInventory::Transaction(bitcoin::Txid::from_byte_array(h));
                wire.extend_from_slice(&btc_frame(NetworkMessage::Inv(vec![inv])));
            }
            let mut rest = &wire[..];
            while rest.len() >= 24 {
                let len = u32::from_le_bytes([rest[16], rest[17], rest[18], rest[19]]) as usize;
                let (frame, tail) = rest.split_at(24 + len);
                match btc_read(frame) {
                    NetworkMessage::Inv(v) => {
                        black_box(v);
                    }
                    other => panic!("expected an inv, got {other:?}"),
                }
                rest = tail;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, handshake, ping_pong, inv_flood);
criterion_main!(benches);
