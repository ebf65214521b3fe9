//! Relaying one 4 MB block to 100 established peers, in memory, on one core:
//!
//! * `relay/queue_message_x100`: `Peer::queue_message` to each peer — the block is
//!   encoded (header, checksum, payload copied) into each peer's own output buffer;
//! * `relay/queue_frame_x100`: `SharedFrame::new` once (one encode, one checksum), then
//!   `Peer::queue_frame` to each peer — each output queue keeps a reference.
//!
//! Each iteration then reports the whole output written (`advance_transmit`) and drains
//! the events, as a driver would; the socket's own copy into the kernel is the same
//! for both and not part of this. The bench also prints the heap the 100 queues hold
//! with the block queued (counted by a global allocator in this binary).
//!
//! Run: `cargo bench -p peerwire-core --bench relay`

// Tests and benches take origin instants from the clock (clippy.toml forbids it in
// the crate itself).
#![allow(clippy::disallowed_methods)]
#![allow(unsafe_code, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use peer_core::{Config, NonceSet, Peer, SharedFrame};
use wire_codec::message::{Block, BlockHeader, OutPoint, ServiceFlags, Transaction, TxIn, TxOut};
use wire_codec::{Hash256, Message, Network};

#[path = "support/counting.rs"]
mod counting;
use counting::LIVE;

const PEERS: usize = 100;

fn config() -> Arc<Config> {
    let mut c = Config::new(Network::Mainnet);
    c.nonces = Some(Arc::new(NonceSet::new()));
    c.allow_self_connections = true;
    c.v2_transport = false;
    // Relaying nodes negotiate witness: every peer gets the frame as encoded.
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    Arc::new(c)
}

/// An established outbound peer (its partner is dropped: nothing is delivered).
fn established(cfg: &Arc<Config>, now: Instant, seed: u64) -> Peer {
    let mut a = Peer::new_outbound(
        cfg.clone(),
        "10.0.0.2:8333".parse().unwrap(),
        now,
        1_700_000_000,
        seed,
    );
    let mut b = Peer::new_inbound(
        cfg.clone(),
        "10.0.0.1:50000".parse().unwrap(),
        now,
        1_700_000_000,
        seed + 1,
    );
    for _ in 0..6 {
        step(&mut a, &mut b, now);
        step(&mut b, &mut a, now);
    }
    assert!(a.handshake_complete());
    while a.poll_event().is_some() {}
    a
}

/// Moves everything `from` has to `to` and lets `to` react.
fn step(from: &mut Peer, to: &mut Peer, now: Instant) {
    while from.wants_write() {
        let chunk = from.transmit().to_vec();
        from.advance_transmit(chunk.len(), now);
        to.handle_input(&chunk, now);
    }
    while let Some(ev) = to.poll_event() {
        peer_core::dispatch(to, ev, &mut Quiet, now);
    }
}

struct Quiet;
impl peer_core::Listener for Quiet {}

/// A block of about 4 MB: 1,000 transactions of 4 KB.
fn block() -> Message {
    let txs: Vec<Transaction> = (0..1000u32)
        .map(|i| {
            Transaction::build(
                2,
                &[TxIn {
                    prevout: OutPoint {
                        txid: Hash256([i as u8; 32]),
                        vout: i,
                    },
                    script_sig: Bytes::new(),
                    sequence: u32::MAX,
                    witness: vec![Bytes::from(vec![7u8; 72]), Bytes::from(vec![2u8; 33])],
                }],
                &[TxOut {
                    value: 5_000,
                    script_pubkey: Bytes::from(vec![0x51; 3_800]),
                }],
                0,
            )
        })
        .collect();
    let header = BlockHeader {
        version: 4,
        prev_block: Hash256::ZERO,
        merkle_root: Hash256::ZERO,
        claim_trie: None,
        time: 0,
        bits: 0x207fffff,
        nonce: 0,
    };
    Message::Block(Box::new(Block::new(header, txs)))
}

/// Writes every peer's whole output and drains its events.
fn drain(peers: &mut [Peer], now: Instant) {
    for p in peers.iter_mut() {
        let n = p.queued_bytes();
        p.advance_transmit(n, now);
        while p.poll_event().is_some() {}
    }
}

fn relay_by_message(peers: &mut [Peer], msg: &Message) {
    for p in peers.iter_mut() {
        p.queue_message(msg.clone(), None);
    }
}

fn relay_by_frame(peers: &mut [Peer], msg: &Message) {
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    for p in peers.iter_mut() {
        p.queue_frame(frame.clone(), None);
    }
}

/// Heap held with the block queued to every peer.
fn held(
    peers: &mut [Peer],
    msg: &Message,
    relay: fn(&mut [Peer], &Message),
    now: Instant,
) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    relay(peers, msg);
    let after = LIVE.load(Ordering::Relaxed);
    drain(peers, now);
    after - before
}

fn bench_relay(c: &mut Criterion) {
    let now = Instant::now();
    let cfg = config();
    let mut peers: Vec<Peer> = (0..PEERS as u64)
        .map(|i| established(&cfg, now, 2 * i + 1))
        .collect();
    let msg = block();
    let before = LIVE.load(Ordering::Relaxed);
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    let one = LIVE.load(Ordering::Relaxed) - before;
    let size = frame.len();
    drop(frame);
    println!(
        "one frame: {size} bytes on the wire, {one} bytes of heap; witness negotiated: {}",
        peers[0].features().witness
    );
    let by_message = held(&mut peers, &msg, relay_by_message, now);
    let by_frame = held(&mut peers, &msg, relay_by_frame, now);
    println!(
        "relay of a {size}-byte block to {PEERS} peers: queues hold {} MB with queue_message, {} MB with queue_frame",
        by_message / 1_000_000,
        by_frame / 1_000_000
    );
    let mut g = c.benchmark_group("relay");
    g.sample_size(10);
    g.bench_function("queue_message_x100", |bench| {
        bench.iter(|| {
            relay_by_message(&mut peers, black_box(&msg));
            drain(&mut peers, now);
        })
    });
    g.bench_function("queue_frame_x100", |bench| {
        bench.iter(|| {
            relay_by_frame(&mut peers, black_box(&msg));
            drain(&mut peers, now);
        })
    });
    g.finish();
    assert!(peers.iter().all(|p| !p.is_closed()));
}

criterion_group!(benches, bench_relay);
criterion_main!(benches);
