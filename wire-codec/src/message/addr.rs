//! `addr` and `addrv2` (BIP155).

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::common::{NetAddress, ServiceFlags};
use super::{Context, Payload};
use crate::compact_size;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::version;

/// `addr`: known peer addresses, with timestamps from version 31402.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addr {
    /// The addresses.
    pub addresses: Vec<NetAddress>,
}

impl Payload for Addr {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        let with_time = ctx.version >= version::NET_ADDRESS_TIME;
        let entry = NetAddress::LEN_NO_TIME + if with_time { 4 } else { 0 };
        let n = r.count("addresses", ctx.limits.max_addr, entry)?;
        let mut addresses = Vec::with_capacity(n);
        for _ in 0..n {
            addresses.push(NetAddress::decode(r, with_time)?);
        }
        Ok(Addr { addresses })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let n = self.addresses.len();
        if n > ctx.limits.max_addr {
            return Err(Error::TooManyEntries {
                what: "addresses",
                count: n as u64,
                max: ctx.limits.max_addr as u64,
            });
        }
        let with_time = ctx.version >= version::NET_ADDRESS_TIME;
        compact_size::write(out, n as u64);
        for a in &self.addresses {
            a.encode(out, with_time);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        3 + self.addresses.len() * 30
    }
}

/// A BIP155 network id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub u8);

impl NetworkId {
    /// IPv4 (4 bytes).
    pub const IPV4: NetworkId = NetworkId(1);
    /// IPv6 (16 bytes).
    pub const IPV6: NetworkId = NetworkId(2);
    /// Tor v2 (10 bytes; deprecated).
    pub const TORV2: NetworkId = NetworkId(3);
    /// Tor v3 (32 bytes).
    pub const TORV3: NetworkId = NetworkId(4);
    /// I2P (32 bytes).
    pub const I2P: NetworkId = NetworkId(5);
    /// CJDNS (16 bytes).
    pub const CJDNS: NetworkId = NetworkId(6);

    /// The address length BIP155 fixes for this network, if it is a known one.
    pub const fn address_len(self) -> Option<usize> {
        match self.0 {
            1 => Some(4),
            2 => Some(16),
            3 => Some(10),
            4 | 5 => Some(32),
            6 => Some(16),
            _ => None,
        }
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "IPV4",
            2 => "IPV6",
            3 => "TORV2",
            4 => "TORV3",
            5 => "I2P",
            6 => "CJDNS",
            _ => return write!(f, "NetworkId({})", self.0),
        };
        f.write_str(name)
    }
}

/// One `addrv2` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddrV2Entry {
    /// Last-seen time, seconds since the epoch.
    pub time: u32,
    /// Services (a CompactSize on the wire).
    pub services: ServiceFlags,
    /// The network.
    pub network: NetworkId,
    /// The raw address bytes (length fixed by the network for known ones).
    pub addr: Bytes,
    /// The port.
    pub port: u16,
}

impl AddrV2Entry {
    /// The IP address, for IPv4 and IPv6 entries.
    pub fn ip(&self) -> Option<IpAddr> {
        match (self.network, self.addr.len()) {
            (NetworkId::IPV4, 4) => Some(IpAddr::V4(Ipv4Addr::new(
                self.addr[0],
                self.addr[1],
                self.addr[2],
                self.addr[3],
            ))),
            (NetworkId::IPV6, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&self.addr);
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        }
    }

    /// An entry for an IP address.
    pub fn from_ip(time: u32, services: ServiceFlags, ip: IpAddr, port: u16) -> AddrV2Entry {
        let (network, addr) = match ip {
            IpAddr::V4(v4) => (NetworkId::IPV4, Bytes::copy_from_slice(&v4.octets())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (NetworkId::IPV4, Bytes::copy_from_slice(&v4.octets())),
                None => (NetworkId::IPV6, Bytes::copy_from_slice(&v6.octets())),
            },
        };
        AddrV2Entry {
            time,
            services,
            network,
            addr,
            port,
        }
    }

    /// The legacy form of this entry, if it has one (IPv4 and IPv6 only).
    pub fn to_legacy(&self) -> Option<NetAddress> {
        let ip = match self.ip()? {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Some(NetAddress {
            time: Some(self.time),
            services: self.services,
            ip,
            port: self.port,
        })
    }

    fn decode(r: &mut Reader<'_>, max_addr: usize) -> Result<AddrV2Entry> {
        let time = r.u32_le("addrv2 time")?;
        let services = ServiceFlags(r.compact_size()?);
        let network = NetworkId(r.u8("addrv2 network id")?);
        let addr = r.var_bytes_owned("addrv2 address", max_addr)?;
        if let Some(len) = network.address_len() {
            if addr.len() != len {
                return Err(Error::Malformed {
                    what: "addrv2 address",
                    reason: "length does not match its network id",
                });
            }
        }
        let port = r.u16_be("addrv2 port")?;
        Ok(AddrV2Entry {
            time,
            services,
            network,
            addr,
            port,
        })
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.time);
        compact_size::write(out, self.services.0);
        out.put_u8(self.network.0);
        compact_size::write(out, self.addr.len() as u64);
        out.put_slice(&self.addr);
        out.put_u16(self.port);
    }
}

/// `addrv2` (BIP155): addresses of any network, Tor v3 and I2P included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrV2 {
    /// The entries, unknown networks included (callers skip what they cannot use).
    pub addresses: Vec<AddrV2Entry>,
}

impl Payload for AddrV2 {
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self> {
        // Smallest entry: time 4 + services 1 + id 1 + len 1 + port 2.
        let n = r.count("addrv2 addresses", ctx.limits.max_addr, 9)?;
        let mut addresses = Vec::with_capacity(n);
        for _ in 0..n {
            addresses.push(AddrV2Entry::decode(r, ctx.limits.max_addrv2_addr)?);
        }
        Ok(AddrV2 { addresses })
    }

    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        let n = self.addresses.len();
        if n > ctx.limits.max_addr {
            return Err(Error::TooManyEntries {
                what: "addrv2 addresses",
                count: n as u64,
                max: ctx.limits.max_addr as u64,
            });
        }
        compact_size::write(out, n as u64);
        for a in &self.addresses {
            a.encode(out);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        3 + self
            .addresses
            .iter()
            .map(|a| 12 + a.addr.len())
            .sum::<usize>()
    }
}
