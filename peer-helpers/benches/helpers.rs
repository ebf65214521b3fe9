//! Hot paths of the helpers: sampling addresses for `addr`/`addrv2`, and building a block
//! locator for a long chain.
//!
//! Run: `cargo bench -p peerwire-helpers --bench helpers`

use std::hint::black_box;

use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use peer_helpers::{
    block_locator, block_locator_from_slice, push_addr, push_addresses, RecordingQueue,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use wire_codec::message::{AddrV2Entry, NetAddress, NetworkId, ServiceFlags};
use wire_codec::Hash256;

fn legacy_candidates(n: u32) -> Vec<NetAddress> {
    (0..n)
        .map(|i| {
            let b = i.to_be_bytes();
            let mut a = NetAddress::from_socket_addr(
                ([10, b[1], b[2], b[3]], 8333).into(),
                ServiceFlags::NETWORK,
            );
            a.time = Some(1_700_000_000 + i);
            a
        })
        .collect()
}

fn v2_candidates(n: u32) -> Vec<AddrV2Entry> {
    (0..n)
        .map(|i| {
            let b = i.to_be_bytes();
            if i % 4 == 0 {
                // A quarter are Tor v3: sent in addrv2, left out of addr.
                let mut addr = [0u8; 32];
                addr[..4].copy_from_slice(&b);
                AddrV2Entry {
                    time: 1_700_000_000,
                    services: ServiceFlags::NETWORK,
                    network: NetworkId::TORV3,
                    addr: addr.to_vec().into(),
                    port: 8333,
                }
            } else {
                AddrV2Entry::from_ip(
                    1_700_000_000,
                    ServiceFlags::NETWORK,
                    [10, b[1], b[2], b[3]].into(),
                    8333,
                )
            }
        })
        .collect()
}

fn bench_push_addr(c: &mut Criterion) {
    let mut g = c.benchmark_group("push_addr");
    g.throughput(Throughput::Elements(10_000));
    let legacy = legacy_candidates(10_000);
    let v2 = v2_candidates(10_000);
    let mut rng = SmallRng::seed_from_u64(1);

    g.bench_function("push_addr/10000_legacy", |b| {
        b.iter_batched_ref(
            || RecordingQueue::new(70016),
            |q| black_box(push_addr(q, black_box(&legacy), &mut rng)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("push_addresses/10000_v2_to_addrv2_peer", |b| {
        b.iter_batched_ref(
            || RecordingQueue::new(70016).with_addrv2(),
            |q| black_box(push_addresses(q, black_box(&v2), &mut rng)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("push_addresses/10000_v2_to_legacy_peer", |b| {
        b.iter_batched_ref(
            || RecordingQueue::new(70016),
            |q| black_box(push_addresses(q, black_box(&v2), &mut rng)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_locator(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_locator");
    let chain: Vec<Hash256> = (0..1_000_000u32)
        .map(|h| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&h.to_le_bytes());
            Hash256(b)
        })
        .collect();
    let tip = 999_999u32;
    g.bench_function("lookup/1000000_blocks", |b| {
        b.iter(|| {
            block_locator(black_box(tip), |h| {
                usize::try_from(h).ok().and_then(|i| chain.get(i)).copied()
            })
        })
    });
    g.bench_function("slice/1000000_blocks", |b| {
        b.iter(|| block_locator_from_slice(black_box(&chain)))
    });
    g.finish();
}

/// Every group, with the command line's criterion options.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_push_addr(&mut c);
    bench_locator(&mut c);
}

criterion_main!(benches);
