//! The good nodes as the DNS server and the seed node read them: an immutable snapshot,
//! grouped by network group, rebuilt by the crawler and swapped in whole.
//!
//! Answers pick one node per group in a pseudo-random group order (a random start and
//! a random stride coprime with the number of groups: a permutation without
//! allocating), so a handful of operators cannot fill an answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use rand::Rng;
use wire_codec::message::{AddrV2Entry, ServiceFlags};

use crate::addr::{canonical, netgroup};

/// One good address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoodAddr {
    /// Its IP.
    pub ip: IpAddr,
    /// Its services.
    pub services: u64,
}

/// Good addresses of one family, sorted by group; `groups` are (start, len) runs.
#[derive(Debug, Default, Clone)]
struct Family {
    addrs: Vec<GoodAddr>,
    groups: Vec<(u32, u32)>,
}

/// The most member checks one selection makes (bounds a query's cost whatever the
/// filter).
const SCAN_BUDGET: usize = 16_384;

impl Family {
    fn build(mut v: Vec<(u64, GoodAddr)>) -> Family {
        v.sort_by_key(|(g, _)| *g);
        let mut groups = Vec::new();
        let mut start = 0usize;
        for i in 1..=v.len() {
            if i == v.len() || v[i].0 != v[start].0 {
                groups.push((start as u32, (i - start) as u32));
                start = i;
            }
        }
        Family {
            addrs: v.into_iter().map(|(_, a)| a).collect(),
            groups,
        }
    }

    fn select<R: Rng + ?Sized>(&self, mask: u64, max: usize, rng: &mut R, out: &mut Vec<IpAddr>) {
        let n = self.groups.len();
        if n == 0 || max == 0 {
            return;
        }
        let start = rng.gen_range(0..n);
        let stride = coprime_stride(n, rng);
        let mut budget = SCAN_BUDGET;
        let first = out.len();
        // Round r takes one more matching member (from a random offset) of each group,
        // until `max`, no progress, or the scan budget.
        for round in 0usize.. {
            let before = out.len();
            for k in 0..n {
                if out.len() - first >= max || budget == 0 {
                    return;
                }
                let (gs, gl) = self.groups[(start + k * stride) % n];
                let (gs, gl) = (gs as usize, gl as usize);
                if round >= gl {
                    continue;
                }
                let off = rng.gen_range(0..gl);
                for j in 0..gl {
                    budget = budget.saturating_sub(1);
                    let a = &self.addrs[gs + (off + j) % gl];
                    if a.services & mask == mask && (round == 0 || !out[first..].contains(&a.ip)) {
                        out.push(a.ip);
                        break;
                    }
                }
            }
            if out.len() == before {
                return;
            }
        }
    }
}

