//! Address classes: network groups (for spreading answers and bounding what one source
//! can add) and routability (reserved ranges are never crawled nor served, unless the
//! operator allows local addresses for tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network group of an address: its IPv4 /16 or its IPv6 /32 (IPv4-mapped IPv6
/// counts as IPv4), as a number. Two nodes in one group are likely one operator, so
/// answers spread over groups and one group's gossip is bounded.
///
/// ```
/// use seeder::addr::netgroup;
/// let a = netgroup("203.0.113.7".parse().unwrap());
/// assert_eq!(a, netgroup("203.0.200.1".parse().unwrap()));
/// assert_ne!(a, netgroup("203.1.113.7".parse().unwrap()));
/// ```
pub fn netgroup(ip: IpAddr) -> u64 {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (4u64 << 32) | (u64::from(o[0]) << 8) | u64::from(o[1])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (6u64 << 32) | u64::from(u32::from_be_bytes([o[0], o[1], o[2], o[3]]))
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4; everything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether an address is publicly routable: not unspecified, loopback, private,
/// link-local, shared (CGNAT), multicast, documentation, benchmarking or reserved.
///
/// ```
/// use seeder::addr::is_routable;
/// assert!(is_routable("8.8.8.8".parse().unwrap()));
/// assert!(!is_routable("127.0.0.1".parse().unwrap()));
/// assert!(!is_routable("192.168.1.1".parse().unwrap()));
/// assert!(!is_routable("fe80::1".parse().unwrap()));
/// assert!(is_routable("2a01:4f8::1".parse().unwrap()));
/// ```
pub fn is_routable(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => routable_v4(v4),
        IpAddr::V6(v6) => routable_v6(v6),
    }
}

fn routable_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0
        || o[0] == 10
        || o[0] == 127
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (o[1] & 0xf0) == 16)
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || o[0] >= 224)
}

fn routable_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0)) // v4-compatible & co
}

/// Whether the crawler may use an address: routable, or any IP when local addresses
/// are allowed (tests on 127.0.0.0/8). The unspecified address and port 0 never are.
pub fn is_usable(ip: IpAddr, port: u16, allow_local: bool) -> bool {
    let ip = canonical(ip);
    if port == 0 || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return false;
        }
    }
    allow_local || is_routable(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserved_ranges_are_not_routable() {
        for s in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.2.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_routable(s.parse().unwrap()), "{s}");
        }
        for s in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2600::1",
            "::ffff:8.8.4.4",
        ] {
            assert!(is_routable(s.parse().unwrap()), "{s}");
        }
    }

    #[test]
    fn local_addresses_only_when_allowed() {
        let lo: IpAddr = "127.3.4.5".parse().unwrap();
        assert!(!is_usable(lo, 18444, false));
        assert!(is_usable(lo, 18444, true));
        assert!(!is_usable(lo, 0, true));
        assert!(!is_usable("0.0.0.0".parse().unwrap(), 8333, true));
    }

    proptest! {
        #[test]
        fn mapped_v4_has_the_v4_group(a: u32) {
            let v4 = Ipv4Addr::from(a);
            prop_assert_eq!(netgroup(IpAddr::V4(v4)), netgroup(IpAddr::V6(v4.to_ipv6_mapped())));
            prop_assert_eq!(is_routable(IpAddr::V4(v4)), is_routable(IpAddr::V6(v4.to_ipv6_mapped())));
        }

        #[test]
        fn same_slash16_same_group(a: u32, b: u16) {
            let x = Ipv4Addr::from(a);
            let y = Ipv4Addr::from((a & 0xffff_0000) | u32::from(b));
            prop_assert_eq!(netgroup(IpAddr::V4(x)), netgroup(IpAddr::V4(y)));
        }
    }
}
