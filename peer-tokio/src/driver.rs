//! The per-peer task: moves bytes between a tokio socket and a `peer_core::Peer`.
//!
//! One task per peer (spawned with `tokio::spawn`, so peers spread over the runtime's
//! worker threads). Each turn it applies the commands its handles posted, drains the
//! peer's events into the listener (timing the callbacks for stall accounting), and then
//! sleeps until the socket can be read or written, the peer's next deadline, or a new
//! command — the same contract the glommio runtime follows.
//!
//! Writes are vectored: the peer's output is a sequence of segments (small messages
//! encoded into one buffer per peer; a large `peer_core::SharedFrame`, queued to many
//! peers, kept by reference in each), and tokio's `TcpStream` writes them with one
//! `writev`. A block relayed to many peers over v1 is encoded once and never copied per
//! peer; over v2 each session encrypts it into its own buffer.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use peer_core::{dispatch, DisconnectReason, Event, Listener, Peer};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tracing::debug;

use crate::handle::{Command, Delivery, Life, PeerShared};
use crate::node::NodeShared;

/// Tokens the driver allocates for `PeerHandle::queue_message` carry this bit; tokens a
/// listener passes to `Peer::queue_message` must leave it clear, and their `Sent` /
/// `Failed` events go to the listener (`on_sent` / `on_failed`). Same rule as
/// peer-runtime's `RUNTIME_TOKEN_BIT`.
pub const HANDLE_TOKEN_BIT: u64 = 1 << 63;

/// Most bytes read for one peer before the task yields to others.
const READ_BUDGET: usize = 256 * 1024;

/// How long a closing peer may take to write its farewell (a final reject).
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

/// Size of the per-thread scratch buffer reads land in before the peer's own buffer.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    // Reads go through one buffer per worker thread; peer-core's own receive buffer
    // holds only the bytes of an incomplete frame, so an idle peer holds no receive
    // memory.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// One vectored write of the peer's output segments (`writev` on the socket).
fn poll_write_segments(
    stream: &mut TcpStream,
    peer: &Peer,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if peer.transmit_segments() <= 1 {
        // The common case, small messages only: a plain write, no iovec array.
        return Pin::new(stream).poll_write(cx, peer.transmit());
    }
    let mut slots = [IoSlice::new(&[]); peer_core::TRANSMIT_SLICES];
    let n = peer.transmit_vectored(&mut slots);
    Pin::new(stream).poll_write_vectored(cx, &slots[..n])
}

pub(crate) struct Driver {
    pub(crate) stream: TcpStream,
    pub(crate) peer: Peer,
    pub(crate) listener: Box<dyn Listener + Send>,
    pub(crate) shared: Arc<PeerShared>,
    pub(crate) node: Arc<NodeShared>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    tokens: HashMap<u64, oneshot::Sender<Delivery>>,
    next_token: u64,
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
    read_done: bool,
    handshaken: bool,
    /// Backpressure mark (`NodeBuilder::send_pause_bytes`).
    pause: usize,
    /// Input events not dispatched while the output is over the mark, in order (at
    /// most what peer-core decoded ahead); output completions are not held.
    held_input: VecDeque<Event>,
}

#[derive(Default)]
struct Progress {
    any: bool,
    read: usize,
}

