// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2021 Datadog, Inc.
//
use crate::{
    iou::sqe::SockAddrStorage,
    sys::{
        DmaBuffer, IoBuffer, OsResult, PollableStatus, ReactorQueue, SourceId, Statx, TimeSpec64,
        Wakers,
    },
    GlommioError, IoRequirements, ReactorErrorKind, RingIoStats, TaskQueueHandle,
};
use futures_lite::{future, io};
use std::{
    cell::{Ref, RefCell, RefMut},
    convert::TryFrom,
    ffi::CString,
    fmt,
    mem::MaybeUninit,
    os::unix::io::RawFd,
    path::PathBuf,
    pin::Pin,
    rc::Rc,
    task::{Poll, Waker},
    time::Duration,
};

#[derive(Debug)]
#[allow(dead_code)] // Clippy is unhappy with some of the fields on these enums never being read,
                    // but they are certainly used, and read by debug
pub(crate) enum SourceType {
    Write(PollableStatus, IoBuffer),
    Read(PollableStatus, Option<IoBuffer>),
    PollAdd,
    SockSend(DmaBuffer),
    SockRecv(Option<DmaBuffer>),
    /// peerwire patch (change 16): a stream's multishot receive into the ring's
    /// provided buffers; completions that carried bytes wait here for the reader.
    SockRecvMulti(MultiRecv),
    SockRecvMsg(
        Option<DmaBuffer>,
        libc::iovec,
        libc::msghdr,
        MaybeUninit<nix::sys::socket::sockaddr_storage>,
    ),
    SockSendMsg(
        DmaBuffer,
        libc::iovec,
        libc::msghdr,
        nix::sys::socket::SockaddrStorage,
    ),
    Open(CString),
    FdataSync,
    Fallocate,
    Truncate,
    Close,
    LinkRings,
    ForeignNotifier(u64, bool),
    Statx(CString, Box<RefCell<Statx>>),
    Timeout(TimeSpec64, u32),
    Connect(nix::sys::socket::SockaddrStorage),
    Accept(SockAddrStorage),
    Rename(PathBuf, PathBuf),
    CreateDir(PathBuf),
    Remove(PathBuf),
    BlockingFn,
    Invalid,
    CopyFileRange(RawFd, u64, usize),
    #[cfg(feature = "bench")]
    Noop,
}

impl TryFrom<SourceType> for Statx {
    type Error = GlommioError<()>;

    fn try_from(value: SourceType) -> Result<Self, Self::Error> {
        match value {
            SourceType::Statx(_, buf) => Ok(buf.into_inner()),
            src => Err(GlommioError::ReactorError(
                ReactorErrorKind::IncorrectSourceType(format!("{src:?}")),
            )),
        }
    }
}

/// peerwire patch (change 16): what a multishot receive brought in that the stream's
/// reader has not taken yet, in the order the kernel received it.
#[derive(Debug, Default)]
pub(crate) struct MultiRecv {
    /// Inline: the variant is no larger than `SourceType` already is, so a stream's
    /// source costs no more than before while idle (more than 4 spill to the heap).
    pub(crate) bufs: smallvec::SmallVec<[crate::sys::RecvBuf; 4]>,
    /// The reactor queued a cancel because too many completions waited unread.
    pub(crate) cancel_sent: bool,
}

#[derive(PartialEq, Clone, Copy)]
pub(crate) enum EnqueuedStatus {
    Enqueued,
    Canceled,
    Dispatched,
}

#[derive(Clone)]
pub struct EnqueuedSource {
    pub(crate) id: SourceId,
    pub(crate) queue: ReactorQueue,
    pub(crate) status: EnqueuedStatus,
}

pub(crate) type StatsCollectionFn = fn(&io::Result<usize>, &mut RingIoStats, waiters: u64) -> ();
pub(crate) type LatencyCollectionFn =
    fn(std::time::Duration, std::time::Duration, std::time::Duration, &mut RingIoStats) -> ();

