//! # seeder — `peerwire-seeder`
//!
//! A DNS seeder for the Bitcoin network (and its relatives): it crawls the reachable
//! network on `peer-runtime` with thousands of probes in flight, keeps every node and
//! its reliability in SQLite, and answers DNS with good nodes only.
//!
//! ```text
//! peerwire-seeder --network NET --seed HOST:PORT [--seed ...] --zone DOMAIN --ns DOMAIN
//!                 --dns-listen ADDR:PORT --db PATH [--dump PATH] [--p2p-listen ADDR:PORT]
//!                 [--allow-local-addresses] [--revisit SECONDS] [--concurrency N]
//! ```
//!
//! ```
//! // The good-node rule, on a node probed twice, five seconds apart:
//! use seeder::node::{Node, Rules};
//! let rules = Rules::for_network(wire_codec::Network::Regtest, true);
//! let mut n = Node::untried("127.1.0.1:18444".parse().unwrap(), 0);
//! n.record_success(100, 70016, 9, 1, "/Satoshi:27.0.0/".into(), 1);
//! assert!(!n.is_good(&rules, 100)); // one attempt is not enough
//! n.record_success(105, 70016, 9, 1, "/Satoshi:27.0.0/".into(), 1);
//! assert!(n.is_good(&rules, 105));
//! ```
//!
//! ## Contents
//! - [`cli`]: the command line. [`app`]: wiring, status line, signals.
//! - [`node`]: one node and sipa's rules (good, ban, backoff); [`stats`]: the
//!   exponential reliability windows; [`addr`]: network groups and routability.
//! - [`db`]: the in-memory node table and crawl schedule; [`store`]: SQLite.
//! - [`crawler`]: probes on peer-runtime.
//! - [`goodset`]: the good-node snapshot and answer selection; [`dns`]: answers;
//!   [`answer_cache`]: per-worker pools of address answers; [`dns_server`]: UDP and
//!   TCP.
//! - [`seed_node`]: `--p2p-listen`. [`dump`]: `dnsseed.dump`. [`metrics`]: counters
//!   and `/metrics`.
//! - [`sim`]: `sim-net`, the simulated network of the tests and measurements.
//! - [`error`]: the one error type, [`Error`].

#![forbid(unsafe_code)]

pub mod addr;
pub mod answer_cache;
pub mod app;
pub mod cli;
pub mod crawler;
pub mod db;
pub mod dns;
pub mod dns_server;
pub mod dump;
pub mod error;
pub mod goodset;
pub mod metrics;
pub mod node;
pub mod seed_node;
pub mod sim;
pub mod stats;
pub mod store;

pub use error::Error;
