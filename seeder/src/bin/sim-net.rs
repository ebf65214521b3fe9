//! `sim-net`: serve a shard of a simulated network on 127.0.0.0/8 (see `seeder::sim`).
//!
//! ```text
//! sim-net --network regtest --nodes 15000 [--seed 1] [--shard 0 --shards 3] [--threads 1] [--duration SECONDS]
//! ```
//! Prints `ready listening=N good=G` once every listener is bound, then runs until
//! killed or the duration ends.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seeder::sim::{self, Behaviour, SimSpec};
use wire_codec::Network;

#[derive(Parser, Debug)]
#[command(
    name = "sim-net",
    version,
    about = "A simulated Bitcoin network on 127.0.0.0/8"
)]
struct Args {
    /// Network the nodes speak (their port is its default port).
    #[arg(long, default_value = "regtest")]
    network: Network,
    /// Nodes in the whole network.
    #[arg(long)]
    nodes: u32,
    /// Layout seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// This process's shard.
    #[arg(long, default_value_t = 0)]
    shard: u32,
    /// Number of shards (processes).
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// Executor threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Print the layout (address behaviour) and exit.
    #[arg(long)]
    print_layout: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    if a.print_layout {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (ip, b) in sim::layout(a.nodes, a.seed) {
            if writeln!(out, "{ip} {b:?}").is_err() {
                break; // the reader stopped reading: fine
            }
        }
        let _ = out.flush();
        return ExitCode::SUCCESS;
    }
    // Every node is a listening socket, every connection another: use the hard limit.
    let _ = rlimit::utils::increase_nofile_limit(u64::MAX);
    let spec = SimSpec {
        network: a.network,
        nodes: a.nodes,
        seed: a.seed,
        shard: a.shard,
        shards: a.shards,
        threads: a.threads,
    };
    let h = match sim::start(spec) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let good = sim::layout(a.nodes, a.seed)
        .iter()
        .enumerate()
        .filter(|(i, (_, b))| *i as u32 % a.shards.max(1) == a.shard && *b == Behaviour::Good)
        .count();
    println!("ready listening={} good={good}", h.listening);
    match a.duration {
        Some(d) => std::thread::sleep(Duration::from_secs(d)),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    h.stop();
    ExitCode::SUCCESS
}
