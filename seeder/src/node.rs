//! One known node: what we learned of it, its reliability, and sipa's rules that turn
//! those into good / ignored / banned.

use std::net::SocketAddr;

use wire_codec::message::ServiceFlags;
use wire_codec::Network;

use crate::addr::{is_routable, is_usable};
use crate::stats::Reliability;

/// The lowest protocol version a good node speaks (sipa's `REQUIRE_VERSION`).
pub const REQUIRE_VERSION: u32 = 70001;

/// Below this protocol version a node is banned for a week (sipa).
pub const ANCIENT_VERSION: u32 = 31900;

/// What the rules need to know about the network and the operator's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The network's default port: only nodes on it are served.
    pub default_port: u16,
    /// Least start height of a good node.
    pub min_height: i32,
    /// Whether unroutable addresses are crawled and served (tests).
    pub allow_local: bool,
}

impl Rules {
    /// The rules for `network`: its default port, and a height floor of sipa's kind on
    /// mainnet and testnet (0 elsewhere, so a fresh regtest or signet qualifies).
    ///
    /// ```
    /// use seeder::node::Rules;
    /// let r = Rules::for_network(wire_codec::Network::Regtest, true);
    /// assert_eq!((r.default_port, r.min_height), (18444, 0));
    /// ```
    pub fn for_network(network: Network, allow_local: bool) -> Rules {
        let min_height = match network {
            Network::Mainnet => 350_000,
            Network::Testnet3 => 500_000,
            _ => 0,
        };
        Rules {
            default_port: network.default_port(),
            min_height,
            allow_local,
        }
    }
}

/// Everything the seeder keeps about one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The address.
    pub addr: SocketAddr,
    /// Services from its version message (or, before we talked to it, as gossiped).
    pub services: u64,
    /// Protocol version from its version message (0: never talked to it).
    pub version: u32,
    /// Start height from its version message.
    pub height: i32,
    /// BIP14 user agent.
    pub user_agent: String,
    /// Round-trip estimate of the last successful probe, milliseconds.
    pub rtt_ms: u32,
    /// Unix time of our last try (0: never tried).
    pub last_try: u64,
    /// Unix time of our last successful handshake (0: never).
    pub last_success: u64,
    /// Not tried again before this unix time (sipa's backoff on failure).
    pub ignore_till: u64,
    /// Banned (never tried nor served) until this unix time.
    pub ban_till: u64,
    /// The five reliability windows.
    pub reliability: Reliability,
    /// Tries and successes, all time.
    pub total: u32,
    /// Successful tries, all time.
    pub success: u32,
}

impl Node {
    /// A node we have not talked to yet.
    pub fn untried(addr: SocketAddr, services: u64) -> Node {
        Node {
            addr,
            services,
            version: 0,
            height: 0,
            user_agent: String::new(),
            rtt_ms: 0,
            last_try: 0,
            last_success: 0,
            ignore_till: 0,
            ban_till: 0,
            reliability: Reliability::default(),
            total: 0,
            success: 0,
        }
    }

    /// Whether we ever tried it.
    pub fn tried(&self) -> bool {
        self.last_try != 0
    }

    /// Whether it is banned at `now`.
    pub fn banned(&self, now: u64) -> bool {
        self.ban_till > now
    }

    /// sipa's good-node rule (as the issue states it): the default port, NODE_NETWORK,
    /// protocol ≥ 70001, the height floor, a routable address (unless local addresses are
    /// allowed), a success of our own, and reliable windows.
    ///
    /// ```
    /// use seeder::node::{Node, Rules};
    /// let rules = Rules::for_network(wire_codec::Network::Regtest, true);
    /// let mut n = Node::untried("127.1.0.1:18444".parse().unwrap(), 0);
    /// n.record_success(1_000, 70016, 1 | 8, 100, "/x/".into(), 3);
    /// n.record_success(1_005, 70016, 1 | 8, 100, "/x/".into(), 3);
    /// assert!(n.is_good(&rules, 1_005));
    /// ```
    pub fn is_good(&self, rules: &Rules, now: u64) -> bool {
        self.addr.port() == rules.default_port
            && self.services & ServiceFlags::NETWORK.0 != 0
            && self.version >= REQUIRE_VERSION
            && self.height >= rules.min_height
            && self.success > 0
            && !self.banned(now)
            && (rules.allow_local || is_routable(self.addr.ip()))
            && is_usable(self.addr.ip(), self.addr.port(), rules.allow_local)
            && self.reliability.is_reliable()
    }

    fn age(&self, now: u64) -> u64 {
        if self.last_try == 0 {
            u64::MAX
        } else {
            now.saturating_sub(self.last_try)
        }
    }

