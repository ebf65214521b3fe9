//! The peer state machine: one connection's protocol, driven by bytes, time and commands.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tracing::{debug, trace, Level, Span};
use wire_codec::message::{Message, Reject, ServiceFlags, Version};
use wire_codec::{version, Command, Context};

use crate::config::Config;
use crate::event::Event;
use crate::frame::{SharedFrame, Wire};
use crate::handshake::Phase;
use crate::inventory::InventoryState;
use crate::keepalive::KeepAlive;
use crate::log::{Hex, Summary};
use crate::nonce::NonceSet;
use crate::outbound::{Encoding, Outgoing, OutputQueue, PushError};
use crate::reason::DisconnectReason;
use crate::stall::StallDetector;
use crate::stats::{Features, Stats, StatsSnapshot};
use crate::transport::{Inbound, Next, Side as V2Side, Transport, TransportVersion};

/// Frames read while the application decides on the remote's version are held, up to
/// this many; then decoding pauses until the decision (the bytes wait in the peer's
/// receive buffer and are processed when it resumes).
const MAX_HELD_FRAMES: usize = 16;

/// Frames are decoded at most this many events ahead of the driver's
/// [`Peer::poll_event`]: a read full of tiny requests waits in the receive buffer as
/// bytes, not as decoded messages, and a driver pausing input
/// ([`Peer::set_input_paused`]) stops processing within this many messages.
const MAX_EVENTS_AHEAD: usize = 32;

/// Bytes a paused peer holds before it disconnects ([`DisconnectReason::TooMuchInput`]):
/// room for that many more frames at the pre-handshake payload cap.
fn undecided_input_limit(cfg: &Config) -> usize {
    MAX_HELD_FRAMES * (wire_codec::HEADER_LEN + cfg.max_pre_handshake_payload as usize)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One peer connection's protocol state (btcd `peer.Peer`), without I/O.
///
/// The driver (a runtime, a test, anyone's event loop) feeds it received bytes with
/// [`Peer::handle_read`], writes what [`Peer::transmit`] holds and reports it with
/// [`Peer::advance_transmit`], calls [`Peer::handle_timeout`] at
/// [`Peer::poll_timeout`], and drains [`Peer::poll_event`] after each of those calls.
/// Time is always a parameter; the peer never reads a clock.
///
/// ```
/// use std::{sync::Arc, time::{Duration, Instant}};
/// use bytes::BytesMut;
/// use peer_core::{dispatch, Config, Listener, NonceSet, Peer};
///
/// struct App;
/// impl Listener for App {}
///
/// let mut cfg = Config::new(wire_codec::Network::Regtest);
/// // Both ends live in this process and share one config: they would otherwise
/// // detect each other's version nonce as a connection to self.
/// cfg.allow_self_connections = true;
/// cfg.nonces = Some(Arc::new(NonceSet::new()));
/// let cfg = Arc::new(cfg);
/// let now = Instant::now();
/// let mut a = Peer::new_outbound(cfg.clone(), "127.0.0.1:18444".parse().unwrap(), now, 1_700_000_000, 1);
/// let mut b = Peer::new_inbound(cfg, "127.0.0.1:50000".parse().unwrap(), now, 1_700_000_000, 2);
/// let (mut a_in, mut b_in) = (BytesMut::new(), BytesMut::new());
/// for _ in 0..4 {
///     // a -> b
///     b_in.extend_from_slice(a.transmit());
///     let n = a.transmit().len();
///     a.advance_transmit(n, now);
///     b.handle_read(&mut b_in, now);
///     // b -> a
///     a_in.extend_from_slice(b.transmit());
///     let n = b.transmit().len();
///     b.advance_transmit(n, now);
///     a.handle_read(&mut a_in, now);
///     for p in [&mut a, &mut b] {
///         while let Some(ev) = p.poll_event() {
///             dispatch(p, ev, &mut App, now);
///         }
///     }
/// }
/// assert!(a.handshake_complete() && b.handshake_complete());
/// assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(120))); // first ping
/// ```
#[derive(Debug)]
pub struct Peer {
    pub(crate) config: Arc<Config>,
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) inbound: bool,
    pub(crate) span: Span,
    pub(crate) rng: SmallRng,
    pub(crate) phase: Phase,
    pub(crate) created: Instant,
    pub(crate) created_unix: u64,
    /// The latest instant any call brought.
    pub(crate) last_now: Instant,
    pub(crate) negotiate_deadline: Instant,
    pub(crate) established_at: Option<Instant>,
    /// The protocol version in use: ours until negotiated, then min(ours, theirs).
    pub(crate) version: u32,
    /// Bytes to frames and back; owns the receive buffer.
    pub(crate) transport: Transport,
    /// Outbound v2: our version message waits for the v2 session.
    pub(crate) v2_version_pending: bool,
    pub(crate) remote_version: Option<Box<Version>>,
    pub(crate) services: ServiceFlags,
    pub(crate) our_nonce: u64,
    pub(crate) nonces: Arc<NonceSet>,
    pub(crate) features: Features,
    pub(crate) verack_received: bool,
    pub(crate) output: OutputQueue,
    /// Messages queued before the handshake completed, sent after it.
    pub(crate) held: VecDeque<(Outgoing, Option<u64>)>,
    /// Messages to send between our `version` and our `verack` (BIP434 `feature`
    /// messages and the like), queued while the version decision is pending.
    pub(crate) handshake_extras: Vec<Message>,
    /// Transactions (txid, wtxid) queued for announcement before the handshake told
    /// which id the remote wants.
    pub(crate) pending_wtxids: Vec<(wire_codec::Hash256, wire_codec::Hash256)>,
    pub(crate) held_bytes: usize,
    /// Outbound v2: keep `held` if the attempt fails before the remote's version, for
    /// [`Peer::v1_retry`] (see [`Peer::keep_queue_for_v1_retry`]).
    pub(crate) keep_held_for_v1_retry: bool,
    /// Frames read while the version decision is pending.
    pub(crate) held_frames: VecDeque<Inbound>,
    pub(crate) inventory: InventoryState,
    pub(crate) stall: StallDetector,
    pub(crate) keepalive: KeepAlive,
    pub(crate) stats: Stats,
    pub(crate) events: VecDeque<Event>,
    /// Backpressure from the driver ([`Peer::set_input_paused`]): no frame is
    /// processed while set.
    pub(crate) input_paused: bool,
    /// Processing stopped with whole frames possibly left in the receive buffer
    /// (paused, or [`MAX_EVENTS_AHEAD`] events undelivered); [`Peer::poll_event`]
    /// resumes it.
    pub(crate) input_left: bool,
    /// Release idle buffers at the next opportunity (set by timers and at the end of
    /// the handshake: moments when the peer is likely quiet).
    pub(crate) trim_events: bool,
    pub(crate) trim_output: bool,
    pub(crate) reason: Option<DisconnectReason>,
}

