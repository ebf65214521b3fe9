//! Counters and facts about one peer, and the snapshot handed to applications
//! (btcd `StatsSnap`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use wire_codec::message::{Message, ServiceFlags};
use wire_codec::Hash256;

use crate::peer::Peer;

/// What the two sides agreed on during and after the handshake.
///
/// ```
/// use peer_core::Features;
/// let f = Features::default();
/// assert!(!f.send_addr_v2 && !f.wtxid_relay && f.fee_filter.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Features {
    /// The remote sent `sendaddrv2` during the handshake (BIP155): it wants `addrv2`.
    pub send_addr_v2: bool,
    /// The remote sent `wtxidrelay` during the handshake (BIP339): announce
    /// transactions by wtxid.
    pub wtxid_relay: bool,
    /// The remote sent `sendheaders` (BIP130): announce blocks with `headers`.
    pub send_headers: bool,
    /// The remote's latest `feefilter` (BIP133), in sat/kvB.
    pub fee_filter: Option<i64>,
    /// The remote advertises NODE_WITNESS (BIP144).
    pub witness: bool,
    /// The remote wants transactions relayed before it loads a filter (BIP37 relay
    /// flag of its version message).
    pub relay_tx: bool,
}

/// A copy of a peer's statistics at one instant (btcd `StatsSnap`, plus the negotiated
/// version, features and message counters).
///
/// Instants are the driver's (`std::time::Instant`); wall-clock values are Unix seconds
/// derived from the `unix_time` the peer was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Process-unique peer id.
    pub id: u64,
    /// The remote socket address.
    pub addr: SocketAddr,
    /// Whether the remote connected to us.
    pub inbound: bool,
    /// The remote's services (our own until its version arrived, as btcd).
    pub services: ServiceFlags,
    /// When we last finished writing a message.
    pub last_send: Option<Instant>,
    /// When we last received a whole message.
    pub last_recv: Option<Instant>,
    /// Bytes written to the remote.
    pub bytes_sent: u64,
    /// Bytes received from the remote (every consumed byte, rejected frames included).
    pub bytes_received: u64,
    /// When the peer was created.
    pub conn_time: Instant,
    /// The wall-clock time (Unix seconds) the peer was created at.
    pub conn_time_unix: u64,
    /// Remote clock minus ours, in seconds, from its version message.
    pub time_offset: i64,
    /// The protocol version the remote advertised (btcd's `Version` field).
    pub version: u32,
    /// The negotiated protocol version (ours until the remote version arrived).
    pub negotiated_version: u32,
    /// The remote's user agent.
    pub user_agent: String,
    /// The remote's best height when it connected.
    pub starting_height: i32,
    /// The remote's best known height (only ever increases).
    pub last_block: i32,
    /// The hash of the last block the remote announced.
    pub last_announced_block: Option<Hash256>,
    /// The nonce of our unanswered ping (0 when none is outstanding).
    pub last_ping_nonce: u64,
    /// When our last ping was queued.
    pub last_ping_time: Option<Instant>,
    /// Round-trip time of the last answered ping.
    pub last_ping_latency: Option<Duration>,
    /// Negotiated features.
    pub features: Features,
    /// Messages received and handled (including those ignored by rule).
    pub messages_received: u64,
    /// Messages written.
    pub messages_sent: u64,
    /// Messages with commands we do not know, ignored.
    pub unknown_messages: u64,
    /// Known messages ignored by a rule (version gating, BIP111 for old versions,
    /// malformed frames tolerated on regtest).
    pub ignored_messages: u64,
}

impl Peer {
    /// Features the remote announces after the handshake: `sendheaders` (BIP130) and
    /// `feefilter` (BIP133).
    pub(crate) fn stats_on_message(&mut self, msg: &Message) {
        match msg {
            Message::SendHeaders => self.features.send_headers = true,
            Message::FeeFilter(f) => self.features.fee_filter = Some(f.feerate),
            _ => {}
        }
    }
}

/// The mutable counters behind [`StatsSnapshot`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) last_send: Option<Instant>,
    pub(crate) last_recv: Option<Instant>,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    pub(crate) time_offset: i64,
    pub(crate) starting_height: i32,
    pub(crate) last_block: i32,
    pub(crate) last_announced_block: Option<Hash256>,
    /// A block of the remote's chain whose height is known: (hash, height). Headers
    /// that continue from it move `last_block` on by their count.
    pub(crate) height_anchor: Option<(Hash256, i32)>,
    pub(crate) last_ping_nonce: u64,
    pub(crate) last_ping_time: Option<Instant>,
    pub(crate) last_ping_latency: Option<Duration>,
    pub(crate) messages_received: u64,
    pub(crate) messages_sent: u64,
    pub(crate) unknown_messages: u64,
    pub(crate) ignored_messages: u64,
}

impl Stats {
    /// btcd `UpdateLastBlockHeight` (since 2020): the height only moves up.
    pub(crate) fn update_last_block_height(&mut self, height: i32) {
        if height > self.last_block {
            self.last_block = height;
        }
    }

    /// A `headers` announcement: `first_prev` is the first header's previous-block
    /// hash, `last` the hash of the last of `count` headers. When they continue from
    /// the anchor, the remote's height is the anchor's plus `count`, and the last
    /// header becomes the anchor. Headers from elsewhere (a fork, a reply to an old
    /// locator) leave the height alone: only the application knows their heights.
    ///
    /// The last announced block moves only forward: to headers that continue from
    /// it or from the anchor, or to any headers while nothing is known yet. Headers
    /// that build elsewhere (a reply to an old locator, a fork) leave it alone.
    pub(crate) fn on_headers(&mut self, first_prev: Hash256, last: Hash256, count: usize) {
        let extends_anchor = self.height_anchor.is_some_and(|(a, _)| a == first_prev);
        let extends_last = self.last_announced_block.map_or(true, |h| h == first_prev);
        if extends_anchor || extends_last {
            self.last_announced_block = Some(last);
        }
        let Some((_, height)) = self.height_anchor else {
            return;
        };
        if !extends_anchor {
            return;
        }
        let Some(h) = i32::try_from(count)
            .ok()
            .and_then(|c| height.checked_add(c))
        else {
            return;
        };
        self.height_anchor = Some((last, h));
        self.update_last_block_height(h);
    }
}
