//! Transactions (BIP144 witness serialization), kept zero-copy.
//!
//! A [`Transaction`] is its exact wire bytes plus the handful of offsets found by one
//! validating pass over them. Nothing else is copied or allocated when a transaction is
//! decoded: inputs, outputs and witness stacks are read on demand from the stored bytes
//! (they were validated once, so reading them again cannot fail), the txid hashes the
//! non-witness parts of the bytes in place, and encoding copies the bytes out.

use core::fmt;
use core::hash::{Hash, Hasher};

use bytes::{BufMut, Bytes, BytesMut};

use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::reader::Reader;
use crate::Hash256;

/// Smallest serialized input: outpoint 36 + script length 1 + sequence 4 (btcd
/// `minTxInPayload`).
pub(crate) const MIN_TX_IN_LEN: usize = 41;
/// Smallest serialized output: value 8 + script length 1 (btcd `MinTxOutPayload`).
pub(crate) const MIN_TX_OUT_LEN: usize = 9;
/// Smallest serialized transaction: version 4 + two counts + lock time 4 (btcd
/// `minTxPayload`); used to bound transaction counts by the bytes present.
pub(crate) const MIN_TX_LEN: usize = 10;

/// The byte after the BIP144 marker (`0x00`) that announces witness data.
const WITNESS_FLAG: u8 = 0x01;

/// A reference to an output of an earlier transaction.
///
/// ```
/// use wire_codec::message::OutPoint;
/// assert!(OutPoint::NULL.is_null()); // what a coinbase input spends
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    /// The txid of the transaction holding the output.
    pub txid: Hash256,
    /// The output's index.
    pub vout: u32,
}

impl OutPoint {
    /// Encoded length.
    pub const LEN: usize = 36;

    /// The outpoint a coinbase input names: zero hash, index `0xffffffff`.
    pub const NULL: OutPoint = OutPoint {
        txid: Hash256::ZERO,
        vout: u32::MAX,
    };

    /// Whether this is the coinbase's null outpoint.
    pub fn is_null(&self) -> bool {
        *self == OutPoint::NULL
    }
}

/// A transaction input. Scripts and witness items are slices of the transaction's bytes.
///
/// Built by hand to make a transaction with [`Transaction::build`]; handed out by
/// [`Transaction::inputs`] for a decoded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxIn {
    /// The output spent.
    pub prevout: OutPoint,
    /// The unlocking script.
    pub script_sig: Bytes,
    /// The sequence number.
    pub sequence: u32,
    /// BIP141 witness stack (empty for non-witness inputs).
    pub witness: Vec<Bytes>,
}

/// A transaction output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOut {
    /// Value in satoshis.
    pub value: i64,
    /// The locking script.
    pub script_pubkey: Bytes,
}

/// A transaction: its exact wire bytes plus the offsets found while validating them.
///
/// Decoding walks the structure once, checking every count and length against the
/// protocol maximum and against the bytes actually present (so nothing is ever reserved
/// on the strength of an untrusted number), and keeps the transaction as a zero-copy
/// slice of the received payload. Inputs, outputs and witnesses are parsed on demand;
/// txid and wtxid are computed when asked for, without copying.
///
/// BIP144: a zero input count followed by the flag `0x01` introduces the witness
/// serialization (any other flag is an error, as in btcd); a witness serialization whose
/// witness stacks are all empty is refused, as btcd and Bitcoin Core refuse it
/// ("superfluous witness record"). A transaction with no inputs therefore cannot be
/// read, as in btcd with witness encoding.
///
/// Two transactions are equal when their bytes are.
///
/// ```
/// use bytes::Bytes;
/// use wire_codec::message::{OutPoint, Transaction, TxIn, TxOut};
/// use wire_codec::Hash256;
///
/// let input = TxIn {
///     prevout: OutPoint { txid: Hash256([7; 32]), vout: 1 },
///     script_sig: Bytes::new(),
///     sequence: 0xffff_fffd,
///     witness: vec![Bytes::from_static(&[0x30; 72]), Bytes::from_static(&[0x02; 33])],
/// };
/// let output = TxOut { value: 50_000, script_pubkey: Bytes::from_static(&[0x00, 0x14, 1, 2]) };
/// let tx = Transaction::build(2, &[input], &[output], 0);
///
/// let back = Transaction::from_bytes(tx.raw().clone()).unwrap();
/// assert_eq!(back, tx);
/// assert!(back.has_witness());
/// assert_eq!(back.inputs().next().unwrap().witness.len(), 2);
/// assert_eq!(back.outputs().next().unwrap().value, 50_000);
/// assert_ne!(back.txid(), back.wtxid()); // the txid leaves the witness out
/// ```
#[derive(Clone)]
pub struct Transaction {
    raw: Bytes,
    /// Offset of the first input (just after the input count).
    inputs_at: usize,
    /// Offset of the first output (just after the output count).
    outputs_at: usize,
    /// Offset of the first witness stack; the lock time's offset when there is no witness.
    witness_at: usize,
    input_count: u32,
    output_count: u32,
    witness: bool,
}

