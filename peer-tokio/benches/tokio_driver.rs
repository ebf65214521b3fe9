//! The tokio driver's hot path: a ping/pong round trip between two peer-tokio nodes
//! over loopback TCP (one peer; the cost is the driver's wake-ups plus peer-core's
//! encode/decode, and the kernel's loopback).

#![allow(missing_docs)] // criterion_group! makes undocumented functions

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use peer_core::{Config, Listener, NonceSet, Peer};
use peer_tokio::NodeBuilder;
use tokio::sync::mpsc;
use wire_codec::message::{Ping, Pong};
use wire_codec::{Message, Network};

struct Pongs(mpsc::UnboundedSender<u64>);

impl Listener for Pongs {
    fn on_pong(&mut self, _peer: &mut Peer, msg: Pong) {
        let _ = self.0.send(msg.nonce);
    }
}

fn builder() -> NodeBuilder {
    let mut c = Config::new(Network::Regtest);
    c.nonces = Some(Arc::new(NonceSet::new()));
    NodeBuilder::with_config(c)
}

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (srv, cli, peer) = rt.block_on(async {
        let srv = builder().build().unwrap();
        let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let cli = builder()
            .listener_factory(move |_| Box::new(Pongs(tx.clone())))
            .build()
            .unwrap();
        let peer = cli.connect(addr).await.unwrap();
        peer.wait_for_handshake().await.unwrap();
        (srv, cli, peer)
    });
    let mut g = c.benchmark_group("tokio_driver");
    g.throughput(Throughput::Elements(1));
    let mut nonce = 0u64;
    g.bench_function("ping_round_trip", |b| {
        b.iter(|| {
            nonce += 1;
            rt.block_on(async {
                peer.queue_message_detached(Message::Ping(Ping { nonce }));
                while rx.recv().await != Some(nonce) {}
            })
        })
    });
    g.finish();
    rt.block_on(async {
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
