//! `addr` and `addrv2`: telling a peer about other peers (btcd `PushAddrMsg`,
//! `PushAddrV2Msg`).

use std::net::Ipv6Addr;

use rand::Rng;
use wire_codec::message::{Addr, AddrV2, AddrV2Entry, NetAddress, NetworkId};
use wire_codec::Message;

use crate::error::Error;
use crate::queue::MessageQueue;
use crate::sample::sample_in_place;

/// The most addresses one `addr` or `addrv2` message may carry (Core's
/// `MAX_ADDR_TO_SEND`, btcd's `MaxAddrPerMsg` and `MaxV2AddrPerMsg`). Peers that receive
/// more treat it as misbehaviour, so the helpers never send more, whatever
/// [`MessageQueue::limits`] says.
pub const MAX_ADDR_PER_MSG: usize = 1_000;

/// The longest address an `addrv2` entry may carry (BIP155: 512 bytes).
pub const MAX_ADDRV2_ADDR_LEN: usize = 512;

/// Which message carried the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrFormat {
    /// Legacy `addr`: IPv4 and IPv6 only.
    Addr,
    /// `addrv2` (BIP155): any network, Tor v3, I2P and CJDNS included.
    AddrV2,
}

/// Something that can be advertised in `addr` or `addrv2`.
///
/// Implemented for [`NetAddress`] and [`AddrV2Entry`] (and references to them); an
/// address book implements it for its own entry type so that
/// [`push_addresses`] can pick from it directly, and only the addresses actually sent
/// are converted.
///
/// ```
/// use peer_helpers::AddressCandidate;
/// use wire_codec::message::{AddrV2Entry, NetworkId, ServiceFlags};
///
/// let onion = AddrV2Entry {
///     time: 1_700_000_000,
///     services: ServiceFlags::NETWORK,
///     network: NetworkId::TORV3,
///     addr: vec![7u8; 32].into(),
///     port: 8333,
/// };
/// assert!(onion.to_legacy().is_none()); // no legacy form
/// assert!(onion.has_addr_v2());
/// ```
pub trait AddressCandidate {
    /// The address in legacy `addr` form, or `None` if that form cannot express it.
    fn to_legacy(&self) -> Option<NetAddress>;

    /// The address as a well-formed `addrv2` entry, or `None` if it has none.
    fn to_addr_v2(&self) -> Option<AddrV2Entry>;

    /// Whether [`to_addr_v2`](AddressCandidate::to_addr_v2) returns `Some`. Sampling asks
    /// this of every candidate, so implementations override it when answering is cheaper
    /// than converting.
    fn has_addr_v2(&self) -> bool {
        self.to_addr_v2().is_some()
    }

    /// Whether [`to_legacy`](AddressCandidate::to_legacy) returns `Some`.
    fn has_legacy(&self) -> bool {
        self.to_legacy().is_some()
    }
}

impl AddressCandidate for NetAddress {
    fn to_legacy(&self) -> Option<NetAddress> {
        Some(*self)
    }

    fn to_addr_v2(&self) -> Option<AddrV2Entry> {
        if is_onioncat(&self.ip) {
            // A legacy Tor v2 address; BIP155 forbids it inside an IPv6 entry, and Tor v2
            // itself is retired.
            return None;
        }
        Some(AddrV2Entry::from_ip(
            self.time.unwrap_or(0),
            self.services,
            self.ip(),
            self.port,
        ))
    }

    fn has_addr_v2(&self) -> bool {
        !is_onioncat(&self.ip)
    }
}

impl AddressCandidate for AddrV2Entry {
    fn to_legacy(&self) -> Option<NetAddress> {
        AddrV2Entry::to_legacy(self)
    }

    fn to_addr_v2(&self) -> Option<AddrV2Entry> {
        if !v2_well_formed(self) {
            return None;
        }
        if self.network == NetworkId::IPV6 {
            if let Some(ip) = self.ip() {
                // An IPv4-mapped IPv6 entry becomes the IPv4 entry it stands for.
                return Some(AddrV2Entry::from_ip(
                    self.time,
                    self.services,
                    ip,
                    self.port,
                ));
            }
        }
        Some(self.clone())
    }

    fn has_addr_v2(&self) -> bool {
        v2_well_formed(self)
    }

    fn has_legacy(&self) -> bool {
        matches!(
            (self.network, self.addr.len()),
            (NetworkId::IPV4, 4) | (NetworkId::IPV6, 16)
        )
    }
}

