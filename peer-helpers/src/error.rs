//! The one error type of the crate. Every variant states a fact about what the caller
//! asked for; nothing was queued when a helper returns one.

use core::fmt;

/// Why a helper queued nothing.
///
/// Each variant names what was wrong with the request and carries the numbers that show
/// it, so the caller can log it or fix the call. A helper that returns an error has not
/// touched the queue and has not changed any [`RequestFilter`](crate::RequestFilter).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A `getblocks` or `getheaders` locator has more hashes than a message may carry.
    LocatorTooLong {
        /// Hashes in the locator handed in.
        len: usize,
        /// The most a message may carry ([`Limits::max_locator`](wire_codec::Limits)).
        max: usize,
    },
    /// The chain lookup of a locator builder had no hash for a height at or below the tip.
    MissingBlock {
        /// The height the lookup returned `None` for.
        height: u32,
    },
    /// `addrv2` was asked for, but the peer never sent `sendaddrv2` (BIP155 allows
    /// `addrv2` only to peers that asked for it).
    AddrV2NotNegotiated,
    /// A reject names a command longer than the 12 bytes of a command field.
    RejectCommandTooLong {
        /// Bytes in the command handed in.
        len: usize,
        /// The longest command (12).
        max: usize,
    },
    /// A reject reason is longer than receivers accept ([`Limits::max_reject_reason`](wire_codec::Limits)).
    RejectReasonTooLong {
        /// Bytes in the reason handed in.
        len: usize,
        /// The longest reason accepted.
        max: usize,
    },
    /// A reject of a `block` or `tx` came without the hash of what is rejected (the
    /// message format requires it; btcd sends a zero hash instead, which names nothing).
    RejectHashMissing {
        /// The command (`block` or `tx`).
        command: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LocatorTooLong { len, max } => {
                write!(
                    f,
                    "block locator has {len} hashes, a message carries at most {max}"
                )
            }
            Error::MissingBlock { height } => {
                write!(f, "the chain has no block hash at height {height}")
            }
            Error::AddrV2NotNegotiated => {
                f.write_str("the peer did not send sendaddrv2, so addrv2 may not be sent")
            }
            Error::RejectCommandTooLong { len, max } => {
                write!(f, "reject command is {len} bytes, at most {max} allowed")
            }
            Error::RejectReasonTooLong { len, max } => {
                write!(f, "reject reason is {len} bytes, at most {max} allowed")
            }
            Error::RejectHashMissing { command } => {
                write!(f, "a reject of {command:?} must carry the rejected hash")
            }
        }
    }
}

impl std::error::Error for Error {}