#[derive(Copy, Clone)]
pub(crate) struct StatsCollection {
    /// fulfilled runs when the source exits the reactor
    pub(crate) fulfilled: Option<StatsCollectionFn>,

    /// reused runs when a fulfilled source is reused by another consumer
    pub(crate) reused: Option<StatsCollectionFn>,

    /// Called when a result is first consumed. It collects the time
    /// it took for user code to consume the result of a fulfilled source.
    /// This is called once, even if the source is reused multiple time.
    pub(crate) latency: Option<LatencyCollectionFn>,
}

/// A registered source of I/O events.
pub(crate) struct InnerSource {
    /// Raw file descriptor on Unix platforms.
    pub(crate) raw: RawFd,

    /// Tasks interested in events on this source.
    pub(crate) wakers: Wakers,

    pub(crate) source_type: SourceType,

    pub(crate) io_requirements: IoRequirements,

    pub(crate) timeout: Option<TimeSpec64>,

    pub(crate) enqueued: Option<EnqueuedSource>,

    pub(crate) stats_collection: Option<StatsCollection>,

    pub(crate) task_queue: Option<TaskQueueHandle>,
}

impl InnerSource {
    pub(crate) fn update_source_type(&mut self, source_type: SourceType) -> SourceType {
        std::mem::replace(&mut self.source_type, source_type)
    }
}

impl fmt::Debug for InnerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnerSource")
            .field("raw", &self.raw)
            .field("wakers", &self.wakers)
            .field("source_type", &self.source_type)
            .field("io_requirements", &self.io_requirements)
            .finish()
    }
}

#[derive(Debug)]
pub struct Source {
    pub(crate) inner: Pin<Rc<RefCell<InnerSource>>>,
}

impl Source {
    /// Registers an I/O source in the reactor.
    pub(crate) fn new(
        ioreq: IoRequirements,
        raw: RawFd,
        source_type: SourceType,
        stats_collection: Option<StatsCollection>,
        task_queue: Option<TaskQueueHandle>,
    ) -> Source {
        Source {
            inner: Rc::pin(RefCell::new(InnerSource {
                raw,
                wakers: Wakers::new(),
                source_type,
                io_requirements: ioreq,
                enqueued: None,
                timeout: None,
                stats_collection,
                task_queue,
            })),
        }
    }

    pub(crate) fn set_timeout(&self, d: Duration) -> Option<Duration> {
        let mut inner = self.inner.borrow_mut();
        let t = &mut inner.timeout;
        let old = *t;
        match TimeSpec64::try_from(d) {
            Ok(dur) | Err(dur) => *t = Some(dur),
        }
        old.map(Duration::from)
    }

