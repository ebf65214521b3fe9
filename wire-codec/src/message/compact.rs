//! BIP152 compact blocks: `cmpctblock`, `getblocktxn`, `blocktxn`, and short ids.
//!
//! On the wire, transaction indexes are *differential*: each is sent as its distance
//! from the previous index minus one (the first as it is). The types here hold absolute
//! indexes; decoding adds the differences up (refusing overflow), encoding subtracts
//! them again (refusing indexes that are not strictly increasing).

use bytes::{BufMut, BytesMut};
use sha2::{Digest, Sha256};

use super::block::{check_header_kind, max_txs};
use super::block_header::BlockHeader;
use super::transaction::{Transaction, MIN_TX_LEN};
use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::Hash256;

/// Length of a short transaction id.
const SHORT_ID_LEN: usize = 6;

/// A transaction sent in full inside a compact block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefilledTx {
    /// Absolute index in the block (the wire carries differences).
    pub index: u64,
    /// The transaction.
    pub tx: Transaction,
}

/// `cmpctblock`: a header, the 6-byte short ids of most transactions and a few
/// transactions in full (at least the coinbase).
///
/// As in Bitcoin Core, every index must fit in 16 bits and the block may announce at
/// most 65,535 transactions in all.
///
/// ```
/// use bytes::Bytes;
/// use wire_codec::message::{BlockHeader, CmpctBlock, OutPoint, PrefilledTx, Transaction, TxIn, TxOut};
/// use wire_codec::{Context, Hash256, Message, Network};
///
/// let coinbase = Transaction::build(1,
///     &[TxIn { prevout: OutPoint::NULL, script_sig: Bytes::from_static(&[1, 1]),
///              sequence: u32::MAX, witness: vec![] }],
///     &[TxOut { value: 1, script_pubkey: Bytes::from_static(&[0x51]) }], 0);
/// let header = BlockHeader {
///     version: 4, prev_block: Hash256::ZERO, merkle_root: Hash256::ZERO, claim_trie: None,
///     time: 0, bits: 0x207fffff, nonce: 0,
/// };
/// let block = CmpctBlock {
///     header, nonce: 42,
///     short_ids: vec![[1, 2, 3, 4, 5, 6]],
///     prefilled: vec![PrefilledTx { index: 0, tx: coinbase }],
/// };
/// // Short ids are SipHash-2-4 of a (w)txid, keyed by the header and the nonce.
/// let keys = block.short_id_keys();
/// let id = CmpctBlock::short_id(keys, &Hash256([7; 32]));
/// assert_eq!(id.len(), 6);
///
/// let ctx = Context::new(Network::Regtest, 70016);
/// let msg = Message::CmpctBlock(Box::new(block));
/// let mut payload = bytes::BytesMut::new();
/// msg.encode_payload(&mut payload, &ctx).unwrap();
/// assert_eq!(Message::decode(msg.command(), payload.freeze(), &ctx).unwrap(), msg);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmpctBlock {
    /// The header.
    pub header: BlockHeader,
    /// Nonce for the short-id key.
    pub nonce: u64,
    /// 6-byte short transaction ids, wire order.
    pub short_ids: Vec<[u8; 6]>,
    /// Transactions sent in full.
    pub prefilled: Vec<PrefilledTx>,
}

impl CmpctBlock {
    /// The SipHash key of this block's short ids: the first two little-endian u64 of
    /// SHA-256(header ‖ nonce). Compute it once per block.
    pub fn short_id_keys(&self) -> (u64, u64) {
        let mut buf = [0u8; 112 + 8];
        let mut s = &mut buf[..];
        self.header.write(&mut s);
        s.put_u64_le(self.nonce);
        let len = self.header.kind().len() + 8;
        let digest = Sha256::digest(buf.get(..len).unwrap_or_default());
        let mut k = [0u64; 2];
        for (ki, chunk) in k.iter_mut().zip(digest.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *ki = u64::from_le_bytes(w);
        }
        (k[0], k[1])
    }

