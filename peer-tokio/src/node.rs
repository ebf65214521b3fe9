//! [`Node`] and [`NodeBuilder`]: peers on tokio — listen, connect, hand over sockets,
//! shut down.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peer_core::{Config, Listener, Peer, SharedFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};
use wire_codec::Network;

use crate::driver::Driver;
use crate::error::Error;
use crate::handle::{Direction, Life, Notification, PeerHandle, PeerShared};

/// Makes each peer's listener, with the peer's handle, before the peer's task starts.
pub type ListenerFactory = Arc<dyn Fn(&PeerHandle) -> Box<dyn Listener + Send> + Send + Sync>;

/// A listener that ignores every callback: peers still handshake, answer pings and keep
/// themselves alive (peer-core does that).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopListener;

impl Listener for NoopListener {}

/// How long an accept loop waits after the OS refused an accept (descriptors ran out).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Process-wide counters of one node.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) handshaken: AtomicUsize,
    pub(crate) inbound: AtomicUsize,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) disconnects: AtomicU64,
}

/// A node's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Peers alive (any phase).
    pub peers: usize,
    /// Of which inbound.
    pub inbound: usize,
    /// Of which handshaken.
    pub handshaken: usize,
    /// Bytes read from all sockets.
    pub bytes_in: u64,
    /// Bytes written to all sockets.
    pub bytes_out: u64,
    /// Peers that ended.
    pub disconnects: u64,
}

pub(crate) struct NodeShared {
    config: Arc<Config>,
    factory: ListenerFactory,
    max_peers: usize,
    connect_timeout: Duration,
    /// Backpressure mark (see [`NodeBuilder::send_pause_bytes`]).
    pub(crate) send_pause_bytes: usize,
    peers: Mutex<HashMap<u64, PeerHandle>>,
    acceptors: Mutex<Vec<JoinHandle<()>>>,
    shutting_down: AtomicBool,
    seeds: AtomicU64,
    hasher: RandomState,
    pub(crate) counters: Counters,
}

impl NodeShared {
    pub(crate) fn unregister(&self, shared: &PeerShared) {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&shared.id);
        if shared.direction == Direction::Inbound {
            self.counters.inbound.fetch_sub(1, Ordering::Relaxed);
        }
        self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Configures a [`Node`].
///
/// ```
/// use peer_tokio::Node;
/// use wire_codec::{message::ServiceFlags, Network};
///
/// let node = Node::builder(Network::Regtest)
///     .configure(|c| c.services = ServiceFlags::NETWORK)
///     .max_peers(1_000)
///     .build()
///     .unwrap();
/// assert_eq!(node.stats().peers, 0);
/// ```
pub struct NodeBuilder {
    config: Config,
    factory: ListenerFactory,
    max_peers: usize,
    connect_timeout: Duration,
    send_pause_bytes: usize,
}

/// Bitcoin Core's send buffer bound (`DEFAULT_MAXSENDBUFFER`, 1,000 kB), the default
/// [`NodeBuilder::send_pause_bytes`] (peer-runtime's default too).
pub const DEFAULT_SEND_PAUSE_BYTES: usize = 1_000_000;

impl NodeBuilder {
    /// peer-core's defaults for `network`, [`NoopListener`]s, at most 10,000 peers,
    /// connects time out after 10 s.
    pub fn new(network: Network) -> NodeBuilder {
        NodeBuilder::with_config(Config::new(network))
    }

    /// A builder with a complete peer configuration.
    pub fn with_config(config: Config) -> NodeBuilder {
        NodeBuilder {
            config,
            factory: Arc::new(|_| Box::new(NoopListener)),
            max_peers: 10_000,
            connect_timeout: Duration::from_secs(10),
            send_pause_bytes: DEFAULT_SEND_PAUSE_BYTES,
        }
    }

    /// Adjusts the peer configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> NodeBuilder {
        f(&mut self.config);
        self
    }

    /// Makes each peer's listener (called with the peer's handle before its task
    /// starts). A factory that panics ends only that peer (`ApplicationPanicked`).
    pub fn listener_factory<F>(mut self, f: F) -> NodeBuilder
    where
        F: Fn(&PeerHandle) -> Box<dyn Listener + Send> + Send + Sync + 'static,
    {
        self.factory = Arc::new(f);
        self
    }

    /// Most peers alive at once; inbound connections past it are closed at once,
    /// connects fail with [`Error::TooManyPeers`].
    pub fn max_peers(mut self, n: usize) -> NodeBuilder {
        self.max_peers = n;
        self
    }

