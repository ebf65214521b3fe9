//! The v2 variant of the seam: a [`V2Transport`] over the peer's own receive buffer.
//!
//! Decrypted packets become the same [`Inbound`] frames the v1 framing yields; messages
//! are framed by the v1 encoder into a reused scratch buffer and sealed into the output
//! as one packet each. Bytes the handshake sends on its own (key, garbage, terminator,
//! version packet) wait in the link until the peer moves them to its output queue.

use bytes::{Buf, BytesMut};
use wire_codec::{encode_frame, Context, Error as CodecError, Message};

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
    scratch: BytesMut,
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
            scratch: BytesMut::new(),
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

    pub(crate) fn encode(
        &mut self,
        msg: &Message,
        ctx: &Context,
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        if !self.v2.is_ready() {
            return Err(CodecError::Malformed {
                what: "v2 session",
                reason: "not established: nothing can be encrypted yet",
            });
        }
        self.scratch.clear();
        encode_frame(self.magic, msg, ctx, &mut self.scratch)?;
        let start = out.len();
        self.v2
            .encrypt_frame(&mut self.scratch, out)
            .map_err(|_: Error| CodecError::Malformed {
                what: "v2 session",
                reason: "not established: nothing can be encrypted yet",
            })?;
        // Reused while the peer is busy; released by `settle` (and at once when big).
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = BytesMut::new();
        } else {
            self.scratch.advance(self.scratch.len());
        }
        Ok(out.len() - start)
    }

    /// Encrypts an already encoded v1 frame (a shared frame's bytes) into `out` as one
    /// packet. The session's own keys make the ciphertext a per-connection copy; the
    /// frame is staged in the scratch because the packet's contents replace the
    /// header's tail with the message type.
    pub(crate) fn encode_frame_bytes(
        &mut self,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        if !self.v2.is_ready() {
            return Err(CodecError::Malformed {
                what: "v2 session",
                reason: "not established: nothing can be encrypted yet",
            });
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        let start = out.len();
        let res = self.v2.encrypt_frame(&mut self.scratch, out);
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = BytesMut::new();
        } else {
            self.scratch.clear();
        }
        res.map_err(|_: Error| CodecError::Malformed {
            what: "v2 frame",
            reason: "not a v1 frame with a known command",
        })?;
        Ok(out.len() - start)
    }

    /// Releases the receive buffer's spare memory and the encoding scratch.
    pub(crate) fn settle(&mut self) {
        self.buf.settle();
        if self.scratch.capacity() > 0 {
            self.scratch = BytesMut::new();
        }
    }

    /// Whether this end initiated.
    pub(crate) fn is_initiator(&self) -> bool {
        self.v2.side() == Side::Initiator
    }
}
