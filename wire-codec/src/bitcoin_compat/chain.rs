//! Headers, transactions, outpoints and blocks.

use bitcoin::consensus::{deserialize, serialize};
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::message::{command, Block, BlockHeader, Headers, OutPoint, Payload, Transaction};
use crate::reader::Reader;
use crate::{version, Context, Hash256, Network};

fn lbry_header() -> Error {
    Error::Malformed {
        what: "block header",
        reason: "an LBRY header (with a claim-trie root) has no bitcoin equivalent",
    }
}

/// A Bitcoin (80-byte) header; an LBRY header is refused.
impl TryFrom<BlockHeader> for bitcoin::block::Header {
    type Error = Error;

    fn try_from(h: BlockHeader) -> Result<Self> {
        if h.claim_trie.is_some() {
            return Err(lbry_header());
        }
        Ok(bitcoin::block::Header {
            version: bitcoin::block::Version::from_consensus(h.version),
            prev_blockhash: h.prev_block.into(),
            merkle_root: h.merkle_root.into(),
            time: h.time,
            bits: bitcoin::CompactTarget::from_consensus(h.bits),
            nonce: h.nonce,
        })
    }
}

impl From<bitcoin::block::Header> for BlockHeader {
    fn from(h: bitcoin::block::Header) -> Self {
        BlockHeader {
            version: h.version.to_consensus(),
            prev_block: h.prev_blockhash.into(),
            merkle_root: h.merkle_root.into(),
            claim_trie: None,
            time: h.time,
            bits: h.bits.to_consensus(),
            nonce: h.nonce,
        }
    }
}

/// The headers of a `headers` message; fails on the first LBRY header.
impl TryFrom<&Headers> for Vec<bitcoin::block::Header> {
    type Error = Error;

    fn try_from(m: &Headers) -> Result<Self> {
        m.headers.iter().map(|h| (*h).try_into()).collect()
    }
}

impl From<Vec<bitcoin::block::Header>> for Headers {
    fn from(headers: Vec<bitcoin::block::Header>) -> Self {
        Headers {
            headers: headers.into_iter().map(BlockHeader::from).collect(),
        }
    }
}

impl From<OutPoint> for bitcoin::OutPoint {
    fn from(o: OutPoint) -> Self {
        bitcoin::OutPoint {
            txid: o.txid.into(),
            vout: o.vout,
        }
    }
}

impl From<bitcoin::OutPoint> for OutPoint {
    fn from(o: bitcoin::OutPoint) -> Self {
        OutPoint {
            txid: Hash256::from(o.txid),
            vout: o.vout,
        }
    }
}

/// Reads the codec's bytes with the `bitcoin` crate's decoder (its scripts and witnesses
/// are copied once into its `Vec`s).
impl TryFrom<&Transaction> for bitcoin::Transaction {
    type Error = Error;

    fn try_from(tx: &Transaction) -> Result<Self> {
        deserialize(tx.raw()).map_err(|_| Error::Malformed {
            what: "transaction",
            reason: "the bitcoin crate does not read these bytes",
        })
    }
}

/// Serializes once; the codec keeps that buffer (no second copy).
impl TryFrom<&bitcoin::Transaction> for Transaction {
    type Error = Error;

    fn try_from(tx: &bitcoin::Transaction) -> Result<Self> {
        Transaction::from_bytes(Bytes::from(serialize(tx)))
    }
}

/// A Bitcoin block; an LBRY block is refused.
impl TryFrom<&Block> for bitcoin::Block {
    type Error = Error;

    fn try_from(b: &Block) -> Result<Self> {
        Ok(bitcoin::Block {
            header: b.header.try_into()?,
            txdata: b
                .txs
                .iter()
                .map(bitcoin::Transaction::try_from)
                .collect::<Result<_>>()?,
        })
    }
}

/// Serializes the whole block into one buffer that every decoded transaction slices
/// (one allocation for the block, as when it comes off the wire).
impl TryFrom<&bitcoin::Block> for Block {
    type Error = Error;

    fn try_from(b: &bitcoin::Block) -> Result<Self> {
        let bytes = Bytes::from(serialize(b));
        let ctx = Context::new(Network::Mainnet, version::WTXID_RELAY);
        let mut r = Reader::new(&bytes);
        let block = Block::decode(&mut r, &ctx)?;
        r.finish(command::BLOCK)?;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_block_both_ways() {
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Bitcoin);
        let ours = Block::try_from(&genesis).unwrap();
        assert!(ours.merkle_root_matches());
        assert_eq!(Hash256::from(genesis.block_hash()), ours.hash());
        assert_eq!(
            Hash256::from(genesis.txdata[0].compute_txid()),
            ours.txs[0].txid()
        );
        assert_eq!(bitcoin::Block::try_from(&ours).unwrap(), genesis);
    }

    #[test]
    fn a_transaction_without_inputs_is_refused_not_misread() {
        // Serialized without inputs or witness, its zero input count is the BIP144
        // marker: the codec says so instead of reading something else.
        let tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version(2),
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![],
            output: vec![],
        };
        assert!(Transaction::try_from(&tx).is_err());
    }

    #[test]
    fn lbry_header_is_refused() {
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Bitcoin);
        let mut h = BlockHeader::from(genesis.header);
        h.claim_trie = Some(Hash256([9; 32]));
        assert!(matches!(
            bitcoin::block::Header::try_from(h),
            Err(Error::Malformed {
                what: "block header",
                ..
            })
        ));
        let block = Block::new(h, vec![]);
        assert!(bitcoin::Block::try_from(&block).is_err());
    }
}
