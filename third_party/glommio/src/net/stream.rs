// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2020 Datadog, Inc.
//
use crate::{
    reactor::Reactor,
    sys::{self, DmaBuffer, Source, SourceType},
};
use futures_lite::ready;
use nix::sys::socket::MsgFlags;
use std::{
    cell::Cell,
    io,
    net::Shutdown,
    os::unix::io::{AsRawFd, FromRawFd, RawFd},
    rc::{Rc, Weak},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

type Result<T> = crate::Result<T, ()>;

/// Root trait for socket stream receive buffer
pub trait RxBuf {
    fn read(&mut self, buf: &mut [u8]) -> usize;
    fn peek(&self, buf: &mut [u8]) -> usize;
    fn is_empty(&self) -> bool;
    fn as_bytes(&self) -> &[u8];
    fn consume(&mut self, amt: usize);
    fn buffer_size(&self) -> usize;
    fn handle_result(&mut self, result: usize);
    fn unfilled(&mut self) -> &mut [u8];
}

#[derive(Debug, Default)]
pub struct NonBuffered;

impl RxBuf for NonBuffered {
    fn read(&mut self, _buf: &mut [u8]) -> usize {
        0
    }

    fn peek(&self, _buf: &mut [u8]) -> usize {
        0
    }

    fn is_empty(&self) -> bool {
        true
    }

    fn as_bytes(&self) -> &[u8] {
        &[]
    }

    fn consume(&mut self, _amt: usize) {}

    fn buffer_size(&self) -> usize {
        0
    }

    fn handle_result(&mut self, _result: usize) {}

    fn unfilled(&mut self) -> &mut [u8] {
        &mut []
    }
}

/// Trait for receive buffer implementations
pub trait Buffered: RxBuf {}

/// Non-shared fixed sized receive buffer allocated
/// when buffered stream is created
#[derive(Debug)]
pub struct Preallocated {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    cap: usize,
}

impl Preallocated {
    const DEFAULT_BUFFER_SIZE: usize = 8192;

    /// Creates a fixed sized receive buffer
    pub fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size],
            tail: 0,
            head: 0,
            cap: size,
        }
    }
}

impl Default for Preallocated {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUFFER_SIZE)
    }
}

impl Preallocated {
    fn len(&self) -> usize {
        self.tail - self.head
    }
}

impl Buffered for Preallocated {}

impl RxBuf for Preallocated {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
            self.head += sz;
        }
        sz
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
        }
        sz
    }

    fn is_empty(&self) -> bool {
        self.head >= self.tail
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    fn consume(&mut self, amt: usize) {
        self.head += std::cmp::min(self.len(), amt);
    }

    fn buffer_size(&self) -> usize {
        self.cap
    }

    fn handle_result(&mut self, result: usize) {
        self.tail += result;
    }

    fn unfilled(&mut self) -> &mut [u8] {
        if self.len() == 0 {
            self.head = 0;
            self.tail = 0;
        }
        &mut self.buf[self.tail..]
    }
}

#[derive(Debug)]
struct Timeout {
    id: u64,
    timeout: Cell<Option<Duration>>,
    timer: Cell<Option<Instant>>,
}

impl Timeout {
    fn new(id: u64) -> Self {
        Self {
            id,
            timeout: Cell::new(None),
            timer: Cell::new(None),
        }
    }

    fn get(&self) -> Option<Duration> {
        self.timeout.get()
    }

    fn set(&self, dur: Option<Duration>) -> Result<()> {
        if let Some(dur) = dur.as_ref() {
            if dur.as_nanos() == 0 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL).into());
            }
        }
        self.timeout.set(dur);
        Ok(())
    }

    fn maybe_set_timer(&self, reactor: &Reactor, waker: &Waker) {
        if let Some(timeout) = self.timeout.get() {
            if self.timer.get().is_none() {
                let deadline = Instant::now() + timeout;
                reactor.insert_timer(self.id, deadline, waker.clone());
                self.timer.set(Some(deadline));
            }
        }
    }

    fn cancel_timer(&self, reactor: &Reactor) {
        if self.timer.take().is_some() {
            reactor.remove_timer(self.id);
        }
    }

    fn check(&self, reactor: &Reactor) -> io::Result<()> {
        if let Some(deadline) = self.timer.get() {
            if !reactor.timer_exists(&(deadline, self.id)) {
                reactor.remove_timer(self.id);
                self.timer.take();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Operation timed out",
                ));
            }
        }
        Ok(())
    }
}