    /// Backpressure (Core's `fPauseSend`): while a peer has at least this many encoded
    /// bytes waiting to be written, its input is neither read nor processed; it
    /// resumes by itself once the remote has read enough. A remote that never reads
    /// therefore makes the peer hold at most this plus one answer. Default
    /// [`DEFAULT_SEND_PAUSE_BYTES`].
    ///
    /// peer-tokio has no process-wide memory budget and no pacing of messages queued
    /// through handles (peer-runtime has both, `Limits::memory_budget` and
    /// `PeerHandle::wait_for_room`): handle messages go straight to peer-core, whose
    /// [`Config::max_output_bytes`] ends a peer queued past it
    /// ([`DisconnectReason::OutputQueueFull`](peer_core::DisconnectReason::OutputQueueFull)).
    pub fn send_pause_bytes(mut self, n: usize) -> NodeBuilder {
        self.send_pause_bytes = n;
        self
    }

    /// How long [`Node::connect`] waits for the TCP connection.
    pub fn connect_timeout(mut self, d: Duration) -> NodeBuilder {
        self.connect_timeout = d;
        self
    }

    /// The node (no socket is opened yet; nothing runs until peers come).
    pub fn build(self) -> Result<Node, Error> {
        self.config.validate().map_err(Error::InvalidConfig)?;
        Ok(Node {
            shared: Arc::new(NodeShared {
                config: Arc::new(self.config),
                factory: self.factory,
                max_peers: self.max_peers,
                connect_timeout: self.connect_timeout,
                send_pause_bytes: self.send_pause_bytes,
                peers: Mutex::new(HashMap::new()),
                acceptors: Mutex::new(Vec::new()),
                shutting_down: AtomicBool::new(false),
                seeds: AtomicU64::new(0),
                hasher: RandomState::new(),
                counters: Counters::default(),
            }),
        })
    }
}

