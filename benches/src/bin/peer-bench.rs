//! `peer-bench`: opens N peers to a server and measures handshakes, ping/pong, inventory
//! floods and idle memory, against a raw glommio echo (the limit) and a tokio + bitcoin
//! peer (the alternative) measured by the same tool in the same run.
//!
//! ```text
//! peer-bench --spawn --peers 5000 --baseline            # start everything on 127.0.0.1
//! peer-bench --target 127.0.0.1:18444 --server-pid 4242 # an already running seed-server
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use benches::load::Plan;
use benches::protocol::{Command, PHASES};
use benches::run::RunConfig;
use benches::Kind;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "peer-bench",
    version,
    about = "Load generator for peerwire: handshakes, ping/pong, inv floods and idle memory, \
             with a raw glommio echo, a tokio+bitcoin peer and peer-tokio as baselines",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// (internal) a client worker process, driven over stdin/stdout JSON lines.
    Worker(WorkerArgs),
    /// (internal) a baseline server: `raw` (glommio echo) or `tokio` (tokio + bitcoin).
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Peers per system.
    #[arg(long, default_value_t = 1000)]
    peers: usize,
    /// An already running seed-server (repeat for several addresses).
    #[arg(long = "target", value_name = "HOST:PORT")]
    targets: Vec<SocketAddr>,
    /// Start the seed-server on a free 127.0.0.1 port (the default without --target).
    #[arg(long, conflicts_with = "targets")]
    spawn: bool,
    /// The pid of the --target server, to read its memory and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// What the --target is, for the report (default: its user agent, learnt with one
    /// handshake, and its address).
    #[arg(long, requires = "targets")]
    target_label: Option<String>,
    /// The --target was started just before this run (with --server-pid): its memory
    /// growth in the first suite is reported per idle peer. Without it, a target's
    /// memory per idle peer is not reported (earlier peers' freed memory stays in its
    /// allocator and spoils the figure).
    #[arg(long, requires = "server_pid")]
    fresh_target: bool,
    /// Flood flow control: `inv` messages a connection may write before the server has
    /// answered the ping after the previous window (default 512). A huge value turns flow
    /// control off (the final barrier still waits for the server to catch up).
    #[arg(long)]
    flood_window: Option<u32>,
    /// Also measure the baselines (raw glommio echo, tokio + bitcoin) in the same run.
    #[arg(long)]
    baseline: bool,
    /// Exactly these systems, comma separated: ours, ours-nobp, raw, tokio, peer-tokio.
    #[arg(long, value_delimiter = ',', conflicts_with = "baseline")]
    systems: Vec<String>,
    /// Rounds: every system once per round; the report shows medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Phases in order, comma separated: connect, hold, ping, flood.
    #[arg(long, value_delimiter = ',', default_value = "connect,hold,ping,flood")]
    phases: Vec<String>,
    /// Seconds of each of the ping and flood phases.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seconds of the idle hold.
    #[arg(long, default_value_t = 3.0)]
    hold_seconds: f64,
    /// Inventory messages per write in the flood phase.
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// Client worker processes (default: enough for 9,000 peers each, at least 1).
    #[arg(long)]
    workers: Option<usize>,
    /// Connects in flight per worker.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Spread the workers over this many 127.0.0.x source addresses (0: only when one
    /// address's ephemeral port range is too few for the peers per target). Adds
    /// workers when there are fewer. See the benches README on TIME_WAIT.
    #[arg(long, default_value_t = 0)]
    sources: usize,
    /// The raw system's connects exchange the bytes of a peerwire handshake (version
    /// out, version + negotiation + verack back, negotiation + verack out) instead of
    /// TCP connect + accept alone: the floor any Bitcoin handshake pays.
    #[arg(long)]
    raw_handshake: bool,
    /// Our clients connect with BIP324 v2 (encrypted transport); the seed-server
    /// accepts v1 and v2 on one port.
    #[arg(long)]
    v2: bool,
    /// Load the ours and tokio servers with this client (ours or tokio) instead of each
    /// system's own: tells server costs from client costs.
    #[arg(long)]
    client: Option<String>,
    /// Threads of the baseline servers (default: one per CPU, as peer-runtime).
    #[arg(long)]
    server_threads: Option<usize>,
    /// The seed-server binary (default: target/release/examples/seed-server).
    #[arg(long)]
    seed_server: Option<PathBuf>,
    /// An extra argument for the seed-server (repeatable).
    #[arg(long = "seed-server-arg", allow_hyphen_values = true)]
    seed_server_args: Vec<String>,
    /// Write every result (per round, medians, ratios, goals) to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write medians, ratios and goals as tab-separated lines to this file.
    #[arg(long)]
    tsv: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct WorkerArgs {
    #[arg(long)]
    kind: String,
    #[arg(long = "target", required = true)]
    targets: Vec<SocketAddr>,
    #[arg(long)]
    count: usize,
    #[arg(long, default_value_t = 256)]
    window: usize,
    #[arg(long, default_value_t = 0)]
    nonce_base: u64,
    /// Connect from this local address (any free port).
    #[arg(long)]
    source: Option<std::net::IpAddr>,
    /// raw: connect with the handshake's traffic instead of waiting for a hello.
    #[arg(long)]
    handshake_sized: bool,
    /// ours: connect with BIP324 v2.
    #[arg(long)]
    v2: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// raw, tokio or peer-tokio.
    kind: String,
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    threads: Option<usize>,
    /// raw: do not write the hello byte on accept (handshake-sized connects).
    #[arg(long)]
    no_greeting: bool,
    /// peer-tokio: most peers held at once.
    #[arg(long, default_value_t = 100_000)]
    max_peers: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.sub {
        Some(Sub::Worker(w)) => {
            benches::spawn::exit_with_parent();
            worker(w)
        }
        Some(Sub::Serve(s)) => {
            benches::spawn::exit_with_parent();
            serve(s)
        }
        None => match benches::signals::install() {
            Ok(()) => run(cli.run),
            Err(e) => Err(format!("signal handlers: {e}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn kind(name: &str) -> Result<Kind, String> {
    Kind::parse(name)
        .ok_or_else(|| format!("unknown system {name:?} (ours, ours-nobp, raw, tokio, peer-tokio)"))
}

fn worker(w: WorkerArgs) -> Result<(), String> {
    let plan = Plan {
        targets: w.targets,
        count: w.count,
        window: w.window,
        nonce_base: w.nonce_base,
        source: w.source,
        v2: w.v2,
    };
    benches::worker::run(kind(&w.kind)?, plan, w.handshake_sized).map_err(|e| e.to_string())
}

fn serve(s: ServeArgs) -> Result<(), String> {
    let threads = s.threads.unwrap_or_else(benches::cpus);
    match kind(&s.kind)? {
        Kind::Raw => benches::raw::serve(s.listen, threads, !s.no_greeting),
        Kind::Tokio => benches::btc::serve(s.listen, threads),
        Kind::PeerTokio => benches::peer_tokio::serve(s.listen, threads, s.max_peers),
        Kind::Ours | Kind::OursNoBp => {
            return Err("ours is the seed-server example of peer-runtime".into())
        }
    }
    .map_err(|e| e.to_string())
}

/// Descriptors kept back from each process's limit for everything that is not a peer.
const FD_RESERVE: usize = 300;
/// Peers per worker process by default: well under the 20,000 descriptors a process may
/// hold here, and few enough that one worker's single thread is not the bottleneck.
const PEERS_PER_WORKER: usize = 9_000;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
}

fn run(a: RunArgs) -> Result<(), String> {
    let systems = if !a.systems.is_empty() {
        a.systems
            .iter()
            .map(|s| kind(s))
            .collect::<Result<Vec<_>, _>>()?
    } else if a.baseline {
        Kind::BASELINE.to_vec()
    } else {
        vec![Kind::Ours]
    };
    let mut phases = Vec::new();
    for p in &a.phases {
        phases.push(match p.as_str() {
            "connect" => Command::Connect,
            "hold" => Command::Hold {
                duration: secs(a.hold_seconds),
            },
            "ping" => Command::Ping {
                duration: secs(a.seconds),
            },
            "flood" => Command::Flood {
                duration: secs(a.seconds),
                batch: a.batch.max(1),
            },
            other => return Err(format!("unknown phase {other:?} ({})", PHASES.join(", "))),
        });
    }
    if phases.first() != Some(&Command::Connect) {
        return Err("the first phase must be connect".into());
    }
    // Every process here (the server, each worker) may hold `open_files` descriptors;
    // keep a reserve for listeners, io_uring, pipes and libraries.
    let open_files = benches::procfs::Machine::detect()
        .open_files
        .unwrap_or(1024) as usize;
    let budget = open_files.saturating_sub(FD_RESERVE).max(1);
    let mut notes = Vec::new();
    let mut peers = a.peers.max(1);
    if a.targets.is_empty() && peers > budget {
        notes.push(format!(
            "{} peers asked, but a process may open only {open_files} files here \
             (`ulimit -n`); measured {budget} peers",
            a.peers
        ));
        peers = budget;
    }
    let per_worker = budget.min(PEERS_PER_WORKER);
    let workers = a
        .workers
        .unwrap_or(peers.div_ceil(per_worker))
        .max(a.sources.min(peers))
        .max(1);
    if peers.div_ceil(workers) > budget {
        return Err(format!(
            "{peers} peers over {workers} workers is more than one process may hold \
             ({open_files} descriptors); use --workers {}",
            peers.div_ceil(per_worker)
        ));
    }
    let ports = benches::procfs::ephemeral_ports().unwrap_or(28_232);
    // Spawned servers listen on 127.0.0.1.
    let spawned = [SocketAddr::from(([127, 0, 0, 1], 0))];
    let targets = if a.targets.is_empty() {
        &spawned[..]
    } else {
        &a.targets[..]
    };
    let sources = benches::run::source_addresses(a.sources, peers, workers, ports, targets)?;
    if !sources.is_empty() {
        notes.push(format!(
            "workers connect from {} source addresses ({} … {}), one per worker in turn",
            sources.len(),
            sources[0],
            sources[sources.len() - 1]
        ));
    }
    // An external target is labelled by what it is, not as peerwire.
    let target_label = match (a.target_label.clone(), a.targets.first()) {
        (Some(l), _) => Some(l),
        (None, Some(t)) => Some(
            match benches::probe::user_agent(
                *t,
                wire_codec::Network::Regtest,
                Duration::from_secs(10),
            ) {
                Ok(ua) => format!("{ua} at {t}"),
                Err(e) => {
                    notes.push(format!("the target's user agent is unknown ({e})"));
                    format!("target {t}")
                }
            },
        ),
        (None, None) => None,
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    let cfg = RunConfig {
        peers,
        targets: a.targets,
        server_pid: a.server_pid,
        target_label,
        fresh_target: a.fresh_target,
        flood_window: a.flood_window,
        systems,
        rounds: a.rounds,
        phases,
        workers,
        client: a.client.as_deref().map(kind).transpose()?,
        window: a.window.max(1),
        sources,
        raw_handshake: a.raw_handshake,
        v2: a.v2,
        server_threads: a.server_threads.unwrap_or_else(benches::cpus),
        seed_server: a.seed_server,
        seed_server_args: a.seed_server_args,
        progress: !a.quiet,
        notes,
        command: std::env::args()
            .map(|s| if s.contains(' ') { format!("'{s}'") } else { s })
            .collect::<Vec<_>>()
            .join(" "),
    };
    let report = benches::run::run(&cfg).map_err(|e| e.to_string())?;
    println!("{}", report.render());
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("results written to {}", path.display());
    }
    if let Some(path) = a.tsv {
        std::fs::write(&path, report.to_tsv())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
