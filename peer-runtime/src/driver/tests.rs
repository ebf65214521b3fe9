//! The driver's decisions, without timing: each test builds one driver on a glommio
//! `LocalExecutor` over a loopback socket it never waits on, talks to its peer through
//! an in-memory remote `peer_core::Peer` (bytes moved by hand, as a socket would), and
//! calls the driver's steps one by one.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use glommio::LocalExecutorBuilder;
use peer_core::{Config, DisconnectReason, Listener, NonceSet, Peer};
use wire_codec::message::{Ping, ServiceFlags};
use wire_codec::{Message, Network};

use super::Driver;
use crate::control::ListenerFactory;
use crate::executor::CoreLocal;
use crate::handle::{Delivery, Direction, PeerHandle, PeerShared};
use crate::limits::{Gate, Limits};
use crate::shared::{CoreShared, RuntimeShared};
use crate::DEFAULT_IO_MEMORY;

/// The encoded size of a `ping` frame (24-byte header, 8-byte nonce).
const PING_FRAME: usize = 32;

fn config() -> Config {
    let mut c = Config::new(Network::Regtest);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    // Each side its own nonce set, or the handshake looks like a self-connection.
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

/// Counts the pings and the ends the application's listener was handed.
struct Seen {
    pings: Rc<Cell<u32>>,
    ends: Rc<Cell<u32>>,
}

impl Listener for Seen {
    fn on_ping(&mut self, _peer: &mut Peer, _msg: Ping) {
        self.pings.set(self.pings.get() + 1);
    }

    fn on_disconnect(&mut self, _peer: &mut Peer, _reason: &DisconnectReason) {
        self.ends.set(self.ends.get() + 1);
    }
}

/// One driver (an inbound peer) and the remote it talks to.
struct Rig {
    driver: Box<Driver>,
    remote: Peer,
    handle: PeerHandle,
    pings_seen: Rc<Cell<u32>>,
    ends_seen: Rc<Cell<u32>>,
    /// Keeps the socket's other end open.
    _far_end: std::net::TcpStream,
}

/// Runs `test` with a fresh rig on a glommio executor of its own.
fn with_rig(limits: Limits, test: impl FnOnce(Rig) + Send + 'static) {
    LocalExecutorBuilder::default()
        .io_memory(DEFAULT_IO_MEMORY)
        .spawn(move || async move { test(rig(limits)) })
        .expect("executor starts")
        .join()
        .expect("test body ran");
}

fn rig(limits: Limits) -> Rig {
    let factory: ListenerFactory = Arc::new(|_: &PeerHandle| Box::new(crate::NoopListener));
    let me = Arc::new(CoreShared::new(0));
    let rt = Arc::new(RuntimeShared::new(
        Arc::new(config()),
        factory,
        None,
        Arc::new(Gate::new(limits)),
        vec![me.clone()],
    ));
    let core = Rc::new(CoreLocal::new(rt.clone(), me));
    let admission = rt
        .gate
        .admit(&core.counters.peers, None)
        .expect("one peer is admitted");

    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let far_end = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let (near, remote_addr) = server.accept().unwrap();
    let stream = crate::adopt::into_glommio(near);

    let now = Instant::now();
    let peer = Peer::new_inbound(Arc::new(config()), remote_addr, now, 0, 1);
    let shared = Arc::new(PeerShared::new(
        &peer,
        None,
        Direction::Inbound,
        0,
        peer.config().max_protocol_version(),
        None,
        now,
    ));
    let handle = PeerHandle {
        shared: shared.clone(),
    };
    let pings_seen = Rc::new(Cell::new(0));
    let ends_seen = Rc::new(Cell::new(0));
    let listener = Box::new(Seen {
        pings: pings_seen.clone(),
        ends: ends_seen.clone(),
    });
    let driver = Box::new(Driver::new(stream, peer, shared, listener, core, admission));
    let local: SocketAddr = "127.0.0.1:8333".parse().unwrap();
    let remote = Peer::new_outbound(Arc::new(config()), local, now, 0, 2);
    Rig {
        driver,
        remote,
        handle,
        pings_seen,
        ends_seen,
        _far_end: far_end,
    }
}

impl Rig {
    /// Moves everything each side has to the other, as a socket that takes all would.
    fn exchange(&mut self) {
        let now = Instant::now();
        for _ in 0..8 {
            let out = self.remote.transmit().to_vec();
            self.remote.advance_transmit(out.len(), now);
            if !out.is_empty() {
                self.driver.peer.handle_input(&out, now);
            }
            self.driver.drain_events(now);
            let back = self.driver.peer.transmit().to_vec();
            self.driver.peer.advance_transmit(back.len(), now);
            self.remote.handle_input(&back, now);
            self.remote_events(now);
            self.driver.drain_events(now);
            if out.is_empty() && back.is_empty() {
                break;
            }
        }
    }

    /// The driver's output so far, taken as a full socket would not: nothing written.
    fn queued(&self) -> usize {
        self.driver.peer.queued_bytes()
    }

    /// Writes all of the driver's output (one successful `send`).
    fn write_all(&mut self) {
        let now = Instant::now();
        let out = self.driver.peer.transmit().to_vec();
        self.driver.peer.advance_transmit(out.len(), now);
        self.remote.handle_input(&out, now);
        self.remote_events(now);
    }

    /// Hands the remote's events to a listener that accepts everything (peer-core
    /// reacts to the version through `dispatch`).
    fn remote_events(&mut self, now: Instant) {
        while let Some(ev) = self.remote.poll_event() {
            peer_core::dispatch(&mut self.remote, ev, &mut crate::NoopListener, now);
        }
    }

    fn handshake(&mut self) {
        self.exchange();
        assert!(
            self.driver.handshaken,
            "the handshake completes in memory: driver {:?} remote {:?}, {} bytes queued",
            self.driver.peer.disconnect_reason(),
            self.remote.disconnect_reason(),
            self.remote.queued_bytes()
        );
        assert_eq!(self.queued(), 0);
    }

    fn ping(&self, nonce: u64) -> Message {
        Message::Ping(Ping { nonce })
    }
}

/// What the driver counts for a message waiting in its backlog.
fn estimate(msg: &Message) -> usize {
    wire_codec::HEADER_LEN + msg.size_hint()
}

fn limits(pause: usize, hard_cap: usize) -> Limits {
    Limits {
        send_pause_bytes: pause,
        max_queued_bytes_per_peer: hard_cap,
        ..Limits::default()
    }
}

#[test]
fn messages_from_handles_wait_for_the_handshake_then_are_fed_in_order() {
    with_rig(limits(1 << 20, 4 << 20), |mut rig| {
        let first = rig.handle.queue_message(rig.ping(1));
        let second = rig.handle.queue_message(rig.ping(2));
        rig.driver.apply_commands(Instant::now());
        rig.driver.feed_backlog();
        // Before the handshake nothing from a handle is encoded.
        assert_eq!(rig.driver.pacing.backlog.len(), 2);
        assert_eq!(rig.driver.pacing.backlog_bytes, 2 * estimate(&rig.ping(1)));
        assert_eq!(rig.driver.tokens.len(), 2);

        rig.handshake();
        rig.driver.after_progress();
        assert!(rig.driver.pacing.backlog.is_empty());
        assert_eq!(rig.driver.pacing.backlog_bytes, 0);
        assert_eq!(rig.queued(), 2 * PING_FRAME);
        assert!(!first.is_answered(), "not written yet");

        rig.write_all();
        rig.driver.drain_events(Instant::now());
        assert_eq!(first.try_take(), Some(Delivery::Sent));
        assert_eq!(second.try_take(), Some(Delivery::Sent));
        assert!(rig.driver.tokens.is_empty());
    });
}

#[test]
fn over_the_pause_mark_messages_wait_and_input_is_not_processed_until_written() {
    // Three pings reach the mark (each found room below it); the fourth waits.
    with_rig(limits(3 * PING_FRAME, 4 << 20), |mut rig| {
        rig.handshake();
        let room = rig.handle.wait_for_room();
        for n in 0..4 {
            rig.handle.queue_message_detached(rig.ping(n));
        }
        rig.driver.apply_commands(Instant::now());
        rig.driver.after_progress();
        assert_eq!(rig.queued(), 3 * PING_FRAME);
        assert_eq!(rig.driver.pacing.backlog.len(), 1);
        assert!(rig.driver.input_paused());
        assert!(!room.is_answered(), "no room while at the mark");

        // The remote's ping arrives while paused: neither answered nor dispatched.
        rig.remote.queue_message(rig.ping(99), None);
        let now = Instant::now();
        let bytes = rig.remote.transmit().to_vec();
        assert_eq!(bytes.len(), PING_FRAME);
        rig.remote.advance_transmit(bytes.len(), now);
        rig.driver.peer.set_input_paused(true);
        rig.driver.peer.handle_input(&bytes, now);
        rig.driver.drain_events(now);
        assert_eq!(
            rig.pings_seen.get(),
            0,
            "input waits while output is over the mark"
        );
        assert_eq!(rig.queued(), 3 * PING_FRAME, "no pong queued while paused");

        // One send drains the output: the backlog is fed, the ping processed (its
        // pong queued) and handed to the listener, and the waiter has room.
        rig.write_all();
        rig.driver.after_progress();
        assert!(rig.driver.pacing.backlog.is_empty());
        assert_eq!(rig.queued(), PING_FRAME);
        rig.driver.drain_events(Instant::now());
        assert_eq!(rig.pings_seen.get(), 1);
        assert!(rig.driver.pacing.held_input.is_empty());
        assert_eq!(rig.queued(), 2 * PING_FRAME, "the last ping and the pong");
        rig.driver.after_progress();
        assert_eq!(room.try_take(), Some(true));
    });
}

#[test]
fn an_answer_that_crosses_the_mark_holds_the_message_behind_it() {
    // The pong peer-core queues for a ping takes the output over the mark: the ping
    // itself waits for the listener until the output drains.
    with_rig(limits(PING_FRAME + 1, 4 << 20), |mut rig| {
        rig.handshake();
        rig.handle.queue_message_detached(rig.ping(1));
        rig.driver.apply_commands(Instant::now());
        assert_eq!(rig.queued(), PING_FRAME);
        assert!(!rig.driver.input_paused());

        rig.remote.queue_message(rig.ping(99), None);
        let now = Instant::now();
        let bytes = rig.remote.transmit().to_vec();
        rig.remote.advance_transmit(bytes.len(), now);
        rig.driver.peer.handle_input(&bytes, now);
        rig.driver.drain_events(now);
        assert!(!rig.driver.pacing.held_input.is_empty());
        assert_eq!(rig.pings_seen.get(), 0);

        rig.write_all();
        rig.driver.drain_events(Instant::now());
        assert!(rig.driver.pacing.held_input.is_empty());
        assert_eq!(rig.pings_seen.get(), 1);
    });
}

#[test]
fn queueing_past_the_hard_cap_disconnects_and_fails_what_never_went_out() {
    let e = estimate(&Message::Ping(Ping { nonce: 0 }));
    let cap = PING_FRAME + 2 * e;
    with_rig(limits(1, cap), move |mut rig| {
        rig.handshake();
        let first = rig.handle.queue_message(rig.ping(0));
        let waiting: Vec<_> = (1..3)
            .map(|n| rig.handle.queue_message(rig.ping(n)))
            .collect();
        rig.driver.apply_commands(Instant::now());
        // The first went to peer-core (room under the mark); two wait, exactly at the cap.
        assert_eq!(rig.queued(), PING_FRAME);
        assert_eq!(rig.driver.pacing.backlog.len(), 2);
        assert!(!rig.driver.peer.is_closed());

        let over = rig.handle.queue_message(rig.ping(3));
        rig.driver.apply_commands(Instant::now());
        assert!(matches!(
            rig.driver.peer.disconnect_reason(),
            Some(DisconnectReason::OutputQueueFull { bytes, limit })
                if *bytes == PING_FRAME + 3 * e && *limit == cap
        ));
        rig.driver.drain_events(Instant::now());
        assert_eq!(over.try_take(), Some(Delivery::Failed));
        assert_eq!(first.try_take(), Some(Delivery::Failed), "never written");
        // The backlog never reached peer-core: its tokens stay with the driver, whose
        // `finish` answers them.
        assert!(waiting.iter().all(|p| !p.is_answered()));
        assert_eq!(rig.driver.tokens.len(), 2);
    });
}

#[test]
fn held_bytes_are_published_to_the_executor_and_given_back() {
    with_rig(limits(1 << 20, 4 << 20), |mut rig| {
        rig.handshake();
        rig.driver.account();
        let memory = |rig: &Rig| rig.driver.core.me.memory.load(Ordering::Relaxed);
        assert_eq!(memory(&rig), 0);
        for n in 0..4 {
            rig.handle.queue_message_detached(rig.ping(n));
        }
        rig.driver.apply_commands(Instant::now());
        rig.driver.account();
        // The frames and, for the write report (`report_io`), the messages: what is
        // allocated, not only what waits.
        assert!(memory(&rig) >= 2 * 4 * PING_FRAME, "{}", memory(&rig));
        assert_eq!(memory(&rig), rig.driver.held_bytes());
        rig.write_all();
        rig.driver.drain_events(Instant::now());
        rig.driver.account();
        assert_eq!(memory(&rig), rig.driver.held_bytes());
        // A paused peer gives back even the allocations kept for reuse.
        rig.driver.peer.shrink_buffers();
        rig.driver.account();
        assert_eq!(memory(&rig), 0);
    });
}

#[test]
fn commands_from_handles_are_applied() {
    with_rig(limits(1 << 20, 4 << 20), |mut rig| {
        rig.handshake();
        let stats = rig.handle.stats_snapshot();
        rig.driver.apply_commands(Instant::now());
        let stats = stats.try_take().flatten().expect("stats answered at once");
        assert_eq!(stats.version, rig.driver.peer.negotiated_version());

        rig.handle.disconnect();
        rig.driver.apply_commands(Instant::now());
        assert!(rig.driver.peer.is_closed());
        assert_eq!(
            rig.driver.peer.disconnect_reason(),
            Some(&DisconnectReason::LocalRequest)
        );
        // A message queued after the close is answered `Failed`, never held.
        let late = rig.handle.queue_message(rig.ping(5));
        rig.driver.apply_commands(Instant::now());
        rig.driver.drain_events(Instant::now());
        assert_eq!(late.try_take(), Some(Delivery::Failed));
        assert!(rig.driver.pacing.backlog.is_empty());
    });
}

#[test]
fn only_an_outbound_v2_attempt_that_ended_before_the_version_falls_back() {
    with_rig(limits(1 << 20, 4 << 20), |mut rig| {
        let now = Instant::now();
        let addr = rig.driver.peer.remote_addr();
        let v2_attempt = |seed| {
            let mut c = config();
            c.v2_transport = true;
            Peer::new_outbound_v2(Arc::new(c), addr, now, 0, seed)
        };

        // An inbound v1 peer never falls back, even if asked to; its end is told.
        rig.driver.v1_fallback = true;
        rig.driver.peer.disconnect(DisconnectReason::RemoteClosed);
        assert!(!rig.driver.falls_back());
        rig.driver.drain_events(now);
        assert_eq!(rig.ends_seen.get(), 1);

        // An outbound v2 attempt closed before any version falls back, and its end
        // is held back from the listener (the v1 retry goes on under the same handle).
        rig.driver.peer = v2_attempt(3);
        rig.driver.peer.disconnect(DisconnectReason::RemoteClosed);
        assert!(rig.driver.falls_back());
        rig.driver.drain_events(now);
        assert_eq!(rig.ends_seen.get(), 1);

        // Only once: after the retry was used, the same end is the end.
        rig.driver.peer = v2_attempt(4);
        rig.driver.v1_fallback = false;
        rig.driver.peer.disconnect(DisconnectReason::RemoteClosed);
        assert!(!rig.driver.falls_back());
        rig.driver.drain_events(now);
        assert_eq!(rig.ends_seen.get(), 2);
    });
}

#[test]
fn shared_frames_from_handles_are_paced_at_their_full_length_and_sent_by_reference() {
    let blob = Message::Unknown {
        command: wire_codec::Command::from_static("blob"),
        payload: bytes::Bytes::from(vec![5u8; 60_000]),
    };
    let frame = peer_core::SharedFrame::new(blob, Network::Regtest).unwrap();
    with_rig(limits(100_000, 4 << 20), move |mut rig| {
        rig.handshake();
        let notes: Vec<_> = (0..3)
            .map(|i| {
                rig.handle.queue_message_detached(rig.ping(i));
                rig.handle.queue_frame(frame.clone())
            })
            .collect();
        rig.driver.apply_commands(Instant::now());
        rig.driver.after_progress();
        // Two pings and frames found room below the mark; the third pair waits (in
        // order), the frame counted in full.
        assert_eq!(rig.queued(), 2 * (PING_FRAME + frame.len()));
        assert_eq!(rig.driver.pacing.backlog.len(), 2);
        assert_eq!(
            rig.driver.pacing.backlog_bytes,
            estimate(&rig.ping(2)) + frame.len()
        );
        // The peer's output points into the frame's one allocation.
        let shared = frame.bytes().as_ptr();
        let by_ref = rig
            .driver
            .peer
            .transmit_chunks()
            .filter(|c| c.as_ptr() == shared && c.len() == frame.len())
            .count();
        assert_eq!(by_ref, 2);
        while rig.driver.peer.wants_write() || !rig.driver.pacing.backlog.is_empty() {
            rig.write_all();
            rig.driver.after_progress();
        }
        rig.driver.drain_events(Instant::now());
        for n in notes {
            assert_eq!(n.try_take(), Some(Delivery::Sent));
        }
        assert_eq!(rig.driver.pacing.backlog_bytes, 0);
    });
}

#[test]
fn one_vectored_send_writes_every_segment() {
    let blob = Message::Unknown {
        command: wire_codec::Command::from_static("blob"),
        payload: bytes::Bytes::from(vec![6u8; 40_000]),
    };
    let frame = peer_core::SharedFrame::new(blob, Network::Regtest).unwrap();
    with_rig(limits(1 << 20, 4 << 20), move |mut rig| {
        rig.handshake();
        rig.driver.peer.queue_message(rig.ping(1), None);
        rig.driver.peer.queue_frame(frame.clone(), None);
        rig.driver.peer.queue_message(rig.ping(2), None);
        assert_eq!(rig.driver.peer.transmit_segments(), 3);
        let total = rig.queued();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The socket's buffer takes 40 KB: one call sends all three segments (glommio's
        // own write would have sent the first 32 bytes).
        let d = &mut *rig.driver;
        match super::poll_write_segments(&mut d.stream, &d.peer, &mut cx) {
            std::task::Poll::Ready(Ok(n)) => assert_eq!(n, total),
            other => panic!("{other:?}"),
        }
    });
}

/// Every peer task holds its driver's `run` future for its whole life: a future kept
/// inline for a rare branch (the v1 redial of a failed v2 attempt, with its connect and
/// timer futures) would cost every idle peer its size. Measured 688 bytes with the redial
/// inline, 192 with it boxed.
#[test]
fn the_peer_task_future_stays_small() {
    fn future_size<F: FnOnce(Box<Driver>) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }
    let size = future_size(Driver::run);
    assert!(size <= 256, "Driver::run future is {size} bytes");
}

