//! # peer-core
//!
//! One Bitcoin (or LBRY) peer connection's protocol as a sans-IO state machine: it does
//! what btcd's `peer` package does — version handshake and negotiation, self-connection
//! detection, keep-alive pings and the idle timeout, inventory trickling with a
//! known-inventory filter, BIP37/BIP111 bloom rules, protocol-version gating, stall
//! detection, a bounded output queue with exactly-once notifications, statistics and a
//! listener interface — but it never touches a socket or a clock.
//!
//! The driver contract (after str0m's "single mutation" rule): after every call that
//! brings input — [`Peer::handle_read`] / [`Peer::handle_input`],
//! [`Peer::handle_timeout`], [`Peer::advance_transmit`], [`Peer::queue_message`],
//! [`Peer::accept_version`], … — drain [`Peer::poll_event`], write
//! [`Peer::transmit`] (the first segment of the output; or all of them at once with
//! [`Peer::transmit_vectored`]) while [`Peer::wants_write`], reporting each write with
//! [`Peer::advance_transmit`], and sleep until [`Peer::poll_timeout`] or new input. When
//! [`Peer::is_closed`], write what `transmit` still holds (a final reject)
//! best-effort and close the connection.
//!
//! The peer owns its receive buffer ([`transport`]): hand it every byte read and keep
//! none. Whatever the peer cannot process yet (while the application decides on the
//! remote's version) waits inside it and is processed as soon as it can be, without
//! new input — so there is no "call again" rule a driver could miss.
//!
//! See [`Peer`] for a complete two-peer example.
//!
//! ## Contents
//! - [`config`]: [`Config`], [`Timeouts`] and the defaults.
//! - [`peer`]: [`Peer`], its state, input, output and events; the dispatcher that
//!   hands each message to the rules below. Each rule's reactions sit next to its
//!   state, as `impl Peer` blocks in its own file:
//! - [`handshake`]: the handshake's rules and [`Phase`].
//! - [`keepalive`]: pings, pongs and the idle timeout.
//! - [`inventory`]: batching, trickling, the known-inventory filter, announcements.
//! - [`stall`]: deadlines for expected responses.
//! - `bloom.rs`: the BIP111 bloom-service rule.
//! - `gating.rs`: protocol-version gating of received and sent messages.
//! - `malformed.rs`: what bytes that do not decode do to a peer.
//! - [`transport`]: between bytes and frames — the receive buffer, v1 framing, the
//!   seam for BIP324.
//! - [`outbound`]: the bounded output queue (a contiguous buffer for small messages,
//!   shared segments for large frames) and its notifications.
//! - [`frame`]: [`SharedFrame`], a message encoded once for many peers.
//! - [`mru`]: [`MruSet`], the O(1) MRU set behind the filters.
//! - [`nonce`]: [`NonceSet`], our recent version nonces (self-connection detection).
//! - [`event`]: [`Event`], what the peer reports.
//! - [`listener`]: [`Listener`] and [`dispatch`].
//! - [`reason`]: why a peer ended, [`DisconnectReason`].
//! - [`stats`]: [`StatsSnapshot`] and [`Features`].
//! - [`transport`]: the layer between bytes and frames: v1 detection and BIP324 v2
//!   ([`transport::V2Transport`]).
//! - [`log`]: one-line message summaries and hex dumps for `tracing`.
//! - [`error`]: the crate's error, [`Error`].
//! - `fuzzing` (feature `fuzzing`): `fuzzing::fuzz_peer`, the
//!   entry point of the fuzz target.

#![forbid(unsafe_code)]

mod bloom;
pub mod config;
pub mod error;
pub mod event;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gating;
pub mod handshake;
pub mod inventory;
pub mod keepalive;
mod keyed_hash;
pub mod listener;
pub mod log;
mod malformed;
pub mod mru;
pub mod nonce;
pub mod outbound;
pub mod peer;
pub mod reason;
pub mod stall;
pub mod stats;
mod timer;
pub mod transport;

pub use config::{
    Config, HostToNetAddressFn, NewestBlockFn, Timeouts, BASE_USER_AGENT, DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_PRE_HANDSHAKE_PAYLOAD, DEFAULT_TRICKLE_INTERVAL, MAX_USER_AGENT_LEN,
    MIN_ACCEPTABLE_PROTOCOL_VERSION,
};
pub use error::Error;
pub use event::Event;
pub use frame::{SharedFrame, LARGE_FRAME, TRANSMIT_SLICES};
pub use handshake::Phase;
pub use inventory::{MAX_INV_TRICKLE_SIZE, MAX_KNOWN_INVENTORY};
pub use listener::{dispatch, Listener};
pub use mru::MruSet;
pub use nonce::{NonceSet, SENT_NONCES_CAPACITY};
pub use outbound::Encoding;
pub use peer::Peer;
pub use reason::DisconnectReason;
pub use stats::{Features, StatsSnapshot};
