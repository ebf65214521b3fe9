//! The crate's one error enum: facts about a configuration the peer cannot honour as
//! given. (What goes wrong on a connection is a [`DisconnectReason`](crate::DisconnectReason),
//! not an error: the peer reacts to it itself.)

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
        }
    }
}

impl std::error::Error for Error {}