impl PartialEq for Transaction {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Transaction {}

impl Hash for Transaction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("txid", &self.txid())
            .field("version", &self.version())
            .field("inputs", &self.input_count)
            .field("outputs", &self.output_count)
            .field("witness", &self.witness)
            .field("lock_time", &self.lock_time())
            .field("len", &self.raw.len())
            .finish()
    }
}

fn malformed(what: &'static str, reason: &'static str) -> Error {
    Error::Malformed { what, reason }
}

impl Transaction {
    /// Reads a buffer that holds exactly one transaction, with the limits of Bitcoin
    /// mainnet ([`Limits::default`]); use [`Transaction::from_bytes_with`] for another
    /// network's limits. Bytes after the transaction are an error.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use wire_codec::{message::Transaction, Error};
    /// // A legacy transaction: one input, one output, no witness.
    /// let mut raw = vec![1, 0, 0, 0, 1];
    /// raw.extend_from_slice(&[0xaa; 32]);           // previous txid
    /// raw.extend_from_slice(&[0, 0, 0, 0, 0]);     // vout 0, empty script
    /// raw.extend_from_slice(&[0xff; 4]);           // sequence
    /// raw.extend_from_slice(&[1, 0x10, 0x27, 0, 0, 0, 0, 0, 0, 0]); // 10,000 sat, empty script
    /// raw.extend_from_slice(&[0; 4]);              // lock time
    /// let tx = Transaction::from_bytes(Bytes::from(raw.clone())).unwrap();
    /// assert_eq!((tx.input_count(), tx.output_count(), tx.has_witness()), (1, 1, false));
    /// assert_eq!(tx.txid(), tx.wtxid());
    ///
    /// raw.push(0);
    /// assert!(matches!(Transaction::from_bytes(Bytes::from(raw)),
    ///     Err(Error::TrailingBytes { extra: 1, .. })));
    /// ```
    pub fn from_bytes(bytes: Bytes) -> Result<Transaction> {
        Self::from_bytes_with(bytes, &Limits::default())
    }

    /// Like [`Transaction::from_bytes`], with the given limits.
    pub fn from_bytes_with(bytes: Bytes, limits: &Limits) -> Result<Transaction> {
        let mut r = Reader::new(&bytes);
        let tx = Self::read(&mut r, limits.max_payload as usize)?;
        r.finish(super::command::TX)?;
        Ok(tx)
    }

    /// Reads one transaction from `r`, validating its whole structure in one pass.
    /// Every length is bounded by `max` (the payload maximum) and by the bytes left.
    #[inline(always)]
    pub(crate) fn read(r: &mut Reader<'_>, max: usize) -> Result<Transaction> {
        // The fast walk accepts exactly what the checked walk accepts; when it gives up,
        // the checked walk runs to say precisely what is wrong.
        let layout = match Layout::scan(r.rest(), max) {
            Some(layout) => layout,
            None => Layout::scan_checked(&mut r.clone(), max)?,
        };
        Ok(Transaction {
            raw: r.bytes("tx", layout.len)?,
            inputs_at: layout.inputs_at,
            outputs_at: layout.outputs_at,
            witness_at: layout.witness_at,
            // Both counts were bounded by the payload maximum (a u32).
            input_count: layout.input_count as u32,
            output_count: layout.output_count as u32,
            witness: layout.witness,
        })
    }

    /// Serializes a transaction once and keeps the result. The witness serialization is
    /// used iff some input has a non-empty witness stack.
    ///
    /// No limit is checked: the caller's data is trusted. A transaction without inputs
    /// and without witness cannot be read back (its zero input count reads as the BIP144
    /// marker), exactly as in btcd and Bitcoin Core.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use wire_codec::message::{OutPoint, Transaction, TxIn, TxOut};
    /// let tx = Transaction::build(
    ///     1,
    ///     &[TxIn { prevout: OutPoint::NULL, script_sig: Bytes::from_static(&[1, 2]),
    ///              sequence: u32::MAX, witness: vec![] }],
    ///     &[TxOut { value: 5_000_000_000, script_pubkey: Bytes::from_static(&[0x51]) }],
    ///     0,
    /// );
    /// assert!(tx.is_coinbase());
    /// assert_eq!(tx.raw().len(), 4 + 1 + 36 + 1 + 2 + 4 + 1 + 8 + 1 + 1 + 4);
    /// ```
    pub fn build(version: i32, inputs: &[TxIn], outputs: &[TxOut], lock_time: u32) -> Transaction {
        let witness = inputs.iter().any(|i| !i.witness.is_empty());
        let mut size = 4 + 2 + 9 + 9 + 4;
        for i in inputs {
            size += OutPoint::LEN + 9 + i.script_sig.len() + 4;
            if witness {
                size += 9 + i.witness.iter().map(|w| 9 + w.len()).sum::<usize>();
            }
        }
        size += outputs
            .iter()
            .map(|o| 8 + 9 + o.script_pubkey.len())
            .sum::<usize>();
        let mut out = BytesMut::with_capacity(size);
        out.put_i32_le(version);
        if witness {
            out.put_u8(0);
            out.put_u8(WITNESS_FLAG);
        }
        compact_size::write(&mut out, inputs.len() as u64);
        let inputs_at = out.len();
        for i in inputs {
            out.put_slice(&i.prevout.txid.0);
            out.put_u32_le(i.prevout.vout);
            write_var_bytes(&mut out, &i.script_sig);
            out.put_u32_le(i.sequence);
        }
        compact_size::write(&mut out, outputs.len() as u64);
        let outputs_at = out.len();
        for o in outputs {
            out.put_i64_le(o.value);
            write_var_bytes(&mut out, &o.script_pubkey);
        }
        let witness_at = out.len();
        if witness {
            for i in inputs {
                compact_size::write(&mut out, i.witness.len() as u64);
                for item in &i.witness {
                    write_var_bytes(&mut out, item);
                }
            }
        }
        out.put_u32_le(lock_time);
        Transaction {
            raw: out.freeze(),
            inputs_at,
            outputs_at,
            witness_at,
            input_count: u32::try_from(inputs.len()).unwrap_or(u32::MAX),
            output_count: u32::try_from(outputs.len()).unwrap_or(u32::MAX),
            witness,
        }
    }