/// peerwire patch: the most bytes one io_uring receive of a stream asks for.
///
/// A stream waiting for input has a receive armed in the ring (the completion carries
/// the data: no readiness poll followed by a `recv` system call), and that receive
/// needs a buffer of its own for as long as it waits: this many bytes per idle stream.
/// Small exchanges (ping, pong, verack, getaddr, a one-entry inv; a v2 ping packet)
/// fit; a receive that fills it is followed by a plain non-blocking `recv` straight into
/// the reader's buffer, so larger messages cost what stock glommio's poll + `recv` did
/// and bulk transfers are not cut into pieces of this size. 64 rather than 512: the
/// buffer is held by every idle stream, and 512 bytes took a BIP324 peer's idle heap
/// from 3,840 to 4,472 B (over peerwire's 4 KiB goal); at 64 it is 4,025 B.
pub(crate) const URING_RECV_SIZE: usize = 64;

/// peerwire patch: the size of a new stream's first [`URING_EARLY_RECEIVES`] receives.
///
/// A connection's first messages are its largest small ones: a Bitcoin `version` is
/// about 150 bytes and the `wtxidrelay` + `sendaddrv2` + `verack` that follow it 72.
/// At [`URING_RECV_SIZE`] each arrived as a full 64-byte receive plus a `recv` system
/// call for the rest, and the reader got a partial frame to hold. These receives take
/// them whole; the larger buffer is freed after them (an idle stream holds only a
/// [`URING_RECV_SIZE`] one).
pub(crate) const URING_EARLY_RECV_SIZE: usize = 256;

/// peerwire patch: how many receives of a new stream use [`URING_EARLY_RECV_SIZE`].
pub(crate) const URING_EARLY_RECEIVES: u8 = 2;

/// peerwire patch: set when the kernel refused `IORING_RECVSEND_POLL_FIRST` (before
/// Linux 5.19): receives are then submitted without it.
static RECV_POLL_FIRST_REFUSED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// peerwire patch (change 16): single-shot receives a stream arms after its multishot
/// receive found the provided-buffer ring empty.
const URING_SINGLE_AFTER_ENOBUFS: u8 = 8;

/// peerwire patch (change 16): a multishot receive that ended this way ends no stream:
/// the provided-buffer ring ran dry (`ENOBUFS`) or the reactor cancelled it because its
/// bytes waited unread (`ECANCELED`); the stream tries the socket and arms again.
fn multi_ended_quietly(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::ECANCELED))
}

/// Bytes an io_uring receive brought in that no reader has taken yet.
#[derive(Debug)]
struct Held {
    buf: DmaBuffer,
    start: usize,
    end: usize,
}

impl Held {
    fn bytes(&self) -> &[u8] {
        &self.buf.as_bytes()[self.start..self.end]
    }
}

#[derive(Debug)]
pub(crate) struct NonBufferedStream<S> {
    reactor: Weak<Reactor>,
    stream: S,
    source_tx: Option<Source>,
    /// The read side's armed operation: a multishot receive into the executor's
    /// provided buffers (`SourceType::SockRecvMulti`, peerwire patch change 16), a
    /// single-shot io_uring receive (`SourceType::SockRecv`) or, once the kernel
    /// refused to wait in one, a readiness poll.
    source_rx: Option<Source>,
    /// How many bytes the armed receive asked for (a full answer means more may wait).
    rx_asked: usize,
    /// Whether the armed receive asked the kernel to poll first.
    rx_poll_first: bool,
    /// Received bytes not yet read (the reader's buffer was smaller than the receive).
    rx_held: Option<Held>,
    /// The receive buffer between two receives.
    rx_spare: Option<DmaBuffer>,
    /// The last completed receive, submitted again for the next one (see
    /// `Reactor::stream_recv_reused`).
    rx_recycle: Option<Source>,
    /// The kernel completed a receive with EAGAIN instead of waiting for data (it would
    /// again): wait for readiness with polls, as stock glommio does.
    rx_poll_only: bool,
    /// Receives left at [`URING_EARLY_RECV_SIZE`]; while it is
    /// [`URING_EARLY_RECEIVES`] nothing was read yet, and the first read arms a receive
    /// without trying the socket first (see `poll_read`).
    rx_early: u8,
    /// peerwire patch (change 16): single-shot receives left before the stream tries
    /// a multishot one again, after one ended because the ring had no buffer.
    rx_single_left: u8,
    write_timeout: Timeout,
    read_timeout: Timeout,
}

