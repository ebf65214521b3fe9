//! The one error type of the runtime. Every variant is a fact about what happened.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Why the runtime could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An executor thread could not be started (io_uring setup, CPU placement, locked
    /// memory); the text is glommio's error.
    ExecutorStart {
        /// Which executor (0-based).
        executor: usize,
        /// glommio's description.
        reason: String,
    },
    /// The listening socket could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// An outbound connection failed.
    Connect {
        /// The remote address.
        addr: SocketAddr,
        /// The operating system's error (`TimedOut` after the connect timeout).
        source: io::Error,
    },
    /// The local address an outbound connection was to come from could not be bound
    /// (not an address of this machine, port in use, wrong address family).
    LocalBind {
        /// The local address asked for.
        local: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// A host name given for an outbound peer could not be resolved.
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// A caller-owned stream could not be taken over (no peer address, bad socket).
    Adopt {
        /// The operating system's error.
        source: io::Error,
    },
    /// The peer limit of the whole runtime is reached.
    TooManyPeers {
        /// The configured maximum.
        max: usize,
    },
    /// The peer limit of the executor the connection was given to is reached.
    TooManyPeersOnCore {
        /// The executor.
        executor: usize,
        /// The configured maximum per executor.
        max: usize,
    },
    /// The inbound limit for one IP address is reached.
    TooManyFromIp {
        /// The remote address.
        ip: IpAddr,
        /// The configured maximum per address.
        max: usize,
    },
    /// The inbound limit for one network group is reached.
    TooManyFromNetgroup {
        /// The remote address.
        ip: IpAddr,
        /// The configured maximum per network group.
        max: usize,
    },
    /// The runtime is shutting down (or has shut down) and takes no new work.
    ShuttingDown,
    /// The peer-core configuration is invalid; the text is peer-core's error.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ExecutorStart { executor, reason } => {
                write!(f, "executor {executor} could not start: {reason}")
            }
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::LocalBind { local, source } => {
                write!(f, "cannot connect from local address {local}: {source}")
            }
            Error::Adopt { source } => write!(f, "cannot take over the stream: {source}"),
            Error::Resolve { host, source } => write!(f, "cannot resolve {host}: {source}"),
            Error::TooManyPeers { max } => write!(f, "peer limit of {max} reached"),
            Error::TooManyPeersOnCore { executor, max } => {
                write!(
                    f,
                    "executor {executor} already holds its limit of {max} peers"
                )
            }
            Error::TooManyFromIp { ip, max } => {
                write!(f, "{ip} already holds its limit of {max} inbound peers")
            }
            Error::TooManyFromNetgroup { ip, max } => write!(
                f,
                "the network group of {ip} already holds its limit of {max} inbound peers"
            ),
            Error::ShuttingDown => f.write_str("the runtime is shutting down"),
            Error::Config(e) => write!(f, "invalid peer configuration: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. }
            | Error::Connect { source, .. }
            | Error::LocalBind { source, .. }
            | Error::Adopt { source }
            | Error::Resolve { source, .. } => Some(source),
            _ => None,
        }
    }
}
