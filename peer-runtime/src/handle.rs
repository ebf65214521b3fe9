//! [`PeerHandle`]: a peer, seen from any thread.
//!
//! A peer's state lives on the executor that drives it; a handle reaches it by posting
//! commands to the peer's mailbox, which wakes the driver. Answers (was the message
//! sent? what are the statistics?) come back as [`Pending`] values that can be awaited
//! or waited for. When the peer has ended, commands are refused at once and answered
//! with their failure value, so nothing queued through a handle is ever lost silently.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use peer_core::transport::TransportVersion;
use peer_core::{DisconnectReason, Peer, SharedFrame, StatsSnapshot};
use wire_codec::message::InvVect;
use wire_codec::{Limits, Message, Network};

use crate::lifecycle::{Goal, Lifecycle, Reached, Wait};
use crate::mailbox::Mailbox;
use crate::netgroup::Netgroup;
use crate::pending::{pending, Pending, Resolver};

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote connected to us.
    Inbound,
    /// We connected to the remote.
    Outbound,
}

impl Direction {
    /// `"inbound"` or `"outbound"`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Its last byte was handed to the socket.
    Sent,
    /// It will never be written: the peer ended first, the message does not exist at
    /// the negotiated version, or it could not be encoded.
    Failed,
}

/// The answer to [`PeerHandle::queue_message`]: resolves to [`Delivery::Sent`] or
/// [`Delivery::Failed`], exactly once. Await it, or [`Pending::wait`] on it.
pub type Notification = Pending<Delivery>;

/// The sending half of a [`Notification`], for callers that hand a notification in
/// (as [`peer_helpers::MessageQueue`] does): the runtime answers it exactly once.
///
/// ```
/// use peer_runtime::{Delivery, Notifier};
/// let (notifier, notification) = Notifier::new();
/// drop(notifier); // never used: answered as failed
/// assert_eq!(notification.wait(), Delivery::Failed);
/// ```
pub struct Notifier(pub(crate) Resolver<Delivery>);

impl Notifier {
    /// A connected notifier and notification. Dropping the notifier unused answers
    /// [`Delivery::Failed`].
    pub fn new() -> (Notifier, Notification) {
        let (r, p) = pending(|| Delivery::Failed);
        (Notifier(r), p)
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notifier")
    }
}

/// A closure run on the peer's executor with the peer itself.
pub(crate) type PeerFn = Box<dyn FnOnce(&mut Peer, Instant) + Send>;

/// What a handle asks of its driver.
pub(crate) enum Command {
    Message(Message, Option<Resolver<Delivery>>),
    Frame(SharedFrame, Option<Resolver<Delivery>>),
    Inventory(InvVect),
    InventoryImmediate(InvVect),
    KnownInventory(InvVect),
    Disconnect,
    /// Ends the peer with this reason (eviction).
    DisconnectWith(DisconnectReason),
    Stats(Resolver<Option<StatsSnapshot>>),
    Run(PeerFn),
    WaitForRoom(Resolver<bool>),
}

/// State shared by a peer's handles and its driver.
pub(crate) struct PeerShared {
    pub(crate) id: u64,
    pub(crate) addr: SocketAddr,
    /// Our end of the connection (a v1 retry of a v2 attempt replaces it).
    local_addr: Mutex<Option<SocketAddr>>,
    pub(crate) direction: Direction,
    pub(crate) executor: usize,
    pub(crate) network: Network,
    /// Our own protocol version (what `negotiated_version` reports before the remote's
    /// version arrives, as btcd does).
    pub(crate) our_version: u32,
    pub(crate) mailbox: Mailbox<Command>,
    /// Inline, not an `Arc` of its own: waits hold the whole shared state (one
    /// allocation fewer per peer).
    pub(crate) life: Lifecycle,
    /// The negotiated version once the remote's version arrived (0 before), as
    /// peer-core's `Peer::negotiated_version`.
    pub(crate) negotiated: AtomicU32,
    /// The remote sent `sendaddrv2`.
    pub(crate) addrv2: AtomicBool,
    /// The transport once the handshake completed: 0 before, 1 v1, 2 v2.
    pub(crate) transport: AtomicU8,
    /// BIP324's session id of a v2 connection, once its handshake completed.
    pub(crate) session_id: OnceLock<[u8; 32]>,
    /// What inbound eviction weighs (see `evict`).
    pub(crate) standing: Standing,
    /// The last statistics, kept when the peer ends so they can still be read (boxed:
    /// a running peer should not carry a snapshot's worth of empty space).
    pub(crate) final_stats: Mutex<Option<Box<StatsSnapshot>>>,
}

