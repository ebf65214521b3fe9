//! The command line (exact contract of issue #14; the options after it are additions
//! with defaults).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use wire_codec::Network;

/// peerwire-seeder: crawl the network, keep only good nodes, answer DNS.
#[derive(Parser, Debug, Clone)]
#[command(name = "peerwire-seeder", version, about)]
pub struct Args {
    /// Network: mainnet, testnet3, testnet4, signet, regtest, lbry-mainnet, lbry-testnet, lbry-regtest.
    #[arg(long)]
    pub network: Network,
    /// A node to start from (HOST:PORT; repeatable). Not needed when --db knows nodes.
    #[arg(long = "seed", value_name = "HOST:PORT")]
    pub seeds: Vec<String>,
    /// The DNS zone served (e.g. seed.example.org).
    #[arg(long, value_name = "DOMAIN")]
    pub zone: String,
    /// The zone's name server (its NS and SOA records).
    #[arg(long, value_name = "DOMAIN")]
    pub ns: String,
    /// Where DNS is answered, over UDP and TCP.
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns_listen: SocketAddr,
    /// The SQLite node database (created if missing).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Rewrite sipa's dnsseed.dump text here periodically.
    #[arg(long, value_name = "PATH")]
    pub dump: Option<PathBuf>,
    /// Also be a seed node: answer getaddr (once per connection) with good nodes.
    #[arg(long, value_name = "ADDR:PORT")]
    pub p2p_listen: Option<SocketAddr>,
    /// Crawl and serve unroutable and reserved addresses (tests on 127.0.0.0/8).
    #[arg(long)]
    pub allow_local_addresses: bool,
    /// Least seconds between two tries of one node.
    #[arg(long, value_name = "SECONDS", default_value_t = 1000)]
    pub revisit: u64,
    /// Most probes in flight.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub concurrency: usize,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between status lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub status_interval: u64,
    /// Crawler executors (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub executors: Option<usize>,
    /// DNS UDP worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub dns_threads: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_parses() {
        let a = Args::try_parse_from([
            "peerwire-seeder",
            "--network",
            "regtest",
            "--seed",
            "127.0.0.1:18444",
            "--seed",
            "localhost:18444",
            "--zone",
            "seed.test",
            "--ns",
            "ns.test",
            "--dns-listen",
            "127.0.0.1:5353",
            "--db",
            "/tmp/x.sqlite",
            "--dump",
            "/tmp/x.dump",
            "--p2p-listen",
            "127.0.0.1:18555",
            "--allow-local-addresses",
            "--revisit",
            "5",
            "--concurrency",
            "100",
        ])
        .unwrap();
        assert_eq!(a.seeds.len(), 2);
        assert_eq!((a.revisit, a.concurrency), (5, 100));
        assert!(a.allow_local_addresses);
        let b = Args::try_parse_from([
            "peerwire-seeder",
            "--network",
            "mainnet",
            "--zone",
            "z",
            "--ns",
            "n",
            "--dns-listen",
            "127.0.0.1:53",
            "--db",
            "d",
        ])
        .unwrap();
        assert!(b.seeds.is_empty() && b.dump.is_none() && !b.allow_local_addresses);
    }
}
