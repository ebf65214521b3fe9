//! `block` and `merkleblock` (BIP37), and merkle roots.

use bytes::{BufMut, Bytes, BytesMut};

use super::block_header::BlockHeader;
use super::transaction::{Transaction, MIN_TX_LEN};
use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::Hash256;

/// Most transactions a payload of `max_payload` bytes can hold (btcd `maxTxPerBlock`:
/// every transaction takes at least ten bytes).
pub(crate) const fn max_txs(max_payload: u32) -> usize {
    max_payload as usize / MIN_TX_LEN + 1
}

/// Refuses to encode a header whose layout is not the network's (it would not decode).
pub(crate) fn check_header_kind(header: &BlockHeader, ctx: &Context) -> Result<()> {
    if header.kind() == ctx.header_kind {
        Ok(())
    } else {
        Err(Error::Malformed {
            what: "block header",
            reason: "header layout does not match the network",
        })
    }
}

/// `block`: a header and its transactions.
///
/// Decoding keeps every transaction as a zero-copy slice of the payload (see
/// [`Transaction`]); the cost of decoding a block is one validating walk over its
/// bytes, and encoding it copies each transaction's bytes once.
///
/// ```
/// use bytes::Bytes;
/// use wire_codec::message::{Block, BlockHeader, OutPoint, Transaction, TxIn, TxOut};
/// use wire_codec::{Context, Hash256, Message, Network};
///
/// let coinbase = Transaction::build(
///     1,
///     &[TxIn { prevout: OutPoint::NULL, script_sig: Bytes::from_static(&[1, 1]),
///              sequence: u32::MAX, witness: vec![] }],
///     &[TxOut { value: 50_0000_0000, script_pubkey: Bytes::from_static(&[0x51]) }],
///     0,
/// );
/// let mut header = BlockHeader {
///     version: 4, prev_block: Hash256::ZERO, merkle_root: Hash256::ZERO, claim_trie: None,
///     time: 1_700_000_000, bits: 0x207fffff, nonce: 0,
/// };
/// header.merkle_root = coinbase.txid(); // the root of a one-transaction block
/// let block = Block::new(header, vec![coinbase]);
/// assert!(block.merkle_root_matches());
///
/// let ctx = Context::new(Network::Regtest, 70016);
/// let msg = Message::Block(Box::new(block.clone()));
/// let mut payload = bytes::BytesMut::new();
/// msg.encode_payload(&mut payload, &ctx).unwrap();
/// assert_eq!(Message::decode(msg.command(), payload.freeze(), &ctx).unwrap(), msg);
/// ```
#[derive(Debug, Clone)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions.
    pub txs: Vec<Transaction>,
    /// The payload the block was decoded from (`None` for a block built here).
    raw: Option<Bytes>,
}

/// Two blocks are equal when their header and transactions are: where a block came
/// from does not matter.
impl PartialEq for Block {
    fn eq(&self, other: &Block) -> bool {
        self.header == other.header && self.txs == other.txs
    }
}

impl Eq for Block {}

impl Block {
    /// A block from its header and transactions.
    pub fn new(header: BlockHeader, txs: Vec<Transaction>) -> Block {
        Block {
            header,
            txs,
            raw: None,
        }
    }

    /// The bytes the block was decoded from, exactly as received (btcd hands them to
    /// `OnBlock` beside the decoded block): a zero-copy view of the payload, which the
    /// transactions share. `None` for a block built with [`Block::new`]. The header and
    /// transactions are public fields: after changing them, these bytes are the block
    /// as received, not as changed.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// The block hash (the header's).
    pub fn hash(&self) -> Hash256 {
        self.header.hash()
    }

    /// The txids of the transactions, in block order.
    pub fn txids(&self) -> Vec<Hash256> {
        self.txs.iter().map(Transaction::txid).collect()
    }

    /// The wtxids of the transactions, in block order.
    pub fn wtxids(&self) -> Vec<Hash256> {
        self.txs.iter().map(Transaction::wtxid).collect()
    }

    /// The merkle root of the txids, as the header should carry it ([`Hash256::ZERO`]
    /// for a block without transactions).
    pub fn merkle_root(&self) -> Hash256 {
        Self::merkle_root_of(self.txids())
    }

    /// Whether the header's merkle root is the root of the transactions.
    pub fn merkle_root_matches(&self) -> bool {
        self.merkle_root() == self.header.merkle_root
    }

