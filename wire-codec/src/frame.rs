//! The streaming frame decoder and the frame encoder.

use bytes::{Bytes, BytesMut};

use crate::checksum::{checksum, ChecksumMemo};
use crate::error::{Error, Result};
use crate::header::{layout, FrameHeader, HEADER_LEN};
use crate::message::{Context, Message};
use crate::network::Network;

/// One frame as received: its header and its payload, checksum already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: FrameHeader,
    /// The payload, split off the read buffer without copying.
    pub payload: Bytes,
}

impl Frame {
    /// Bytes this frame took on the wire (header included).
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Decodes the payload into a typed message (the frame stays usable).
    pub fn decode(&self, ctx: &Context) -> Result<Message> {
        Message::decode(self.header.command, self.payload.clone(), ctx)
    }

    /// Decodes the payload into a typed message, consuming the frame: the payload's
    /// reference moves into the message instead of being counted up and down again.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use wire_codec::{encode_frame, message::Ping, Context, FrameDecoder, Message, Network};
    /// let ctx = Context::new(Network::Regtest, 70016);
    /// let mut buf = BytesMut::new();
    /// let ping = Message::Ping(Ping { nonce: 7 });
    /// encode_frame(Network::Regtest.magic(), &ping, &ctx, &mut buf).unwrap();
    /// let frame = FrameDecoder::new(Network::Regtest).decode(&mut buf).unwrap().unwrap();
    /// assert_eq!(frame.into_message(&ctx).unwrap(), ping);
    /// ```
    pub fn into_message(self, ctx: &Context) -> Result<Message> {
        Message::decode(self.header.command, self.payload, ctx)
    }
}

/// Splits a byte stream into frames.
///
/// Feed it the connection's read buffer after every read; it takes whole frames off
/// the front. Magic and length are checked as soon as the 24 header bytes are there,
/// so an oversized or foreign frame is refused before a byte of its payload is
/// buffered, and the decoder never reserves memory itself: how much to read next is
/// the caller's choice ([`FrameDecoder::bytes_needed`] tells what would complete the
/// current frame). The checksum is verified exactly once, before any typed decode.
///
/// ```
/// use bytes::BytesMut;
/// use wire_codec::{encode_frame, Context, FrameDecoder, Message, Network};
/// let ctx = Context::new(Network::Regtest, 70016);
/// let mut wire = BytesMut::new();
/// encode_frame(Network::Regtest.magic(), &Message::Verack, &ctx, &mut wire).unwrap();
///
/// let mut dec = FrameDecoder::new(Network::Regtest);
/// let mut buf = BytesMut::new();
/// buf.extend_from_slice(&wire[..10]);
/// assert!(dec.decode(&mut buf).unwrap().is_none());  // not a whole frame yet
/// buf.extend_from_slice(&wire[10..]);
/// let frame = dec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.header.command.as_str(), "verack");
/// assert_eq!(frame.decode(&ctx).unwrap(), Message::Verack);
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    magic: [u8; 4],
    max_payload: u32,
    pending: Option<FrameHeader>,
    /// The last verified 8-byte payload's checksum (see [`ChecksumMemo`]).
    memo: ChecksumMemo,
}

impl FrameDecoder {
    /// A decoder for `network`, with its maximum payload.
    pub fn new(network: Network) -> FrameDecoder {
        FrameDecoder::with_limits(network.magic(), network.max_payload())
    }

    /// A decoder for any magic and payload maximum.
    pub fn with_limits(magic: [u8; 4], max_payload: u32) -> FrameDecoder {
        FrameDecoder {
            magic,
            max_payload,
            pending: None,
            memo: ChecksumMemo::EMPTY,
        }
    }

    /// The largest payload accepted.
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Changes the largest payload accepted (e.g. a smaller cap before the handshake).
    /// Applies to headers not yet parsed.
    pub fn set_max_payload(&mut self, max: u32) {
        self.max_payload = max;
    }

    /// The checksum of the last 8-byte payload this decoder verified, for an encoder
    /// answering with the same bytes ([`encode_frame_with_memo`]).
    pub fn memo(&self) -> &ChecksumMemo {
        &self.memo
    }

    /// The header of a frame whose payload has not fully arrived yet.
    pub fn pending_header(&self) -> Option<&FrameHeader> {
        self.pending.as_ref()
    }

    /// How many more bytes `buf` needs before [`FrameDecoder::decode`] can return a
    /// frame (at least 1 when it would return `None`).
    pub fn bytes_needed(&self, buf: &BytesMut) -> usize {
        match &self.pending {
            Some(h) => (h.length as usize).saturating_sub(buf.len()),
            None => HEADER_LEN.saturating_sub(buf.len()),
        }
    }