    pub(super) fn timeout_ref(&self) -> Ref<'_, Option<TimeSpec64>> {
        Ref::map(self.inner.borrow(), |x| &x.timeout)
    }

    // peerwire patch: crate-visible, so a stream can peek at a completed receive.
    pub(crate) fn source_type(&self) -> Ref<'_, SourceType> {
        Ref::map(self.inner.borrow(), |x| &x.source_type)
    }

    pub(crate) fn source_type_mut(&self) -> RefMut<'_, SourceType> {
        RefMut::map(self.inner.borrow_mut(), |x| &mut x.source_type)
    }

    /// peerwire patch: the buffer of a completed receive, taken without moving the
    /// source's whole `SourceType` out (`extract_source_type` copies a few hundred
    /// bytes, the size of its largest variant, for every completed receive). `None`
    /// when the source is not a receive.
    pub(crate) fn take_recv_buffer(&self) -> Option<Option<DmaBuffer>> {
        match &mut self.inner.borrow_mut().source_type {
            SourceType::SockRecv(slot) => Some(slot.take()),
            _ => None,
        }
    }

    /// peerwire patch: makes a receive that completed ready to be submitted again
    /// into `buf`, instead of a new source (an allocation and a few hundred bytes
    /// initialised and moved per armed receive). Only when the reactor holds the
    /// source no longer: it is in no submission queue and the kernel has answered it
    /// (`enqueued` is set from queuing until its completion is consumed, and stays
    /// set on a cancelled source until the kernel's answer arrives). A source that
    /// is still held, is not a receive or has a timeout gives `buf` back.
    pub(crate) fn rearm_recv(
        &self,
        buf: DmaBuffer,
        io_requirements: IoRequirements,
        task_queue: Option<TaskQueueHandle>,
    ) -> Result<(), DmaBuffer> {
        let mut inner = self.inner.borrow_mut();
        if inner.enqueued.is_some() || inner.timeout.is_some() || inner.wakers.result.is_none() {
            return Err(buf);
        }
        let inner = &mut *inner;
        let SourceType::SockRecv(slot) = &mut inner.source_type else {
            return Err(buf);
        };
        *slot = Some(buf);
        let wakers = &mut inner.wakers;
        wakers.result = None;
        wakers.queued_at = None;
        wakers.submitted_at = None;
        wakers.fulfilled_at = None;
        inner.io_requirements = io_requirements;
        inner.task_queue = task_queue;
        Ok(())
    }

    /// peerwire patch (change 16): makes a multishot receive that ended (its last
    /// completion was consumed) and whose bytes were all read ready to be submitted
    /// again; `false` when the reactor still holds it or bytes wait in it.
    pub(crate) fn rearm_recv_multi(
        &self,
        io_requirements: IoRequirements,
        task_queue: Option<TaskQueueHandle>,
    ) -> bool {
        let mut inner = self.inner.borrow_mut();
        if inner.enqueued.is_some() || inner.timeout.is_some() || inner.wakers.result.is_none() {
            return false;
        }
        let inner = &mut *inner;
        let SourceType::SockRecvMulti(multi) = &mut inner.source_type else {
            return false;
        };
        if !multi.bufs.is_empty() {
            return false;
        }
        multi.cancel_sent = false;
        let wakers = &mut inner.wakers;
        wakers.result = None;
        wakers.queued_at = None;
        wakers.submitted_at = None;
        wakers.fulfilled_at = None;
        inner.io_requirements = io_requirements;
        inner.task_queue = task_queue;
        true
    }

    /// peerwire patch (change 16): whether this is a multishot receive.
    pub(crate) fn is_recv_multi(&self) -> bool {
        matches!(self.inner.borrow().source_type, SourceType::SockRecvMulti(_))
    }

    /// peerwire patch (change 16): copies what a multishot receive brought in into
    /// `buf`, oldest first, and marks it read (`consume`) or only looks (`peek`);
    /// the bytes copied. Read buffers go back to the ring.
    pub(crate) fn take_multi(&self, buf: &mut [u8], consume: bool) -> usize {
        let mut inner = self.inner.borrow_mut();
        let SourceType::SockRecvMulti(multi) = &mut inner.source_type else {
            return 0;
        };
        let mut n = 0;
        // Buffers copied whole, and how much of the next one was copied.
        let (mut whole, mut part) = (0, 0);
        for front in multi.bufs.iter() {
            if n == buf.len() {
                break;
            }
            let bytes = front.bytes();
            let k = std::cmp::min(bytes.len(), buf.len() - n);
            buf[n..n + k].copy_from_slice(&bytes[..k]);
            n += k;
            if k == bytes.len() {
                whole += 1;
            } else {
                part = k;
            }
        }
        if consume {
            multi.bufs.drain(..whole);
            if let Some(front) = multi.bufs.first_mut() {
                front.consume(part);
            }
            if multi.bufs.is_empty() && multi.bufs.spilled() {
                // A burst spilled to the heap: back to the inline queue when drained.
                multi.bufs = smallvec::SmallVec::new();
            }
        }
        n
    }

    /// peerwire patch (change 16): whether a multishot receive holds unread bytes.
    pub(crate) fn multi_has_bytes(&self) -> bool {
        match &self.inner.borrow().source_type {
            SourceType::SockRecvMulti(multi) => !multi.bufs.is_empty(),
            _ => false,
        }
    }

    pub(crate) fn extract_source_type(self) -> SourceType {
        self.inner
            .borrow_mut()
            .update_source_type(SourceType::Invalid)
    }

    pub(crate) fn extract_buffer(self) -> IoBuffer {
        let stype = self.extract_source_type();
        match stype {
            SourceType::Read(_, Some(buffer)) => buffer,
            SourceType::Write(_, buffer) => buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        }
    }

    pub(crate) fn buffer(&self) -> Ref<'_, IoBuffer> {
        Ref::map(self.source_type(), |stype| match stype {
            SourceType::Read(_, Some(buffer)) => buffer,
            SourceType::Write(_, buffer) => buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        })
    }

    pub(crate) fn result(&self) -> Option<io::Result<usize>> {
        let mut inner = self.inner.borrow_mut();
        let ret = inner
            .wakers
            .result
            .as_ref()
            .map(|x| OsResult::from(x).into());
        if ret.is_none() {
            return ret;
        }

        // if there is a scheduler latency collection function present, invoke it once
        if let Some(Some(stat_fn)) = inner.stats_collection.as_ref().map(|x| x.latency) {
            if let Some(lat) = inner.wakers.timestamps() {
                drop(inner);
                let pre_lat = lat.submitted_at - lat.queued_at;
                let io_lat = lat.fulfilled_at - lat.submitted_at;
                let post_lat = lat.fulfilled_at.elapsed();

                let reactor = &crate::executor().reactor().sys;
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor.ring_for_source(self).io_stats_mut(),
                );
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor
                        .ring_for_source(self)
                        .io_stats_for_task_queue_mut(crate::executor().current_task_queue()),
                );
            }
        }

        ret
    }

    // adds a single waiter to the list, replacing any waiter that may already
    // exist. Should be used for single streams that map a future 1:1 to their I/O
    // source
    pub(crate) fn add_waiter_single(&self, waker: &Waker) {
        let mut inner = self.inner.borrow_mut();
        let waiters = &mut inner.wakers.waiters;
        match waiters.first_mut() {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
            }
            None => waiters.push(waker.clone()),
        }
        debug_assert_eq!(inner.wakers.waiters.len(), 1)
    }

    // adds a waiter to the list. Useful for streams that have many futures waiting
    // on a single I/O source
    pub(crate) fn add_waiter_many(&self, waker: Waker) {
        self.inner.borrow_mut().wakers.waiters.push(waker)
    }

    pub(super) fn is_installed(&self) -> Option<bool> {
        match &self.inner.borrow().source_type {
            SourceType::ForeignNotifier(_, installed) => Some(*installed),
            _ => None,
        }
    }

    pub(super) fn raw(&self) -> RawFd {
        self.inner.borrow().raw
    }

    pub(crate) fn stats_collection(&self) -> Option<StatsCollection> {
        self.inner.borrow().stats_collection
    }

    pub(crate) async fn collect_rw(&self) -> io::Result<usize> {
        future::poll_fn(|cx| {
            if let Some(result) = self.result() {
                return Poll::Ready(result);
            }

            self.add_waiter_many(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        let enqueued = inner.enqueued.as_mut();
        if let Some(EnqueuedSource { id, queue, status }) = enqueued {
            match status {
                EnqueuedStatus::Enqueued => {
                    // We never submitted the request, so it's safe to consume
                    // source here -- kernel didn't see our buffers. By consuming
                    // the source we are signaling to the submit method that we are
                    // no longer interested in submitting this. This should be cheaper
                    // than removing elements from the vector all the time.

                    *status = EnqueuedStatus::Canceled;
                }
                EnqueuedStatus::Dispatched => {
                    // We are cancelling this request, but it is already submitted.
                    // This means that the kernel might be using the buffers right
                    // now, so we delay `consume_source` until we consume the
                    // corresponding event from the completion queue.

                    queue.borrow_mut().cancel_request(*id);
                    *status = EnqueuedStatus::Canceled; // not necessary, but useful for correctness
                }
                EnqueuedStatus::Canceled => unreachable!(),
            }
        }
    }
}
