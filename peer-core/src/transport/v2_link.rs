//! The v2 variant of the seam: a [`V2Transport`] over the peer's own receive buffer.
//!
//! Decrypted packets become the same [`Inbound`] frames the v1 framing yields; messages
//! are framed by the v1 encoder into a reused scratch buffer and sealed into the output
//! as one packet each. Bytes the handshake sends on its own (key, garbage, terminator,
//! version packet) wait in the link until the peer moves them to its output queue.

use bytes::BytesMut;
use wire_codec::{Context, Error as CodecError, Message};

use super::v2::{Received, Side, V2Transport};
use super::{Inbound, Next, RecvBuffer};
use crate::error::Error;

/// What the v2 link found next: a frame (or the need for more bytes, or a failure), or
/// a remote that speaks v1 (responder only; the buffer is untouched).
pub(crate) enum LinkNext {
    Next(Next),
    RemoteIsV1,
}

/// BIP324 over the peer's receive buffer.
#[derive(Debug)]
pub struct V2Link {
    pub(crate) buf: RecvBuffer,
    v2: V2Transport,
    pub(crate) magic: [u8; 4],
    pub(crate) max_payload: u32,
    handshake_out: BytesMut,
    /// Bytes consumed by calls that yielded no frame (handshake, decoys), not yet
    /// reported to the peer's statistics.
    uncounted: usize,
}

impl V2Link {
    /// A link around `v2`; an initiator's key and garbage are queued at once.
    pub(crate) fn new(mut v2: V2Transport, magic: [u8; 4], max_payload: u32) -> V2Link {
        let mut handshake_out = BytesMut::new();
        v2.start(&mut handshake_out);
        V2Link {
            buf: RecvBuffer::default(),
            v2,
            magic,
            max_payload,
            handshake_out,
            uncounted: 0,
        }
    }

    /// The BIP324 state machine.
    pub fn session(&self) -> &V2Transport {
        &self.v2
    }

    /// Bytes consumed without a frame since the last call (for the byte counters).
    pub(crate) fn take_uncounted(&mut self) -> usize {
        core::mem::take(&mut self.uncounted)
    }

    /// Handshake bytes to send, if any (taken: the caller puts them in its output).
    pub(crate) fn take_handshake_bytes(&mut self) -> Option<BytesMut> {
        // Taken whole (not split): an idle peer keeps no handshake allocation.
        (!self.handshake_out.is_empty()).then(|| core::mem::take(&mut self.handshake_out))
    }

    pub(crate) fn next_frame(&mut self) -> LinkNext {
        let buf = self.buf.bytes_mut();
        let before = buf.len();
        let received = self.v2.receive(buf, &mut self.handshake_out);
        let consumed = before - buf.len();
        if !matches!(received, Ok(Received::Frame(_))) {
            self.uncounted += consumed;
        }
        LinkNext::Next(match received {
            Ok(Received::Frame(f)) => Next::Frame(Inbound {
                command: f.header.command,
                payload: f.payload,
                wire_len: consumed,
            }),
            Ok(Received::NeedMore) => Next::NeedMore,
            Ok(Received::RemoteIsV1) => return LinkNext::RemoteIsV1,
            Err(e) => Next::Failed(e),
        })
    }

    pub(crate) fn bytes_needed(&self) -> usize {
        self.v2.bytes_needed(self.buf.inner())
    }

    pub(crate) fn set_max_payload(&mut self, max: u32) {
        self.max_payload = max;
        self.v2.set_max_payload(max);
    }

    /// Appends `msg` to `out` as one packet: the message type and then the payload are
    /// encoded straight into `out` and encrypted there (no v1 header, no checksum, no
    /// copy).
    pub(crate) fn encode(
        &mut self,
        msg: &Message,
        ctx: &Context,
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        let begin = out.len();
        let start = self
            .v2
            .begin_message(msg.command(), msg.size_hint(), out)
            .map_err(|_: Error| not_established())?;
        let payload_at = out.len();
        if let Err(e) = msg.encode_payload(out, ctx) {
            out.truncate(start);
            return Err(e);
        }
        // The same limit the v1 encoder applies: the remote would have to disconnect.
        let len = out.len() - payload_at;
        if len > ctx.limits.max_payload as usize {
            out.truncate(start);
            return Err(CodecError::PayloadTooLarge {
                len: len as u64,
                max: u64::from(ctx.limits.max_payload),
            });
        }
        self.v2.finish_message(out, start).map_err(|e| match e {
            // Contents over BIP324's 3-byte length (only with a max_payload above it).
            Error::V2PacketTooLarge { len, max } => CodecError::PayloadTooLarge {
                len: len as u64,
                max: max as u64,
            },
            _ => not_established(),
        })?;
        Ok(out.len() - begin)
    }

