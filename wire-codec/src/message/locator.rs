//! `getblocks` and `getheaders`: a block locator and a stop hash.

use bytes::{BufMut, BytesMut};

use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::Hash256;

/// The payload of `getblocks` and `getheaders`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockLocator {
    /// The sender's protocol version (Core's test framework writes 0).
    pub version: u32,
    /// Block hashes from the tip back towards genesis, densest first.
    pub locator: Vec<Hash256>,
    /// Stop at this hash (zero: as many as allowed).
    pub stop: Hash256,
}

impl Payload for BlockLocator {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let version = r.u32_le("locator version")?;
        let n = r.count("locator hashes", ctx.limits.max_locator, 32)?;
        let mut locator = Vec::with_capacity(n);
        for _ in 0..n {
            locator.push(r.hash("locator hash")?);
        }
        let stop = r.hash("stop hash")?;
        Ok(BlockLocator {
            version,
            locator,
            stop,
        })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let n = self.locator.len();
        if n > ctx.limits.max_locator {
            return Err(Error::TooManyEntries {
                what: "locator hashes",
                count: n as u64,
                max: ctx.limits.max_locator as u64,
            });
        }
        out.put_u32_le(self.version);
        compact_size::write(out, n as u64);
        for h in &self.locator {
            out.put_slice(&h.0);
        }
        out.put_slice(&self.stop.0);
        Ok(())
    }

    fn size_hint(&self) -> usize {
        4 + 3 + 32 * self.locator.len() + 32
    }
}