impl<S: AsRawFd> NonBufferedStream<S> {
    /// Copies held bytes, or those of a completed receive still in its source, into
    /// `buf` (they come before anything still in the socket); `None` when there are none.
    fn peek_received(&self, buf: &mut [u8]) -> Option<usize> {
        let copy = |bytes: &[u8], buf: &mut [u8]| {
            let n = std::cmp::min(bytes.len(), buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            n
        };
        if let Some(held) = &self.rx_held {
            return Some(copy(held.bytes(), buf));
        }
        let source = self.source_rx.as_ref()?;
        if source.is_recv_multi() {
            // peerwire patch (change 16): what the multishot receive brought in.
            return match source.take_multi(buf, false) {
                0 => None,
                n => Some(n),
            };
        }
        let n = source.result()?.ok()?;
        let stype = source.source_type();
        match &*stype {
            SourceType::SockRecv(Some(data)) => Some(copy(&data.as_bytes()[..n], buf)),
            _ => None,
        }
    }

    pub(crate) fn try_peek(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if let Some(n) = self.peek_received(buf) {
            return Some(Ok(n));
        }
        // peerwire patch (change 16): an armed multishot receive takes the next bytes
        // (some may be in completions not consumed yet): the socket's are after them.
        if let Some(source) = self.source_rx.as_ref() {
            if source.is_recv_multi() && source.result().is_none() {
                return None;
            }
        }
        super::yolo_peek(self.stream.as_raw_fd(), buf)
    }

    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        // An armed receive takes the next bytes: wait for it rather than for a peek
        // that would see only what comes after them.
        if let Some(source) = self.source_rx.as_ref() {
            if source.is_recv_multi() {
                // peerwire patch (change 16): wait for the multishot receive's next
                // completion (bytes, or its end).
                std::future::poll_fn(|cx| {
                    if source.multi_has_bytes() || source.result().is_some() {
                        Poll::Ready(())
                    } else {
                        source.add_waiter_single(cx.waker());
                        Poll::Pending
                    }
                })
                .await;
                if source.multi_has_bytes() {
                    return Ok(source.take_multi(buf, false));
                }
                match source.result() {
                    Some(Ok(0)) => return Ok(0),
                    Some(Err(e)) if !multi_ended_quietly(&e) => return Err(e),
                    // Ended with nothing unread: the socket is next (below).
                    _ => {}
                }
            } else if matches!(&*source.source_type(), SourceType::SockRecv(_)) {
                std::future::poll_fn(|cx| match source.result() {
                    Some(result) => Poll::Ready(result),
                    None => {
                        source.add_waiter_single(cx.waker());
                        Poll::Pending
                    }
                })
                .await?;
                if let Some(result) = self.try_peek(buf) {
                    return result;
                }
            }
        }
        let source = self.reactor.upgrade().unwrap().recv(
            self.stream.as_raw_fd(),
            buf.len(),
            MsgFlags::MSG_PEEK,
        );

        let sz = source.collect_rw().await?;
        match source.extract_source_type() {
            SourceType::SockRecv(mut src) => {
                buf[0..sz].copy_from_slice(&src.take().unwrap().as_bytes()[0..sz]);
            }
            _ => unreachable!(),
        }
        Ok(sz)
    }

