//! The peer state machine: one connection's protocol, driven by bytes, time and commands.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, trace, Level, Span};
use wire_codec::message::{
    InvVect, Inventory, Message, Ping, Pong, Reject, RejectCode, ServiceFlags, Version,
};
use wire_codec::{version, Command, Context, Error as CodecError, Frame, FrameDecoder, Network};

use crate::config::Config;
use crate::event::Event;
use crate::handshake::{build_version, Phase, VersionInputs};
use crate::inventory::{is_immediate, InventoryState};
use crate::keepalive::{KeepAlive, KeepAliveAction};
use crate::log::{Hex, Summary};
use crate::nonce::NonceSet;
use crate::outbound::{OutputQueue, PushError};
use crate::reason::DisconnectReason;
use crate::stall::StallDetector;
use crate::stats::{Features, Stats, StatsSnapshot};

/// Frames read while the application decides on the remote's version are held, up to
/// this many; then reading pauses until the decision.
const MAX_HELD_FRAMES: usize = 16;

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
    config: Arc<Config>,
    id: u64,
    remote: SocketAddr,
    inbound: bool,
    span: Span,
    rng: SmallRng,
    phase: Phase,
    created: Instant,
    created_unix: u64,
    /// The latest instant any call brought.
    last_now: Instant,
    negotiate_deadline: Instant,
    established_at: Option<Instant>,
    /// The protocol version in use: ours until negotiated, then min(ours, theirs).
    version: u32,
    magic: [u8; 4],
    decoder: FrameDecoder,
    remote_version: Option<Box<Version>>,
    services: ServiceFlags,
    our_nonce: u64,
    nonces: Arc<NonceSet>,
    features: Features,
    verack_received: bool,
    output: OutputQueue,
    /// Messages queued before the handshake completed, sent after it.
    held: VecDeque<(Message, Option<u64>)>,
    held_bytes: usize,
    /// Frames read while the version decision is pending.
    held_frames: VecDeque<Frame>,
    inventory: InventoryState,
    stall: StallDetector,
    keepalive: KeepAlive,
    stats: Stats,
    events: VecDeque<Event>,
    /// Release idle buffers at the next opportunity (set by timers and at the end of
    /// the handshake: moments when the peer is likely quiet).
    trim_events: bool,
    trim_output: bool,
    reason: Option<DisconnectReason>,
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
        let mut p = Peer::new(config, remote, false, now, unix_time, rng_seed);
        let span = p.span.clone();
        let _g = span.enter();
        debug!("new outbound peer");
        p.send_our_version();
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
        let p = Peer::new(config, remote, true, now, unix_time, rng_seed);
        let _g = p.span.enter();
        debug!("new inbound peer");
        drop(_g);
        p
    }

    fn new(
        config: Arc<Config>,
        remote: SocketAddr,
        inbound: bool,
        now: Instant,
        unix_time: u64,
        rng_seed: u64,
    ) -> Peer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = if inbound { "inbound" } else { "outbound" };
        let span = tracing::debug_span!("peer", id, addr = %remote, dir);
        let network = config.network;
        let mut decoder = FrameDecoder::new(network);
        decoder.set_max_payload(config.max_pre_handshake_payload.min(network.max_payload()));
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
            magic: network.magic(),
            decoder,
            remote_version: None,
            services: config.services,
            our_nonce: 0,
            nonces,
            features: Features::default(),
            verack_received: false,
            output: OutputQueue::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            held_frames: VecDeque::new(),
            inventory: InventoryState::default(),
            stall: StallDetector::new(),
            keepalive: KeepAlive::default(),
            stats: Stats::default(),
            events: VecDeque::new(),
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
    /// The peer also does this itself for block `inv`s and `headers` it receives.
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
        }
    }

    // ----------------------------------------------------------------------------
    // Input
    // ----------------------------------------------------------------------------

    /// Consumes every complete frame at the front of `buf` (the driver's read buffer)
    /// and reacts to it. Frames are split off without copying; a partial frame stays
    /// in `buf` for the next call. Reading pauses while a version decision is pending
    /// and more than a few frames arrived (call again after the decision).
    pub fn handle_read(&mut self, buf: &mut BytesMut, now: Instant) {
        self.touch(now);
        if self.is_closed() {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        loop {
            if self.is_closed() {
                break;
            }
            if self.phase == Phase::AwaitingDecision && self.held_frames.len() >= MAX_HELD_FRAMES {
                break;
            }
            let pending = self.decoder.pending_header().copied();
            let peeked = if pending.is_none() && buf.len() >= wire_codec::HEADER_LEN {
                let mut c = [0u8; 12];
                c.copy_from_slice(&buf[4..16]);
                Some(c)
            } else {
                None
            };
            let before = buf.len();
            match self.decoder.decode(buf) {
                Ok(None) => {
                    self.stats.bytes_received += (before - buf.len()) as u64;
                    break;
                }
                Ok(Some(frame)) => {
                    self.stats.bytes_received += (before - buf.len()) as u64;
                    if self.phase == Phase::AwaitingDecision {
                        self.held_frames.push_back(frame);
                    } else {
                        self.on_frame(frame, now);
                    }
                }
                Err(e) => {
                    let consumed = before - buf.len();
                    self.stats.bytes_received += consumed as u64;
                    let command = pending
                        .map(|h| h.command)
                        .or_else(|| peeked.and_then(|c| Command::from_wire(c).ok()));
                    let bytes = consumed
                        + if pending.is_some() {
                            wire_codec::HEADER_LEN
                        } else {
                            0
                        };
                    self.on_decode_error(e, command, bytes, now);
                    // A tolerated error consumed its frame (or the header parsed
                    // earlier), so the loop progresses; anything else repeats forever
                    // and is left for the (closed) peer.
                    let progressed = consumed > 0 || pending.is_some();
                    if !progressed {
                        break;
                    }
                }
            }
        }
    }

    /// How many more bytes `buf` needs before a frame completes (at least 1 when the
    /// peer is waiting for input; 0 once closed). A driver can size its reads by it.
    pub fn read_hint(&self, buf: &BytesMut) -> usize {
        if self.is_closed() {
            0
        } else {
            self.decoder.bytes_needed(buf).max(1)
        }
    }

    fn on_decode_error(
        &mut self,
        e: CodecError,
        command: Option<Command>,
        bytes: usize,
        now: Instant,
    ) {
        if self.config.report_io {
            self.events.push_back(Event::Read {
                bytes,
                command,
                error: Some(e.clone()),
            });
        }
        // btcd `isAllowedReadError`: on regtest, malformed messages from a loopback
        // peer are tolerated so regression tests can send them. Only errors after which
        // the stream stays framed can be tolerated here.
        if e.is_frame_local() && self.tolerates_malformed() {
            debug!(error = %e, "tolerating malformed message from a regtest loopback peer");
            self.stats.ignored_messages += 1;
            self.keepalive.on_receive(now);
            return;
        }
        debug!(error = %e, "cannot read message");
        let reject = Reject {
            message: "malformed".into(),
            code: RejectCode::MALFORMED,
            reason: format!("Can't read message from {}: {}", self.remote, e),
            hash: None,
        };
        self.fail(DisconnectReason::Decode(e), Some(reject));
    }

    fn tolerates_malformed(&self) -> bool {
        matches!(self.config.network, Network::Regtest | Network::LbryRegtest)
            && match self.remote.ip() {
                IpAddr::V4(ip) => ip.is_loopback(),
                IpAddr::V6(ip) => ip.is_loopback(),
            }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        let cmd = frame.header.command;
        let bytes = frame.wire_len();
        if tracing::enabled!(Level::TRACE) {
            trace!(payload = %Hex(&frame.payload), "received {cmd}");
        }
        let msg = match frame.into_message(&self.ctx()) {
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

    fn on_message_before_version(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Version(v) => self.on_remote_version(v, now),
            Message::Unknown { .. } => self.stats.unknown_messages += 1,
            Message::Reject(r) => self.on_handshake_reject(r),
            other => {
                let command = other.command();
                self.fail(
                    DisconnectReason::UnexpectedMessage { command },
                    Some(Reject {
                        message: "version".into(),
                        code: RejectCode::MALFORMED,
                        reason: "a version message must precede all others".into(),
                        hash: None,
                    }),
                );
            }
        }
    }

    fn on_message_before_verack(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Verack => {
                self.verack_received = true;
                self.events.push_back(Event::Message(Message::Verack));
                self.establish(now);
            }
            Message::SendAddrV2 | Message::WtxidRelay => {
                if self.version >= version::ADDR_V2 {
                    if matches!(msg, Message::SendAddrV2) {
                        self.features.send_addr_v2 = true;
                    } else {
                        self.features.wtxid_relay = true;
                    }
                    self.events.push_back(Event::Message(msg));
                } else {
                    // Bitcoin Core ignores these below 70016; so do we.
                    self.stats.ignored_messages += 1;
                }
            }
            Message::Version(_) => self.fail(
                DisconnectReason::DuplicateVersion,
                Some(duplicate_reject("version")),
            ),
            Message::Unknown { .. } => self.stats.unknown_messages += 1,
            Message::Reject(r) => self.on_handshake_reject(r),
            other => {
                let command = other.command();
                self.fail(
                    DisconnectReason::UnexpectedMessage { command },
                    Some(Reject {
                        message: "verack".into(),
                        code: RejectCode::MALFORMED,
                        reason: "a verack message must follow version".into(),
                        hash: None,
                    }),
                );
            }
        }
    }

    fn on_handshake_reject(&mut self, r: Box<Reject>) {
        let reason = DisconnectReason::RejectedByRemote {
            message: r.message.clone(),
            reason: r.reason.clone(),
        };
        self.events.push_back(Event::Message(Message::Reject(r)));
        self.fail(reason, None);
    }

    fn on_remote_version(&mut self, v: Box<Version>, now: Instant) {
        // btcd readRemoteVersionMsg step 2: self-connection detection (no reject).
        if !self.config.allow_self_connections && self.nonces.contains(v.nonce) {
            self.fail(DisconnectReason::SelfConnection { nonce: v.nonce }, None);
            return;
        }
        let ours = self.config.max_protocol_version();
        self.version = ours.min(v.version);
        self.services = v.services;
        self.features.witness = v.services.has(ServiceFlags::WITNESS);
        self.features.relay_tx = v.relay;
        self.stats.starting_height = v.start_height;
        self.stats.last_block = v.start_height;
        self.stats.time_offset = v.timestamp.saturating_sub(self.unix_time(now) as i64);
        let remote_version = v.version;
        self.remote_version = Some(v.clone());
        // btcd checks the minimum after OnVersion; checking first spares the
        // application obsolete peers. The reject goes out only where the protocol has
        // one (negotiated >= 70002), so with the default minimum of 209 it never does.
        let minimum = self.config.min_protocol_version;
        if remote_version < minimum {
            self.fail(
                DisconnectReason::VersionTooOld {
                    version: remote_version,
                    minimum,
                },
                Some(Reject {
                    message: "version".into(),
                    code: RejectCode::OBSOLETE,
                    reason: format!("protocol version must be {minimum} or greater"),
                    hash: None,
                }),
            );
            return;
        }
        self.phase = Phase::AwaitingDecision;
        self.events.push_back(Event::Version(v));
    }

    /// Accepts the remote's version (after [`Event::Version`]): sends ours if we are
    /// inbound, the feature messages and our verack, and goes on with the handshake.
    /// Does nothing in any other phase.
    pub fn accept_version(&mut self, now: Instant) {
        self.touch(now);
        if self.phase != Phase::AwaitingDecision {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        if self.inbound {
            self.send_our_version();
            if self.is_closed() {
                return;
            }
        }
        if self.version >= version::WTXID_RELAY {
            self.send_handshake_message(&Message::WtxidRelay);
            self.send_handshake_message(&Message::SendAddrV2);
        }
        self.send_handshake_message(&Message::Verack);
        if self.is_closed() {
            return;
        }
        self.phase = Phase::AwaitingVerack;
        while let Some(frame) = self.held_frames.pop_front() {
            if self.is_closed() {
                break;
            }
            self.on_frame(frame, now);
        }
        self.held_frames = VecDeque::new();
    }

    /// Refuses the remote's version (after [`Event::Version`]): `reject` is sent where
    /// the protocol allows one and the peer disconnects with
    /// [`DisconnectReason::RejectedByApplication`]. Does nothing in any other phase.
    pub fn reject_version(&mut self, reject: Reject, now: Instant) {
        self.touch(now);
        if self.phase != Phase::AwaitingDecision {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        let reason = DisconnectReason::RejectedByApplication {
            reason: reject.reason.clone(),
        };
        self.fail(reason, Some(reject));
    }

    fn establish(&mut self, now: Instant) {
        self.phase = Phase::Established;
        self.established_at = Some(now);
        self.trim_events = true;
        self.trim_output = true;
        self.decoder
            .set_max_payload(self.config.network.max_payload());
        let t = self.config.timeouts;
        self.keepalive.start(now, t.ping_interval);
        if !self.config.disable_stall_detection {
            self.stall.start(now);
        }
        self.inventory
            .start(now, self.config.effective_trickle_interval(), now);
        debug!(version = self.version, "handshake complete");
        self.events.push_back(Event::HandshakeComplete {
            version: self.version,
            features: self.features,
        });
        self.held_bytes = 0;
        while let Some((msg, token)) = self.held.pop_front() {
            if self.is_closed() {
                if let Some(t) = token {
                    self.events.push_back(Event::Failed(t));
                }
                continue;
            }
            self.send_now(msg, token);
        }
        self.held = VecDeque::new();
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        let cmd = msg.command();
        match msg {
            Message::Version(_) => {
                return self.fail(
                    DisconnectReason::DuplicateVersion,
                    Some(duplicate_reject("version")),
                )
            }
            Message::Verack => {
                return self.fail(
                    DisconnectReason::DuplicateVerack,
                    Some(duplicate_reject("verack")),
                )
            }
            Message::SendAddrV2 | Message::WtxidRelay => {
                return self.fail(
                    DisconnectReason::FeatureAfterHandshake { command: cmd },
                    None,
                )
            }
            Message::Unknown { .. } => {
                debug!("ignoring unknown command {cmd}");
                self.stats.unknown_messages += 1;
                return;
            }
            Message::FilterLoad(_) | Message::FilterAdd(_) | Message::FilterClear
                if !self.config.services.has(ServiceFlags::BLOOM) =>
            {
                // BIP111: without NODE_BLOOM, filter messages are a violation from
                // 70011 on and silently ignored before.
                if self.version >= version::BIP0111 {
                    return self.fail(DisconnectReason::BloomWithoutService { command: cmd }, None);
                }
                self.stats.ignored_messages += 1;
                return;
            }
            _ => {}
        }
        if let Some(min) = Message::min_version(cmd) {
            if self.version < min {
                debug!(
                    "ignoring {cmd}: not part of protocol version {}",
                    self.version
                );
                self.stats.ignored_messages += 1;
                return;
            }
        }
        match &msg {
            Message::Ping(p) if self.version > version::BIP0031 => {
                self.send_now(Message::Pong(Pong { nonce: p.nonce }), None);
            }
            Message::Pong(p)
                if self.stats.last_ping_nonce != 0 && p.nonce == self.stats.last_ping_nonce =>
            {
                if let Some(sent) = self.stats.last_ping_time {
                    self.stats.last_ping_latency = Some(now.saturating_duration_since(sent));
                }
                self.stats.last_ping_nonce = 0;
            }
            Message::SendHeaders => self.features.send_headers = true,
            Message::FeeFilter(f) => self.features.fee_filter = Some(f.feerate),
            Message::Inv(inv) => {
                let mut last_block = None;
                for iv in &inv.inventory {
                    self.inventory.add_known(*iv);
                    if iv.kind.is_block() {
                        last_block = Some(iv.hash);
                    }
                }
                if let Some(h) = last_block {
                    self.stats.last_announced_block = Some(h);
                }
            }
            Message::Headers(h) => {
                if let (Some(first), Some(last)) = (h.headers.first(), h.headers.last()) {
                    self.stats
                        .on_headers(first.prev_block, last.hash(), h.headers.len());
                }
            }
            _ => {}
        }
        self.events.push_back(Event::Message(msg));
    }

    // ----------------------------------------------------------------------------
    // Output
    // ----------------------------------------------------------------------------

    /// The encoded bytes waiting to be written, in order (may be empty). After a
    /// disconnect it may still hold a final reject: write it best-effort, then close.
    pub fn transmit(&self) -> &[u8] {
        self.output.bytes()
    }

    /// Bytes waiting in the output buffer (what [`Config::max_output_bytes`] bounds).
    pub fn queued_bytes(&self) -> usize {
        self.output.len()
    }

    /// Messages queued and not yet completely written (held ones included).
    pub fn queued_messages(&self) -> usize {
        self.output.pending_messages() + self.held.len()
    }

    /// Inventory entries waiting for the next trickle.
    pub fn pending_inventory(&self) -> usize {
        self.inventory.pending_len()
    }

    /// Whether [`Peer::transmit`] holds bytes.
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Reports that the first `written` bytes of [`Peer::transmit`] were written
    /// (values beyond what is buffered are clamped). Messages whose last byte is now
    /// written produce [`Event::Sent`] (if queued with a token) and [`Event::Written`].
    pub fn advance_transmit(&mut self, written: usize, now: Instant) {
        self.touch(now);
        let n = self.output.advance(written);
        self.stats.bytes_sent += n as u64;
        let stall_on = self.phase == Phase::Established;
        while let Some(m) = self.output.pop_completed() {
            self.stats.last_send = Some(now);
            self.stats.messages_sent += 1;
            if self.config.report_io {
                self.events.push_back(Event::Written {
                    bytes: m.len as usize,
                    command: m.command,
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
        match self.phase {
            Phase::Closed => {
                if let Some(t) = notify {
                    self.events.push_back(Event::Failed(t));
                }
            }
            Phase::Established => {
                let span = self.span.clone();
                let _g = span.enter();
                self.send_now(msg, notify);
            }
            _ => {
                self.held_bytes += wire_codec::HEADER_LEN + msg.size_hint();
                self.held.push_back((msg, notify));
                if self.held_bytes > self.config.max_output_bytes && self.held.len() > 1 {
                    let bytes = self.held_bytes;
                    let limit = self.config.max_output_bytes;
                    self.fail(DisconnectReason::OutputQueueFull { bytes, limit }, None);
                }
            }
        }
    }

    /// Queues an inventory announcement (btcd `QueueInventory`). Nothing happens if
    /// the remote is known to have it or the peer closed. Blocks (`MSG_BLOCK`,
    /// `MSG_WITNESS_BLOCK`) are announced at once; everything else waits for the next
    /// trickle tick and goes out in `inv` messages of at most 1,000 entries. Inventory
    /// queued before the handshake is sent after it (btcd drops it).
    pub fn queue_inventory(&mut self, iv: InvVect) {
        if self.is_closed() || self.inventory.is_known(&iv) {
            return;
        }
        if is_immediate(iv.kind) {
            return self.queue_inventory_immediate(iv);
        }
        let trickle = self
            .established_at
            .map(|a| (a, self.config.effective_trickle_interval(), self.last_now));
        if self.inventory.queue(iv, trickle) && self.phase == Phase::Established {
            self.trickle();
        }
    }

    /// Announces `iv` in its own `inv` now, skipping the trickle (still filtered by the
    /// known-inventory set, which it joins).
    pub fn queue_inventory_immediate(&mut self, iv: InvVect) {
        if self.is_closed() || self.inventory.is_known(&iv) {
            return;
        }
        self.inventory.add_known(iv);
        self.queue_message(Message::Inv(Inventory::new(vec![iv])), None);
    }

    /// Records that the remote has `iv`, so it is not announced to it (btcd
    /// `AddKnownInventory`).
    pub fn add_known_inventory(&mut self, iv: InvVect) {
        if !self.is_closed() {
            self.inventory.add_known(iv);
        }
    }

    /// Whether the remote is known to have `iv`.
    pub fn knows_inventory(&self, iv: &InvVect) -> bool {
        self.inventory.is_known(iv)
    }

    fn trickle(&mut self) {
        for batch in self.inventory.take_batches() {
            if self.is_closed() {
                return;
            }
            self.send_now(Message::Inv(Inventory::new(batch)), None);
        }
    }

    /// Encodes a handshake message right away (bypassing the pre-handshake hold).
    fn send_handshake_message(&mut self, msg: &Message) {
        let limit = self.config.max_output_bytes;
        match self.output.push(self.magic, msg, &self.ctx(), None, limit) {
            Ok(_) => self.log_sent(msg),
            Err(PushError::Full { bytes, limit }) => {
                self.fail(DisconnectReason::OutputQueueFull { bytes, limit }, None)
            }
            Err(PushError::Encode(e)) => {
                debug!(error = %e, "cannot encode {}", msg.command());
            }
        }
    }

    fn send_our_version(&mut self) {
        let mut nonce = 0;
        while nonce == 0 {
            nonce = self.rng.gen::<u64>();
        }
        self.our_nonce = nonce;
        let inputs = VersionInputs {
            remote: self.remote,
            remote_services: if self.inbound {
                self.services
            } else {
                ServiceFlags::NONE
            },
            nonce,
            unix_time: self.unix_time(self.last_now),
            encode_version: self.version,
            inbound: self.inbound,
        };
        match build_version(&self.config, &inputs) {
            Ok(v) => {
                self.nonces.insert(nonce);
                self.send_handshake_message(&Message::Version(Box::new(v)));
            }
            Err(reason) => self.fail(reason, None),
        }
    }

    /// Encodes an application or protocol message (established peers only).
    fn send_now(&mut self, msg: Message, token: Option<u64>) {
        let cmd = msg.command();
        if let Some(min) = Message::min_version(cmd) {
            if self.version < min {
                debug!(
                    "not sending {cmd}: not part of protocol version {}",
                    self.version
                );
                if let Some(t) = token {
                    self.events.push_back(Event::Failed(t));
                }
                return;
            }
        }
        if let Message::Ping(p) = &msg {
            if self.version > version::BIP0031 {
                self.stats.last_ping_nonce = p.nonce;
                self.stats.last_ping_time = Some(self.last_now);
            }
        }
        let limit = self.config.max_output_bytes;
        match self
            .output
            .push(self.magic, &msg, &self.ctx(), token, limit)
        {
            Ok(_) => self.log_sent(&msg),
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

    fn log_sent(&self, msg: &Message) {
        debug!("sending {} {}", msg.command(), Summary(msg));
        if tracing::enabled!(Level::TRACE) {
            let b = self.output.bytes();
            let start = self.output.last_start().min(b.len());
            trace!(frame = %Hex(&b[start..]), "sending {}", msg.command());
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
        let t = self.config.timeouts;
        if let Some((command, waited)) = self.stall.check(now, t.stall_tick) {
            debug!("appears to be stalled or misbehaving, {command} timeout -- disconnecting");
            return self.fail(DisconnectReason::Stalled { command, waited }, None);
        }
        while let Some(action) = self.keepalive.poll(now, t.idle, t.ping_interval) {
            match action {
                KeepAliveAction::Idle => {
                    debug!("no answer for {:?} -- disconnecting", t.idle);
                    return self.fail(DisconnectReason::IdleTimeout, None);
                }
                KeepAliveAction::Ping => {
                    let nonce = self.rng.gen::<u64>().max(1);
                    self.send_now(Message::Ping(Ping { nonce }), None);
                    if self.is_closed() {
                        return;
                    }
                }
            }
        }
        if matches!(self.inventory.deadline(), Some(d) if d <= now) {
            self.trickle();
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

    fn trim_output_if_idle(&mut self) {
        if self.trim_output && self.output.is_empty() {
            self.trim_output = false;
            self.output.trim();
        }
    }

    /// The codec context at the version in use (cheap to build; not stored, which
    /// keeps the peer small).
    fn ctx(&self) -> Context {
        Context::new(self.config.network, self.version)
    }

    fn touch(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    /// Wall-clock seconds at `now`, derived from the creation time.
    fn unix_time(&self, now: Instant) -> u64 {
        self.created_unix
            .saturating_add(now.saturating_duration_since(self.created).as_secs())
    }

    // ----------------------------------------------------------------------------
    // Events and shutdown
    // ----------------------------------------------------------------------------

    /// The next event, if any. Drain it after every call that takes input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
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
    fn fail(&mut self, reason: DisconnectReason, farewell: Option<Reject>) {
        self.fail_with(reason, farewell, None);
    }

    /// [`Self::fail`], also failing `extra` (a message refused on the way in) after the
    /// queued ones.
    fn fail_with(
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
        for (_, token) in self.held.drain(..) {
            if let Some(t) = token {
                self.events.push_back(Event::Failed(t));
            }
        }
        if let Some(t) = extra {
            self.events.push_back(Event::Failed(t));
        }
        self.held = VecDeque::new();
        self.held_bytes = 0;
        self.held_frames = VecDeque::new();
        if let (Some(r), true) = (farewell, can_reject) {
            let msg = Message::Reject(Box::new(r));
            debug!("sending reject {}", Summary(&msg));
            self.output.push_farewell(self.magic, &msg, &self.ctx());
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

fn duplicate_reject(cmd: &str) -> Reject {
    Reject {
        message: cmd.into(),
        code: RejectCode::DUPLICATE,
        reason: format!("duplicate {cmd} message"),
        hash: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_is_send() {
        fn is_send<T: Send>() {}
        is_send::<Peer>();
    }
}
