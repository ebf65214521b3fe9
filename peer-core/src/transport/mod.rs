//! The transport: what sits between the connection's bytes and the protocol's frames.
//!
//! ```text
//!   driver ──bytes──▶ Peer::handle_read ──▶ Transport ──frames──▶ rules (peer.rs …)
//!   driver ◀──bytes── Peer::transmit    ◀── Transport ◀─messages── rules
//! ```
//!
//! A peer owns its transport, and the transport owns the receive buffer: a driver hands
//! over whatever it read ([`Peer::handle_read`](crate::Peer::handle_read), or reads
//! straight into [`Peer::receive_buffer`](crate::Peer::receive_buffer) and calls
//! [`Peer::process_received`](crate::Peer::process_received)) and never keeps unread
//! bytes itself, so no driver can leave frames behind: when the peer pauses (while the
//! application decides on the remote's version), the bytes wait in the peer and are
//! processed the moment it resumes, without new input.
//!
//! # The seam
//!
//! A transport is one variant of [`Transport`]; every variant offers the same
//! operations, and the rest of the crate only calls those:
//!
//! * **receive**: [`Transport::buffer`] is where received bytes go (ciphertext, for an
//!   encrypted transport); [`Transport::next_frame`] takes the next whole frame off it as an
//!   [`Inbound`] — command, payload (a zero-copy `Bytes`), bytes it took on the wire —
//!   or says it needs more bytes, or reports a [`Fault`] (a codec error, the command if
//!   it was known, whether the stream can go on); [`Transport::bytes_needed`] sizes the
//!   driver's reads; [`Transport::set_max_payload`] caps what a frame may announce
//!   (small before the handshake); [`Transport::settle`] releases memory once the
//!   peer took what it could.
//! * **send**: [`Transport::encode`] appends one message, framed, to the output
//!   buffer and returns its length on the wire. Bytes a transport must send that are
//!   not messages (a key exchange) go into the output with `OutputQueue::push_raw`.
//!
//! [`v1`] is the plain framing of every Bitcoin and LBRY node: magic, command, length,
//! checksum, payload (24-byte header). BIP324's v2 transport is another variant: it
//! decrypts packets into the same [`Inbound`] frames before typed decode, and encrypts
//! after encode, so nothing above the transport changes.

pub mod recv_buffer;
pub mod v1;

use bytes::{Bytes, BytesMut};
use wire_codec::{Command, Context, Error as CodecError, Message, Network};

pub use recv_buffer::RecvBuffer;
pub use v1::V1Transport;

/// One frame as the transport delivers it: the message's command and payload, and the
/// bytes it took on the wire (header, padding, authentication tag included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The command.
    pub command: Command,
    /// The payload: a zero-copy slice of the receive buffer (or of the decrypted
    /// packet).
    pub payload: Bytes,
    /// Bytes consumed from the connection for it.
    pub wire_len: usize,
}

/// A frame that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What was wrong.
    pub error: CodecError,
    /// The frame's command, when its header could be read.
    pub command: Option<Command>,
    /// Bytes the frame took (consumed, or announced by a header already read).
    pub bytes: usize,
    /// Whether the transport moved past the frame: reading can go on after it (a
    /// checksum or payload error). When false the stream cannot be resynchronised.
    pub progressed: bool,
}

/// The result of asking for the next frame.
#[derive(Debug)]
pub enum Next {
    /// A whole frame.
    Frame(Inbound),
    /// No whole frame in the buffer yet.
    NeedMore,
    /// A frame that could not be read.
    Fault(Fault),
}

/// The transport of one peer (see the module documentation for the seam).
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport {
    /// Plain v1 framing.
    V1(V1Transport),
}

impl Transport {
    /// The v1 transport of `network`, accepting payloads up to `max_payload`.
    pub fn v1(network: Network, max_payload: u32) -> Transport {
        Transport::V1(V1Transport::new(network.magic(), max_payload))
    }

    /// Where received bytes go.
    #[inline]
    pub fn buffer(&mut self) -> &mut RecvBuffer {
        match self {
            Transport::V1(t) => &mut t.buf,
        }
    }

    /// Bytes received and not yet taken as frames.
    #[inline]
    pub fn buffered(&self) -> usize {
        match self {
            Transport::V1(t) => t.buf.len(),
        }
    }

    /// The next whole frame, if any.
    #[inline]
    pub fn next_frame(&mut self) -> Next {
        match self {
            Transport::V1(t) => t.next_frame(),
        }
    }

    /// How many more bytes would complete the frame in progress (at least 1).
    pub fn bytes_needed(&self) -> usize {
        match self {
            Transport::V1(t) => t.bytes_needed(),
        }
    }

    /// Caps the payload a frame may announce (applies to headers not yet read).
    pub fn set_max_payload(&mut self, max: u32) {
        match self {
            Transport::V1(t) => t.set_max_payload(max),
        }
    }

    /// Releases receive memory the peer no longer needs (see [`RecvBuffer::settle`]).
    #[inline]
    pub fn settle(&mut self) {
        self.buffer().settle();
    }

    /// Appends `msg`, framed, to `out`; returns its length on the wire. On error
    /// nothing is appended.
    #[inline]
    pub fn encode(
        &mut self,
        msg: &Message,
        ctx: &Context,
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        match self {
            Transport::V1(t) => t.encode(msg, ctx, out),
        }
    }
}
