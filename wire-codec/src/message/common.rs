//! Types shared by several messages: service flags, network addresses, inventory
//! vectors, reject codes.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, BytesMut};

use crate::error::Result;
use crate::reader::Reader;
use crate::Hash256;

/// The services a node advertises (a bit set; unknown bits are kept).
///
/// ```
/// use wire_codec::message::ServiceFlags;
/// let s = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
/// assert!(s.has(ServiceFlags::WITNESS));
/// assert!(!s.has(ServiceFlags::BLOOM));
/// assert_eq!(s.0, 9);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ServiceFlags(pub u64);

impl ServiceFlags {
    /// No services.
    pub const NONE: ServiceFlags = ServiceFlags(0);
    /// NODE_NETWORK: serves the full chain.
    pub const NETWORK: ServiceFlags = ServiceFlags(1);
    /// NODE_GETUTXO (BIP64).
    pub const GETUTXO: ServiceFlags = ServiceFlags(1 << 1);
    /// NODE_BLOOM (BIP111): serves bloom-filtered connections.
    pub const BLOOM: ServiceFlags = ServiceFlags(1 << 2);
    /// NODE_WITNESS (BIP144).
    pub const WITNESS: ServiceFlags = ServiceFlags(1 << 3);
    /// NODE_XTHIN.
    pub const XTHIN: ServiceFlags = ServiceFlags(1 << 4);
    /// NODE_COMPACT_FILTERS (BIP157).
    pub const COMPACT_FILTERS: ServiceFlags = ServiceFlags(1 << 6);
    /// NODE_NETWORK_LIMITED (BIP159).
    pub const NETWORK_LIMITED: ServiceFlags = ServiceFlags(1 << 10);
    /// NODE_P2P_V2 (BIP324).
    pub const P2P_V2: ServiceFlags = ServiceFlags(1 << 11);

    /// Whether every bit of `other` is set.
    pub const fn has(self, other: ServiceFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for ServiceFlags {
    type Output = ServiceFlags;
    fn bitor(self, rhs: ServiceFlags) -> ServiceFlags {
        ServiceFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for ServiceFlags {
    fn bitor_assign(&mut self, rhs: ServiceFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for ServiceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceFlags({:#x})", self.0)
    }
}

impl fmt::Display for ServiceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u64, &str); 8] = [
            (1, "NETWORK"),
            (1 << 1, "GETUTXO"),
            (1 << 2, "BLOOM"),
            (1 << 3, "WITNESS"),
            (1 << 4, "XTHIN"),
            (1 << 6, "COMPACT_FILTERS"),
            (1 << 10, "NETWORK_LIMITED"),
            (1 << 11, "P2P_V2"),
        ];
        let mut rest = self.0;
        let mut first = true;
        for (bit, name) in NAMES {
            if rest & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// A legacy network address (`addr`, and the two addresses of `version`).
///
/// The IP is kept as 16 bytes (IPv4 as IPv4-mapped IPv6), the port in host order.
/// `time` is `None` where the wire has no timestamp (inside `version`, and `addr`
/// below protocol version 31402).
///
/// ```
/// use wire_codec::message::{NetAddress, ServiceFlags};
/// let a = NetAddress::from_socket_addr("127.0.0.1:8333".parse().unwrap(), ServiceFlags::NETWORK);
/// assert_eq!(a.ip().to_string(), "127.0.0.1");
/// assert_eq!(a.socket_addr().port(), 8333);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetAddress {
    /// Last-seen time (seconds since the epoch), where the wire has it.
    pub time: Option<u32>,
    /// Advertised services.
    pub services: ServiceFlags,
    /// The address as an IPv6 address (IPv4-mapped for IPv4).
    pub ip: Ipv6Addr,
    /// The port.
    pub port: u16,
}

impl NetAddress {
    /// Encoded length without the timestamp.
    pub const LEN_NO_TIME: usize = 26;

    /// An address with no timestamp from a socket address.
    pub fn from_socket_addr(addr: SocketAddr, services: ServiceFlags) -> NetAddress {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        NetAddress {
            time: None,
            services,
            ip,
            port: addr.port(),
        }
    }

    /// The unspecified address `0.0.0.0:0` with `services` (what btcd sends instead of
    /// a proxy's address).
    pub fn unspecified(services: ServiceFlags) -> NetAddress {
        NetAddress::from_socket_addr(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            services,
        )
    }

    /// The IP, IPv4 if it is IPv4-mapped.
    pub fn ip(&self) -> IpAddr {
        match self.ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(self.ip),
        }
    }

    /// The IP and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }

    /// Reads an address; with `with_time` a u32 timestamp comes first.
    pub fn decode(r: &mut Reader<'_>, with_time: bool) -> Result<NetAddress> {
        let time = if with_time {
            Some(r.u32_le("address time")?)
        } else {
            None
        };
        let services = ServiceFlags(r.u64_le("address services")?);
        let ip = Ipv6Addr::from(r.array::<16>("address ip")?);
        let port = r.u16_be("address port")?;
        Ok(NetAddress {
            time,
            services,
            ip,
            port,
        })
    }

    /// Writes the address; with `with_time` the timestamp (0 when `None`) comes first.
    pub fn encode(&self, out: &mut BytesMut, with_time: bool) {
        if with_time {
            out.put_u32_le(self.time.unwrap_or(0));
        }
        out.put_u64_le(self.services.0);
        out.put_slice(&self.ip.octets());
        out.put_u16(self.port);
    }
}

/// The type of an inventory vector. Unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvType(pub u32);

impl InvType {
    /// `ERROR` (0).
    pub const ERROR: InvType = InvType(0);
    /// `MSG_TX`.
    pub const TX: InvType = InvType(1);
    /// `MSG_BLOCK`.
    pub const BLOCK: InvType = InvType(2);
    /// `MSG_FILTERED_BLOCK` (BIP37).
    pub const FILTERED_BLOCK: InvType = InvType(3);
    /// `MSG_CMPCT_BLOCK` (BIP152).
    pub const CMPCT_BLOCK: InvType = InvType(4);
    /// `MSG_WTX` (BIP339): the hash is a wtxid.
    pub const WTX: InvType = InvType(5);
    /// The witness flag (`1 << 30`).
    pub const WITNESS_FLAG: u32 = 1 << 30;
    /// `MSG_WITNESS_TX`.
    pub const WITNESS_TX: InvType = InvType(1 | (1 << 30));
    /// `MSG_WITNESS_BLOCK`.
    pub const WITNESS_BLOCK: InvType = InvType(2 | (1 << 30));
    /// `MSG_FILTERED_WITNESS_BLOCK`.
    pub const FILTERED_WITNESS_BLOCK: InvType = InvType(3 | (1 << 30));

    /// Whether this names a block (plain, witness, filtered or compact).
    pub const fn is_block(self) -> bool {
        matches!(self.0 & !Self::WITNESS_FLAG, 2..=4)
    }

    /// Whether this names a transaction (by txid or wtxid).
    pub const fn is_tx(self) -> bool {
        matches!(self.0 & !Self::WITNESS_FLAG, 1 | 5)
    }
}

impl fmt::Debug for InvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for InvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            InvType::ERROR => "ERROR",
            InvType::TX => "MSG_TX",
            InvType::BLOCK => "MSG_BLOCK",
            InvType::FILTERED_BLOCK => "MSG_FILTERED_BLOCK",
            InvType::CMPCT_BLOCK => "MSG_CMPCT_BLOCK",
            InvType::WTX => "MSG_WTX",
            InvType::WITNESS_TX => "MSG_WITNESS_TX",
            InvType::WITNESS_BLOCK => "MSG_WITNESS_BLOCK",
            InvType::FILTERED_WITNESS_BLOCK => "MSG_FILTERED_WITNESS_BLOCK",
            _ => return write!(f, "Unknown InvType ({})", self.0),
        };
        f.write_str(name)
    }
}

