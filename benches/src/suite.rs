//! One system under test, measured: its workers, its phases, its numbers.
//!
//! The coordinator starts the workers (each a `peer-bench worker` process holding a
//! share of the peers), sends every phase to all of them at once, follows their
//! progress, and merges their outcomes with what `/proc` says about the server (CPU time,
//! resident memory) and the workers (CPU time).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::histogram::Histogram;
use crate::procfs;
use crate::protocol::{Command, Outcome, Report};
use crate::spawn::ChildGuard;
use crate::Kind;

/// How one system is measured.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The system (its server kind).
    pub kind: Kind,
    /// The client kind (normally the same as `kind`; ours and tokio speak the same
    /// protocol, so either client can load either server, which tells server costs
    /// from client costs).
    pub client: Kind,
    /// Server addresses.
    pub targets: Vec<SocketAddr>,
    /// The server's pid, for its memory and CPU time (unknown for a remote target).
    pub server_pid: Option<u32>,
    /// Peers in all.
    pub peers: usize,
    /// Worker processes.
    pub workers: usize,
    /// Connects in flight per worker.
    pub window: usize,
    /// Local addresses the workers connect from, worker `w` from `sources[w % len]`
    /// (empty: the kernel's choice).
    pub sources: Vec<IpAddr>,
    /// Raw clients connect with the handshake's traffic.
    pub raw_handshake: bool,
    /// Our clients connect with BIP324 v2.
    pub v2: bool,
    /// The phases, in order (without the final close).
    pub phases: Vec<Command>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The server is fresh (started for this suite, or a `--fresh-target` in its first
    /// suite): only then is its memory growth a cost per idle peer. A server that held
    /// peers before keeps freed memory in its allocator, and growth from there says
    /// nothing about a peer's cost.
    pub fresh_server: bool,
    /// `inv` messages a flooding connection may have unanswered (`None`: the default,
    /// [`crate::load::FLOOD_WINDOW`]).
    pub flood_window: Option<u32>,
}

/// One phase's merged numbers.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    /// The merged worker outcomes.
    pub outcome: Outcome,
    /// CPU time the server spent during the phase.
    pub server_cpu: Option<Duration>,
    /// CPU time all workers spent during the phase.
    pub client_cpu: Duration,
    /// The server's resident memory at the end of the phase (KiB).
    pub server_rss_kib: Option<u64>,
    /// Wall time of the phase as the coordinator saw it.
    pub wall: Duration,
    /// Connections the kernel dropped for a full listen queue during the phase
    /// (machine-wide counter).
    pub listen_overflows: Option<u64>,
}

impl PhaseResult {
    /// Operations per second of phase time (handshakes, round trips or messages).
    pub fn rate(&self) -> f64 {
        per_second(self.outcome.ops, self.outcome.elapsed)
    }

    /// Messages per CPU-second of server and clients together: the per-core rate. A
    /// round trip is two messages.
    pub fn messages_per_cpu_second(&self) -> Option<f64> {
        let msgs = match self.outcome.phase.as_str() {
            "ping" => self.outcome.ops * 2,
            _ => self.outcome.ops,
        };
        let cpu = self.server_cpu? + self.client_cpu;
        (cpu > Duration::ZERO).then(|| msgs as f64 / cpu.as_secs_f64())
    }

    /// Bytes written by the clients per second.
    pub fn bytes_per_second(&self) -> f64 {
        per_second(self.outcome.bytes, self.outcome.elapsed)
    }
}

fn per_second(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Everything measured for one system in one round.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// The system.
    pub kind: Kind,
    /// Peers asked for.
    pub peers: usize,
    /// The server's resident memory before any peer connected (KiB).
    pub rss_start_kib: Option<u64>,
    /// Phase results by name, in order.
    pub phases: Vec<PhaseResult>,
}

