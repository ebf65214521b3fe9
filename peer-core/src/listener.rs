//! The callback interface (btcd `MessageListeners`) and the function that drives it.

use std::time::Instant;

use bytes::Bytes;

use wire_codec::message::{
    Addr, AddrV2, Alert, Block, BlockLocator, BlockTxn, CFCheckpt, CFHeaders, CFilter, CmpctBlock,
    FeeFilter, FilterAdd, FilterLoad, GetBlockTxn, GetCFCheckpt, GetCFHeaders, GetCFilters,
    Headers, Inventory, MerkleBlock, Message, Ping, Pong, Reject, SendCmpct, SendTxRcncl,
    Transaction, Version,
};
use wire_codec::{Command, Error as CodecError};

use crate::event::Event;
use crate::peer::Peer;
use crate::reason::DisconnectReason;

/// Callbacks for everything a peer reports, one method per message, each a no-op by
/// default. Methods get the peer mutably so they can answer (queue messages, update
/// heights, disconnect).
///
/// Callbacks run on the driver's task; time spent in them should be reported with
/// [`Peer::add_processing_time`] so stall deadlines are not charged for it
/// ([`dispatch`] does not measure time itself: it never reads a clock).
///
/// ```
/// use peer_core::{Listener, Peer};
/// use wire_codec::message::{Message, Ping};
///
/// struct PingCounter(u32);
/// impl Listener for PingCounter {
///     fn on_ping(&mut self, _peer: &mut Peer, _msg: Ping) {
///         self.0 += 1;
///     }
/// }
/// # let _ = PingCounter(0);
/// ```
#[allow(unused_variables)]
pub trait Listener {
    /// The remote's version. Return a reject to refuse the peer: the reject is sent
    /// (where the protocol allows) and the peer disconnects.
    fn on_version(&mut self, peer: &mut Peer, msg: &Version) -> Option<Reject> {
        None
    }
    /// The remote's verack.
    fn on_verack(&mut self, peer: &mut Peer) {}
    /// The handshake completed (after `on_verack`).
    fn on_handshake_complete(&mut self, peer: &mut Peer, version: u32) {}
    /// `ping` (the peer has already queued the pong).
    fn on_ping(&mut self, peer: &mut Peer, msg: Ping) {}
    /// `pong` (the peer has already matched it against its ping).
    fn on_pong(&mut self, peer: &mut Peer, msg: Pong) {}
    /// `getaddr`.
    fn on_get_addr(&mut self, peer: &mut Peer) {}
    /// `addr`.
    fn on_addr(&mut self, peer: &mut Peer, msg: Addr) {}
    /// `addrv2` (BIP155).
    fn on_addr_v2(&mut self, peer: &mut Peer, msg: AddrV2) {}
    /// `sendaddrv2` during the handshake (BIP155).
    fn on_send_addr_v2(&mut self, peer: &mut Peer) {}
    /// `wtxidrelay` during the handshake (BIP339).
    fn on_wtxid_relay(&mut self, peer: &mut Peer) {}
    /// `inv` (its entries are already in the known-inventory filter).
    fn on_inv(&mut self, peer: &mut Peer, msg: Inventory) {}
    /// `getdata`.
    fn on_get_data(&mut self, peer: &mut Peer, msg: Inventory) {}
    /// `notfound`.
    fn on_not_found(&mut self, peer: &mut Peer, msg: Inventory) {}
    /// `getblocks`.
    fn on_get_blocks(&mut self, peer: &mut Peer, msg: BlockLocator) {}
    /// `getheaders`.
    fn on_get_headers(&mut self, peer: &mut Peer, msg: BlockLocator) {}
    /// `headers`.
    fn on_headers(&mut self, peer: &mut Peer, msg: Headers) {}
    /// `block`, decoded, and its bytes exactly as received (btcd's `OnBlock` gets both):
    /// a zero-copy view of the payload the transactions already share, so storing or
    /// relaying it costs no copy and no re-encoding.
    fn on_block(&mut self, peer: &mut Peer, msg: Block, raw: Bytes) {}
    /// `tx`.
    fn on_tx(&mut self, peer: &mut Peer, msg: Transaction) {}
    /// `mempool` (BIP35).
    fn on_mem_pool(&mut self, peer: &mut Peer) {}
    /// `reject` (BIP61).
    fn on_reject(&mut self, peer: &mut Peer, msg: Reject) {}
    /// `sendheaders` (BIP130).
    fn on_send_headers(&mut self, peer: &mut Peer) {}
    /// `feefilter` (BIP133).
    fn on_fee_filter(&mut self, peer: &mut Peer, msg: FeeFilter) {}
    /// `filterload` (BIP37; only when we advertise NODE_BLOOM).
    fn on_filter_load(&mut self, peer: &mut Peer, msg: FilterLoad) {}
    /// `filteradd` (BIP37; only when we advertise NODE_BLOOM).
    fn on_filter_add(&mut self, peer: &mut Peer, msg: FilterAdd) {}
    /// `filterclear` (BIP37; only when we advertise NODE_BLOOM).
    fn on_filter_clear(&mut self, peer: &mut Peer) {}
    /// `merkleblock` (BIP37).
    fn on_merkle_block(&mut self, peer: &mut Peer, msg: MerkleBlock) {}
    /// `getcfilters` (BIP157).
    fn on_get_cfilters(&mut self, peer: &mut Peer, msg: GetCFilters) {}
    /// `cfilter` (BIP157).
    fn on_cfilter(&mut self, peer: &mut Peer, msg: CFilter) {}
    /// `getcfheaders` (BIP157).
    fn on_get_cfheaders(&mut self, peer: &mut Peer, msg: GetCFHeaders) {}
    /// `cfheaders` (BIP157).
    fn on_cfheaders(&mut self, peer: &mut Peer, msg: CFHeaders) {}
    /// `getcfcheckpt` (BIP157).
    fn on_get_cfcheckpt(&mut self, peer: &mut Peer, msg: GetCFCheckpt) {}
    /// `cfcheckpt` (BIP157). (btcd declares `OnCFCheckpt` but never calls it; this is
    /// called.)
    fn on_cfcheckpt(&mut self, peer: &mut Peer, msg: CFCheckpt) {}
    /// `sendcmpct` (BIP152).
    fn on_send_cmpct(&mut self, peer: &mut Peer, msg: SendCmpct) {}
    /// `cmpctblock` (BIP152).
    fn on_cmpct_block(&mut self, peer: &mut Peer, msg: CmpctBlock) {}
    /// `getblocktxn` (BIP152).
    fn on_get_block_txn(&mut self, peer: &mut Peer, msg: GetBlockTxn) {}
    /// `blocktxn` (BIP152).
    fn on_block_txn(&mut self, peer: &mut Peer, msg: BlockTxn) {}
    /// `alert` (retired; opaque).
    fn on_alert(&mut self, peer: &mut Peer, msg: Alert) {}
    /// `sendtxrcncl` (BIP330), between `version` and `verack` only (after `verack`
    /// the peer disconnects, as Bitcoin Core does).
    fn on_send_tx_rcncl(&mut self, peer: &mut Peer, msg: SendTxRcncl) {}
    /// A message whose command this codec does not know, with its payload untouched
    /// (BIP434 `feature` messages during the handshake, experiments, other
    /// networks' extensions). Delivered between `version` and `verack` and after.
    fn on_unknown(&mut self, peer: &mut Peer, command: Command, payload: Bytes) {}
    /// Any message without a dedicated method (future variants).
    fn on_other(&mut self, peer: &mut Peer, msg: Message) {}
    /// A message queued with `token` was completely written.
    fn on_sent(&mut self, peer: &mut Peer, token: u64) {}
    /// A message queued with `token` will never be written.
    fn on_failed(&mut self, peer: &mut Peer, token: u64) {}
    /// A frame was read or failed to read (btcd `OnRead`): its size, its command when
    /// the header could be read, the message when the peer hands it on (it is then
    /// dispatched to its own method right after), and the decode error if it failed.
    /// Only with [`Config::report_io`](crate::Config::report_io).
    fn on_read(
        &mut self,
        peer: &mut Peer,
        bytes: usize,
        command: Option<Command>,
        msg: Option<&Message>,
        error: Option<&CodecError>,
    ) {
    }
    /// A message was completely written (btcd `OnWrite`). Only with
    /// [`Config::report_io`](crate::Config::report_io).
    fn on_write(&mut self, peer: &mut Peer, bytes: usize, msg: &Message) {}
    /// The peer ended.
    fn on_disconnect(&mut self, peer: &mut Peer, reason: &DisconnectReason) {}
}

