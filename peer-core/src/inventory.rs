//! Inventory announcements: batching, trickling and the known-inventory filter.
//!
//! As btcd's `queueHandler`: inventory queued by the application is held and sent every
//! trickle interval (default 10 s) in `inv` messages of at most 1,000 entries. Block
//! announcements skip the wait. Inventory the remote is known to have — it announced it
//! to us, or we announced it to it — is filtered by a per-peer MRU of 1,000 entries keyed
//! by type and hash.
//!
//! The filter stores a 64-bit keyed fingerprint of each entry, not the 36-byte entry: a
//! full filter takes 51 KB instead of 129 KB per peer, and an insert into full filters
//! at 1,000 busy peers (out of cache) takes 134 ns instead of 237 ns
//! (`cargo bench -p peer-core --bench peer -- known_inventory`, which prints both). Two different entries
//! share a fingerprint with probability 2⁻⁶⁴ per pair; at 1,000 entries a lookup is
//! wrongly "known" about once in 10¹⁶, and the cost is one announcement not sent to one
//! peer. The secret is per peer and never leaves the process, so a remote cannot
//! search for colliding hashes.

use std::time::{Duration, Instant};

use wire_codec::message::{InvType, InvVect};

use std::hash::BuildHasher;

use wire_codec::message::{Inventory, Message};

use crate::handshake::Phase;
use crate::outbound::Encoding;
use crate::peer::Peer;

use crate::keyed_hash::{KeyedState, Prehashed};
use crate::mru::MruSet;
use crate::timer::tick_after;

/// Largest number of entries in one trickled `inv` (btcd `maxInvTrickleSize`).
pub const MAX_INV_TRICKLE_SIZE: usize = 1000;

/// Capacity of the known-inventory filter (btcd `maxKnownInventory`).
pub const MAX_KNOWN_INVENTORY: usize = 1000;

/// Queued announcements beyond this are trickled at once instead of waiting for the
/// tick (the output buffer's bound then applies). btcd's queue is unbounded.
pub const MAX_PENDING_INVENTORY: usize = 50_000;

/// Per-peer inventory state.
#[derive(Debug)]
pub(crate) struct InventoryState {
    /// Fingerprints of what the remote has (see the module docs).
    known: MruSet<u64, Prehashed>,
    /// The fingerprints' per-peer secret: the remote chooses the hashes it announces.
    secret: KeyedState,
    pending: Vec<InvVect>,
    deadline: Option<Instant>,
}

impl Default for InventoryState {
    fn default() -> Self {
        InventoryState {
            known: MruSet::with_hasher(MAX_KNOWN_INVENTORY, Prehashed),
            secret: KeyedState::new(),
            pending: Vec::new(),
            deadline: None,
        }
    }
}

/// Whether btcd sends this type without trickling (`InvTypeBlock`, `InvTypeWitnessBlock`).
pub(crate) fn is_immediate(kind: InvType) -> bool {
    kind == InvType::BLOCK || kind == InvType::WITNESS_BLOCK
}

impl InventoryState {
    /// The filter's key for `iv`.
    #[inline]
    fn fingerprint(&self, iv: &InvVect) -> u64 {
        self.secret.hash_one(iv)
    }

    /// Whether the remote is known to have `iv`.
    pub(crate) fn is_known(&self, iv: &InvVect) -> bool {
        self.known.contains(&self.fingerprint(iv))
    }

    /// Records that the remote has `iv`.
    pub(crate) fn add_known(&mut self, iv: InvVect) {
        let fp = self.fingerprint(&iv);
        self.known.insert(fp);
    }

    /// Queues `iv` for the next trickle. `trickle` is `Some((anchor, interval, now))`
    /// once the handshake is done, to schedule the tick. Returns true when the queue is
    /// so long it should be flushed now.
    pub(crate) fn queue(
        &mut self,
        iv: InvVect,
        trickle: Option<(Instant, Duration, Instant)>,
    ) -> bool {
        self.pending.push(iv);
        if self.deadline.is_none() {
            if let Some((anchor, interval, now)) = trickle {
                self.deadline = Some(tick_after(anchor, interval, now));
            }
        }
        self.pending.len() >= MAX_PENDING_INVENTORY
    }

    /// Schedules the first tick after the handshake if inventory waited for it.
    pub(crate) fn start(&mut self, anchor: Instant, interval: Duration, now: Instant) {
        if !self.pending.is_empty() && self.deadline.is_none() {
            self.deadline = Some(tick_after(anchor, interval, now));
        }
    }

