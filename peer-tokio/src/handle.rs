//! [`PeerHandle`]: what the application holds for one peer, from any thread or task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use peer_core::{DisconnectReason, Peer, SharedFrame, StatsSnapshot};
use tokio::sync::{mpsc, oneshot, watch};
use wire_codec::message::InvVect;
use wire_codec::Message;

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote connected to us.
    Inbound,
    /// We connected to the remote.
    Outbound,
}

/// The answer to a message queued through a handle: exactly one of these, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Its last byte was handed to the socket.
    Sent,
    /// It will never be written (the peer ended, or the message does not exist at the
    /// negotiated version).
    Failed,
}

/// Resolves once to the [`Delivery`] of one queued message. Await it, or call
/// [`Notification::blocking_wait`] from a thread outside the runtime. Dropping it is
/// fine: the message is still sent.
#[derive(Debug)]
pub struct Notification(pub(crate) oneshot::Receiver<Delivery>);

impl Notification {
    /// Blocks the calling thread until the answer (never call it inside the runtime).
    pub fn blocking_wait(self) -> Delivery {
        self.0.blocking_recv().unwrap_or(Delivery::Failed)
    }
}

impl Future for Notification {
    type Output = Delivery;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivery> {
        // A dropped sender means the driver ended without writing the message.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Delivery::Failed))
    }
}

/// A closure run on the peer's task with the peer and the current instant.
pub(crate) type PeerFn = Box<dyn FnOnce(&mut Peer, Instant) + Send>;

/// What a handle asks of the peer's task.
pub(crate) enum Command {
    Message(Message, Option<oneshot::Sender<Delivery>>),
    Frame(SharedFrame, Option<oneshot::Sender<Delivery>>),
    Inventory(InvVect),
    InventoryImmediate(InvVect),
    KnownInventory(InvVect),
    Disconnect,
    Stats(oneshot::Sender<StatsSnapshot>),
    Run(PeerFn),
}

/// Where the peer is in its life, published by its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    Negotiating,
    Handshaken(u32),
    Ended(DisconnectReason),
}

pub(crate) struct PeerShared {
    pub(crate) id: u64,
    pub(crate) addr: SocketAddr,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) direction: Direction,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) life: watch::Sender<Life>,
    /// Set by `disconnect` (and by the task when it closes), so `connected` answers
    /// false at once.
    pub(crate) closing: AtomicBool,
    pub(crate) final_stats: Mutex<Option<StatsSnapshot>>,
    /// The negotiated version: min(ours, theirs) from the remote's version on (0 before).
    pub(crate) negotiated: AtomicU32,
    /// Set once when the handshake completes.
    pub(crate) handshaken: AtomicBool,
}