impl<T: AddressCandidate + ?Sized> AddressCandidate for &T {
    fn to_legacy(&self) -> Option<NetAddress> {
        (**self).to_legacy()
    }

    fn to_addr_v2(&self) -> Option<AddrV2Entry> {
        (**self).to_addr_v2()
    }

    fn has_addr_v2(&self) -> bool {
        (**self).has_addr_v2()
    }

    fn has_legacy(&self) -> bool {
        (**self).has_legacy()
    }
}

/// `fd87:d87e:eb43::/48`, the OnionCat range legacy messages used for Tor v2.
fn is_onioncat(ip: &Ipv6Addr) -> bool {
    let s = ip.segments();
    s[0] == 0xfd87 && s[1] == 0xd87e && s[2] == 0xeb43
}

/// Whether an entry can be sent in `addrv2`: the length its network fixes (any length up
/// to 512 for networks BIP155 does not know), and no IPv6 entry that embeds Tor v2.
fn v2_well_formed(e: &AddrV2Entry) -> bool {
    if e.addr.len() > MAX_ADDRV2_ADDR_LEN {
        return false;
    }
    if let Some(len) = e.network.address_len() {
        if e.addr.len() != len {
            return false;
        }
    }
    if e.network == NetworkId::IPV6 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&e.addr);
        if is_onioncat(&Ipv6Addr::from(b)) {
            return false;
        }
    }
    true
}

/// What [`push_addresses`] queued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentAddresses {
    /// The message used, chosen by what the peer negotiated.
    pub format: AddrFormat,
    /// Positions in the candidate slice of the addresses sent, in the order sent. Empty
    /// when nothing was queued.
    pub indices: Vec<usize>,
}

