//! Benchmarks of the peer state machine, in memory, on one core.
//!
//! * `pair/ping_pong_inv`: two established peers; per round one side queues a batch
//!   of pings and single-entry invs, the other answers every ping with a pong. The
//!   throughput is messages (encoded, framed, checksummed, decoded, handled) per
//!   second, both peers on the same core.
//! * `idle peer heap`: bytes allocated per peer that remain after a handshake, with the
//!   peer's own receive buffer (empty) included, counted by a global allocator in this binary and
//!   printed (the `Peer` struct itself is boxed and counted).
//! * `pair/ping_pong_inv_v2`, `pair/handshake_v2`, `idle v2 peer heap`: the same over the
//!   BIP324 v2 transport.
//! * `server/ping_round_trip`: one established inbound peer answering one `ping` at a
//!   time, with the calls peer-runtime's driver makes per round trip (bytes in, events
//!   drained, the `pong` written, the next deadline): peer-core's share of a server's
//!   CPU per ping round trip (issue #15); `server/ping_round_trip_1000_peers` takes
//!   1,000 such peers in turn, so each finds its state out of the nearest caches. Run
//!   it under
//!   `valgrind --tool=callgrind --toggle-collect=*server_ping_round_trip*` for exact
//!   instruction counts.
//!
//! Run: `cargo bench -p peerwire-core --bench peer`

// Tests and benches take origin instants from the clock (clippy.toml forbids it in
// the crate itself).
#![allow(clippy::disallowed_methods)]
#![allow(unsafe_code, missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use peer_core::{dispatch, Config, Listener, NonceSet, Peer};
use wire_codec::message::{InvType, InvVect, Inventory, Message, Ping};
use wire_codec::{Hash256, Network};

#[path = "support/counting.rs"]
mod counting;
use counting::LIVE;

struct Quiet;
impl Listener for Quiet {}

struct Side {
    peer: Box<Peer>,
}

fn pump(s: &mut Side, now: Instant) {
    while let Some(ev) = s.peer.poll_event() {
        dispatch(&mut s.peer, ev, &mut Quiet, now);
    }
}

fn transfer(from: &mut Side, to: &mut Side, now: Instant) {
    let n = from.peer.transmit().len();
    if n == 0 {
        return;
    }
    to.peer.handle_input(from.peer.transmit(), now);
    from.peer.advance_transmit(n, now);
}

fn config(report_io: bool) -> Arc<Config> {
    let mut c = Config::new(Network::Mainnet);
    c.nonces = Some(Arc::new(NonceSet::new()));
    c.allow_self_connections = true;
    c.report_io = report_io;
    // The bench writes big batches at once.
    c.max_output_bytes = 64 << 20;
    Arc::new(c)
}

fn connected(cfg: &Arc<Config>, now: Instant) -> (Side, Side) {
    connected_over(cfg, now, false)
}

/// An established pair, over BIP324 v2 when `v2`.
fn connected_over(cfg: &Arc<Config>, now: Instant, v2: bool) -> (Side, Side) {
    let new = if v2 {
        Peer::new_outbound_v2
    } else {
        Peer::new_outbound
    };
    let mut a = Side {
        peer: Box::new(new(
            cfg.clone(),
            "10.0.0.2:8333".parse().unwrap(),
            now,
            1_700_000_000,
            1,
        )),
    };
    let mut b = Side {
        peer: Box::new(Peer::new_inbound(
            cfg.clone(),
            "10.0.0.1:50000".parse().unwrap(),
            now,
            1_700_000_000,
            2,
        )),
    };
    for _ in 0..6 {
        transfer(&mut a, &mut b, now);
        pump(&mut b, now);
        transfer(&mut b, &mut a, now);
        pump(&mut a, now);
    }
    assert!(a.peer.handshake_complete() && b.peer.handshake_complete());
    (a, b)
}

const BATCH: u64 = 1000;

fn round(a: &mut Side, b: &mut Side, invs: &[InvVect], now: Instant) {
    for i in 0..BATCH {
        a.peer
            .queue_message(Message::Ping(Ping { nonce: i + 1 }), None);
    }
    for iv in invs {
        a.peer
            .queue_message(Message::Inv(Inventory::new(vec![*iv])), None);
    }
    transfer(a, b, now);
    pump(b, now);
    transfer(b, a, now);
    pump(a, now);
}

fn bench_pair(c: &mut Criterion) {
    let now = Instant::now();
    let invs: Vec<InvVect> = (0..BATCH)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            InvVect::new(InvType::TX, Hash256(h))
        })
        .collect();
    let mut g = c.benchmark_group("pair");
    // Per round: BATCH pings, BATCH pongs, BATCH invs.
    g.throughput(Throughput::Elements(3 * BATCH));
    for (name, io, v2) in [
        ("ping_pong_inv", true, false),
        ("ping_pong_inv_no_io_events", false, false),
        ("ping_pong_inv_v2", true, true),
    ] {
        let cfg = config(io);
        let (mut a, mut b) = connected_over(&cfg, now, v2);
        g.bench_function(name, |bench| {
            bench.iter(|| round(&mut a, &mut b, black_box(&invs), now))
        });
        assert!(!a.peer.is_closed() && !b.peer.is_closed());
    }
    g.finish();
}

/// One server-side ping round trip, as peer-runtime's driver does it: the `ping`'s bytes
/// in, the events drained to the listener, the `pong` written, the next deadline asked.
#[inline(never)]
fn server_ping_round_trip(server: &mut Side, ping: &[u8], now: Instant) -> Option<Instant> {
    server.peer.handle_input(ping, now);
    pump(server, now);
    let n = server.peer.transmit().len();
    server.peer.advance_transmit(n, now);
    pump(server, now);
    server.peer.poll_timeout()
}