fn coprime_stride<R: Rng + ?Sized>(n: usize, rng: &mut R) -> usize {
    if n <= 2 {
        return 1;
    }
    loop {
        let s = rng.gen_range(1..n);
        if gcd(s, n) == 1 {
            return s;
        }
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A snapshot of the good nodes.
///
/// ```
/// use seeder::goodset::GoodSet;
/// let set = GoodSet::build([
///     ("127.1.0.1:18444".parse().unwrap(), 9u64),
///     ("127.2.0.1:18444".parse().unwrap(), 1u64),
/// ]);
/// let mut rng = rand::thread_rng();
/// let mut out = Vec::new();
/// set.select(false, 8, 10, &mut rng, &mut out);
/// assert_eq!(out, vec!["127.1.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct GoodSet {
    v4: Family,
    v6: Family,
    entries: Vec<AddrV2Entry>,
}

impl GoodSet {
    /// Builds the snapshot from good (address, services) pairs.
    pub fn build(nodes: impl IntoIterator<Item = (SocketAddr, u64)>) -> GoodSet {
        let (mut v4, mut v6, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        for (addr, services) in nodes {
            let ip = canonical(addr.ip());
            let g = GoodAddr { ip, services };
            entries.push(AddrV2Entry::from_ip(
                now,
                ServiceFlags(services),
                ip,
                addr.port(),
            ));
            match ip {
                IpAddr::V4(_) => v4.push((netgroup(ip), g)),
                IpAddr::V6(_) => v6.push((netgroup(ip), g)),
            }
        }
        GoodSet {
            v4: Family::build(v4),
            v6: Family::build(v6),
            entries,
        }
    }

    /// Good IPv4 plus IPv6 addresses.
    pub fn len(&self) -> usize {
        self.v4.addrs.len() + self.v6.addrs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Network groups (IPv4 and IPv6).
    pub fn groups(&self) -> usize {
        self.v4.groups.len() + self.v6.groups.len()
    }

    /// Every good address with port and services (the seed node's `addr` answers).
    pub fn entries(&self) -> &[AddrV2Entry] {
        &self.entries
    }

    /// Appends up to `max` distinct random IPs of one family (IPv6 if `v6`) whose
    /// services include every bit of `mask`, one per network group before a second from
    /// any group.
    pub fn select<R: Rng + ?Sized>(
        &self,
        v6: bool,
        mask: u64,
        max: usize,
        rng: &mut R,
        out: &mut Vec<IpAddr>,
    ) {
        let fam = if v6 { &self.v6 } else { &self.v4 };
        fam.select(mask, max, rng, out);
    }
}

/// The current snapshot, shared by the crawler (writer) and every reader.
pub type SharedGood = Arc<RwLock<Arc<GoodSet>>>;

/// Reads the current snapshot (cheap: clones an `Arc`).
pub fn current(shared: &SharedGood) -> Arc<GoodSet> {
    shared
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Publishes a new snapshot.
pub fn publish(shared: &SharedGood, set: GoodSet) {
    *shared
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn addr(g: u8, h: u8) -> SocketAddr {
        SocketAddr::from(([127, g, 0, h], 18444))
    }

    #[test]
    fn one_per_group_before_seconds() {
        let nodes: Vec<_> = (0..10u8)
            .flat_map(|g| (1..=5u8).map(move |h| (addr(g, h), 9u64)))
            .collect();
        let set = GoodSet::build(nodes);
        assert_eq!(set.groups(), 10);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut out = Vec::new();
        set.select(false, 0, 10, &mut rng, &mut out);
        let groups: HashSet<_> = out.iter().map(|ip| netgroup(*ip)).collect();
        assert_eq!(groups.len(), 10);
        out.clear();
        set.select(false, 0, 25, &mut rng, &mut out);
        assert_eq!(out.len(), 25);
        assert_eq!(out.iter().collect::<HashSet<_>>().len(), 25, "distinct");
    }

    proptest! {
        #[test]
        fn selection_is_distinct_filtered_and_bounded(
            nodes in proptest::collection::vec((0u8..6, 1u8..40, 0u64..16), 0..120),
            mask in 0u64..16,
            max in 0usize..40,
            seed: u64,
        ) {
            let set = GoodSet::build(nodes.iter().map(|&(g, h, s)| (addr(g, h), s)));
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut out = Vec::new();
            set.select(false, mask, max, &mut rng, &mut out);
            prop_assert!(out.len() <= max);
            let distinct: HashSet<_> = out.iter().collect();
            prop_assert_eq!(distinct.len(), out.len());
            // Everything returned matches; and if fewer than max, nothing was missed
            // (small sets: every match fits in 4 rounds when groups hold <= 4 matches).
            let mut matching: HashSet<IpAddr> = HashSet::new();
            for &(g, h, s) in &nodes { if s & mask == mask { matching.insert(addr(g, h).ip()); } }
            for ip in &out { prop_assert!(matching.contains(ip)); }
            prop_assert_eq!(out.len(), max.min(matching.len()));
        }
    }
}
