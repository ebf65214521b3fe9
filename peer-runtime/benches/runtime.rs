//! Hot paths of the runtime, end to end: a message queued on a `PeerHandle` travels to
//! the peer's executor, is encoded, written to loopback TCP, read and decoded by the
//! remote runtime. Also the cost of one notification (create, answer, wait).
//!
//! Run: `cargo bench -p peerwire-runtime --bench runtime`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use peer_core::{Config, NonceSet};
use peer_runtime::{Delivery, Notifier, PeerHandle, Runtime};
use wire_codec::message::{Ping, ServiceFlags};
use wire_codec::{Message, Network};

fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

fn pair() -> (Runtime, Runtime, PeerHandle) {
    let server = Runtime::builder(Network::Regtest)
        .configure(|c| *c = config())
        .executors(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let client = Runtime::builder(Network::Regtest)
        .configure(|c| *c = config())
        .executors(1)
        .start()
        .unwrap();
    let peer = client.connect(server.local_addr().unwrap()).wait().unwrap();
    peer.wait_for_handshake_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    (server, client, peer)
}

fn notification(c: &mut Criterion) {
    c.bench_function("notification/create+answer+wait", |b| {
        b.iter(|| {
            let (n, p) = Notifier::new();
            drop(n);
            assert_eq!(p.wait(), Delivery::Failed);
        })
    });
}

fn loopback(c: &mut Criterion) {
    let (server, client, peer) = pair();
    let mut g = c.benchmark_group("loopback");
    const BATCH: u64 = 1000;
    g.throughput(Throughput::Elements(BATCH));
    // 1000 pings queued from a foreign thread, the last one with a notification: the
    // time until it is written covers the handle, the mailbox, encoding and the sends.
    g.bench_function("queue 1000 pings, wait last sent", |b| {
        let mut nonce = 0u64;
        b.iter(|| {
            for _ in 0..BATCH - 1 {
                nonce += 1;
                peer.queue_message_detached(Message::Ping(Ping { nonce }));
            }
            nonce += 1;
            let n = peer.queue_message(Message::Ping(Ping { nonce }));
            assert_eq!(n.wait(), Delivery::Sent);
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping with notification, one at a time", |b| {
        b.iter(|| {
            let n = peer.queue_message(Message::Ping(Ping { nonce: 1 }));
            assert_eq!(n.wait(), Delivery::Sent);
        })
    });
    g.finish();
    client.shutdown();
    server.shutdown();
}

/// Every benchmark of this file.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    notification(&mut c);
    loopback(&mut c);
}

criterion_main!(benches);