fn bench_server(c: &mut Criterion) {
    let now = Instant::now();
    let cfg = config(false);
    let (mut client, mut server) = connected(&cfg, now);
    client
        .peer
        .queue_message(Message::Ping(Ping { nonce: 7 }), None);
    let ping = client.peer.transmit().to_vec();
    // The server answers with a pong of the ping's size (the same 8-byte payload).
    server_ping_round_trip(&mut server, &ping, now);
    assert_eq!(server.peer.queued_bytes(), 0);
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping_round_trip", |bench| {
        bench.iter(|| server_ping_round_trip(&mut server, black_box(&ping), now))
    });
    // The same over 1,000 established peers in turn, as a server's peers take turns:
    // each round trip finds its peer's state out of the nearest caches.
    let mut servers: Vec<(Side, Vec<u8>)> = (0..1000)
        .map(|_| {
            let (mut client, server) = connected(&cfg, now);
            client
                .peer
                .queue_message(Message::Ping(Ping { nonce: 7 }), None);
            let ping = client.peer.transmit().to_vec();
            (server, ping)
        })
        .collect();
    let mut next = 0;
    g.bench_function("ping_round_trip_1000_peers", |bench| {
        bench.iter(|| {
            let (server, ping) = &mut servers[next];
            next = (next + 1) % 1000;
            server_ping_round_trip(server, black_box(ping), now)
        })
    });
    g.finish();
    assert!(!server.peer.is_closed());
    assert!(servers.iter().all(|(s, _)| !s.peer.is_closed()));
}

/// Heap bytes per established, idle peer (its receive buffer included: empty, it holds
/// nothing).
fn idle_peer_heap() -> (usize, usize) {
    idle_peer_heap_over(false)
}

/// [`idle_peer_heap`] over v1 or v2.
fn idle_peer_heap_over(v2: bool) -> (usize, usize) {
    let now = Instant::now();
    let cfg = config(true);
    const N: usize = 100;
    let before = LIVE.load(Ordering::Relaxed);
    let mut peers = Vec::with_capacity(2 * N);
    let vec_bytes = 2 * N * std::mem::size_of::<Side>();
    for _ in 0..N {
        // The receive buffers are the peers' own now, and empty ones hold no memory.
        let (a, b) = connected_over(&cfg, now, v2);
        peers.push(a);
        peers.push(b);
    }
    let after = LIVE.load(Ordering::Relaxed);
    let total = (after - before) as usize - vec_bytes;
    black_box(&peers);
    (total / (2 * N), std::mem::size_of::<Peer>())
}

fn bench_memory(c: &mut Criterion) {
    let (per_peer, struct_size) = idle_peer_heap();
    println!(
        "idle peer heap: {per_peer} bytes per established peer (of which the boxed Peer struct: {struct_size} bytes); goal <= 2048"
    );
    let (per_peer_v2, _) = idle_peer_heap_over(true);
    println!("idle v2 peer heap: {per_peer_v2} bytes per established BIP324 peer; goal <= 4096");
    // Also time creating + handshaking a pair, which is what the number above costs.
    let now = Instant::now();
    let cfg = config(true);
    c.bench_function("pair/handshake", |bench| {
        bench.iter(|| black_box(connected(&cfg, now)))
    });
    c.bench_function("pair/handshake_v2", |bench| {
        bench.iter(|| black_box(connected_over(&cfg, now, true)))
    });
}

/// The known-inventory filters of 1,000 busy peers: every filter full (1,000 entries),
/// new entries arriving in batches of 64 per peer, round robin — an inv flood at a busy
/// server, where the filters do not fit in the CPU caches.
fn bench_known_inventory(c: &mut Criterion) {
    const PEERS: usize = 1000;
    const PER_VISIT: u64 = 64;
    let now = Instant::now();
    let cfg = config(false);
    let entry = |n: u64| {
        let mut h = [0x5au8; 32];
        h[..8].copy_from_slice(&n.to_le_bytes());
        InvVect::new(InvType::TX, Hash256(h))
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut peers: Vec<Peer> = (0..PEERS)
        .map(|i| {
            Peer::new_inbound(
                cfg.clone(),
                SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 8333)),
                now,
                1_700_000_000,
                i as u64,
            )
        })
        .collect();
    let empty = LIVE.load(Ordering::Relaxed);
    let mut n = 0u64;
    for p in &mut peers {
        for _ in 0..1000 {
            p.add_known_inventory(entry(n));
            n += 1;
        }
    }
    let full = LIVE.load(Ordering::Relaxed);
    println!(
        "known-inventory filter: {} bytes per peer with 1,000 entries ({} bytes per peer before any)",
        (full - empty) / PEERS as isize,
        (empty - before) / PEERS as isize
    );
    let mut g = c.benchmark_group("known_inventory");
    g.throughput(Throughput::Elements(PEERS as u64 * PER_VISIT));
    g.bench_function("add_to_full_filters_1000_peers", |bench| {
        bench.iter(|| {
            for p in &mut peers {
                for _ in 0..PER_VISIT {
                    p.add_known_inventory(entry(n));
                    n += 1;
                }
            }
        })
    });
    g.finish();
    // Still a filter: the newest entry is known, the first ones were evicted long ago.
    let newest = entry(u64::MAX);
    peers[0].add_known_inventory(newest);
    assert!(peers[0].knows_inventory(&newest) && !peers[0].knows_inventory(&entry(0)));
}

criterion_group!(
    benches,
    bench_memory,
    bench_pair,
    bench_server,
    bench_known_inventory
);
criterion_main!(benches);
