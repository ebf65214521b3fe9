//! A fast keyed hash for the known-inventory filter.
//!
//! Why: every `inv` entry received or sent is looked up in, or added to, a per-peer
//! filter of 1,000 entries; with the standard SipHash-1-3 that hashing was about a tenth
//! of a busy server's CPU in an inv flood. The keys are 32-byte hashes chosen by the
//! remote, so the hash must still be keyed with a secret the remote cannot learn, or it
//! could send entries that all land in one bucket. This is the folded-multiply
//! construction of wyhash/foldhash (each 64-bit word is mixed with the secret through a
//! full 64×64→128-bit product folded to 64 bits), keyed per filter from the process's
//! random `RandomState` seed. It is not a cryptographic MAC; it only has to make
//! collisions impractical to find blindly, and a filter holds at most 1,000 keys, so even
//! a bad bucket costs a bounded probe.

use std::hash::{BuildHasher, Hasher};

/// Arbitrary odd constants (digits of π) that separate the rounds.
const C0: u64 = 0x243f_6a88_85a3_08d3;
const C1: u64 = 0x1319_8a2e_0370_7344;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`KeyedHasher`]s with one secret.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedState {
    key: u64,
}

impl KeyedState {
    /// A state with a fresh secret from the standard library's per-process random
    /// seed (it reads the OS's randomness once per thread).
    pub(crate) fn new() -> KeyedState {
        let key = std::collections::hash_map::RandomState::new().hash_one(C1);
        KeyedState { key: key | 1 }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    #[inline]
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            h: self.key ^ C0,
            key: self.key,
        }
    }
}

/// The hasher of [`KeyedState`].
#[derive(Debug, Clone)]
pub(crate) struct KeyedHasher {
    h: u64,
    key: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.h = fold(self.h ^ u64::from_le_bytes(w), self.key ^ C1);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.h = fold(
                self.h ^ u64::from_le_bytes(w) ^ rest.len() as u64,
                self.key ^ C1,
            );
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.h = fold(self.h ^ u64::from(n), self.key ^ C1);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.h = fold(self.h ^ n, self.key ^ C1);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.key ^ C0)
    }
}

/// A [`BuildHasher`] for keys that already are keyed hashes (the known-inventory
/// filter's fingerprints): the key is its own hash, hashing it again would only cost.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;

    #[inline]
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// Passes one `u64` through (see [`Prehashed`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    /// Not used for `u64` keys; mixes bytes in anyway so any key type stays correct.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn prehashed_keys_are_their_own_hash() {
        for k in [0u64, 1, 0xdead_beef, u64::MAX] {
            assert_eq!(Prehashed.hash_one(k), k);
        }
        // Other key types still hash by their bytes.
        assert_ne!(Prehashed.hash_one([1u8, 2]), Prehashed.hash_one([2u8, 1]));
    }

    #[test]
    fn equal_keys_hash_equal_and_different_secrets_differ() {
        let a = KeyedState::new();
        let b = KeyedState::new();
        let key = ([7u8; 32], 2u32);
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
    }

    #[test]
    fn hashes_that_differ_in_one_byte_spread_over_buckets() {
        // 1,000 keys differing in a single byte position each: the low 10 bits (the
        // bucket of a 1,024-slot table) and the top 7 (hashbrown's control byte) must
        // both spread. The bounds hold for a uniformly random hash with overwhelming
        // probability: it fills ~638 of 1,024 buckets (standard deviation ~9), and
        // misses each of the 128 control values with probability (127/128)^1000 ≈ 0.0004
        // (expected 0.05 missing; 9 or more missing is below 10⁻¹⁵). Requiring all 128
        // failed one run in six.
        let s = KeyedState::new();
        for pos in [0usize, 7, 8, 31] {
            let mut low = HashSet::new();
            let mut top = HashSet::new();
            for i in 0..1000u32 {
                let mut k = [0u8; 32];
                k[pos] = i as u8;
                k[(pos + 1) % 32] = (i >> 8) as u8;
                let h = s.hash_one(k);
                low.insert(h & 1023);
                top.insert(h >> 57);
            }
            assert!(low.len() > 550, "position {pos}: {} buckets", low.len());
            assert!(top.len() >= 120, "position {pos}: {} values", top.len());
        }
    }
}
