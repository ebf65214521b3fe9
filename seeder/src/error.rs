//! The seeder's one error type: every way a start-up or a store operation can fail.

use std::fmt;
use std::net::SocketAddr;

/// What went wrong, named by the fact about the input or the system that caused it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A `--seed HOST:PORT` could not be resolved to any address.
    SeedUnresolvable {
        /// The seed as given.
        seed: String,
        /// Why.
        reason: String,
    },
    /// The zone or the name server is not a valid DNS name.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// A socket could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The SQLite database failed (open, schema, read or write).
    Store(rusqlite::Error),
    /// The peer runtime failed to start.
    Runtime(peer_runtime::Error),
    /// Another I/O failure (the dump file, a thread).
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::SeedUnresolvable { seed, reason } => {
                write!(f, "seed {seed:?} does not resolve: {reason}")
            }
            Error::InvalidName { name, reason } => write!(f, "invalid DNS name {name:?}: {reason}"),
            Error::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            Error::Store(e) => write!(f, "database: {e}"),
            Error::Runtime(e) => write!(f, "peer runtime: {e}"),
            Error::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Store(e) => Some(e),
            Error::Runtime(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Store(e)
    }
}

impl From<peer_runtime::Error> for Error {
    fn from(e: peer_runtime::Error) -> Error {
        Error::Runtime(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}
