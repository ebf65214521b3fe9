//! BIP157 compact filter messages.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::Hash256;

fn write_hashes(
    out: &mut BytesMut,
    what: &'static str,
    hashes: &[Hash256],
    max: usize,
) -> Result<()> {
    if hashes.len() > max {
        return Err(Error::TooManyEntries {
            what,
            count: hashes.len() as u64,
            max: max as u64,
        });
    }
    compact_size::write(out, hashes.len() as u64);
    for h in hashes {
        out.put_slice(&h.0);
    }
    Ok(())
}

fn read_hashes(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Vec<Hash256>> {
    let n = r.count(what, max, 32)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.hash(what)?);
    }
    Ok(v)
}

/// `getcfilters`: filters for a range of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCFilters {
    /// Filter type (0: basic).
    pub filter_type: u8,
    /// Height of the first block.
    pub start_height: u32,
    /// Hash of the last block.
    pub stop_hash: Hash256,
}

impl Payload for GetCFilters {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(GetCFilters {
            filter_type: r.u8("filter type")?,
            start_height: r.u32_le("start height")?,
            stop_hash: r.hash("stop hash")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_u8(self.filter_type);
        out.put_u32_le(self.start_height);
        out.put_slice(&self.stop_hash.0);
        Ok(())
    }
}

/// `getcfheaders`: same shape as [`GetCFilters`].
pub type GetCFHeaders = GetCFilters;

/// `cfilter`: one block's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFilter {
    /// Filter type.
    pub filter_type: u8,
    /// The block.
    pub block_hash: Hash256,
    /// The filter (zero-copy slice of the payload).
    pub filter: Bytes,
}

impl Payload for CFilter {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        Ok(CFilter {
            filter_type: r.u8("filter type")?,
            block_hash: r.hash("block hash")?,
            filter: r.var_bytes_owned("cfilter data", ctx.limits.max_cfilter)?,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if self.filter.len() > ctx.limits.max_cfilter {
            return Err(Error::TooLong {
                what: "cfilter data",
                len: self.filter.len() as u64,
                max: ctx.limits.max_cfilter as u64,
            });
        }
        out.put_u8(self.filter_type);
        out.put_slice(&self.block_hash.0);
        compact_size::write(out, self.filter.len() as u64);
        out.put_slice(&self.filter);
        Ok(())
    }

    fn size_hint(&self) -> usize {
        38 + self.filter.len()
    }
}

/// `cfheaders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFHeaders {
    /// Filter type.
    pub filter_type: u8,
    /// The last block of the range.
    pub stop_hash: Hash256,
    /// The filter header before the first block of the range.
    pub previous_filter_header: Hash256,
    /// Filter hashes of the range (at most 2,000).
    pub filter_hashes: Vec<Hash256>,
}

impl Payload for CFHeaders {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        Ok(CFHeaders {
            filter_type: r.u8("filter type")?,
            stop_hash: r.hash("stop hash")?,
            previous_filter_header: r.hash("previous filter header")?,
            filter_hashes: read_hashes(r, "filter hashes", ctx.limits.max_cfheaders)?,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        out.put_u8(self.filter_type);
        out.put_slice(&self.stop_hash.0);
        out.put_slice(&self.previous_filter_header.0);
        write_hashes(
            out,
            "filter hashes",
            &self.filter_hashes,
            ctx.limits.max_cfheaders,
        )
    }

    fn size_hint(&self) -> usize {
        68 + 32 * self.filter_hashes.len()
    }
}

/// `getcfcheckpt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCFCheckpt {
    /// Filter type.
    pub filter_type: u8,
    /// The last block.
    pub stop_hash: Hash256,
}

impl Payload for GetCFCheckpt {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(GetCFCheckpt {
            filter_type: r.u8("filter type")?,
            stop_hash: r.hash("stop hash")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_u8(self.filter_type);
        out.put_slice(&self.stop_hash.0);
        Ok(())
    }
}

/// `cfcheckpt`: filter headers every 1,000 blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFCheckpt {
    /// Filter type.
    pub filter_type: u8,
    /// The last block.
    pub stop_hash: Hash256,
    /// The checkpoint filter headers.
    pub filter_headers: Vec<Hash256>,
}

impl Payload for CFCheckpt {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        Ok(CFCheckpt {
            filter_type: r.u8("filter type")?,
            stop_hash: r.hash("stop hash")?,
            filter_headers: read_hashes(r, "filter headers", ctx.limits.max_cfcheckpt)?,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        out.put_u8(self.filter_type);
        out.put_slice(&self.stop_hash.0);
        write_hashes(
            out,
            "filter headers",
            &self.filter_headers,
            ctx.limits.max_cfcheckpt,
        )
    }

    fn size_hint(&self) -> usize {
        38 + 32 * self.filter_headers.len()
    }
}