    /// The BIP141 witness merkle root: the root of the wtxids, with the coinbase's
    /// replaced by zeros. The coinbase commits to it (with a nonce) in an output.
    pub fn witness_merkle_root(&self) -> Hash256 {
        let mut ids = self.wtxids();
        if let Some(first) = ids.first_mut() {
            *first = Hash256::ZERO;
        }
        Self::merkle_root_of(ids)
    }

    /// The Bitcoin merkle root of `hashes` (wire order): pairs are hashed with double
    /// SHA-256, a level of odd length pairs its last hash with itself. Zero for no
    /// hashes. The hashes are combined in place.
    ///
    /// ```
    /// use wire_codec::{message::Block, Hash256};
    /// let (a, b) = (Hash256([1; 32]), Hash256([2; 32]));
    /// let mut ab = [0u8; 64];
    /// ab[..32].copy_from_slice(&a.0);
    /// ab[32..].copy_from_slice(&b.0);
    /// assert_eq!(Block::merkle_root_of(vec![a]), a);
    /// assert_eq!(Block::merkle_root_of(vec![a, b]), Hash256::sha256d(&ab));
    /// assert_eq!(Block::merkle_root_of(vec![a, b, b]),
    ///            Block::merkle_root_of(vec![a, b, b, b]));
    /// ```
    pub fn merkle_root_of(mut hashes: Vec<Hash256>) -> Hash256 {
        let mut pair = [0u8; 64];
        while hashes.len() > 1 {
            let next_len = hashes.len().div_ceil(2);
            for i in 0..next_len {
                let left = hashes[2 * i];
                let right = hashes.get(2 * i + 1).copied().unwrap_or(left);
                pair[..32].copy_from_slice(&left.0);
                pair[32..].copy_from_slice(&right.0);
                hashes[i] = Hash256::sha256d(&pair);
            }
            hashes.truncate(next_len);
        }
        hashes.first().copied().unwrap_or(Hash256::ZERO)
    }
}

impl Payload for Block {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let start = r.position();
        let header = BlockHeader::decode_kind(r, ctx.header_kind)?;
        let max = ctx.limits.max_payload;
        let n = r.count("block transactions", max_txs(max), MIN_TX_LEN)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push(Transaction::read(r, max as usize)?);
        }
        let mut block = Block::new(header, txs);
        // The bytes as received: a zero-copy view of the payload they came from.
        block.raw = Some(r.payload().slice(start..r.position()));
        Ok(block)
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        check_header_kind(&self.header, ctx)?;
        let max = max_txs(ctx.limits.max_payload);
        if self.txs.len() > max {
            return Err(Error::TooManyEntries {
                what: "block transactions",
                count: self.txs.len() as u64,
                max: max as u64,
            });
        }
        out.reserve(self.size_hint());
        self.header.write(out);
        compact_size::write(out, self.txs.len() as u64);
        for tx in &self.txs {
            tx.encode(out, ctx)?;
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        112 + 9 + self.txs.iter().map(|t| t.raw().len()).sum::<usize>()
    }
}

/// `merkleblock` (BIP37): a header and the partial merkle tree proving which of the
/// block's transactions matched a peer's bloom filter.
///
/// ```
/// use bytes::Bytes;
/// use wire_codec::message::{BlockHeader, MerkleBlock};
/// use wire_codec::{Context, Hash256, Message, Network};
/// let header = BlockHeader {
///     version: 1, prev_block: Hash256::ZERO, merkle_root: Hash256([9; 32]), claim_trie: None,
///     time: 0, bits: 0x207fffff, nonce: 0,
/// };
/// let mb = Message::MerkleBlock(Box::new(MerkleBlock {
///     header, total_transactions: 1, hashes: vec![Hash256([9; 32])],
///     flags: Bytes::from_static(&[1]),
/// }));
/// let ctx = Context::new(Network::Regtest, 70016);
/// let mut payload = bytes::BytesMut::new();
/// mb.encode_payload(&mut payload, &ctx).unwrap();
/// assert_eq!(payload.len(), 80 + 4 + 1 + 32 + 1 + 1);
/// assert_eq!(Message::decode(mb.command(), payload.freeze(), &ctx).unwrap(), mb);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleBlock {
    /// The header.
    pub header: BlockHeader,
    /// Transactions in the block.
    pub total_transactions: u32,
    /// Hashes of the partial merkle tree.
    pub hashes: Vec<Hash256>,
    /// Flag bits of the partial merkle tree.
    pub flags: Bytes,
}

