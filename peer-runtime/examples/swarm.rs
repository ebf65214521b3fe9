//! Opens many peers to one server and holds them: a small load client for measuring how
//! many idle, handshaken peers a server process holds and what each costs.
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example swarm -- --network regtest --peers 5000 127.0.0.1:PORT
//! ```
//!
//! One process may hold at most ~19,700 peers (20,000 descriptors); run several
//! processes for more. It prints its progress, then a line per `--report` seconds while
//! it holds the peers for `--hold` seconds.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use peer_runtime::Runtime;
use wire_codec::message::ServiceFlags;
use wire_codec::Network;

#[path = "support/ops.rs"]
mod ops;

#[derive(Parser, Debug)]
#[command(
    name = "swarm",
    version,
    about = "Open and hold many peers to one server"
)]
struct Args {
    /// Network of the server.
    #[arg(long, default_value = "regtest")]
    network: Network,
    /// Peers to open.
    #[arg(long, default_value_t = 1000)]
    peers: usize,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Executors of this client.
    #[arg(long, default_value_t = 1)]
    executors: usize,
    /// Seconds to hold the peers once connected.
    #[arg(long, default_value_t = 30)]
    hold: u64,
    /// Seconds between progress lines while holding.
    #[arg(long, default_value_t = 5)]
    report: u64,
    /// The server.
    addr: SocketAddr,
}

fn main() -> ExitCode {
    ops::init_logging();
    let args = Args::parse();
    let rt = match Runtime::builder(args.network)
        .configure(|c| {
            c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
            c.user_agent_name = "swarm".into();
            c.user_agent_version = env!("CARGO_PKG_VERSION").into();
        })
        .executors(args.executors)
        .start()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut peers = Vec::with_capacity(args.peers);
    let mut failed = 0usize;
    let mut left = args.peers;
    while left > 0 {
        let n = left.min(args.batch.max(1));
        left -= n;
        let requests: Vec<_> = (0..n).map(|_| rt.connect(args.addr)).collect();
        for r in requests {
            match r.wait() {
                Ok(p) => peers.push(p),
                Err(e) => {
                    failed += 1;
                    if failed <= 5 {
                        eprintln!("connect: {e}");
                    }
                }
            }
        }
    }
    let mut handshaken = 0;
    for p in &peers {
        if matches!(
            p.wait_for_handshake_timeout(Duration::from_secs(60)),
            Some(Ok(_))
        ) {
            handshaken += 1;
        }
    }
    println!(
        "opened={} failed={failed} handshaken={handshaken} in {:.1}s",
        peers.len(),
        started.elapsed().as_secs_f64()
    );
    let hold_until = Instant::now() + Duration::from_secs(args.hold);
    while Instant::now() < hold_until {
        std::thread::sleep(Duration::from_secs(args.report.max(1)));
        let s = rt.stats();
        println!(
            "connected={} handshaken={} disconnects={}",
            s.peers, s.handshaken, s.disconnects
        );
    }
    rt.shutdown();
    ExitCode::SUCCESS
}