impl AsRef<Lifecycle> for PeerShared {
    fn as_ref(&self) -> &Lifecycle {
        &self.life
    }
}

impl PeerShared {
    pub(crate) fn new(
        peer: &Peer,
        local_addr: Option<SocketAddr>,
        direction: Direction,
        executor: usize,
        our_version: u32,
        group: Option<Netgroup>,
        since: Instant,
    ) -> PeerShared {
        PeerShared {
            id: peer.id(),
            addr: peer.remote_addr(),
            local_addr: Mutex::new(local_addr),
            direction,
            executor,
            network: peer.config().network,
            our_version,
            mailbox: Mailbox::new(),
            life: Lifecycle::default(),
            negotiated: AtomicU32::new(0),
            addrv2: AtomicBool::new(false),
            transport: AtomicU8::new(0),
            session_id: OnceLock::new(),
            final_stats: Mutex::new(None),
            standing: Standing::new(group, since),
        }
    }

    /// Our end of the current connection.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the local address of a new connection under the same peer (the v1
    /// retry of a failed v2 attempt).
    pub(crate) fn set_local_addr(&self, addr: Option<SocketAddr>) {
        *self.local_addr.lock().unwrap_or_else(|e| e.into_inner()) = addr;
    }

    /// Publishes the peer's transport and session id (at the end of its handshake).
    pub(crate) fn set_transport(&self, peer: &Peer) {
        let v = match peer.transport_version() {
            TransportVersion::V1 => 1,
            TransportVersion::V2 => 2,
        };
        self.transport.store(v, Ordering::Release);
        if let Some(id) = peer.session_id() {
            let _ = self.session_id.set(id);
        }
    }

    /// Posts a command; when the peer has ended, answers it at once instead.
    pub(crate) fn post(&self, cmd: Command) {
        if let Err(cmd) = self.mailbox.push(cmd) {
            self.answer_refused(cmd);
        }
    }

    /// Answers a command the driver will never see (the peer ended): messages fail,
    /// statistics are the final ones, closures are dropped.
    pub(crate) fn answer_refused(&self, cmd: Command) {
        match cmd {
            Command::Message(_, Some(r)) | Command::Frame(_, Some(r)) => {
                r.resolve(Delivery::Failed)
            }
            Command::Stats(r) => r.resolve(self.final_stats()),
            Command::WaitForRoom(r) => r.resolve(false),
            _ => {}
        }
    }

    pub(crate) fn final_stats(&self) -> Option<StatsSnapshot> {
        self.final_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            .cloned()
    }
}

/// What inbound eviction weighs for one peer, updated by its driver.
pub(crate) struct Standing {
    pub(crate) group: Option<Netgroup>,
    pub(crate) since: Instant,
    /// Lowest ping round trip in microseconds (`u64::MAX`: none yet).
    pub(crate) min_ping_us: AtomicU64,
    /// Milliseconds after `since` of the last useful message (`u64::MAX`: none).
    pub(crate) useful_at_ms: AtomicU64,
}

