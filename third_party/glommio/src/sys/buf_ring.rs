// peerwire patch (change 16): a provided-buffer ring for multishot stream receives.
//
// One per executor's main ring: `RECV_BUFS` buffers of `RECV_BUF_SIZE` bytes that the
// kernel picks from when a multishot receive (`IORING_RECV_MULTISHOT` with
// `IOSQE_BUFFER_SELECT`) completes, so a stream waiting for input holds no buffer of
// its own and a message that arrives costs one completion and no submission. A buffer
// goes back to the ring when the `RecvBuf` that names it is dropped (its bytes were
// read, or the stream that held them went away).
use crate::uring_sys;
use std::{
    alloc::Layout,
    cell::Cell,
    fmt, io,
    os::unix::io::RawFd,
    rc::Rc,
    sync::atomic::{AtomicU16, Ordering},
};

/// How many buffers the ring holds (a power of two). Every stream that has received
/// bytes its reader has not taken yet holds at least one; a stream holds at most
/// [`MAX_HELD`] before its receive is cancelled, so this many streams can each have
/// a message waiting before the ring runs dry (then receives fall back to the
/// single-shot path until buffers come back).
pub(crate) const RECV_BUFS: u16 = 2048;

/// The size of each buffer: what one completion carries at most.
pub(crate) const RECV_BUF_SIZE: u32 = 512;

/// How many completions a stream's multishot receive may hold unread before the
/// reactor cancels it (the reader is not keeping up, or paused on purpose): the
/// stream then holds at most these (and the few the kernel posted before the cancel
/// took effect) until its reader drains them, and arms again after.
pub(crate) const MAX_HELD: usize = 4;

/// The buffer group id the stream receives select from.
pub(crate) const BGID: u16 = 0x7e57;

const IORING_REGISTER_PBUF_RING: libc::c_uint = 22;
const IORING_UNREGISTER_PBUF_RING: libc::c_uint = 23;

#[repr(C)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

pub(crate) struct BufRing {
    /// `RECV_BUFS` entries of `struct io_uring_buf` (16 bytes: addr, len, bid, resv);
    /// the ring's tail is the first entry's `resv`.
    ring: *mut u8,
    bufs: *mut u8,
    ring_layout: Layout,
    bufs_layout: Layout,
    tail: Cell<u16>,
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("tail", &self.tail.get())
            .finish()
    }
}

