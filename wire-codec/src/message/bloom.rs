//! BIP37 bloom filter messages: `filterload` and `filteradd` (`filterclear` is empty).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;

/// `filterload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterLoad {
    /// The filter bits (at most 36,000 bytes).
    pub filter: Bytes,
    /// Number of hash functions (at most 50).
    pub hash_funcs: u32,
    /// Random tweak of the hash functions.
    pub tweak: u32,
    /// `BLOOM_UPDATE_*` flags.
    pub flags: u8,
}

impl Payload for FilterLoad {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let filter = r.var_bytes_owned("bloom filter", ctx.limits.max_filterload)?;
        let hash_funcs = r.u32_le("bloom hash funcs")?;
        if hash_funcs > ctx.limits.max_filter_hash_funcs {
            return Err(Error::TooManyEntries {
                what: "bloom hash functions",
                count: u64::from(hash_funcs),
                max: u64::from(ctx.limits.max_filter_hash_funcs),
            });
        }
        let tweak = r.u32_le("bloom tweak")?;
        let flags = r.u8("bloom flags")?;
        Ok(FilterLoad {
            filter,
            hash_funcs,
            tweak,
            flags,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if self.filter.len() > ctx.limits.max_filterload {
            return Err(Error::TooLong {
                what: "bloom filter",
                len: self.filter.len() as u64,
                max: ctx.limits.max_filterload as u64,
            });
        }
        compact_size::write(out, self.filter.len() as u64);
        out.put_slice(&self.filter);
        out.put_u32_le(self.hash_funcs);
        out.put_u32_le(self.tweak);
        out.put_u8(self.flags);
        Ok(())
    }
}

/// `filteradd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterAdd {
    /// The element to add (at most 520 bytes).
    pub data: Bytes,
}

impl Payload for FilterAdd {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        Ok(FilterAdd {
            data: r.var_bytes_owned("filteradd data", ctx.limits.max_filteradd)?,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if self.data.len() > ctx.limits.max_filteradd {
            return Err(Error::TooLong {
                what: "filteradd data",
                len: self.data.len() as u64,
                max: ctx.limits.max_filteradd as u64,
            });
        }
        compact_size::write(out, self.data.len() as u64);
        out.put_slice(&self.data);
        Ok(())
    }
}