impl Standing {
    fn new(group: Option<Netgroup>, since: Instant) -> Standing {
        Standing {
            group,
            since,
            min_ping_us: AtomicU64::new(u64::MAX),
            useful_at_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// The eviction candidate this peer is now (inbound peers only).
    pub(crate) fn candidate(&self, id: u64, now: Instant) -> Option<crate::evict::Candidate> {
        let connected = now.saturating_duration_since(self.since);
        let ping = self.min_ping_us.load(Ordering::Relaxed);
        let useful = self.useful_at_ms.load(Ordering::Relaxed);
        Some(crate::evict::Candidate {
            id,
            group: self.group?,
            connected,
            min_ping: (ping != u64::MAX).then(|| Duration::from_micros(ping)),
            useful_ago: (useful != u64::MAX)
                .then(|| connected.saturating_sub(Duration::from_millis(useful))),
        })
    }
}

/// A peer, usable from any thread: `Send + Sync + Clone` and cheap to clone.
///
/// Everything it does is a request to the executor that drives the peer: queueing
/// returns at once, answers come as [`Pending`] values. After the peer ended, requests
/// are answered immediately with their failure value (`Delivery::Failed`, the final
/// statistics). It also implements [`peer_helpers::MessageQueue`], so the helpers
/// (`push_addr`, `push_get_headers`, `push_reject`, …) work through it.
///
/// ```
/// use std::sync::Arc;
/// use peer_core::{Config, DisconnectReason, NonceSet};
/// use peer_runtime::{Delivery, Runtime};
/// use wire_codec::{message::Ping, Message, Network};
///
/// let node = |listen: bool| {
///     let mut b = Runtime::builder(Network::Regtest)
///         .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
///         .executors(1);
///     if listen {
///         b = b.listen("127.0.0.1:0".parse().unwrap());
///     }
///     b.start().unwrap()
/// };
/// let (server, client) = (node(true), node(false));
/// let peer = client.connect(server.local_addr().unwrap()).wait().unwrap();
/// peer.wait_for_handshake_blocking().unwrap();
/// // The handle works from any thread.
/// let h = peer.clone();
/// let sent = std::thread::spawn(move || h.queue_message(Message::Ping(Ping { nonce: 1 })).wait());
/// assert_eq!(sent.join().unwrap(), Delivery::Sent);
/// peer.disconnect();
/// assert_eq!(peer.wait_for_disconnect_blocking(), DisconnectReason::LocalRequest);
/// assert!(!peer.connected());
/// client.shutdown();
/// server.shutdown();
/// ```
#[derive(Clone)]
pub struct PeerHandle {
    pub(crate) shared: Arc<PeerShared>,
}

impl PeerHandle {
    /// The peer's process-unique id (peer-core's).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The remote address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Our end of the connection (how the remote sees us), when the socket could tell.
    /// After an outbound v2 attempt fell back to v1, the v1 connection's.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr()
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// Whether the remote connected to us.
    pub fn is_inbound(&self) -> bool {
        self.shared.direction == Direction::Inbound
    }

    /// The executor (0-based) whose thread drives this peer.
    pub fn executor(&self) -> usize {
        self.shared.executor
    }

    /// Whether the peer is still connected (handshaken or not) and not on its way out
    /// (btcd `Connected`). It turns false for good as soon as [`disconnect`] is called
    /// or the peer closes for any reason — before its driver has written a farewell
    /// and ended; [`wait_for_disconnect`] waits for the end itself.
    ///
    /// [`disconnect`]: Self::disconnect
    /// [`wait_for_disconnect`]: Self::wait_for_disconnect
    pub fn connected(&self) -> bool {
        !self.shared.life.is_closing()
    }

    /// Whether the handshake completed (and the peer has not ended).
    pub fn handshake_complete(&self) -> bool {
        self.connected() && self.shared.life.handshake().is_some()
    }

    /// Why the peer ended, once it has.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        self.shared.life.ended()
    }

    /// The negotiated protocol version — min(ours, theirs) from the moment the remote's
    /// version arrived, our own before — the value peer-core's
    /// `Peer::negotiated_version` has at the same moment (btcd `ProtocolVersion`).
    pub fn negotiated_version(&self) -> u32 {
        match self.shared.negotiated.load(Ordering::Acquire) {
            0 => self.shared.our_version,
            v => v,
        }
    }

    /// The transport the connection speaks, once its handshake completed (`None`
    /// before): v2 (BIP324) or v1. An outbound v2 attempt that fell back reports v1.
    pub fn transport(&self) -> Option<TransportVersion> {
        match self.shared.transport.load(Ordering::Acquire) {
            1 => Some(TransportVersion::V1),
            2 => Some(TransportVersion::V2),
            _ => None,
        }
    }

    /// BIP324's session id of a v2 connection once its handshake completed: both ends
    /// see the same 32 bytes (Bitcoin Core shows them in `getpeerinfo`).
    pub fn session_id(&self) -> Option<[u8; 32]> {
        self.shared.session_id.get().copied()
    }

    /// Whether the remote asked for `addrv2` (BIP155).
    pub fn wants_addrv2(&self) -> bool {
        self.shared.addrv2.load(Ordering::Acquire)
    }

    /// Queues `msg`; the notification tells when it was written or that it never will
    /// be (btcd `QueueMessage` with a done channel). Messages go out in the order they
    /// were queued from one thread.
    pub fn queue_message(&self, msg: Message) -> Notification {
        let (r, p) = pending(|| Delivery::Failed);
        self.shared.post(Command::Message(msg, Some(r)));
        p
    }

    /// Queues `msg` without asking to be told about it (saves the notification's
    /// allocation on hot paths).
    pub fn queue_message_detached(&self, msg: Message) {
        self.shared.post(Command::Message(msg, None));
    }

    /// Queues `msg` with a notification the caller created (see [`Notifier`]).
    pub fn queue_message_with(&self, msg: Message, notify: Option<Notifier>) {
        self.shared.post(Command::Message(msg, notify.map(|n| n.0)));
    }

    /// Queues a frame encoded once for many peers (see [`SharedFrame`]): the peer sends
    /// it exactly as [`PeerHandle::queue_message`] would send its message — same order,
    /// gating, witness rule, notification and pacing — but over a v1 connection a
    /// large frame is written from the frame's own bytes, never copied for this peer.
    /// Over v2 it is encrypted into the peer's output (each session has its own keys).
    /// For backpressure the frame counts its full length in each peer.
    ///
    /// Relay a block to every peer, encoded once (see also [`Runtime::broadcast`]):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::{NonceSet, SharedFrame};
    /// use peer_runtime::{Delivery, Runtime};
    /// use wire_codec::{message::Ping, Message, Network};
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// // Both runtimes live in one process here: own nonces, or it looks like a
    /// // connection to ourselves.
    /// let client = Runtime::builder(Network::Regtest)
    ///     .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
    ///     .executors(1)
    ///     .start()
    ///     .unwrap();
    /// let peers: Vec<_> = (0..3)
    ///     .map(|_| client.connect(server.local_addr().unwrap()).wait().unwrap())
    ///     .collect();
    /// // A block goes here the same way; this ping keeps the example small.
    /// let frame = SharedFrame::new(Message::Ping(Ping { nonce: 7 }), Network::Regtest).unwrap();
    /// let notes: Vec<_> = peers.iter().map(|p| p.queue_frame(frame.clone())).collect();
    /// for n in notes {
    ///     assert_eq!(n.wait(), Delivery::Sent);
    /// }
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    ///
    /// [`Runtime::broadcast`]: crate::Runtime::broadcast
    pub fn queue_frame(&self, frame: SharedFrame) -> Notification {
        let (r, p) = pending(|| Delivery::Failed);
        self.shared.post(Command::Frame(frame, Some(r)));
        p
    }

    /// [`PeerHandle::queue_frame`] without a notification.
    pub fn queue_frame_detached(&self, frame: SharedFrame) {
        self.shared.post(Command::Frame(frame, None));
    }

    /// Resolves `true` once everything queued through handles before this call has
    /// been encoded and fewer than [`Limits::send_pause_bytes`](crate::Limits) bytes
    /// wait to be written to the peer — room for the next message — or `false` if the
    /// peer ended first. Await it (or [`Pending::wait`]) between large messages to pace
    /// an application to the remote's reading speed: queueing never drops a healthy
    /// peer, and paced queueing never reaches the hard cap
    /// ([`Limits::max_queued_bytes_per_peer`](crate::Limits)).
    ///
    /// ```no_run
    /// # fn send_all(peer: &peer_runtime::PeerHandle, blocks: Vec<wire_codec::Message>) {
    /// for block in blocks {
    ///     if !peer.wait_for_room().wait() {
    ///         break; // the peer went away
    ///     }
    ///     peer.queue_message_detached(block);
    /// }
    /// # }
    /// ```
    pub fn wait_for_room(&self) -> Pending<bool> {
        let (r, p) = pending(|| false);
        self.shared.post(Command::WaitForRoom(r));
        p
    }

    /// Queues an inventory announcement, trickled with others (btcd `QueueInventory`;
    /// blocks go out at once). Skipped if the remote is known to have it.
    pub fn queue_inventory(&self, iv: InvVect) {
        self.shared.post(Command::Inventory(iv));
    }

    /// Announces `iv` in its own `inv` now, skipping the trickle.
    pub fn queue_inventory_immediate(&self, iv: InvVect) {
        self.shared.post(Command::InventoryImmediate(iv));
    }

    /// Records that the remote has `iv` so it is never announced to it (btcd
    /// `AddKnownInventory`).
    pub fn add_known_inventory(&self, iv: InvVect) {
        self.shared.post(Command::KnownInventory(iv));
    }

    /// Disconnects the peer (btcd `Disconnect`). Pending notifications are answered
    /// [`Delivery::Failed`]. Idempotent.
    pub fn disconnect(&self) {
        self.shared.life.set_closing();
        self.shared.post(Command::Disconnect);
    }

    /// The peer's statistics (btcd `StatsSnapshot`), taken by its driver. After the
    /// peer ended, the last statistics it had. `None` only if the runtime itself is gone.
    pub fn stats_snapshot(&self) -> Pending<Option<StatsSnapshot>> {
        let (r, p) = pending(|| None);
        self.shared.post(Command::Stats(r));
        p
    }

    /// Runs `f` on the peer's executor with the peer itself and the current instant,
    /// and returns its result (`None` if the peer ended before it could run). This is
    /// the door to everything `peer_core::Peer` offers that the handle does not wrap.
    pub fn with_peer<R, F>(&self, f: F) -> Pending<Option<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Peer, Instant) -> R + Send + 'static,
    {
        let (r, p) = pending(|| None);
        self.shared.post(Command::Run(Box::new(move |peer, now| {
            r.resolve(Some(f(peer, now)));
        })));
        p
    }