impl BufRing {
    /// Allocates the ring and its buffers and registers them with the io_uring `fd`;
    /// the kernel's error when it refuses (before Linux 5.19: `EINVAL`).
    pub(crate) fn register(fd: RawFd) -> io::Result<Rc<BufRing>> {
        let ring_layout = Layout::from_size_align(RECV_BUFS as usize * 16, 4096).unwrap();
        let bufs_layout =
            Layout::from_size_align(RECV_BUFS as usize * RECV_BUF_SIZE as usize, 4096).unwrap();
        // SAFETY: both layouts have a non-zero size.
        let ring = unsafe { std::alloc::alloc_zeroed(ring_layout) };
        if ring.is_null() {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        let bufs = unsafe { std::alloc::alloc(bufs_layout) };
        if bufs.is_null() {
            unsafe { std::alloc::dealloc(ring, ring_layout) };
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        let this = BufRing {
            ring,
            bufs,
            ring_layout,
            bufs_layout,
            tail: Cell::new(0),
        };
        for bid in 0..RECV_BUFS {
            this.put(bid, false);
        }
        this.publish();
        let reg = BufReg {
            ring_addr: ring as u64,
            ring_entries: RECV_BUFS as u32,
            bgid: BGID,
            flags: 0,
            resv: [0; 3],
        };
        // SAFETY: `reg` is a valid `io_uring_buf_reg`; the memory it names lives as long
        // as this `BufRing`, which the ring and every buffer handed out keep alive.
        let ret = unsafe {
            uring_sys::syscalls::io_uring_register(
                fd,
                IORING_REGISTER_PBUF_RING,
                &reg as *const BufReg as *const libc::c_void,
                1,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Rc::new(this))
    }

    /// Takes the ring back from the io_uring `fd` (still open). A closed io_uring is torn
    /// down asynchronously by the kernel, and a multishot receive still armed then
    /// could select one of these buffers after this memory was freed; once unregistered
    /// it finds none (`ENOBUFS`) and writes nothing. Errors are ignored: the ring is
    /// being dropped either way.
    pub(crate) fn unregister(&self, fd: RawFd) {
        let reg = BufReg {
            ring_addr: 0,
            ring_entries: 0,
            bgid: BGID,
            flags: 0,
            resv: [0; 3],
        };
        // SAFETY: `reg` is a valid `io_uring_buf_reg` naming this ring's group.
        unsafe {
            uring_sys::syscalls::io_uring_register(
                fd,
                IORING_UNREGISTER_PBUF_RING,
                &reg as *const BufReg as *const libc::c_void,
                1,
            );
        }
    }

    /// Writes buffer `bid` into the ring's next free entry (not yet visible to the
    /// kernel: see `publish`).
    fn put(&self, bid: u16, publish: bool) {
        let tail = self.tail.get();
        let idx = (tail & (RECV_BUFS - 1)) as usize;
        // SAFETY: `idx` < RECV_BUFS and `bid` < RECV_BUFS: both within the allocations.
        // The fields are written one by one: the first entry's last two bytes are the
        // tail, which the kernel reads.
        unsafe {
            let entry = self.ring.add(idx * 16);
            let addr = self.bufs.add(bid as usize * RECV_BUF_SIZE as usize) as u64;
            (entry as *mut u64).write(addr);
            (entry.add(8) as *mut u32).write(RECV_BUF_SIZE);
            (entry.add(12) as *mut u16).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
        if publish {
            self.publish();
        }
    }

    fn publish(&self) {
        // SAFETY: the tail is the u16 at offset 14, 2-aligned, shared with the kernel.
        unsafe {
            (*(self.ring.add(14) as *const AtomicU16)).store(self.tail.get(), Ordering::Release);
        }
    }

    /// The bytes the kernel wrote into buffer `bid`.
    fn bytes(&self, bid: u16, start: u32, end: u32) -> &[u8] {
        debug_assert!(bid < RECV_BUFS && start <= end && end <= RECV_BUF_SIZE);
        // SAFETY: within buffer `bid`, which the kernel no longer writes (its completion
        // was posted) and which no one else reads until it is given back.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .add(bid as usize * RECV_BUF_SIZE as usize + start as usize),
                (end - start) as usize,
            )
        }
    }

}

impl Drop for BufRing {
    fn drop(&mut self) {
        // The io_uring that used this memory unregistered it and was closed before (it
        // holds an `Rc` to this ring, and so does every buffer handed out).
        unsafe {
            std::alloc::dealloc(self.ring, self.ring_layout);
            std::alloc::dealloc(self.bufs, self.bufs_layout);
        }
    }
}

/// Bytes a multishot receive brought into one of the ring's buffers; the buffer goes
/// back to the ring when this is dropped.
pub(crate) struct RecvBuf {
    ring: Rc<BufRing>,
    bid: u16,
    start: u32,
    end: u32,
}

impl fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf")
            .field("bid", &self.bid)
            .field("len", &(self.end - self.start))
            .finish()
    }
}

impl RecvBuf {
    /// Takes buffer `bid` out of the ring with `len` bytes in it (as a completion
    /// with `IORING_CQE_F_BUFFER` said).
    pub(crate) fn new(ring: &Rc<BufRing>, bid: u16, len: u32) -> RecvBuf {
        RecvBuf {
            ring: ring.clone(),
            bid: bid & (RECV_BUFS - 1),
            start: 0,
            end: len.min(RECV_BUF_SIZE),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.ring.bytes(self.bid, self.start, self.end)
    }

    /// Marks the first `n` bytes read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n as u32).min(self.end);
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        self.ring.put(self.bid, true);
    }
}