impl Driver {
    pub(crate) fn new(
        stream: TcpStream,
        peer: Peer,
        listener: Box<dyn Listener + Send>,
        shared: Arc<PeerShared>,
        node: Arc<NodeShared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Driver {
        let pause = node.send_pause_bytes;
        Driver {
            pause,
            held_input: VecDeque::new(),
            stream,
            peer,
            listener,
            shared,
            node,
            commands,
            tokens: HashMap::new(),
            next_token: 0,
            timer: None,
            read_done: false,
            handshaken: false,
        }
    }

    /// Ends the peer before its task starts (its listener factory panicked).
    pub(crate) fn fail_early(&mut self, what: &str, panic: &(dyn std::any::Any + Send)) {
        self.application_panicked(what, panic);
    }

    pub(crate) async fn run(mut self: Box<Self>) {
        let mut read_since_yield = 0usize;
        loop {
            let now = Instant::now();
            self.apply_commands(now);
            self.drain_events(now);
            if self.peer.is_closed() {
                self.shared.closing.store(true, Ordering::Release);
                break;
            }
            let progress = poll_fn(|cx| self.poll_io(cx)).await;
            read_since_yield += progress.read;
            if read_since_yield >= READ_BUDGET {
                read_since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        self.finish().await;
    }

    fn apply_commands(&mut self, now: Instant) {
        while let Ok(cmd) = self.commands.try_recv() {
            self.apply(cmd, now);
        }
    }

    /// A handle token for a notification, if one was asked for.
    fn token_for(&mut self, notify: Option<oneshot::Sender<Delivery>>) -> Option<u64> {
        notify.map(|tx| {
            let t = HANDLE_TOKEN_BIT | self.next_token;
            self.next_token = (self.next_token + 1) & !HANDLE_TOKEN_BIT;
            self.tokens.insert(t, tx);
            t
        })
    }

    fn apply(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Message(msg, notify) => {
                let token = self.token_for(notify);
                self.peer.queue_message(msg, token);
            }
            Command::Frame(frame, notify) => {
                let token = self.token_for(notify);
                self.peer.queue_frame(frame, token);
            }
            Command::Inventory(iv) => self.peer.queue_inventory(iv),
            Command::InventoryImmediate(iv) => self.peer.queue_inventory_immediate(iv),
            Command::KnownInventory(iv) => self.peer.add_known_inventory(iv),
            Command::Disconnect => self.peer.disconnect(DisconnectReason::LocalRequest),
            Command::Stats(tx) => {
                let _ = tx.send(self.peer.stats_snapshot(now));
            }
            Command::Run(f) => {
                let peer = &mut self.peer;
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(peer, now))) {
                    self.application_panicked("with_peer closure", &*panic);
                }
            }
        }
    }

    fn drain_events(&mut self, now: Instant) {
        // Callback time is measured per batch and only while a stall deadline is
        // pending (the only time it changes anything), as the glommio driver does.
        let timed = self.peer.needs_processing_time();
        let mut dispatched = false;
        self.peer.set_input_paused(self.output_over_mark());
        loop {
            // Held input first, in order, once the output is back under the mark.
            let resumed = !self.held_input.is_empty() && !self.output_over_mark();
            let ev = if resumed {
                let Some(ev) = self.held_input.pop_front() else {
                    break;
                };
                if self.held_input.is_empty() {
                    self.peer.set_input_paused(false);
                }
                ev
            } else {
                match self.peer.poll_event() {
                    Some(ev) => ev,
                    None => break,
                }
            };
            // Backpressure: input waits while the output is over the mark (its answer
            // would only add to it), and every input event behind it waits too.
            let output_event = matches!(
                ev,
                Event::Sent(_) | Event::Failed(_) | Event::Written { .. }
            );
            if !output_event
                && !resumed
                && (!self.held_input.is_empty()
                    || (matches!(ev, Event::Message(_)) && self.output_over_mark()))
            {
                self.held_input.push_back(ev);
                self.peer.set_input_paused(true);
                continue;
            }
            dispatched = true;
            self.on_event(ev, now);
        }
        if dispatched && timed {
            self.peer.add_processing_time(now.elapsed());
        }
        if self.tokens.is_empty() && self.tokens.capacity() > 32 {
            self.tokens = HashMap::new();
        }
    }

    /// Core's `fPauseSend`: at least the mark is encoded and unwritten.
    fn output_over_mark(&self) -> bool {
        !self.peer.is_closed() && self.peer.queued_bytes() >= self.pause
    }

    fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Sent(t) if t & HANDLE_TOKEN_BIT != 0 => {
                if let Some(tx) = self.tokens.remove(&t) {
                    let _ = tx.send(Delivery::Sent);
                }
                return;
            }
            Event::Failed(t) if t & HANDLE_TOKEN_BIT != 0 => {
                if let Some(tx) = self.tokens.remove(&t) {
                    let _ = tx.send(Delivery::Failed);
                }
                return;
            }
            Event::HandshakeComplete { version, .. } => {
                self.handshaken = true;
                self.shared.negotiated.store(version, Ordering::Release);
                self.shared.handshaken.store(true, Ordering::Release);
                self.shared.life.send_replace(Life::Handshaken(version));
                self.node
                    .counters
                    .handshaken
                    .fetch_add(1, Ordering::Relaxed);
                debug!(version, "handshake complete");
            }
            Event::Version(_) => {
                // peer-core negotiated min(ours, theirs): the handle reports it from now.
                // (On the decision peer-core resumes reading from its own buffer.)
                self.shared
                    .negotiated
                    .store(self.peer.negotiated_version(), Ordering::Release);
            }
            _ => {}
        }
        let (peer, listener) = (&mut self.peer, &mut *self.listener);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| dispatch(peer, ev, listener, now))) {
            self.application_panicked("listener", &*panic);
        }
    }

    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Progress> {
        let mut progress = Progress::default();

        // Output: everything the peer has, as far as the socket takes it — one
        // vectored write over its segments (small messages batched in one buffer,
        // large shared frames straight from their own allocation).
        while self.peer.wants_write() {
            match poll_write_segments(&mut self.stream, &self.peer, cx) {
                Poll::Ready(Ok(0)) => {
                    self.io_failed(io::ErrorKind::WriteZero.into());
                    progress.any = true;
                    break;
                }
                Poll::Ready(Ok(n)) => {
                    self.node
                        .counters
                        .bytes_out
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.peer.advance_transmit(n, Instant::now());
                    progress.any = true;
                }
                Poll::Ready(Err(e)) => {
                    self.io_failed(e);
                    progress.any = true;
                    break;
                }
                Poll::Pending => break,
            }
        }

        // Input, while the peer takes it (it pauses while the application decides on
        // the remote's version, and while its output is over the mark: backpressure):
        // readiness, then a non-blocking read into the thread's scratch buffer, handed
        // to peer-core with one copy.
        let over = self.output_over_mark();
        self.peer.set_input_paused(over);
        if !self.read_done && self.peer.wants_read() {
            while self.stream.poll_read_ready(cx).is_ready() {
                let (peer, stream) = (&mut self.peer, &self.stream);
                let got = SCRATCH_BUF.with(|s| {
                    let mut scratch = s.borrow_mut();
                    let n = stream.try_read(&mut scratch[..])?;
                    if n > 0 {
                        peer.handle_input(&scratch[..n], Instant::now());
                    }
                    Ok::<_, io::Error>(n)
                });
                match got {
                    Ok(0) => {
                        self.read_done = true;
                        self.peer.disconnect(DisconnectReason::RemoteClosed);
                        progress.any = true;
                    }
                    Ok(n) => {
                        self.node
                            .counters
                            .bytes_in
                            .fetch_add(n as u64, Ordering::Relaxed);
                        progress.any = true;
                        progress.read += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        self.io_failed(e);
                        progress.any = true;
                    }
                }
                break;
            }
        }

        // Commands from handles.
        if !progress.any {
            if let Poll::Ready(Some(cmd)) = self.commands.poll_recv(cx) {
                self.apply(cmd, Instant::now());
                progress.any = true;
            }
        }

        // The peer's next deadline.
        match self.peer.poll_timeout() {
            None => self.timer = None,
            Some(deadline) => {
                let now = Instant::now();
                if deadline <= now {
                    self.peer.handle_timeout(now);
                    self.timer = None;
                    progress.any = true;
                } else {
                    let at = tokio::time::Instant::from_std(deadline);
                    let sleep = match &mut self.timer {
                        Some((d, s)) => {
                            if *d != deadline {
                                s.as_mut().reset(at);
                                *d = deadline;
                            }
                            s
                        }
                        slot => {
                            &mut slot
                                .insert((deadline, Box::pin(tokio::time::sleep_until(at))))
                                .1
                        }
                    };
                    if sleep.as_mut().poll(cx).is_ready() {
                        self.peer.handle_timeout(Instant::now());
                        self.timer = None;
                        progress.any = true;
                    }
                }
            }
        }

        if progress.any {
            Poll::Ready(progress)
        } else {
            Poll::Pending
        }
    }

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

    /// The peer closed: write its farewell (bounded), answer everything still waiting,
    /// publish the end.
    async fn finish(mut self: Box<Self>) {
        if self.peer.wants_write() && !self.read_done {
            let write_all = async {
                while self.peer.wants_write() {
                    let r =
                        poll_fn(|cx| poll_write_segments(&mut self.stream, &self.peer, cx)).await;
                    match r {
                        Ok(n) if n > 0 => self.peer.advance_transmit(n, Instant::now()),
                        _ => break,
                    }
                }
            };
            let _ = tokio::time::timeout(FAREWELL_TIMEOUT, write_all).await;
        }
        let Driver {
            stream,
            peer,
            listener,
            shared,
            node,
            mut commands,
            tokens,
            handshaken,
            ..
        } = *self;
        // Closing the socket first lets the remote see the end before our waiters do.
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
            Some(peer.stats_snapshot(Instant::now()));
        // Commands still queued are dropped: their notifications answer `Failed`.
        commands.close();
        while commands.try_recv().is_ok() {}
        // peer-core answers every token; this is the safety net.
        for (_, tx) in tokens {
            let _ = tx.send(Delivery::Failed);
        }
        if handshaken {
            node.counters.handshaken.fetch_sub(1, Ordering::Relaxed);
        }
        node.unregister(&shared);
        debug!(%reason, "peer ended");
        shared.life.send_replace(Life::Ended(reason));
    }
}