/// Peers driven on the current tokio runtime: one task per peer, spawned with
/// `tokio::spawn` (so they spread over a multi-thread runtime's workers). `Send + Sync +
/// Clone`; clones share the peers.
///
/// ```
/// use std::sync::Arc;
/// use peer_core::{Config, NonceSet};
/// use peer_tokio::{Delivery, Node};
/// use wire_codec::{message::Ping, Message, Network};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Two nodes in one process: each its own nonce set, or the handshake would look
/// // like a connection to ourselves.
/// let node = || Node::builder(Network::Regtest)
///     .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
///     .build()
///     .unwrap();
/// let (server, client) = (node(), node());
/// let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
/// let peer = client.connect(addr).await.unwrap();
/// assert_eq!(peer.wait_for_handshake().await, Ok(70016));
/// assert_eq!(peer.queue_message(Message::Ping(Ping { nonce: 7 })).await, Delivery::Sent);
/// client.shutdown().await;
/// server.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct Node {
    shared: Arc<NodeShared>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("network", &self.shared.config.network)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Node {
    /// A builder with peer-core's defaults for `network`.
    pub fn builder(network: Network) -> NodeBuilder {
        NodeBuilder::new(network)
    }

    /// The peers' configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.shared.config
    }

    /// Binds `addr` and accepts inbound peers on it until [`Node::shutdown`]. Returns
    /// the bound address (port 0 picks a free one). May be called for several addresses.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        self.accept_on(listener)
    }

    /// Accepts inbound peers on a listener the caller bound.
    pub fn accept_on(&self, listener: TcpListener) -> Result<SocketAddr, Error> {
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let local = listener.local_addr().map_err(Error::NotConnected)?;
        let node = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if let Err(e) = node.add_connection(stream, Direction::Inbound) {
                            debug!(error = %e, "inbound connection refused");
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed; backing off");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        });
        self.shared
            .acceptors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(local)
    }

    /// Connects to `addr` (bounded by the connect timeout) and starts the peer; our
    /// version message goes out at once. Wait for the handshake with
    /// [`PeerHandle::wait_for_handshake`].
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerHandle, Error> {
        self.check_room()?;
        let after = self.shared.connect_timeout;
        let stream = tokio::time::timeout(after, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::ConnectTimedOut { addr, after })?
            .map_err(|source| Error::Connect { addr, source })?;
        self.add_connection(stream, Direction::Outbound)
    }

    fn check_room(&self) -> Result<(), Error> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let limit = self.shared.max_peers;
        if self.peer_count() >= limit {
            return Err(Error::TooManyPeers { limit });
        }
        Ok(())
    }

    /// Starts a peer on a connected socket the caller made or accepted (the way
    /// lightning-net-tokio's `setup_inbound` / `setup_outbound` do). Must be called
    /// within a tokio runtime.
    pub fn add_connection(
        &self,
        stream: TcpStream,
        direction: Direction,
    ) -> Result<PeerHandle, Error> {
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        self.check_room()?;
        let remote = stream.peer_addr().map_err(Error::NotConnected)?;
        let local = stream.local_addr().ok();
        let _ = stream.set_nodelay(true);
        let s = &self.shared;
        let now = Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let seed = s.hasher.hash_one(s.seeds.fetch_add(1, Ordering::Relaxed));
        let peer = match direction {
            Direction::Inbound => Peer::new_inbound(s.config.clone(), remote, now, unix, seed),
            Direction::Outbound => Peer::new_outbound(s.config.clone(), remote, now, unix, seed),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (life, _) = watch::channel(Life::Negotiating);
        let shared = Arc::new(PeerShared {
            id: peer.id(),
            addr: remote,
            local,
            direction,
            commands: tx,
            life,
            closing: AtomicBool::new(false),
            final_stats: Mutex::new(None),
            negotiated: AtomicU32::new(0),
            handshaken: AtomicBool::new(false),
        });
        let handle = PeerHandle {
            shared: shared.clone(),
        };
        let factory = s.factory.clone();
        let made = catch_unwind(AssertUnwindSafe(|| factory(&handle)));
        let listener = match &made {
            Ok(_) => None,
            Err(_) => Some(Box::new(NoopListener) as Box<dyn Listener + Send>),
        };
        let span = peer.span().clone();
        let mut driver = match made {
            Ok(l) => Driver::new(stream, peer, l, shared, s.clone(), rx),
            Err(panic) => {
                let mut d = Driver::new(
                    stream,
                    peer,
                    listener.unwrap_or_else(|| Box::new(NoopListener)),
                    shared,
                    s.clone(),
                    rx,
                );
                d.fail_early("listener factory", &*panic);
                d
            }
        };
        // Registered before the task runs, so `peers()` and `shutdown` see it.
        s.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handle.id(), handle.clone());
        if direction == Direction::Inbound {
            s.counters.inbound.fetch_add(1, Ordering::Relaxed);
        }
        // A shutdown that started meanwhile must not miss this peer.
        if s.shutting_down.load(Ordering::Acquire) {
            driver
                .peer
                .disconnect(peer_core::DisconnectReason::LocalRequest);
        }
        tokio::spawn(Box::new(driver).run().instrument(span));
        Ok(handle)
    }

    /// Handles of every live peer.
    pub fn peers(&self) -> Vec<PeerHandle> {
        self.shared
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Queues one frame, encoded once, to every live peer; returns a notification per
    /// peer. Over v1 a large frame (a block) is written to each peer from the frame's
    /// one allocation with a vectored write — 100 peers hold 100 references, not 100
    /// copies; over v2 each session encrypts it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::{NonceSet, SharedFrame};
    /// use peer_tokio::{Delivery, Node};
    /// use wire_codec::{message::Ping, Message, Network};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = || Node::builder(Network::Regtest)
    ///     .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
    ///     .build()
    ///     .unwrap();
    /// let (server, client) = (node(), node());
    /// let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    /// for _ in 0..3 {
    ///     let peer = client.connect(addr).await.unwrap();
    ///     peer.wait_for_handshake().await.unwrap();
    /// }
    /// // Encode once (a block in a real relay), queue to every peer.
    /// let frame = SharedFrame::new(Message::Ping(Ping { nonce: 1 }), Network::Regtest).unwrap();
    /// let notes = client.broadcast(&frame);
    /// assert_eq!(notes.len(), 3);
    /// for n in notes {
    ///     assert_eq!(n.await, Delivery::Sent);
    /// }
    /// client.shutdown().await;
    /// server.shutdown().await;
    /// # }
    /// ```
    pub fn broadcast(&self, frame: &SharedFrame) -> Vec<Notification> {
        self.peers()
            .iter()
            .map(|p| p.queue_frame(frame.clone()))
            .collect()
    }

    /// How many peers are alive.
    pub fn peer_count(&self) -> usize {
        self.shared
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The node's counters now.
    pub fn stats(&self) -> NodeStats {
        let c = &self.shared.counters;
        NodeStats {
            peers: self.peer_count(),
            inbound: c.inbound.load(Ordering::Relaxed),
            handshaken: c.handshaken.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            disconnects: c.disconnects.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, disconnects every peer (each writes what it can, every pending
    /// notification is answered) and waits until all have ended. Later connects fail
    /// with [`Error::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        for task in self
            .shared
            .acceptors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        let peers = self.peers();
        for p in &peers {
            p.disconnect();
        }
        for p in &peers {
            p.wait_for_disconnect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_configuration_is_refused_at_build() {
        let err = Node::builder(Network::Regtest)
            .configure(|c| c.user_agent_comments = vec!["a/b".into()])
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }

    #[test]
    fn starting_a_peer_outside_a_runtime_is_an_error_not_a_panic() {
        let node = Node::builder(Network::Regtest).build().unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        // Converting needs a runtime too; accept_on is what a caller reaches first.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(async { TcpListener::from_std(std_listener).unwrap() });
        assert!(matches!(node.accept_on(listener), Err(Error::NoRuntime)));
    }
}