impl SentAddresses {
    /// How many addresses were sent.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether nothing was sent (no candidates, or none the format can express).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The per-message maximum for `queue`: the protocol's, or less if its limits say so.
fn per_message<Q: MessageQueue + ?Sized>(queue: &Q) -> usize {
    queue.limits().max_addr.min(MAX_ADDR_PER_MSG)
}

/// Positions of the candidates `keep` accepts, sampled down to `max`.
fn choose<A, R: Rng + ?Sized>(
    candidates: &[A],
    keep: impl Fn(&A) -> bool,
    max: usize,
    rng: &mut R,
) -> Vec<usize> {
    let mut idx = Vec::with_capacity(candidates.len());
    idx.extend(
        candidates
            .iter()
            .enumerate()
            .filter(|(_, a)| keep(a))
            .map(|(i, _)| i),
    );
    sample_in_place(&mut idx, max, rng);
    idx
}

/// Converts the chosen candidates, dropping (from `indices` too) any whose conversion
/// fails after all, so that `indices` names exactly what is sent.
fn convert<A, T>(
    candidates: &[A],
    indices: &mut Vec<usize>,
    f: impl Fn(&A) -> Option<T>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(indices.len());
    indices.retain(|&i| match candidates.get(i).and_then(&f) {
        Some(t) => {
            out.push(t);
            true
        }
        None => false,
    });
    out
}

/// Tells the peer about `candidates` in the format it asked for: `addrv2` if it sent
/// `sendaddrv2`, legacy `addr` otherwise. Returns which candidates were sent.
///
/// Candidates the chosen format cannot express are left out first (Tor v3, I2P, CJDNS
/// and unknown networks in `addr`; malformed entries and Tor v2 embedded in IPv6 in
/// `addrv2`). If more than the per-message maximum (1,000) remain, a uniformly random
/// sample of that many, without duplicates and in random order, is sent
/// ([`sample_in_place`]); otherwise all of them, in order. With
/// nothing left, nothing is queued.
///
/// Call it after the handshake: before it the peer has not said whether it wants
/// `addrv2`, so legacy `addr` is chosen.
///
/// ```
/// use peer_helpers::{push_addresses, AddrFormat, RecordingQueue};
/// use rand::{rngs::StdRng, SeedableRng};
/// use wire_codec::message::{AddrV2Entry, NetworkId, ServiceFlags};
/// use wire_codec::Message;
///
/// let ipv4 = AddrV2Entry::from_ip(1_700_000_000, ServiceFlags::NETWORK, "10.0.0.1".parse().unwrap(), 8333);
/// let onion = AddrV2Entry { network: NetworkId::TORV3, addr: vec![1u8; 32].into(), ..ipv4.clone() };
/// let mut rng = StdRng::seed_from_u64(1);
///
/// // A peer without sendaddrv2 gets legacy addr: the onion address cannot go.
/// let mut legacy = RecordingQueue::new(70016);
/// let sent = push_addresses(&mut legacy, &[ipv4.clone(), onion.clone()], &mut rng);
/// assert_eq!((sent.format, sent.indices), (AddrFormat::Addr, vec![0]));
/// assert!(matches!(legacy.last(), Some(Message::Addr(a)) if a.addresses.len() == 1));
///
/// // A peer that sent sendaddrv2 gets both.
/// let mut v2 = RecordingQueue::new(70016).with_addrv2();
/// let sent = push_addresses(&mut v2, &[ipv4, onion], &mut rng);
/// assert_eq!((sent.format, sent.indices), (AddrFormat::AddrV2, vec![0, 1]));
/// ```
pub fn push_addresses<Q, A, R>(queue: &mut Q, candidates: &[A], rng: &mut R) -> SentAddresses
where
    Q: MessageQueue + ?Sized,
    A: AddressCandidate,
    R: Rng + ?Sized,
{
    let max = per_message(queue);
    if queue.wants_addrv2() {
        let mut indices = choose(candidates, |a| a.has_addr_v2(), max, rng);
        let addresses = convert(candidates, &mut indices, |a| a.to_addr_v2());
        if !addresses.is_empty() {
            queue.queue_message(Message::AddrV2(AddrV2 { addresses }), None);
        }
        SentAddresses {
            format: AddrFormat::AddrV2,
            indices,
        }
    } else {
        let mut indices = choose(candidates, |a| a.has_legacy(), max, rng);
        let addresses = convert(candidates, &mut indices, |a| a.to_legacy());
        if !addresses.is_empty() {
            queue.queue_message(Message::Addr(Addr { addresses }), None);
        }
        SentAddresses {
            format: AddrFormat::Addr,
            indices,
        }
    }
}

/// Sends legacy `addr` with `addresses` (btcd `PushAddrMsg`), whatever the peer
/// negotiated, and returns the addresses sent.
///
/// At most the per-message maximum (1,000) is sent: given more, a uniformly random
/// sample without duplicates, in random order; given no more, all of them in order. An
/// empty list sends nothing and returns an empty list. Prefer [`push_addresses`], which
/// uses `addrv2` with peers that asked for it.
///
/// ```
/// use peer_helpers::{push_addr, RecordingQueue};
/// use rand::{rngs::StdRng, SeedableRng};
/// use wire_codec::message::{NetAddress, ServiceFlags};
///
/// let many: Vec<NetAddress> = (0..3_000u32)
///     .map(|i| NetAddress::from_socket_addr(([10, 0, (i >> 8) as u8, i as u8], 8333).into(), ServiceFlags::NETWORK))
///     .collect();
/// let mut q = RecordingQueue::new(70016);
/// let sent = push_addr(&mut q, &many, &mut StdRng::seed_from_u64(3));
/// assert_eq!(sent.len(), 1_000);
/// assert!(push_addr(&mut q, &[], &mut StdRng::seed_from_u64(3)).is_empty());
/// assert_eq!(q.messages.len(), 1); // the empty call sent nothing
/// ```
pub fn push_addr<Q, R>(queue: &mut Q, addresses: &[NetAddress], rng: &mut R) -> Vec<NetAddress>
where
    Q: MessageQueue + ?Sized,
    R: Rng + ?Sized,
{
    // Sample positions, not the addresses themselves: only the chosen ones are copied.
    let chosen: Vec<NetAddress> = if addresses.len() <= per_message(queue) {
        addresses.to_vec()
    } else {
        choose(addresses, |_| true, per_message(queue), rng)
            .into_iter()
            .filter_map(|i| addresses.get(i).copied())
            .collect()
    };
    if !chosen.is_empty() {
        queue.queue_message(
            Message::Addr(Addr {
                addresses: chosen.clone(),
            }),
            None,
        );
    }
    chosen
}

/// Sends `addrv2` with `entries` (btcd `PushAddrV2Msg`) to a peer that sent
/// `sendaddrv2`, and returns the entries sent.
///
/// Malformed entries (a length that does not match the network, longer than 512 bytes,
/// Tor v2 embedded in IPv6) are left out, and an IPv4-mapped IPv6 entry goes as IPv4.
/// Of the rest, at most the per-message maximum (1,000) is sent, sampled as
/// [`push_addr`] does — with a real partial Fisher–Yates, not btcd's `PushAddrV2Msg`
/// shuffle, which duplicates entries. Nothing to send sends nothing.
///
/// # Errors
///
/// [`Error::AddrV2NotNegotiated`] if the peer did not ask for `addrv2`; nothing is queued.
///
/// ```
/// use peer_helpers::{push_addr_v2, Error, RecordingQueue};
/// use rand::{rngs::StdRng, SeedableRng};
/// use wire_codec::message::{AddrV2Entry, NetworkId, ServiceFlags};
///
/// let i2p = AddrV2Entry {
///     time: 1_700_000_000,
///     services: ServiceFlags::NETWORK,
///     network: NetworkId::I2P,
///     addr: vec![3u8; 32].into(),
///     port: 0,
/// };
/// let mut rng = StdRng::seed_from_u64(5);
/// let mut v2 = RecordingQueue::new(70016).with_addrv2();
/// assert_eq!(push_addr_v2(&mut v2, &[i2p.clone()], &mut rng).unwrap(), vec![i2p.clone()]);
///
/// let mut legacy = RecordingQueue::new(70016);
/// assert_eq!(push_addr_v2(&mut legacy, &[i2p], &mut rng), Err(Error::AddrV2NotNegotiated));
/// assert!(legacy.messages.is_empty());
/// ```
pub fn push_addr_v2<Q, R>(
    queue: &mut Q,
    entries: &[AddrV2Entry],
    rng: &mut R,
) -> Result<Vec<AddrV2Entry>, Error>
where
    Q: MessageQueue + ?Sized,
    R: Rng + ?Sized,
{
    if !queue.wants_addrv2() {
        return Err(Error::AddrV2NotNegotiated);
    }
    let mut indices = choose(entries, v2_well_formed, per_message(queue), rng);
    let chosen = convert(entries, &mut indices, |e| e.to_addr_v2());
    if !chosen.is_empty() {
        queue.queue_message(
            Message::AddrV2(AddrV2 {
                addresses: chosen.clone(),
            }),
            None,
        );
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::message::ServiceFlags;

    fn entry(network: NetworkId, addr: Vec<u8>) -> AddrV2Entry {
        AddrV2Entry {
            time: 1,
            services: ServiceFlags::NETWORK,
            network,
            addr: addr.into(),
            port: 8333,
        }
    }

    #[test]
    fn legacy_form_exists_for_ip_only() {
        assert!(entry(NetworkId::IPV4, vec![1, 2, 3, 4]).has_legacy());
        assert!(entry(NetworkId::IPV6, vec![0x20; 16]).has_legacy());
        assert!(!entry(NetworkId::TORV3, vec![0; 32]).has_legacy());
        assert!(!entry(NetworkId::I2P, vec![0; 32]).has_legacy());
        assert!(!entry(NetworkId::CJDNS, vec![0xfc; 16]).has_legacy());
        assert!(!entry(NetworkId(42), vec![0; 7]).has_legacy());
    }

    #[test]
    fn malformed_entries_have_no_v2_form() {
        assert!(!entry(NetworkId::IPV4, vec![1, 2, 3]).has_addr_v2());
        assert!(!entry(NetworkId::TORV3, vec![0; 31]).has_addr_v2());
        assert!(!entry(NetworkId(42), vec![0; 513]).has_addr_v2());
        assert!(entry(NetworkId(42), vec![0; 512]).has_addr_v2());
        let mut onioncat = vec![0xfd, 0x87, 0xd8, 0x7e, 0xeb, 0x43];
        onioncat.extend([9u8; 10]);
        assert!(!entry(NetworkId::IPV6, onioncat).has_addr_v2());
    }

    #[test]
    fn mapped_ipv6_entry_becomes_ipv4() {
        let mut mapped = vec![0u8; 10];
        mapped.extend([0xff, 0xff, 192, 0, 2, 1]);
        let e = entry(NetworkId::IPV6, mapped).to_addr_v2().unwrap();
        assert_eq!(e.network, NetworkId::IPV4);
        assert_eq!(&e.addr[..], &[192, 0, 2, 1]);
    }

    #[test]
    fn legacy_address_converts_to_v2_with_its_time() {
        let mut a = NetAddress::from_socket_addr(
            "[2001:db8::1]:18444".parse().unwrap(),
            ServiceFlags::WITNESS,
        );
        a.time = Some(77);
        let e = a.to_addr_v2().unwrap();
        assert_eq!(e.network, NetworkId::IPV6);
        assert_eq!(
            (e.time, e.port, e.services),
            (77, 18444, ServiceFlags::WITNESS)
        );
        a.ip = "fd87:d87e:eb43::1".parse().unwrap();
        assert!(a.to_addr_v2().is_none());
        assert!(!a.has_addr_v2());
    }
}
