//! [`MessageQueue`]: what the helpers need from a peer, and [`RecordingQueue`], a queue
//! that only records.

use wire_codec::{version, Limits, Message};

/// Anything that can queue a message for one peer and tell what that peer negotiated.
///
/// The helpers are written against this trait, not against a concrete peer, so that the
/// same code serves the sans-IO [`peer_core::Peer`] (implemented in this crate), the
/// runtime's thread-safe `PeerHandle` (implemented in `peer-runtime`), and any other
/// driver or test double. The trait lives here because this crate sits between the two:
/// `peer-core` cannot know about the helpers, and the runtime depends on both.
///
/// # Notifications
///
/// A caller that must know when a message has left (btcd's `doneChan`, used by
/// `PushRejectMsg(.., wait=true)`) hands a [`Notify`](MessageQueue::Notify) to
/// [`queue_message`](MessageQueue::queue_message). The queue answers it exactly once:
/// written, or failed because the peer went away. What the value is depends on the
/// queue, because how one waits depends on who drives the I/O:
///
/// - [`peer_core::Peer`]: a `u64` token of the caller's choosing, answered later by one
///   `Event::Sent(token)` or `Event::Failed(token)` from `poll_event`. Nothing can block
///   inside a sans-IO call, so the caller watches its event loop.
/// - a runtime handle: typically the sending half of a one-shot channel (or a handle
///   the runtime gives out); the caller keeps the receiving half and blocks or awaits it.
///
/// Passing the notification *in* (rather than getting one back) keeps the caller in
/// charge of its token space and works unchanged for both kinds of queue.
///
/// ```
/// use peer_helpers::MessageQueue;
/// use wire_codec::{message::Ping, Message};
///
/// /// A queue that only counts, with a fixed negotiated state.
/// struct Counter { queued: usize }
///
/// impl MessageQueue for Counter {
///     type Notify = ();
///     fn queue_message(&mut self, _msg: Message, _notify: Option<()>) { self.queued += 1; }
///     fn negotiated_version(&self) -> u32 { 70016 }
///     fn wants_addrv2(&self) -> bool { false }
/// }
///
/// let mut q = Counter { queued: 0 };
/// q.queue_message(Message::Ping(Ping { nonce: 1 }), None);
/// assert_eq!(q.queued, 1);
/// assert_eq!(q.limits().max_addr, 1_000);
/// ```
pub trait MessageQueue {
    /// What a caller hands in to be told, exactly once, that a message was written or
    /// that it never will be (see the trait documentation).
    type Notify;

    /// Queues `msg` for the peer. With `notify`, the queue answers it exactly once when the
    /// message has been written or has failed (the peer went away, the queue was full).
    fn queue_message(&mut self, msg: Message, notify: Option<Self::Notify>);

    /// The protocol version in use with the peer: the negotiated one after the version
    /// exchange, the queue's own maximum before it (as btcd's `ProtocolVersion`).
    fn negotiated_version(&self) -> u32;

    /// Whether the peer asked for `addrv2` (it sent `sendaddrv2`, BIP155).
    fn wants_addrv2(&self) -> bool;

    /// The size limits of the peer's network. The helpers never put more into one message
    /// than these allow (nor more than the protocol maximum). The default is the Bitcoin
    /// mainnet set, which every supported network shares for addresses and locators.
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

impl<Q: MessageQueue + ?Sized> MessageQueue for &mut Q {
    type Notify = Q::Notify;

    fn queue_message(&mut self, msg: Message, notify: Option<Self::Notify>) {
        (**self).queue_message(msg, notify);
    }

    fn negotiated_version(&self) -> u32 {
        (**self).negotiated_version()
    }

    fn wants_addrv2(&self) -> bool {
        (**self).wants_addrv2()
    }

    fn limits(&self) -> Limits {
        (**self).limits()
    }
}

/// A [`MessageQueue`] that records what is queued instead of sending it.
///
/// It is the test double of the helpers (every example in this crate uses it), and it is
/// useful on its own to build messages now and hand them to a peer later. Its notification
/// is a `u64` token, stored next to the message, as `peer-core` takes it.
///
/// ```
/// use peer_helpers::{MessageQueue, RecordingQueue};
/// use wire_codec::{message::Ping, Message};
///
/// let mut q = RecordingQueue::new(70016);
/// q.queue_message(Message::Ping(Ping { nonce: 9 }), Some(4));
/// assert_eq!(q.messages, vec![(Message::Ping(Ping { nonce: 9 }), Some(4))]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingQueue {
    /// The version [`MessageQueue::negotiated_version`] reports.
    pub version: u32,
    /// What [`MessageQueue::wants_addrv2`] reports.
    pub addrv2: bool,
    /// What [`MessageQueue::limits`] reports.
    pub limits: Limits,
    /// Everything queued, oldest first, with its notification token.
    pub messages: Vec<(Message, Option<u64>)>,
}

impl RecordingQueue {
    /// An empty queue for a peer that negotiated `version`, did not ask for `addrv2`, and
    /// uses the default limits.
    pub fn new(version: u32) -> RecordingQueue {
        RecordingQueue {
            version,
            addrv2: false,
            limits: Limits::default(),
            messages: Vec::new(),
        }
    }

    /// The same queue for a peer that sent `sendaddrv2` (which needs version 70016).
    pub fn with_addrv2(mut self) -> RecordingQueue {
        self.addrv2 = true;
        self
    }

    /// The same queue with other limits (to test sampling with a small maximum).
    pub fn with_limits(mut self, limits: Limits) -> RecordingQueue {
        self.limits = limits;
        self
    }

    /// The most recently queued message.
    pub fn last(&self) -> Option<&Message> {
        self.messages.last().map(|(m, _)| m)
    }
}

impl Default for RecordingQueue {
    /// A queue at the highest version the codec knows (70016), without `addrv2`.
    fn default() -> Self {
        RecordingQueue::new(version::ADDR_V2)
    }
}

impl MessageQueue for RecordingQueue {
    type Notify = u64;

    fn queue_message(&mut self, msg: Message, notify: Option<u64>) {
        self.messages.push((msg, notify));
    }

    fn negotiated_version(&self) -> u32 {
        self.version
    }

    fn wants_addrv2(&self) -> bool {
        self.addrv2
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}