    /// The exact serialization as received (or built); encoding copies these bytes.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The transaction version.
    pub fn version(&self) -> i32 {
        i32::from_le_bytes(self.word_at(0))
    }

    /// The lock time (block height or time before which the transaction is not final).
    pub fn lock_time(&self) -> u32 {
        u32::from_le_bytes(self.word_at(self.raw.len().saturating_sub(4)))
    }

    fn word_at(&self, at: usize) -> [u8; 4] {
        match self.raw.get(at..at + 4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => [0; 4],
        }
    }

    /// Whether the transaction is in the BIP144 witness serialization (and so has at
    /// least one non-empty witness stack).
    pub fn has_witness(&self) -> bool {
        self.witness
    }

    /// Number of inputs.
    pub fn input_count(&self) -> usize {
        self.input_count as usize
    }

    /// Number of outputs.
    pub fn output_count(&self) -> usize {
        self.output_count as usize
    }

    /// The inputs, parsed from the stored bytes as the iterator advances. Script and
    /// witness items are zero-copy slices; only each input's list of witness items is
    /// allocated.
    pub fn inputs(&self) -> impl ExactSizeIterator<Item = TxIn> + Clone + '_ {
        Inputs {
            raw: &self.raw,
            pos: self.inputs_at,
            witness_pos: self.witness.then_some(self.witness_at),
            left: self.input_count,
        }
    }

    /// The outputs, parsed from the stored bytes as the iterator advances.
    pub fn outputs(&self) -> impl ExactSizeIterator<Item = TxOut> + Clone + '_ {
        Outputs {
            raw: &self.raw,
            pos: self.outputs_at,
            left: self.output_count,
        }
    }

    /// Whether this is a coinbase: one input, spending the null outpoint.
    pub fn is_coinbase(&self) -> bool {
        self.input_count == 1 && self.inputs().next().is_some_and(|i| i.prevout.is_null())
    }

    /// The three slices that make up the serialization without witness: version,
    /// inputs and outputs (counts included), lock time.
    fn base_parts(&self) -> [&[u8]; 3] {
        let len = self.raw.len();
        if !self.witness {
            return [&self.raw[..], &[], &[]];
        }
        let part = |a: usize, b: usize| self.raw.get(a..b).unwrap_or_default();
        [
            part(0, 4),
            part(6, self.witness_at),
            part(len.saturating_sub(4), len),
        ]
    }

    /// The transaction id: double SHA-256 of the serialization without witness, hashed
    /// from slices of the stored bytes (nothing is copied).
    pub fn txid(&self) -> Hash256 {
        Hash256::sha256d_parts(&self.base_parts())
    }

    /// The witness transaction id (BIP141): double SHA-256 of the bytes as they are.
    /// Equal to [`Transaction::txid`] for a transaction without witness.
    pub fn wtxid(&self) -> Hash256 {
        Hash256::sha256d(&self.raw)
    }

    /// Appends the serialization without witness (what a peer that did not negotiate
    /// witness support must be sent).
    pub fn encode_without_witness(&self, out: &mut BytesMut) {
        let parts = self.base_parts();
        out.reserve(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(p);
        }
    }

    /// Length of the serialization without witness.
    pub fn base_size(&self) -> usize {
        self.base_parts().iter().map(|p| p.len()).sum()
    }

    /// Length of the serialization as stored (with witness, if any).
    pub fn total_size(&self) -> usize {
        self.raw.len()
    }

    /// BIP141 weight: three times the base size plus the total size.
    pub fn weight(&self) -> usize {
        self.base_size() * 3 + self.total_size()
    }

    /// Virtual size: the weight divided by four, rounded up.
    pub fn vsize(&self) -> usize {
        self.weight().div_ceil(4)
    }
}

/// Where the parts of one serialized transaction start (offsets from its first byte).
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    inputs_at: usize,
    outputs_at: usize,
    witness_at: usize,
    input_count: usize,
    output_count: usize,
    witness: bool,
    len: usize,
}

/// A CompactSize at `*pos` in `buf`, advancing `pos`; `None` if truncated or
/// non-canonical. The one-byte form, by far the most common, is read inline.
#[inline(always)]
fn read_size(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let first = *buf.get(*pos)?;
    if first < 0xfd {
        *pos += 1;
        return Some(usize::from(first));
    }
    let (v, n) = compact_size::read(buf.get(*pos..)?).ok()?;
    *pos += n;
    usize::try_from(v).ok()
}

