//! `version`, the first message of the handshake.

use bytes::{BufMut, BytesMut};

use super::common::{NetAddress, ServiceFlags};
use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::version;

/// `version`.
///
/// Fields after `receiver` are optional on the wire (very old peers stop early); a
/// missing field decodes as its zero value. `relay_present` remembers whether the BIP37
/// relay byte was on the wire, so that re-encoding gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The sender's highest protocol version.
    pub version: u32,
    /// The sender's services.
    pub services: ServiceFlags,
    /// The sender's clock, seconds since the epoch.
    pub timestamp: i64,
    /// The address of the receiving node as the sender sees it (`addr_recv`).
    pub receiver: NetAddress,
    /// The sender's address (`addr_from`; often zeros).
    pub sender: NetAddress,
    /// A random nonce, used to detect connections to self.
    pub nonce: u64,
    /// BIP14 user agent, e.g. `/peerwire:0.1.0/`.
    pub user_agent: String,
    /// The sender's best block height.
    pub start_height: i32,
    /// BIP37: whether the receiver should relay transactions before a filter is loaded.
    pub relay: bool,
    /// Whether the relay byte was (or is to be) on the wire.
    pub relay_present: bool,
}

impl Payload for Version {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let version = r.u32_le("version")?;
        let services = ServiceFlags(r.u64_le("version services")?);
        let timestamp = r.i64_le("version timestamp")?;
        let receiver = NetAddress::decode(r, false)?;
        let mut v = Version {
            version,
            services,
            timestamp,
            receiver,
            sender: NetAddress::unspecified(ServiceFlags::NONE),
            nonce: 0,
            user_agent: String::new(),
            start_height: 0,
            relay: true,
            relay_present: false,
        };
        if r.is_empty() {
            return Ok(v);
        }
        v.sender = NetAddress::decode(r, false)?;
        v.nonce = r.u64_le("version nonce")?;
        let ua_len = compact_size::read(r.rest())?.0;
        if ua_len > ctx.limits.max_user_agent as u64 {
            return Err(Error::TooLong {
                what: "user agent",
                len: ua_len,
                max: ctx.limits.max_user_agent as u64,
            });
        }
        v.user_agent = r.var_str("user agent", ctx.limits.max_user_agent)?;
        // Invalid UTF-8 comes back as U+FFFD (three bytes for each bad byte), which can
        // push the text past the limit `encode` enforces. Cut it back at a character
        // boundary so that every decoded `version` can be encoded again.
        let mut end = ctx.limits.max_user_agent.min(v.user_agent.len());
        while !v.user_agent.is_char_boundary(end) {
            end -= 1;
        }
        v.user_agent.truncate(end);
        v.start_height = r.i32_le("version start height")?;
        if !r.is_empty() {
            v.relay = r.bool("version relay")?;
            v.relay_present = true;
        }
        Ok(v)
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        if self.user_agent.len() > ctx.limits.max_user_agent {
            return Err(Error::TooLong {
                what: "user agent",
                len: self.user_agent.len() as u64,
                max: ctx.limits.max_user_agent as u64,
            });
        }
        out.put_u32_le(self.version);
        out.put_u64_le(self.services.0);
        out.put_i64_le(self.timestamp);
        self.receiver.encode(out, false);
        self.sender.encode(out, false);
        out.put_u64_le(self.nonce);
        compact_size::write(out, self.user_agent.len() as u64);
        out.put_slice(self.user_agent.as_bytes());
        out.put_i32_le(self.start_height);
        if self.relay_present {
            out.put_u8(u8::from(self.relay));
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        86 + self.user_agent.len() + 3
    }
}

impl Version {
    /// Whether the relay byte should be written for a message sent at `pver` (BIP37:
    /// from version 70001).
    pub fn relay_byte_for(pver: u32) -> bool {
        pver >= version::BIP0037
    }
}
