//! Small control messages: ping, pong, feefilter, sendcmpct, sendtxrcncl, reject, alert.

use bytes::{BufMut, Bytes, BytesMut};

use super::common::RejectCode;
use super::{Context, Payload};
use crate::compact_size;
use crate::error::Result;
use crate::reader::Reader;
use crate::{version, Hash256};

/// `ping`. Before BIP31 (version 60000 and below) it has no payload; the nonce is then 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The nonce the pong must echo.
    pub nonce: u64,
}

impl Payload for Ping {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let nonce = if ctx.version > version::BIP0031 {
            r.u64_le("ping nonce")?
        } else {
            0
        };
        Ok(Ping { nonce })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if ctx.version > version::BIP0031 {
            out.put_u64_le(self.nonce);
        }
        Ok(())
    }
}

/// `pong` (BIP31): echoes a ping's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The nonce of the ping answered.
    pub nonce: u64,
}

impl Payload for Pong {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(Pong {
            nonce: r.u64_le("pong nonce")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_u64_le(self.nonce);
        Ok(())
    }
}

/// `feefilter` (BIP133): the lowest fee rate (satoshis per kilo-vbyte) of transactions
/// the peer wants announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeFilter {
    /// Fee rate in sat/kvB.
    pub feerate: i64,
}

impl Payload for FeeFilter {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(FeeFilter {
            feerate: r.i64_le("feefilter rate")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_i64_le(self.feerate);
        Ok(())
    }
}

/// `sendcmpct` (BIP152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCmpct {
    /// Whether new blocks should be announced with `cmpctblock` (high-bandwidth mode).
    pub announce: bool,
    /// The compact block version (1, or 2 for segwit).
    pub version: u64,
}

impl Payload for SendCmpct {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(SendCmpct {
            announce: r.bool("sendcmpct announce")?,
            version: r.u64_le("sendcmpct version")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_u8(u8::from(self.announce));
        out.put_u64_le(self.version);
        Ok(())
    }
}

/// `sendtxrcncl` (BIP330, Erlay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTxRcncl {
    /// Reconciliation protocol version.
    pub version: u32,
    /// Salt for short ids.
    pub salt: u64,
}

impl Payload for SendTxRcncl {
    fn decode(r: &mut Reader<'_>, _ctx: &Context) -> Result<Self> {
        Ok(SendTxRcncl {
            version: r.u32_le("sendtxrcncl version")?,
            salt: r.u64_le("sendtxrcncl salt")?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        out.put_u32_le(self.version);
        out.put_u64_le(self.salt);
        Ok(())
    }
}

/// `reject` (BIP61). The hash is present on the wire for `block` and `tx` rejects when
/// the sender wrote it (btcd always does; some implementations do not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The command being rejected.
    pub message: String,
    /// Why, as a code.
    pub code: RejectCode,
    /// Why, as text.
    pub reason: String,
    /// The rejected block or transaction.
    pub hash: Option<Hash256>,
}

impl Reject {
    /// Whether the command is one whose reject carries a hash (`block`, `tx`).
    pub fn command_has_hash(message: &str) -> bool {
        message == "block" || message == "tx"
    }
}

impl Payload for Reject {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let max = ctx.limits.max_payload as usize;
        let message = r.var_str("reject message", 12.max(max))?;
        let code = RejectCode(r.u8("reject code")?);
        let reason = r.var_str("reject reason", max)?;
        let hash = if Reject::command_has_hash(&message) && r.remaining() >= 32 {
            Some(r.hash("reject hash")?)
        } else {
            None
        };
        Ok(Reject {
            message,
            code,
            reason,
            hash,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        compact_size::write(out, self.message.len() as u64);
        out.put_slice(self.message.as_bytes());
        out.put_u8(self.code.0);
        compact_size::write(out, self.reason.len() as u64);
        out.put_slice(self.reason.as_bytes());
        if let Some(h) = &self.hash {
            out.put_slice(&h.0);
        }
        Ok(())
    }
}

/// `alert`: retired from the network; kept opaque (serialized payload and signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The serialized alert payload.
    pub payload: Bytes,
    /// Its signature.
    pub signature: Bytes,
}

impl Payload for Alert {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let max = ctx.limits.max_payload as usize;
        Ok(Alert {
            payload: r.var_bytes_owned("alert payload", max)?,
            signature: r.var_bytes_owned("alert signature", max)?,
        })
    }

    fn encode(&self, out: &mut BytesMut, _ctx: &Context) -> Result<()> {
        compact_size::write(out, self.payload.len() as u64);
        out.put_slice(&self.payload);
        compact_size::write(out, self.signature.len() as u64);
        out.put_slice(&self.signature);
        Ok(())
    }
}