/// Skips a length-prefixed field of at most `max` bytes.
#[inline(always)]
fn skip_var(buf: &[u8], pos: &mut usize, max: usize) -> Option<()> {
    let len = read_size(buf, pos)?;
    if len > max {
        return None;
    }
    *pos = pos.checked_add(len)?;
    Some(())
}

impl Layout {
    /// The walk of the hot path: a transaction at the start of `buf`, if it is valid.
    /// Positions may run past the end while fields are skipped; every read goes
    /// through `get`, and the final position is checked against the length.
    #[inline]
    fn scan(buf: &[u8], max: usize) -> Option<Layout> {
        let mut pos = 4;
        let mut input_count = read_size(buf, &mut pos)?;
        let witness = input_count == 0;
        if witness {
            if *buf.get(pos)? != WITNESS_FLAG {
                return None;
            }
            pos += 1;
            input_count = read_size(buf, &mut pos)?;
        }
        if input_count > max / MIN_TX_IN_LEN {
            return None;
        }
        let inputs_at = pos;
        for _ in 0..input_count {
            pos = pos.checked_add(OutPoint::LEN)?;
            skip_var(buf, &mut pos, max)?;
            pos = pos.checked_add(4)?;
        }
        let output_count = read_size(buf, &mut pos)?;
        if output_count > max / MIN_TX_OUT_LEN {
            return None;
        }
        let outputs_at = pos;
        for _ in 0..output_count {
            pos = pos.checked_add(8)?;
            skip_var(buf, &mut pos, max)?;
        }
        let witness_at = pos;
        if witness {
            let mut any_item = false;
            for _ in 0..input_count {
                let items = read_size(buf, &mut pos)?;
                if items > max {
                    return None;
                }
                any_item |= items != 0;
                for _ in 0..items {
                    skip_var(buf, &mut pos, max)?;
                }
            }
            if !any_item {
                return None;
            }
        }
        let len = pos.checked_add(4)?;
        (len <= buf.len()).then_some(Layout {
            inputs_at,
            outputs_at,
            witness_at,
            input_count,
            output_count,
            witness,
            len,
        })
    }

    /// The same walk through [`Reader`], which names every fault (truncation with the
    /// bytes needed, counts above the maximum, non-canonical sizes, BIP144 flag rules).
    #[cold]
    #[inline(never)]
    fn scan_checked(r: &mut Reader<'_>, max: usize) -> Result<Layout> {
        let start = r.position();
        r.skip("tx version", 4)?;
        let mut input_count = r.count("tx inputs", max / MIN_TX_IN_LEN, MIN_TX_IN_LEN)?;
        let witness = input_count == 0;
        if witness {
            // BIP144: the zero "input count" was the marker; the flag follows.
            if r.u8("tx witness flag")? != WITNESS_FLAG {
                return Err(malformed(
                    "tx witness flag",
                    "the byte after the witness marker is not 0x01",
                ));
            }
            input_count = r.count("tx inputs", max / MIN_TX_IN_LEN, MIN_TX_IN_LEN)?;
        }
        let inputs_at = r.position() - start;
        for _ in 0..input_count {
            r.skip("tx input outpoint", OutPoint::LEN)?;
            r.var_slice("script_sig", max)?;
            r.skip("tx input sequence", 4)?;
        }
        let output_count = r.count("tx outputs", max / MIN_TX_OUT_LEN, MIN_TX_OUT_LEN)?;
        let outputs_at = r.position() - start;
        for _ in 0..output_count {
            r.skip("tx output value", 8)?;
            r.var_slice("script_pubkey", max)?;
        }
        let witness_at = r.position() - start;
        if witness {
            let mut any_item = false;
            for _ in 0..input_count {
                // Each item takes at least its one-byte length.
                let items = r.count("witness items", max, 1)?;
                any_item |= items != 0;
                for _ in 0..items {
                    r.var_slice("witness item", max)?;
                }
            }
            if !any_item {
                return Err(malformed(
                    "tx witness",
                    "witness flag set but every witness stack is empty",
                ));
            }
        }
        r.skip("tx lock time", 4)?;
        Ok(Layout {
            inputs_at,
            outputs_at,
            witness_at,
            input_count,
            output_count,
            witness,
            len: r.position() - start,
        })
    }
}

fn write_var_bytes(out: &mut BytesMut, b: &[u8]) {
    compact_size::write(out, b.len() as u64);
    out.put_slice(b);
}

/// A reader over the stored bytes, at `pos`. `None` if `pos` is out of range (which
/// the decode-time validation rules out).
fn reader_at(raw: &Bytes, pos: usize) -> Option<Reader<'_>> {
    let mut r = Reader::new(raw);
    r.skip("", pos).ok()?;
    Some(r)
}

/// The inputs of a [`Transaction`], from [`Transaction::inputs`].
#[derive(Debug, Clone)]
struct Inputs<'a> {
    raw: &'a Bytes,
    pos: usize,
    witness_pos: Option<usize>,
    left: u32,
}

