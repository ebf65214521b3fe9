//! The crate's one error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a node could not start something. Each variant names the fact.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The peer configuration is invalid (see `peer_core::Config::validate`).
    InvalidConfig(peer_core::Error),
    /// Binding a listening socket failed.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// An outbound connection failed.
    Connect {
        /// The remote address.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// An outbound connection was not established in time.
    ConnectTimedOut {
        /// The remote address.
        addr: SocketAddr,
        /// How long it waited.
        after: Duration,
    },
    /// The node already holds its maximum number of peers.
    TooManyPeers {
        /// The limit.
        limit: usize,
    },
    /// The node is shutting down and takes no new peers.
    ShuttingDown,
    /// Called outside a tokio runtime (peer tasks need one to be spawned on).
    NoRuntime,
    /// A socket handed over has no remote address (not connected).
    NotConnected(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(e) => write!(f, "invalid peer configuration: {e}"),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::ConnectTimedOut { addr, after } => {
                write!(f, "connecting to {addr} took longer than {after:?}")
            }
            Error::TooManyPeers { limit } => write!(f, "the node already has {limit} peers"),
            Error::ShuttingDown => f.write_str("the node is shutting down"),
            Error::NoRuntime => f.write_str("not called from within a tokio runtime"),
            Error::NotConnected(e) => write!(f, "the socket is not connected: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidConfig(e) => Some(e),
            Error::Bind { source, .. } | Error::Connect { source, .. } => Some(source),
            Error::NotConnected(e) => Some(e),
            _ => None,
        }
    }
}
