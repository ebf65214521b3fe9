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

    /// The transport of an inbound connection to a v2-capable peer: v1 until the first
    /// bytes decide ([`detect`](mod@detect)); a v2 initiator's turn it into a BIP324
    /// responder (key and garbage drawn then), keeping the bytes. Until then it reports
    /// v2, as a responder did, and encodes nothing.
    pub(crate) fn inbound_v2_capable(network: Network, max_payload: u32) -> Transport {
        let mut t = V1Transport::new(network.magic(), max_payload);
        t.detecting_v2 = true;
        Transport::V1(t)
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
            Transport::V1(t) if t.detecting_v2 => TransportVersion::V2,
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
            Transport::V1(t) if t.detecting_v2 => match detect(t.magic(), t.buf.bytes()) {
                Detected::NeedMore => Next::NeedMore,
                Detected::V1 => {
                    t.detecting_v2 = false;
                    t.next_frame()
                }
                Detected::V2 => {
                    use rand::Rng;
                    let (magic, max) = (t.magic(), t.max_payload());
                    let garbage = rand::thread_rng().gen_range(0..=MAX_GARBAGE_LEN);
                    match V2Transport::deferred_responder(magic, max, garbage) {
                        Ok(v2) => {
                            let mut link = V2Link::new(v2, magic, max);
                            link.buf = core::mem::take(&mut t.buf);
                            *self = Transport::V2(Box::new(link));
                            self.next_frame()
                        }
                        Err(e) => Next::Failed(e),
                    }
                }
            },
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
            Transport::V1(t) if t.detecting_v2 => V1_PREFIX_LEN.saturating_sub(t.buf.len()).max(1),
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
        matches!(self, Transport::V1(t) if !t.detecting_v2)
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
            Transport::V1(t) if t.detecting_v2 => Err(v2_link::not_established()),
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
            Transport::V1(t) if t.detecting_v2 => Err(v2_link::not_established()),
            Transport::V1(t) => t.encode(msg, ctx, out),
            Transport::V2(l) => l.encode(msg, ctx, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::message::Ping;

    const NET: Network = Network::Regtest;

    fn ctx() -> Context {
        Context::new(NET, 70016)
    }

    /// An inbound connection to a v2-capable peer starts as v1 with no v2 state, reports
    /// v2 and encodes nothing until its first bytes decide; a v1 remote's frames then
    /// come out as plain v1 (the transport stays v1, sends frames as they are).
    #[test]
    fn an_inbound_v2_capable_transport_turns_plain_v1_for_a_v1_remote() {
        let mut t = Transport::inbound_v2_capable(NET, 1000);
        assert_eq!(t.version(), TransportVersion::V2);
        assert!(t.as_v2().is_none() && !t.sends_frames_as_is());
        let mut out = BytesMut::new();
        assert!(t.encode(&Message::Verack, &ctx(), &mut out).is_err());
        assert!(out.is_empty());

        // A v1 initiator's first frame is its version (what detection looks for).
        let mut wire = BytesMut::new();
        let version = Message::Unknown {
            command: Command::from_static("version"),
            payload: Bytes::copy_from_slice(&9u64.to_le_bytes()),
        };
        wire_codec::encode_frame(NET.magic(), &version, &ctx(), &mut wire).unwrap();
        // A few bytes decide nothing.
        t.buffer().extend(&wire[..10], 32);
        assert!(matches!(t.next_frame(), Next::NeedMore));
        assert_eq!(t.bytes_needed(), V1_PREFIX_LEN - 10);
        assert_eq!(t.version(), TransportVersion::V2);
        t.buffer().extend(&wire[10..], 32);
        let Next::Frame(f) = t.next_frame() else {
            panic!("the v1 frame")
        };
        assert_eq!(f.command.as_str(), "version");
        assert_eq!(&f.payload[..], &9u64.to_le_bytes());
        assert!(matches!(&t, Transport::V1(v1) if !v1.detecting_v2));
        assert_eq!(t.version(), TransportVersion::V1);
        assert!(t.sends_frames_as_is());
        assert!(t.encode(&Message::Verack, &ctx(), &mut out).is_ok());
    }

    /// A v2 initiator's first bytes turn it into a BIP324 responder that keeps them:
    /// the key exchange completes and the session carries messages both ways.
    #[test]
    fn an_inbound_v2_capable_transport_answers_a_v2_initiator() {
        let mut rng = rand::thread_rng();
        let mut a = V2Transport::new(Side::Initiator, NET.magic(), 100_000, &mut rng, 11).unwrap();
        let mut b = Transport::inbound_v2_capable(NET, 100_000);
        let mut to_b = BytesMut::new();
        a.start(&mut to_b);
        let mut a_in = BytesMut::new();
        for _ in 0..8 {
            b.buffer().extend(&to_b, 64);
            to_b.clear();
            while let Next::Frame(_) = b.next_frame() {}
            if let Some(bytes) = b.take_handshake_bytes() {
                a_in.extend_from_slice(&bytes);
            }
            while let Ok(Received::Frame(_)) = a.receive(&mut a_in, &mut to_b) {}
            if a.is_ready() && b.as_v2().is_some_and(|l| l.session().is_ready()) {
                break;
            }
        }
        assert!(a.is_ready());
        let link = b.as_v2().expect("a v2 link");
        assert_eq!(link.session().session_id(), a.session_id());
        assert_eq!(b.version(), TransportVersion::V2);
        let mut wire = BytesMut::new();
        a.encrypt_message(Command::from_static("ping"), &5u64.to_le_bytes(), &mut wire)
            .unwrap();
        b.buffer().extend(&wire, 64);
        let Next::Frame(f) = b.next_frame() else {
            panic!("the ping")
        };
        assert_eq!(f.command.as_str(), "ping");
        let mut back = BytesMut::new();
        b.encode(&Message::Ping(Ping { nonce: 6 }), &ctx(), &mut back)
            .unwrap();
        let Ok(Received::Frame(f)) = a.receive(&mut back, &mut BytesMut::new()) else {
            panic!("our ping")
        };
        assert_eq!(&f.payload[..], &6u64.to_le_bytes());
    }
}
