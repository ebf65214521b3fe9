//! The v1 transport: the 24-byte header framing of every Bitcoin and LBRY node
//! (`wire_codec`'s [`FrameDecoder`] and [`encode_frame_with_memo`]), over the peer's own receive
//! buffer.

use bytes::BytesMut;
use wire_codec::frame::encode_frame_with_memo;
use wire_codec::{Command, Context, Error as CodecError, FrameDecoder, Message};

use super::{Fault, Inbound, Next, RecvBuffer};

/// Plain framing: magic, command, length, checksum, payload.
#[derive(Debug)]
pub struct V1Transport {
    pub(crate) buf: RecvBuffer,
    decoder: FrameDecoder,
    magic: [u8; 4],
    /// An inbound connection of a v2-capable peer whose first bytes have not shown v1
    /// yet: they may still show v2 ([`Transport::next_frame`](super::Transport::next_frame)
    /// turns it into a BIP324 responder then). Starting as v1 costs a v1 remote, most
    /// of them, no v2 state.
    pub(crate) detecting_v2: bool,
}

impl V1Transport {
    /// A v1 transport for frames with `magic`, accepting payloads up to `max_payload`.
    pub fn new(magic: [u8; 4], max_payload: u32) -> V1Transport {
        V1Transport {
            buf: RecvBuffer::default(),
            decoder: FrameDecoder::with_limits(magic, max_payload),
            magic,
            detecting_v2: false,
        }
    }

    /// The magic its frames start with.
    pub(crate) fn magic(&self) -> [u8; 4] {
        self.magic
    }

    /// The largest payload a header may announce.
    pub(crate) fn max_payload(&self) -> u32 {
        self.decoder.max_payload()
    }

    /// The next whole frame in the buffer.
    pub fn next_frame(&mut self) -> Next {
        let buf = self.buf.bytes_mut();
        let pending = self.decoder.pending_header().copied();
        // The command of a header that fails to parse, for the error report.
        let peeked = if pending.is_none() {
            wire_codec::header::layout::command(buf)
        } else {
            None
        };
        let before = buf.len();
        match self.decoder.decode(buf) {
            Ok(None) => Next::NeedMore,
            Ok(Some(frame)) => Next::Frame(Inbound {
                wire_len: frame.wire_len(),
                command: frame.header.command,
                payload: frame.payload,
            }),
            Err(error) => {
                let consumed = before - buf.len();
                let command = pending
                    .map(|h| h.command)
                    .or_else(|| peeked.and_then(|c| Command::from_wire(c).ok()));
                let header = if pending.is_some() {
                    wire_codec::HEADER_LEN
                } else {
                    0
                };
                Next::Fault(Fault {
                    error,
                    command,
                    bytes: consumed + header,
                    progressed: consumed > 0 || pending.is_some(),
                })
            }
        }
    }

    /// Bytes that would complete the frame in progress (at least 1).
    pub fn bytes_needed(&self) -> usize {
        self.decoder.bytes_needed(self.buf.inner()).max(1)
    }

    /// Caps the payload a header may announce.
    pub fn set_max_payload(&mut self, max: u32) {
        self.decoder.set_max_payload(max);
    }

    /// Frames `msg` into `out`. A payload that repeats the last 8-byte payload received
    /// (a `pong` answering a `ping`) takes that frame's verified checksum instead of
    /// hashing the same bytes again (see `wire_codec::ChecksumMemo`).
    pub fn encode(
        &mut self,
        msg: &Message,
        ctx: &Context,
        out: &mut BytesMut,
    ) -> Result<usize, CodecError> {
        encode_frame_with_memo(self.magic, msg, ctx, out, self.decoder.memo())
    }
}
