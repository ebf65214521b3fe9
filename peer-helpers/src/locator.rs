//! Block locators: a short list of block hashes from the tip back to genesis that lets a
//! peer find the last block both sides share (btcd `blockchain.BlockLocator`).

use core::iter::FusedIterator;

use wire_codec::Hash256;

use crate::error::Error;

/// How many hashes at the head of a locator are consecutive blocks.
pub const LOCATOR_DENSE_PREFIX: usize = 10;

/// The longest locator [`block_locator`] builds, reached for a tip at height `u32::MAX`:
/// 10 consecutive hashes, 30 doubling steps, genesis. Well within both the wire limit
/// (500) and Bitcoin Core's (101).
pub const MAX_LOCATOR_LEN: usize = 41;

/// Heights of a locator as distances walked down from a tip, in `u64` so that slice
/// lengths and `u32` heights share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Walk {
    next: Option<u64>,
    step: u64,
    taken: usize,
}

impl Walk {
    const fn new(tip: u64) -> Walk {
        Walk {
            next: Some(tip),
            step: 1,
            taken: 0,
        }
    }
}

impl Iterator for Walk {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let height = self.next?;
        self.taken += 1;
        self.next = if height == 0 {
            None
        } else {
            if self.taken >= LOCATOR_DENSE_PREFIX {
                self.step = self.step.saturating_mul(2);
            }
            Some(height.saturating_sub(self.step))
        };
        Some(height)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (*self).count();
        (n, Some(n))
    }

    fn count(self) -> usize {
        self.fold(0, |n, _| n + 1)
    }
}

/// The heights a block locator names, tip first, genesis last.
///
/// The first 10 are the tip and the 9 blocks below it; after that the distance between
/// entries doubles (2, 4, 8, …) until it would pass genesis, and genesis (height 0) ends
/// the list. A tip at height `h` gives about `10 + log2(h)` heights, at most
/// [`MAX_LOCATOR_LEN`]. Exposed so a caller whose chain is not indexed by height (a
/// database, a skip list) can look up exactly these.
///
/// ```
/// use peer_helpers::locator_heights;
/// let h: Vec<u32> = locator_heights(100).collect();
/// assert_eq!(h, [100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 89, 85, 77, 61, 29, 0]);
/// assert_eq!(locator_heights(0).collect::<Vec<_>>(), [0]);
/// ```
pub fn locator_heights(tip_height: u32) -> LocatorHeights {
    LocatorHeights(Walk::new(u64::from(tip_height)))
}

/// Iterator over the heights of a block locator; see [`locator_heights`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatorHeights(Walk);

impl Iterator for LocatorHeights {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        // Every height is at most the tip, which came in as a u32.
        self.0.next().and_then(|h| u32::try_from(h).ok())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for LocatorHeights {}
impl FusedIterator for LocatorHeights {}

/// Builds the block locator of a chain whose tip is at `tip_height`, asking `hash_at` for
/// the hash at each height the locator names ([`locator_heights`]): the 10 most recent
/// blocks, then doubling steps back, the genesis block last.
///
/// # Errors
///
/// [`Error::MissingBlock`] with the first height `hash_at` had no hash for.
///
/// ```
/// use peer_helpers::block_locator;
/// use wire_codec::Hash256;
///
/// // A chain of 1,000,001 blocks where block h has a hash derived from h.
/// let hash_at = |h: u32| Some(Hash256::sha256d(&h.to_le_bytes()));
/// let loc = block_locator(1_000_000, hash_at).unwrap();
/// assert_eq!(loc.len(), 29);
/// assert_eq!(loc[0], hash_at(1_000_000).unwrap());
/// assert_eq!(loc[9], hash_at(999_991).unwrap());
/// assert_eq!(loc.last(), hash_at(0).as_ref());
///
/// assert!(block_locator(5, |h| (h < 3).then(|| Hash256([0; 32]))).is_err());
/// ```
pub fn block_locator<F>(tip_height: u32, mut hash_at: F) -> Result<Vec<Hash256>, Error>
where
    F: FnMut(u32) -> Option<Hash256>,
{
    let heights = locator_heights(tip_height);
    let mut out = Vec::with_capacity(heights.len());
    for height in heights {
        out.push(hash_at(height).ok_or(Error::MissingBlock { height })?);
    }
    Ok(out)
}

/// Builds the block locator of a chain held as a slice indexed by height (`chain[0]` is
/// genesis, the last element the tip). An empty chain gives an empty locator.
///
/// ```
/// use peer_helpers::block_locator_from_slice;
/// use wire_codec::Hash256;
///
/// let chain: Vec<Hash256> = (0..=20u8).map(|i| Hash256([i; 32])).collect();
/// let loc = block_locator_from_slice(&chain);
/// let firsts: Vec<u8> = loc.iter().map(|h| h.0[0]).collect();
/// assert_eq!(firsts, [20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 9, 5, 0]);
/// assert!(block_locator_from_slice(&[]).is_empty());
/// ```
pub fn block_locator_from_slice(chain: &[Hash256]) -> Vec<Hash256> {
    let Some(tip) = chain.len().checked_sub(1) else {
        return Vec::new();
    };
    let walk = Walk::new(tip as u64);
    let mut out = Vec::with_capacity(walk.count());
    // Every height is at most the tip, an index of `chain`.
    out.extend(walk.filter_map(|h| usize::try_from(h).ok().and_then(|i| chain.get(i)).copied()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_locator_is_bounded() {
        assert_eq!(locator_heights(u32::MAX).len(), MAX_LOCATOR_LEN);
        assert_eq!(locator_heights(u32::MAX).count(), MAX_LOCATOR_LEN);
        assert_eq!(locator_heights(u32::MAX).last(), Some(0));
    }

    #[test]
    fn small_chains_are_listed_whole() {
        for tip in 0..=10u32 {
            let h: Vec<u32> = locator_heights(tip).collect();
            let all: Vec<u32> = (0..=tip).rev().collect();
            assert_eq!(h, all, "tip {tip}");
        }
        // 11 blocks above genesis: the 11th entry steps by 2 and lands on genesis.
        assert_eq!(
            locator_heights(11).collect::<Vec<_>>(),
            [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 0]
        );
    }

    #[test]
    fn missing_hash_names_its_height() {
        let r = block_locator(1_000, |h| (h != 991).then_some(Hash256::ZERO));
        assert_eq!(r, Err(Error::MissingBlock { height: 991 }));
    }

    #[test]
    fn iterator_length_is_exact_midway() {
        let mut it = locator_heights(5_000);
        let total = it.len();
        it.next();
        it.next();
        assert_eq!(it.len(), total - 2);
        assert_eq!(it.count(), total - 2);
    }
}