impl SuiteResult {
    /// The result of the phase called `name`.
    pub fn phase(&self, name: &str) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| p.outcome.phase == name)
    }

    /// Peers handshaken in the connect phase.
    pub fn peers_connected(&self) -> u64 {
        self.phase("connect").map(|p| p.outcome.ok).unwrap_or(0)
    }

    /// Server resident memory per idle peer (KiB), from the start to the end of the
    /// hold phase (or of the connect phase without one); `None` unless the server was
    /// fresh ([`SuiteConfig::fresh_server`]).
    pub fn kib_per_idle_peer(&self) -> Option<f64> {
        let start = self.rss_start_kib?;
        let held = self.phase("hold").or_else(|| self.phase("connect"))?;
        let end = held.server_rss_kib?;
        let peers = held.outcome.ok.max(1);
        Some((end.saturating_sub(start)) as f64 / peers as f64)
    }
}

/// An error that ends a suite.
#[derive(Debug)]
pub struct SuiteError(pub String);

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SuiteError {}

enum FromWorker {
    Line(usize, Report),
    Gone(usize),
}

struct Worker {
    guard: ChildGuard,
    stdin: std::process::ChildStdin,
}

/// Runs one system's phases with its workers and returns its numbers. `before_close`
/// runs after the last measured phase, before the workers close their connections
/// (the caller stops the server there).
pub fn run(cfg: &SuiteConfig, before_close: impl FnOnce()) -> Result<SuiteResult, SuiteError> {
    let exe = std::env::current_exe().map_err(|e| SuiteError(format!("current_exe: {e}")))?;
    let rss_start_kib = cfg
        .server_pid
        .filter(|_| cfg.fresh_server)
        .and_then(procfs::rss_kib);
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    let n_workers = cfg.workers.clamp(1, cfg.peers.max(1));
    for w in 0..n_workers {
        let count = cfg.peers / n_workers + usize::from(w < cfg.peers % n_workers);
        let mut args = vec![
            "worker".to_string(),
            "--kind".into(),
            cfg.client.name().into(),
            "--count".into(),
            count.to_string(),
            "--window".into(),
            cfg.window.to_string(),
            "--nonce-base".into(),
            ((w as u64) << 48).to_string(),
        ];
        if cfg.raw_handshake && cfg.client == Kind::Raw {
            args.push("--handshake-sized".into());
        }
        if cfg.v2 && cfg.client == Kind::Ours {
            args.push("--v2".into());
        }
        if !cfg.sources.is_empty() {
            args.push("--source".into());
            args.push(cfg.sources[w % cfg.sources.len()].to_string());
        }
        // Rotate the targets per worker so every address gets its share.
        for i in 0..cfg.targets.len() {
            args.push("--target".into());
            args.push(cfg.targets[(i + w) % cfg.targets.len()].to_string());
        }
        let mut child = Process::new(&exe);
        if let Some(w) = cfg.flood_window {
            child.env(crate::load::FLOOD_WINDOW_ENV, w.to_string());
        }
        let child = child
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SuiteError(format!("starting worker: {e}")))?;
        let mut guard = ChildGuard::new(child, format!("{} worker {w}", cfg.kind.name()));
        let stdin = guard
            .child_mut()
            .stdin
            .take()
            .ok_or_else(|| SuiteError("worker stdin".into()))?;
        let stdout = guard
            .child_mut()
            .stdout
            .take()
            .ok_or_else(|| SuiteError("worker stdout".into()))?;
        if let Some(err) = guard.child_mut().stderr.take() {
            guard.keep_tail(err);
        }
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(r) = Report::parse(&line) {
                    if tx.send(FromWorker::Line(w, r)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(FromWorker::Gone(w));
        });
        workers.push(Worker { guard, stdin });
    }
    drop(tx);

    // Every worker says it is ready.
    let mut ready = 0;
    while ready < workers.len() {
        match recv(&rx, Duration::from_secs(30), &workers)? {
            FromWorker::Line(_, Report::Ready) => ready += 1,
            FromWorker::Line(w, Report::Fatal(m)) => return Err(worker_failed(&workers, w, &m)),
            FromWorker::Line(..) => {}
            FromWorker::Gone(w) => return Err(worker_failed(&workers, w, "exited")),
        }
    }

    let mut phases = Vec::new();
    for cmd in &cfg.phases {
        phases.push(run_phase(cfg, *cmd, &mut workers, &rx)?);
    }
    before_close();
    run_phase(cfg, Command::Close, &mut workers, &rx)?;
    for w in &mut workers {
        // Let workers exit on their own (they are done); the guard reaps them.
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.guard.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(SuiteResult {
        kind: cfg.kind,
        peers: cfg.peers,
        rss_start_kib,
        phases,
    })
}

