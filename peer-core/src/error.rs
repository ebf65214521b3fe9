//! The crate's one error enum: facts about a configuration the peer cannot honour as
//! given, and facts about bytes the v2 transport refused. (What ends a connection is a
//! [`DisconnectReason`](crate::DisconnectReason); a transport error becomes one.)

use core::fmt;

/// A configuration fact the peer works around (see [`Config::validate`](crate::Config::validate)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The BIP14 user agent built from the configuration is longer than the protocol
    /// allows; the peer sends only the base user agent instead.
    UserAgentTooLong {
        /// Length of the composed user agent.
        len: usize,
        /// The protocol's maximum (256).
        max: usize,
    },
    /// A BIP14 comment contains a character BIP14 reserves as a separator.
    ReservedUserAgentCharacter {
        /// The character found.
        character: char,
    },
    /// v2: the remote sent more than 4,095 bytes of garbage without its garbage terminator.
    V2GarbageTooLong,
    /// v2: a packet failed authentication (wrong key, corrupted or forged bytes). Nothing
    /// after it is decoded.
    V2TagMismatch,
    /// v2: a packet announced contents longer than the largest message allowed.
    V2PacketTooLarge {
        /// Announced contents length (message type and payload).
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// v2: the remote's 64-byte key starts with the network magic, i.e. it answered in v1.
    V2RemoteSpeaksV1,
    /// v2: a message was given to encrypt before the handshake completed.
    V2NotReady,
    /// v2: our own garbage is longer than BIP324 allows (4,095 bytes).
    V2OwnGarbageTooLong {
        /// Its length.
        len: usize,
    },
    /// v2: the given secret is not a valid secp256k1 secret key.
    V2InvalidSecret,
    /// v2: the handshake has already failed; the transport decodes nothing more.
    V2Failed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UserAgentTooLong { len, max } => {
                write!(f, "user agent of {len} bytes exceeds the maximum of {max}")
            }
            Error::ReservedUserAgentCharacter { character } => {
                write!(
                    f,
                    "user agent comment contains reserved character {character:?}"
                )
            }
            Error::V2GarbageTooLong => {
                write!(f, "v2 garbage longer than 4095 bytes without a terminator")
            }
            Error::V2TagMismatch => write!(f, "v2 packet failed authentication"),
            Error::V2PacketTooLarge { len, max } => {
                write!(
                    f,
                    "v2 packet of {len} content bytes exceeds the maximum of {max}"
                )
            }
            Error::V2RemoteSpeaksV1 => write!(f, "v2 key exchange answered in v1"),
            Error::V2NotReady => write!(f, "v2 message sent before the handshake completed"),
            Error::V2OwnGarbageTooLong { len } => {
                write!(f, "own v2 garbage of {len} bytes exceeds 4095")
            }
            Error::V2InvalidSecret => write!(f, "v2 secret is not a valid secp256k1 key"),
            Error::V2Failed => write!(f, "v2 transport already failed"),
        }
    }
}

impl std::error::Error for Error {}