    /// The next trickle, if anything is queued.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            None
        } else {
            self.deadline
        }
    }

    /// Entries queued.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the queued entries the remote does not know yet, in order, in `inv`-sized
    /// chunks, and marks them known (btcd's trickle tick). With `wtx`, transactions
    /// queued as `MSG_TX` (before `wtxidrelay` was known) go out as `MSG_WTX`.
    pub(crate) fn take_batches(&mut self, wtx: bool) -> Vec<Vec<InvVect>> {
        self.deadline = None;
        let pending = core::mem::take(&mut self.pending);
        let mut batches: Vec<Vec<InvVect>> = Vec::new();
        let mut cur: Vec<InvVect> = Vec::new();
        for mut iv in pending {
            if wtx && iv.kind == InvType::TX {
                iv.kind = InvType::WTX;
            }
            let fp = self.fingerprint(&iv);
            if self.known.contains(&fp) {
                continue;
            }
            cur.push(iv);
            self.known.insert(fp);
            if cur.len() >= MAX_INV_TRICKLE_SIZE {
                batches.push(core::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        batches
    }

    /// Forgets everything (the peer closed).
    pub(crate) fn clear(&mut self) {
        self.known.clear();
        self.pending = Vec::new();
        self.deadline = None;
    }
}

impl Peer {
    /// Inventory entries waiting for the next trickle.
    pub fn pending_inventory(&self) -> usize {
        self.inventory.pending_len()
    }

    /// Queues an inventory announcement (btcd `QueueInventory`). Nothing happens if
    /// the remote is known to have it or the peer closed. Blocks (`MSG_BLOCK`,
    /// `MSG_WITNESS_BLOCK`) are announced at once; everything else waits for the next
    /// trickle tick and goes out in `inv` messages of at most 1,000 entries. Inventory
    /// queued before the handshake is sent after it (btcd drops it).
    ///
    /// A transaction (`MSG_TX`) queued for a remote with which `wtxidrelay` was
    /// negotiated (BIP339) is announced as `MSG_WTX` with the same hash: Bitcoin Core
    /// ignores `MSG_TX` announcements from such peers. The hash is right for
    /// transactions without witness (txid = wtxid); for the others use
    /// [`Peer::queue_transaction_inventory`], which knows both ids.
    pub fn queue_inventory(&mut self, iv: InvVect) {
        let iv = self.announced_as(iv);
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

    /// Queues the announcement of a transaction by the id the remote wants: its wtxid
    /// as `MSG_WTX` when `wtxidrelay` was negotiated (BIP339), its txid as `MSG_TX`
    /// otherwise. Before the handshake completes, which one is decided when the
    /// announcement goes out.
    pub fn queue_transaction_inventory(
        &mut self,
        txid: wire_codec::Hash256,
        wtxid: wire_codec::Hash256,
    ) {
        if self.phase == Phase::Established || self.is_closed() {
            let iv = if self.features.wtxid_relay {
                InvVect::new(InvType::WTX, wtxid)
            } else {
                InvVect::new(InvType::TX, txid)
            };
            return self.queue_inventory(iv);
        }
        self.pending_wtxids.push((txid, wtxid));
    }

    /// How `iv` is announced to this remote: `MSG_TX` becomes `MSG_WTX` once
    /// `wtxidrelay` was negotiated.
    pub(crate) fn announced_as(&self, iv: InvVect) -> InvVect {
        if iv.kind == InvType::TX && self.features.wtxid_relay {
            InvVect::new(InvType::WTX, iv.hash)
        } else {
            iv
        }
    }

    /// Announces `iv` in its own `inv` now, skipping the trickle (still filtered by the
    /// known-inventory set, which it joins).
    pub fn queue_inventory_immediate(&mut self, iv: InvVect) {
        let iv = self.announced_as(iv);
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
            self.inventory.add_known(self.announced_as(iv));
        }
    }

    /// Whether the remote is known to have `iv`.
    pub fn knows_inventory(&self, iv: &InvVect) -> bool {
        self.inventory.is_known(&self.announced_as(*iv))
    }

    pub(crate) fn trickle(&mut self) {
        for batch in self.inventory.take_batches(self.features.wtxid_relay) {
            if self.is_closed() {
                return;
            }
            self.send_now(Message::Inv(Inventory::new(batch)), None, Encoding::Witness);
        }
    }

    /// What received messages tell about the remote's inventory: everything in an
    /// `inv` is known to it (not announced back), and new block announcements (`inv`,
    /// `headers`) move the last announced block forward — never back.
    pub(crate) fn inventory_on_message(&mut self, msg: &Message) {
        match msg {
            Message::Inv(inv) => {
                let mut last_block = None;
                for iv in &inv.inventory {
                    // A block the remote announced before is not news: it must not
                    // move the last announced block back (a getblocks reply repeats
                    // old blocks).
                    if iv.kind.is_block() && !self.inventory.is_known(iv) {
                        last_block = Some(iv.hash);
                    }
                    self.inventory.add_known(*iv);
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
    }

    /// The trickle tick.
    pub(crate) fn inventory_tick(&mut self, now: Instant) {
        if matches!(self.inventory.deadline(), Some(d) if d <= now) {
            self.trickle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::Hash256;

    fn tx(i: u32) -> InvVect {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_le_bytes());
        InvVect::new(InvType::TX, Hash256(h))
    }

    #[test]
    fn batches_skip_known_and_duplicates_and_chunk() {
        let mut s = InventoryState::default();
        s.add_known(tx(0));
        for i in 0..2500 {
            s.queue(tx(i), None);
        }
        s.queue(tx(2400), None); // a recent duplicate is filtered
        let b = s.take_batches(false);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 499]
        );
        assert_eq!(b[0][0], tx(1));
        assert_eq!(s.pending_len(), 0);
        // The filter holds the last 1,000 sent.
        assert!(s.is_known(&tx(2499)) && !s.is_known(&tx(1)));
    }

    #[test]
    fn keyed_by_type_and_hash() {
        let mut s = InventoryState::default();
        s.add_known(tx(1));
        assert!(s.is_known(&tx(1)));
        let witness = InvVect::new(InvType::WITNESS_TX, tx(1).hash);
        assert!(!s.is_known(&witness));
    }
}