fn recv(
    rx: &mpsc::Receiver<FromWorker>,
    timeout: Duration,
    workers: &[Worker],
) -> Result<FromWorker, SuiteError> {
    rx.recv_timeout(timeout).map_err(|_| {
        let tails: Vec<String> = workers
            .iter()
            .map(|w| format!("{}: {}", w.guard.name(), w.guard.tail().join(" | ")))
            .collect();
        SuiteError(format!(
            "no word from the workers for {timeout:?}; their stderr: {}",
            tails.join("; ")
        ))
    })
}

fn worker_failed(workers: &[Worker], w: usize, why: &str) -> SuiteError {
    let tail = workers
        .get(w)
        .map(|x| x.guard.tail().join("\n"))
        .unwrap_or_default();
    SuiteError(format!("worker {w} failed ({why}); its stderr:\n{tail}"))
}

fn workers_cpu(workers: &[Worker]) -> Duration {
    workers
        .iter()
        .filter_map(|w| procfs::cpu_time(w.guard.pid()))
        .sum()
}

/// The longest a phase may take before the run is declared stuck.
pub fn phase_limit(peers: usize, cmd: Command) -> Duration {
    match cmd {
        Command::Connect => Duration::from_secs(60) + Duration::from_millis(peers as u64 * 5),
        Command::Ping { duration }
        | Command::Hold { duration }
        | Command::Flood { duration, .. } => duration + Duration::from_secs(60),
        Command::Close => Duration::from_secs(60),
    }
}

