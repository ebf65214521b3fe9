//! # peer-runtime
//!
//! A thread-per-core runtime for `peer_core` peers on glommio (io_uring): one executor
//! pinned per CPU, each with its own `SO_REUSEPORT` listener, tens of thousands of peers
//! per process, and a [`PeerHandle`] that any thread can use.
//!
//! - An inbound peer lives on the executor that accepted it; outbound connections are
//!   spread round robin; a caller-made `std::net::TcpStream` can be handed over
//!   ([`Runtime::add_connection`]).
//! - Each peer is one task: it feeds received bytes to its `peer_core::Peer`, hands
//!   events to the application's [`peer_core::Listener`] (timing the callbacks for stall
//!   accounting), writes all pending output in one `send` (or one vectored `sendmsg`
//!   when shared frames make it several segments: glommio 0.9's stream has no vectored
//!   write of its own), and sleeps until its socket, its next deadline, or a command
//!   from a handle wakes it. An idle peer holds no receive
//!   buffer.
//! - Sending: a message queued with [`PeerHandle::queue_message`] is encoded into that
//!   peer's own output buffer (one copy per peer; small messages batch into one `send`).
//!   A large payload for many peers — a block — is encoded once as a
//!   [`peer_core::SharedFrame`] and queued with [`PeerHandle::queue_frame`] or
//!   [`Runtime::broadcast`]: over v1 each peer's output keeps a reference to the one
//!   encoded frame and the driver sends straight from it, never a copy per peer. Over v2
//!   (BIP324) each session encrypts the frame into its own buffer: that copy is
//!   inherent.
//! - [`PeerHandle`] queues messages (with a [`Notification`] that resolves exactly once
//!   to [`Delivery::Sent`] or [`Delivery::Failed`]), inventory, disconnects, reads
//!   statistics and waits for the handshake or the end — asynchronously or blocking. It
//!   implements [`peer_helpers::MessageQueue`], so `push_addr`, `push_get_headers` and
//!   `push_reject` work through it.
//! - [`Limits`]: peers in all, per executor, inbound per IP and per network group
//!   (Core's groups, with Core's eviction when every slot is taken); accepting backs
//!   off when descriptors run out; [`Runtime::shutdown`] stops accepting, disconnects
//!   every peer, answers every pending notification and joins the executors.
//! - Backpressure (Core's `fPauseSend`): a peer with `Limits::send_pause_bytes` unsent
//!   is neither read nor processed until it drains, and ends `SendStalled` if nothing
//!   is written for `Limits::send_progress_timeout`; handles' messages wait for room
//!   (never dropped below `Limits::max_queued_bytes_per_peer`;
//!   [`PeerHandle::wait_for_room`]); a process-wide `Limits::memory_budget` (scaled
//!   with `max_peers`) pauses the peers over their share and stops accepting from half
//!   of it, keeping the total within it.
//!
//! ```
//! use std::sync::Arc;
//! use peer_core::{Config, NonceSet};
//! use peer_runtime::{Delivery, Runtime};
//! use wire_codec::{message::{Ping, ServiceFlags}, Message, Network};
//!
//! // Two nodes in one process: each gets its own nonce set, or the handshake would
//! // look like a connection to ourselves.
//! let config = || {
//!     let mut c = Config::new(Network::Regtest);
//!     c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
//!     c.nonces = Some(Arc::new(NonceSet::new()));
//!     c
//! };
//! let server = Runtime::builder(Network::Regtest)
//!     .configure(|c| *c = config())
//!     .executors(1)
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .start()
//!     .unwrap();
//! let client = Runtime::builder(Network::Regtest)
//!     .configure(|c| *c = config())
//!     .executors(1)
//!     .start()
//!     .unwrap();
//! let peer = client.connect(server.local_addr().unwrap()).wait().unwrap();
//! assert_eq!(peer.wait_for_handshake_blocking(), Ok(70016));
//! assert_eq!(peer.queue_message(Message::Ping(Ping { nonce: 7 })).wait(), Delivery::Sent);
//! client.shutdown(); // disconnects the peer; the server sees it go
//! server.shutdown();
//! ```
//!
//! ## Contents
//! - [`runtime`][]: [`Runtime`], [`RuntimeBuilder`], [`NoopListener`].
//! - [`handle`][]: [`PeerHandle`], [`Direction`], [`Delivery`], [`Notification`],
//!   [`Notifier`].
//! - [`pending`][]: [`Pending`], an answer to await or wait for.
//! - [`limits`][]: [`Limits`].
//! - [`netgroup`][]: network groups (Core's `GetGroup`) and `is_routable`.
//! - [`counters`][]: [`RuntimeStats`].
//! - [`error`][]: [`Error`].
//! - [`dial`][]: [`dial::connect_from`], a connection from a chosen local address.
//! - internal, one executor: `serve` (its main loop), `control` (what the runtime asks
//!   of it), `shared` (what other threads see of it), `executor` (its local state:
//!   scratch buffer, tasks, shutdown, memory budget), `accept` (the acceptor),
//!   `connect` (outbound and caller-made connections), `start` (a peer's start);
//!   `driver` (the per-peer task: backpressure, pacing), `evict` (Core's inbound
//!   eviction), `mailbox`, `lifecycle`, `adopt` (caller-made streams).

#![forbid(unsafe_code)]

mod accept;
mod adopt;
mod connect;
mod control;
pub mod counters;
pub mod dial;
mod driver;
pub use driver::RUNTIME_TOKEN_BIT;
pub mod error;
mod evict;
mod executor;
pub mod handle;
mod lifecycle;
pub mod limits;
mod mailbox;
pub mod netgroup;
pub mod options;
pub mod pending;
pub mod runtime;
mod serve;
mod shared;
mod start;

pub use control::ListenerFactory;
pub use counters::RuntimeStats;
pub use error::Error;
pub use handle::{Delivery, Direction, Notification, Notifier, PeerHandle};
pub use limits::Limits;
pub use options::PeerOptions;
pub use pending::Pending;
pub use runtime::{
    NoopListener, PeerRequest, Runtime, RuntimeBuilder, DEFAULT_IO_MEMORY,
    DEFAULT_WAKE_BATCH_DELAY, DEFAULT_WAKE_BATCH_EVENTS,
};