    /// Arms the read side: an io_uring receive of at most `want` bytes (at most
    /// [`URING_RECV_SIZE`]) into the stream's buffer, or a readiness poll.
    fn arm_read(&mut self, reactor: &Reactor, want: usize) {
        let fd = self.stream.as_raw_fd();
        let first = self.rx_early == URING_EARLY_RECEIVES;
        let cap = if self.rx_early > 0 {
            self.rx_early -= 1;
            URING_EARLY_RECV_SIZE
        } else {
            URING_RECV_SIZE
        };
        if self.rx_poll_only || want == 0 {
            self.source_rx = Some(reactor.poll_read_ready(fd));
            return;
        }
        // Every receive is armed right after the socket was found empty: poll first.
        // Except a new stream's first, armed untried: the kernel tries it when the
        // ring is submitted (the bytes may have arrived by then) and waits otherwise.
        let poll_first =
            !first && !RECV_POLL_FIRST_REFUSED.load(std::sync::atomic::Ordering::Relaxed);
        // peerwire patch (change 16): one multishot receive stays armed while the
        // reader keeps up; the stream holds no buffer of its own while it waits.
        if self.rx_single_left > 0 {
            self.rx_single_left -= 1;
        } else if let Some(source) =
            reactor.stream_recv_multi(&mut self.rx_recycle, fd, poll_first)
        {
            self.rx_early = 0;
            self.rx_poll_first = poll_first;
            self.rx_spare = None;
            self.source_rx = Some(source);
            return;
        }
        let size = std::cmp::min(want, cap);
        // An early receive's buffer is not kept for the small ones after it.
        let buf = match self.rx_spare.take().filter(|b| b.len() == cap) {
            Some(buf) => buf,
            None => match DmaBuffer::new_for_socket(cap) {
                Some(buf) => buf,
                None => {
                    self.source_rx = Some(reactor.poll_read_ready(fd));
                    return;
                }
            },
        };
        self.rx_asked = size;
        self.rx_poll_first = poll_first;
        self.source_rx = Some(match self.rx_recycle.take() {
            Some(source) => reactor.stream_recv_reused(source, fd, buf, size, poll_first),
            None => reactor.stream_recv(fd, Some(buf), size, poll_first),
        });
    }

    /// peerwire patch (change 16): a multishot receive that ended because the ring
    /// had no buffer (held by streams whose readers do not read) is followed by a few
    /// single-shot receives of the stream's own before it takes from the ring again,
    /// rather than a receive that fails at every message.
    fn note_multi_end(&mut self, result: &io::Result<usize>) {
        if matches!(result, Err(e) if e.raw_os_error() == Some(libc::ENOBUFS)) {
            self.rx_single_left = URING_SINGLE_AFTER_ENOBUFS;
        }
    }