impl Inputs<'_> {
    fn parse(&mut self) -> Option<TxIn> {
        let mut r = reader_at(self.raw, self.pos)?;
        let txid = r.hash("").ok()?;
        let vout = r.u32_le("").ok()?;
        let script_sig = r.var_bytes("", usize::MAX).ok()?;
        let sequence = r.u32_le("").ok()?;
        self.pos = r.position();
        let mut witness = Vec::new();
        if let Some(at) = self.witness_pos {
            let mut r = reader_at(self.raw, at)?;
            // Validated at decode; checked again so that no count is ever trusted.
            let items = r.count("", usize::MAX, 1).ok()?;
            witness.reserve_exact(items);
            for _ in 0..items {
                witness.push(r.var_bytes("", usize::MAX).ok()?);
            }
            self.witness_pos = Some(r.position());
        }
        Some(TxIn {
            prevout: OutPoint { txid, vout },
            script_sig,
            sequence,
            witness,
        })
    }
}

impl Iterator for Inputs<'_> {
    type Item = TxIn;

    fn next(&mut self) -> Option<TxIn> {
        if self.left == 0 {
            return None;
        }
        let input = self.parse();
        self.left = if input.is_some() { self.left - 1 } else { 0 };
        input
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Inputs<'_> {}

/// The outputs of a [`Transaction`], from [`Transaction::outputs`].
#[derive(Debug, Clone)]
struct Outputs<'a> {
    raw: &'a Bytes,
    pos: usize,
    left: u32,
}

impl Outputs<'_> {
    fn parse(&mut self) -> Option<TxOut> {
        let mut r = reader_at(self.raw, self.pos)?;
        let value = r.i64_le("").ok()?;
        let script_pubkey = r.var_bytes("", usize::MAX).ok()?;
        self.pos = r.position();
        Some(TxOut {
            value,
            script_pubkey,
        })
    }
}

