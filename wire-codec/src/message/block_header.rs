//! Block headers (80-byte Bitcoin, 112-byte LBRY) and the `headers` message.

use bytes::{BufMut, BytesMut};

use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::network::HeaderKind;
use crate::reader::Reader;
use crate::Hash256;

/// A block header. `claim_trie` is `Some` exactly on LBRY networks, where the
/// claim-trie root sits between the merkle root and the time (112 bytes in all).
///
/// ```
/// use wire_codec::{message::BlockHeader, Hash256};
/// // Bitcoin's genesis header.
/// let h = BlockHeader {
///     version: 1, prev_block: Hash256::ZERO,
///     merkle_root: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b".parse().unwrap(),
///     claim_trie: None, time: 1231006505, bits: 0x1d00ffff, nonce: 2083236893,
/// };
/// assert_eq!(h.hash().to_string(),
///     "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// Block version.
    pub version: i32,
    /// Hash of the previous block.
    pub prev_block: Hash256,
    /// Merkle root of the transactions.
    pub merkle_root: Hash256,
    /// LBRY only: root of the claim trie.
    pub claim_trie: Option<Hash256>,
    /// Block time, seconds since the epoch.
    pub time: u32,
    /// Compact difficulty target.
    pub bits: u32,
    /// Proof-of-work nonce.
    pub nonce: u32,
}

impl BlockHeader {
    /// Reads a header of the given layout.
    pub fn decode_kind(r: &mut Reader<'_>, kind: HeaderKind) -> Result<BlockHeader> {
        let raw = r.take("block header", kind.len())?;
        Ok(Self::from_raw(raw, kind))
    }

    /// Parses exactly `kind.len()` bytes (the caller checked the length).
    #[inline]
    fn from_raw(raw: &[u8], kind: HeaderKind) -> BlockHeader {
        let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let hash_at = |i: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&raw[i..i + 32]);
            Hash256(h)
        };
        let (claim_trie, tail) = match kind {
            HeaderKind::Bitcoin => (None, 68),
            HeaderKind::Lbry => (Some(hash_at(68)), 100),
        };
        BlockHeader {
            version: u32_at(0) as i32,
            prev_block: hash_at(4),
            merkle_root: hash_at(36),
            claim_trie,
            time: u32_at(tail),
            bits: u32_at(tail + 4),
            nonce: u32_at(tail + 8),
        }
    }

    /// The header layout this header has.
    pub fn kind(&self) -> HeaderKind {
        if self.claim_trie.is_some() {
            HeaderKind::Lbry
        } else {
            HeaderKind::Bitcoin
        }
    }

    /// Appends the serialized header (80 or 112 bytes).
    pub fn write(&self, out: &mut impl BufMut) {
        let mut rec = [0u8; 113];
        self.write_to(&mut rec);
        out.put_slice(&rec[..self.kind().len()]);
    }

    /// Writes the header into the front of `rec` (80 or 112 bytes; the array is 113 so
    /// a zero transaction count can follow, as in `headers`), and 0 in the byte after
    /// it. The one place the header layout is written: `write`, `hash` and the
    /// `headers` encoder all go through it.
    fn write_to(&self, rec: &mut [u8; 113]) {
        rec[0..4].copy_from_slice(&self.version.to_le_bytes());
        rec[4..36].copy_from_slice(&self.prev_block.0);
        rec[36..68].copy_from_slice(&self.merkle_root.0);
        let tail = match &self.claim_trie {
            Some(c) => {
                rec[68..100].copy_from_slice(&c.0);
                100
            }
            None => 68,
        };
        rec[tail..tail + 4].copy_from_slice(&self.time.to_le_bytes());
        rec[tail + 4..tail + 8].copy_from_slice(&self.bits.to_le_bytes());
        rec[tail + 8..tail + 12].copy_from_slice(&self.nonce.to_le_bytes());
        rec[tail + 12] = 0;
    }

    /// The serialized header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(112);
        self.write(&mut v);
        v
    }

    /// The block hash: double SHA-256 of the serialized header.
    pub fn hash(&self) -> Hash256 {
        let mut rec = [0u8; 113];
        self.write_to(&mut rec);
        Hash256::sha256d(&rec[..self.kind().len()])
    }

    /// The proof-of-work target encoded by `bits`, as a 256-bit little-endian number
    /// (byte order of a hash). `None` if the encoding is negative or overflows.
    pub fn target(&self) -> Option<[u8; 32]> {
        let exp = (self.bits >> 24) as usize;
        let mant = self.bits & 0x007f_ffff;
        if self.bits & 0x0080_0000 != 0 && mant != 0 {
            return None;
        }
        let mut t = [0u8; 32];
        let m = mant.to_le_bytes();
        for (i, b) in m.iter().take(3).enumerate() {
            // byte i of the mantissa lands at position exp - 3 + i
            let pos = exp as isize - 3 + i as isize;
            if *b != 0 {
                if pos < 0 {
                    continue;
                }
                if pos as usize >= 32 {
                    return None;
                }
                t[pos as usize] = *b;
            }
        }
        Some(t)
    }

    /// Whether `hash` (as a little-endian number) is at most the target of `bits`.
    /// Bitcoin checks the block hash; LBRY checks its own proof-of-work hash, which
    /// this crate does not compute, so callers on LBRY pass that hash.
    pub fn meets_target(&self, hash: &Hash256) -> bool {
        let Some(t) = self.target() else {
            return false;
        };
        for i in (0..32).rev() {
            if hash.0[i] != t[i] {
                return hash.0[i] < t[i];
            }
        }
        true
    }
}

