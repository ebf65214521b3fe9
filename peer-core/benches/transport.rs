//! Per-message cost of the two transports, in memory, on one core.
//!
//! * `transport/message/{v1,v2}/{N}`: one message with an N-byte payload sealed and opened
//!   again. v1: encode the frame (double SHA-256 checksum) and decode it (the checksum
//!   again). v2: encrypt it into a BIP324 packet (ChaCha20-Poly1305, FSChaCha20 length)
//!   and decrypt it. Same work per message otherwise: the frame header or message type is
//!   written and parsed, the payload copied once and split off zero-copy.
//! * `transport/v2_handshake_pair`: both ends of a v2 handshake (two key generations, two
//!   ECDHs, key derivation) in memory — the CPU a handshake adds over v1 (whose handshake
//!   is the version exchange both transports carry).
//! * `idle v2 transport heap`: heap bytes one established, idle `V2Transport` keeps
//!   (printed; counted by a global allocator in this binary).
//!
//! Run: `cargo bench -p peerwire-core --bench transport`

#![allow(unsafe_code, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peer_core::transport::{Received, Side, V2Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire_codec::{encode_frame, Command, Context, FrameDecoder, Message, Network};

#[path = "support/counting.rs"]
mod counting;
use counting::LIVE;

const MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn ready_pair(seed: u64, garbage: usize) -> (V2Transport, V2Transport) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut a = V2Transport::new(Side::Initiator, MAGIC, 4_000_000, &mut rng, garbage).unwrap();
    let mut b = V2Transport::new(Side::Responder, MAGIC, 4_000_000, &mut rng, garbage).unwrap();
    let (mut a_in, mut b_in, mut out) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
    a.start(&mut b_in);
    for _ in 0..3 {
        let _ = b.receive(&mut b_in, &mut a_in).unwrap();
        let _ = a.receive(&mut a_in, &mut out).unwrap();
        b_in.extend_from_slice(&out);
        out.clear();
    }
    assert!(a.is_ready() && b.is_ready());
    (a, b)
}

fn bench_messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("transport/message");
    let ctx = Context::new(Network::Mainnet, 70016);
    let command = Command::from_static("tx");
    for size in [32usize, 250, 1024, 65536] {
        let payload = Bytes::from(vec![0x5au8; size]);
        g.throughput(Throughput::Elements(1));
        let msg = Message::Unknown {
            command,
            payload: payload.clone(),
        };
        g.bench_with_input(BenchmarkId::new("v1", size), &size, |b, _| {
            let mut dec = FrameDecoder::new(Network::Mainnet);
            let mut wire = BytesMut::with_capacity(size + 64);
            b.iter(|| {
                encode_frame(MAGIC, black_box(&msg), &ctx, &mut wire).unwrap();
                let frame = dec.decode(&mut wire).unwrap().unwrap();
                black_box(frame);
            })
        });
        g.bench_with_input(BenchmarkId::new("v2", size), &size, |b, _| {
            let (mut tx, mut rx) = ready_pair(size as u64, 0);
            let mut wire = BytesMut::with_capacity(size + 64);
            let mut out = BytesMut::new();
            b.iter(|| {
                tx.encrypt_message(command, black_box(&payload), &mut wire)
                    .unwrap();
                let Ok(Received::Frame(frame)) = rx.receive(&mut wire, &mut out) else {
                    panic!("no frame")
                };
                black_box(frame);
            })
        });
    }
    g.finish();
}

fn bench_handshake(c: &mut Criterion) {
    let mut seed = 0u64;
    c.bench_function("transport/v2_handshake_pair", |b| {
        b.iter(|| {
            seed += 1;
            black_box(ready_pair(seed, 0))
        })
    });
}

/// Heap bytes kept by one established, idle v2 transport.
fn idle_transport_heap() -> usize {
    const N: usize = 100;
    black_box(ready_pair(u64::MAX, 0)); // one-time process state (the signing context)
    let before = LIVE.load(Ordering::Relaxed);
    let mut kept = Vec::with_capacity(2 * N);
    let vec_bytes = 2 * N * std::mem::size_of::<V2Transport>();
    for i in 0..N {
        let (a, b) = ready_pair(i as u64, 4095);
        kept.push(a);
        kept.push(b);
    }
    let after = LIVE.load(Ordering::Relaxed);
    black_box(&kept);
    ((after - before) as usize - vec_bytes) / (2 * N) + std::mem::size_of::<V2Transport>()
}

fn bench_memory(_c: &mut Criterion) {
    println!(
        "idle v2 transport: {} bytes per established transport (struct {} bytes + heap); goal for a whole idle v2 peer <= 4096",
        idle_transport_heap(),
        std::mem::size_of::<V2Transport>()
    );
}

criterion_group!(benches, bench_memory, bench_messages, bench_handshake);
criterion_main!(benches);
