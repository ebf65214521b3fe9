//! The output queue: encoded frames waiting to be written, with per-message marks.
//!
//! The queue is a sequence of segments, written in order:
//!
//! * small messages are encoded straight into one contiguous `BytesMut` (the tail), so
//!   a batch of pings and invs is one write, as before;
//! * a large [`SharedFrame`](crate::SharedFrame) (at least
//!   [`LARGE_FRAME`]) is kept by reference: the tail so far
//!   is sealed into a segment of its own (no copy: `BytesMut::split`), then the frame's
//!   `Bytes` follows — the same allocation in every peer it was queued to. Later small
//!   messages start a new tail after it.
//!
//! Over BIP324 v2 there are no shared segments: each session encrypts with its own
//! keys, so every frame is encrypted into the tail (the one unavoidable copy per peer).
//!
//! For each message the queue remembers where it ends in the byte stream, its
//! notification token and its command, so that when the driver reports `n` bytes
//! written (across segments) the peer knows exactly which messages were completed
//! (btcd signals `doneChan` after `WriteMessage` returns; here "sent" means the last
//! byte was handed to the socket).
//!
//! The queue is bounded in bytes — shared frames count their full length in each
//! peer's queue, although their memory is shared: the bound is about what one remote
//! can make us hold for it, and a frame stays alive as long as any peer still holds it.
//! A remote that stops reading makes the queue full, and the peer is disconnected
//! instead of growing without limit.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use wire_codec::{Command, Context, Error as CodecError, Message};

use crate::frame::LARGE_FRAME;
use crate::transport::Transport;

/// A drained buffer bigger than this is released at once instead of kept for reuse, so
/// a peer that once sent a big batch does not keep megabytes. Smaller buffers are kept
/// while the peer is busy and released by [`OutputQueue::trim`] when it goes quiet.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// How blocks and transactions are written (btcd's `wire.MessageEncoding`, given to
/// `QueueMessageWithEncoding`).
///
/// ```
/// use peer_core::Encoding;
/// assert_eq!(Encoding::default(), Encoding::Witness);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// With witness data, when the remote negotiated witness support (it advertises
    /// NODE_WITNESS); without it otherwise. What
    /// [`Peer::queue_message`](crate::Peer::queue_message) uses.
    #[default]
    Witness,
    /// Always without witness data (btcd `BaseEncoding`; e.g. to answer a `getdata`
    /// for `MSG_TX` rather than `MSG_WITNESS_TX`).
    Base,
}

/// A message waiting for the handshake to complete: to encode, or already encoded.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Encoded for this peer when sent.
    Message(Message, Encoding),
    /// Encoded once for many peers.
    Frame(crate::SharedFrame),
}

/// One message in the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Stream offset just past the message's last byte.
    pub(crate) end: u64,
    /// Encoded length (header included).
    pub(crate) len: u32,
    /// The notification token, if the application asked for one.
    pub(crate) token: Option<u64>,
    /// The message's command.
    pub(crate) command: Command,
    /// Whether the message itself waits in [`OutputQueue`]'s kept messages (for the
    /// write report: [`Config::report_io`](crate::Config::report_io), btcd's `OnWrite`
    /// gets the message). Kept apart so a mark stays small when nobody wants them.
    pub(crate) kept: bool,
    /// Queued by [`OutputQueue::push_frame`] (a shared frame).
    pub(crate) frame: bool,
}

/// Why a message was not put in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Encoding failed (the message breaks a protocol limit); nothing was written.
    Encode(CodecError),
    /// The buffer would exceed its bound; nothing was written.
    Full { bytes: usize, limit: usize },
}