fn bar(cfg: &SuiteConfig, cmd: Command) -> ProgressBar {
    let (len, template) = match cmd {
        Command::Connect => (
            cfg.peers as u64,
            "{prefix:>22} {wide_bar} {pos}/{len} peers ({per_sec}) {msg}",
        ),
        Command::Ping { duration }
        | Command::Flood { duration, .. }
        | Command::Hold { duration } => (
            duration.as_millis() as u64,
            "{prefix:>22} {wide_bar} {elapsed} {msg}",
        ),
        Command::Close => (0, "{prefix:>22} {msg}"),
    };
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !cfg.progress {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb.set_prefix(format!("{} {}", cfg.kind.name(), cmd.name()));
    pb
}

fn run_phase(
    cfg: &SuiteConfig,
    cmd: Command,
    workers: &mut [Worker],
    rx: &mpsc::Receiver<FromWorker>,
) -> Result<PhaseResult, SuiteError> {
    let overflows0 = procfs::listen_overflows();
    let server_cpu0 = cfg.server_pid.and_then(procfs::cpu_time);
    let client_cpu0 = workers_cpu(workers);
    let line = cmd.to_line();
    let start = Instant::now();
    for i in 0..workers.len() {
        let w = &mut workers[i];
        if let Err(e) = writeln!(w.stdin, "{line}").and_then(|_| w.stdin.flush()) {
            return Err(worker_failed(workers, i, &format!("stdin: {e}")));
        }
    }
    let pb = bar(cfg, cmd);
    let mut progress = vec![0u64; workers.len()];
    let mut outcomes: Vec<Option<Outcome>> = vec![None; workers.len()];
    let limit = phase_limit(cfg.peers, cmd);
    while outcomes.iter().any(Option::is_none) {
        if crate::signals::stop_requested() {
            pb.abandon();
            return Err(SuiteError(format!(
                "{} phase of {} interrupted",
                cmd.name(),
                cfg.kind.name()
            )));
        }
        if start.elapsed() > limit {
            pb.abandon();
            return Err(SuiteError(format!(
                "{} phase of {} took longer than {limit:?}",
                cmd.name(),
                cfg.kind.name()
            )));
        }
        let msg = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(SuiteError("every worker is gone".into()))
            }
        };
        match msg {
            Some(FromWorker::Line(w, Report::Progress(n))) => {
                if let Some(p) = progress.get_mut(w) {
                    *p = n;
                }
            }
            Some(FromWorker::Line(w, Report::Done(o))) => {
                if let Some(slot) = outcomes.get_mut(w) {
                    *slot = Some(o);
                }
            }
            Some(FromWorker::Line(w, Report::Fatal(m))) => {
                return Err(worker_failed(workers, w, &m))
            }
            Some(FromWorker::Line(_, Report::Ready)) => {}
            Some(FromWorker::Gone(w)) if outcomes.get(w).is_some_and(Option::is_none) => {
                return Err(worker_failed(workers, w, "exited during a phase"));
            }
            Some(FromWorker::Gone(_)) | None => {}
        }
        let total: u64 = progress.iter().sum();
        match cmd {
            Command::Connect => pb.set_position(total),
            Command::Hold { .. } => pb.set_position(start.elapsed().as_millis() as u64),
            Command::Ping { .. } | Command::Flood { .. } => {
                pb.set_position(start.elapsed().as_millis() as u64);
                let unit = if matches!(cmd, Command::Ping { .. }) {
                    "round trips"
                } else {
                    "inv messages"
                };
                pb.set_message(format!("{} {unit}", thousands(total)));
            }
            Command::Close => {}
        }
    }
    let wall = start.elapsed();
    pb.finish_and_clear();
    let server_cpu = match (server_cpu0, cfg.server_pid.and_then(procfs::cpu_time)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let client_cpu = workers_cpu(workers).saturating_sub(client_cpu0);
    let server_rss_kib = cfg.server_pid.and_then(procfs::rss_kib);
    let listen_overflows = match (overflows0, procfs::listen_overflows()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(PhaseResult {
        outcome: merge(cmd.name(), outcomes.into_iter().flatten()),
        server_cpu,
        client_cpu,
        server_rss_kib,
        wall,
        listen_overflows,
    })
}

/// Adds up the workers' outcomes of one phase: counts add, elapsed is the longest,
/// latencies merge.
pub fn merge(phase: &str, outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    let mut m = Outcome {
        phase: phase.to_string(),
        latency: Histogram::default(),
        ..Outcome::default()
    };
    for o in outcomes {
        m.ok += o.ok;
        m.failed += o.failed;
        m.ops += o.ops;
        m.bytes += o.bytes;
        m.elapsed = m.elapsed.max(o.elapsed);
        m.latency.merge(&o.latency);
        if m.first_error.is_none() {
            m.first_error = o.first_error;
        }
    }
    m
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_keeps_the_longest_time() {
        let mut h = Histogram::default();
        h.record(5);
        let a = Outcome {
            phase: "ping".into(),
            ok: 2,
            failed: 1,
            ops: 10,
            bytes: 320,
            elapsed: Duration::from_millis(900),
            latency: h.clone(),
            first_error: None,
        };
        let b = Outcome {
            elapsed: Duration::from_millis(1000),
            first_error: Some("reset".into()),
            ..a.clone()
        };
        let m = merge("ping", [a, b]);
        assert_eq!((m.ok, m.failed, m.ops, m.bytes), (4, 2, 20, 640));
        assert_eq!(m.elapsed, Duration::from_millis(1000));
        assert_eq!(m.latency.count(), 2);
        assert_eq!(m.first_error.as_deref(), Some("reset"));
        let p = PhaseResult {
            outcome: m,
            server_cpu: Some(Duration::from_millis(500)),
            client_cpu: Duration::from_millis(500),
            ..PhaseResult::default()
        };
        assert_eq!(p.rate(), 20.0);
        // 20 round trips = 40 messages in one CPU-second.
        assert_eq!(p.messages_per_cpu_second(), Some(40.0));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