    /// Gives held bytes to the reader; `None` when none are held.
    fn take_held(&mut self, buf: &mut [u8]) -> Option<usize> {
        let held = self.rx_held.as_mut()?;
        let bytes = held.bytes();
        let n = std::cmp::min(bytes.len(), buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        held.start += n;
        if held.start == held.end {
            self.rx_spare = self.rx_held.take().map(|held| held.buf);
        }
        Some(n)
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // Bytes a receive already brought in come first.
        if let Some(n) = self.take_held(buf) {
            return Poll::Ready(Ok(n));
        }
        let reactor = self.reactor.upgrade().unwrap();
        let reactor = reactor.as_ref();

        // peerwire patch (change 16): a multishot receive's bytes, oldest first.
        if let Some(source) = self.source_rx.as_ref().filter(|s| s.is_recv_multi()) {
            let n = source.take_multi(buf, true);
            let result = source.result();
            if n > 0 || buf.is_empty() {
                self.read_timeout.cancel_timer(reactor);
                if let (Some(result), false) = (&result, source.multi_has_bytes()) {
                    // Ended and drained: the next read tries the socket, then arms.
                    self.note_multi_end(result);
                    self.rx_recycle = self.source_rx.take();
                }
                return Poll::Ready(Ok(n));
            }
            match result {
                None => {
                    poll_err!(self.read_timeout.check(reactor));
                    source.add_waiter_single(cx.waker());
                    self.read_timeout.maybe_set_timer(reactor, cx.waker());
                    return Poll::Pending;
                }
                Some(result) => {
                    self.rx_recycle = self.source_rx.take();
                    self.note_multi_end(&result);
                    match result {
                        Ok(0) => {
                            self.read_timeout.cancel_timer(reactor);
                            return Poll::Ready(Ok(0));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                            // A kernel without multishot receives: single-shot ones.
                            crate::sys::MULTISHOT_REFUSED
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        // Its last bytes were read, the ring ran dry or the reactor
                        // cancelled it (bytes waited unread): the socket next, below.
                        Ok(_) => {}
                        Err(e) if multi_ended_quietly(&e) => {}
                        Err(e) => {
                            self.read_timeout.cancel_timer(reactor);
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
        }

        let mut no_pending_poll = true;
        if let Some(result) = self.source_rx.as_ref().map(|src| src.result()) {
            match result {
                None => no_pending_poll = false,
                Some(result) => {
                    let source = self.source_rx.take().unwrap();
                    // A completed receive carries the data; a completed poll says the
                    // socket is readable (the `recv` below). peerwire patch: the
                    // receive's buffer is taken out of it in place, and the source is
                    // kept for the next receive.
                    if let Some(data) = source.take_recv_buffer() {
                        self.rx_recycle = Some(source);
                        match result {
                            Ok(n) => {
                                self.read_timeout.cancel_timer(reactor);
                                let Some(data) = data else {
                                    return Poll::Ready(Ok(0));
                                };
                                let held = Held {
                                    buf: data,
                                    start: 0,
                                    end: n,
                                };
                                self.rx_held = Some(held);
                                let given = self.take_held(buf).unwrap_or(0);
                                // Everything given and less than asked: the socket had
                                // no more, so wait for the next bytes right away (as
                                // the early poll below).
                                if self.rx_held.is_none() && n > 0 && n < self.rx_asked {
                                    self.arm_read(reactor, buf.len());
                                }
                                return Poll::Ready(Ok(given));
                            }
                            Err(e)
                                if self.rx_poll_first
                                    && e.raw_os_error() == Some(libc::EINVAL) =>
                            {
                                // A kernel without poll-first receives: arm without.
                                self.rx_spare = data;
                                RECV_POLL_FIRST_REFUSED
                                    .store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                // The kernel would not wait in a receive: poll instead.
                                self.rx_spare = data;
                                self.rx_recycle = None;
                                self.rx_poll_only = true;
                            }
                            Err(e) => {
                                self.rx_spare = data;
                                self.rx_recycle = None;
                                self.read_timeout.cancel_timer(reactor);
                                return Poll::Ready(Err(e));
                            }
                        }
                    }
                }
            }
        }

        // peerwire patch: a new stream's first read does not try the socket: a
        // connection's first bytes were seldom there yet when it was accepted (69 % of
        // a seed-server's first `recv`s found nothing), and its first receive tries at
        // submission without a system call of its own.
        let fresh = self.rx_early == URING_EARLY_RECEIVES && !buf.is_empty();
        if no_pending_poll && !fresh {
            if let Some(result) = super::yolo_recv(self.stream.as_raw_fd(), buf) {
                self.read_timeout.cancel_timer(reactor);
                let result = poll_err!(result);
                // Start an early receive if the buffer is not fully filled: the
                // socket is drained, and the next bytes arrive with its completion.
                if result > 0 && result < buf.len() {
                    self.arm_read(reactor, buf.len());
                }
                return Poll::Ready(Ok(result));
            }
        }

        poll_err!(self.read_timeout.check(reactor));

        if no_pending_poll {
            self.arm_read(reactor, buf.len());
        }

        let source = self.source_rx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.read_timeout.maybe_set_timer(reactor, cx.waker());
        Poll::Pending
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // On the write path, we always start with calling `yolo_send`, because
        // it is very likely to success. It could be a waste if it already timed
        // out since the last `poll_write`, but it would not cost much more to
        // give it one last chance in this case.
        if let Some(result) = super::yolo_send(self.stream.as_raw_fd(), buf) {
            let reactor = self.reactor.upgrade().unwrap();
            self.write_timeout.cancel_timer(reactor.as_ref());
            self.source_tx.take();
            return Poll::Ready(result);
        }

        let reactor = self.reactor.upgrade().unwrap();
        let reactor = reactor.as_ref();
        poll_err!(self.write_timeout.check(reactor));

        let no_pending_poll = self
            .source_tx
            .as_ref()
            .map(|src| src.result().is_some())
            .unwrap_or(true);

        if no_pending_poll {
            self.source_tx = Some(reactor.poll_write_ready(self.stream.as_raw_fd()));
        }

        let source = self.source_tx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.write_timeout.maybe_set_timer(reactor, cx.waker());
        Poll::Pending
    }

    pub(crate) fn poll_close(&mut self, _: &Context<'_>) -> Poll<io::Result<()>> {
        self.source_tx.take();
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), Shutdown::Write))
    }

    /// io_uring has support for shutdown now, but it is not in any released
    /// kernel. Even with my "let's use latest" policy it would be crazy to
    /// mandate a kernel that doesn't even exist. So in preparation for that
    /// we'll sync-emulate this but already on an async wrapper
    pub(crate) fn poll_shutdown(
        &self,
        _cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), how))
    }
}

