//! The in-memory node table and the crawl schedule. SQLite ([`crate::store`]) persists
//! it; this is what the crawler consults thousands of times a second.
//!
//! - Tried nodes wait in a queue ordered by the time of their next try: least
//!   recently tried first, never sooner than `revisit` after the last try, and later
//!   when sipa's backoff or a ban says so.
//! - Learned addresses wait, untried, in a FIFO. Each source network group may hold
//!   at most [`NodeDb::max_untried_per_group`] of them, so a poisoner cannot crowd out
//!   real nodes; an address is served only after our own handshake with it succeeded.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;

use crate::addr::{canonical, is_usable, netgroup};
use crate::node::{Node, Rules};

/// Default bound on untried entries one source network group can add.
pub const DEFAULT_MAX_UNTRIED_PER_GROUP: u32 = 4096;

/// Default bound on all known addresses.
pub const DEFAULT_MAX_NODES: usize = 1_000_000;

/// Ban for wrong network or undecodable bytes: one day.
pub const GARBAGE_BAN: u64 = 86400;

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Handshake completed.
    Success {
        /// Protocol version.
        version: u32,
        /// Services.
        services: u64,
        /// Start height.
        height: i32,
        /// User agent.
        user_agent: String,
        /// Round trip, milliseconds.
        rtt_ms: u32,
    },
    /// No handshake (refused, timed out, closed).
    Failure,
    /// Wrong network or undecodable bytes: ban.
    Garbage,
}

/// What one untried address came with.
#[derive(Debug, Clone, Copy)]
struct Untried {
    id: u32,
    /// Source group charged for it (`None` for seeds and restored entries).
    group: Option<u64>,
}

/// The node table.
///
/// ```
/// use seeder::db::{NodeDb, Outcome};
/// use seeder::node::Rules;
/// let rules = Rules::for_network(wire_codec::Network::Regtest, true);
/// let mut db = NodeDb::new(rules, 5);
/// let a = "127.1.0.1:18444".parse().unwrap();
/// db.add_seed(a);
/// let due = db.take_due(100, 1000);
/// assert_eq!(due, vec![a]);
/// let ok = Outcome::Success { version: 70016, services: 9, height: 1, user_agent: "/x/".into(), rtt_ms: 1 };
/// db.report(a, ok.clone(), 1000);
/// assert!(db.take_due(100, 1004).is_empty(), "revisit is 5 s");
/// assert_eq!(db.take_due(100, 1005), vec![a]);
/// db.report(a, ok, 1005);
/// assert_eq!(db.good(1005).len(), 1);
/// ```
#[derive(Debug)]
pub struct NodeDb {
    rules: Rules,
    revisit: u64,
    nodes: Vec<Node>,
    index: HashMap<SocketAddr, u32>,
    untried: VecDeque<Untried>,
    untried_by_group: HashMap<u64, u32>,
    /// (next try, id) of tried nodes that are not in flight.
    schedule: BTreeSet<(u64, u32)>,
    in_flight: HashMap<u32, Option<u64>>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    /// Bound on untried entries per source group.
    pub max_untried_per_group: u32,
    /// Bound on known addresses.
    pub max_nodes: usize,
    /// Learned addresses dropped by the per-group bound.
    pub dropped_by_group_bound: u64,
}

