//! A two-peer in-memory simulation with a virtual clock.
//!
//! `a` is the outbound side, `b` the inbound side. Bytes move between them in chunks of
//! `split` bytes; time only moves when nothing else can happen, jumping to the earlier
//! of the two peers' `poll_timeout`s (quinn-proto's `Pair`, str0m's `progress`). Every
//! run is deterministic and takes microseconds of real time whatever the virtual time.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use peer_core::{dispatch, Config, DisconnectReason, Event, Listener, NonceSet, Peer};
use wire_codec::message::{Message, Reject, Version};
use wire_codec::{encode_frame, Command, Context, Error as CodecError, Network};

/// Upper bound on steps of one `drive`; hitting it means a livelock.
pub const MAX_STEPS: usize = 100_000;

/// Wall clock both peers start at, unless a test says otherwise.
pub const UNIX_START: u64 = 1_700_000_000;

/// One thing a listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Version(u32),
    Handshake(u32),
    Msg(String),
    Sent(u64),
    Failed(u64),
    Read {
        bytes: usize,
        command: Option<String>,
        error: bool,
    },
    Write {
        bytes: usize,
        command: String,
    },
    Disconnected(DisconnectReason),
}

/// A listener that records everything, and can refuse versions.
#[derive(Debug, Default)]
pub struct Recorder {
    pub recs: Vec<Rec>,
    pub messages: Vec<Message>,
    pub versions: Vec<Version>,
    pub reject_with: Option<Reject>,
    /// Virtual time every received message costs the application.
    pub processing: Duration,
    /// Messages `on_read` was given.
    pub read_messages: Vec<Message>,
    /// Messages `on_write` was given.
    pub written_messages: Vec<Message>,
    /// The raw bytes `on_block` was given.
    pub block_raw: Vec<bytes::Bytes>,
}

impl Recorder {
    fn msg(&mut self, m: Message) {
        self.recs.push(Rec::Msg(m.command().to_string()));
        self.messages.push(m);
    }

    pub fn count_msg(&self, cmd: &str) -> usize {
        self.recs
            .iter()
            .filter(|r| matches!(r, Rec::Msg(c) if c == cmd))
            .count()
    }

