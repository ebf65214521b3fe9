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
//!   buffer and returns its length on the wire; [`Transport::encode_frame_bytes`] does
//!   the same for a frame encoded once for many peers (a `SharedFrame`), which a
//!   transport that [sends frames as they are](Transport::sends_frames_as_is) lets the
//!   output queue keep by reference instead. Bytes a transport must send that are
//!   not messages (a key exchange) go into the output with `OutputQueue::push_raw`.
//!
//! [`v1`] is the plain framing of every Bitcoin and LBRY node: magic, command, length,
//! checksum, payload (24-byte header). BIP324's v2 transport ([`v2_link`] over
//! [`v2::V2Transport`]) is the other variant: it decrypts packets into the same
//! [`Inbound`] frames before typed decode, and encrypts after encode, so nothing above
//! the transport changes. An inbound peer with v2 on starts as a v2 responder and
//! turns into v1 when the first 16 bytes are a v1 `version` ([`detect`](mod@detect)).
//!
//! - [`detect`](mod@detect): how a responder tells a v1 initiator from a v2 one.
//! - [`v2`]: [`V2Transport`], BIP324 as a sans-IO state machine.
//! - `v2_keys`: BIP324's ECDH and HKDF session keys (crate-internal).
//! - `v2_cipher`: FSChaCha20 and FSChaCha20-Poly1305 (crate-internal).
//! - [`v2_messages`]: BIP324's one-byte message IDs and the long (13-byte) form.

pub mod detect;
pub mod recv_buffer;
pub mod v1;
pub mod v2;
mod v2_cipher;
mod v2_keys;
pub mod v2_link;
pub mod v2_messages;

pub use detect::{detect, Detected, V1_PREFIX_LEN};
pub use v2::{Received, Side, V2Transport, MAX_GARBAGE_LEN};
pub use v2_link::V2Link;

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
    /// The transport failed for good (v2: a failed tag, garbage too long, …); nothing
    /// more is read.
    Failed(crate::Error),
}

/// Which transport a connection speaks (shown in statistics and on the runtime's handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransportVersion {
    /// Plaintext frames: magic, command, length, double-SHA-256 checksum.
    #[default]
    V1,
    /// BIP324: encrypted, authenticated packets.
    V2,
}

impl core::fmt::Display for TransportVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TransportVersion::V1 => "v1",
            TransportVersion::V2 => "v2",
        })
    }
}

/// The transport of one peer (see the module documentation for the seam).
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport {
    /// Plain v1 framing.
    V1(V1Transport),
    /// BIP324 v2 (boxed: its handshake state is larger than the v1 decoder).
    V2(Box<V2Link>),
}

impl Transport {
    /// The v1 transport of `network`, accepting payloads up to `max_payload`.
    pub fn v1(network: Network, max_payload: u32) -> Transport {
        Transport::V1(V1Transport::new(network.magic(), max_payload))
    }

    /// A BIP324 v2 transport of `network` with a fresh key (from the thread's CSPRNG)
    /// and Core's random garbage length (0–4,095 bytes); `None` only if the key could
    /// not be made.
    pub fn v2(side: Side, network: Network, max_payload: u32) -> Option<Transport> {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let garbage = rng.gen_range(0..=MAX_GARBAGE_LEN);
        let magic = network.magic();
        let v2 = match side {
            Side::Responder => V2Transport::deferred_responder(magic, max_payload, garbage),
            Side::Initiator => V2Transport::new(side, magic, max_payload, &mut rng, garbage),
        }
        .ok()?;
        Some(Transport::V2(Box::new(V2Link::new(v2, magic, max_payload))))
    }

    /// Which transport this is (an inbound v2-capable peer reports v2 until its first
    /// bytes show v1).
    pub fn version(&self) -> TransportVersion {
        match self {
            Transport::V1(_) => TransportVersion::V1,
            Transport::V2(_) => TransportVersion::V2,
        }
    }

