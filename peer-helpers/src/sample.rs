//! Uniform sampling without replacement: a partial Fisher–Yates shuffle.

use rand::Rng;

/// Reduces `items` to a uniformly random sample of at most `k` of them, without duplicates.
///
/// With `items.len() <= k` nothing changes (the order is kept, as btcd keeps it). With
/// more, the first `k` positions are filled by a partial Fisher–Yates shuffle — position
/// `i` swaps with a uniformly chosen position in `i..len` — and the rest is cut off, so
/// every `k`-subset is equally likely and comes in random order. It costs `k` random
/// numbers and swaps, whatever the length.
///
/// This is btcd's `PushAddrMsg` algorithm. btcd's `PushAddrV2Msg` shuffles with a
/// "swap" that copies one element over the other (producing duplicates and losing
/// addresses); that is not repeated here.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// let mut rng = StdRng::seed_from_u64(7);
/// let mut v: Vec<u32> = (0..100).collect();
/// peer_helpers::sample_in_place(&mut v, 10, &mut rng);
/// assert_eq!(v.len(), 10);
/// let mut sorted = v.clone();
/// sorted.sort();
/// sorted.dedup();
/// assert_eq!(sorted.len(), 10); // no duplicates
/// ```
pub fn sample_in_place<T, R: Rng + ?Sized>(items: &mut Vec<T>, k: usize, rng: &mut R) {
    let n = items.len();
    if n <= k {
        return;
    }
    for i in 0..k {
        let j = rng.gen_range(i..n);
        items.swap(i, j);
    }
    items.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn short_lists_keep_their_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut v: Vec<u32> = (0..10).collect();
        sample_in_place(&mut v, 10, &mut rng);
        assert_eq!(v, (0..10).collect::<Vec<_>>());
        sample_in_place(&mut v, 50, &mut rng);
        assert_eq!(v, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn zero_takes_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut v: Vec<u32> = (0..10).collect();
        sample_in_place(&mut v, 0, &mut rng);
        assert!(v.is_empty());
    }

    #[test]
    fn long_lists_are_cut_to_distinct_members() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut v: Vec<u32> = (0..5_000).collect();
        sample_in_place(&mut v, 1_000, &mut rng);
        assert_eq!(v.len(), 1_000);
        let mut s = v.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 1_000);
        assert!(s.iter().all(|x| *x < 5_000));
        // A sample of 1,000 from 5,000 in the original order would be astronomically unlikely.
        assert_ne!(v, s);
    }
}