/// Hands one event to the matching listener method. For [`Event::Version`] it calls
/// [`Listener::on_version`] and then [`Peer::accept_version`] or
/// [`Peer::reject_version`] with its answer.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use peer_core::{dispatch, Config, Listener, Peer};
///
/// struct Quiet;
/// impl Listener for Quiet {}
///
/// let now = Instant::now();
/// let cfg = Arc::new(Config::new(wire_codec::Network::Regtest));
/// let mut peer = Peer::new_outbound(cfg, "127.0.0.1:18444".parse().unwrap(), now, 1_700_000_000, 1);
/// peer.disconnect(peer_core::DisconnectReason::LocalRequest);
/// while let Some(ev) = peer.poll_event() {
///     dispatch(&mut peer, ev, &mut Quiet, now);
/// }
/// assert!(peer.is_closed());
/// ```
pub fn dispatch<L: Listener + ?Sized>(
    peer: &mut Peer,
    event: Event,
    listener: &mut L,
    now: Instant,
) {
    match event {
        Event::Version(v) => match listener.on_version(peer, &v) {
            None => peer.accept_version(now),
            Some(reject) => peer.reject_version(reject, now),
        },
        Event::HandshakeComplete { version, .. } => listener.on_handshake_complete(peer, version),
        Event::Message(m) => dispatch_message(peer, m, listener),
        Event::Sent(t) => listener.on_sent(peer, t),
        Event::Failed(t) => listener.on_failed(peer, t),
        Event::Read {
            bytes,
            command,
            error: Some(e),
        } => listener.on_read(peer, bytes, command, None, Some(&e)),
        Event::Read {
            bytes,
            command,
            error: None,
        } => peer.with_next_message(|peer, msg| listener.on_read(peer, bytes, command, msg, None)),
        Event::Written { bytes, message } => listener.on_write(peer, bytes, &message),
        Event::Disconnected(r) => listener.on_disconnect(peer, &r),
    }
}