impl NodeDb {
    /// An empty table.
    pub fn new(rules: Rules, revisit: u64) -> NodeDb {
        NodeDb {
            rules,
            revisit,
            nodes: Vec::new(),
            index: HashMap::new(),
            untried: VecDeque::new(),
            untried_by_group: HashMap::new(),
            schedule: BTreeSet::new(),
            in_flight: HashMap::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            max_untried_per_group: DEFAULT_MAX_UNTRIED_PER_GROUP,
            max_nodes: DEFAULT_MAX_NODES,
            dropped_by_group_bound: 0,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Known addresses.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Probes in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Untried addresses waiting.
    pub fn untried_len(&self) -> usize {
        self.untried.len()
    }

    /// Every node (for the dump and the store).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node at `addr`.
    pub fn get(&self, addr: &SocketAddr) -> Option<&Node> {
        self.index.get(addr).map(|&i| &self.nodes[i as usize])
    }

    fn insert(&mut self, node: Node) -> Option<u32> {
        if self.nodes.len() >= self.max_nodes {
            return None;
        }
        let id = self.nodes.len() as u32;
        self.index.insert(node.addr, id);
        self.nodes.push(node);
        self.is_dirty.push(false);
        Some(id)
    }

    fn mark_dirty(&mut self, id: u32) {
        if !self.is_dirty[id as usize] {
            self.is_dirty[id as usize] = true;
            self.dirty.push(id);
        }
    }

    /// Restores a node from the store (no dirtiness, no group charge).
    pub fn restore(&mut self, node: Node) {
        if self.index.contains_key(&node.addr) {
            return;
        }
        let tried = node.tried();
        let next = node.next_try(self.revisit);
        if let Some(id) = self.insert(node) {
            if tried {
                self.schedule.insert((next, id));
            } else {
                self.untried.push_back(Untried { id, group: None });
            }
        }
    }

    /// Adds a seed address (tried first among untried, charged to no group).
    pub fn add_seed(&mut self, addr: SocketAddr) {
        let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
        if self.index.contains_key(&addr) {
            return;
        }
        if let Some(id) = self.insert(Node::untried(addr, 0)) {
            self.untried.push_front(Untried { id, group: None });
            self.mark_dirty(id);
        }
    }

    /// Adds addresses learned from `source`. Unusable ones are ignored, known ones
    /// kept as they are, and each source group adds at most its bound of untried ones.
    /// Returns how many were new.
    pub fn learn(&mut self, source: SocketAddr, addrs: &[(SocketAddr, u64)]) -> usize {
        let group = netgroup(source.ip());
        let mut added = 0;
        for &(addr, services) in addrs {
            let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
            if !is_usable(addr.ip(), addr.port(), self.rules.allow_local)
                || self.index.contains_key(&addr)
            {
                continue;
            }
            let charged = self.untried_by_group.entry(group).or_insert(0);
            if *charged >= self.max_untried_per_group {
                self.dropped_by_group_bound += 1;
                continue;
            }
            let Some(id) = self.insert(Node::untried(addr, services)) else {
                break;
            };
            *self.untried_by_group.entry(group).or_insert(0) += 1;
            self.untried.push_back(Untried {
                id,
                group: Some(group),
            });
            self.mark_dirty(id);
            added += 1;
        }
        added
    }

    /// Up to `max` addresses to probe now: due tried nodes first (least recently tried
    /// first), then untried ones. They count as in flight until [`NodeDb::report`].
    pub fn take_due(&mut self, max: usize, now: u64) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.schedule.first() {
                Some(&(t, id)) if t <= now => {
                    self.schedule.pop_first();
                    self.in_flight.insert(id, None);
                    out.push(self.nodes[id as usize].addr);
                }
                _ => break,
            }
        }
        while out.len() < max {
            let Some(u) = self.untried.pop_front() else {
                break;
            };
            self.in_flight.insert(u.id, u.group);
            out.push(self.nodes[u.id as usize].addr);
        }
        out
    }

    /// The earliest time a tried node becomes due (for idle sleeping).
    pub fn next_due(&self) -> Option<u64> {
        self.schedule.first().map(|&(t, _)| t)
    }