    /// Records a completed handshake with what the node told us.
    pub fn record_success(
        &mut self,
        now: u64,
        version: u32,
        services: u64,
        height: i32,
        user_agent: String,
        rtt_ms: u32,
    ) {
        let age = self.age(now);
        self.reliability.update(true, age);
        self.last_try = now;
        self.last_success = now;
        self.total = self.total.saturating_add(1);
        self.success = self.success.saturating_add(1);
        self.version = version;
        self.services = services;
        self.height = height;
        self.user_agent = user_agent;
        self.rtt_ms = rtt_ms;
        self.ignore_till = 0;
        if version != 0 && version < ANCIENT_VERSION {
            self.ban_till = now + 7 * 86400;
        }
    }

    /// Records a failed try; `ban` (seconds) for wrong network or garbage. Otherwise
    /// sipa's schedule decides whether to ban or to leave the node alone for a while.
    pub fn record_failure(&mut self, now: u64, ban: u64, rules: &Rules) {
        let age = self.age(now);
        self.reliability.update(false, age);
        self.last_try = now;
        self.total = self.total.saturating_add(1);
        let ban = ban.max(self.ban_time(rules, now));
        if ban > 0 {
            self.ban_till = now + ban;
        }
        let ignore = self.ignore_time(rules, now);
        if ignore > 0 {
            self.ignore_till = now + ignore;
        }
    }

    /// sipa's ban schedule: a month, a week or a day for nodes failing nearly always
    /// over the matching window.
    pub fn ban_time(&self, rules: &Rules, now: u64) -> u64 {
        if self.is_good(rules, now) {
            return 0;
        }
        let w = &self.reliability.windows;
        if self.version != 0 && self.version < ANCIENT_VERSION {
            return 7 * 86400;
        }
        if w[4].score() < 0.15 && w[4].count > 32.0 {
            return 30 * 86400;
        }
        if w[3].score() < 0.10 && w[3].count > 16.0 {
            return 7 * 86400;
        }
        if w[2].score() < 0.05 && w[2].count > 8.0 {
            return 86400;
        }
        0
    }

    /// sipa's backoff: how long to leave a failing node alone.
    pub fn ignore_time(&self, rules: &Rules, now: u64) -> u64 {
        if self.is_good(rules, now) {
            return 0;
        }
        let w = &self.reliability.windows;
        if w[4].score() < 0.20 && w[4].count > 2.0 {
            return 10 * 86400;
        }
        if w[3].score() < 0.16 && w[3].count > 2.0 {
            return 3 * 86400;
        }
        if w[2].score() < 0.12 && w[2].count > 2.0 {
            return 8 * 3600;
        }
        if w[1].score() < 0.08 && w[1].count > 2.0 {
            return 2 * 3600;
        }
        0
    }

    /// The earliest unix time of the next try, with `revisit` the least time between
    /// two tries.
    pub fn next_try(&self, revisit: u64) -> u64 {
        if self.last_try == 0 {
            return 0;
        }
        (self.last_try + revisit)
            .max(self.ignore_till)
            .max(self.ban_till)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::for_network(Network::Regtest, true)
    }

    fn good_node(port: u16) -> Node {
        let mut n = Node::untried(SocketAddr::from(([127, 5, 0, 1], port)), 0);
        n.record_success(1000, 70016, 9, 10, "/t/".into(), 1);
        n.record_success(1005, 70016, 9, 10, "/t/".into(), 1);
        n
    }

    #[test]
    fn good_needs_every_clause() {
        let r = rules();
        assert!(good_node(18444).is_good(&r, 1005));
        assert!(!good_node(18445).is_good(&r, 1005), "other port");
        let mut n = good_node(18444);
        n.services = 8;
        assert!(!n.is_good(&r, 1005), "no NODE_NETWORK");
        let mut n = good_node(18444);
        n.version = 70000;
        assert!(!n.is_good(&r, 1005), "old version");
        let strict = Rules {
            min_height: 11,
            ..r
        };
        assert!(!good_node(18444).is_good(&strict, 1005), "low height");
        let public = Rules {
            allow_local: false,
            ..r
        };
        assert!(!good_node(18444).is_good(&public, 1005), "loopback");
    }

    #[test]
    fn failures_back_off_and_bans_hold() {
        let r = rules();
        let mut n = Node::untried(SocketAddr::from(([127, 5, 0, 2], 18444)), 1);
        n.record_failure(1000, 0, &r);
        assert_eq!(n.next_try(5), 1005);
        for i in 1..4 {
            n.record_failure(1000 + i * 5, 0, &r);
        }
        assert!(
            n.ignore_till > 1015 + 3600,
            "sipa's 2h+ backoff after repeated failures"
        );
        let mut b = Node::untried(SocketAddr::from(([127, 5, 0, 3], 18444)), 1);
        b.record_failure(1000, 86400, &r);
        assert!(b.banned(1000 + 86399));
        assert!(!b.banned(1000 + 86400));
    }

    #[test]
    fn ancient_versions_are_banned() {
        let mut n = Node::untried(SocketAddr::from(([127, 5, 0, 4], 18444)), 1);
        n.record_success(1000, 31800, 1, 0, String::new(), 1);
        assert!(n.banned(1000 + 86400));
    }
}