/// One peer, as the application holds it: `Send + Sync + Clone`, cheap to clone, usable
/// from any task or thread. Every method only posts to the peer's task (which owns the
/// `peer_core::Peer`) or reads what the task published; messages from one thread go out
/// in the order they were queued.
///
/// ```
/// fn is_shareable<T: Send + Sync + Clone + 'static>() {}
/// is_shareable::<peer_tokio::PeerHandle>();
/// ```
#[derive(Clone)]
pub struct PeerHandle {
    pub(crate) shared: Arc<PeerShared>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("id", &self.shared.id)
            .field("addr", &self.shared.addr)
            .field("direction", &self.shared.direction)
            .finish()
    }
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

    /// Our end of the connection, if the OS told.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// Whether the remote connected to us.
    pub fn is_inbound(&self) -> bool {
        self.shared.direction == Direction::Inbound
    }

    /// Whether the peer is still connected (false as soon as [`PeerHandle::disconnect`]
    /// was called).
    pub fn connected(&self) -> bool {
        !self.shared.closing.load(Ordering::Acquire)
            && !matches!(*self.shared.life.borrow(), Life::Ended(_))
    }

    /// Whether the handshake completed and the peer is still connected (false as soon
    /// as it is disconnecting, as btcd's `VerAckReceived && Connected`).
    pub fn handshake_complete(&self) -> bool {
        self.connected() && self.shared.handshaken.load(Ordering::Acquire)
    }

    /// The negotiated protocol version, min(ours, theirs), from the remote's version
    /// message on; 0 before it arrived.
    pub fn negotiated_version(&self) -> u32 {
        self.shared.negotiated.load(Ordering::Acquire)
    }

    /// Why the peer ended, once it has.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        match &*self.shared.life.borrow() {
            Life::Ended(r) => Some(r.clone()),
            _ => None,
        }
    }

    fn post(&self, cmd: Command) {
        // After the task ended the command comes back and is dropped: a dropped
        // notification sender answers `Failed`, a dropped stats sender `None`.
        let _ = self.shared.commands.send(cmd);
    }

    /// Queues a message; the [`Notification`] says whether it was written.
    pub fn queue_message(&self, msg: Message) -> Notification {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Message(msg, Some(tx)));
        Notification(rx)
    }

    /// Queues a message without asking for an answer.
    pub fn queue_message_detached(&self, msg: Message) {
        self.post(Command::Message(msg, None));
    }

    /// Queues a frame encoded once for many peers (`peer_core::SharedFrame`,
    /// `Peer::queue_frame`): sent as [`PeerHandle::queue_message`] would send its
    /// message (order, gating, witness rule, notification), but over v1 a large frame
    /// is written from the frame's own bytes with a vectored write — never copied for
    /// this peer. See [`Node::broadcast`](crate::Node::broadcast) for the whole
    /// relay, with an example.
    pub fn queue_frame(&self, frame: SharedFrame) -> Notification {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Frame(frame, Some(tx)));
        Notification(rx)
    }

    /// Queues a shared frame without asking for an answer.
    pub fn queue_frame_detached(&self, frame: SharedFrame) {
        self.post(Command::Frame(frame, None));
    }

    /// Queues an inventory announcement for the next trickle (`Peer::queue_inventory`).
    pub fn queue_inventory(&self, iv: InvVect) {
        self.post(Command::Inventory(iv));
    }

    /// Announces inventory at once (`Peer::queue_inventory_immediate`).
    pub fn queue_inventory_immediate(&self, iv: InvVect) {
        self.post(Command::InventoryImmediate(iv));
    }

    /// Records that the remote has `iv` (`Peer::add_known_inventory`).
    pub fn add_known_inventory(&self, iv: InvVect) {
        self.post(Command::KnownInventory(iv));
    }

    /// Disconnects the peer (reason `LocalRequest`). Idempotent.
    pub fn disconnect(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.post(Command::Disconnect);
    }

    /// The peer's statistics; after the end, the last ones.
    pub async fn stats_snapshot(&self) -> Option<StatsSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Stats(tx));
        match rx.await {
            Ok(s) => Some(s),
            Err(_) => self.final_stats(),
        }
    }

    fn final_stats(&self) -> Option<StatsSnapshot> {
        self.shared
            .final_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` on the peer's task with the peer itself; `None` if the peer ended first.
    /// A panic in `f` ends this peer only (`ApplicationPanicked`).
    pub async fn with_peer<R, F>(&self, f: F) -> Option<R>
    where
        F: FnOnce(&mut Peer, Instant) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Run(Box::new(move |peer, now| {
            let _ = tx.send(f(peer, now));
        })));
        rx.await.ok()
    }

    /// Waits until the handshake completed (the negotiated version) or the peer ended.
    pub async fn wait_for_handshake(&self) -> Result<u32, DisconnectReason> {
        let mut rx = self.shared.life.subscribe();
        let life = rx
            .wait_for(|l| !matches!(l, Life::Negotiating))
            .await
            .map(|l| l.clone());
        // A peer that handshook and ended before this call still reports its version.
        match (self.shared.handshaken.load(Ordering::Acquire), life) {
            (true, _) => Ok(self.negotiated_version()),
            (_, Ok(Life::Ended(r))) => Err(r),
            _ => Err(DisconnectReason::LocalRequest),
        }
    }

    /// Waits until the peer ended, and says why.
    pub async fn wait_for_disconnect(&self) -> DisconnectReason {
        let mut rx = self.shared.life.subscribe();
        let life = rx
            .wait_for(|l| matches!(l, Life::Ended(_)))
            .await
            .map(|l| l.clone());
        match life {
            Ok(Life::Ended(r)) => r,
            _ => DisconnectReason::LocalRequest,
        }
    }
}
