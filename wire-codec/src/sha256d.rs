//! Double SHA-256, with a fast path for the short payloads most messages carry.
//!
//! Why: a `ping`, `pong`, one-entry `inv` or a header is one or two SHA-256 blocks, and
//! the generic `Digest` interface spends as much time buffering, padding and finalizing
//! as the SHA-NI compression itself takes. Short inputs are padded here on the stack
//! and fed to `sha2::compress256` (which still picks SHA-NI at run time); the second
//! hash is always one block. Longer inputs go through `Digest`, which hands full blocks
//! to the same compression function without copying.

use sha2::digest::generic_array::{typenum::U64, GenericArray};
use sha2::{Digest, Sha256};

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The longest input that pads into two blocks (128 − 1 byte of 0x80 − 8 of length).
const SHORT_MAX: usize = 119;

/// `SHA256(SHA256(data))`.
#[inline]
pub(crate) fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = if data.len() <= SHORT_MAX {
        sha256_short(data)
    } else {
        Sha256::digest(data).into()
    };
    sha256_of_digest(&first)
}

/// One SHA-256 block, as `compress256` takes it.
type Block = GenericArray<u8, U64>;

/// SHA-256 of at most [`SHORT_MAX`] bytes, padded on the stack, in place.
#[inline]
fn sha256_short(data: &[u8]) -> [u8; 32] {
    debug_assert!(data.len() <= SHORT_MAX);
    let len = data.len().min(SHORT_MAX);
    let mut blocks = [Block::default(); 2];
    let n = if len <= 55 { 1 } else { 2 };
    let (head, tail) = data[..len].split_at(len.min(64));
    blocks[0][..head.len()].copy_from_slice(head);
    blocks[1][..tail.len()].copy_from_slice(tail);
    // The 0x80 terminator, then the bit length in the last 8 bytes of the last block.
    blocks[len / 64][len % 64] = 0x80;
    blocks[n - 1][56..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    compress(&blocks[..n])
}

/// SHA-256 of a 32-byte digest: always exactly one padded block.
#[inline]
fn sha256_of_digest(digest: &[u8; 32]) -> [u8; 32] {
    let mut block = Block::default();
    block[..32].copy_from_slice(digest);
    block[32] = 0x80;
    block[56..].copy_from_slice(&256u64.to_be_bytes());
    compress(core::slice::from_ref(&block))
}

/// Runs the compression function from the initial state over whole padded blocks
/// and returns the big-endian state.
#[inline]
fn compress(blocks: &[Block]) -> [u8; 32] {
    let mut state = IV;
    sha2::compress256(&mut state, blocks);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> [u8; 32] {
        Sha256::digest(Sha256::digest(data)).into()
    }

    #[test]
    fn every_length_around_the_block_boundaries_matches_digest() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=data.len() {
            assert_eq!(sha256d(&data[..len]), reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn known_value_of_the_empty_input() {
        let h = sha256d(b"");
        assert_eq!(&h[..4], &[0x5d, 0xf6, 0xe0, 0xe2]);
    }

    proptest! {
        #[test]
        fn matches_digest(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert_eq!(sha256d(&data), reference(&data));
        }
    }
}