impl Peer {
    /// A peer for a connection we made. Our version message is queued at once (btcd
    /// `NewOutboundPeer` + `AssociateConnection`). If the newest-block or address
    /// provider fails, the peer is closed immediately with that reason.
    ///
    /// `unix_time` is the wall clock (seconds since 1970) at `now`; later wall-clock
    /// values are derived from it and the instants passed in. `rng_seed` seeds the
    /// peer's random numbers (nonces), so a seeded run is reproducible.
    pub fn new_outbound(
        config: Arc<Config>,
        remote: SocketAddr,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
    ) -> Peer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Peer::new_outbound_with_id(config, remote, now, unix_time, rng_seed, id)
    }

    fn new_outbound_with_id(
        config: Arc<Config>,
        remote: SocketAddr,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
        id: u64,
    ) -> Peer {
        let mut p = Peer::new(config, remote, false, now, unix_time, rng_seed, id);
        let span = p.span.clone();
        let _g = span.enter();
        debug!("new outbound peer");
        p.send_our_version();
        p
    }

    /// A peer for a connection we made that speaks BIP324 v2: our key (and random
    /// garbage) is queued at once, our version message as soon as the v2 session is
    /// established. Use it when the remote advertises NODE_P2P_V2 or the application
    /// asks for v2; if the connection ends before the remote's version arrived
    /// ([`Peer::v2_failed_before_version`]), reconnect once with [`Peer::new_outbound`],
    /// as Bitcoin Core does. Parameters as [`Peer::new_outbound`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Instant;
    /// use peer_core::{dispatch, Config, Listener, NonceSet, Peer, transport::TransportVersion};
    /// use wire_codec::Network;
    ///
    /// struct Quiet;
    /// impl Listener for Quiet {}
    /// // Each end its own nonce set: in one process they would see each other's nonces.
    /// let cfg = || {
    ///     let mut c = Config::new(Network::Regtest);
    ///     c.nonces = Some(Arc::new(NonceSet::new()));
    ///     Arc::new(c)
    /// };
    /// let now = Instant::now();
    /// let addr = "127.0.0.1:18444".parse().unwrap();
    /// let mut a = Peer::new_outbound_v2(cfg(), addr, now, 1_700_000_000, 1);
    /// let mut b = Peer::new_inbound(cfg(), addr, now, 1_700_000_000, 2);
    /// for _ in 0..8 {
    ///     let bytes = a.transmit().to_vec();
    ///     a.advance_transmit(bytes.len(), now);
    ///     b.handle_input(&bytes, now);
    ///     while let Some(ev) = b.poll_event() {
    ///         dispatch(&mut b, ev, &mut Quiet, now);
    ///     }
    ///     let bytes = b.transmit().to_vec();
    ///     b.advance_transmit(bytes.len(), now);
    ///     a.handle_input(&bytes, now);
    ///     while let Some(ev) = a.poll_event() {
    ///         dispatch(&mut a, ev, &mut Quiet, now);
    ///     }
    /// }
    /// assert!(a.handshake_complete() && b.handshake_complete());
    /// assert_eq!(a.transport_version(), TransportVersion::V2);
    /// assert_eq!(a.session_id(), b.session_id());
    /// ```
    pub fn new_outbound_v2(
        config: Arc<Config>,
        remote: SocketAddr,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
    ) -> Peer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut p = Peer::new(config, remote, false, now, unix_time, rng_seed, id);
        let span = p.span.clone();
        let _g = span.enter();
        debug!("new outbound v2 peer");
        let network = p.config.network;
        let max = p
            .config
            .max_pre_handshake_payload
            .min(network.max_payload());
        match Transport::v2(V2Side::Initiator, network, max) {
            Some(t) => {
                p.transport = t;
                p.v2_version_pending = true;
                p.flush_transport();
            }
            None => p.send_our_version(),
        }
        p
    }

    /// A peer for a connection the remote made. It waits for the remote's version.
    /// Parameters as [`Peer::new_outbound`].
    pub fn new_inbound(
        config: Arc<Config>,
        remote: SocketAddr,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
    ) -> Peer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let p = Peer::new(config, remote, true, now, unix_time, rng_seed, id);
        let _g = p.span.enter();
        debug!("new inbound peer");
        drop(_g);
        p
    }

    pub(crate) fn new(
        config: Arc<Config>,
        remote: SocketAddr,
        inbound: bool,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
        id: u64,
    ) -> Peer {
        let dir = if inbound { "inbound" } else { "outbound" };
        let span = tracing::debug_span!("peer", id, addr = %remote, dir);
        let network = config.network;
        let max = config.max_pre_handshake_payload.min(network.max_payload());
        // An inbound peer with v2 on starts as a v2 responder; the first 16 bytes decide.
        let transport = if inbound && config.v2_transport {
            Transport::inbound_v2_capable(network, max)
        } else {
            Transport::v1(network, max)
        };
        let nonces = config.nonces.clone().unwrap_or_else(NonceSet::global);
        Peer {
            id,
            remote,
            inbound,
            span,
            rng: SmallRng::seed_from_u64(rng_seed),
            phase: Phase::AwaitingVersion,
            created: now,
            created_unix: unix_time,
            last_now: now,
            negotiate_deadline: now + config.timeouts.negotiate,
            established_at: None,
            version: config.max_protocol_version(),
            transport,
            v2_version_pending: false,
            remote_version: None,
            services: config.services,
            our_nonce: 0,
            nonces,
            features: Features::default(),
            verack_received: false,
            output: OutputQueue::default(),
            held: VecDeque::new(),
            handshake_extras: Vec::new(),
            pending_wtxids: Vec::new(),
            held_bytes: 0,
            keep_held_for_v1_retry: false,
            held_frames: VecDeque::new(),
            inventory: InventoryState::default(),
            stall: StallDetector::new(),
            keepalive: KeepAlive::default(),
            stats: Stats::default(),
            events: VecDeque::new(),
            input_paused: false,
            input_left: false,
            trim_events: false,
            trim_output: false,
            reason: None,
            config,
        }
    }

    // ----------------------------------------------------------------------------
    // Identity and state
    // ----------------------------------------------------------------------------

    /// Process-unique id (assigned at creation; btcd assigns it when the remote
    /// version arrives).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The remote socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the remote connected to us.
    pub fn is_inbound(&self) -> bool {
        self.inbound
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The tracing span carrying this peer's id, address and direction.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Where the peer is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the handshake completed (and the peer has not closed since).
    pub fn handshake_complete(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Whether the peer has disconnected. The driver closes the connection after
    /// writing what [`Peer::transmit`] still holds.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Why the peer disconnected, once it has.
    pub fn disconnect_reason(&self) -> Option<&DisconnectReason> {
        self.reason.as_ref()
    }

    /// Whether the remote's version arrived (btcd `VersionKnown`).
    pub fn version_known(&self) -> bool {
        self.remote_version.is_some()
    }

    /// Whether the remote's verack arrived (btcd `VerAckReceived`).
    pub fn verack_received(&self) -> bool {
        self.verack_received
    }

    /// The negotiated protocol version: min(ours, theirs), or ours until the remote's
    /// version arrived (btcd `ProtocolVersion`).
    pub fn negotiated_version(&self) -> u32 {
        self.version
    }

    /// The remote's version message.
    pub fn remote_version(&self) -> Option<&Version> {
        self.remote_version.as_deref()
    }

    /// The remote's services, or ours until its version arrived (btcd `Services`).
    pub fn services(&self) -> ServiceFlags {
        self.services
    }

    /// The remote's user agent (empty until its version arrived).
    pub fn user_agent(&self) -> &str {
        self.remote_version
            .as_deref()
            .map(|v| v.user_agent.as_str())
            .unwrap_or("")
    }

    /// What was negotiated.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The remote's best known height (btcd `LastBlock`).
    pub fn last_block(&self) -> i32 {
        self.stats.last_block
    }

    /// The remote's height when it connected (btcd `StartingHeight`).
    pub fn starting_height(&self) -> i32 {
        self.stats.starting_height
    }

    /// The last block the remote announced (btcd `LastAnnouncedBlock`).
    pub fn last_announced_block(&self) -> Option<wire_codec::Hash256> {
        self.stats.last_announced_block
    }

    /// Remote clock minus ours, in seconds (btcd `TimeOffset`).
    pub fn time_offset(&self) -> i64 {
        self.stats.time_offset
    }

    /// Raises the remote's known height; lower values are ignored (btcd
    /// `UpdateLastBlockHeight`).
    pub fn update_last_block_height(&mut self, height: i32) {
        self.stats.update_last_block_height(height);
    }

    /// Records the last block the remote announced (btcd `UpdateLastAnnouncedBlock`).
    /// The peer also does this itself for block `inv`s and `headers` it receives, and
    /// never moves it backwards (see [`crate::stats`]).
    pub fn update_last_announced_block(&mut self, hash: wire_codec::Hash256) {
        self.stats.last_announced_block = Some(hash);
    }

    /// Tells the peer the height of a block of the remote's chain (typically the one
    /// it just announced, once the application has connected it): raises
    /// [`last_block`](Self::last_block) as [`update_last_block_height`] does, and makes
    /// the block the anchor from which `headers` announcements are followed — each
    /// `headers` message whose first header builds on the anchor moves the height on
    /// by its count without the application's help (BIP130 announcements, and each
    /// batch of a header sync). Heights are advisory, as btcd's: the headers are not
    /// validated here.
    ///
    /// [`update_last_block_height`]: Self::update_last_block_height
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::{Hash256, Network};
    /// let mut peer = Peer::new_outbound(
    ///     Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:18444".parse().unwrap(),
    ///     std::time::Instant::now(),
    ///     1_700_000_000,
    ///     1,
    /// );
    /// peer.update_last_block(Hash256([1; 32]), 500);
    /// assert_eq!(peer.last_block(), 500);
    /// ```
    pub fn update_last_block(&mut self, hash: wire_codec::Hash256, height: i32) {
        self.stats.height_anchor = Some((hash, height));
        self.stats.update_last_block_height(height);
    }

    /// A copy of the statistics.
    pub fn stats_snapshot(&self, now: Instant) -> StatsSnapshot {
        let _ = now;
        StatsSnapshot {
            id: self.id,
            addr: self.remote,
            inbound: self.inbound,
            services: self.services,
            last_send: self.stats.last_send,
            last_recv: self.stats.last_recv,
            bytes_sent: self.stats.bytes_sent,
            bytes_received: self.stats.bytes_received,
            conn_time: self.created,
            conn_time_unix: self.created_unix,
            time_offset: self.stats.time_offset,
            version: self
                .remote_version
                .as_deref()
                .map(|v| v.version)
                .unwrap_or(0),
            negotiated_version: self.version,
            user_agent: self.user_agent().to_string(),
            starting_height: self.stats.starting_height,
            last_block: self.stats.last_block,
            last_announced_block: self.stats.last_announced_block,
            last_ping_nonce: self.stats.last_ping_nonce,
            last_ping_time: self.stats.last_ping_time,
            last_ping_latency: self.stats.last_ping_latency,
            features: self.features,
            messages_received: self.stats.messages_received,
            messages_sent: self.stats.messages_sent,
            unknown_messages: self.stats.unknown_messages,
            ignored_messages: self.stats.ignored_messages,
            transport: self.transport_version(),
            session_id: self.session_id(),
        }
    }

    /// The transport the connection speaks: v2 once an outbound v2 peer is created or an
    /// inbound one's first bytes showed v2 (an inbound v2-capable peer reports v2 until
    /// its first 16 bytes show v1).
    pub fn transport_version(&self) -> TransportVersion {
        self.transport.version()
    }

    /// BIP324's session id once a v2 session is established.
    pub fn session_id(&self) -> Option<[u8; 32]> {
        self.transport
            .as_v2()
            .and_then(|l| l.session().session_id())
    }

    /// An outbound v2 connection that ended before the remote's version message
    /// arrived: the remote may not speak v2, and Bitcoin Core reconnects once in v1.
    pub fn v2_failed_before_version(&self) -> bool {
        !self.inbound
            && self.is_closed()
            && self.remote_version.is_none()
            && self.transport.as_v2().is_some_and(|l| l.is_initiator())
    }

    /// For a caller that reconnects in v1 when this outbound v2 attempt fails before the
    /// remote's version (as the runtime does): with `keep` on, the messages queued
    /// before the handshake are then kept for [`Peer::v1_retry`] instead of failed, so
    /// no queued message is lost to the fallback. Turning it off again on such a failed
    /// peer (the caller gives up on the retry) fails them now: their
    /// [`Event::Failed`]s follow.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, DisconnectReason, Event, Peer};
    /// # use wire_codec::{message::Ping, Message, Network};
    /// let cfg = Arc::new(Config::new(Network::Regtest));
    /// let now = Instant::now();
    /// let addr = "127.0.0.1:18444".parse().unwrap();
    /// let mut p = Peer::new_outbound_v2(cfg, addr, now, 1_700_000_000, 1);
    /// p.keep_queue_for_v1_retry(true);
    /// p.queue_message(Message::Ping(Ping { nonce: 5 }), Some(9));
    /// p.disconnect(DisconnectReason::LocalRequest); // e.g. the remote dropped our key
    /// assert!(p.v2_failed_before_version());
    /// let mut v1 = p.v1_retry(now, 1_700_000_000, 2).unwrap();
    /// assert_eq!(v1.id(), p.id());
    /// assert_eq!(v1.queued_messages(), 2); // our version, and the ping (token 9 answered later)
    /// ```
    pub fn keep_queue_for_v1_retry(&mut self, keep: bool) {
        self.keep_held_for_v1_retry = keep;
        if !keep && self.is_closed() {
            self.fail_held();
        }
    }

    /// The v1 reconnect of an outbound v2 attempt that failed before the remote's
    /// version ([`Peer::v2_failed_before_version`]), as Bitcoin Core does: a new
    /// outbound v1 peer for the same remote and configuration, under the same id (one
    /// peer to the application, now on a new connection), that takes over the messages
    /// kept by [`Peer::keep_queue_for_v1_retry`] with their notifications. `None` (and
    /// nothing taken) if this peer is no such attempt. Parameters as
    /// [`Peer::new_outbound`]; example at [`Peer::keep_queue_for_v1_retry`].
    pub fn v1_retry(&mut self, now: Instant, unix_time: u64, rng_seed: u64) -> Option<Peer> {
        if !self.v2_failed_before_version() {
            return None;
        }
        let config = self.config.clone();
        let mut p =
            Peer::new_outbound_with_id(config, self.remote, now, unix_time, rng_seed, self.id);
        self.keep_held_for_v1_retry = false;
        self.held_bytes = 0;
        for (out, token) in core::mem::take(&mut self.held) {
            match out {
                Outgoing::Message(msg, encoding) => {
                    p.queue_message_with_encoding(msg, encoding, token)
                }
                Outgoing::Frame(frame) => p.queue_frame(frame, token),
            }
        }
        Some(p)
    }

    /// Fails every message held for the handshake.
    fn fail_held(&mut self) {
        for (_, token) in core::mem::take(&mut self.held) {
            if let Some(t) = token {
                self.events.push_back(Event::Failed(t));
            }
        }
        self.held_bytes = 0;
    }

    /// Moves the transport's own bytes (the v2 handshake) into the output, and sends
    /// our version once an outbound v2 session is up.
    fn flush_transport(&mut self) {
        self.stats.bytes_received += self.transport.take_uncounted() as u64;
        if let Some(bytes) = self.transport.take_handshake_bytes() {
            self.output.push_raw(&bytes);
        }
        if self.v2_version_pending
            && self
                .transport
                .as_v2()
                .is_some_and(|l| l.session().is_ready())
        {
            self.v2_version_pending = false;
            debug!("v2 session established");
            self.send_our_version();
        }
    }

    // ----------------------------------------------------------------------------
    // Input
    // ----------------------------------------------------------------------------

    /// Takes bytes read from the connection (any amount, any split) and reacts to every
    /// whole frame they complete. The bytes are copied once into the peer's own receive
    /// buffer; frames are split off it without copying, and a partial frame waits there
    /// for the next call. Nothing is ever left for the driver to hand in again: while
    /// the application decides on the remote's version the peer pauses, and it resumes
    /// by itself from its buffer on [`Peer::accept_version`].
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let mut cfg = Config::new(Network::Regtest);
    /// cfg.v2_transport = false; // v1 framing only (with v2 on, 16 bytes decide first)
    /// let mut peer = Peer::new_inbound(Arc::new(cfg),
    ///     "127.0.0.1:50000".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// peer.handle_input(&Network::Regtest.magic(), Instant::now()); // part of a header
    /// assert_eq!(peer.read_hint(), 20);
    /// assert_eq!(peer.buffered_input(), 4);
    /// ```
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.is_closed() {
            self.touch(now);
            return;
        }
        let hint = self.transport.bytes_needed();
        self.transport.buffer().extend(data, hint);
        self.process_received(now);
    }

    /// [`Peer::handle_input`] for a driver that reads into its own `BytesMut`: takes
    /// every byte of `buf`, leaving it empty — without copying when the peer holds no
    /// partial frame (the buffer's allocation moves into the peer).
    pub fn handle_read(&mut self, buf: &mut BytesMut, now: Instant) {
        if self.is_closed() {
            self.touch(now);
            return;
        }
        let hint = self.transport.bytes_needed();
        self.transport.buffer().absorb(buf, hint);
        self.process_received(now);
    }

    /// The peer's receive buffer, for a driver that reads the socket straight into it
    /// (e.g. tokio's `read_buf`), saving the copy of [`Peer::handle_read`]; call
    /// [`Peer::process_received`] after each read.
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        self.transport.buffer().bytes_mut()
    }

    /// Reacts to every whole frame in the receive buffer (after reading into
    /// [`Peer::receive_buffer`]); what [`Peer::handle_read`] does after copying.
    pub fn process_received(&mut self, now: Instant) {
        self.touch(now);
        if self.is_closed() {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        self.input_left = false;
        loop {
            if self.is_closed() {
                break;
            }
            if self.input_paused || self.events.len() >= MAX_EVENTS_AHEAD {
                self.input_left = true;
                break;
            }
            if self.phase == Phase::AwaitingDecision && self.held_frames.len() >= MAX_HELD_FRAMES {
                let limit = undecided_input_limit(&self.config);
                let bytes = self.transport.buffered();
                if bytes > limit {
                    self.fail(DisconnectReason::TooMuchInput { bytes, limit }, None);
                }
                break;
            }
            let next = self.transport.next_frame();
            self.flush_transport();
            match next {
                Next::NeedMore => break,
                Next::Failed(e) => {
                    self.fail(DisconnectReason::Transport(e), None);
                    break;
                }
                Next::Frame(frame) => {
                    self.stats.bytes_received += frame.wire_len as u64;
                    if self.phase == Phase::AwaitingDecision {
                        self.held_frames.push_back(frame);
                    } else {
                        self.on_frame(frame, now);
                    }
                }
                Next::Fault(f) => {
                    self.stats.bytes_received += f.bytes as u64;
                    self.on_decode_error(f.error, f.command, f.bytes, now);
                    // A tolerated error moved past its frame, so the loop progresses;
                    // anything else repeats forever and is left for the (closed) peer.
                    if !f.progressed {
                        break;
                    }
                }
            }
        }
        self.transport.settle();
    }

    /// How many more bytes would complete the frame in progress (at least 1 while the
    /// peer reads; 0 once closed). A driver can size its reads by it.
    pub fn read_hint(&self) -> usize {
        if self.is_closed() {
            0
        } else {
            self.transport.bytes_needed()
        }
    }

    /// Bytes received and not yet processed (a partial frame, or input waiting while
    /// the peer is paused for the version decision).
    pub fn buffered_input(&self) -> usize {
        self.transport.buffered()
    }

    /// Bytes of memory this peer holds for its connection, for a process-wide memory
    /// budget: the whole allocations of its output buffer and receive buffer (not
    /// only the bytes in them), messages kept for [`Event::Written`], messages held
    /// for the handshake, and its undelivered events. A few field reads: a driver may
    /// ask at every pass.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let mut peer = Peer::new_inbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:50000".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// peer.handle_input(&[0u8; 10], Instant::now());
    /// assert!(peer.memory_held() >= peer.buffered_input());
    /// ```
    pub fn memory_held(&self) -> usize {
        self.output.memory()
            + self.transport.buffer_capacity()
            + self.held_bytes
            + self.events.capacity() * std::mem::size_of::<Event>()
    }

    /// Gives back memory a paused peer does not need while it waits: output waiting
    /// in a much larger allocation is moved into one of its own size, and the event
    /// queue and receive buffer are fitted to what they hold. For a driver whose
    /// socket stopped taking bytes (the remote is not reading): what waits then may
    /// wait long, and ten thousand such peers each keeping a doubled buffer add up.
    pub fn shrink_buffers(&mut self) {
        self.output.shrink();
        self.events.shrink_to_fit();
        self.transport.settle();
    }

    /// Backpressure (Core's `fPauseSend`): while paused, received frames stay in the
    /// receive buffer unprocessed and [`Peer::wants_read`] is false; unpausing resumes
    /// processing by itself at the next [`Peer::poll_event`]. A driver pauses a peer
    /// whose unsent output is over its mark, so a remote that never reads cannot make
    /// it queue more answers.
    pub fn set_input_paused(&mut self, paused: bool) {
        self.input_paused = paused;
    }

    /// Whether the peer takes input now. It is false once closed, and while it waits
    /// for the application's version decision with its input buffer full; a driver
    /// may stop reading then (backpressure), or keep handing bytes in up to a bound
    /// past which the peer disconnects ([`DisconnectReason::TooMuchInput`]).
    pub fn wants_read(&self) -> bool {
        let paused = self.input_paused
            || (self.phase == Phase::AwaitingDecision && self.held_frames.len() >= MAX_HELD_FRAMES);
        !self.is_closed() && !paused
    }

    pub(crate) fn on_frame(&mut self, frame: Inbound, now: Instant) {
        let cmd = frame.command;
        let bytes = frame.wire_len;
        if tracing::enabled!(Level::TRACE) {
            trace!(payload = %Hex(&frame.payload), "received {cmd}");
        }
        // Ownership: a small payload whose decoded value keeps slices of it gets its
        // own allocation, so a kept transaction cannot pin the read buffer it arrived
        // in with many other frames (big ones, blocks, stay zero-copy).
        let payload = if frame.payload.len() < wire_codec::message::OWN_BELOW
            && Message::keeps_payload(cmd)
        {
            bytes::Bytes::copy_from_slice(&frame.payload)
        } else {
            frame.payload
        };
        let msg = match Message::decode(cmd, payload, &self.ctx()) {
            Ok(m) => m,
            Err(e) => {
                self.on_decode_error(e, Some(cmd), bytes, now);
                return;
            }
        };
        if self.config.report_io {
            self.events.push_back(Event::Read {
                bytes,
                command: Some(cmd),
                error: None,
            });
        }
        debug!("received {cmd} {}", Summary(&msg));
        self.stats.last_recv = Some(now);
        self.stats.messages_received += 1;
        self.keepalive.on_receive(now);
        self.stall.on_received(cmd);
        match self.phase {
            Phase::AwaitingVersion => self.on_message_before_version(msg, now),
            Phase::AwaitingVerack => self.on_message_before_verack(msg, now),
            Phase::Established => self.on_message(msg, now),
            // Frames are held during the decision, and nothing is read once closed.
            Phase::AwaitingDecision | Phase::Closed => {}
        }
    }

    /// Runs `f` with the message the next event carries, if the next event is the
    /// message of a frame just reported read (`Event::Version` or `Event::Message`),
    /// leaving the event in place: [`dispatch`](crate::dispatch) hands it to
    /// `Listener::on_read` without copying it.
    pub(crate) fn with_next_message<R>(
        &mut self,
        f: impl FnOnce(&mut Peer, Option<&Message>) -> R,
    ) -> R {
        match self.events.pop_front() {
            Some(Event::Message(m)) => {
                let r = f(self, Some(&m));
                self.events.push_front(Event::Message(m));
                r
            }
            Some(Event::Version(v)) => {
                let m = Message::Version(v);
                let r = f(self, Some(&m));
                if let Message::Version(v) = m {
                    self.events.push_front(Event::Version(v));
                }
                r
            }
            other => {
                if let Some(ev) = other {
                    self.events.push_front(ev);
                }
                f(self, None)
            }
        }
    }

    /// The dispatcher of an established peer: each rule reacts to the messages it
    /// governs (in its own file), and a rule that consumes a message — answers it in
    /// full, ignores it, or disconnects — stops it there. What passes every rule goes
    /// to the application.
    pub(crate) fn on_message(&mut self, msg: Message, now: Instant) {
        if self.handshake_rule(&msg) || self.bloom_rule(&msg) || !self.gate_incoming(&msg) {
            return;
        }
        self.keepalive_on_message(&msg, now);
        self.inventory_on_message(&msg);
        self.stats_on_message(&msg);
        self.events.push_back(Event::Message(msg));
    }

    // ----------------------------------------------------------------------------
    // Output
    // ----------------------------------------------------------------------------

    /// The first run of encoded bytes waiting to be written (empty when nothing waits).
    /// The output is a sequence of segments — small messages batched in one buffer,
    /// large [shared frames](Peer::queue_frame) by reference — and this is the first
    /// of them: a driver writing only `transmit()` and reporting it with
    /// [`Peer::advance_transmit`] goes round until [`Peer::wants_write`] is false, one
    /// segment per write; [`Peer::transmit_vectored`] hands all of them to one
    /// vectored write. After a disconnect it may still hold a final reject: write it
    /// best-effort, then close.
    #[inline]
    pub fn transmit(&self) -> &[u8] {
        self.output.bytes()
    }

    /// Fills `bufs` with the segments waiting to be written, in order, for one
    /// vectored write (`writev`, tokio's `poll_write_vectored`); returns how many
    /// slots were filled (0 when nothing waits; at most `bufs.len()`). Report what the
    /// write took with [`Peer::advance_transmit`] — any count, across segments.
    ///
    /// ```
    /// # use std::{io::IoSlice, sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let mut peer = Peer::new_outbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:18444".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// let mut slots = [IoSlice::new(&[]); 16];
    /// let n = peer.transmit_vectored(&mut slots);
    /// let total: usize = slots[..n].iter().map(|s| s.len()).sum();
    /// assert_eq!(total, peer.queued_bytes()); // our version message
    /// ```
    pub fn transmit_vectored<'a>(&'a self, bufs: &mut [std::io::IoSlice<'a>]) -> usize {
        self.output.fill_vectored(bufs)
    }

    /// The segments waiting to be written, in order (none empty): what
    /// [`Peer::transmit_vectored`] hands out, as slices.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let peer = Peer::new_outbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:18444".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// let bytes: Vec<u8> = peer.transmit_chunks().flatten().copied().collect();
    /// assert_eq!(bytes.len(), peer.queued_bytes());
    /// assert_eq!(peer.transmit_segments(), 1); // small messages share one buffer
    /// ```
    pub fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.output.chunks()
    }

    /// How many segments wait to be written (1 when only small messages wait).
    pub fn transmit_segments(&self) -> usize {
        self.output.segment_count()
    }

    /// Bytes waiting in the output queue (what [`Config::max_output_bytes`] bounds),
    /// every segment counted: a shared frame counts its full length in each peer that
    /// holds it.
    pub fn queued_bytes(&self) -> usize {
        self.output.len()
    }

    /// Messages queued and not yet completely written (held ones included).
    pub fn queued_messages(&self) -> usize {
        self.output.pending_messages() + self.held.len()
    }

    /// Whether [`Peer::transmit`] holds bytes.
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Reports that the first `written` bytes of the output were written — of
    /// [`Peer::transmit`], or across the segments of [`Peer::transmit_vectored`]
    /// (values beyond what is buffered are clamped). Messages whose last byte is now
    /// written produce [`Event::Sent`] (if queued with a token) and [`Event::Written`].
    pub fn advance_transmit(&mut self, written: usize, now: Instant) {
        self.touch(now);
        let n = self.output.advance(written);
        self.stats.bytes_sent += n as u64;
        let stall_on = self.phase == Phase::Established;
        while let Some(m) = self.output.pop_completed() {
            let kept = self.output.take_kept(&m);
            self.stats.last_send = Some(now);
            self.stats.messages_sent += 1;
            if let Some(message) = kept {
                self.events.push_back(Event::Written {
                    bytes: m.len as usize,
                    message,
                });
            }
            if let Some(t) = m.token {
                self.events.push_back(Event::Sent(t));
            }
            // Our handshake version (always the stream's first frame) can finish
            // writing after the handshake completed — the remote sent version and
            // verack back to back and both were read before the driver wrote: its
            // verack already came, so no deadline is armed for it. A version the
            // application queues later still expects a verack (btcd's table).
            let handshake_version = m.end == u64::from(m.len);
            if stall_on && !handshake_version {
                // The response window opens when the request is fully handed to the
                // socket (btcd: when its writer picks it up).
                self.stall.on_sent(m.command, now, &self.config.timeouts);
            }
        }
        self.trim_output_if_idle();
    }

    /// Queues a message. Messages go out in order. Before the handshake completes
    /// they are held and encoded after it, at the negotiated version (btcd holds them
    /// in its queue too). `notify` is answered exactly once: [`Event::Sent`] when the
    /// last byte was written, or [`Event::Failed`] if the peer closes first (at once if
    /// it already has — btcd signals the done channel), or if the message does not
    /// exist at the negotiated version or cannot be encoded.
    ///
    /// If the output buffer would exceed [`Config::max_output_bytes`], the peer
    /// disconnects with [`DisconnectReason::OutputQueueFull`].
    pub fn queue_message(&mut self, msg: Message, notify: Option<u64>) {
        self.queue_message_with_encoding(msg, Encoding::Witness, notify);
    }

    /// [`Peer::queue_message`] with a choice of how blocks and transactions are
    /// written (btcd `QueueMessageWithEncoding`). Whatever the choice, a remote that
    /// did not negotiate witness support (no NODE_WITNESS) is sent them without
    /// witness.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Encoding, Peer};
    /// # use wire_codec::{message::Transaction, Message, Network};
    /// # let tx = Transaction::build(1, &[], &[], 0);
    /// let mut peer = Peer::new_inbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:50000".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// peer.queue_message_with_encoding(Message::Tx(tx), Encoding::Base, Some(7));
    /// assert_eq!(peer.queued_messages(), 1); // held until the handshake completes
    /// ```
    pub fn queue_message_with_encoding(
        &mut self,
        msg: Message,
        encoding: Encoding,
        notify: Option<u64>,
    ) {
        match self.phase {
            Phase::Closed => {
                if let Some(t) = notify {
                    self.events.push_back(Event::Failed(t));
                }
            }
            Phase::Established => {
                let span = self.span.clone();
                let _g = span.enter();
                self.send_now(msg, notify, encoding);
            }
            _ => {
                let size = wire_codec::HEADER_LEN + msg.size_hint();
                self.hold(Outgoing::Message(msg, encoding), size, notify);
            }
        }
    }

    /// Queues a frame encoded once for many peers ([`SharedFrame`]; btcd has no
    /// equivalent — its peers each encode). Everything [`Peer::queue_message`] does
    /// applies — order with other messages, holding until the handshake completes,
    /// version gating, no witness to peers without NODE_WITNESS, exactly one `Sent` or
    /// `Failed` per token, [`Config::max_output_bytes`], the statistics and the write
    /// report — but over a v1 connection a large frame (at least
    /// [`LARGE_FRAME`](crate::frame::LARGE_FRAME)) is not copied: the output queue
    /// keeps a reference to the frame's bytes, and [`Peer::transmit_vectored`] hands
    /// them to the driver from that one allocation. Over v2 it is encrypted into this
    /// peer's output (each session has its own keys). A frame of another network
    /// answers `Failed`. The frame counts its full length in this peer's
    /// [`Peer::queued_bytes`] though its memory is shared.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer, SharedFrame};
    /// # use wire_codec::{Message, Network};
    /// let frame = SharedFrame::new(Message::Verack, Network::Regtest).unwrap();
    /// let cfg = Arc::new(Config::new(Network::Regtest));
    /// let mut peers: Vec<Peer> = (0..3)
    ///     .map(|i| Peer::new_inbound(cfg.clone(), "127.0.0.1:50000".parse().unwrap(),
    ///         Instant::now(), 1_700_000_000, i))
    ///     .collect();
    /// for p in &mut peers {
    ///     p.queue_frame(frame.clone(), None); // a reference count, not a copy
    /// }
    /// assert!(peers.iter().all(|p| p.queued_messages() == 1));
    /// ```
    pub fn queue_frame(&mut self, frame: SharedFrame, notify: Option<u64>) {
        match self.phase {
            Phase::Closed => {
                if let Some(t) = notify {
                    self.events.push_back(Event::Failed(t));
                }
            }
            Phase::Established => {
                let span = self.span.clone();
                let _g = span.enter();
                self.send_frame_now(frame, notify);
            }
            _ => {
                let size = frame.len();
                self.hold(Outgoing::Frame(frame), size, notify);
            }
        }
    }

    /// Holds a message until the handshake completes, within the output bound.
    fn hold(&mut self, out: Outgoing, size: usize, notify: Option<u64>) {
        self.held_bytes += size;
        self.held.push_back((out, notify));
        if self.held_bytes > self.config.max_output_bytes && self.held.len() > 1 {
            let bytes = self.held_bytes;
            let limit = self.config.max_output_bytes;
            self.fail(DisconnectReason::OutputQueueFull { bytes, limit }, None);
        }
    }

    /// Sends a held message (the handshake just completed).
    pub(crate) fn send_held(&mut self, out: Outgoing, token: Option<u64>) {
        match out {
            Outgoing::Message(msg, encoding) => self.send_now(msg, token, encoding),
            Outgoing::Frame(frame) => self.send_frame_now(frame, token),
        }
    }

    /// Queues a shared frame's bytes (established peers only), with the rules of
    /// [`Self::send_now`].
    pub(crate) fn send_frame_now(&mut self, frame: SharedFrame, token: Option<u64>) {
        let msg = frame.message();
        let cmd = frame.command();
        if !self.gate_outgoing(msg) {
            if let Some(t) = token {
                self.events.push_back(Event::Failed(t));
            }
            return;
        }
        let witness = self.features.witness;
        let bytes = match frame.wire_for(self.config.network, self.version, witness) {
            Some(Wire::Shared(b)) => b,
            Some(Wire::Own(encoding)) => {
                // A small version-sensitive message at another version: encoded here.
                return self.send_now(msg.clone(), token, encoding);
            }
            None => {
                debug!("not sending {cmd}: the frame is for {:?}", frame.network());
                if let Some(t) = token {
                    self.events.push_back(Event::Failed(t));
                }
                return;
            }
        };
        self.keepalive_on_send(msg);
        let limit = self.config.max_output_bytes;
        debug!("sending {cmd} {} (shared frame)", Summary(msg));
        let keep = self.config.report_io.then(|| frame.clone());
        if tracing::enabled!(Level::TRACE) {
            trace!(frame = %Hex(&bytes), "sending {cmd}");
        }
        let pushed = self
            .output
            .push_frame(&mut self.transport, bytes, cmd, token, limit, keep);
        self.after_push(pushed, cmd, token);
    }

    /// The reaction to queueing one message: an encoding the protocol forbids answers
    /// its notification `Failed` (the peer goes on); a full output ends the peer.
    fn after_push(&mut self, pushed: Result<(), PushError>, cmd: Command, token: Option<u64>) {
        match pushed {
            Ok(()) => {}
            Err(PushError::Encode(e)) => {
                debug!(error = %e, "cannot encode {cmd}");
                if let Some(t) = token {
                    self.events.push_back(Event::Failed(t));
                }
            }
            Err(PushError::Full { bytes, limit }) => self.fail_with(
                DisconnectReason::OutputQueueFull { bytes, limit },
                None,
                token,
            ),
        }
    }

    /// Encodes an application or protocol message (established peers only).
    pub(crate) fn send_now(&mut self, msg: Message, token: Option<u64>, encoding: Encoding) {
        let cmd = msg.command();
        if !self.gate_outgoing(&msg) {
            if let Some(t) = token {
                self.events.push_back(Event::Failed(t));
            }
            return;
        }
        self.keepalive_on_send(&msg);
        let limit = self.config.max_output_bytes;
        debug!("sending {cmd} {}", Summary(&msg));
        let witness = encoding == Encoding::Witness && self.features.witness;
        let ctx = self.ctx().with_witness(witness);
        let keep = self.config.report_io;
        let pushed = self
            .output
            .push(&mut self.transport, msg, &ctx, token, limit, keep);
        if pushed.is_ok() {
            self.log_sent(cmd);
        }
        self.after_push(pushed, cmd, token);
    }

    pub(crate) fn log_sent(&self, cmd: Command) {
        if tracing::enabled!(Level::TRACE) {
            let b = self.output.tail();
            let start = self.output.last_start().min(b.len());
            trace!(frame = %Hex(&b[start..]), "sending {cmd}");
        }
    }

    // ----------------------------------------------------------------------------
    // Time
    // ----------------------------------------------------------------------------

    /// The earliest instant the peer needs [`Peer::handle_timeout`]: the negotiate
    /// deadline (until the handshake completes), the idle deadline, the next ping,
    /// the next trickle (only while inventory is queued) and the stall tick at which a
    /// pending deadline expires. `None` once closed. It can change after any call that
    /// takes `now`, and after queueing inventory or adding processing time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let idle = self.config.timeouts.idle;
        let candidates = [
            (self.phase != Phase::Established).then_some(self.negotiate_deadline),
            self.keepalive.deadline(idle),
            self.inventory.deadline(),
            self.stall.next_check(self.config.timeouts.stall_tick),
        ];
        candidates.into_iter().flatten().min()
    }

    /// Runs every timer due at `now`. Calls before a deadline do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        self.trim_events = true;
        self.trim_output = true;
        if self.is_closed() {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        if self.phase != Phase::Established {
            if now >= self.negotiate_deadline {
                self.fail(DisconnectReason::NegotiateTimeout, None);
            }
            return;
        }
        // Each timer rule in its file; one that ends the peer stops the rest.
        self.stall_tick(now);
        if !self.is_closed() {
            self.keepalive_tick(now);
        }
        if !self.is_closed() {
            self.inventory_tick(now);
        }
    }

    /// Reports time the application spent handling this peer's messages; it extends
    /// every pending stall deadline (see [`crate::stall`]).
    pub fn add_processing_time(&mut self, d: Duration) {
        self.stall.add_processing_time(d);
    }

    /// Whether [`add_processing_time`](Self::add_processing_time) would change anything
    /// now: some stall deadline is pending. A driver can skip timing its callbacks (two
    /// clock reads) while this is false; a deadline set by a callback opens only when
    /// its request is written, after the callbacks.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let peer = Peer::new_inbound(
    ///     Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:50000".parse().unwrap(),
    ///     std::time::Instant::now(),
    ///     1_700_000_000,
    ///     1,
    /// );
    /// // An inbound peer expects nothing until it has sent a request.
    /// assert!(!peer.needs_processing_time());
    /// ```
    pub fn needs_processing_time(&self) -> bool {
        self.stall.has_pending()
    }

    pub(crate) fn trim_output_if_idle(&mut self) {
        if self.trim_output && self.output.is_empty() {
            self.trim_output = false;
            self.output.trim();
        }
    }

    /// The codec context at the version in use (cheap to build; not stored, which
    /// keeps the peer small).
    pub(crate) fn ctx(&self) -> Context {
        Context::new(self.config.network, self.version)
    }

    pub(crate) fn touch(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    /// Wall-clock seconds at `now`, derived from the creation time.
    pub(crate) fn unix_time(&self, now: Instant) -> u64 {
        self.created_unix
            .saturating_add(now.saturating_duration_since(self.created).as_secs())
    }

    // ----------------------------------------------------------------------------
    // Events and shutdown
    // ----------------------------------------------------------------------------

    /// Whether [`Peer::poll_event`] has something to return: events are queued, or
    /// received frames wait to be processed. A driver that made progress only by
    /// writing asks this to know whether the write produced events (`Sent`,
    /// `Written`) before going round its loop again.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::Network;
    /// let mut peer = Peer::new_inbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:50000".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// assert!(!peer.has_events());
    /// ```
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || (self.input_left && !self.input_paused)
    }

    /// The next event, if any. Drain it after every call that takes input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() && self.input_left && !self.input_paused {
            // Frames left in the receive buffer when processing stopped ahead of us.
            let now = self.last_now;
            self.process_received(now);
        }
        let ev = self.events.pop_front();
        if ev.is_none() {
            if self.trim_events || self.events.capacity() > 4096 {
                self.trim_events = false;
                self.events = VecDeque::new();
            }
            self.trim_output_if_idle();
        }
        ev
    }

    /// Disconnects the peer with `reason` (usually [`DisconnectReason::LocalRequest`],
    /// or [`DisconnectReason::RemoteClosed`] / [`DisconnectReason::Io`] from the driver).
    /// Idempotent: only the first reason counts.
    pub fn disconnect(&mut self, reason: DisconnectReason) {
        let span = self.span.clone();
        let _g = span.enter();
        self.fail(reason, None);
    }

    /// Ends the peer: fails every pending notification, keeps a farewell reject (if
    /// the protocol allows one) in the output, emits `Disconnected` once.
    pub(crate) fn fail(&mut self, reason: DisconnectReason, farewell: Option<Reject>) {
        self.fail_with(reason, farewell, None);
    }

    /// [`Self::fail`], also failing `extra` (a message refused on the way in) after the
    /// queued ones.
    pub(crate) fn fail_with(
        &mut self,
        reason: DisconnectReason,
        farewell: Option<Reject>,
        extra: Option<u64>,
    ) {
        if self.phase == Phase::Closed {
            if let Some(t) = extra {
                self.events.push_back(Event::Failed(t));
            }
            return;
        }
        let can_reject = self.remote_version.is_none() || self.version >= version::REJECT;
        self.phase = Phase::Closed;
        debug!(%reason, "disconnecting");
        for m in self.output.close() {
            if let Some(t) = m.token {
                self.events.push_back(Event::Failed(t));
            }
        }
        // A v2 attempt its caller retries in v1 keeps what was queued for the retry.
        if !(self.keep_held_for_v1_retry && self.v2_failed_before_version()) {
            self.fail_held();
        }
        if let Some(t) = extra {
            self.events.push_back(Event::Failed(t));
        }
        self.handshake_extras = Vec::new();
        self.pending_wtxids = Vec::new();
        self.held_frames = VecDeque::new();
        if let (Some(r), true) = (farewell, can_reject) {
            let msg = Message::Reject(Box::new(r));
            debug!("sending reject {}", Summary(&msg));
            let ctx = self.ctx();
            self.output.push_farewell(&mut self.transport, &msg, &ctx);
        }
        self.inventory.clear();
        self.stall.clear();
        self.keepalive.clear();
        self.reason = Some(reason.clone());
        self.events.push_back(Event::Disconnected(reason));
    }

    /// The nonce of our version message (0 before it was built).
    pub fn our_nonce(&self) -> u64 {
        self.our_nonce
    }
}

