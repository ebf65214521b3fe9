//! An O(1) most-recently-used set with a fixed capacity.
//!
//! btcd's `mruInventoryMap` / `mruNonceMap` (and dcrd's `lru.Cache` that replaced them)
//! as one generic structure: a hash map from key to slot plus an intrusive doubly linked
//! list threaded through a `Vec` of slots, so adding, looking up, refreshing, evicting
//! and removing are all constant time and the set never allocates beyond its capacity.
//! Nothing is allocated until the first insertion.
//!
//! Keys are stored by value. (btcd after 2020 passed `*wire.InvVect` pointers as the
//! cache key, so two announcements of the same item never matched — btcd-peer.md §10.
//! Keying by value is what the original map did and what the filter needs.)

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    prev: u32,
    next: u32,
}

/// A set that remembers at most `capacity` keys, forgetting the least recently added
/// (or re-added) one first.
///
/// ```
/// use peer_core::MruSet;
/// let mut s = MruSet::new(2);
/// s.insert(1u64);
/// s.insert(2);
/// s.insert(1); // refreshes 1
/// s.insert(3); // evicts 2, the least recently used
/// assert!(s.contains(&1) && s.contains(&3) && !s.contains(&2));
/// ```
#[derive(Debug, Clone)]
pub struct MruSet<K, S = RandomState> {
    map: HashMap<K, u32, S>,
    slots: Vec<Slot<K>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Copy> MruSet<K> {
    /// An empty set holding at most `capacity` keys (0: holds nothing). Allocates
    /// nothing until the first insertion.
    pub fn new(capacity: usize) -> MruSet<K> {
        MruSet::with_hasher(capacity, RandomState::new())
    }
}

impl<K: Hash + Eq + Copy, S: BuildHasher + Clone> MruSet<K, S> {
    /// An empty set with the given hash builder (keys chosen by a remote need a keyed
    /// one). Allocates nothing until the first insertion.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use peer_core::MruSet;
    /// let mut s = MruSet::with_hasher(1, RandomState::new());
    /// s.insert(5u32);
    /// assert!(s.contains(&5));
    /// ```
    pub fn with_hasher(capacity: usize, hasher: S) -> MruSet<K, S> {
        MruSet {
            map: HashMap::with_hasher(hasher),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.min(NIL as usize - 1),
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether `key` is held. Does not refresh it (btcd's `Exists`).
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Adds `key` as the most recently used, evicting the least recently used key when
    /// full. Returns the evicted key, if any.
    pub fn insert(&mut self, key: K) -> Option<K> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(&i) = self.map.get(&key) {
            self.unlink(i);
            self.push_front(i);
            return None;
        }
        if self.slots.len() >= self.capacity {
            let i = self.tail;
            let slot = self.slots.get_mut(i as usize)?;
            let old = core::mem::replace(&mut slot.key, key);
            self.map.remove(&old);
            self.unlink(i);
            self.push_front(i);
            self.map.insert(key, i);
            return Some(old);
        }
        if self.slots.is_empty() {
            // Reserve the whole capacity once for small sets; grow geometrically
            // for large ones.
            self.slots.reserve_exact(self.capacity.min(64));
        }
        let i = self.slots.len() as u32;
        self.slots.push(Slot {
            key,
            prev: NIL,
            next: NIL,
        });
        self.push_front(i);
        self.map.insert(key, i);
        None
    }

    /// Removes `key`; returns whether it was held.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(i) = self.map.remove(key) else {
            return false;
        };
        self.unlink(i);
        let last = (self.slots.len() - 1) as u32;
        if i != last {
            // Move the last slot into the hole and repoint its neighbours.
            let _removed = self.slots.swap_remove(i as usize);
            let (prev, next, k) = {
                let s = &self.slots[i as usize];
                (s.prev, s.next, s.key)
            };
            if prev == NIL {
                self.head = i;
            } else {
                self.slots[prev as usize].next = i;
            }
            if next == NIL {
                self.tail = i;
            } else {
                self.slots[next as usize].prev = i;
            }
            self.map.insert(k, i);
        } else {
            self.slots.pop();
        }
        true
    }

    /// Forgets every key and releases the memory.
    pub fn clear(&mut self) {
        self.map = HashMap::with_hasher(self.map.hasher().clone());
        self.slots = Vec::new();
        self.head = NIL;
        self.tail = NIL;
    }

    /// Keys from the most to the least recently used.
    pub fn iter(&self) -> impl Iterator<Item = &K> + '_ {
        let mut i = self.head;
        core::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some(&s.key)
        })
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.slots[old as usize].prev = i;
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// Port of btcd's TestMruNonceMap / TestMruInventoryMap intent: after adding ten
    /// items the last `limit` are held; re-adding the oldest keeps it over the next one.
    #[test]
    fn keeps_the_most_recent_and_refreshes_on_re_add() {
        for limit in [0usize, 1, 5, 7, 9, 10] {
            let mut s = MruSet::new(limit);
            for i in 0..10u64 {
                s.insert(i);
            }
            for i in 0..10u64 {
                let want = (i as usize) >= 10 - limit;
                assert_eq!(s.contains(&i), want, "limit {limit} item {i}");
            }
            if limit > 1 {
                let lru = (10 - limit) as u64;
                s.insert(lru);
                s.insert(11);
                assert!(s.contains(&lru), "re-added item kept (limit {limit})");
                assert!(
                    !s.contains(&(lru + 1)),
                    "next oldest evicted (limit {limit})"
                );
            }
            for i in 0..12u64 {
                s.remove(&i);
                assert!(!s.contains(&i));
            }
            assert!(s.is_empty());
        }
    }

    #[test]
    fn iterates_most_recent_first() {
        let mut s = MruSet::new(3);
        s.insert('a');
        s.insert('b');
        s.insert('c');
        s.insert('a');
        assert_eq!(s.iter().copied().collect::<String>(), "acb");
        assert_eq!(s.insert('d'), Some('b'));
        assert!(s.remove(&'c'));
        assert_eq!(s.iter().copied().collect::<String>(), "da");
    }

    proptest! {
        /// The set behaves like a naive VecDeque model under any operation sequence.
        #[test]
        fn matches_a_naive_model(cap in 0usize..6, ops in prop::collection::vec((0u8..3, 0u8..10), 0..200)) {
            let mut s = MruSet::new(cap);
            let mut model: VecDeque<u8> = VecDeque::new();
            for (op, k) in ops {
                match op {
                    0 | 1 => {
                        s.insert(k);
                        if cap > 0 {
                            if let Some(p) = model.iter().position(|&x| x == k) {
                                model.remove(p);
                            } else if model.len() == cap {
                                model.pop_back();
                            }
                            model.push_front(k);
                        }
                    }
                    _ => {
                        let had = s.remove(&k);
                        let p = model.iter().position(|&x| x == k);
                        prop_assert_eq!(had, p.is_some());
                        if let Some(p) = p { model.remove(p); }
                    }
                }
                prop_assert_eq!(s.iter().copied().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(s.len(), model.len());
            }
        }
    }
}