    /// Waits (asynchronously) until the peer ended and returns why (btcd
    /// `WaitForDisconnect`).
    pub async fn wait_for_disconnect(&self) -> DisconnectReason {
        match Wait::new(self.shared.clone(), Goal::End).await {
            Reached::Ended(r) => r,
            Reached::Handshake(_) => unreachable_goal(),
        }
    }

    /// Blocks the calling thread until the peer ended. Do not call it on the executor
    /// thread that drives this peer.
    pub fn wait_for_disconnect_blocking(&self) -> DisconnectReason {
        match self.shared.life.wait_blocking(Goal::End, None) {
            Some(Reached::Ended(r)) => r,
            _ => unreachable_goal(),
        }
    }

    /// Blocks until the peer ended or `timeout` passed (`None`).
    pub fn wait_for_disconnect_timeout(&self, timeout: Duration) -> Option<DisconnectReason> {
        match self.shared.life.wait_blocking(Goal::End, Some(timeout)) {
            Some(Reached::Ended(r)) => Some(r),
            _ => None,
        }
    }

    /// Waits until the handshake completed (the negotiated version), or the peer ended
    /// first (why).
    pub async fn wait_for_handshake(&self) -> Result<u32, DisconnectReason> {
        match Wait::new(self.shared.clone(), Goal::Handshake).await {
            Reached::Handshake(v) => Ok(v),
            Reached::Ended(r) => Err(r),
        }
    }