#[derive(Debug)]
pub(crate) struct GlommioStream<S, B> {
    stream: NonBufferedStream<S>,
    rx_buf: B,
    rx_done: Cell<bool>,
}

impl<S> From<socket2::Socket> for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + From<socket2::Socket> + Unpin,
{
    fn from(socket: socket2::Socket) -> Self {
        let reactor = crate::executor().reactor();
        let stream = NonBufferedStream {
            reactor: Rc::downgrade(&reactor),
            stream: socket.into(),
            source_tx: None,
            // peerwire patch: nothing armed until the first read finds the socket empty
            // (stock glommio armed a readiness poll here, one ring operation per stream
            // that a read of already-arrived bytes never needed).
            source_rx: None,
            rx_asked: 0,
            rx_poll_first: false,
            rx_held: None,
            rx_spare: None,
            rx_recycle: None,
            rx_poll_only: false,
            rx_early: URING_EARLY_RECEIVES,
            rx_single_left: 0,
            write_timeout: Timeout::new(reactor.register_timer()),
            read_timeout: Timeout::new(reactor.register_timer()),
        };
        GlommioStream {
            stream,
            rx_buf: NonBuffered,
            rx_done: Cell::new(false),
        }
    }
}

impl<S: AsRawFd> AsRawFd for GlommioStream<S, NonBuffered> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.stream.as_raw_fd()
    }
}

impl<S> FromRawFd for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + FromRawFd + From<socket2::Socket> + Unpin,
{
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        let socket = socket2::Socket::from_raw_fd(fd);
        GlommioStream::from(socket)
    }
}

impl<S> GlommioStream<S, NonBuffered> {
    pub(crate) fn buffered_with<B: Buffered>(self, rx_buf: B) -> GlommioStream<S, B> {
        GlommioStream {
            stream: self.stream,
            rx_buf,
            rx_done: self.rx_done,
        }
    }
}

impl<S: AsRawFd, B: RxBuf> GlommioStream<S, B> {
    /// Receives data on the socket from the remote address to which it is
    /// connected, without removing that data from the queue.
    ///
    /// On success, returns the number of bytes peeked.
    /// Successive calls return the same data. This is accomplished by passing
    /// `MSG_PEEK` as a flag to the underlying `recv` system call.
    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pos = self.rx_buf.peek(buf);
        if pos < buf.len() && !self.rx_done.get() {
            if let Some(result) = self.stream.try_peek(&mut buf[pos..]) {
                match result {
                    Err(e) => return Err(e),
                    Ok(len) => {
                        pos += len;
                        if len == 0 {
                            self.rx_done.set(true);
                        }
                    }
                }
            }
        }
        if pos > 0 || self.rx_done.get() {
            return Ok(pos);
        }
        self.stream.peek(buf).await
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.rx_buf.is_empty() {
            if buf.len() >= self.rx_buf.buffer_size() {
                return self.stream.poll_read(cx, buf);
            }
            if !self.rx_done.get() {
                poll_err!(ready!(self.poll_replenish_buffer(cx)));
            }
        }
        Poll::Ready(Ok(self.rx_buf.read(buf)))
    }

    fn poll_replenish_buffer(&mut self, cx: &Context<'_>) -> Poll<io::Result<usize>> {
        let result = poll_err!(ready!(self.stream.poll_read(cx, self.rx_buf.unfilled())));
        self.rx_buf.handle_result(result);
        if result == 0 {
            self.rx_done.set(true);
        }
        Poll::Ready(Ok(result))
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_write(cx, buf)
    }

    pub(crate) fn poll_flush(&self, _cx: &Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_close(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_close(cx)
    }

    pub(crate) fn poll_shutdown(
        &self,
        cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        self.stream.poll_shutdown(cx, how)
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.write_timeout.set(dur)
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.read_timeout.set(dur)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.stream.write_timeout.get()
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.stream.read_timeout.get()
    }

    pub(crate) fn stream(&self) -> &S {
        &self.stream.stream
    }
}

impl<S: AsRawFd, B: Buffered> GlommioStream<S, B> {
    pub(crate) fn poll_fill_buf(&mut self, cx: &Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.rx_buf.is_empty() {
            poll_err!(ready!(self.poll_replenish_buffer(cx)));
        }
        Poll::Ready(Ok(self.rx_buf.as_bytes()))
    }

    pub(crate) fn consume(&mut self, amt: usize) {
        self.rx_buf.consume(amt);
    }
}