    /// Takes the next frame off the front of `buf`, if it is complete.
    ///
    /// A checksum mismatch consumes the frame (the stream can go on); a bad magic, a
    /// bad command field or an oversized length leaves the header in place and keeps
    /// failing, because the stream cannot be resynchronised after it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        let header = match self.pending {
            Some(h) => h,
            None => {
                if buf.len() < HEADER_LEN {
                    return Ok(None);
                }
                let mut raw = [0u8; HEADER_LEN];
                raw.copy_from_slice(&buf[..HEADER_LEN]);
                let magic = layout::magic(&raw);
                if magic != self.magic {
                    return Err(Error::BadMagic {
                        expected: self.magic,
                        actual: magic,
                    });
                }
                let length = layout::length(&raw);
                if length > self.max_payload {
                    return Err(Error::PayloadTooLarge {
                        len: u64::from(length),
                        max: u64::from(self.max_payload),
                    });
                }
                let h = FrameHeader::parse(&raw)?;
                // Dropping the header bytes moves the start; no reference count is touched.
                bytes::Buf::advance(buf, HEADER_LEN);
                self.pending = Some(h);
                h
            }
        };
        let len = header.length as usize;
        if buf.len() < len {
            return Ok(None);
        }
        self.pending = None;
        // An empty payload (verack, wtxidrelay, sendaddrv2, getaddr, ...) takes no
        // reference to the read buffer: splitting one off made a buffer that held only
        // such frames shared (an allocation) for nothing.
        let payload = if len == 0 {
            Bytes::new()
        } else if len == buf.len() {
            // The frame is all the buffer holds (one message per read, the common case
            // for pings, invs and answers): the buffer itself becomes the payload.
            // Splitting it instead shares its allocation between the two halves, which
            // costs a second allocation (the shared header) and its free; the buffer is
            // left empty either way, and an empty receive buffer holds no memory.
            std::mem::take(buf).freeze()
        } else {
            buf.split_to(len).freeze()
        };
        let actual = checksum(&payload);
        if actual != header.checksum {
            return Err(Error::ChecksumMismatch {
                expected: header.checksum,
                actual,
            });
        }
        self.memo.remember(&payload, actual);
        Ok(Some(Frame { header, payload }))
    }
}

/// Encodes `msg` as one frame appended to `out`, returning the bytes written.
///
/// A payload over `ctx.limits.max_payload` is refused with [`Error::PayloadTooLarge`]
/// and nothing is appended (an unknown-command message can carry any payload).
///
/// The payload is serialized once, straight into `out`; the checksum is computed over
/// those written bytes and patched into the header.
///
/// ```
/// use bytes::BytesMut;
/// use wire_codec::{encode_frame, message::Ping, Context, Message, Network};
/// let mut out = BytesMut::new();
/// let n = encode_frame(Network::Mainnet.magic(), &Message::Ping(Ping { nonce: 0 }),
///                      &Context::new(Network::Mainnet, 70016), &mut out).unwrap();
/// assert_eq!(n, 32);
/// assert_eq!(&out[20..24], &[0x7e, 0xf0, 0xca, 0x62]);
/// ```
pub fn encode_frame(
    magic: [u8; 4],
    msg: &Message,
    ctx: &Context,
    out: &mut BytesMut,
) -> Result<usize> {
    encode_frame_with_memo(magic, msg, ctx, out, &ChecksumMemo::EMPTY)
}

/// [`encode_frame`], taking the checksum from `memo` when the payload is the bytes it
/// remembers (a `pong` answering the `ping` a decoder just verified): the same frame,
/// two SHA-256 compressions fewer.
///
/// ```
/// use bytes::BytesMut;
/// use wire_codec::frame::encode_frame_with_memo;
/// use wire_codec::{ChecksumMemo, Context, Message, Network};
/// let mut out = BytesMut::new();
/// let ctx = Context::new(Network::Mainnet, 70016);
/// encode_frame_with_memo(Network::Mainnet.magic(), &Message::Verack, &ctx, &mut out,
///                        &ChecksumMemo::EMPTY).unwrap();
/// assert_eq!(out.len(), 24);
/// ```
pub fn encode_frame_with_memo(
    magic: [u8; 4],
    msg: &Message,
    ctx: &Context,
    out: &mut BytesMut,
    memo: &ChecksumMemo,
) -> Result<usize> {
    let start = out.len();
    out.reserve(HEADER_LEN + msg.size_hint());
    // Length and checksum are known only after the payload is written: the header
    // goes in with zeros there, and its bytes are patched in place.
    let header = FrameHeader {
        magic,
        command: msg.command(),
        length: 0,
        checksum: [0; 4],
    };
    out.extend_from_slice(&header.to_bytes());
    if let Err(e) = msg.encode_payload(out, ctx) {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - start - HEADER_LEN;
    // A frame the remote must refuse is never produced: the receiving side's limit is
    // the same `max_payload` (and over it Core and btcd disconnect).
    if payload_len > ctx.limits.max_payload as usize {
        out.truncate(start);
        return Err(Error::PayloadTooLarge {
            len: payload_len as u64,
            max: u64::from(ctx.limits.max_payload),
        });
    }
    let sum = memo.checksum(&out[start + HEADER_LEN..]);
    let at = |r: core::ops::Range<usize>| start + r.start..start + r.end;
    out[at(layout::LENGTH)].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[at(layout::CHECKSUM)].copy_from_slice(&sum);
    Ok(out.len() - start)
}