    /// Blocking form of [`PeerHandle::wait_for_handshake`].
    pub fn wait_for_handshake_blocking(&self) -> Result<u32, DisconnectReason> {
        match self.shared.life.wait_blocking(Goal::Handshake, None) {
            Some(Reached::Handshake(v)) => Ok(v),
            Some(Reached::Ended(r)) => Err(r),
            None => unreachable_goal(),
        }
    }

    /// Blocking form with a timeout: `None` if neither happened in time.
    pub fn wait_for_handshake_timeout(
        &self,
        timeout: Duration,
    ) -> Option<Result<u32, DisconnectReason>> {
        match self
            .shared
            .life
            .wait_blocking(Goal::Handshake, Some(timeout))
        {
            Some(Reached::Handshake(v)) => Some(Ok(v)),
            Some(Reached::Ended(r)) => Some(Err(r)),
            None => None,
        }
    }
}

/// A wait without timeout only returns once its goal (or the end) is reached; the end
/// answers every goal, so the other arm cannot happen.
#[cold]
fn unreachable_goal() -> ! {
    unreachable!("a lifecycle wait returned without reaching its goal")
}

impl fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerHandle")
            .field("id", &self.shared.id)
            .field("addr", &self.shared.addr)
            .field("direction", &self.shared.direction)
            .field("executor", &self.shared.executor)
            .field("connected", &self.connected())
            .finish()
    }
}

impl PartialEq for PeerHandle {
    fn eq(&self, other: &PeerHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for PeerHandle {}

impl std::hash::Hash for PeerHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state);
    }
}

impl peer_helpers::MessageQueue for PeerHandle {
    type Notify = Notifier;

    fn queue_message(&mut self, msg: Message, notify: Option<Notifier>) {
        self.queue_message_with(msg, notify);
    }

    fn negotiated_version(&self) -> u32 {
        PeerHandle::negotiated_version(self)
    }

    fn wants_addrv2(&self) -> bool {
        PeerHandle::wants_addrv2(self)
    }

    fn limits(&self) -> Limits {
        Limits::for_network(self.shared.network)
    }
}
