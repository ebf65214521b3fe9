//! The one error type of the codec. Every variant states a fact about the input.

use core::fmt;

use crate::command::Command;

/// Everything that can be wrong with bytes handed to the codec.
///
/// Each variant names what was wrong and carries the numbers that prove it, so a
/// caller can log it, count it, or map it to a protocol reaction (`peer-core` does
/// the latter). [`Error::class`] groups variants the way the wire vectors do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The header's magic is not the magic of the stream's network.
    BadMagic {
        /// The magic the decoder was configured with (wire order).
        expected: [u8; 4],
        /// The magic found in the header (wire order).
        actual: [u8; 4],
    },
    /// The payload's double-SHA-256 does not start with the header's checksum.
    ChecksumMismatch {
        /// The checksum the header announced.
        expected: [u8; 4],
        /// The checksum of the payload as received.
        actual: [u8; 4],
    },
    /// The header announces a payload larger than the configured maximum. Nothing was
    /// reserved for it.
    PayloadTooLarge {
        /// The announced payload length.
        len: u64,
        /// The largest payload accepted.
        max: u64,
    },
    /// The input ends before a field (or a count or length prefix) is complete.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes that were left.
        available: u64,
    },
    /// A CompactSize uses a longer form than its value needs.
    NonCanonicalCompactSize {
        /// The prefix byte (`0xfd`, `0xfe` or `0xff`).
        prefix: u8,
        /// The value it carried.
        value: u64,
    },
    /// A list has more entries than the protocol allows.
    TooManyEntries {
        /// Which list.
        what: &'static str,
        /// How many the input announced.
        count: u64,
        /// The maximum allowed.
        max: u64,
    },
    /// A string or byte field is longer than the protocol allows.
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its announced length.
        len: u64,
        /// The maximum allowed.
        max: u64,
    },
    /// Bytes are left over after a message's payload was fully decoded.
    TrailingBytes {
        /// The message.
        command: Command,
        /// How many bytes were left.
        extra: u64,
    },
    /// The 12-byte command field is not printable ASCII followed by NUL padding.
    InvalidCommand {
        /// The raw command field.
        bytes: [u8; 12],
    },
    /// Any other structural fault (e.g. a `headers` entry with transactions).
    Malformed {
        /// Which field or message.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The classes the shared wire vectors name in `expect_error`; useful for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// [`Error::BadMagic`].
    Magic,
    /// [`Error::ChecksumMismatch`].
    Checksum,
    /// [`Error::PayloadTooLarge`].
    Oversize,
    /// [`Error::Truncated`].
    Truncated,
    /// [`Error::NonCanonicalCompactSize`].
    NoncanonicalVarint,
    /// [`Error::TooManyEntries`].
    TooManyEntries,
    /// [`Error::TooLong`].
    TooLong,
    /// [`Error::TrailingBytes`].
    TrailingBytes,
    /// Everything else.
    Malformed,
}

impl ErrorClass {
    /// The name used by the vectors (`"checksum"`, `"too_many_entries"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Magic => "magic",
            ErrorClass::Checksum => "checksum",
            ErrorClass::Oversize => "oversize",
            ErrorClass::Truncated => "truncated",
            ErrorClass::NoncanonicalVarint => "noncanonical_varint",
            ErrorClass::TooManyEntries => "too_many_entries",
            ErrorClass::TooLong => "too_long",
            ErrorClass::TrailingBytes => "trailing_bytes",
            ErrorClass::Malformed => "malformed",
        }
    }
}

impl Error {
    /// The class of this error, as the wire vectors name it.
    ///
    /// ```
    /// use wire_codec::{Error, ErrorClass};
    /// let e = Error::TooLong { what: "user agent", len: 300, max: 256 };
    /// assert_eq!(e.class(), ErrorClass::TooLong);
    /// assert_eq!(e.class().as_str(), "too_long");
    /// ```
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::BadMagic { .. } => ErrorClass::Magic,
            Error::ChecksumMismatch { .. } => ErrorClass::Checksum,
            Error::PayloadTooLarge { .. } => ErrorClass::Oversize,
            Error::Truncated { .. } => ErrorClass::Truncated,
            Error::NonCanonicalCompactSize { .. } => ErrorClass::NoncanonicalVarint,
            Error::TooManyEntries { .. } => ErrorClass::TooManyEntries,
            Error::TooLong { .. } => ErrorClass::TooLong,
            Error::TrailingBytes { .. } => ErrorClass::TrailingBytes,
            Error::InvalidCommand { .. } | Error::Malformed { .. } => ErrorClass::Malformed,
        }
    }

    /// Whether the stream can go on after this error: the frame boundary is known, so
    /// the next frame can be read (a checksum or payload error), as opposed to a broken
    /// header, after which the stream cannot be resynchronised.
    pub fn is_frame_local(&self) -> bool {
        !matches!(
            self,
            Error::BadMagic { .. } | Error::PayloadTooLarge { .. } | Error::InvalidCommand { .. }
        )
    }
}

fn hex4(b: &[u8; 4]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMagic { expected, actual } => write!(
                f,
                "bad magic: expected {}, got {}",
                hex4(expected),
                hex4(actual)
            ),
            Error::ChecksumMismatch { expected, actual } => write!(
                f,
                "checksum mismatch: header says {}, payload hashes to {}",
                hex4(expected),
                hex4(actual)
            ),
            Error::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the maximum of {max}")
            }
            Error::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated {what}: needs {needed} bytes, {available} available"
            ),
            Error::NonCanonicalCompactSize { prefix, value } => write!(
                f,
                "non-canonical CompactSize: prefix {prefix:#04x} carries {value}"
            ),
            Error::TooManyEntries { what, count, max } => {
                write!(f, "too many {what}: {count} (maximum {max})")
            }
            Error::TooLong { what, len, max } => {
                write!(f, "{what} too long: {len} bytes (maximum {max})")
            }
            Error::TrailingBytes { command, extra } => {
                write!(f, "{extra} trailing bytes after a {command} payload")
            }
            Error::InvalidCommand { bytes } => write!(f, "invalid command field {bytes:02x?}"),
            Error::Malformed { what, reason } => write!(f, "malformed {what}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