    /// The short id of a transaction: the low 48 bits of SipHash-2-4 of its txid
    /// (compact blocks version 1) or wtxid (version 2), little-endian, under `keys`
    /// from [`CmpctBlock::short_id_keys`].
    pub fn short_id(keys: (u64, u64), hash: &Hash256) -> [u8; 6] {
        let v = siphash24(keys.0, keys.1, &hash.0).to_le_bytes();
        [v[0], v[1], v[2], v[3], v[4], v[5]]
    }

    /// Number of transactions the block announces (short ids plus prefilled).
    pub fn tx_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }
}

/// SipHash-2-4 (Aumasson and Bernstein) of `data` under the key `(k0, k1)`.
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    fn compress(v: &mut [u64; 4], m: u64) {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    }
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        compress(&mut v, u64::from_le_bytes(b));
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = data.len() as u8;
    compress(&mut v, u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Turns wire differences into absolute indexes as they are read.
struct Undiff {
    next: u64,
    max: u64,
    what: &'static str,
}

impl Undiff {
    fn new(what: &'static str, max: u64) -> Undiff {
        Undiff { next: 0, max, what }
    }

    /// The absolute index of the next difference `diff`.
    fn index(&mut self, diff: u64) -> Result<u64> {
        match self.next.checked_add(diff) {
            Some(i) if i <= self.max => {
                self.next = i + 1;
                Ok(i)
            }
            _ => Err(Error::Malformed {
                what: self.what,
                reason: "differential index overflows the largest index allowed",
            }),
        }
    }
}

/// Turns absolute indexes back into wire differences as they are written.
struct Diff {
    next: u64,
    max: u64,
    what: &'static str,
}

impl Diff {
    fn new(what: &'static str, max: u64) -> Diff {
        Diff { next: 0, max, what }
    }

    fn diff(&mut self, index: u64) -> Result<u64> {
        if index < self.next || index > self.max {
            return Err(Error::Malformed {
                what: self.what,
                reason: "indexes must be strictly increasing and within the largest allowed",
            });
        }
        let diff = index - self.next;
        self.next = index + 1;
        Ok(diff)
    }
}

/// Largest absolute index in a `cmpctblock` (Bitcoin Core stores them as u16).
const MAX_CMPCT_INDEX: u64 = u16::MAX as u64;

impl Payload for CmpctBlock {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let header = BlockHeader::decode_kind(r, ctx.header_kind)?;
        let nonce = r.u64_le("cmpctblock nonce")?;
        let max = ctx.limits.max_payload;
        let n = r.count(
            "cmpctblock short ids",
            max as usize / SHORT_ID_LEN,
            SHORT_ID_LEN,
        )?;
        let mut short_ids = Vec::with_capacity(n);
        for _ in 0..n {
            short_ids.push(r.array::<SHORT_ID_LEN>("cmpctblock short id")?);
        }
        // Each prefilled entry: at least a one-byte index and a minimal transaction.
        let n = r.count("cmpctblock prefilled txs", max_txs(max), 1 + MIN_TX_LEN)?;
        let mut prefilled = Vec::with_capacity(n);
        let mut undiff = Undiff::new("cmpctblock prefilled index", MAX_CMPCT_INDEX);
        for _ in 0..n {
            let index = undiff.index(r.compact_size()?)?;
            let tx = Transaction::read(r, max as usize)?;
            prefilled.push(PrefilledTx { index, tx });
        }
        if (short_ids.len() + prefilled.len()) as u64 > MAX_CMPCT_INDEX {
            return Err(Error::Malformed {
                what: "cmpctblock",
                reason: "announces more than 65,535 transactions",
            });
        }
        Ok(CmpctBlock {
            header,
            nonce,
            short_ids,
            prefilled,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        check_header_kind(&self.header, ctx)?;
        out.reserve(self.size_hint());
        self.header.write(out);
        out.put_u64_le(self.nonce);
        compact_size::write(out, self.short_ids.len() as u64);
        for id in &self.short_ids {
            out.put_slice(id);
        }
        compact_size::write(out, self.prefilled.len() as u64);
        let mut diff = Diff::new("cmpctblock prefilled index", MAX_CMPCT_INDEX);
        for p in &self.prefilled {
            compact_size::write(out, diff.diff(p.index)?);
            out.extend_from_slice(p.tx.raw());
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        112 + 8
            + 9
            + SHORT_ID_LEN * self.short_ids.len()
            + 9
            + self
                .prefilled
                .iter()
                .map(|p| 3 + p.tx.raw().len())
                .sum::<usize>()
    }
}

/// `getblocktxn`: asks for the transactions of a compact block that could not be
/// rebuilt from the mempool.
///
/// Indexes are bounded by the most transactions a block of the network's payload
/// maximum could hold. (Bitcoin Core's node stores them as u16; Core's own test
/// framework writes larger ones — the shared vector `getblocktxn-3` asks for index
/// 70,000 — so this decoder accepts them and leaves the range check against the
/// block's real size to the caller, who knows it.)
///
/// ```
/// use wire_codec::message::GetBlockTxn;
/// use wire_codec::{Context, Hash256, Message, Network};
/// let msg = Message::GetBlockTxn(GetBlockTxn { block_hash: Hash256([3; 32]), indexes: vec![1, 2, 9] });
/// let ctx = Context::new(Network::Regtest, 70016);
/// let mut payload = bytes::BytesMut::new();
/// msg.encode_payload(&mut payload, &ctx).unwrap();
/// assert_eq!(&payload[32..], &[3, 1, 0, 6]); // count, then differences
/// assert_eq!(Message::decode(msg.command(), payload.freeze(), &ctx).unwrap(), msg);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetBlockTxn {
    /// The block.
    pub block_hash: Hash256,
    /// Absolute indexes of the wanted transactions (the wire carries differences).
    pub indexes: Vec<u64>,
}

impl Payload for GetBlockTxn {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let block_hash = r.hash("getblocktxn block hash")?;
        let max = max_txs(ctx.limits.max_payload);
        let n = r.count("getblocktxn indexes", max, 1)?;
        let mut indexes = Vec::with_capacity(n);
        let mut undiff = Undiff::new("getblocktxn index", max as u64 - 1);
        for _ in 0..n {
            indexes.push(undiff.index(r.compact_size()?)?);
        }
        Ok(GetBlockTxn {
            block_hash,
            indexes,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let max = max_txs(ctx.limits.max_payload);
        out.reserve(self.size_hint());
        out.put_slice(&self.block_hash.0);
        compact_size::write(out, self.indexes.len() as u64);
        let mut diff = Diff::new("getblocktxn index", max as u64 - 1);
        for &i in &self.indexes {
            compact_size::write(out, diff.diff(i)?);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        32 + 9 + 3 * self.indexes.len()
    }
}

/// `blocktxn`: the transactions a `getblocktxn` asked for, in the order asked.
///
/// ```
/// use wire_codec::message::BlockTxn;
/// use wire_codec::{Context, Hash256, Message, Network};
/// let msg = Message::BlockTxn(BlockTxn { block_hash: Hash256([3; 32]), transactions: vec![] });
/// let ctx = Context::new(Network::Regtest, 70016);
/// let mut payload = bytes::BytesMut::new();
/// msg.encode_payload(&mut payload, &ctx).unwrap();
/// assert_eq!(payload.len(), 33);
/// assert_eq!(Message::decode(msg.command(), payload.freeze(), &ctx).unwrap(), msg);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTxn {
    /// The block.
    pub block_hash: Hash256,
    /// The transactions asked for.
    pub transactions: Vec<Transaction>,
}

impl Payload for BlockTxn {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let block_hash = r.hash("blocktxn block hash")?;
        let max = ctx.limits.max_payload;
        let n = r.count("blocktxn transactions", max_txs(max), MIN_TX_LEN)?;
        let mut transactions = Vec::with_capacity(n);
        for _ in 0..n {
            transactions.push(Transaction::read(r, max as usize)?);
        }
        Ok(BlockTxn {
            block_hash,
            transactions,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.reserve(self.size_hint());
        out.put_slice(&self.block_hash.0);
        compact_size::write(out, self.transactions.len() as u64);
        for tx in &self.transactions {
            out.extend_from_slice(tx.raw());
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        32 + 9
            + self
                .transactions
                .iter()
                .map(|t| t.raw().len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::transaction::tests::hex;
    use crate::message::{command, Message, OutPoint, TxIn, TxOut};
    use crate::network::Network;
    use bytes::Bytes;
    use proptest::prelude::*;

    // Vector `cmpctblock-0-1tx-v1` (Bitcoin Core's test framework): one prefilled coinbase.
    const CMPCT_1TX: &str = "0000ff3fcade50066b794c320164d8ecd5c3555a81ade330f5dc81bdd5420a9210dda935ec358c4c43b4af7d0160008b5cf486830b20d065033f48a69e0de20c7b7ab47ac26a655c19420317f0c1f5291a10f551af9c54a600010003000000010000000000000000000000000000000000000000000000000000000000000000ffffffff6bccfa4bd4c41d8fcee7ba23c805f11e90c9a5bbfc1b35b48883243fe6ecdac04287ca23dc025909217da1bbc61a6adb46c9b3fb3c721fb78d0e39f95d3a70ea2c0fd38b675fd9d58de96a5c3649a69881ca2b2e13ece2b0d72b98e01ce1119fb21fba10684623b75f4a1c6afdffffff013c9bce16de4c040016001435b8d02c90ed815a55beb61d1a0fe93178005da300f15365";
    // Vector `getblocktxn-3`: differences 5 and 69,994, i.e. indexes 5 and 70,000.
    const GETBLOCKTXN_70000: &str =
        "04fa2724092507cefa52170684d0f0d2c09d6e2ad4a0650bb1dd0b7662e4feca0205fe6a110100";

    fn ctx() -> Context {
        Context::new(Network::Mainnet, 70016)
    }

    fn encode(p: &impl Payload) -> Result<Bytes> {
        let mut out = BytesMut::new();
        p.encode(&mut out, &ctx())?;
        Ok(out.freeze())
    }

    fn tx(tag: u8) -> Transaction {
        Transaction::build(
            2,
            &[TxIn {
                prevout: OutPoint {
                    txid: Hash256([tag; 32]),
                    vout: 1,
                },
                script_sig: Bytes::new(),
                sequence: 0,
                witness: vec![Bytes::from(vec![tag; 4])],
            }],
            &[TxOut {
                value: 9,
                script_pubkey: Bytes::from_static(&[0x51]),
            }],
            0,
        )
    }

    fn header() -> BlockHeader {
        BlockHeader {
            version: 0x2000_0000,
            prev_block: Hash256([4; 32]),
            merkle_root: Hash256([5; 32]),
            claim_trie: None,
            time: 1_700_000_000,
            bits: 0x1d00_ffff,
            nonce: 99,
        }
    }

    #[test]
    fn core_cmpctblock_vector() {
        let raw = hex(CMPCT_1TX);
        let Message::CmpctBlock(cb) =
            Message::decode(command::CMPCTBLOCK, raw.clone(), &ctx()).unwrap()
        else {
            panic!("not a cmpctblock")
        };
        assert_eq!(cb.nonce, 11_985_376_785_147_957_274);
        assert!(cb.short_ids.is_empty());
        assert_eq!(cb.prefilled.len(), 1);
        assert_eq!(cb.prefilled[0].index, 0);
        assert!(cb.prefilled[0].tx.is_coinbase());
        assert_eq!(cb.tx_count(), 1);
        assert_eq!(encode(&*cb).unwrap(), raw);
    }

    #[test]
    fn getblocktxn_indexes_are_absolute() {
        let raw = hex(GETBLOCKTXN_70000);
        let g = GetBlockTxn::decode(&mut Reader::new(&raw), &ctx()).unwrap();
        assert_eq!(g.indexes, vec![5, 70_000]);
        assert_eq!(encode(&g).unwrap(), raw);

        let mut raw = vec![7; 32];
        raw.extend_from_slice(&[3, 0, 6, 6]);
        let raw = Bytes::from(raw);
        let g = GetBlockTxn::decode(&mut Reader::new(&raw), &ctx()).unwrap();
        assert_eq!(g.indexes, vec![0, 7, 14]);
        assert_eq!(encode(&g).unwrap(), raw);
    }

    fn getblocktxn(diffs: &[u64]) -> Result<GetBlockTxn> {
        let mut raw = BytesMut::from(&[7u8; 32][..]);
        compact_size::write(&mut raw, diffs.len() as u64);
        for &d in diffs {
            compact_size::write(&mut raw, d);
        }
        let raw = raw.freeze();
        GetBlockTxn::decode(&mut Reader::new(&raw), &ctx())
    }

    #[test]
    fn index_overflow_is_refused() {
        // The largest index a 4,000,000-byte block could have is 400,000.
        assert_eq!(getblocktxn(&[400_000]).unwrap().indexes, vec![400_000]);
        for diffs in [&[400_001][..], &[0, 400_000], &[1, u64::MAX], &[u64::MAX]] {
            let err = getblocktxn(diffs).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        what: "getblocktxn index",
                        ..
                    }
                ),
                "{diffs:?}"
            );
        }
        // A count larger than the bytes present is truncation, found before reserving.
        let mut raw = vec![0u8; 32];
        raw.extend_from_slice(&[0xfd, 0x00, 0x04, 0]);
        let raw = Bytes::from(raw);
        let err = GetBlockTxn::decode(&mut Reader::new(&raw), &ctx()).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "getblocktxn indexes",
                ..
            }
        ));

        // Encoding refuses indexes that do not increase.
        for indexes in [vec![3, 3], vec![4, 2], vec![400_001]] {
            let g = GetBlockTxn {
                block_hash: Hash256::ZERO,
                indexes,
            };
            assert!(matches!(encode(&g), Err(Error::Malformed { .. })));
        }
    }

    fn cmpct_payload(short_ids: usize, prefilled: &[(u64, Transaction)]) -> Bytes {
        let mut raw = BytesMut::new();
        header().write(&mut raw);
        raw.put_u64_le(1);
        compact_size::write(&mut raw, short_ids as u64);
        raw.extend_from_slice(&vec![0xab; short_ids * 6]);
        compact_size::write(&mut raw, prefilled.len() as u64);
        for (diff, tx) in prefilled {
            compact_size::write(&mut raw, *diff);
            raw.extend_from_slice(tx.raw());
        }
        raw.freeze()
    }

    #[test]
    fn cmpctblock_indexes_fit_in_16_bits() {
        let decode = |raw: Bytes| CmpctBlock::decode(&mut Reader::new(&raw), &ctx());
        let ok = decode(cmpct_payload(2, &[(0, tx(1)), (2, tx(2)), (0, tx(3))])).unwrap();
        let idx: Vec<u64> = ok.prefilled.iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![0, 3, 4]);
        assert_eq!(ok.short_ids, vec![[0xab; 6]; 2]);
        assert_eq!(
            encode(&ok).unwrap(),
            cmpct_payload(2, &[(0, tx(1)), (2, tx(2)), (0, tx(3))])
        );

        assert_eq!(
            decode(cmpct_payload(0, &[(65_535, tx(1))]))
                .unwrap()
                .prefilled[0]
                .index,
            65_535
        );
        for prefilled in [vec![(65_536, tx(1))], vec![(0, tx(1)), (65_535, tx(2))]] {
            let err = decode(cmpct_payload(0, &prefilled)).unwrap_err();
            assert!(matches!(
                err,
                Error::Malformed {
                    what: "cmpctblock prefilled index",
                    ..
                }
            ));
        }
        // 65,535 transactions in all is the most.
        assert!(decode(cmpct_payload(65_534, &[(0, tx(1))])).is_ok());
        let err = decode(cmpct_payload(65_535, &[(0, tx(1))])).unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed {
                what: "cmpctblock",
                ..
            }
        ));
        // Counts beyond the bytes present.
        let mut raw = cmpct_payload(0, &[]).to_vec();
        raw.truncate(88);
        raw.extend_from_slice(&[0xfd, 0xe8, 0x03, 0, 0, 0]);
        let err = decode(Bytes::from(raw)).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "cmpctblock short ids",
                needed: 6000,
                ..
            }
        ));

        // Encoding refuses unordered or oversized indexes.
        let mut bad = ok.clone();
        bad.prefilled[1].index = 0;
        assert!(matches!(encode(&bad), Err(Error::Malformed { .. })));
        bad.prefilled = vec![PrefilledTx {
            index: 65_536,
            tx: tx(1),
        }];
        assert!(matches!(encode(&bad), Err(Error::Malformed { .. })));
    }

    #[test]
    fn blocktxn_round_trip_and_truncation() {
        let b = BlockTxn {
            block_hash: Hash256([1; 32]),
            transactions: vec![tx(1), tx(2)],
        };
        let raw = encode(&b).unwrap();
        assert_eq!(BlockTxn::decode(&mut Reader::new(&raw), &ctx()).unwrap(), b);
        for cut in 0..raw.len() {
            let part = raw.slice(..cut);
            let err = BlockTxn::decode(&mut Reader::new(&part), &ctx()).unwrap_err();
            assert_eq!(err.class(), crate::ErrorClass::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn siphash_reference_values() {
        // SipHash-2-4 reference vectors: key 00..0f, message 00 01 02 .. of each length.
        let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: Vec<u8> = (0..16).collect();
        assert_eq!(siphash24(k0, k1, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k0, k1, &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(k0, k1, &msg[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(k0, k1, &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(k0, k1, &msg[..16]), 0x3f2a_cc7f_57c2_9bdb);
    }

    fn btc_header(h: &BlockHeader) -> bitcoin::block::Header {
        bitcoin::consensus::deserialize(&h.to_bytes()).unwrap()
    }

    proptest! {
        #[test]
        fn short_ids_agree_with_the_bitcoin_crate(
            nonce in any::<u64>(),
            time in any::<u32>(),
            hashes in proptest::collection::vec(any::<[u8; 32]>(), 1..8),
        ) {
            let cb = CmpctBlock { header: BlockHeader { time, ..header() }, nonce, short_ids: vec![], prefilled: vec![] };
            let keys = cb.short_id_keys();
            prop_assert_eq!(keys, bitcoin::bip152::ShortId::calculate_siphash_keys(&btc_header(&cb.header), nonce));
            for h in hashes {
                let theirs = bitcoin::bip152::ShortId::with_siphash_keys(&h, keys);
                prop_assert_eq!(&CmpctBlock::short_id(keys, &Hash256(h))[..], &theirs[..]);
            }
        }

        #[test]
        fn siphash_agrees_with_bitcoin_hashes(
            k0 in any::<u64>(), k1 in any::<u64>(),
            data in proptest::collection::vec(any::<u8>(), 0..70),
        ) {
            let theirs = bitcoin::hashes::siphash24::Hash::hash_with_keys(k0, k1, &data);
            prop_assert_eq!(siphash24(k0, k1, &data), theirs.as_u64());
        }

        #[test]
        fn getblocktxn_round_trips(mut indexes in proptest::collection::vec(0u64..400_001, 0..50)) {
            indexes.sort_unstable();
            indexes.dedup();
            let g = GetBlockTxn { block_hash: Hash256([2; 32]), indexes };
            let raw = encode(&g).unwrap();
            prop_assert_eq!(GetBlockTxn::decode(&mut Reader::new(&raw), &ctx()).unwrap(), g);
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            for cmd in [command::CMPCTBLOCK, command::GETBLOCKTXN, command::BLOCKTXN] {
                if let Ok(msg) = Message::decode(cmd, Bytes::from(raw.clone()), &ctx()) {
                    let mut out = BytesMut::new();
                    msg.encode_payload(&mut out, &ctx()).unwrap();
                    prop_assert_eq!(&out[..], &raw[..]);
                }
            }
        }
    }
}
