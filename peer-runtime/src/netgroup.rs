//! Network groups (Bitcoin Core's `NetGroupManager::GetGroup` without an asmap): the
//! unit of fairness for inbound admission and eviction. One operator can easily hold
//! many addresses of one /16 (IPv4) or /32 (IPv6); holding addresses in many groups is
//! much harder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is publicly routable as Bitcoin Core judges it (`IsRoutable`): not
/// local, private (RFC1918), shared (RFC6598), link-local, unique-local,
/// documentation, benchmarking, multicast or reserved. A seed serves only these.
///
/// ```
/// use peer_runtime::netgroup::is_routable;
/// assert!(is_routable("8.8.8.8".parse().unwrap()));
/// assert!(!is_routable("127.0.0.1".parse().unwrap()));
/// assert!(!is_routable("192.168.1.1".parse().unwrap()));
/// assert!(!is_routable("::ffff:10.0.0.1".parse().unwrap()));
/// ```
pub fn is_routable(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match embedded_v4(&v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    !is_local(&ip) && routable(&ip)
}

/// A network group. Two addresses in one group count as one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Netgroup(u64);

const LOCAL: u64 = 0xff << 56;
const UNROUTABLE: u64 = 0xfe << 56;
const V4: u64 = 1 << 56;
const V6: u64 = 2 << 56;
const PER_ADDRESS: u64 = 3 << 56;

impl Netgroup {
    /// The group of `ip` as Core forms it: IPv4 (and IPv4 embedded in IPv6) by /16,
    /// IPv6 by /32, all local addresses (loopback, unspecified) one group, all other
    /// unroutable addresses (private, link-local, documentation, …) one group.
    /// With `local_by_address`, each local address is its own group — for loopback
    /// tests that stand for many hosts (127.0.0.x source addresses).
    ///
    /// ```
    /// use peer_runtime::netgroup::Netgroup;
    /// let g = |s: &str| Netgroup::of(s.parse().unwrap(), false);
    /// assert_eq!(g("1.2.3.4"), g("1.2.200.9"));
    /// assert_ne!(g("1.2.3.4"), g("1.3.3.4"));
    /// assert_eq!(g("2001:db9:1::1"), g("2001:db9:ffff::2"));
    /// assert_eq!(g("127.0.0.1"), g("127.0.0.2"));
    /// assert_ne!(Netgroup::of("127.0.0.1".parse().unwrap(), true), Netgroup::of("127.0.0.2".parse().unwrap(), true));
    /// ```
    pub fn of(ip: IpAddr, local_by_address: bool) -> Netgroup {
        let ip = match ip {
            IpAddr::V6(v6) => match embedded_v4(&v6) {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        if is_local(&ip) {
            return Netgroup(if local_by_address {
                PER_ADDRESS | (hash_ip(&ip) & 0x00ff_ffff_ffff_ffff)
            } else {
                LOCAL
            });
        }
        if !routable(&ip) {
            return Netgroup(UNROUTABLE);
        }
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Netgroup(V4 | u64::from(o[0]) << 8 | u64::from(o[1]))
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Netgroup(V6 | u64::from(u32::from_be_bytes([o[0], o[1], o[2], o[3]])))
            }
        }
    }

    /// A number for keyed hashing.
    pub(crate) fn key(self) -> u64 {
        self.0
    }
}

fn hash_ip(ip: &IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(*v4)),
        IpAddr::V6(v6) => {
            let b = v6.octets();
            let (hi, lo) = b.split_at(8);
            let hi = u64::from_be_bytes(hi.try_into().unwrap_or([0; 8]));
            let lo = u64::from_be_bytes(lo.try_into().unwrap_or([0; 8]));
            hi ^ lo.rotate_left(17)
        }
    }
}

/// IPv4-mapped (`::ffff:a.b.c.d`), 6to4 (`2002:ab:cd::`) and Teredo (`2001:0::`, the
/// client address inverted) carry an IPv4 address: Core groups them by it.
fn embedded_v4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if o[0] == 0x20 && o[1] == 0x02 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if o[0] == 0x20 && o[1] == 0x01 && o[2] == 0 && o[3] == 0 {
        return Some(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]));
    }
    None
}

fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
    }
}

/// Core's `IsRoutable` for IP addresses: not private (RFC1918), not shared (RFC6598),
/// not link-local, not documentation/benchmarking, not multicast or reserved.
fn routable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // RFC6598
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // RFC2544
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (RFC4193)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation (RFC3849)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Netgroup {
        Netgroup::of(s.parse().unwrap(), false)
    }

    #[test]
    fn core_groups() {
        assert_eq!(g("8.8.4.4"), g("8.8.8.8"));
        assert_ne!(g("8.8.8.8"), g("8.9.8.8"));
        assert_eq!(g("::ffff:8.8.1.1"), g("8.8.200.1"), "IPv4-mapped is IPv4");
        assert_eq!(g("2002:0808:0101::1"), g("8.8.1.1"), "6to4 carries IPv4");
        assert_eq!(g("2a01:4f8:1:2::1"), g("2a01:4f8:ffff::1"));
        assert_ne!(g("2a01:4f8::1"), g("2a01:4f9::1"));
        assert_eq!(g("10.0.0.1"), g("192.168.1.1"), "unroutable: one group");
        assert_eq!(g("127.0.0.1"), g("::1"), "local: one group");
        assert_ne!(g("127.0.0.1"), g("10.0.0.1"));
        assert_ne!(g("1.2.3.4"), g("::1.2.3.4"), "IPv4-compatible is not IPv4");
    }
}