fn dispatch_message<L: Listener + ?Sized>(peer: &mut Peer, msg: Message, l: &mut L) {
    match msg {
        Message::Verack => l.on_verack(peer),
        Message::Ping(m) => l.on_ping(peer, m),
        Message::Pong(m) => l.on_pong(peer, m),
        Message::GetAddr => l.on_get_addr(peer),
        Message::Addr(m) => l.on_addr(peer, m),
        Message::AddrV2(m) => l.on_addr_v2(peer, m),
        Message::SendAddrV2 => l.on_send_addr_v2(peer),
        Message::WtxidRelay => l.on_wtxid_relay(peer),
        Message::Inv(m) => l.on_inv(peer, m),
        Message::GetData(m) => l.on_get_data(peer, m),
        Message::NotFound(m) => l.on_not_found(peer, m),
        Message::GetBlocks(m) => l.on_get_blocks(peer, m),
        Message::GetHeaders(m) => l.on_get_headers(peer, m),
        Message::Headers(m) => l.on_headers(peer, m),
        Message::Block(m) => {
            let raw = m.raw().cloned().unwrap_or_default();
            l.on_block(peer, *m, raw)
        }
        Message::Tx(m) => l.on_tx(peer, m),
        Message::MemPool => l.on_mem_pool(peer),
        Message::Reject(m) => l.on_reject(peer, *m),
        Message::SendHeaders => l.on_send_headers(peer),
        Message::FeeFilter(m) => l.on_fee_filter(peer, m),
        Message::FilterLoad(m) => l.on_filter_load(peer, m),
        Message::FilterAdd(m) => l.on_filter_add(peer, m),
        Message::FilterClear => l.on_filter_clear(peer),
        Message::MerkleBlock(m) => l.on_merkle_block(peer, *m),
        Message::GetCFilters(m) => l.on_get_cfilters(peer, m),
        Message::CFilter(m) => l.on_cfilter(peer, m),
        Message::GetCFHeaders(m) => l.on_get_cfheaders(peer, m),
        Message::CFHeaders(m) => l.on_cfheaders(peer, *m),
        Message::GetCFCheckpt(m) => l.on_get_cfcheckpt(peer, m),
        Message::CFCheckpt(m) => l.on_cfcheckpt(peer, m),
        Message::SendCmpct(m) => l.on_send_cmpct(peer, m),
        Message::CmpctBlock(m) => l.on_cmpct_block(peer, *m),
        Message::GetBlockTxn(m) => l.on_get_block_txn(peer, m),
        Message::BlockTxn(m) => l.on_block_txn(peer, m),
        Message::Alert(m) => l.on_alert(peer, m),
        Message::SendTxRcncl(m) => l.on_send_tx_rcncl(peer, m),
        Message::Unknown { command, payload } => l.on_unknown(peer, command, payload),
        other => l.on_other(peer, other),
    }
}
