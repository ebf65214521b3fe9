//! Criterion benches of the seeder's hot paths: building a DNS answer (parse, select,
//! encode), picking good nodes over network groups, and the crawl table's take/report
//! cycle.

use std::net::SocketAddr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hickory_proto::rr::RecordType;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use seeder::answer_cache::AnswerCache;
use seeder::db::{NodeDb, Outcome};
use seeder::dns::{query_bytes, respond, Transport, Zone};
use seeder::goodset::GoodSet;
use seeder::node::Rules;
use wire_codec::Network;

/// 10,000 good nodes over 1,000 IPv4 /16s and 200 IPv6 /32s, mixed services.
fn good_set() -> GoodSet {
    let mut v: Vec<(SocketAddr, u64)> = Vec::new();
    for i in 0..10_000u32 {
        let a = 1 + (i % 1000) / 250;
        let b = (i % 250) as u8;
        let s = if i % 3 == 0 { 0x409 } else { 0x9 };
        v.push((
            SocketAddr::from(([a as u8 + 10, b, (i / 1000) as u8, 7], 8333)),
            s,
        ));
    }
    for i in 0..2_000u32 {
        let addr: SocketAddr = format!("[2a01:{:x}::{:x}]:8333", i % 200, i)
            .parse()
            .unwrap();
        v.push((addr, 0x409));
    }
    GoodSet::build(v)
}

fn dns(c: &mut Criterion) {
    let zone = Zone::new("seed.example.org", "ns.example.org").unwrap();
    let good = good_set();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut g = c.benchmark_group("dns_answer");
    g.throughput(Throughput::Elements(1));
    for (name, qname, t) in [
        ("a_apex", "seed.example.org.", RecordType::A),
        ("aaaa_apex", "seed.example.org.", RecordType::AAAA),
        ("a_filter_x409", "x409.seed.example.org.", RecordType::A),
        ("nxdomain", "www.seed.example.org.", RecordType::A),
    ] {
        let q = query_bytes(1, qname, t);
        g.bench_function(name, |b| {
            b.iter(|| respond(&zone, &good, black_box(&q), Transport::Udp, &mut rng))
        });
    }
    let shared = std::sync::Arc::new(good.clone());
    let mut cache = AnswerCache::default();
    let q = query_bytes(1, "seed.example.org.", RecordType::A);
    g.bench_function("a_apex_pooled", |b| {
        b.iter(|| cache.respond(&zone, &shared, black_box(&q), &mut rng))
    });
    g.finish();
}

fn select(c: &mut Criterion) {
    let good = good_set();
    let mut rng = SmallRng::seed_from_u64(2);
    let mut out = Vec::with_capacity(32);
    let mut g = c.benchmark_group("good_select");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v4_30_any", |b| {
        b.iter(|| {
            out.clear();
            good.select(false, 0, 30, &mut rng, &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("v4_30_x400", |b| {
        b.iter(|| {
            out.clear();
            good.select(false, 0x400, 30, &mut rng, &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("build_12000", |b| b.iter(good_set));
    g.finish();
}

fn crawl_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("node_db");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("take_report_1000", |b| {
        let mut db = NodeDb::new(Rules::for_network(Network::Regtest, true), 1);
        let addrs: Vec<(SocketAddr, u64)> = (0..20_000u32)
            .map(|i| {
                (
                    SocketAddr::from(([127, 10 + (i % 100) as u8, (i / 100) as u8, 1], 18444)),
                    9,
                )
            })
            .collect();
        for chunk in addrs.chunks(1000) {
            db.learn(SocketAddr::from(([127, 0, 0, 1], 1)), chunk);
        }
        let mut now = 1_000u64;
        b.iter(|| {
            now += 2;
            let due = db.take_due(1000, now);
            for a in due {
                db.report(
                    a,
                    Outcome::Success {
                        version: 70016,
                        services: 9,
                        height: 1,
                        user_agent: String::new(),
                        rtt_ms: 1,
                    },
                    now,
                );
            }
        })
    });
    g.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, dns, select, crawl_table);
}
criterion_main!(group::benches);