#[test]
fn output_completions_go_on_while_input_is_held() {
    // A paused peer's held input must not hold back what its writes completed: a
    // `Sent` (and a `Written`, which carries its message) behind a held message kept
    // every answer a never-reader's kernel had taken alive (874 MB of 1.2 GB with
    // 10,000 of them).
    with_rig(limits(1, 4 << 20), |mut rig| {
        rig.handshake();
        let sent = rig.handle.queue_message(rig.ping(1));
        rig.driver.apply_commands(Instant::now());
        assert_eq!(rig.queued(), PING_FRAME);

        // The remote's ping: its pong takes the output over the mark, the ping waits.
        rig.remote.queue_message(rig.ping(99), None);
        let now = Instant::now();
        let bytes = rig.remote.transmit().to_vec();
        rig.remote.advance_transmit(bytes.len(), now);
        rig.driver.peer.handle_input(&bytes, now);
        rig.driver.drain_events(now);
        assert_eq!(rig.driver.pacing.held_input.len(), 1);
        assert_eq!(rig.queued(), 2 * PING_FRAME);

        // The socket takes our ping only: the output stays over the mark, the ping
        // from the remote still waits, and ours is answered `Sent` all the same.
        rig.driver.peer.advance_transmit(PING_FRAME, now);
        rig.driver.drain_events(now);
        assert_eq!(sent.try_take(), Some(Delivery::Sent));
        assert_eq!(rig.pings_seen.get(), 0, "input still waits");
        assert_eq!(rig.driver.pacing.held_input.len(), 1);

        rig.write_all();
        rig.driver.drain_events(Instant::now());
        assert!(rig.driver.pacing.held_input.is_empty());
        assert_eq!(rig.pings_seen.get(), 1);
    });
}
