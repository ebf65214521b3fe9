//! The peer's receive buffer: grows on demand, holds nothing while the peer is idle.
//!
//! A driver hands the peer what it read (the glommio runtime reads every socket into one
//! scratch buffer per executor); the bytes are copied once into this buffer, and only
//! the bytes of a frame that is not complete yet stay here. Complete frames are
//! split off that buffer without copying (peer-core keeps payloads as `Bytes` slices), and
//! when nothing is left the buffer's memory is released. An idle peer therefore holds no
//! receive memory at all, and a peer in the middle of a 1 MB block holds about what has
//! arrived of that block.
//!
//! Growth is driven by the bytes that actually arrived, not by the length a header
//! announced: the buffer at most doubles what it holds (towards the frame's size), so a
//! header announcing 4 MB followed by a trickle reserves a few bytes, not 4 MB, and a
//! large frame arriving in many small reads is copied O(size) times in all. (Reserving
//! the announced size and then compacting the over-large buffer after every read cost a
//! copy of the whole partial frame per read: a peer dripping single bytes into a 4 MB
//! frame kept an executor busy copying megabytes per byte.)

use bytes::BytesMut;

/// When a partial frame is left in a buffer whose capacity exceeds its length by more
/// than this, the frame is moved into a right-sized buffer.
const SLACK: usize = 16 * 1024;

/// A growing buffer's capacity stays below this many times its length (plus [`SLACK`]);
/// one above it holds the remains of a larger frame and is compacted.
const GROWTH_BOUND: usize = 4;

/// A peer's receive buffer.
#[derive(Debug, Default)]
pub struct RecvBuffer {
    buf: BytesMut,
}

impl RecvBuffer {
    /// An empty buffer (no memory).
    pub fn new() -> RecvBuffer {
        RecvBuffer::default()
    }

    /// Bytes waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes waiting.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The underlying buffer.
    pub(crate) fn inner(&self) -> &BytesMut {
        &self.buf
    }

    /// Appends freshly read bytes. `hint` is how many more bytes would complete the frame
    /// in progress (measured before `data` is added). When the
    /// buffer must grow, it grows towards the frame's size but by no more than the bytes
    /// it would then hold: capacity stays within about twice what arrived, and regrowth
    /// is geometric (linear copying in all).
    pub fn extend(&mut self, data: &[u8], hint: usize) {
        if self.buf.capacity() - self.buf.len() < data.len() {
            let present = self.buf.len() + data.len();
            self.buf.reserve(data.len().max(hint.min(present)));
        }
        self.buf.extend_from_slice(data);
    }

    /// Takes every byte of `data` (leaving it empty): its allocation itself when this
    /// buffer is empty (no copy), a copy appended otherwise.
    pub fn absorb(&mut self, data: &mut BytesMut, hint: usize) {
        if self.buf.is_empty() {
            std::mem::swap(&mut self.buf, data);
            data.clear();
        } else {
            self.extend(data, hint);
            data.clear();
        }
    }

    /// The bytes waiting to be decoded, for the transport to split frames off (and for
    /// a driver to read into directly).
    pub fn bytes_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Called after the peer consumed what it could: frees the memory of an empty
    /// buffer and compacts a partial frame sitting in a much larger allocation (one
    /// left behind when a big frame was split off). A buffer that is growing never
    /// qualifies ([`RecvBuffer::extend`] keeps it within twice its contents), so a
    /// frame arriving in pieces is not copied again at every read.
    pub fn settle(&mut self) {
        if self.buf.is_empty() {
            // Even with no capacity left: a buffer whose last frame was split off its
            // end still holds a reference to the allocation the frame came from.
            self.buf = BytesMut::new();
        } else if self.buf.capacity() > self.buf.len().saturating_mul(GROWTH_BOUND) + SLACK {
            let mut fresh = BytesMut::with_capacity(self.buf.len());
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
    }

    /// Bytes of memory this buffer reserves.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn settling_after_the_last_frame_drops_the_buffers_hold_on_its_allocation() {
        let mut rb = RecvBuffer::new();
        rb.extend(&[1; 100], 100);
        let _ = rb.bytes_mut().split_to(40);
        // The last frame is split off the very end: the buffer is empty with no
        // capacity left, yet still shares the allocation with the frame.
        let frame = rb.bytes_mut().split_to(60).freeze();
        assert!(!frame.is_unique());
        rb.settle();
        // Now the frame alone keeps its memory (an idle peer keeps nothing).
        assert!(frame.is_unique());
    }

    #[test]
    fn empty_buffer_releases_memory() {
        let mut rb = RecvBuffer::new();
        rb.extend(&[1; 100], 1000);
        assert!(rb.capacity() >= 100);
        let _frame = rb.bytes_mut().split_to(100);
        rb.settle();
        assert_eq!(rb.capacity(), 0);
    }