/// One inventory entry: a type and a hash.
///
/// ```
/// use wire_codec::{Hash256, message::{InvType, InvVect}};
/// let iv = InvVect::new(InvType::BLOCK, Hash256::ZERO);
/// assert!(iv.kind.is_block());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvVect {
    /// The type.
    pub kind: InvType,
    /// The hash (txid, wtxid or block hash).
    pub hash: Hash256,
}

impl InvVect {
    /// Encoded length.
    pub const LEN: usize = 36;

    /// An entry.
    pub const fn new(kind: InvType, hash: Hash256) -> InvVect {
        InvVect { kind, hash }
    }
}

/// A BIP61 reject code. Unknown codes are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectCode(pub u8);

impl RejectCode {
    /// `REJECT_MALFORMED`.
    pub const MALFORMED: RejectCode = RejectCode(0x01);
    /// `REJECT_INVALID`.
    pub const INVALID: RejectCode = RejectCode(0x10);
    /// `REJECT_OBSOLETE`.
    pub const OBSOLETE: RejectCode = RejectCode(0x11);
    /// `REJECT_DUPLICATE`.
    pub const DUPLICATE: RejectCode = RejectCode(0x12);
    /// `REJECT_NONSTANDARD`.
    pub const NONSTANDARD: RejectCode = RejectCode(0x40);
    /// `REJECT_DUST`.
    pub const DUST: RejectCode = RejectCode(0x41);
    /// `REJECT_INSUFFICIENTFEE`.
    pub const INSUFFICIENT_FEE: RejectCode = RejectCode(0x42);
    /// `REJECT_CHECKPOINT`.
    pub const CHECKPOINT: RejectCode = RejectCode(0x43);
}

impl fmt::Debug for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            RejectCode::MALFORMED => "REJECT_MALFORMED",
            RejectCode::INVALID => "REJECT_INVALID",
            RejectCode::OBSOLETE => "REJECT_OBSOLETE",
            RejectCode::DUPLICATE => "REJECT_DUPLICATE",
            RejectCode::NONSTANDARD => "REJECT_NONSTANDARD",
            RejectCode::DUST => "REJECT_DUST",
            RejectCode::INSUFFICIENT_FEE => "REJECT_INSUFFICIENTFEE",
            RejectCode::CHECKPOINT => "REJECT_CHECKPOINT",
            _ => return write!(f, "Unknown RejectCode ({})", self.0),
        };
        f.write_str(name)
    }
}
