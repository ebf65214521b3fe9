//! A whole peer-bench run: servers up, each system measured per round, servers down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::procfs::Machine;
use crate::protocol::Command;
use crate::report::RunReport;
use crate::spawn::{free_port, Server};
use crate::suite::{self, SuiteConfig, SuiteError, SuiteResult};
use crate::Kind;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Peers per system.
    pub peers: usize,
    /// Our server's addresses; empty means "start the seed-server ourselves".
    pub targets: Vec<SocketAddr>,
    /// Our server's pid when it was started by someone else.
    pub server_pid: Option<u32>,
    /// What the `--target` is, for the report (`None` without targets).
    pub target_label: Option<String>,
    /// The `--target` was started just before this run: its memory growth in the first
    /// suite against it is a cost per idle peer.
    pub fresh_target: bool,
    /// `--flood-window`: unanswered `inv` messages per flooding connection.
    pub flood_window: Option<u32>,
    /// The systems to measure, in order (rotated every round).
    pub systems: Vec<Kind>,
    /// Rounds (each system once per round).
    pub rounds: usize,
    /// The phases, in order.
    pub phases: Vec<Command>,
    /// Worker processes per system.
    pub workers: usize,
    /// The client for the ours and tokio servers (`None`: each system's own client).
    pub client: Option<Kind>,
    /// Connects in flight per worker.
    pub window: usize,
    /// Local addresses the workers connect from (see [`source_addresses`]; empty: the
    /// kernel's choice).
    pub sources: Vec<IpAddr>,
    /// The raw system's connects exchange the handshake's traffic
    /// ([`crate::raw::HANDSHAKE_SIZES`]) instead of TCP connect + accept alone.
    pub raw_handshake: bool,
    /// Our clients connect with BIP324 v2 (the seed-server accepts both).
    pub v2: bool,
    /// Executor / worker threads of the baseline servers.
    pub server_threads: usize,
    /// The seed-server binary (found beside peer-bench when `None`).
    pub seed_server: Option<PathBuf>,
    /// Extra arguments for the seed-server.
    pub seed_server_args: Vec<String>,
    /// Draw progress bars.
    pub progress: bool,
    /// Remarks for the report (e.g. peers reduced to the descriptor limit).
    pub notes: Vec<String>,
    /// The command line, for the report.
    pub command: String,
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The loopback addresses the client workers connect from: empty (the kernel's
/// choice) or `127.0.0.1` … `127.0.0.n`, worker `w` using the `w % n`-th.
///
/// Why: one local address reaches one server through at most its ephemeral port range
/// (`ports`, 28,232 by default; TIME_WAIT sockets of earlier rounds hold ports too): past
/// three quarters of it per target, the workers must spread over `127.0.0.x` (every
/// `127/8` address is this machine's). `asked` > 0 sets `n` — worth it well before the
/// range runs out (the kernel's search for a free port slows as one address's
/// connections grow: 19,000 connections from one address made 3,928–4,404 handshakes/s here,
/// from three 15,089–17,436), but not the default: a connection bound to a chosen port can
/// meet the server's TIME_WAIT socket of an earlier connection on the same four-tuple
/// (the server ports of earlier rounds come back), whose PAWS check drops the SYN
/// (`TcpExtPAWSTimewait`) and costs a 1 s retransmission; the kernel's own port choice
/// at `connect` avoids those. One worker uses one address, so `n` is at most
/// `workers`. Targets elsewhere cannot be reached from `127.0.0.x`: asking to spread,
/// or needing more than one port range per target, is then an error.
///
/// ```
/// use benches::run::source_addresses;
/// let lo = ["127.0.0.1:8333".parse().unwrap()];
/// assert!(source_addresses(0, 19_000, 3, 28_232, &lo).unwrap().is_empty());
/// let three = source_addresses(0, 60_000, 7, 28_232, &lo).unwrap();
/// assert_eq!(three.len(), 3);
/// assert_eq!(three[2].to_string(), "127.0.0.3");
/// assert_eq!(source_addresses(3, 19_000, 3, 28_232, &lo).unwrap().len(), 3);
/// ```
pub fn source_addresses(
    asked: usize,
    peers: usize,
    workers: usize,
    ports: usize,
    targets: &[SocketAddr],
) -> Result<Vec<IpAddr>, String> {
    let per_address = (ports * 3 / 4).max(1);
    let per_target = peers.div_ceil(targets.len().max(1));
    let needed = per_target.div_ceil(per_address);
    let n = if asked > 0 { asked } else { needed }
        .min(workers.max(1))
        .min(254);
    if n <= 1 {
        return Ok(Vec::new());
    }
    if let Some(t) = targets.iter().find(|t| !t.ip().is_loopback()) {
        return Err(format!(
            "spreading connections over {n} 127.0.0.x source addresses needs loopback \
             targets, and {t} is not"
        ));
    }
    Ok((1..=n as u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect())
}

fn start_server(cfg: &RunConfig, kind: Kind) -> Result<Server, SuiteError> {
    let port = free_port(LOCALHOST).map_err(|e| SuiteError(format!("no free port: {e}")))?;
    let addr = SocketAddr::new(LOCALHOST, port);
    let err = |e: std::io::Error| SuiteError(format!("starting the {} server: {e}", kind.name()));
    match kind {
        Kind::Ours | Kind::OursNoBp => {
            let bin = cfg
                .seed_server
                .clone()
                .or_else(crate::spawn::find_seed_server)
                .ok_or_else(|| {
                    SuiteError(
                        "the seed-server binary was not found; build it first with \
                         `cargo build --release -p peerwire-runtime --example seed-server` \
                         (or pass --seed-server PATH)"
                            .into(),
                    )
                })?;
            let mut args = vec![
                "--network".to_string(),
                "regtest".into(),
                "--listen".into(),
                addr.to_string(),
                "--max-peers".into(),
                (cfg.peers + 64).to_string(),
                // Every client comes from loopback, one network group: the per-group
                // inbound limit (an eighth of the peers by default) would refuse most.
                "--max-per-netgroup".into(),
                (cfg.peers + 64).to_string(),
                // A safety net: should peer-bench be killed outright, the server stops
                // by itself once the longest this suite could take has passed.
                "--duration".into(),
                suite_limit(cfg).as_secs().to_string(),
            ];
            if kind == Kind::OursNoBp {
                args.push("--no-backpressure".into());
            }
            args.extend(cfg.seed_server_args.iter().cloned());
            Server::start("seed-server", &bin, &args, addr).map_err(err)
        }
        Kind::Raw | Kind::Tokio | Kind::PeerTokio => {
            let exe = std::env::current_exe().map_err(err)?;
            let mut args = vec![
                "serve".to_string(),
                kind.name().into(),
                "--listen".into(),
                addr.to_string(),
                "--threads".into(),
                cfg.server_threads.to_string(),
            ];
            if kind == Kind::Raw && cfg.raw_handshake {
                args.push("--no-greeting".into());
            }
            if kind == Kind::PeerTokio {
                args.extend(["--max-peers".into(), (cfg.peers + 64).to_string()]);
            }
            Server::start(&format!("{} server", kind.name()), &exe, &args, addr).map_err(err)
        }
    }
}

/// An upper bound on one suite's run time (every phase at its limit, plus start-up).
fn suite_limit(cfg: &RunConfig) -> Duration {
    let phases: Duration = cfg
        .phases
        .iter()
        .chain(std::iter::once(&Command::Close))
        .map(|c| suite::phase_limit(cfg.peers, *c))
        .sum();
    phases + Duration::from_secs(120)
}

/// Runs every system for every round and returns the report.
pub fn run(cfg: &RunConfig) -> Result<RunReport, SuiteError> {
    let mut rounds = Vec::new();
    let mut notes = cfg.notes.clone();
    let mut external_suites = 0usize;
    'rounds: for round in 0..cfg.rounds.max(1) {
        let mut results: Vec<SuiteResult> = Vec::new();
        let n = cfg.systems.len();
        for i in 0..n {
            if crate::signals::stop_requested() {
                notes.push(interrupted_note(round, &results));
                if !results.is_empty() {
                    rounds.push(results);
                }
                break 'rounds;
            }
            let kind = cfg.systems[(i + round) % n];
            let external = kind == Kind::Ours && !cfg.targets.is_empty();
            // A spawned server is new for every suite; an external one only if the user
            // says it was just started, and then only in its first suite.
            let fresh_server = !external || (cfg.fresh_target && external_suites == 0);
            if external {
                external_suites += 1;
            }
            let server = if external {
                None
            } else {
                Some(start_server(cfg, kind)?)
            };
            let (targets, server_pid) = match &server {
                Some(s) => (vec![s.addr], Some(s.pid())),
                None => (cfg.targets.clone(), cfg.server_pid),
            };
            let client = match (kind, cfg.client) {
                (
                    Kind::Ours | Kind::Tokio | Kind::PeerTokio,
                    Some(c @ (Kind::Ours | Kind::Tokio)),
                ) => c,
                // peer-tokio has no client of its own: peerwire's client loads it, as
                // it loads both variants of ours.
                (Kind::PeerTokio | Kind::OursNoBp, _) => Kind::Ours,
                _ => kind,
            };
            let suite_cfg = SuiteConfig {
                kind,
                client,
                targets,
                server_pid,
                peers: cfg.peers,
                workers: cfg.workers,
                window: cfg.window,
                sources: cfg.sources.clone(),
                raw_handshake: cfg.raw_handshake,
                v2: cfg.v2,
                phases: cfg.phases.clone(),
                progress: cfg.progress,
                fresh_server,
                flood_window: cfg.flood_window,
            };
            if cfg.progress {
                eprintln!(
                    "round {}/{}: {} ({} peers, {} clients)",
                    round + 1,
                    cfg.rounds.max(1),
                    match (&cfg.target_label, external) {
                        (Some(t), true) => t.as_str(),
                        _ => kind.label(),
                    },
                    cfg.peers,
                    client.name()
                );
            }
            // The server goes first at the end (before the clients close), so the
            // closing handshakes leave their TIME_WAIT sockets on the server's side, not
            // in the clients' ephemeral port range that the next suite needs.
            let mut server = server;
            let mut said = None;
            let outcome = suite::run(&suite_cfg, || {
                said = server.as_ref().and_then(|s| {
                    s.guard
                        .tail()
                        .into_iter()
                        .rev()
                        .find(|l| l.contains("peers="))
                });
                server = None;
            });
            if outcome.is_err() && crate::signals::stop_requested() {
                // The interrupted system is left out; the guards stop its processes.
                notes.push(interrupted_note(round, &results));
                if !results.is_empty() {
                    rounds.push(results);
                }
                break 'rounds;
            }
            let result = outcome.map_err(|e| match &server {
                Some(s) => SuiteError(format!(
                    "{e}\n{} output (last lines):\n{}",
                    s.guard.name(),
                    s.guard.tail().join("\n")
                )),
                None => e,
            })?;
            if cfg.progress {
                eprintln!("  {}", one_line(&result));
                // The server's own view: its last statistics line.
                if let Some(line) = said {
                    eprintln!("  seed-server said: {line}");
                }
            }
            results.push(result);
            drop(server);
            // Let the kernel finish closing the last run's sockets.
            std::thread::sleep(Duration::from_millis(500));
        }
        rounds.push(results);
    }
    Ok(RunReport {
        machine: Machine::detect(),
        command: cfg.command.clone(),
        target: cfg.target_label.clone(),
        notes,
        peers: cfg.peers,
        workers: cfg.workers,
        raw_handshake: cfg.raw_handshake,
        rounds,
    })
}

fn interrupted_note(round: usize, done: &[SuiteResult]) -> String {
    format!(
        "interrupted by a signal in round {}: results of the systems finished before it \
         ({} in that round)",
        round + 1,
        done.len()
    )
}

/// A one-line summary of a system's result, printed as the run goes.
pub fn one_line(s: &SuiteResult) -> String {
    let mut parts = Vec::new();
    for p in &s.phases {
        let o = &p.outcome;
        let part = match o.phase.as_str() {
            "connect" => format!(
                "{} handshaken at {:.0}/s (p99 {:.1} ms)",
                o.ok,
                p.rate(),
                o.latency.percentile(99.0) as f64 / 1000.0
            ),
            "ping" => format!("{:.0} round trips/s", p.rate()),
            "flood" => format!("{:.0} inv/s", p.rate()),
            "hold" => match s.kib_per_idle_peer() {
                Some(k) => format!("{k:.1} KiB/idle peer"),
                None => "held".into(),
            },
            _ => continue,
        };
        let overflows = match p.listen_overflows {
            Some(n) if n > 0 => format!(" [{n} SYNs dropped: listen queue full]"),
            _ => String::new(),
        };
        let failed = if o.failed > 0 {
            format!(
                " [{} failed: {}]",
                o.failed,
                o.first_error.clone().unwrap_or_default()
            )
        } else {
            String::new()
        };
        parts.push(format!("{part}{failed}{overflows}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::source_addresses;
    use std::net::SocketAddr;

    fn lo(n: usize) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 18_444 + i as u16)))
            .collect()
    }

    #[test]
    fn one_address_while_one_port_range_suffices() {
        assert!(source_addresses(0, 21_174, 3, 28_232, &lo(1))
            .unwrap()
            .is_empty());
        assert_eq!(
            source_addresses(0, 21_175, 3, 28_232, &lo(1))
                .unwrap()
                .len(),
            2
        );
        // Two targets: each gets half the peers, one range each is enough.
        assert!(source_addresses(0, 40_000, 5, 28_232, &lo(2))
            .unwrap()
            .is_empty());
        // A narrow port range needs more addresses for the same peers.
        assert_eq!(
            source_addresses(0, 10_000, 8, 4_000, &lo(1)).unwrap().len(),
            4
        );
    }

    #[test]
    fn elsewhere_one_address_unless_one_port_range_is_too_few() {
        let remote = ["192.0.2.7:8333".parse().unwrap()];
        assert!(source_addresses(0, 18_000, 2, 28_232, &remote)
            .unwrap()
            .is_empty());
        // More peers per target than one range holds: spreading is needed and impossible.
        let err = source_addresses(0, 30_000, 4, 28_232, &remote).unwrap_err();
        assert!(err.contains("192.0.2.7:8333"), "{err}");
        // A narrow port range is too few sooner.
        assert!(source_addresses(0, 4_000, 4, 4_000, &remote).is_err());
    }

    #[test]
    fn asked_counts_are_kept_but_never_exceed_the_workers() {
        let four = source_addresses(4, 100, 6, 28_232, &lo(1)).unwrap();
        let shown: Vec<String> = four.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        assert_eq!(
            source_addresses(4, 100, 2, 28_232, &lo(1)).unwrap().len(),
            2
        );
        assert!(source_addresses(1, 100, 2, 28_232, &lo(1))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn asking_to_spread_needs_loopback_targets() {
        let remote = ["192.0.2.7:8333".parse().unwrap()];
        let err = source_addresses(3, 100, 3, 28_232, &remote).unwrap_err();
        assert!(err.contains("192.0.2.7:8333"), "{err}");
    }
}
