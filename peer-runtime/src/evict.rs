//! Choosing an inbound peer to evict when every slot is taken (Bitcoin Core's
//! `SelectNodeToEvict`), so that a peer from a new network group always gets in while
//! the peers most worth keeping stay.
//!
//! Protected, in order, from the inbound peers: 4 by a keyed hash of their network
//! group (an attacker cannot predict which groups, so cannot aim at them), 8 with the
//! lowest ping, 4 that most recently sent useful messages (transactions, blocks,
//! headers, inventory), then half of the rest by longest connection. Of what remains,
//! the network group with the most peers loses its youngest peer.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::netgroup::Netgroup;

/// What eviction knows about one inbound peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) id: u64,
    pub(crate) group: Netgroup,
    /// How long it has been connected.
    pub(crate) connected: Duration,
    /// Its lowest ping round trip (`None`: never measured, worst).
    pub(crate) min_ping: Option<Duration>,
    /// How long ago it last sent a useful message (`None`: never, worst).
    pub(crate) useful_ago: Option<Duration>,
}

/// The peer to evict, or `None` when every candidate is protected.
pub(crate) fn select(mut c: Vec<Candidate>, key: &impl BuildHasher) -> Option<u64> {
    let group_hash = |g: Netgroup| {
        let mut h = key.build_hasher();
        h.write_u64(g.key());
        h.finish()
    };
    // Protect the 4 whose keyed group hash is largest.
    c.sort_by_key(|x| std::cmp::Reverse(group_hash(x.group)));
    protect(&mut c, 4);
    // The 8 lowest pings.
    c.sort_by_key(|x| x.min_ping.unwrap_or(Duration::MAX));
    protect(&mut c, 8);
    // The 4 most recently useful.
    c.sort_by_key(|x| x.useful_ago.unwrap_or(Duration::MAX));
    protect(&mut c, 4);
    // Half of the rest, longest connected first.
    c.sort_by_key(|x| std::cmp::Reverse(x.connected));
    let half = c.len() / 2;
    protect(&mut c, half);
    if c.is_empty() {
        return None;
    }
    // The most represented group (ties: the one with the youngest peer) loses its
    // youngest peer.
    let mut groups: HashMap<Netgroup, (usize, Candidate)> = HashMap::new();
    for x in &c {
        let e = groups.entry(x.group).or_insert((0, *x));
        e.0 += 1;
        if x.connected < e.1.connected {
            e.1 = *x;
        }
    }
    groups
        .into_values()
        .max_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| b.1.connected.cmp(&a.1.connected))
                .then_with(|| b.1.id.cmp(&a.1.id))
        })
        .map(|(_, youngest)| youngest.id)
}

/// Removes the first `n` candidates (they are protected).
fn protect(c: &mut Vec<Candidate>, n: usize) {
    let n = n.min(c.len());
    c.drain(..n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::RandomState;

    fn cand(id: u64, group: &str, secs: u64) -> Candidate {
        Candidate {
            id,
            group: Netgroup::of(group.parse().unwrap(), false),
            connected: Duration::from_secs(secs),
            min_ping: None,
            useful_ago: None,
        }
    }

    #[test]
    fn the_crowded_group_loses_its_youngest() {
        // 40 peers from one /16, one each from 20 other groups.
        let mut c: Vec<Candidate> = (0..40).map(|i| cand(i, "9.9.1.1", 1000 + i)).collect();
        c.extend((0..20).map(|i| cand(100 + i, &format!("{}.1.1.1", 20 + i), 5)));
        let victim = select(c, &RandomState::new()).unwrap();
        assert!(victim < 40, "evicted {victim}, not from the crowded group");
    }

    #[test]
    fn protected_peers_are_kept() {
        // Few candidates: all protected, nobody evicted.
        let c: Vec<Candidate> = (0..16)
            .map(|i| cand(i, &format!("{}.1.1.1", 20 + i), 5))
            .collect();
        assert_eq!(select(c, &RandomState::new()), None);
        // The lowest pings are never the victim.
        let mut c: Vec<Candidate> = (0..60).map(|i| cand(i, "9.9.1.1", 10)).collect();
        for x in c.iter_mut().take(8) {
            x.min_ping = Some(Duration::from_millis(1));
        }
        for _ in 0..20 {
            let v = select(c.clone(), &RandomState::new()).unwrap();
            assert!(v >= 8);
        }
    }

    proptest! {
        /// Whoever is chosen is a candidate from a group with the most unprotected
        /// members; with more than 16 candidates someone is always chosen.
        #[test]
        fn a_victim_exists_and_is_a_candidate(groups in proptest::collection::vec((0u8..6, 0u64..100), 17..80)) {
            let c: Vec<Candidate> = groups.iter().enumerate()
                .map(|(i, (g, s))| cand(i as u64, &format!("{}.{}.1.1", 30 + g, g), *s))
                .collect();
            let v = select(c.clone(), &RandomState::new());
            prop_assert!(v.is_some());
            prop_assert!(c.iter().any(|x| Some(x.id) == v));
        }
    }
}
