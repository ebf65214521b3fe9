//! Peer addresses: `addr` entries (`NetAddress`) and `addrv2` entries (BIP155).

use std::net::{Ipv4Addr, Ipv6Addr};

use bitcoin::p2p::address::{AddrV2 as TheirAddrV2, AddrV2Message, Address};
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::message::{Addr, AddrV2, AddrV2Entry, NetAddress, NetworkId, ServiceFlags};

/// The address without its time (`bitcoin` keeps the time beside it, as in `addr`'s
/// `(u32, Address)` pairs).
impl From<NetAddress> for Address {
    fn from(a: NetAddress) -> Self {
        Address {
            services: a.services.into(),
            address: a.ip.segments(),
            port: a.port,
        }
    }
}

/// An address without a time (as in `version`).
impl From<Address> for NetAddress {
    fn from(a: Address) -> Self {
        let s = a.address;
        NetAddress {
            time: None,
            services: a.services.into(),
            ip: Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
            port: a.port,
        }
    }
}

/// The entries of an `addr` message; an entry without a time (pre-31402 peers) gets 0.
impl From<&Addr> for Vec<(u32, Address)> {
    fn from(m: &Addr) -> Self {
        m.addresses
            .iter()
            .map(|a| (a.time.unwrap_or(0), Address::from(*a)))
            .collect()
    }
}

impl From<Vec<(u32, Address)>> for Addr {
    fn from(v: Vec<(u32, Address)>) -> Self {
        Addr {
            addresses: v
                .into_iter()
                .map(|(time, a)| NetAddress {
                    time: Some(time),
                    ..NetAddress::from(a)
                })
                .collect(),
        }
    }
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N]> {
    b.try_into().map_err(|_| Error::Malformed {
        what: "addrv2 address",
        reason: "length does not match its network id",
    })
}

/// Fails only for a known network whose address has the wrong length (something the
/// codec's decoder never produces).
impl TryFrom<&AddrV2Entry> for AddrV2Message {
    type Error = Error;

    fn try_from(e: &AddrV2Entry) -> Result<Self> {
        let a = &e.addr[..];
        let addr = match e.network {
            NetworkId::IPV4 => TheirAddrV2::Ipv4(Ipv4Addr::from(fixed::<4>(a)?)),
            NetworkId::IPV6 => TheirAddrV2::Ipv6(Ipv6Addr::from(fixed::<16>(a)?)),
            NetworkId::TORV2 => TheirAddrV2::TorV2(fixed(a)?),
            NetworkId::TORV3 => TheirAddrV2::TorV3(fixed(a)?),
            NetworkId::I2P => TheirAddrV2::I2p(fixed(a)?),
            NetworkId::CJDNS => TheirAddrV2::Cjdns(Ipv6Addr::from(fixed::<16>(a)?)),
            NetworkId(id) => TheirAddrV2::Unknown(id, a.to_vec()),
        };
        Ok(AddrV2Message {
            time: e.time,
            services: e.services.into(),
            addr,
            port: e.port,
        })
    }
}

impl From<AddrV2Message> for AddrV2Entry {
    fn from(m: AddrV2Message) -> Self {
        let (network, addr) = match m.addr {
            TheirAddrV2::Ipv4(ip) => (NetworkId::IPV4, Bytes::copy_from_slice(&ip.octets())),
            TheirAddrV2::Ipv6(ip) => (NetworkId::IPV6, Bytes::copy_from_slice(&ip.octets())),
            TheirAddrV2::TorV2(b) => (NetworkId::TORV2, Bytes::copy_from_slice(&b)),
            TheirAddrV2::TorV3(b) => (NetworkId::TORV3, Bytes::copy_from_slice(&b)),
            TheirAddrV2::I2p(b) => (NetworkId::I2P, Bytes::copy_from_slice(&b)),
            TheirAddrV2::Cjdns(ip) => (NetworkId::CJDNS, Bytes::copy_from_slice(&ip.octets())),
            // The unknown network's bytes move into `Bytes` without a copy.
            TheirAddrV2::Unknown(id, v) => (NetworkId(id), Bytes::from(v)),
        };
        AddrV2Entry {
            time: m.time,
            services: ServiceFlags::from(m.services),
            network,
            addr,
            port: m.port,
        }
    }
}

/// The entries of an `addrv2` message.
impl TryFrom<&AddrV2> for Vec<AddrV2Message> {
    type Error = Error;

    fn try_from(m: &AddrV2) -> Result<Self> {
        m.addresses.iter().map(AddrV2Message::try_from).collect()
    }
}

impl From<Vec<AddrV2Message>> for AddrV2 {
    fn from(v: Vec<AddrV2Message>) -> Self {
        AddrV2 {
            addresses: v.into_iter().map(AddrV2Entry::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_address_is_mapped_the_same_way() {
        let ours =
            NetAddress::from_socket_addr("10.1.2.3:8333".parse().unwrap(), ServiceFlags::NETWORK);
        let theirs = Address::from(ours);
        assert_eq!(
            theirs.socket_addr().unwrap(),
            "10.1.2.3:8333".parse().unwrap()
        );
        assert_eq!(NetAddress::from(theirs), ours);
    }

    #[test]
    fn wrong_length_for_a_known_network_is_refused() {
        let e = AddrV2Entry {
            time: 1,
            services: ServiceFlags(0),
            network: NetworkId::TORV3,
            addr: Bytes::from_static(&[1, 2, 3]),
            port: 9,
        };
        assert!(matches!(
            AddrV2Message::try_from(&e),
            Err(Error::Malformed {
                what: "addrv2 address",
                ..
            })
        ));
    }
}
