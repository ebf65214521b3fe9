//! # peer-tokio
//!
//! [`peer_core`]'s sans-IO peers driven on tokio, as `lightning-net-tokio` drives LDK's
//! peer manager: [`Node::connect`], [`Node::listen`] (or [`Node::add_connection`] with a
//! socket you made), a `Send + Sync + Clone` [`PeerHandle`], and the same
//! [`peer_core::Listener`] callbacks the glommio runtime (`peer-runtime`) calls — a
//! listener written for one runs on the other unchanged.
//!
//! Each peer is one tokio task that follows peer-core's driver contract: feed received
//! bytes, drain events into the listener, write what the peer transmits, sleep until the
//! socket, the peer's next deadline or a handle's command. Protocol rules all live in
//! peer-core; this crate only moves bytes and time.
//!
//! ```
//! use std::sync::Arc;
//! use peer_core::{Config, Listener, NonceSet, Peer};
//! use peer_tokio::Node;
//! use wire_codec::{message::Ping, Message, Network};
//!
//! struct Greeter;
//! impl Listener for Greeter {
//!     fn on_handshake_complete(&mut self, peer: &mut Peer, _version: u32) {
//!         peer.queue_message(Message::Ping(Ping { nonce: 42 }), None);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let node = || {
//!     Node::builder(Network::Regtest)
//!         .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
//!         .listener_factory(|_| Box::new(Greeter))
//!         .build()
//!         .unwrap()
//! };
//! let (server, client) = (node(), node());
//! let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
//! let peer = client.connect(addr).await.unwrap();
//! assert_eq!(peer.wait_for_handshake().await, Ok(70016));
//! client.shutdown().await;
//! server.shutdown().await;
//! # }
//! ```
//!
//! ## Contents
//! - [`node`][]: [`Node`], [`NodeBuilder`], [`NodeStats`], [`NoopListener`], [`ListenerFactory`],
//!   [`DEFAULT_SEND_PAUSE_BYTES`].
//! - [`handle`][]: [`PeerHandle`], [`Direction`], [`Delivery`], [`Notification`].
//! - [`error`][]: [`Error`].
//! - internal: `driver` (the per-peer task); [`HANDLE_TOKEN_BIT`] marks its tokens.

#![forbid(unsafe_code)]

mod driver;
pub mod error;
pub mod handle;
pub mod node;

pub use driver::HANDLE_TOKEN_BIT;
pub use error::Error;
pub use handle::{Delivery, Direction, Notification, PeerHandle};
pub use node::{
    ListenerFactory, Node, NodeBuilder, NodeStats, NoopListener, DEFAULT_SEND_PAUSE_BYTES,
};