/// Encoded frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    /// Sealed segments (shared frames, and tails sealed before them), written before
    /// `buf`.
    segments: VecDeque<Bytes>,
    /// Bytes in `segments`.
    seg_bytes: usize,
    /// The contiguous tail small messages are encoded into.
    buf: BytesMut,
    marks: VecDeque<Mark>,
    /// The messages of the marks with `kept` (and not `frame`), in order.
    kept: VecDeque<Message>,
    /// The shared frames of the marks with `kept` and `frame`, in order: a reference to
    /// the frame, not a clone of its message per peer (the message is cloned when the
    /// report is made).
    kept_frames: VecDeque<crate::SharedFrame>,
    /// Stream offset of the first unwritten byte (of the first segment, or of `buf`).
    consumed: u64,
    /// When closed, the buffer holds a farewell message (or nothing), and advancing
    /// produces no completions.
    closed: bool,
    /// A message was partly written when the queue closed: the stream is cut
    /// mid-frame, so no farewell can follow.
    torn: bool,
    /// Encoded bytes of the kept messages (their memory, roughly, for the budget).
    kept_bytes: usize,
    /// Bytes written since the buffer was last empty: `BytesMut::advance` moves its
    /// start, and that prefix stays allocated (not in `capacity()`) until reused.
    advanced: usize,
}

impl OutputQueue {
    /// Encodes `msg` as a frame at the end of the buffer; the message is kept until
    /// written when `keep` (for the write report), dropped otherwise.
    #[inline]
    pub(crate) fn push(
        &mut self,
        transport: &mut Transport,
        msg: Message,
        ctx: &Context,
        token: Option<u64>,
        limit: usize,
        keep: bool,
    ) -> Result<(), PushError> {
        self.push_ref(transport, &msg, ctx, token, limit, keep)?;
        if keep {
            self.kept_bytes += self.marks.back().map_or(0, |m| m.len as usize);
            self.kept.push_back(msg);
        }
        Ok(())
    }

    fn push_ref(
        &mut self,
        transport: &mut Transport,
        msg: &Message,
        ctx: &Context,
        token: Option<u64>,
        limit: usize,
        keep: bool,
    ) -> Result<(), PushError> {
        let start = self.buf.len();
        let len = transport
            .encode(msg, ctx, &mut self.buf)
            .map_err(PushError::Encode)?;
        let total = self.seg_bytes + self.buf.len();
        if total > limit && start + self.seg_bytes > 0 {
            self.buf.truncate(start);
            return Err(PushError::Full {
                bytes: total,
                limit,
            });
        }
        let end = self.consumed + total as u64;
        self.marks.push_back(Mark {
            end,
            len: len as u32,
            token,
            command: msg.command(),
            kept: keep,
            frame: false,
        });
        Ok(())
    }

    /// Queues an encoded v1 frame (a [`SharedFrame`](crate::SharedFrame)'s bytes): by
    /// reference when it is large and the transport sends frames as they are (v1),
    /// copied into the tail when small, encrypted into the tail over v2. `keep` is the
    /// frame whose message the write report gets. On error nothing was queued.
    pub(crate) fn push_frame(
        &mut self,
        transport: &mut Transport,
        frame: Bytes,
        command: Command,
        token: Option<u64>,
        limit: usize,
        keep: Option<crate::SharedFrame>,
    ) -> Result<(), PushError> {
        let before = self.len();
        let len = if frame.len() >= LARGE_FRAME && transport.sends_frames_as_is() {
            if before + frame.len() > limit && before > 0 {
                return Err(PushError::Full {
                    bytes: before + frame.len(),
                    limit,
                });
            }
            if !self.buf.is_empty() {
                // Seal the tail (no copy: the front of its allocation).
                let tail = self.buf.split().freeze();
                self.seg_bytes += tail.len();
                self.segments.push_back(tail);
            }
            let len = frame.len();
            self.seg_bytes += len;
            self.segments.push_back(frame);
            len
        } else {
            let start = self.buf.len();
            let len = transport
                .encode_frame_bytes(&frame, &mut self.buf)
                .map_err(PushError::Encode)?;
            let total = self.seg_bytes + self.buf.len();
            if total > limit && before > 0 {
                self.buf.truncate(start);
                return Err(PushError::Full {
                    bytes: total,
                    limit,
                });
            }
            len
        };
        self.marks.push_back(Mark {
            end: self.consumed + self.len() as u64,
            len: len as u32,
            token,
            command,
            kept: keep.is_some(),
            frame: true,
        });
        if let Some(f) = keep {
            self.kept_frames.push_back(f);
        }
        Ok(())
    }

