//! `inv`, `getdata` and `notfound`: lists of inventory vectors.

use bytes::{BufMut, BytesMut};

use super::common::{InvType, InvVect};
use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;

/// The payload of `inv`, `getdata` and `notfound`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// The entries.
    pub inventory: Vec<InvVect>,
}

impl Inventory {
    /// A list from entries.
    pub fn new(inventory: Vec<InvVect>) -> Inventory {
        Inventory { inventory }
    }
}

impl Payload for Inventory {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let n = r.count("inventory entries", ctx.limits.max_inv, InvVect::LEN)?;
        let mut inventory = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = InvType(r.u32_le("inventory type")?);
            let hash = r.hash("inventory hash")?;
            inventory.push(InvVect { kind, hash });
        }
        Ok(Inventory { inventory })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let n = self.inventory.len();
        if n > ctx.limits.max_inv {
            return Err(Error::TooManyEntries {
                what: "inventory entries",
                count: n as u64,
                max: ctx.limits.max_inv as u64,
            });
        }
        out.reserve(9 + n * InvVect::LEN);
        compact_size::write(out, n as u64);
        for iv in &self.inventory {
            out.put_u32_le(iv.kind.0);
            out.put_slice(&iv.hash.0);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        9 + self.inventory.len() * InvVect::LEN
    }
}
