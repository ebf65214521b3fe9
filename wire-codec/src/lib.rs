//! # wire-codec
//!
//! The Bitcoin and LBRY peer-to-peer wire format, with no I/O: networks and their magics,
//! the 24-byte frame header and its double-SHA-256 checksum, CompactSize, every message of
//! the protocol, a streaming frame decoder over `BytesMut`, and the protocol's limits.
//!
//! Decoding is zero-copy (payloads, scripts, witnesses and raw transactions are `Bytes`
//! slices of what was received), checks every count and length against the protocol
//! maximum *and* against the bytes actually present before reserving anything, verifies
//! the checksum exactly once, and never panics. Encoding writes each message once, into
//! the caller's buffer, and hashes the written bytes.
//!
//! ```
//! use bytes::BytesMut;
//! use wire_codec::{encode_frame, message::Ping, Context, FrameDecoder, Message, Network};
//!
//! let net = Network::Regtest;
//! let ctx = Context::new(net, 70016);
//! let mut wire = BytesMut::new();
//! encode_frame(net.magic(), &Message::Ping(Ping { nonce: 7 }), &ctx, &mut wire).unwrap();
//!
//! let mut decoder = FrameDecoder::new(net);
//! let frame = decoder.decode(&mut wire).unwrap().expect("a whole frame");
//! assert_eq!(frame.decode(&ctx).unwrap(), Message::Ping(Ping { nonce: 7 }));
//! ```
//!
//! ## Contents
//! - [`network`]: [`Network`], magics, ports, [`HeaderKind`], payload maxima.
//! - [`header`]: [`FrameHeader`], the 24-byte header layout.
//! - [`command`]: [`Command`], the 12-byte command name.
//! - [`checksum()`]: the frame checksum; [`Hash256`] and double SHA-256 in [`hash`].
//! - [`compact_size`]: CompactSize with canonical-form checks.
//! - [`reader`]: [`Reader`], the bounds-checked zero-copy cursor every decoder uses.
//! - [`frame`]: [`FrameDecoder`] (stream → frames) and [`encode_frame`].
//! - [`message`]: [`Message`] and one type per payload.
//! - [`limits`]: [`Limits`], the size limits in one place.
//! - [`version`]: protocol version numbers that switch features on.
//! - [`error`]: [`Error`], one enum of facts, and [`ErrorClass`].
//! - `bitcoin_compat` (feature `bitcoin`): `From`/`TryFrom` to and from the `bitcoin` crate's types.

#![forbid(unsafe_code)]

#[cfg(feature = "bitcoin")]
pub mod bitcoin_compat;
pub mod checksum;
pub mod command;
pub mod compact_size;
pub mod error;
pub mod frame;
pub mod hash;
pub mod header;
pub mod limits;
pub mod message;
pub mod network;
pub mod reader;
mod sha256d;
pub mod version;

pub use checksum::{checksum, ChecksumMemo, EMPTY_CHECKSUM};
pub use command::Command;
pub use error::{Error, ErrorClass, Result};
pub use frame::{encode_frame, Frame, FrameDecoder};
pub use hash::Hash256;
pub use header::{FrameHeader, HEADER_LEN};
pub use limits::Limits;
pub use message::{Context, Message, Payload};
pub use network::{HeaderKind, Network, NetworkParams};
pub use reader::Reader;
