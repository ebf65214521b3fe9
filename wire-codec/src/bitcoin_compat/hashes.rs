//! 32-byte hashes: [`Hash256`] and `bitcoin`'s hash newtypes hold the same bytes in the
//! same (wire) order, so each conversion is a move of 32 bytes.

use bitcoin::hashes::{sha256d, Hash};

use crate::Hash256;

macro_rules! same_bytes {
    ($($theirs:ty),* $(,)?) => {$(
        impl From<Hash256> for $theirs {
            fn from(h: Hash256) -> Self {
                <$theirs>::from_byte_array(h.0)
            }
        }

        impl From<$theirs> for Hash256 {
            fn from(h: $theirs) -> Self {
                Hash256(h.to_byte_array())
            }
        }
    )*};
}

same_bytes!(
    bitcoin::BlockHash,
    bitcoin::Txid,
    bitcoin::Wtxid,
    bitcoin::TxMerkleNode,
    bitcoin::WitnessMerkleNode,
    bitcoin::hash_types::FilterHash,
    bitcoin::hash_types::FilterHeader,
    sha256d::Hash,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_order_agrees() {
        // Both sides show hashes byte-reversed; the same bytes must print the same.
        let h = Hash256::sha256d(b"peerwire");
        assert_eq!(bitcoin::Txid::from(h).to_string(), h.to_string());
        assert_eq!(bitcoin::BlockHash::from(h).to_string(), h.to_string());
        assert_eq!(Hash256::from(bitcoin::Wtxid::from(h)), h);
    }
}