    pub fn sent(&self) -> Vec<u64> {
        self.recs
            .iter()
            .filter_map(|r| match r {
                Rec::Sent(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    pub fn failed(&self) -> Vec<u64> {
        self.recs
            .iter()
            .filter_map(|r| match r {
                Rec::Failed(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    pub fn disconnects(&self) -> Vec<DisconnectReason> {
        self.recs
            .iter()
            .filter_map(|r| match r {
                Rec::Disconnected(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn written(&self, cmd: &str) -> usize {
        self.recs
            .iter()
            .filter(|r| matches!(r, Rec::Write { command, .. } if command == cmd))
            .count()
    }
}

macro_rules! record {
    ($($name:ident($t:ty)),* $(,)?) => {
        $(fn $name(&mut self, _p: &mut Peer, m: $t) { self.msg(m.into_message()); })*
    };
}

/// Turns payloads back into messages for recording.
pub trait IntoMessage {
    fn into_message(self) -> Message;
}

macro_rules! into_message {
    ($($t:ident => $v:ident),* $(,)?) => {
        $(impl IntoMessage for wire_codec::message::$t {
            fn into_message(self) -> Message { Message::$v(self.into()) }
        })*
    };
}

into_message! {
    Ping => Ping, Pong => Pong, Addr => Addr, AddrV2 => AddrV2,
    Headers => Headers, Block => Block, Transaction => Tx, Reject => Reject,
    FeeFilter => FeeFilter, FilterLoad => FilterLoad, FilterAdd => FilterAdd,
    MerkleBlock => MerkleBlock, GetCFilters => GetCFilters, CFilter => CFilter,
    CFHeaders => CFHeaders, GetCFCheckpt => GetCFCheckpt,
    CFCheckpt => CFCheckpt, SendCmpct => SendCmpct, CmpctBlock => CmpctBlock,
    GetBlockTxn => GetBlockTxn, BlockTxn => BlockTxn, Alert => Alert, SendTxRcncl => SendTxRcncl,
}

impl Listener for Recorder {
    fn on_version(&mut self, _p: &mut Peer, msg: &Version) -> Option<Reject> {
        self.recs.push(Rec::Version(msg.version));
        self.versions.push(msg.clone());
        self.reject_with.clone()
    }
    fn on_verack(&mut self, _p: &mut Peer) {
        self.msg(Message::Verack);
    }
    fn on_handshake_complete(&mut self, _p: &mut Peer, version: u32) {
        self.recs.push(Rec::Handshake(version));
    }
    record! {
        on_ping(wire_codec::message::Ping), on_pong(wire_codec::message::Pong),
        on_addr(wire_codec::message::Addr), on_addr_v2(wire_codec::message::AddrV2),
        on_headers(wire_codec::message::Headers),
        on_tx(wire_codec::message::Transaction), on_reject(wire_codec::message::Reject),
        on_fee_filter(wire_codec::message::FeeFilter), on_filter_load(wire_codec::message::FilterLoad),
        on_filter_add(wire_codec::message::FilterAdd), on_merkle_block(wire_codec::message::MerkleBlock),
        on_get_cfilters(wire_codec::message::GetCFilters), on_cfilter(wire_codec::message::CFilter),
        on_cfheaders(wire_codec::message::CFHeaders),
        on_get_cfcheckpt(wire_codec::message::GetCFCheckpt), on_cfcheckpt(wire_codec::message::CFCheckpt),
        on_send_cmpct(wire_codec::message::SendCmpct), on_cmpct_block(wire_codec::message::CmpctBlock),
        on_get_block_txn(wire_codec::message::GetBlockTxn), on_block_txn(wire_codec::message::BlockTxn),
        on_alert(wire_codec::message::Alert), on_send_tx_rcncl(wire_codec::message::SendTxRcncl),
    }
    fn on_block(&mut self, _p: &mut Peer, m: wire_codec::message::Block, raw: bytes::Bytes) {
        self.block_raw.push(raw);
        self.msg(m.into_message());
    }
    fn on_unknown(&mut self, _p: &mut Peer, command: Command, payload: bytes::Bytes) {
        self.msg(Message::Unknown { command, payload });
    }
    fn on_get_addr(&mut self, _p: &mut Peer) {
        self.msg(Message::GetAddr);
    }
    fn on_send_addr_v2(&mut self, _p: &mut Peer) {
        self.msg(Message::SendAddrV2);
    }
    fn on_wtxid_relay(&mut self, _p: &mut Peer) {
        self.msg(Message::WtxidRelay);
    }
    fn on_inv(&mut self, _p: &mut Peer, m: wire_codec::message::Inventory) {
        self.msg(Message::Inv(m));
    }
    fn on_get_data(&mut self, _p: &mut Peer, m: wire_codec::message::Inventory) {
        self.msg(Message::GetData(m));
    }
    fn on_not_found(&mut self, _p: &mut Peer, m: wire_codec::message::Inventory) {
        self.msg(Message::NotFound(m));
    }
    fn on_get_blocks(&mut self, _p: &mut Peer, m: wire_codec::message::BlockLocator) {
        self.msg(Message::GetBlocks(m));
    }
    fn on_get_headers(&mut self, _p: &mut Peer, m: wire_codec::message::BlockLocator) {
        self.msg(Message::GetHeaders(m));
    }
    fn on_get_cfheaders(&mut self, _p: &mut Peer, m: wire_codec::message::GetCFHeaders) {
        self.msg(Message::GetCFHeaders(m));
    }
    fn on_mem_pool(&mut self, _p: &mut Peer) {
        self.msg(Message::MemPool);
    }
    fn on_send_headers(&mut self, _p: &mut Peer) {
        self.msg(Message::SendHeaders);
    }
    fn on_filter_clear(&mut self, _p: &mut Peer) {
        self.msg(Message::FilterClear);
    }
    fn on_other(&mut self, _p: &mut Peer, m: Message) {
        self.msg(m);
    }
    fn on_sent(&mut self, _p: &mut Peer, t: u64) {
        self.recs.push(Rec::Sent(t));
    }
    fn on_failed(&mut self, _p: &mut Peer, t: u64) {
        self.recs.push(Rec::Failed(t));
    }
    fn on_read(
        &mut self,
        _p: &mut Peer,
        bytes: usize,
        command: Option<Command>,
        msg: Option<&Message>,
        error: Option<&CodecError>,
    ) {
        if let Some(m) = msg {
            self.read_messages.push(m.clone());
        }
        self.recs.push(Rec::Read {
            bytes,
            command: command.map(|c| c.to_string()),
            error: error.is_some(),
        });
    }
    fn on_write(&mut self, _p: &mut Peer, bytes: usize, msg: &Message) {
        self.written_messages.push(msg.clone());
        self.recs.push(Rec::Write {
            bytes,
            command: msg.command().to_string(),
        });
    }
    fn on_disconnect(&mut self, _p: &mut Peer, reason: &DisconnectReason) {
        self.recs.push(Rec::Disconnected(reason.clone()));
    }
}

/// One side: its peer, its unread input, its listener, and whether its link to the
/// other side carries bytes.
pub struct Node {
    pub peer: Peer,
    pub rec: Recorder,
    /// Bytes this node writes reach the other side (false: the remote stops reading).
    pub link_up: bool,
    /// Set once the other side has been told this side's connection closed.
    pub eof_delivered: bool,
}

impl Node {
    pub fn new(peer: Peer) -> Node {
        Node {
            peer,
            rec: Recorder::default(),
            link_up: true,
            eof_delivered: false,
        }
    }

    /// Drains events into the recorder; returns how many there were.
    pub fn pump(&mut self, now: &mut Instant) -> usize {
        let mut n = 0;
        while let Some(ev) = self.peer.poll_event() {
            n += 1;
            let is_msg = matches!(ev, Event::Message(_));
            dispatch(&mut self.peer, ev, &mut self.rec, *now);
            if is_msg && !self.rec.processing.is_zero() {
                *now += self.rec.processing;
                self.peer.add_processing_time(self.rec.processing);
            }
        }
        n
    }
}

/// A config for tests: its own nonce set, so parallel tests never see each other's
/// nonces.
pub fn config(network: Network) -> Config {
    let mut c = Config::new(network);
    c.nonces = Some(Arc::new(NonceSet::new()));
    c
}

pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub start: Instant,
    pub now: Instant,
    /// Bytes per delivery chunk.
    pub split: usize,
    pub steps: usize,
}

pub const A_ADDR: &str = "10.0.0.2:8333";
pub const B_ADDR: &str = "10.0.0.1:50000";

impl Pair {
    /// An outbound `a` connected to an inbound `b`, not yet driven.
    pub fn new(cfg_a: Config, cfg_b: Config) -> Pair {
        Pair::with_clocks(cfg_a, cfg_b, UNIX_START, UNIX_START)
    }

    pub fn with_clocks(cfg_a: Config, cfg_b: Config, unix_a: u64, unix_b: u64) -> Pair {
        let start = Instant::now();
        let a = Peer::new_outbound(Arc::new(cfg_a), A_ADDR.parse().unwrap(), start, unix_a, 1);
        let b = Peer::new_inbound(Arc::new(cfg_b), B_ADDR.parse().unwrap(), start, unix_b, 2);
        Pair {
            a: Node::new(a),
            b: Node::new(b),
            start,
            now: start,
            split: usize::MAX,
            steps: 0,
        }
    }

    /// Both on `network` with default settings.
    pub fn default_on(network: Network) -> Pair {
        Pair::new(config(network), config(network))
    }

    /// A pair whose handshake has completed.
    pub fn connected(cfg_a: Config, cfg_b: Config) -> Pair {
        let mut p = Pair::new(cfg_a, cfg_b);
        p.drive();
        assert!(p.a.peer.handshake_complete(), "a: {:?}", p.a.rec.recs);
        assert!(p.b.peer.handshake_complete(), "b: {:?}", p.b.rec.recs);
        p
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves bytes from `from` to `to`; returns whether any moved.
    fn transfer(from: &mut Node, to: &mut Node, split: usize, now: Instant) -> bool {
        if !from.link_up {
            return false;
        }
        let mut moved = false;
        loop {
            let out = from.peer.transmit();
            if out.is_empty() {
                break;
            }
            let n = out.len().min(split.max(1));
            let chunk = out[..n].to_vec();
            from.peer.advance_transmit(n, now);
            moved = true;
            to.peer.handle_input(&chunk, now);
        }
        // A closed side whose output is flushed has closed its socket: the other side
        // reads EOF.
        if from.peer.is_closed() && !from.peer.wants_write() && !from.eof_delivered {
            from.eof_delivered = true;
            if !to.peer.is_closed() {
                to.peer.disconnect(DisconnectReason::RemoteClosed);
            }
            moved = true;
        }
        moved
    }

    /// One round: deliver both ways, drain events. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        let now = self.now;
        let mut progress = Pair::transfer(&mut self.a, &mut self.b, self.split, now);
        progress |= Pair::transfer(&mut self.b, &mut self.a, self.split, now);
        progress |= self.a.pump(&mut self.now) > 0;
        progress |= self.b.pump(&mut self.now) > 0;
        progress
    }

    /// Steps until nothing moves without time passing.
    pub fn drive(&mut self) {
        let mut n = 0;
        while self.step() {
            n += 1;
            assert!(n < MAX_STEPS, "livelock: {n} steps without quiescence");
        }
    }

    /// The earlier of the two peers' deadlines.
    pub fn next_timeout(&self) -> Option<Instant> {
        [self.a.peer.poll_timeout(), self.b.peer.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Jumps the clock to the next deadline (if any, and not beyond `limit`) and fires
    /// timers. Returns whether time moved.
    pub fn fire_next(&mut self, limit: Instant) -> bool {
        match self.next_timeout() {
            Some(t) if t <= limit => {
                if t > self.now {
                    self.now = t;
                }
                let now = self.now;
                self.a.peer.handle_timeout(now);
                self.b.peer.handle_timeout(now);
                true
            }
            _ => false,
        }
    }

    /// Runs the simulation for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs the simulation until `until`.
    pub fn run_until(&mut self, until: Instant) {
        let mut n = 0;
        loop {
            self.drive();
            if !self.fire_next(until) {
                break;
            }
            n += 1;
            assert!(n < MAX_STEPS, "livelock: {n} timer firings");
        }
        self.drive();
        if self.now < until {
            self.now = until;
        }
    }

    /// Runs until `cond` holds or `max` virtual time passed; returns whether it held.
    pub fn run_until_cond(&mut self, max: Duration, mut cond: impl FnMut(&Pair) -> bool) -> bool {
        let until = self.now + max;
        let mut n = 0;
        loop {
            self.drive();
            if cond(self) {
                return true;
            }
            if !self.fire_next(until) {
                return cond(self);
            }
            n += 1;
            assert!(n < MAX_STEPS, "livelock");
        }
    }

    pub fn both_closed(&self) -> bool {
        self.a.peer.is_closed() && self.b.peer.is_closed()
    }
}

/// Encodes `msg` as a frame of `network` at protocol `version`.
pub fn frame(network: Network, version: u32, msg: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(
        network.magic(),
        msg,
        &Context::new(network, version),
        &mut out,
    )
    .unwrap();
    out.to_vec()
}

/// Puts raw bytes in `node`'s input, as if the remote wrote them, and reads them.
pub fn inject(node: &mut Node, bytes: &[u8], now: Instant) {
    node.peer.handle_input(bytes, now);
}

/// A remote's version message for raw-injection tests.
pub fn remote_version(version: u32, nonce: u64) -> Version {
    Version {
        version,
        services: wire_codec::message::ServiceFlags::NONE,
        timestamp: UNIX_START as i64,
        receiver: wire_codec::message::NetAddress::unspecified(
            wire_codec::message::ServiceFlags::NONE,
        ),
        sender: wire_codec::message::NetAddress::unspecified(
            wire_codec::message::ServiceFlags::NONE,
        ),
        nonce,
        user_agent: "/raw:0.1/".into(),
        start_height: 0,
        relay: true,
        relay_present: true,
    }
}

/// A lone peer and a scripted remote (the test writes the remote's bytes by hand).
pub struct Solo {
    pub node: Node,
    pub now: Instant,
    pub start: Instant,
    pub network: Network,
}

impl Solo {
    pub fn outbound(cfg: Config) -> Solo {
        Solo::new(cfg, false, A_ADDR)
    }

    pub fn inbound(cfg: Config) -> Solo {
        Solo::new(cfg, true, B_ADDR)
    }

    pub fn new(cfg: Config, inbound: bool, addr: &str) -> Solo {
        let start = Instant::now();
        let network = cfg.network;
        let cfg = Arc::new(cfg);
        let peer = if inbound {
            Peer::new_inbound(cfg, addr.parse().unwrap(), start, UNIX_START, 7)
        } else {
            Peer::new_outbound(cfg, addr.parse().unwrap(), start, UNIX_START, 7)
        };
        Solo {
            node: Node::new(peer),
            now: start,
            start,
            network,
        }
    }

    /// Takes everything the peer wrote, as decoded commands.
    pub fn take_output(&mut self, version: u32) -> Vec<Message> {
        let bytes = self.node.peer.transmit().to_vec();
        self.node.peer.advance_transmit(bytes.len(), self.now);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut dec = wire_codec::FrameDecoder::new(self.network);
        let ctx = Context::new(self.network, version);
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            out.push(f.decode(&ctx).unwrap());
        }
        assert!(buf.is_empty(), "partial frame in output");
        out
    }

    /// Feeds a message from the scripted remote.
    pub fn feed(&mut self, version: u32, msg: &Message) {
        let b = frame(self.network, version, msg);
        inject(&mut self.node, &b, self.now);
        self.node.pump(&mut self.now);
    }

    pub fn feed_raw(&mut self, bytes: &[u8]) {
        inject(&mut self.node, bytes, self.now);
        self.node.pump(&mut self.now);
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.node.peer.handle_timeout(self.now);
        self.node.pump(&mut self.now);
    }

    /// Jumps to the peer's next deadline and fires it.
    pub fn fire_next(&mut self) -> Option<Instant> {
        let t = self.node.peer.poll_timeout()?;
        if t > self.now {
            self.now = t;
        }
        self.node.peer.handle_timeout(self.now);
        self.node.pump(&mut self.now);
        Some(t)
    }
}

/// A `filterload` message.
pub fn filterload() -> Message {
    Message::FilterLoad(wire_codec::message::FilterLoad {
        filter: bytes::Bytes::from_static(&[1]),
        hash_funcs: 10,
        tweak: 0,
        flags: 0,
    })
}

/// A connected mainnet pair: `b` at protocol `version_b`, `a` with NODE_BLOOM or not.
pub fn pair_at(version_b: u32, bloom_a: bool) -> Pair {
    let mut ca = config(Network::Mainnet);
    if bloom_a {
        ca.services = wire_codec::message::ServiceFlags::BLOOM;
    }
    let mut cb = config(Network::Mainnet);
    cb.protocol_version = version_b;
    Pair::connected(ca, cb)
}
