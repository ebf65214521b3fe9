//! The per-peer task: moves bytes between a socket and a `peer_core::Peer`.
//!
//! One loop per peer, on the executor that owns its socket:
//!
//! 1. apply the commands its handles posted;
//! 2. drain the peer's events: answer notifications, hand everything else to the
//!    application's listener (timing the callbacks for stall accounting);
//! 3. sleep until the socket is readable, the output can be written, the peer's next
//!    deadline, or a new command — then do whatever became possible and go round again.
//!
//! A message queued with `queue_message` is encoded into the peer's own contiguous
//! output buffer when it enters peer-core (one encode and one copy per peer). A
//! `peer_core::SharedFrame` queued with `queue_frame` is encoded once for all peers: over
//! v1, a large one (`peer_core::LARGE_FRAME`, 16 KiB, or more) stays in the frame's own
//! allocation and the peer's output is a sequence of segments — batched small messages,
//! then the frame by reference, then more small messages. glommio 0.9's `TcpStream` has
//! no vectored write (futures-io's default `poll_write_vectored` would send only the
//! first buffer), so when the output has more than one segment the driver sends them
//! all with one vectored `sendmsg` of its own (`MSG_DONTWAIT`, exactly as glommio's own
//! sends are a non-blocking `send` tried before any io_uring work: glommio never queues
//! data of its own, it only waits for writability), and falls back to glommio's
//! `poll_write` — which registers the wake-up — when the socket is full. Small messages
//! alone are one contiguous buffer and one plain `send`, as before. Over v2 each session
//! encrypts the frame into its own buffer (per-session keys: that copy is unavoidable).
//! Reads go through the executor's scratch buffer into peer-core's own receive buffer
//! (`Peer::handle_input`), which holds memory only while a frame is incomplete.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use peer_core::{dispatch, DisconnectReason, Event, Listener, Peer, SharedFrame};
use socket2::SockRef;
use tracing::{debug, trace};
use wire_codec::Message;

use crate::counters::bump;
use crate::executor::CoreLocal;
use crate::handle::{Command, Delivery, Direction, PeerShared};
use crate::limits::Admission;
use crate::pending::Resolver;

/// The most bytes one peer reads before it lets other tasks of its executor run.
const READ_BUDGET: usize = 256 * 1024;