impl Iterator for Outputs<'_> {
    type Item = TxOut;

    fn next(&mut self) -> Option<TxOut> {
        if self.left == 0 {
            return None;
        }
        let output = self.parse();
        self.left = if output.is_some() { self.left - 1 } else { 0 };
        output
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Outputs<'_> {}

impl Payload for Transaction {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        Self::read(r, ctx.limits.max_payload as usize)
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if ctx.witness {
            out.extend_from_slice(&self.raw);
        } else {
            self.encode_without_witness(out);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        self.raw.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::message::Message;
    use crate::network::Network;
    use proptest::prelude::*;

    pub(crate) fn hex(s: &str) -> Bytes {
        let b = s.as_bytes();
        let nib = |c: u8| (c as char).to_digit(16).unwrap() as u8;
        Bytes::from(
            (0..b.len() / 2)
                .map(|i| (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]))
                .collect::<Vec<u8>>(),
        )
    }

    // Testnet3 coinbase with a BIP141 witness commitment (vector `tx-real-testnet3-segwit`).
    const SEGWIT_COINBASE: &str = "010000000001010000000000000000000000000000000000000000000000000000000000000000ffffffff3603da1b0e00045503bd5704c7dd8a0d0ced13bb5785010800000000000a636b706f6f6c122f4e696e6a61506f6f6c2f5345475749542fffffffff02b4e5a212000000001976a914876fbb82ec05caa6af7a3b5e5a983aae6c6cc6d688ac0000000000000000266a24aa21a9edf91c46b49eb8a29089980f02ee6b57e7d63d33b18b4fddac2bcd7db2a39837040120000000000000000000000000000000000000000000000000000000000000000000000000";
    // The same transaction serialized without its witness
    // (`tx-real-testnet3-segwit-no-witness-serialization`).
    const SEGWIT_COINBASE_STRIPPED: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff3603da1b0e00045503bd5704c7dd8a0d0ced13bb5785010800000000000a636b706f6f6c122f4e696e6a61506f6f6c2f5345475749542fffffffff02b4e5a212000000001976a914876fbb82ec05caa6af7a3b5e5a983aae6c6cc6d688ac0000000000000000266a24aa21a9edf91c46b49eb8a29089980f02ee6b57e7d63d33b18b4fddac2bcd7db2a398370400000000";
    // A testnet3 2-of-2 P2SH multisig spend (`tx-real-testnet3-2`).
    const P2SH_SPEND: &str = "01000000011e99f5a785e677e017d36b50aa4fd10010ffd039f38f42f447ca8895250e121f01000000d90047304402200d3d296ad641a281dd5c0d68b9ab0d1ad5f7052bec148c1fb81fb1ba69181ec502201a372bb16fb8e054ee9bef41e300d292153830f841a4db0ab7f7407f6581b9bc01473044022002584f313ae990236b6bebb82fbbb006a2b02a448dd5c93434428991eae960d60220491d67d2660c4dde19025cf86e5164a559e2c79c3b98b40e146fab974acd24690147522102632178d046673c9729d828cfee388e121f497707f810c131e0d3fc0fe0bd66d62103a0951ec7d3a9da9de171617026442fcd30f34d66100fab539853b43f508787d452aeffffffff0240420f000000000017a9140ffdcf96700455074292a821c74922e8652993998788997bc60000000017a9148ce5408cfeaddb7ccb2545ded41ef478109454848700000000";

    fn h(s: &str) -> Hash256 {
        s.parse().unwrap()
    }

    #[test]
    fn real_segwit_coinbase() {
        let raw = hex(SEGWIT_COINBASE);
        let tx = Transaction::from_bytes(raw.clone()).unwrap();
        assert_eq!(tx.raw(), &raw);
        assert!(tx.has_witness());
        assert!(tx.is_coinbase());
        assert_eq!((tx.version(), tx.lock_time()), (1, 0));
        assert_eq!((tx.input_count(), tx.output_count()), (1, 2));
        assert_eq!(
            tx.txid(),
            h("4be105f158ea44aec57bf12c5817d073a712ab131df6f37786872cfc70734188")
        );
        assert_eq!(
            tx.wtxid(),
            h("4dec22f59b8c704faf29fd575e6895c1f6f88f0d45e3cfe1995998be36950fe7")
        );
        let input = tx.inputs().next().unwrap();
        assert_eq!(input.prevout, OutPoint::NULL);
        assert_eq!(input.script_sig.len(), 0x36);
        assert_eq!(input.sequence, u32::MAX);
        // The witness reserved value: one 32-byte item of zeros.
        assert_eq!(input.witness, vec![Bytes::from_static(&[0; 32])]);
        let outs: Vec<TxOut> = tx.outputs().collect();
        assert_eq!(outs[0].value, 312_665_524);
        assert_eq!(
            outs[0].script_pubkey,
            hex("76a914876fbb82ec05caa6af7a3b5e5a983aae6c6cc6d688ac")
        );
        assert_eq!(outs[1].value, 0);
        assert_eq!(
            &outs[1].script_pubkey[..6],
            &[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]
        );
        // Zero copy: the script is a slice of the stored bytes.
        let base = raw.as_ptr() as usize;
        let at = input.script_sig.as_ptr() as usize - base;
        assert_eq!(at, 4 + 2 + 1 + 36 + 1);
        // Sizes: 186 bytes without witness, 222 with.
        assert_eq!((tx.base_size(), tx.total_size()), (186, 222));
        assert_eq!(tx.weight(), 186 * 3 + 222);
        assert_eq!(tx.vsize(), 195);
    }

    #[test]
    fn stripped_serialization_keeps_the_txid() {
        let full = Transaction::from_bytes(hex(SEGWIT_COINBASE)).unwrap();
        let stripped = Transaction::from_bytes(hex(SEGWIT_COINBASE_STRIPPED)).unwrap();
        assert!(!stripped.has_witness());
        assert_eq!(stripped.txid(), full.txid());
        // Without witness data the bytes are all there is: the wtxid is the txid.
        assert_eq!(stripped.wtxid(), stripped.txid());
        assert_eq!(
            stripped.inputs().next().unwrap().witness,
            Vec::<Bytes>::new()
        );
        let mut out = BytesMut::new();
        full.encode_without_witness(&mut out);
        assert_eq!(&out[..], &stripped.raw()[..]);
        // Rebuilding from the parsed parts gives the same bytes, witness or not.
        let rebuilt = |t: &Transaction| {
            let ins: Vec<TxIn> = t.inputs().collect();
            let outs: Vec<TxOut> = t.outputs().collect();
            Transaction::build(t.version(), &ins, &outs, t.lock_time())
        };
        assert_eq!(rebuilt(&full), full);
        assert_eq!(rebuilt(&stripped), stripped);
    }

    #[test]
    fn real_legacy_p2sh_spend() {
        let tx = Transaction::from_bytes(hex(P2SH_SPEND)).unwrap();
        let id = h("a2d2483626e80de874d7f8b28d93135594095bb7aad904bf4d5bab65069f21a0");
        assert_eq!((tx.txid(), tx.wtxid()), (id, id));
        assert!(!tx.has_witness() && !tx.is_coinbase());
        let input = tx.inputs().next().unwrap();
        assert_eq!(input.prevout.vout, 1);
        assert_eq!(input.script_sig.len(), 0xd9);
        let values: Vec<i64> = tx.outputs().map(|o| o.value).collect();
        assert_eq!(values, [1_000_000, 0xc67b_9988]);
        assert_eq!(tx.weight(), 4 * tx.raw().len());
    }

    #[test]
    fn every_truncation_is_an_error() {
        for s in [SEGWIT_COINBASE, P2SH_SPEND] {
            let raw = hex(s);
            for cut in 0..raw.len() {
                let err = Transaction::from_bytes(raw.slice(..cut)).unwrap_err();
                assert!(
                    matches!(err, Error::Truncated { .. }),
                    "cut at {cut}: {err:?}"
                );
            }
        }
    }

    /// version 1, then `rest`.
    fn v1(rest: &[u8]) -> Bytes {
        let mut v = vec![1, 0, 0, 0];
        v.extend_from_slice(rest);
        Bytes::from(v)
    }

    #[test]
    fn counts_and_lengths_are_checked_before_anything_is_reserved() {
        // 0x00ffffff inputs: more than 4,000,000 / 41 can exist.
        let err = Transaction::from_bytes(v1(&[0xfe, 0xff, 0xff, 0xff, 0x00])).unwrap_err();
        assert_eq!(
            err,
            Error::TooManyEntries {
                what: "tx inputs",
                count: 0xff_ffff,
                max: 4_000_000 / 41
            }
        );
        // 1,000 inputs under the maximum, but no bytes for them.
        let err = Transaction::from_bytes(v1(&[0xfd, 0xe8, 0x03, 0, 0])).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "tx inputs",
                needed: 41_000,
                ..
            }
        ));
        // A script_sig longer than any payload.
        let mut input = vec![1];
        input.extend_from_slice(&[0; 36]);
        input.extend_from_slice(&[0xfe, 0x01, 0x09, 0x3d, 0x00]); // 4,000,001
        let err = Transaction::from_bytes(v1(&input)).unwrap_err();
        assert_eq!(
            err,
            Error::TooLong {
                what: "script_sig",
                len: 4_000_001,
                max: 4_000_000
            }
        );
        // Outputs: too many for the payload maximum.
        let mut tx = input.clone();
        tx.truncate(1 + 36);
        tx.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff]); // empty script, sequence
        tx.extend_from_slice(&[0xfe, 0x00, 0x00, 0x10, 0x00]); // 1,048,576 outputs
        let err = Transaction::from_bytes(v1(&tx)).unwrap_err();
        assert!(matches!(
            err,
            Error::TooManyEntries {
                what: "tx outputs",
                ..
            }
        ));
        // A non-canonical count.
        let err = Transaction::from_bytes(v1(&[0xfd, 0x01, 0x00])).unwrap_err();
        assert!(matches!(
            err,
            Error::NonCanonicalCompactSize {
                prefix: 0xfd,
                value: 1
            }
        ));
        // The limits follow the context: LBRY allows 8,000,000-byte payloads.
        let lbry = Context::new(Network::LbryMainnet, 70013);
        let err = Transaction::from_bytes_with(v1(&[0xfe, 0xff, 0xff, 0xff, 0x00]), &lbry.limits)
            .unwrap_err();
        assert!(matches!(err, Error::TooManyEntries { max, .. } if max == 8_000_000 / 41));
    }

    /// One input (null outpoint, empty script), one empty output; `witness` is appended
    /// after the outputs of a BIP144 serialization with flag `flag`.
    fn witness_tx(flag: u8, witness: &[u8]) -> Bytes {
        let mut v = vec![0x00, flag, 1];
        v.extend_from_slice(&OutPoint::NULL.txid.0);
        v.extend_from_slice(&[0xff; 4]);
        v.push(0); // script_sig
        v.extend_from_slice(&[0xff; 4]); // sequence
        v.push(1); // one output
        v.extend_from_slice(&[0; 8]);
        v.push(0);
        v.extend_from_slice(witness);
        v.extend_from_slice(&[0; 4]); // lock time
        v1(&v)
    }

    #[test]
    fn bip144_marker_and_flag() {
        let ok = Transaction::from_bytes(witness_tx(1, &[1, 2, 0xab, 0xcd])).unwrap();
        assert!(ok.has_witness());
        assert_eq!(
            ok.inputs().next().unwrap().witness,
            vec![Bytes::from_static(&[0xab, 0xcd])]
        );
        // btcd: "witness tx but flag byte is 2".
        let err = Transaction::from_bytes(witness_tx(2, &[1, 2, 0xab, 0xcd])).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::Malformed);
        assert!(matches!(
            err,
            Error::Malformed {
                what: "tx witness flag",
                ..
            }
        ));
        // Superfluous witness record: flag set, every stack empty.
        let err = Transaction::from_bytes(witness_tx(1, &[0])).unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed {
                what: "tx witness",
                ..
            }
        ));
        // A stack may hold an empty item: that is a witness.
        assert!(Transaction::from_bytes(witness_tx(1, &[1, 0]))
            .unwrap()
            .has_witness());
        // Witness items are length-checked too.
        let err = Transaction::from_bytes(witness_tx(1, &[1, 0xfe, 0, 0, 0, 1])).unwrap_err();
        assert!(matches!(
            err,
            Error::TooLong {
                what: "witness item",
                ..
            }
        ));
        let err = Transaction::from_bytes(witness_tx(1, &[0xfd, 0xff, 0xff])).unwrap_err();
        assert!(matches!(
            err,
            Error::Truncated {
                what: "witness items",
                ..
            }
        ));
        // A marker with zero real inputs has no stacks at all: superfluous as well.
        let err = Transaction::from_bytes(v1(&[0, 1, 0, 0, 0, 0, 0, 0])).unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed {
                what: "tx witness",
                ..
            }
        ));
    }

    #[test]
    fn decodes_as_a_tx_message() {
        let ctx = Context::new(Network::Testnet3, 70016);
        let raw = hex(SEGWIT_COINBASE);
        let msg = Message::decode(super::super::command::TX, raw.clone(), &ctx).unwrap();
        let Message::Tx(tx) = &msg else {
            panic!("not a tx: {msg:?}")
        };
        assert_eq!(tx.raw(), &raw);
        let mut out = BytesMut::new();
        msg.encode_payload(&mut out, &ctx).unwrap();
        assert_eq!(&out[..], &raw[..]);
        let mut long = raw.to_vec();
        long.push(0);
        let err = Message::decode(super::super::command::TX, Bytes::from(long), &ctx).unwrap_err();
        assert!(matches!(err, Error::TrailingBytes { extra: 1, .. }));
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn arb_input() -> impl Strategy<Value = TxIn> {
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            arb_bytes(300),
            any::<u32>(),
            proptest::collection::vec(arb_bytes(80), 0..4),
        )
            .prop_map(|(txid, vout, script_sig, sequence, witness)| TxIn {
                prevout: OutPoint {
                    txid: Hash256(txid),
                    vout,
                },
                script_sig,
                sequence,
                witness,
            })
    }

    fn arb_output() -> impl Strategy<Value = TxOut> {
        (any::<i64>(), arb_bytes(300)).prop_map(|(value, script_pubkey)| TxOut {
            value,
            script_pubkey,
        })
    }

    prop_compose! {
        fn arb_tx()(
            version in any::<i32>(),
            inputs in proptest::collection::vec(arb_input(), 1..6),
            outputs in proptest::collection::vec(arb_output(), 0..6),
            lock_time in any::<u32>(),
        ) -> (i32, Vec<TxIn>, Vec<TxOut>, u32) {
            (version, inputs, outputs, lock_time)
        }
    }

    proptest! {
        #[test]
        fn built_transactions_round_trip((version, inputs, outputs, lock_time) in arb_tx()) {
            let tx = Transaction::build(version, &inputs, &outputs, lock_time);
            let back = Transaction::from_bytes(tx.raw().clone()).unwrap();
            prop_assert_eq!(&back, &tx);
            prop_assert_eq!(back.version(), version);
            prop_assert_eq!(back.lock_time(), lock_time);
            prop_assert_eq!(back.inputs().collect::<Vec<_>>(), inputs.clone());
            prop_assert_eq!(back.outputs().collect::<Vec<_>>(), outputs.clone());
            prop_assert_eq!(back.has_witness(), inputs.iter().any(|i| !i.witness.is_empty()));
            // The txid is the hash of the same transaction built without witness.
            let bare: Vec<TxIn> = inputs.iter().cloned().map(|i| TxIn { witness: vec![], ..i }).collect();
            let stripped = Transaction::build(version, &bare, &outputs, lock_time);
            prop_assert_eq!(back.txid(), stripped.wtxid());
            prop_assert_eq!(back.base_size(), stripped.raw().len());
            let mut out = BytesMut::new();
            back.encode_without_witness(&mut out);
            prop_assert_eq!(&out[..], &stripped.raw()[..]);
        }

        #[test]
        fn ids_agree_with_the_bitcoin_crate((version, inputs, outputs, lock_time) in arb_tx()) {
            use bitcoin::hashes::Hash as _;
            let tx = Transaction::build(version, &inputs, &outputs, lock_time);
            let theirs: bitcoin::Transaction = bitcoin::consensus::deserialize(tx.raw()).unwrap();
            prop_assert_eq!(theirs.compute_txid().to_byte_array(), tx.txid().0);
            prop_assert_eq!(theirs.compute_wtxid().to_byte_array(), tx.wtxid().0);
            prop_assert_eq!(theirs.weight().to_wu() as usize, tx.weight());
        }

        #[test]
        fn fast_and_checked_walks_agree(
            (version, inputs, outputs, lock_time) in arb_tx(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
            max in prop_oneof![Just(4_000_000usize), 0usize..400],
        ) {
            let tx = Transaction::build(version, &inputs, &outputs, lock_time);
            let mut raw = tx.raw().to_vec();
            for (at, byte) in edits {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
            raw.truncate(raw.len() - cut.index(raw.len() / 8 + 1));
            let raw = Bytes::from(raw);
            let fast = Layout::scan(&raw, max);
            let checked = Layout::scan_checked(&mut Reader::new(&raw), max);
            match (fast, checked) {
                (Some(f), Ok(c)) => prop_assert_eq!(f, c),
                (None, Err(_)) => {}
                (f, c) => prop_assert!(false, "fast {:?} vs checked {:?}", f, c),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in arb_bytes(600)) {
            if let Ok(tx) = Transaction::from_bytes(raw.clone()) {
                prop_assert_eq!(tx.raw(), &raw);
                prop_assert_eq!(tx.inputs().count(), tx.input_count());
                prop_assert_eq!(tx.outputs().count(), tx.output_count());
                let _ = (tx.txid(), tx.wtxid(), tx.weight());
            }
        }

        #[test]
        fn mutated_transactions_never_panic(
            (version, inputs, outputs, lock_time) in arb_tx(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let tx = Transaction::build(version, &inputs, &outputs, lock_time);
            let mut raw = tx.raw().to_vec();
            let i = at.index(raw.len());
            raw[i] = byte;
            raw.truncate(raw.len() - cut.index(raw.len() / 4 + 1));
            if let Ok(t) = Transaction::from_bytes(Bytes::from(raw.clone())) {
                prop_assert_eq!(&t.raw()[..], &raw[..]);
                prop_assert_eq!(t.inputs().count(), t.input_count());
                prop_assert_eq!(t.outputs().count(), t.output_count());
                // Whatever decodes is a transaction the bitcoin crate reads the same way.
                let theirs: bitcoin::Transaction = bitcoin::consensus::deserialize(&raw).unwrap();
                prop_assert_eq!(theirs.input.len(), t.input_count());
                prop_assert_eq!(theirs.output.len(), t.output_count());
            }
        }
    }
}