    /// Records the outcome of a probe of `addr` taken with [`NodeDb::take_due`].
    pub fn report(&mut self, addr: SocketAddr, outcome: Outcome, now: u64) {
        let Some(&id) = self.index.get(&addr) else {
            return;
        };
        let Some(group) = self.in_flight.remove(&id) else {
            return; // not ours to report (late duplicate)
        };
        if let Some(g) = group {
            if let Some(c) = self.untried_by_group.get_mut(&g) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    self.untried_by_group.remove(&g);
                }
            }
        }
        let rules = self.rules;
        let node = &mut self.nodes[id as usize];
        match outcome {
            Outcome::Success {
                version,
                services,
                height,
                user_agent,
                rtt_ms,
            } => node.record_success(now, version, services, height, user_agent, rtt_ms),
            Outcome::Failure => node.record_failure(now, 0, &rules),
            Outcome::Garbage => node.record_failure(now, GARBAGE_BAN, &rules),
        }
        let next = node.next_try(self.revisit);
        self.schedule.insert((next, id));
        self.mark_dirty(id);
    }

    /// Nodes changed since the last call (for the store).
    pub fn take_dirty(&mut self) -> Vec<Node> {
        let ids = std::mem::take(&mut self.dirty);
        ids.into_iter()
            .map(|id| {
                self.is_dirty[id as usize] = false;
                self.nodes[id as usize].clone()
            })
            .collect()
    }

    /// The good nodes at `now`.
    pub fn good(&self, now: u64) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.is_good(&self.rules, now))
            .collect()
    }

    /// Counts: (known, tried, banned) at `now`.
    pub fn counts(&self, now: u64) -> (usize, usize, usize) {
        let tried = self.nodes.iter().filter(|n| n.tried()).count();
        let banned = self.nodes.iter().filter(|n| n.banned(now)).count();
        (self.nodes.len(), tried, banned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wire_codec::Network;

    fn db() -> NodeDb {
        NodeDb::new(Rules::for_network(Network::Regtest, true), 5)
    }

    fn ok() -> Outcome {
        Outcome::Success {
            version: 70016,
            services: 9,
            height: 1,
            user_agent: "/t/".into(),
            rtt_ms: 1,
        }
    }

    fn a(x: u8, y: u8) -> SocketAddr {
        SocketAddr::from(([127, x, y, 1], 18444))
    }

    #[test]
    fn a_poisoner_group_is_bounded() {
        let mut d = db();
        d.max_untried_per_group = 10;
        let fake: Vec<_> = (0..200u8).map(|i| (a(200, i), 1)).collect();
        assert_eq!(d.learn(a(9, 9), &fake), 10);
        assert_eq!(d.dropped_by_group_bound, 190);
        // Another group still gets in.
        assert_eq!(d.learn(a(10, 9), &[(a(11, 1), 1)]), 1);
    }

    #[test]
    fn untried_are_never_good_and_unusable_are_ignored() {
        let mut d = NodeDb::new(Rules::for_network(Network::Regtest, false), 5);
        assert_eq!(d.learn(a(9, 9), &[(a(1, 1), 9)]), 0, "loopback refused");
        let public: SocketAddr = "8.8.8.8:18444".parse().unwrap();
        assert_eq!(d.learn("9.9.9.9:1".parse().unwrap(), &[(public, 9)]), 1);
        assert!(d.good(0).is_empty());
    }

    #[test]
    fn garbage_is_banned_and_not_retried() {
        let mut d = db();
        d.add_seed(a(1, 1));
        assert_eq!(d.take_due(10, 100), vec![a(1, 1)]);
        d.report(a(1, 1), Outcome::Garbage, 100);
        assert!(d.take_due(10, 100 + 3600).is_empty());
        assert!(d.get(&a(1, 1)).unwrap().banned(200));
    }

    #[test]
    fn least_recently_tried_first() {
        let mut d = db();
        d.add_seed(a(1, 1));
        d.add_seed(a(2, 1));
        let first = d.take_due(1, 100);
        d.report(first[0], ok(), 100);
        let second = d.take_due(1, 101);
        d.report(second[0], ok(), 101);
        assert_ne!(first, second);
        assert_eq!(d.take_due(1, 200), first);
        assert_eq!(d.take_due(1, 200), second);
    }

    #[test]
    fn dirty_nodes_are_handed_out_once() {
        let mut d = db();
        d.add_seed(a(1, 1));
        assert_eq!(d.take_dirty().len(), 1);
        assert!(d.take_dirty().is_empty());
    }

    proptest! {
        #[test]
        fn in_flight_accounting_balances(ops in proptest::collection::vec((0u8..20, any::<bool>()), 1..200)) {
            let mut d = db();
            d.max_untried_per_group = 5;
            let mut now = 1000;
            for (x, good) in ops {
                d.learn(a(x % 4, 200), &[(a(x, 1), 9), (a(x, 2), 9)]);
                let due = d.take_due(3, now);
                for addr in due {
                    d.report(addr, if good { ok() } else { Outcome::Failure }, now);
                }
                now += 3;
                prop_assert_eq!(d.in_flight(), 0);
                let charged: u32 = d.untried_by_group.values().sum();
                let untried_charged = d.untried.iter().filter(|u| u.group.is_some()).count() as u32;
                prop_assert_eq!(charged, untried_charged);
                for c in d.untried_by_group.values() { prop_assert!(*c <= 5); }
            }
        }
    }
}