/// Most flag bytes of a merkleblock (btcd `maxFlagsPerMerkleBlock`: one bit per
/// possible transaction).
const fn max_flags(max_payload: u32) -> usize {
    max_txs(max_payload) / 8
}

impl Payload for MerkleBlock {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let header = BlockHeader::decode_kind(r, ctx.header_kind)?;
        let total_transactions = r.u32_le("merkleblock total transactions")?;
        let max = ctx.limits.max_payload;
        let n = r.count("merkleblock hashes", max_txs(max), 32)?;
        let mut hashes = Vec::with_capacity(n);
        for _ in 0..n {
            hashes.push(r.hash("merkleblock hash")?);
        }
        let flags = r.var_bytes_owned("merkleblock flags", max_flags(max))?;
        Ok(MerkleBlock {
            header,
            total_transactions,
            hashes,
            flags,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        check_header_kind(&self.header, ctx)?;
        let max = ctx.limits.max_payload;
        if self.hashes.len() > max_txs(max) {
            return Err(Error::TooManyEntries {
                what: "merkleblock hashes",
                count: self.hashes.len() as u64,
                max: max_txs(max) as u64,
            });
        }
        if self.flags.len() > max_flags(max) {
            return Err(Error::TooLong {
                what: "merkleblock flags",
                len: self.flags.len() as u64,
                max: max_flags(max) as u64,
            });
        }
        out.reserve(self.size_hint());
        self.header.write(out);
        out.put_u32_le(self.total_transactions);
        compact_size::write(out, self.hashes.len() as u64);
        for h in &self.hashes {
            out.put_slice(&h.0);
        }
        compact_size::write(out, self.flags.len() as u64);
        out.put_slice(&self.flags);
        Ok(())
    }

    fn size_hint(&self) -> usize {
        112 + 4 + 9 + 32 * self.hashes.len() + 9 + self.flags.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::transaction::tests::hex;
    use crate::message::{command, Message, OutPoint, TxIn, TxOut};
    use crate::network::{HeaderKind, Network};
    use crate::ErrorClass;
    use proptest::prelude::*;

    // Bitcoin's genesis block (vector `block-genesis-mainnet`).
    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c0101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";
    // LBRY's genesis block, written by lbcd (vector `block-genesis-lbry-mainnet`).
    const LBRY_GENESIS: &str = "010000000000000000000000000000000000000000000000000000000000000000000000cc59e59ff97ac092b55e423aa5495151ed6fb80570a5bb78cd5bd1c3821c21b8010000000000000000000000000000000000000000000000000000000000000033193156ffff001f070500000101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff1f04ffff001d010417696e736572742074696d657374616d7020737472696e67ffffffff01000004bfc91b8e001976a914345991dbf57bfb014b87006acdfafbfc5fe8292f88ac00000000";

    fn h(s: &str) -> Hash256 {
        s.parse().unwrap()
    }

    fn decode_block(payload: Bytes, ctx: &Context) -> Result<Block> {
        match Message::decode(command::BLOCK, payload, ctx)? {
            Message::Block(b) => Ok(*b),
            other => panic!("not a block: {other:?}"),
        }
    }

    fn encode(p: &impl Payload, ctx: &Context) -> Result<BytesMut> {
        let mut out = BytesMut::new();
        p.encode(&mut out, ctx)?;
        Ok(out)
    }

    #[test]
    fn bitcoin_genesis_block() {
        let ctx = Context::new(Network::Mainnet, 70016);
        let raw = hex(GENESIS);
        let block = decode_block(raw.clone(), &ctx).unwrap();
        assert_eq!(
            block.hash(),
            h("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
        );
        assert_eq!(block.txs.len(), 1);
        let coinbase = &block.txs[0];
        assert!(coinbase.is_coinbase() && !coinbase.has_witness());
        let txid = h("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
        assert_eq!(coinbase.txid(), txid);
        assert_eq!(block.txids(), vec![txid]);
        assert_eq!(block.merkle_root(), txid);
        assert!(block.merkle_root_matches());
        assert_eq!(coinbase.outputs().next().unwrap().value, 50 * 100_000_000);
        // The transaction is a slice of the payload, not a copy.
        assert_eq!(coinbase.raw().as_ptr(), raw[81..].as_ptr());
        assert_eq!(&encode(&block, &ctx).unwrap()[..], &raw[..]);
    }

    #[test]
    fn lbry_genesis_header_and_block() {
        // btcd-peer.md §15.2: the LBRY mainnet genesis header, built field by field.
        let header = BlockHeader {
            version: 1,
            prev_block: Hash256::ZERO,
            merkle_root: h("b8211c82c3d15bcd78bba57005b86fed515149a53a425eb592c07af99fe559cc"),
            claim_trie: Some(h(
                "0000000000000000000000000000000000000000000000000000000000000001",
            )),
            time: 1_446_058_291,
            bits: 0x1f00_ffff,
            nonce: 1287,
        };
        let mut expected = hex("01000000").to_vec();
        expected.extend_from_slice(&[0; 32]);
        expected.extend_from_slice(&header.merkle_root.0);
        expected.push(1);
        expected.extend_from_slice(&[0; 31]);
        expected.extend_from_slice(&hex("33193156ffff001f07050000"));
        assert_eq!(header.to_bytes(), expected);
        assert_eq!(
            header.hash(),
            h("9c89283ba0f3227f6c03b70216b9f665f0118d5e0fa729cedf4fb34d6a34f463")
        );

        let ctx = Context::new(Network::LbryMainnet, 70013);
        let raw = hex(LBRY_GENESIS);
        let block = decode_block(raw.clone(), &ctx).unwrap();
        assert_eq!(block.header, header);
        assert!(block.merkle_root_matches());
        assert_eq!(&encode(&block, &ctx).unwrap()[..], &raw[..]);
        // The same bytes are not a Bitcoin block: the header is 32 bytes longer.
        let btc = Context::new(Network::Mainnet, 70016);
        assert!(decode_block(raw, &btc).is_err());
        // And a header of the wrong layout is refused on encode.
        let err = encode(&block, &btc).unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed {
                what: "block header",
                ..
            }
        ));
    }

    fn coinbase(tag: u8) -> Transaction {
        Transaction::build(
            1,
            &[TxIn {
                prevout: OutPoint::NULL,
                script_sig: Bytes::from(vec![1, tag]),
                sequence: u32::MAX,
                witness: vec![],
            }],
            &[TxOut {
                value: 1,
                script_pubkey: Bytes::from_static(&[0x51]),
            }],
            0,
        )
    }

    fn header(kind: HeaderKind) -> BlockHeader {
        BlockHeader {
            version: 4,
            prev_block: Hash256([1; 32]),
            merkle_root: Hash256([2; 32]),
            claim_trie: (kind == HeaderKind::Lbry).then_some(Hash256([3; 32])),
            time: 5,
            bits: 0x207f_ffff,
            nonce: 6,
        }
    }

    #[test]
    fn block_errors_name_the_fault() {
        let ctx = Context::new(Network::Regtest, 70016);
        let mut raw = header(HeaderKind::Bitcoin).to_bytes();
        // Truncated header.
        let err = decode_block(Bytes::from(raw[..79].to_vec()), &ctx).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "block header",
                ..
            }
        ));
        // More transactions than a 4,000,000-byte payload can hold.
        raw.extend_from_slice(&[0xfe, 0x00, 0x00, 0x10, 0x00]);
        let err = decode_block(Bytes::from(raw.clone()), &ctx).unwrap_err();
        assert_eq!(
            err,
            Error::TooManyEntries {
                what: "block transactions",
                count: 0x10_0000,
                max: 400_001
            }
        );
        // Fewer, but still more than the bytes present.
        raw.truncate(80);
        raw.extend_from_slice(&[0xfd, 0x00, 0x01]);
        raw.extend_from_slice(&[0; 100]);
        let err = decode_block(Bytes::from(raw.clone()), &ctx).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "block transactions",
                needed: 2560,
                ..
            }
        ));
        // A bad transaction inside is the transaction's error.
        raw.truncate(80);
        raw.push(1);
        raw.extend_from_slice(&coinbase(1).raw()[..20]);
        let err = decode_block(Bytes::from(raw.clone()), &ctx).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Truncated);
        // Trailing bytes after the last transaction.
        raw.truncate(81);
        raw.extend_from_slice(coinbase(1).raw());
        raw.push(0);
        let err = decode_block(Bytes::from(raw), &ctx).unwrap_err();
        assert!(matches!(err, Error::TrailingBytes { extra: 1, .. }));
    }

    #[test]
    fn merkle_roots_agree_with_the_bitcoin_crate() {
        use bitcoin::hashes::Hash as _;
        let ctx = Context::new(Network::Regtest, 70016);
        for n in [1usize, 2, 3, 4, 5, 7, 8, 13] {
            let mut txs = vec![coinbase(n as u8)];
            for i in 1..n {
                // Witness spends, so that wtxids differ from txids.
                txs.push(Transaction::build(
                    2,
                    &[TxIn {
                        prevout: OutPoint {
                            txid: Hash256([i as u8; 32]),
                            vout: 0,
                        },
                        script_sig: Bytes::new(),
                        sequence: 0,
                        witness: vec![Bytes::from(vec![i as u8; 3])],
                    }],
                    &[],
                    0,
                ));
            }
            let mut block = Block::new(header(HeaderKind::Bitcoin), txs);
            block.header.merkle_root = block.merkle_root();
            let raw = encode(&block, &ctx).unwrap();
            let theirs: bitcoin::Block = bitcoin::consensus::deserialize(&raw).unwrap();
            assert!(theirs.check_merkle_root(), "{n} txs");
            assert_eq!(theirs.block_hash().to_byte_array(), block.hash().0);
            assert_eq!(
                theirs.witness_root().unwrap().to_byte_array(),
                block.witness_merkle_root().0,
                "{n} txs"
            );
            assert_eq!(decode_block(raw.freeze(), &ctx).unwrap(), block);
        }
        assert_eq!(Block::merkle_root_of(vec![]), Hash256::ZERO);
    }

    #[test]
    fn merkleblock_round_trip_and_limits() {
        for net in [Network::Mainnet, Network::LbryMainnet] {
            let ctx = Context::new(net, 70013);
            let mb = MerkleBlock {
                header: header(ctx.header_kind),
                total_transactions: 7,
                hashes: vec![Hash256([8; 32]), Hash256([9; 32])],
                flags: Bytes::from_static(&[0x1d]),
            };
            let raw = encode(&mb, &ctx).unwrap();
            assert_eq!(raw.len(), ctx.header_kind.len() + 4 + 1 + 64 + 2);
            let back = Message::decode(command::MERKLEBLOCK, raw.freeze(), &ctx).unwrap();
            assert_eq!(back, Message::MerkleBlock(Box::new(mb)));
        }
        let ctx = Context::new(Network::Mainnet, 70016);
        let mut raw = header(HeaderKind::Bitcoin).to_bytes();
        raw.extend_from_slice(&[1, 0, 0, 0]);
        raw.extend_from_slice(&[0xfd, 0x00, 0x10]); // 4,096 hashes, none present
        let err =
            Message::decode(command::MERKLEBLOCK, Bytes::from(raw.clone()), &ctx).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "merkleblock hashes",
                ..
            }
        ));
        raw.truncate(84);
        raw.push(0);
        raw.extend_from_slice(&[0xfd, 0x51, 0xc3]); // 50,001 flag bytes
        let err = Message::decode(command::MERKLEBLOCK, Bytes::from(raw), &ctx).unwrap_err();
        assert_eq!(
            err,
            Error::TooLong {
                what: "merkleblock flags",
                len: 50_001,
                max: 50_000
            }
        );
        let too_long = MerkleBlock {
            header: header(HeaderKind::Bitcoin),
            total_transactions: 0,
            hashes: vec![],
            flags: Bytes::from(vec![0; 50_001]),
        };
        assert!(matches!(
            encode(&too_long, &ctx),
            Err(Error::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            raw in proptest::collection::vec(any::<u8>(), 0..800),
            lbry in any::<bool>(),
        ) {
            let net = if lbry { Network::LbryRegtest } else { Network::Regtest };
            let ctx = Context::new(net, 70016);
            for cmd in [command::BLOCK, command::MERKLEBLOCK] {
                if let Ok(msg) = Message::decode(cmd, Bytes::from(raw.clone()), &ctx) {
                    let mut out = BytesMut::new();
                    msg.encode_payload(&mut out, &ctx).unwrap();
                    prop_assert_eq!(&out[..], &raw[..]);
                }
            }
        }

        #[test]
        fn mutated_blocks_never_panic(
            n in 1usize..6,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let ctx = Context::new(Network::Regtest, 70016);
            let block = Block::new(
                header(HeaderKind::Bitcoin),
                (0..n).map(|i| coinbase(i as u8)).collect(),
            );
            let mut raw = encode(&block, &ctx).unwrap().to_vec();
            let i = at.index(raw.len());
            raw[i] = byte;
            if let Ok(b) = decode_block(Bytes::from(raw.clone()), &ctx) {
                prop_assert_eq!(&encode(&b, &ctx).unwrap()[..], &raw[..]);
                let _ = (b.merkle_root(), b.witness_merkle_root());
            }
        }
    }
}