#[cfg(test)]
// Tests make their own instants (the crate itself never reads a clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn failed_attempt(keep: bool) -> Peer {
        use wire_codec::message::Ping;
        let cfg = Arc::new(Config::new(wire_codec::Network::Regtest));
        let addr = "127.0.0.1:18444".parse().unwrap();
        let mut p = Peer::new_outbound_v2(cfg, addr, Instant::now(), 1_700_000_000, 1);
        p.keep_queue_for_v1_retry(keep);
        p.queue_message(Message::Ping(Ping { nonce: 1 }), Some(10));
        p.queue_message(Message::Ping(Ping { nonce: 2 }), None);
        p.queue_message(Message::Ping(Ping { nonce: 3 }), Some(30));
        p.disconnect(DisconnectReason::LocalRequest);
        p
    }

    fn failed_tokens(p: &mut Peer) -> Vec<u64> {
        let mut failed = Vec::new();
        while let Some(ev) = p.poll_event() {
            if let Event::Failed(t) = ev {
                failed.push(t);
            }
        }
        failed
    }

    #[test]
    fn a_v1_retry_takes_over_the_kept_queue_under_the_same_id() {
        let mut p = failed_attempt(true);
        assert!(p.v2_failed_before_version());
        assert_eq!(failed_tokens(&mut p), Vec::<u64>::new(), "kept, not failed");
        let now = Instant::now();
        let mut v1 = p.v1_retry(now, 1_700_000_000, 2).unwrap();
        assert_eq!(v1.id(), p.id());
        assert_eq!(
            v1.transport_version(),
            crate::transport::TransportVersion::V1
        );
        // Our version message, then the three carried over.
        let fresh = Peer::new_outbound(p.config.clone(), p.remote, now, 1_700_000_000, 4);
        assert_eq!(v1.queued_messages(), fresh.queued_messages() + 3);
        assert_eq!(p.queued_messages(), 0);
        // Closing the retry before its handshake fails the carried notifications.
        v1.disconnect(DisconnectReason::LocalRequest);
        assert_eq!(failed_tokens(&mut v1), vec![10, 30]);
    }

    #[test]
    fn without_keeping_or_after_giving_up_the_queue_fails() {
        let mut p = failed_attempt(false);
        assert_eq!(failed_tokens(&mut p), vec![10, 30]);
        let mut p = failed_attempt(true);
        assert_eq!(failed_tokens(&mut p), Vec::<u64>::new());
        p.keep_queue_for_v1_retry(false);
        assert_eq!(failed_tokens(&mut p), vec![10, 30]);
        assert_eq!(p.queued_messages(), 0);
    }

    #[test]
    fn peer_is_send() {
        fn is_send<T: Send>() {}
        is_send::<Peer>();
    }
}