    /// The first contiguous run of bytes waiting to be written (the first segment).
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self.segments.front() {
            Some(s) => s,
            None => &self.buf,
        }
    }

    /// The contiguous tail (where the most recently encoded small message is).
    pub(crate) fn tail(&self) -> &[u8] {
        &self.buf
    }

    /// Every segment waiting to be written, in order (none empty).
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.segments
            .iter()
            .map(|s| &s[..])
            .chain((!self.buf.is_empty()).then_some(&self.buf[..]))
    }

    /// Fills `out` with the segments waiting to be written, in order; returns how many
    /// were filled.
    pub(crate) fn fill_vectored<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in out.iter_mut().zip(self.chunks()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// Segments waiting to be written.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len() + usize::from(!self.buf.is_empty())
    }

    /// Bytes waiting to be written.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.seg_bytes + self.buf.len()
    }

    /// Whether messages (or a farewell) wait to be written.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.seg_bytes == 0 && self.buf.is_empty()
    }

    /// Messages not completely written yet.
    pub(crate) fn pending_messages(&self) -> usize {
        self.marks.len()
    }

    /// Offset in [`Self::tail`] where the most recently pushed frame starts.
    pub(crate) fn last_start(&self) -> usize {
        match self.marks.back() {
            Some(m) => (m.end - u64::from(m.len))
                .saturating_sub(self.consumed + self.seg_bytes as u64)
                as usize,
            None => 0,
        }
    }

    /// Consumes `n` written bytes (clamped to what is buffered), across segments;
    /// returns the bytes actually consumed. Completed messages are then taken with
    /// [`Self::pop_completed`].
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        let mut left = n;
        while left > 0 {
            match self.segments.front_mut() {
                Some(front) => {
                    let k = left.min(front.len());
                    front.advance(k);
                    self.seg_bytes -= k;
                    left -= k;
                    if front.is_empty() {
                        self.segments.pop_front();
                    }
                }
                None => {
                    self.buf.advance(left);
                    self.advanced += left;
                    left = 0;
                }
            }
        }
        self.consumed += n as u64;
        if self.buf.is_empty() {
            let whole = self.buf.capacity() + self.advanced;
            self.advanced = 0;
            if whole > KEEP_CAPACITY {
                self.buf = BytesMut::new();
            } else {
                // Reuse the allocation from its start: reserving what it has moves
                // the start back without copying (nothing is left to copy), so
                // `capacity()` is the whole allocation again.
                self.buf.clear();
                self.buf.reserve(whole);
            }
        }
        n
    }

    /// Bytes of memory the queue holds: the output buffer's whole allocation (not
    /// only what waits in it), the sealed segments at their full length (a shared
    /// frame counts in full in every peer that holds it: an overstatement, never an
    /// understatement), the marks, and the messages kept for the write report.
    pub(crate) fn memory(&self) -> usize {
        self.buf.capacity()
            + self.advanced
            + self.seg_bytes
            + self.segments.capacity() * std::mem::size_of::<Bytes>()
            + self.kept_bytes
            + self.marks.capacity() * std::mem::size_of::<Mark>()
            + self.kept_frames.capacity() * std::mem::size_of::<crate::SharedFrame>()
    }

    /// Moves what waits into an allocation of its own size when the current one is
    /// much larger (grown by doubling, or mostly written already), and releases the
    /// allocation of an empty buffer: for a peer whose remote stopped reading, or
    /// that is paused, whose bytes may wait a long time.
    pub(crate) fn shrink(&mut self) {
        let len = self.buf.len();
        if len == 0 {
            self.buf = BytesMut::new();
            self.advanced = 0;
        } else if self.buf.capacity() + self.advanced > len + len / 4 + 4096 {
            let mut fresh = BytesMut::with_capacity(len);
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
            self.advanced = 0;
        }
        self.marks.shrink_to_fit();
        self.segments.shrink_to_fit();
        self.kept_frames.shrink_to_fit();
    }

    /// Releases the memory of an empty queue (the peer is idle).
    pub(crate) fn trim(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
        if self.segments.is_empty() && self.segments.capacity() > 0 {
            self.segments = VecDeque::new();
        }
        if self.marks.is_empty() && self.marks.capacity() > 0 {
            self.marks = VecDeque::new();
        }
        if self.kept.is_empty() && self.kept.capacity() > 0 {
            self.kept = VecDeque::new();
        }
        if self.kept_frames.is_empty() && self.kept_frames.capacity() > 0 {
            self.kept_frames = VecDeque::new();
        }
    }

    /// The kept message of `mark`, just taken with [`Self::pop_completed`].
    pub(crate) fn take_kept(&mut self, mark: &Mark) -> Option<Message> {
        if mark.kept {
            if mark.frame {
                // A kept frame is a reference to bytes counted where they are queued.
                self.kept_frames.pop_front().map(|f| f.message().clone())
            } else {
                self.kept_bytes = self.kept_bytes.saturating_sub(mark.len as usize);
                self.kept.pop_front()
            }
        } else {
            None
        }
    }

    /// The next message whose last byte has been written.
    pub(crate) fn pop_completed(&mut self) -> Option<Mark> {
        if self.closed {
            return None;
        }
        match self.marks.front() {
            Some(m) if m.end <= self.consumed => {
                let m = self.marks.pop_front();
                if self.marks.is_empty() && self.marks.capacity() > 64 * 1024 {
                    self.marks = VecDeque::new();
                }
                m
            }
            _ => None,
        }
    }

    /// Ends the queue: every message not completely written is dropped and returned,
    /// so its token can be failed — including one partly written, whose remaining
    /// bytes are dropped too: a message reported failed must never reach the remote
    /// afterwards. After this, completions are no longer reported.
    pub(crate) fn close(&mut self) -> Vec<Mark> {
        self.torn = self
            .marks
            .front()
            .is_some_and(|m| m.end - u64::from(m.len) < self.consumed);
        self.buf = BytesMut::new();
        self.segments = VecDeque::new();
        self.seg_bytes = 0;
        self.advanced = 0;
        self.closed = true;
        self.kept = VecDeque::new();
        self.kept_frames = VecDeque::new();
        self.kept_bytes = 0;
        self.marks.drain(..).collect()
    }

    /// Appends a farewell frame after [`Self::close`] (best effort; errors ignored).
    /// Nothing is appended after a torn message: the remote could not frame it.
    pub(crate) fn push_farewell(
        &mut self,
        transport: &mut Transport,
        msg: &Message,
        ctx: &Context,
    ) {
        if !self.torn {
            let _ = transport.encode(msg, ctx, &mut self.buf);
        }
    }

    /// Appends bytes a transport sends on its own (not a message: BIP324's key
    /// exchange, for one). They carry no notification and report no write.
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.buf.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::message::Ping;
    use wire_codec::Network;

    fn ctx() -> Context {
        Context::new(Network::Regtest, 70016)
    }

    #[test]
    fn completions_follow_written_bytes() {
        let mut q = OutputQueue::default();
        let mut transport = Transport::v1(Network::Regtest, 4_000_000);
        let magic = &mut transport;
        let ping = Message::Ping(Ping { nonce: 1 });
        q.push(&mut *magic, ping, &ctx(), Some(1), 1 << 20, false)
            .unwrap();
        q.push(&mut *magic, Message::Verack, &ctx(), Some(2), 1 << 20, true)
            .unwrap();
        assert_eq!(q.len(), 32 + 24);
        assert_eq!(q.advance(31), 31);
        assert!(q.pop_completed().is_none());
        assert_eq!(q.advance(1), 1);
        assert_eq!(q.pop_completed().map(|m| m.token), Some(Some(1)));
        assert!(q.pop_completed().is_none());
        assert_eq!(q.advance(1000), 24);
        let m = q.pop_completed().unwrap();
        assert_eq!(
            (m.token, m.len, m.command.as_str()),
            (Some(2), 24, "verack")
        );
        assert_eq!(
            q.take_kept(&m),
            Some(Message::Verack),
            "kept for the write report"
        );
        assert!(q.is_empty());
    }

    #[test]
    fn bound_refuses_growth_but_takes_one_big_message() {
        let mut q = OutputQueue::default();
        let mut transport = Transport::v1(Network::Regtest, 4_000_000);
        let magic = &mut transport;
        let ping = Message::Ping(Ping { nonce: 1 });
        // A single message bigger than the bound is accepted into an empty buffer.
        q.push(&mut *magic, ping.clone(), &ctx(), None, 10, false)
            .unwrap();
        let e = q
            .push(&mut *magic, ping, &ctx(), None, 40, false)
            .unwrap_err();
        assert_eq!(
            e,
            PushError::Full {
                bytes: 64,
                limit: 40
            }
        );
        assert_eq!(q.len(), 32, "the refused message left nothing behind");
    }

    #[test]
    fn close_drops_a_partial_message_with_the_rest() {
        let mut q = OutputQueue::default();
        let mut transport = Transport::v1(Network::Regtest, 4_000_000);
        let magic = &mut transport;
        let ping = Message::Ping(Ping { nonce: 1 });
        for t in 0..3 {
            q.push(&mut *magic, ping.clone(), &ctx(), Some(t), 1 << 20, false)
                .unwrap();
        }
        q.advance(40); // first done, second partially written
        assert_eq!(q.pop_completed().map(|m| m.token), Some(Some(0)));
        let failed: Vec<_> = q.close().into_iter().map(|m| m.token).collect();
        assert_eq!(failed, vec![Some(1), Some(2)]);
        assert_eq!(q.len(), 0, "a failed message is never completed afterwards");
        q.push_farewell(&mut *magic, &Message::Verack, &ctx());
        assert_eq!(q.len(), 0, "no farewell after a torn frame");
        assert!(q.pop_completed().is_none());
    }

    #[test]
    fn memory_counts_the_whole_allocation_and_kept_messages() {
        let mut q = OutputQueue::default();
        let mut transport = Transport::v1(Network::Regtest, 4_000_000);
        let big = Message::Unknown {
            command: Command::from_static("big"),
            payload: bytes::Bytes::from(vec![7u8; 10_000]),
        };
        q.push(&mut transport, big, &ctx(), None, 1 << 20, true)
            .unwrap();
        assert!(
            q.memory() >= 2 * 10_024,
            "frame and kept message: {}",
            q.memory()
        );
        q.advance(9_000);
        assert!(
            q.memory() >= 10_024 + 10_024,
            "a written prefix stays allocated: {}",
            q.memory()
        );
        q.shrink();
        assert!(q.memory() < 1_024 + 10_024 + 4_096, "{}", q.memory());
        assert_eq!(q.len(), 1_024, "shrinking keeps what waits");
        q.advance(1_024);
        let m = q.pop_completed().unwrap();
        assert!(q.take_kept(&m).is_some());
        assert!(q.memory() >= 1_024, "an emptied buffer is kept for reuse");
        q.shrink();
        assert_eq!(q.memory(), 0, "and released when the peer waits");
    }

    #[test]
    fn close_between_frames_keeps_room_for_a_farewell() {
        let mut q = OutputQueue::default();
        let mut transport = Transport::v1(Network::Regtest, 4_000_000);
        let magic = &mut transport;
        q.push(
            &mut *magic,
            Message::Verack,
            &ctx(),
            Some(1),
            1 << 20,
            false,
        )
        .unwrap();
        assert_eq!(q.close().len(), 1);
        q.push_farewell(&mut *magic, &Message::Verack, &ctx());
        assert_eq!(q.len(), 24);
    }
}
