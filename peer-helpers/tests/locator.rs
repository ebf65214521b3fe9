//! Block locators: shape (10 consecutive, doubling steps, genesis last) and bounds.

use peer_helpers::{
    block_locator, block_locator_from_slice, locator_heights, Error, LOCATOR_DENSE_PREFIX,
    MAX_LOCATOR_LEN,
};
use proptest::prelude::*;
use wire_codec::Hash256;

fn hash_of(height: u32) -> Hash256 {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&height.to_le_bytes());
    b[31] = 0x5a;
    Hash256(b)
}

/// Checks every rule of a locator's heights for a tip.
fn check_shape(tip: u32, heights: &[u32]) -> Result<(), TestCaseError> {
    prop_assert_eq!(heights.first(), Some(&tip));
    prop_assert_eq!(heights.last(), Some(&0));
    prop_assert!(heights.len() <= MAX_LOCATOR_LEN);
    prop_assert!(
        heights.windows(2).all(|w| w[0] > w[1]),
        "strictly decreasing"
    );
    let dense = (tip as usize + 1).min(LOCATOR_DENSE_PREFIX);
    for (i, h) in heights.iter().take(dense).enumerate() {
        prop_assert_eq!(*h, tip - i as u32);
    }
    // After the dense prefix every gap doubles; only the last gap (onto genesis) may be
    // shorter.
    let gaps: Vec<u64> = heights.windows(2).map(|w| u64::from(w[0] - w[1])).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let expected = if i + 1 < LOCATOR_DENSE_PREFIX {
            1
        } else {
            1u64 << (i + 2 - LOCATOR_DENSE_PREFIX)
        };
        if i + 1 == gaps.len() {
            prop_assert!(*gap <= expected, "last gap {} > {}", gap, expected);
        } else {
            prop_assert_eq!(*gap, expected, "gap {}", i);
        }
    }
    // Length: the dense part, then about log2 of what is left, then genesis.
    if tip as usize >= LOCATOR_DENSE_PREFIX {
        let rest = u64::from(tip) - (LOCATOR_DENSE_PREFIX as u64 - 1);
        let log2 = 64 - rest.leading_zeros() as usize;
        prop_assert!(heights.len() <= LOCATOR_DENSE_PREFIX + log2 + 1);
    } else {
        prop_assert_eq!(heights.len(), tip as usize + 1);
    }
    Ok(())
}

#[test]
fn known_shapes() {
    let h: Vec<u32> = locator_heights(1_000_000).collect();
    assert_eq!(
        h,
        [
            1_000_000, 999_999, 999_998, 999_997, 999_996, 999_995, 999_994, 999_993, 999_992,
            999_991, 999_989, 999_985, 999_977, 999_961, 999_929, 999_865, 999_737, 999_481,
            998_969, 997_945, 995_897, 991_801, 983_609, 967_225, 934_457, 868_921, 737_849,
            475_705, 0
        ]
    );
    assert_eq!(
        locator_heights(9).collect::<Vec<_>>(),
        (0..=9).rev().collect::<Vec<_>>()
    );
}

#[test]
fn block_locator_looks_up_exactly_the_locator_heights() {
    let mut asked = Vec::new();
    let loc = block_locator(12_345, |h| {
        asked.push(h);
        Some(hash_of(h))
    })
    .unwrap();
    let heights: Vec<u32> = locator_heights(12_345).collect();
    assert_eq!(asked, heights);
    assert_eq!(loc, heights.iter().map(|&h| hash_of(h)).collect::<Vec<_>>());
}

#[test]
fn a_gap_in_the_chain_is_reported_with_its_height() {
    assert_eq!(
        block_locator(100, |h| (h > 50).then(|| hash_of(h))),
        Err(Error::MissingBlock { height: 29 })
    );
}

#[test]
fn the_extreme_tip_stays_within_limits() {
    let loc = block_locator(u32::MAX, |h| Some(hash_of(h))).unwrap();
    assert_eq!(loc.len(), MAX_LOCATOR_LEN);
    assert!(loc.len() <= 101, "within Bitcoin Core's MAX_LOCATOR_SZ");
    let heights: Vec<u32> = locator_heights(u32::MAX).collect();
    check_shape(u32::MAX, &heights).unwrap();
}

#[test]
fn slice_locator_of_genesis_only() {
    assert_eq!(block_locator_from_slice(&[hash_of(0)]), vec![hash_of(0)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn locator_shape_holds_for_any_tip(tip in 0u32..=10_000_000) {
        let heights: Vec<u32> = locator_heights(tip).collect();
        check_shape(tip, &heights)?;
        prop_assert_eq!(locator_heights(tip).len(), heights.len());
        let loc = block_locator(tip, |h| Some(hash_of(h))).unwrap();
        prop_assert_eq!(loc, heights.iter().map(|&h| hash_of(h)).collect::<Vec<_>>());
    }

    #[test]
    fn locator_shape_holds_for_small_tips(tip in 0u32..64) {
        let heights: Vec<u32> = locator_heights(tip).collect();
        check_shape(tip, &heights)?;
    }

    #[test]
    fn slice_and_lookup_locators_agree(len in 1usize..20_000) {
        let chain: Vec<Hash256> = (0..len as u32).map(hash_of).collect();
        let tip = len as u32 - 1;
        let by_lookup = block_locator(tip, |h| chain.get(h as usize).copied()).unwrap();
        prop_assert_eq!(block_locator_from_slice(&chain), by_lookup);
    }
}
