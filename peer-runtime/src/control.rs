//! What the runtime sends an executor: connect, adopt a stream, shut down, and the
//! types that travel with those requests (the application's listener factory, the
//! per-connection config chooser, the reply to resolve).

use std::net::SocketAddr;
use std::sync::Arc;

use peer_core::{Config, Listener};

use crate::error::Error;
use crate::handle::{Direction, PeerHandle};
use crate::pending::Resolver;

/// Makes the application's listener for a new peer. Called on the peer's executor
/// thread, so the listener itself need not be `Send`.
pub type ListenerFactory = Arc<dyn Fn(&PeerHandle) -> Box<dyn Listener> + Send + Sync>;

/// Chooses the config of one accepted connection from its remote address (`None`: the
/// runtime's).
pub type InboundConfigFn = Arc<dyn Fn(SocketAddr) -> Option<Arc<Config>> + Send + Sync>;

/// A listener supplied with one connection request (it travels to the executor).
pub(crate) type SentListener = Box<dyn Listener + Send>;

/// The answer to a connect or adopt request.
pub(crate) type PeerReply = Resolver<Result<PeerHandle, Error>>;

/// What the runtime asks of an executor.
pub(crate) enum Control {
    Connect {
        addr: SocketAddr,
        /// The local address to connect from; `None`: the kernel's choice.
        local: Option<SocketAddr>,
        listener: Option<SentListener>,
        /// This peer's own config (`None`: the runtime's).
        config: Option<Arc<Config>>,
        /// Initiate BIP324 v2 (with one v1 reconnect if it fails before the version
        /// exchange); only when the peer's config has v2 on.
        v2: bool,
        reply: PeerReply,
    },
    Adopt {
        stream: std::net::TcpStream,
        direction: Direction,
        listener: Option<SentListener>,
        /// This peer's own config (`None`: the runtime's).
        config: Option<Arc<Config>>,
        reply: PeerReply,
    },
    Shutdown,
}