    /// Encrypts an already encoded v1 frame (a shared frame's bytes) into `out` as one
    /// packet. The session's own keys make the ciphertext a per-connection copy: the
    /// command is read from the frame's header and its payload copied once, into `out`.
    pub(crate) fn encode_frame_bytes(
        &mut self,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        if !self.v2.is_ready() {
            return Err(not_established());
        }
        let start = out.len();
        self.v2
            .encrypt_frame(frame, out)
            .map_err(|_: Error| CodecError::Malformed {
                what: "v2 frame",
                reason: "not a v1 frame with a known command",
            })?;
        Ok(out.len() - start)
    }

    /// Releases the receive buffer's spare memory.
    pub(crate) fn settle(&mut self) {
        self.buf.settle();
    }

    /// Whether this end initiated.
    pub(crate) fn is_initiator(&self) -> bool {
        self.v2.side() == Side::Initiator
    }
}

pub(crate) fn not_established() -> CodecError {
    CodecError::Malformed {
        what: "v2 session",
        reason: "not established: nothing can be encrypted yet",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wire_codec::{Command, Network};

    const MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

    /// Two links whose sessions are established with each other.
    fn pair() -> (V2Link, V2Link) {
        let mut rng = rand::thread_rng();
        let a = V2Transport::new(Side::Initiator, MAGIC, 4_000_000, &mut rng, 7).unwrap();
        let b = V2Transport::new(Side::Responder, MAGIC, 4_000_000, &mut rng, 9).unwrap();
        let (mut a, mut b) = (
            V2Link::new(a, MAGIC, 4_000_000),
            V2Link::new(b, MAGIC, 4_000_000),
        );
        fn shuttle(from: &mut V2Link, to: &mut V2Link) {
            if let Some(bytes) = from.take_handshake_bytes() {
                to.buf.extend(&bytes, 0);
            }
            assert!(matches!(to.next_frame(), LinkNext::Next(Next::NeedMore)));
        }
        for _ in 0..4 {
            shuttle(&mut a, &mut b);
            shuttle(&mut b, &mut a);
        }
        assert!(a.v2.is_ready() && b.v2.is_ready());
        (a, b)
    }

    fn receive(link: &mut V2Link, wire: &[u8]) -> Inbound {
        link.buf.extend(wire, 0);
        match link.next_frame() {
            LinkNext::Next(Next::Frame(f)) => f,
            _ => panic!("no frame"),
        }
    }

    #[test]
    fn encode_writes_one_packet_without_a_v1_header_and_refuses_oversize_untouched() {
        let (mut a, mut b) = pair();
        let mut ctx = Context::new(Network::Mainnet, 70016);
        ctx.limits.max_payload = 100;
        let msg = |n: usize| Message::Unknown {
            command: Command::from_static("tx"),
            payload: Bytes::from(vec![0x5a; n]),
        };
        let mut out = BytesMut::from(&b"queued"[..]);
        // One over the limit: refused, nothing appended, the cipher did not advance.
        let err = a.encode(&msg(101), &ctx, &mut out).unwrap_err();
        assert!(matches!(
            err,
            CodecError::PayloadTooLarge { len: 101, max: 100 }
        ));
        assert_eq!(&out[..], b"queued");
        // At the limit: 3 length + 1 header + 1 short id + payload + 16 tag.
        let n = a.encode(&msg(100), &ctx, &mut out).unwrap();
        assert_eq!(n, 3 + 1 + 1 + 100 + 16);
        assert_eq!(out.len(), 6 + n);
        let got = receive(&mut b, &out[6..]);
        assert_eq!(got.command.as_str(), "tx");
        assert_eq!(&got.payload[..], &[0x5a; 100][..]);
        assert_eq!(got.wire_len, n);
    }

    #[test]
    fn a_shared_v1_frame_becomes_the_same_packet_as_the_message() {
        let (mut a, mut b) = pair();
        let ctx = Context::new(Network::Mainnet, 70016);
        let msg = Message::Unknown {
            command: Command::from_static("sendheaders"),
            payload: Bytes::from_static(b"abc"),
        };
        let mut frame = BytesMut::new();
        wire_codec::encode_frame(MAGIC, &msg, &ctx, &mut frame).unwrap();
        let mut out = BytesMut::new();
        let n = a.encode_frame_bytes(&frame, &mut out).unwrap();
        // Long message type (13 bytes): no short id for sendheaders.
        assert_eq!(n, 3 + 1 + 13 + 3 + 16);
        let got = receive(&mut b, &out);
        assert_eq!(got.command.as_str(), "sendheaders");
        assert_eq!(&got.payload[..], b"abc");
        // A frame too short for a header is refused without writing anything.
        assert!(a.encode_frame_bytes(&frame[..10], &mut out).is_err());
        assert_eq!(out.len(), n);
    }
}