    /// The v2 link, if this is v2.
    pub fn as_v2(&self) -> Option<&V2Link> {
        match self {
            Transport::V2(l) => Some(l),
            Transport::V1(_) => None,
        }
    }

    /// Bytes consumed without yielding a frame (v2 handshake, decoys) since the last
    /// call, for the byte counters.
    pub(crate) fn take_uncounted(&mut self) -> usize {
        match self {
            Transport::V2(l) => l.take_uncounted(),
            Transport::V1(_) => 0,
        }
    }

    /// Bytes the transport sends on its own (v2 handshake), taken for the output.
    pub(crate) fn take_handshake_bytes(&mut self) -> Option<BytesMut> {
        match self {
            Transport::V2(l) => l.take_handshake_bytes(),
            Transport::V1(_) => None,
        }
    }

    /// Where received bytes go.
    #[inline]
    pub fn buffer(&mut self) -> &mut RecvBuffer {
        match self {
            Transport::V1(t) => &mut t.buf,
            Transport::V2(l) => &mut l.buf,
        }
    }

    /// Bytes received and not yet taken as frames.
    #[inline]
    pub fn buffered(&self) -> usize {
        match self {
            Transport::V1(t) => t.buf.len(),
            Transport::V2(l) => l.buf.len(),
        }
    }

    /// Bytes of memory the receive buffer reserves.
    #[inline]
    pub fn buffer_capacity(&self) -> usize {
        match self {
            Transport::V1(t) => t.buf.capacity(),
            Transport::V2(l) => l.buf.capacity(),
        }
    }

    /// The next whole frame, if any. A v2 responder that finds a v1 initiator turns
    /// into the v1 transport here, keeping the bytes.
    #[inline]
    pub fn next_frame(&mut self) -> Next {
        match self {
            Transport::V1(t) => t.next_frame(),
            Transport::V2(l) => match l.next_frame() {
                v2_link::LinkNext::Next(n) => n,
                v2_link::LinkNext::RemoteIsV1 => {
                    let mut v1 = V1Transport::new(l.magic, l.max_payload);
                    v1.buf = core::mem::take(&mut l.buf);
                    *self = Transport::V1(v1);
                    self.next_frame()
                }
            },
        }
    }

    /// How many more bytes would complete the frame in progress (at least 1).
    pub fn bytes_needed(&self) -> usize {
        match self {
            Transport::V1(t) => t.bytes_needed(),
            Transport::V2(l) => l.bytes_needed(),
        }
    }

    /// Caps the payload a frame may announce (applies to headers not yet read).
    pub fn set_max_payload(&mut self, max: u32) {
        match self {
            Transport::V1(t) => t.set_max_payload(max),
            Transport::V2(l) => l.set_max_payload(max),
        }
    }

    /// Releases receive memory the peer no longer needs (see [`RecvBuffer::settle`]).
    #[inline]
    pub fn settle(&mut self) {
        match self {
            Transport::V1(t) => t.buf.settle(),
            Transport::V2(l) => l.settle(),
        }
    }

    /// Whether an encoded v1 frame goes on the wire as it is (v1), so a shared frame
    /// can be written from its own allocation; false when it must be transformed per
    /// connection (v2 encrypts it with the session's keys).
    #[inline]
    pub fn sends_frames_as_is(&self) -> bool {
        matches!(self, Transport::V1(_))
    }

    /// Appends an already encoded v1 frame (header and payload, e.g. a
    /// [`SharedFrame`](crate::SharedFrame)'s bytes) to `out` as this transport sends it:
    /// copied for v1, encrypted as one packet for v2. Returns its length on the wire.
    /// On error nothing is appended.
    pub fn encode_frame_bytes(
        &mut self,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        match self {
            Transport::V1(_) => {
                out.extend_from_slice(frame);
                Ok(frame.len())
            }
            Transport::V2(l) => l.encode_frame_bytes(frame, out),
        }
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
            Transport::V2(l) => l.encode(msg, ctx, out),
        }
    }
}
