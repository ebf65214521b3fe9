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
