//! A bounds-checked cursor over a received payload that hands out zero-copy slices.

use bytes::Bytes;

use crate::command::Command;
use crate::compact_size;
use crate::error::{Error, Result};
use crate::hash::Hash256;

/// Reads the fields of one payload. Every read checks the bytes that are left, so a
/// length or count in the input can never make the decoder reserve more memory than the
/// input itself could fill.
///
/// ```
/// use bytes::Bytes;
/// use wire_codec::Reader;
/// let payload = Bytes::from_static(&[2, 0xaa, 0xbb, 7, 0, 0, 0]);
/// let mut r = Reader::new(&payload);
/// let data = r.var_bytes("data", 10).unwrap();   // a zero-copy slice of `payload`
/// assert_eq!(&data[..], &[0xaa, 0xbb]);
/// assert_eq!(r.u32_le("n").unwrap(), 7);
/// assert!(r.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything was read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The current offset from the start of the payload.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The underlying payload.
    pub fn payload(&self) -> &'a Bytes {
        self.buf
    }

    #[inline]
    fn need(&self, what: &'static str, n: usize) -> Result<()> {
        if self.remaining() < n {
            Err(Error::Truncated {
                what,
                needed: n as u64,
                available: self.remaining() as u64,
            })
        } else {
            Ok(())
        }
    }

    /// Consumes `n` bytes and returns them as a borrowed slice.
    #[inline]
    pub fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8]> {
        self.need(what, n)?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, what: &'static str, n: usize) -> Result<()> {
        self.need(what, n)?;
        self.pos += n;
        Ok(())
    }

    /// Consumes `n` bytes and returns them as a zero-copy `Bytes` slice of the payload.
    #[inline]
    pub fn bytes(&mut self, what: &'static str, n: usize) -> Result<Bytes> {
        self.need(what, n)?;
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// A zero-copy slice of the payload between two offsets already read past.
    pub fn slice_from(&self, start: usize) -> Bytes {
        self.buf.slice(start..self.pos)
    }

    /// Reads a fixed-size array.
    #[inline]
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(what, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(what, 1)?[0])
    }

    /// Reads a byte as a boolean (any non-zero value is true, as btcd and Core read it).
    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.u8(what)? != 0)
    }

    /// Reads a little-endian u16.
    #[inline]
    pub fn u16_le(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a big-endian u16 (ports are big-endian on the wire).
    #[inline]
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a little-endian u32.
    #[inline]
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian i32.
    #[inline]
    pub fn i32_le(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u64.
    #[inline]
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian i64.
    #[inline]
    pub fn i64_le(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a 32-byte hash (wire order).
    #[inline]
    pub fn hash(&mut self, what: &'static str) -> Result<Hash256> {
        Ok(Hash256(self.array(what)?))
    }

    /// Reads a canonical CompactSize.
    #[inline]
    pub fn compact_size(&mut self) -> Result<u64> {
        let (v, n) = compact_size::read(self.rest())?;
        self.pos += n;
        Ok(v)
    }

    /// Reads a list count: checks it against `max` (too many entries) and against the
    /// bytes left, given that each entry takes at least `min_entry_len` bytes
    /// (truncated). Only then is it safe to reserve `count` entries.
    #[inline]
    pub fn count(&mut self, what: &'static str, max: usize, min_entry_len: usize) -> Result<usize> {
        let count = self.compact_size()?;
        if count > max as u64 {
            return Err(Error::TooManyEntries {
                what,
                count,
                max: max as u64,
            });
        }
        let needed = count.saturating_mul(min_entry_len as u64);
        if needed > self.remaining() as u64 {
            return Err(Error::Truncated {
                what,
                needed,
                available: self.remaining() as u64,
            });
        }
        Ok(count as usize)
    }

    /// Reads a CompactSize length then that many bytes (zero-copy), refusing lengths
    /// above `max` (too long) before looking at the bytes.
    #[inline]
    pub fn var_bytes(&mut self, what: &'static str, max: usize) -> Result<Bytes> {
        let len = self.compact_size()?;
        if len > max as u64 {
            return Err(Error::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        self.bytes(what, len as usize)
    }

    /// Like [`Reader::var_bytes`] but copies the bytes into their own allocation: for
    /// small fields an application may keep (an addrv2 address, filter data), which
    /// must not keep the whole payload — or the receive buffer it sits in — alive.
    #[inline]
    pub fn var_bytes_owned(&mut self, what: &'static str, max: usize) -> Result<Bytes> {
        self.var_slice(what, max).map(Bytes::copy_from_slice)
    }

    /// Like [`Reader::var_bytes`] but borrows instead of slicing.
    #[inline]
    pub fn var_slice(&mut self, what: &'static str, max: usize) -> Result<&'a [u8]> {
        let len = self.compact_size()?;
        if len > max as u64 {
            return Err(Error::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        self.take(what, len as usize)
    }

    /// Reads a var string. Invalid UTF-8 is replaced (peers' user agents are free text and
    /// are never a reason to drop a peer).
    pub fn var_str(&mut self, what: &'static str, max: usize) -> Result<String> {
        let s = self.var_slice(what, max)?;
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    /// Ends decoding of `command`: refuses trailing bytes.
    #[inline]
    pub fn finish(&self, command: Command) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                command,
                extra: self.remaining() as u64,
            })
        }
    }
}