/// One write of the peer's output. Several segments go out in one vectored `sendmsg`
/// (glommio 0.9's stream has no vectored write); one segment, or a full socket, goes
/// through glommio's `poll_write`, which sends without blocking or registers the
/// task's waker for writability. glommio keeps no data of its own in flight (it only
/// waits for readiness), so the two never reorder bytes.
fn poll_write_segments(
    stream: &mut TcpStream,
    peer: &Peer,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if peer.transmit_segments() > 1 {
        let mut slots = [IoSlice::new(&[]); peer_core::TRANSMIT_SLICES];
        let n = peer.transmit_vectored(&mut slots);
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match SockRef::from(&*stream).send_vectored_with_flags(&slots[..n], flags) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Pin::new(stream).poll_write(cx, peer.transmit())
}

/// How long a closing peer may take to write its farewell (a final reject).
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything one peer task owns.
pub(crate) struct Driver {
    pub(crate) stream: TcpStream,
    pub(crate) peer: Peer,
    pub(crate) shared: Arc<PeerShared>,
    pub(crate) listener: Box<dyn Listener>,
    pub(crate) core: Rc<CoreLocal>,
    pub(crate) admission: Admission,
    tokens: HashMap<u64, Resolver<Delivery>>,
    next_token: u64,
    timer: Option<(Instant, Timer)>,
    handshaken: bool,
    /// The remote closed its side or the socket failed: nothing more to read.
    read_done: bool,
    /// Whether peer-core reports every frame read and written (`Config::report_io`).
    report_io: bool,
    /// An outbound v2 attempt not yet retried: if it ends before the remote's version
    /// arrived, the driver reconnects once with v1 under the same handle.
    pub(crate) v1_fallback: bool,
    /// Backpressure and pacing (see [`Pacing`]).
    pacing: Pacing,
    /// Before this instant a useful message is not recorded again (see
    /// `note_standing`).
    next_useful_note: Instant,
}

/// Backpressure (Core's `fPauseSend`) and the application's pacing, for one peer.
///
/// Messages queued through handles wait here while the peer has at least
/// `send_pause_bytes` encoded and unwritten, and are encoded when it drains: the
/// application's memory, not a copy, and never a reason to drop the peer below the
/// hard cap. While the peer is over the mark its input is neither read nor processed
/// (what peer-core had decoded ahead waits in `held_input`), so a remote that never
/// reads cannot make it queue more.
struct Pacing {
    pause: usize,
    hard_cap: usize,
    stall_timeout: Duration,
    /// Messages from handles not yet given to peer-core, with their encoded size (a
    /// shared frame counts its full length here too).
    backlog: VecDeque<(Queued, Option<u64>, usize)>,
    backlog_bytes: usize,
    /// Handles waiting for the queue to drop below the pause mark.
    room_waiters: Vec<Resolver<bool>>,
    /// Input events not dispatched because the output was over the mark, in order
    /// (at most what peer-core decodes ahead). Output events (`Sent`, `Failed`,
    /// `Written`) are not held behind them: a `Written` event carries its message,
    /// and a paused peer's written messages waiting here were most of the memory
    /// 10,000 never-readers took (874 MB of 1.2 GB in a heap profile).
    held_input: VecDeque<Event>,
    /// Since when output has waited with no byte written (the socket was full).
    stalled_since: Option<Instant>,
    /// Bytes reported into the executor's memory count.
    accounted: usize,
    /// The budget check at which this peer last registered as paused.
    budget_epoch: u64,
    /// What the last input message processed added to the output (its answer): under
    /// memory pressure a peer processes the next one only if that much more still fits
    /// in its fair share. Without it, 10,000 never-readers whose first answer the
    /// kernel took each queued a second one, past any budget.
    step: usize,
    /// The memory budget paused this peer at the last pass.
    budget_paused: bool,
}

/// What a handle queued: a message peer-core encodes for this peer, or a frame encoded
/// once for many.
pub(crate) enum Queued {
    Message(Message),
    Frame(SharedFrame),
}

impl Queued {
    /// Its size in the output queue (estimated for a message, exact for a frame).
    fn size(&self) -> usize {
        match self {
            Queued::Message(m) => wire_codec::HEADER_LEN + m.size_hint(),
            Queued::Frame(f) => f.len(),
        }
    }

    /// Hands it to peer-core.
    fn into_peer(self, peer: &mut Peer, token: Option<u64>) {
        match self {
            Queued::Message(m) => peer.queue_message(m, token),
            Queued::Frame(f) => peer.queue_frame(f, token),
        }
    }
}

/// Notification tokens the runtime allocates for `PeerHandle::queue_message` carry this
/// bit; tokens a listener passes to `Peer::queue_message` must leave it clear, and their
/// `Sent`/`Failed` events are dispatched to the listener (`on_sent` / `on_failed`).
pub const RUNTIME_TOKEN_BIT: u64 = 1 << 63;

/// The loop's write right before a `poll_io` (its first poll only).
#[derive(Clone, Copy)]
struct PassStart {
    /// When it wrote: the pass's clock.
    now: Instant,
    /// The socket took no more (the task's wake-up for writability is registered).
    write_blocked: bool,
}

/// What one wake-up found.
struct Progress {
    any: bool,
    read: usize,
    /// The clock as read once at the start of the pass: the loop's next round uses it
    /// rather than reading it again (clock reads were 7 % of the server's CPU in a ping
    /// flood when every step took its own).
    now: Instant,
}

impl Driver {
    pub(crate) fn new(
        stream: TcpStream,
        peer: Peer,
        shared: Arc<PeerShared>,
        listener: Box<dyn Listener>,
        core: Rc<CoreLocal>,
        admission: Admission,
    ) -> Driver {
        let report_io = peer.config().report_io;
        let limits = core.rt.gate.limits();
        let pacing = Pacing {
            pause: limits.send_pause_bytes,
            hard_cap: limits.max_queued_bytes_per_peer,
            stall_timeout: limits.send_progress_timeout,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            room_waiters: Vec::new(),
            held_input: VecDeque::new(),
            stalled_since: None,
            accounted: 0,
            budget_epoch: u64::MAX,
            step: 0,
            budget_paused: false,
        };
        Driver {
            pacing,
            // When the peer started (no clock read of its own).
            next_useful_note: shared.standing.since,
            report_io,
            stream,
            peer,
            shared,
            listener,
            core,
            admission,
            tokens: HashMap::new(),
            next_token: 0,
            timer: None,
            handshaken: false,
            read_done: false,
            v1_fallback: false,
        }
    }

    /// Runs the peer to its end. The driver is boxed so the task's future stays a few
    /// words: async state machines keep moved-in values in every layer, and a driver
    /// held by value would be stored several times over (measured: 6.7 KB per peer).
    pub(crate) async fn run(mut self: Box<Self>) {
        let counters = &self.core.counters;
        if self.shared.direction == Direction::Inbound {
            counters.inbound.fetch_add(1, Ordering::Relaxed);
        }
        let mut read_since_yield = 0usize;
        // The clock as read when the peer started, a moment ago in this executor pass
        // (no clock read of its own).
        let mut now = self.shared.standing.since;
        // `now` was read by the pass that led to this round (see the loop's write).
        let mut fresh = true;
        loop {
            self.apply_commands(now);
            self.feed_backlog();
            self.drain_events(now);
            if self.peer.is_closed() {
                if self.falls_back() {
                    self.v1_fallback = false;
                    // Boxed: the dial's future (connect and timer) would otherwise
                    // be part of every peer task's state, idle or not (+240 B/peer).
                    if Box::pin(self.reconnect_v1()).await {
                        continue;
                    }
                    // No v1 connection: what the attempt kept for it fails now, then the
                    // attempt's end, held back from the listener, is told.
                    self.peer.keep_queue_for_v1_retry(false);
                    self.drain_events(Instant::now());
                    if let Some(reason) = self.peer.disconnect_reason().cloned() {
                        self.on_event(Event::Disconnected(reason), Instant::now());
                    }
                }
                self.shared.life.set_closing();
                break;
            }
            self.after_progress();
            // What the events answered (a `pong` to a `ping`, queued when peer-core
            // processed it and written only now, after the messages before it reached
            // the listener: a `ping` is a barrier) goes out now, and the loop's next
            // round drains that write's events (`Sent`, `Written`). Written by the
            // next `poll_io` instead, a ping round trip took three polls of it, one
            // of them only for this write (3.04 -> 2.02 calls per round trip on the
            // seed-server). A write that produced no events is followed by the
            // `poll_io` that waits, which shares its clock read.
            // Only in the common case: under memory pressure, or with input held
            // back by a pause, the loop goes on as before (its `poll_io` writes: a
            // paused peer's wake-ups are registered there).
            let mut start = None;
            if self.peer.wants_write() && self.pacing.held_input.is_empty() && !self.core.pressed()
            {
                // The pass's clock when this round follows a `poll_io` (read before
                // the input it brought was processed, microseconds ago): one clock
                // read per ping round trip fewer. A round that follows this write
                // reads the clock again, so a chain of rounds never runs on an old one.
                let at = if fresh { now } else { Instant::now() };
                fresh = false;
                let mut wrote = Progress {
                    any: false,
                    read: 0,
                    now: at,
                };
                let write_blocked =
                    poll_fn(|cx| Poll::Ready(self.write_out(cx, at, &mut wrote))).await;
                if wrote.any || self.peer.has_events() || self.peer.is_closed() {
                    // The write's events, room for waiting messages or held input, or
                    // the peer ended: the loop's next round at once.
                    now = at;
                    continue;
                }
                start = Some(PassStart {
                    now: at,
                    write_blocked,
                });
            }
            let progress = poll_fn(|cx| self.poll_io(cx, start.take())).await;
            now = progress.now;
            fresh = true;
            read_since_yield += progress.read;
            if read_since_yield >= READ_BUDGET {
                read_since_yield = 0;
                glommio::yield_if_needed().await;
                now = Instant::now();
            }
        }
        self.finish().await;
    }

    /// Whether the peer is an outbound v2 attempt that ended before the remote's
    /// version: the remote may not speak v2 (a v1 node drops the connection at our key).
    fn falls_back(&self) -> bool {
        self.v1_fallback && self.peer.v2_failed_before_version()
    }

    /// The v1 reconnect of a failed v2 attempt (as Bitcoin Core): a new connection and a
    /// new v1 peer under the same handle, listener and peer id, carrying the messages
    /// queued before the handshake. False if the dial failed.
    async fn reconnect_v1(&mut self) -> bool {
        let addr = self.peer.remote_addr();
        debug!(%addr, reason = ?self.peer.disconnect_reason(), "v2 attempt failed before the version exchange; reconnecting with v1");
        let from = self.shared.local_addr();
        let Some(stream) = crate::connect::redial(&self.core, addr, from).await else {
            return false;
        };
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let seed = self.core.rt.next_seed();
        let Some(peer) = self.peer.v1_retry(now, unix, seed) else {
            return false;
        };
        self.peer = peer;
        self.shared.set_local_addr(stream.local_addr().ok());
        self.stream = stream;
        self.timer = None;
        self.read_done = false;
        true
    }

    /// A runtime token for a handle's notification, if it asked for one.
    fn token_for(&mut self, notify: Option<Resolver<Delivery>>) -> Option<u64> {
        notify.map(|r| {
            let t = RUNTIME_TOKEN_BIT | self.next_token;
            self.next_token = (self.next_token + 1) & !RUNTIME_TOKEN_BIT;
            self.tokens.insert(t, r);
            t
        })
    }

    /// Applies every command posted by handles.
    fn apply_commands(&mut self, now: Instant) {
        let cmds = self.shared.mailbox.take_all();
        for cmd in cmds {
            match cmd {
                Command::Message(msg, notify) => {
                    let token = self.token_for(notify);
                    self.queue_from_handle(Queued::Message(msg), token);
                }
                Command::Frame(frame, notify) => {
                    let token = self.token_for(notify);
                    self.queue_from_handle(Queued::Frame(frame), token);
                }
                Command::WaitForRoom(r) => self.pacing.room_waiters.push(r),
                Command::Inventory(iv) => self.peer.queue_inventory(iv),
                Command::InventoryImmediate(iv) => self.peer.queue_inventory_immediate(iv),
                Command::KnownInventory(iv) => self.peer.add_known_inventory(iv),
                Command::Disconnect => self.peer.disconnect(DisconnectReason::LocalRequest),
                Command::DisconnectWith(reason) => self.peer.disconnect(reason),
                Command::Stats(r) => r.resolve(Some(self.peer.stats_snapshot(now))),
                Command::Run(f) => {
                    let peer = &mut self.peer;
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(peer, now))) {
                        self.application_panicked("with_peer closure", &*panic);
                    }
                }
            }
        }
    }

    /// Drains the peer's events, handing them to the listener.
    fn drain_events(&mut self, now: Instant) {
        // The time the listener takes is measured per batch, from `now` (read just
        // before the handles' commands, which run application closures too), not per
        // event — two clock reads per event were a fifth of a busy server's CPU in an inv
        // flood, and stall accounting only needs the sum — and only while a stall
        // deadline is pending, the only time it changes anything.
        let timed = self.peer.needs_processing_time();
        let mut dispatched = false;
        let paused = self.input_paused();
        self.peer.set_input_paused(paused);
        loop {
            // Held input goes first, in order, once the pause is lifted.
            let resumed = !self.pacing.held_input.is_empty() && !self.input_paused();
            let ev = if resumed {
                let Some(ev) = self.pacing.held_input.pop_front() else {
                    break;
                };
                if self.pacing.held_input.is_empty() {
                    // peer-core may decode ahead again.
                    self.peer.set_input_paused(false);
                }
                ev
            } else {
                // Taking an event may decode more input (see `Peer::poll_event`),
                // never while the peer is paused.
                match catch_unwind(AssertUnwindSafe(|| self.peer.poll_event())) {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(panic) => {
                        self.application_panicked("input processing", &*panic);
                        break;
                    }
                }
            };
            // Backpressure: input is not processed while the output is over the mark
            // (the answer would only add to it); it waits, in order, and so does
            // every input event behind it. Output completions go on.
            let output_event = matches!(
                ev,
                Event::Sent(_) | Event::Failed(_) | Event::Written { .. }
            );
            if !output_event
                && !resumed
                && (!self.pacing.held_input.is_empty()
                    || (matches!(ev, Event::Message(_)) && self.input_paused()))
            {
                self.pacing.held_input.push_back(ev);
                // peer-core decodes no further ahead while this waits.
                self.peer.set_input_paused(true);
                continue;
            }
            dispatched = true;
            if matches!(ev, Event::Message(_)) {
                let before = self.peer.queued_bytes();
                self.on_event(ev, now);
                self.pacing.step = self.peer.queued_bytes().saturating_sub(before);
                if self.pacing.step > 0 {
                    // The executor's count sees an answer at once, not after the batch:
                    // the next message of this peer, and every other peer, weigh it.
                    self.account();
                }
            } else {
                self.on_event(ev, now);
            }
        }
        if dispatched && timed {
            self.peer.add_processing_time(now.elapsed());
        }
        if self.tokens.is_empty() && self.tokens.capacity() > 32 {
            self.tokens = HashMap::new();
        }
    }

    fn on_event(&mut self, ev: Event, now: Instant) {
        let counters = &self.core.counters;
        match ev {
            // Tokens with the runtime bit belong to `PeerHandle` notifications; any other
            // token was queued by the listener itself and goes back to it.
            Event::Sent(t) if t & RUNTIME_TOKEN_BIT != 0 => {
                if let Some(r) = self.tokens.remove(&t) {
                    r.resolve(Delivery::Sent);
                }
                return;
            }
            Event::Failed(t) if t & RUNTIME_TOKEN_BIT != 0 => {
                if let Some(r) = self.tokens.remove(&t) {
                    r.resolve(Delivery::Failed);
                }
                return;
            }
            // A v2 attempt that will be retried in v1 has not ended for the listener.
            Event::Disconnected(_) if self.falls_back() => return,
            Event::HandshakeComplete { version, features } => {
                self.handshaken = true;
                self.shared.set_transport(&self.peer);
                self.shared
                    .addrv2
                    .store(features.send_addr_v2, Ordering::Release);
                self.shared.negotiated.store(version, Ordering::Release);
                self.shared.life.set_handshake(version);
                bump(&counters.handshakes, 1);
                counters.handshaken.fetch_add(1, Ordering::Relaxed);
                debug!(version, "handshake complete");
            }
            Event::Version(_) => {
                // peer-core negotiated min(ours, theirs) on the remote's version: the
                // handle reports the same from now on, not only after the handshake.
                self.shared
                    .negotiated
                    .store(self.peer.negotiated_version(), Ordering::Release);
                if !self.report_io {
                    bump(&counters.messages_in, 1);
                }
            }
            Event::Message(ref m) => {
                if !self.report_io {
                    bump(&counters.messages_in, 1);
                }
                self.note_standing(m, now);
            }
            Event::Read { .. } => bump(&counters.messages_in, 1),
            Event::Written { .. } => bump(&counters.messages_out, 1),
            _ => {}
        }
        let (peer, listener) = (&mut self.peer, &mut *self.listener);
        let outcome = catch_unwind(AssertUnwindSafe(|| dispatch(peer, ev, listener, now)));
        if let Err(panic) = outcome {
            self.application_panicked("listener", &*panic);
        }
    }

    /// Writes the peer's output until it is all written or the socket is full. True
    /// when the socket took no more (its writability wake-up is registered) or failed.
    fn write_out(&mut self, cx: &mut Context<'_>, now: Instant, progress: &mut Progress) -> bool {
        while self.peer.wants_write() {
            let res = poll_write_segments(&mut self.stream, &self.peer, cx);
            match res {
                Poll::Ready(Ok(0)) => {
                    self.io_failed(io::ErrorKind::WriteZero.into());
                    progress.any = true;
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    bump(&self.core.counters.bytes_out, n as u64);
                    self.peer.advance_transmit(n, now);
                    self.pacing.stalled_since = None;
                    // A write sends the task round its loop only for what it made
                    // possible: room for messages and handles waiting on the pause
                    // mark, or events it produced (`Sent`, `Written`; checked at the
                    // end). Going round after every write was a third pass per ping
                    // round trip that found nothing to do.
                    if !self.pacing.backlog.is_empty()
                        || !self.pacing.room_waiters.is_empty()
                        || !self.pacing.held_input.is_empty()
                    {
                        progress.any = true;
                    }
                    self.account();
                }
                Poll::Ready(Err(e)) => {
                    self.io_failed(e);
                    progress.any = true;
                    return true;
                }
                Poll::Pending => {
                    if self.pacing.stalled_since.is_none() {
                        // The socket stopped taking bytes: what waits may wait long.
                        self.pacing.stalled_since = Some(now);
                        self.peer.shrink_buffers();
                        self.account();
                    }
                    return true;
                }
            }
        }
        false
    }

    /// One pass over everything that can wake the peer. Ready when something happened.
    /// `start`: the loop's own write just happened (see `run`), at that instant.
    fn poll_io(&mut self, cx: &mut Context<'_>, start: Option<PassStart>) -> Poll<Progress> {
        // One clock read per pass: writes, reads and deadlines within it share it
        // (the loop's write's, when it came right before).
        let now = start.map_or_else(Instant::now, |s| s.now);
        let mut progress = Progress {
            any: false,
            read: 0,
            now,
        };
        // The executor's state through its `Rc` (no atomic reference count per pass).
        let core = self.core.clone();
        let counters = &core.counters;

        // Output: all segments (small messages batched in one, each large shared
        // frame one of its own) in one vectored send, until the socket is full.
        // (Not when the loop's write just found the socket full: its wake-up is
        // registered and another send would fail the same way.)
        if !start.is_some_and(|s| s.write_blocked) {
            self.write_out(cx, now, &mut progress);
        }

        // Input: into the executor's scratch buffer, then the peer's own buffer —
        // unless the output is over the pause mark or the memory budget says so.
        // Under memory pressure a peer reads one frame at a time (no more than the
        // frame in progress needs): the kernel holds the rest, not this process.
        let (budget_pause, read_max) = if core.pressed() {
            let held = self.held_bytes();
            let pause =
                self.core
                    .budget_pause(held + self.pacing.step, &mut self.pacing.budget_epoch, cx);
            if pause && (!self.pacing.budget_paused || !self.peer.wants_write()) {
                // Paused until the budget has room: what it holds may wait long. Once
                // its output is drained, what it kept for reuse goes back too — or a
                // peer alone over half the budget would wait for itself for ever.
                self.peer.shrink_buffers();
                self.account();
            }
            self.pacing.budget_paused = pause;
            (pause, self.peer.read_hint().max(1))
        } else {
            self.pacing.budget_paused = false;
            (false, usize::MAX)
        };
        let send_pause = self.peer.queued_bytes() >= self.pacing.pause;
        self.peer.set_input_paused(send_pause || budget_pause);
        if !self.read_done && !self.peer.is_closed() && !send_pause && !budget_pause {
            let mut scratch = core.scratch.borrow_mut();
            let len = scratch.len().min(read_max);
            match Pin::new(&mut self.stream).poll_read(cx, &mut scratch[..len]) {
                Poll::Ready(Ok(0)) => {
                    drop(scratch);
                    self.read_done = true;
                    self.peer.disconnect(DisconnectReason::RemoteClosed);
                    progress.any = true;
                }
                Poll::Ready(Ok(n)) => {
                    let data = scratch.get(..n).unwrap_or(&[]);
                    // Decoding runs inside the panic guard too: a bug in it ends this
                    // peer, not the executor and its other peers.
                    let peer = &mut self.peer;
                    if let Err(panic) =
                        catch_unwind(AssertUnwindSafe(|| peer.handle_input(data, now)))
                    {
                        self.application_panicked("input processing", &*panic);
                    }
                    drop(scratch);
                    bump(&counters.bytes_in, n as u64);
                    trace!(n, "read");
                    progress.any = true;
                    progress.read = n;
                }
                Poll::Ready(Err(e)) => {
                    drop(scratch);
                    self.read_done = true;
                    self.io_failed(e);
                    progress.any = true;
                }
                Poll::Pending => {}
            }
        }

        // Commands from handles.
        if self.shared.mailbox.poll_ready(cx).is_ready() {
            progress.any = true;
        }

        // The send-progress deadline (only while output waits on a full socket).
        if let (Some(since), true) = (self.pacing.stalled_since, self.peer.wants_write()) {
            let waited = now.saturating_duration_since(since);
            if waited >= self.pacing.stall_timeout {
                self.peer
                    .disconnect(DisconnectReason::SendStalled { waited });
                progress.any = true;
            }
        }

        // The peer's next deadline.
        let stall_deadline = self
            .pacing
            .stalled_since
            .filter(|_| self.peer.wants_write())
            .map(|s| s + self.pacing.stall_timeout);
        let deadline = match (self.peer.poll_timeout(), stall_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match deadline {
            None => self.timer = None,
            Some(deadline) => {
                if deadline <= now {
                    self.peer.handle_timeout(now);
                    self.timer = None;
                    progress.any = true;
                } else {
                    // The timer is polled (registered with the reactor) only when its
                    // deadline is new: a registered glommio timer keeps this task's
                    // waker until it fires, and every poll of it is a removal and an
                    // insertion in the executor's timer tree — three per ping round
                    // trip when it was polled at every pass. A timer that fired wakes
                    // the task with `deadline <= now` (it fires at or after the
                    // deadline), which the branch above handles.
                    // A deadline that moved later keeps the armed timer: it fires
                    // early, and the pass it wakes moves it to the deadline then (a
                    // peer that ends first, as most do after their handshake, never
                    // moves it; one that lives moves it once per old deadline, not
                    // at every pass that changed its deadline).
                    // A timer in the slot was polled when it was made; unless its
                    // deadline passed (it may have fired unseen: a fired timer is out
                    // of the reactor's tree and `reset` puts back nothing), it still
                    // holds this task's waker, and `reset` moves it in the tree with
                    // that waker: polling it again would move it a second time.
                    let timer = match &mut self.timer {
                        Some((at, _)) if *at == deadline => None,
                        Some((at, _)) if now < *at && *at < deadline => None,
                        Some((at, t)) => {
                            let may_have_fired = *at <= now;
                            t.reset(deadline - now);
                            *at = deadline;
                            may_have_fired.then_some(t)
                        }
                        slot => Some(&mut slot.insert((deadline, Timer::new(deadline - now))).1),
                    };
                    if let Some(timer) = timer {
                        if Pin::new(timer).poll(cx).is_ready() {
                            // Ready only at or past the deadline, which `now` was not.
                            self.peer.handle_timeout(Instant::now());
                            self.timer = None;
                            progress.any = true;
                        }
                    }
                }
            }
        }

        // Events the write produced, or input the peer can process again now that
        // the pause was lifted above. Not while an input event is held back by the
        // pause: the events behind it wait with it (the loop would find nothing it
        // may do, and go round again at once, for ever).
        if !progress.any && self.pacing.held_input.is_empty() && self.peer.has_events() {
            progress.any = true;
        }
        if progress.any {
            Poll::Ready(progress)
        } else {
            Poll::Pending
        }
    }

    /// Records what inbound eviction weighs: useful messages and ping times.
    fn note_standing(&mut self, m: &Message, now: Instant) {
        let st = &self.shared.standing;
        match m {
            Message::Tx(_)
            | Message::Block(_)
            | Message::CmpctBlock(_)
            | Message::BlockTxn(_)
            | Message::Headers(_)
            | Message::Inv(_) => {
                // Eviction weighs seconds: one clock comparison per message, one store
                // per second at most (an inv flood is millions of messages).
                if now < self.next_useful_note {
                    return;
                }
                self.next_useful_note = now + Duration::from_secs(1);
                let ms = now.saturating_duration_since(st.since).as_millis();
                st.useful_at_ms
                    .store(u64::try_from(ms).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
            }
            Message::Pong(_) => {
                // peer-core has matched the pong to our ping by now (events are
                // produced after the message was handled).
                if let Some(rtt) = self.peer.stats_snapshot(now).last_ping_latency {
                    let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
                    st.min_ping_us.fetch_min(us, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// Memory this peer holds ([`Peer::memory_held`]: whole buffers, kept messages,
    /// events), messages waiting in the runtime, and its held input events.
    fn held_bytes(&self) -> usize {
        self.peer.memory_held()
            + self.pacing.backlog_bytes
            + self.pacing.held_input.capacity() * std::mem::size_of::<Event>()
    }

    /// Core's `fPauseSend`: the output is at or over the pause mark, or the process
    /// is over its memory budget and this peer would pass its share of it with one
    /// more answer like its last. (A peer paused with nothing to write notices that
    /// its remote went away only once the budget has room again.)
    fn input_paused(&self) -> bool {
        !self.peer.is_closed()
            && (self.peer.queued_bytes() >= self.pacing.pause
                || (self.core.pressed()
                    && self.held_bytes() + self.pacing.step > self.core.fair_share()))
    }

    /// A message from a handle: into the backlog (encoded when there is room), or the
    /// peer is disconnected if the hard cap would be passed.
    fn queue_from_handle(&mut self, msg: Queued, token: Option<u64>) {
        let size = msg.size();
        if self.pacing.backlog.is_empty() && self.has_room() {
            msg.into_peer(&mut self.peer, token);
            return;
        }
        let total = self.peer.queued_bytes() + self.pacing.backlog_bytes + size;
        if total > self.pacing.hard_cap && !self.peer.is_closed() {
            debug!(
                total,
                cap = self.pacing.hard_cap,
                "queued past the hard cap"
            );
            self.peer.disconnect(DisconnectReason::OutputQueueFull {
                bytes: total,
                limit: self.pacing.hard_cap,
            });
        }
        if self.peer.is_closed() && !self.falls_back() {
            // peer-core answers `Failed` at once.
            msg.into_peer(&mut self.peer, token);
            return;
        }
        self.pacing.backlog_bytes += size;
        self.pacing.backlog.push_back((msg, token, size));
    }

    /// Whether a message from a handle may be encoded now: the handshake is done (or
    /// the peer closed, which answers it) and the output is under the pause mark. A v2
    /// attempt about to be retried in v1 takes nothing: its messages wait for the retry.
    fn has_room(&self) -> bool {
        (self.peer.is_closed() && !self.falls_back())
            || (self.handshaken && self.peer.queued_bytes() < self.pacing.pause)
    }

    /// Moves waiting messages into peer-core while there is room.
    fn feed_backlog(&mut self) {
        while !self.pacing.backlog.is_empty() && self.has_room() {
            if let Some((msg, token, size)) = self.pacing.backlog.pop_front() {
                self.pacing.backlog_bytes -= size;
                msg.into_peer(&mut self.peer, token);
            }
        }
        if self.pacing.backlog.is_empty() && self.pacing.backlog.capacity() > 64 {
            self.pacing.backlog = VecDeque::new();
        }
    }

    /// After each wake-up: answer room waiters and publish this peer's memory.
    fn after_progress(&mut self) {
        // The handshake may have completed while dispatching: room for the backlog.
        self.feed_backlog();
        if !self.pacing.room_waiters.is_empty()
            && self.pacing.backlog.is_empty()
            && self.peer.queued_bytes() < self.pacing.pause
        {
            for r in self.pacing.room_waiters.drain(..) {
                r.resolve(true);
            }
        }
        self.account();
    }

    /// Reports this peer's memory change to the executor's count.
    fn account(&mut self) {
        let held = self.held_bytes();
        let before = self.pacing.accounted;
        if held != before {
            // Only this executor writes its count (its peers' drivers, on its thread):
            // a load and a store, not a locked read-modify-write (see `bump`).
            let m = &self.core.me.memory;
            let total = m.load(Ordering::Relaxed);
            m.store(
                total.wrapping_add(held).wrapping_sub(before),
                Ordering::Relaxed,
            );
            self.pacing.accounted = held;
        }
    }

    /// Application code panicked while handling this peer: the peer ends (its
    /// notifications are answered), the executor and its other peers go on.
    fn application_panicked(&mut self, what: &str, panic: &(dyn std::any::Any + Send)) {
        let reason = DisconnectReason::application_panicked(what, panic);
        tracing::error!(what, %reason, "application code panicked; disconnecting the peer");
        self.peer.disconnect(reason);
    }

    fn io_failed(&mut self, e: io::Error) {
        debug!(error = %e, "socket error");
        self.read_done = true;
        self.peer.disconnect(DisconnectReason::from_io_error(&e));
    }

    /// The peer closed: write its farewell, answer everything still waiting, publish
    /// the end.
    async fn finish(mut self: Box<Self>) {
        let now = Instant::now();
        // Events after the close (Failed tokens, Disconnected) were drained by the loop.
        if self.peer.wants_write() && !self.read_done {
            let deadline = now + FAREWELL_TIMEOUT;
            let mut timer = Timer::new(FAREWELL_TIMEOUT);
            let _ = poll_fn(|cx| {
                while self.peer.wants_write() {
                    match poll_write_segments(&mut self.stream, &self.peer, cx) {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            self.peer.advance_transmit(n, Instant::now());
                        }
                        Poll::Ready(_) => return Poll::Ready(()),
                        Poll::Pending => {
                            if Instant::now() >= deadline
                                || Pin::new(&mut timer).poll(cx).is_ready()
                            {
                                return Poll::Ready(());
                            }
                            return Poll::Pending;
                        }
                    }
                }
                Poll::Ready(())
            })
            .await;
        }
        // Messages that never reached peer-core: their tokens are failed below.
        self.pacing.backlog.clear();
        self.pacing.backlog_bytes = 0;
        self.pacing.held_input.clear();
        self.core
            .me
            .memory
            .fetch_sub(self.pacing.accounted, Ordering::Relaxed);
        self.pacing.accounted = 0;
        // Closing the descriptor now lets the remote see the end before waiters do.
        let Driver {
            stream,
            peer,
            listener,
            shared,
            core,
            admission,
            tokens,
            handshaken,
            ..
        } = *self;
        drop(stream);
        drop(listener);

        let reason = peer
            .disconnect_reason()
            .cloned()
            .unwrap_or(DisconnectReason::LocalRequest);
        *shared
            .final_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Box::new(peer.stats_snapshot(Instant::now())));
        // From here on handles are answered without the driver.
        for cmd in shared.mailbox.close() {
            shared.answer_refused(cmd);
        }
        // Tokens peer-core did not answer (it answers all; this is the safety net).
        for (_, r) in tokens {
            r.resolve(Delivery::Failed);
        }
        let counters = &core.counters;
        if handshaken {
            counters.handshaken.fetch_sub(1, Ordering::Relaxed);
        }
        if shared.direction == Direction::Inbound {
            counters.inbound.fetch_sub(1, Ordering::Relaxed);
        }
        bump(&counters.disconnects, 1);
        core.unregister(shared.id);
        // Give the slot back before announcing the end: whoever sees the peer ended
        // also sees the counts without it.
        drop(admission);
        debug!(%reason, "peer ended");
        shared.life.set_ended(reason);
    }
}

#[cfg(test)]
mod tests;
