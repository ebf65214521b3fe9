//! What a peer reports to its driver and application.

use wire_codec::message::{Message, Version};
use wire_codec::{Command, Error as CodecError};

use crate::reason::DisconnectReason;
use crate::stats::Features;

/// An event, taken with [`Peer::poll_event`](crate::Peer::poll_event).
///
/// Every notification token given to [`Peer::queue_message`](crate::Peer::queue_message)
/// comes back exactly once, as [`Event::Sent`] or [`Event::Failed`]; all `Failed` events
/// of a disconnect come before its single [`Event::Disconnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The remote's version message arrived. The application must answer with
    /// [`Peer::accept_version`](crate::Peer::accept_version) or
    /// [`Peer::reject_version`](crate::Peer::reject_version) ([`dispatch`](crate::dispatch)
    /// does, from [`Listener::on_version`](crate::Listener::on_version)); until then the
    /// handshake waits (bounded by the negotiate timeout).
    Version(Box<Version>),
    /// Both veracks are exchanged; the peer is established.
    HandshakeComplete {
        /// The negotiated protocol version.
        version: u32,
        /// What was negotiated during the handshake.
        features: Features,
    },
    /// A decoded message for the application, already checked against the negotiated
    /// version and the peer's rules.
    Message(Message),
    /// The message queued with this token was completely written.
    Sent(u64),
    /// The message queued with this token will never be written (the peer closed, or
    /// the message does not exist at the negotiated version or could not be encoded).
    Failed(u64),
    /// A frame was read, or failed to read (btcd `OnRead`). Only with
    /// [`Config::report_io`](crate::Config::report_io). When the frame decoded and the
    /// peer hands its message on, the [`Event::Version`] or [`Event::Message`] carrying
    /// it comes right after this event ([`dispatch`](crate::dispatch) gives the message
    /// to [`Listener::on_read`](crate::Listener::on_read)).
    Read {
        /// Bytes consumed for it.
        bytes: usize,
        /// Its command, when the header could be read.
        command: Option<Command>,
        /// The decode error, if it failed.
        error: Option<CodecError>,
    },
    /// A message was completely written (btcd `OnWrite`). Only with
    /// [`Config::report_io`](crate::Config::report_io), which keeps each queued message
    /// until its last byte is written to report it here.
    Written {
        /// Its size on the wire.
        bytes: usize,
        /// The message.
        message: Message,
    },
    /// The peer ended; emitted exactly once. The driver should write what
    /// [`Peer::transmit`](crate::Peer::transmit) still holds (a final reject, if any) and
    /// close the connection.
    Disconnected(DisconnectReason),
}