    #[test]
    fn partial_frame_in_big_buffer_is_compacted() {
        let mut rb = RecvBuffer::new();
        rb.extend(&[7; 200_000], 0);
        let _ = rb.bytes_mut().split_to(199_990);
        rb.settle();
        assert_eq!(&rb.bytes_mut()[..], &[7; 10]);
        assert!(rb.capacity() < SLACK);
    }

    /// Feeds one `frame_len`-byte frame in reads of the given sizes, as the driver does
    /// (hint = what the frame still lacks, then settle), and returns the bytes that
    /// were copied by regrowth or compaction, and the largest capacity seen relative
    /// to the bytes held.
    fn feed(frame_len: usize, reads: impl IntoIterator<Item = usize>) -> (usize, usize) {
        let mut rb = RecvBuffer::new();
        let (mut copied, mut worst_excess) = (0usize, 0usize);
        for n in reads {
            let n = n.min(frame_len - rb.bytes_mut().len());
            if n == 0 {
                break;
            }
            let hint = frame_len - rb.bytes_mut().len();
            let (ptr, len) = (rb.bytes_mut().as_ptr(), rb.bytes_mut().len());
            rb.extend(&vec![1; n], hint);
            if rb.bytes_mut().as_ptr() != ptr {
                copied += len;
            }
            let ptr = rb.bytes_mut().as_ptr();
            rb.settle();
            if rb.bytes_mut().as_ptr() != ptr {
                copied += rb.bytes_mut().len();
            }
            let len = rb.bytes_mut().len();
            worst_excess = worst_excess.max(rb.capacity().saturating_sub(2 * len));
        }
        (copied, worst_excess)
    }

    /// A 4 MB frame whose header arrived, then a trickle: the buffer holds about what
    /// arrived, not the announced 4 MB.
    #[test]
    fn an_announced_size_is_not_reserved_up_front() {
        let mut rb = RecvBuffer::new();
        rb.extend(&[1; 10], 4_000_000);
        rb.settle();
        assert!(rb.capacity() < 64, "{}", rb.capacity());
        for _ in 0..100 {
            rb.extend(&[2; 10], 4_000_000);
            rb.settle();
        }
        assert!(rb.capacity() <= 2 * 1010 + 64, "{}", rb.capacity());
    }

    /// A large frame arriving in many reads — big ones, then a drip of single bytes,
    /// then big ones again — is copied a bounded number of times over in all, and its
    /// buffer is never much more than twice what arrived.
    #[test]
    fn a_frame_arriving_in_pieces_is_copied_linearly() {
        const FRAME: usize = 4_000_000;
        let reads = std::iter::repeat(64 * 1024)
            .take(30)
            .chain(std::iter::repeat(1).take(20_000))
            .chain(std::iter::repeat(64 * 1024));
        let (copied, excess) = feed(FRAME, reads);
        // Doubling growth copies less than the frame once over; reserving the announced
        // size and compacting after every read copied ~2 MB per dripped byte.
        assert!(
            copied <= 2 * FRAME,
            "copied {copied} bytes for a {FRAME}-byte frame"
        );
        assert!(
            excess <= 64 * 1024,
            "capacity {excess} bytes above twice the contents"
        );
    }

    proptest! {
        /// Whatever the read sizes and the frame size, copying stays linear and the
        /// buffer within twice its contents (plus a small constant).
        #[test]
        fn growth_is_bounded_by_what_arrived(frame in 1usize..2_000_000, reads in proptest::collection::vec(1usize..70_000, 1..200)) {
            let (copied, excess) = feed(frame, reads.into_iter().chain(std::iter::repeat(65_536)));
            prop_assert!(copied <= 2 * frame, "copied {} for {}", copied, frame);
            prop_assert!(excess <= 64 * 1024, "excess {}", excess);
        }

        /// The buffer behaves like a byte queue, and after `settle` an empty buffer holds
        /// no memory and a non-empty one holds at most a few times its length plus the
        /// slack.
        #[test]
        fn behaves_like_a_queue(ops in proptest::collection::vec((0usize..5000, 0usize..6000, 0usize..70_000), 1..60)) {
            let mut rb = RecvBuffer::new();
            let mut model: Vec<u8> = Vec::new();
            let mut counter = 0u8;
            for (add, take, hint) in ops {
                let data: Vec<u8> = (0..add).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                rb.extend(&data, hint);
                model.extend_from_slice(&data);
                let take = take.min(model.len());
                let got = rb.bytes_mut().split_to(take);
                prop_assert_eq!(&got[..], &model[..take]);
                model.drain(..take);
                rb.settle();
                prop_assert_eq!(&rb.bytes_mut()[..], &model[..]);
                if model.is_empty() {
                    prop_assert_eq!(rb.capacity(), 0);
                } else {
                    prop_assert!(rb.capacity() <= GROWTH_BOUND * model.len() + SLACK);
                }
            }
        }
    }
}