/// Parses `header + 0u8` records of `STRIDE` bytes up to the first whose transaction
/// count byte is not 0. A constant stride lets the compiler drop every bounds check.
fn parse_records<const STRIDE: usize>(records: &[u8], kind: HeaderKind) -> Vec<BlockHeader> {
    debug_assert_eq!(STRIDE, kind.len() + 1);
    let records = records.chunks_exact(STRIDE);
    let mut headers = Vec::with_capacity(records.len());
    headers.extend(
        records
            .take_while(|rec| rec[STRIDE - 1] == 0)
            .map(|rec| BlockHeader::from_raw(&rec[..STRIDE - 1], kind)),
    );
    headers
}

/// `headers`: up to 2,000 block headers, each followed by a transaction count that must
/// be zero.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    /// The headers.
    pub headers: Vec<BlockHeader>,
}

impl Payload for Headers {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let kind = ctx.header_kind;
        let stride = kind.len() + 1;
        let n = r.count("headers", ctx.limits.max_headers, stride)?;
        // `count` checked that n records of header + one-byte count are present, so the
        // common case (every transaction count is the single byte 0) is one pass over
        // fixed-size records with no per-field length checks. The first record whose
        // count byte is not 0 is read again through the general path below, which gives
        // the precise error (a non-zero count, or a non-canonical encoding of zero).
        let records = r.rest().get(..n * stride).unwrap_or(&[]);
        let mut headers = match kind {
            HeaderKind::Bitcoin => parse_records::<81>(records, kind),
            HeaderKind::Lbry => parse_records::<113>(records, kind),
        };
        let good = headers.len();
        r.skip("headers", good * stride)?;
        for _ in good..n {
            let h = BlockHeader::decode_kind(r, kind)?;
            if r.compact_size()? != 0 {
                return Err(Error::Malformed {
                    what: "headers",
                    reason: "a header carries a non-zero transaction count",
                });
            }
            headers.push(h);
        }
        Ok(Headers { headers })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let n = self.headers.len();
        if n > ctx.limits.max_headers {
            return Err(Error::TooManyEntries {
                what: "headers",
                count: n as u64,
                max: ctx.limits.max_headers as u64,
            });
        }
        // A header of the other layout would be written with the wrong length and read
        // back as garbage by the peer.
        if self.headers.iter().any(|h| h.kind() != ctx.header_kind) {
            return Err(Error::Malformed {
                what: "headers",
                reason: "header layout does not match the network",
            });
        }
        out.reserve(3 + n * (ctx.header_kind.len() + 1));
        compact_size::write(out, n as u64);
        // Each record is assembled on the stack and appended with one copy: `BufMut`'s
        // per-field puts each re-check the capacity, which was a third of the encode time.
        let stride = ctx.header_kind.len() + 1;
        let mut rec = [0u8; 113];
        for h in &self.headers {
            h.write_to(&mut rec);
            out.extend_from_slice(&rec[..stride]);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        3 + self.headers.len() * 113
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_of_genesis_bits() {
        let h = BlockHeader {
            version: 1,
            prev_block: Hash256::ZERO,
            merkle_root: Hash256::ZERO,
            claim_trie: None,
            time: 0,
            bits: 0x1d00ffff,
            nonce: 0,
        };
        let t = h.target().unwrap();
        // 0x00000000ffff0000...: bytes 26 and 27 (little-endian) are 0xff.
        assert_eq!(t[26], 0xff);
        assert_eq!(t[27], 0xff);
        assert_eq!(t[28], 0);
        assert_eq!(t[25], 0);
        let regtest = BlockHeader {
            bits: 0x207fffff,
            ..h
        };
        assert!(regtest.meets_target(&Hash256([0x11; 32])));
        assert!(!h.meets_target(&Hash256([0x11; 32])));
    }
}
