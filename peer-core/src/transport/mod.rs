//! The layer between a connection's bytes and its frames.
//!
//! Everything above it (the handshake rules, keep-alive, stall detection, statistics,
//! listeners) sees [`wire_codec::Frame`]s and never knows which transport carried them.
//!
//! - [`detect`](mod@detect): how a responder tells a v1 initiator from a v2 one by the first 16 bytes.
//! - [`v2`]: [`V2Transport`], BIP324's encrypted transport (key exchange, garbage, version
//!   packet, decoys, rekeying) as a sans-IO state machine over the `bip324` crate.
//! - [`v2_messages`]: BIP324's one-byte message IDs and the long (13-byte) form.

pub mod detect;
pub mod v2;
pub mod v2_messages;

pub use detect::{detect, Detected, V1_PREFIX_LEN};
pub use v2::{Received, Side, V2Transport, MAX_GARBAGE_LEN};

/// Which transport a connection speaks (shown in statistics and on the runtime's handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransportVersion {
    /// Plaintext frames: magic, command, length, double-SHA-256 checksum.
    #[default]
    V1,
    /// BIP324: encrypted, authenticated packets.
    V2,
}

impl core::fmt::Display for TransportVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TransportVersion::V1 => "v1",
            TransportVersion::V2 => "v2",
        })
    }
}
