//! Pings a Bitcoin peer from tokio and prints the round trips.
//!
//! ```text
//! cargo run -p peerwire-tokio --example ping                       # two nodes in this process
//! cargo run -p peerwire-tokio --example ping -- 127.0.0.1:18444 regtest 5
//! ```
//!
//! With no address it starts a listening node and pings it from a second node, so the
//! example runs anywhere; with one it connects there (network default `regtest`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peer_core::{Listener, NonceSet, Peer};
use peer_tokio::{Delivery, Node};
use tokio::sync::mpsc;
use wire_codec::message::{Ping, Pong};
use wire_codec::{Message, Network};

/// Reports every pong's nonce to the main task.
struct Pongs(mpsc::UnboundedSender<u64>);

impl Listener for Pongs {
    fn on_pong(&mut self, _peer: &mut Peer, msg: Pong) {
        let _ = self.0.send(msg.nonce);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("ping (peer-tokio) {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let target: Option<SocketAddr> = args.first().map(|a| a.parse()).transpose()?;
    let network: Network = args.get(1).map_or(Ok(Network::Regtest), |n| n.parse())?;
    let count: u64 = args.get(2).map_or(Ok(3), |n| n.parse())?;

    // A server in this process when no target was given.
    let server = match target {
        Some(_) => None,
        None => {
            let node = Node::builder(network)
                .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
                .build()?;
            let addr = node.listen("127.0.0.1:0".parse()?).await?;
            Some((node, addr))
        }
    };
    let addr = target
        .or(server.as_ref().map(|s| s.1))
        .ok_or("no address")?;

    let (tx, mut pongs) = mpsc::unbounded_channel();
    let client = Node::builder(network)
        .listener_factory(move |_| Box::new(Pongs(tx.clone())))
        .build()?;
    let peer = client.connect(addr).await?;
    let version = peer
        .wait_for_handshake()
        .await
        .map_err(|r| format!("handshake failed: {r}"))?;
    println!("connected to {addr}: protocol version {version}");
    for nonce in 1..=count {
        let start = Instant::now();
        if peer.queue_message(Message::Ping(Ping { nonce })).await != Delivery::Sent {
            return Err("the ping was not sent".into());
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(10), pongs.recv()).await {
                Ok(Some(n)) if n == nonce => break,
                Ok(Some(_)) => continue,
                _ => return Err("no pong within 10 s".into()),
            }
        }
        println!("pong {nonce}: {:?}", start.elapsed());
    }
    client.shutdown().await;
    if let Some((node, _)) = server {
        node.shutdown().await;
    }
    Ok(())
}
