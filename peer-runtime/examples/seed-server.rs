//! A seed server: accepts peers, completes handshakes, answers `getaddr` with a random
//! sample of the addresses it knows, and prints a statistics line every few seconds.
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example seed-server -- --network regtest --listen 127.0.0.1:PORT [--addrs FILE] [--max-peers N]
//! ```
//!
//! Known addresses come from `--addrs` (one `host:port` per line; `#` starts a comment)
//! and from `addr`/`addrv2` messages peers send. Pings are answered by peer-core. The
//! statistics line shows peers (handshaken), handshakes per second, messages and bytes
//! in and out per second, and resident memory (from `/proc/self/statm`) with the growth
//! since start divided by the handshaken peers.
//!
//! One port serves both transports: the first 16 bytes of each connection decide between
//! v1 and BIP324 v2 (NODE_P2P_V2 is advertised); `--v1-only` turns v2 off.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use peer_core::{Listener, Peer};
use peer_helpers::push_addresses;
use peer_runtime::{Limits, Runtime, RuntimeStats};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use wire_codec::message::{Addr, AddrV2, AddrV2Entry, ServiceFlags};
use wire_codec::Network;

#[path = "support/ops.rs"]
mod ops;

#[derive(Parser, Debug)]
#[command(
    name = "seed-server",
    version,
    about = "Accept peers and answer getaddr with known addresses"
)]
struct Args {
    /// Network: mainnet, testnet3, testnet4, signet, regtest, lbry-mainnet, lbry-testnet, lbry-regtest.
    #[arg(long, default_value = "regtest")]
    network: Network,
    /// Address to listen on (every executor binds it with SO_REUSEPORT).
    #[arg(long)]
    listen: SocketAddr,
    /// File of known addresses, one host:port per line.
    #[arg(long)]
    addrs: Option<std::path::PathBuf>,
    /// Most peers at once (default: the descriptor limit minus a reserve).
    #[arg(long)]
    max_peers: Option<usize>,
    /// Most inbound peers per IP address (default: no limit).
    #[arg(long)]
    max_per_ip: Option<usize>,
    /// Serve v1 only (v2 off, NODE_P2P_V2 not advertised).
    #[arg(long)]
    v1_only: bool,
    /// Executors (default: one per CPU).
    #[arg(long)]
    executors: Option<usize>,
    /// Seconds between statistics lines.
    #[arg(long, default_value_t = 5)]
    stats_every: u64,
    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long)]
    duration: Option<u64>,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

/// Addresses we know, shared by every peer's listener.
struct AddressBook {
    entries: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    list: Vec<AddrV2Entry>,
    seen: HashSet<(u8, Vec<u8>, u16)>,
}

/// The most addresses the book keeps (learned ones beyond it are dropped).
const BOOK_MAX: usize = 100_000;

impl AddressBook {
    fn add(&self, e: AddrV2Entry) {
        let mut b = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if b.list.len() >= BOOK_MAX {
            return;
        }
        let key = (e.network.0, e.addr.to_vec(), e.port);
        if b.seen.insert(key) {
            b.list.push(e);
        }
    }

    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .list
            .len()
    }
}

/// One peer's listener: answers getaddr, learns addresses.
struct Seed {
    book: Arc<AddressBook>,
    rng: SmallRng,
}

impl Listener for Seed {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        let book = self.book.entries.lock().unwrap_or_else(|p| p.into_inner());
        // addrv2 to peers that asked for it, addr to the others; at most 1,000, a
        // uniformly random sample.
        push_addresses(peer, &book.list, &mut self.rng);
    }

    fn on_addr(&mut self, _peer: &mut Peer, msg: Addr) {
        for a in msg.addresses {
            self.book.add(AddrV2Entry::from_ip(
                a.time.unwrap_or(0),
                a.services,
                a.ip(),
                a.port,
            ));
        }
    }

    fn on_addr_v2(&mut self, _peer: &mut Peer, msg: AddrV2) {
        for a in msg.addresses {
            self.book.add(a);
        }
    }
}

fn load_addrs(path: &std::path::Path, book: &AddressBook) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr: SocketAddr = line
            .parse()
            .map_err(|e| format!("{}:{}: {line:?}: {e}", path.display(), i + 1))?;
        book.add(AddrV2Entry::from_ip(
            now,
            ServiceFlags::NETWORK | ServiceFlags::WITNESS,
            addr.ip(),
            addr.port(),
        ));
        n += 1;
    }
    Ok(n)
}

/// Resident memory in bytes (second field of /proc/self/statm, in pages of 4 KiB — the
/// page size on x86-64 and the default on arm64 Linux). `None` when the file cannot be
/// read, which happens while every descriptor is in use.
fn rss_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
}

fn main() -> ExitCode {
    ops::init_logging();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let book = Arc::new(AddressBook {
        entries: Mutex::new(Book::default()),
    });
    if let Some(path) = &args.addrs {
        let n = load_addrs(path, &book)?;
        println!("loaded {n} addresses from {}", path.display());
    }
    let mut limits = Limits::default();
    if let Some(n) = args.max_peers {
        limits.max_peers = n;
    }
    if let Some(n) = args.max_per_ip {
        limits.max_inbound_per_ip = n;
    }
    let max_peers = limits.max_peers;
    let mut builder = Runtime::builder(args.network)
        .configure(|c| {
            c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
            c.user_agent_name = "seed-server".into();
            c.v2_transport = !args.v1_only;
            c.user_agent_version = env!("CARGO_PKG_VERSION").into();
        })
        .listen(args.listen)
        .limits(limits);
    if let Some(n) = args.executors {
        builder = builder.executors(n);
    }
    let factory_book = book.clone();
    let rt = builder
        .listener_factory(move |h| {
            Box::new(Seed {
                book: factory_book.clone(),
                rng: SmallRng::seed_from_u64(h.id() ^ 0x5eed),
            })
        })
        .start()
        .map_err(|e| e.to_string())?;
    let base_rss = rss_bytes().unwrap_or(0);
    println!(
        "listening on {} ({} executors, max {max_peers} peers, rss {:.1} MiB)",
        rt.local_addr().map_or("?".into(), |a| a.to_string()),
        rt.executors(),
        base_rss as f64 / 1048576.0
    );

    // SIGINT/SIGTERM end the loop; then the runtime stops accepting, disconnects every
    // peer (answering whatever was queued) and joins its executors: exit status 0.
    let signals = ops::shutdown_signals().map_err(|e| format!("signal handlers: {e}"))?;
    let metrics = args.metrics.map(ops::bind_metrics).transpose()?;
    let stop_metrics = std::sync::atomic::AtomicBool::new(false);
    let every = Duration::from_secs(args.stats_every.max(1));
    let started = Instant::now();
    let mut last = (Instant::now(), rt.stats());
    std::thread::scope(|scope| {
        if let Some(listener) = metrics {
            let at = listener.local_addr().map_or("?".into(), |a| a.to_string());
            println!("metrics on http://{at}/metrics");
            let (rt, book, stop) = (&rt, &book, &stop_metrics);
            scope.spawn(move || {
                ops::serve_metrics(listener, stop, || render_metrics(&rt.stats(), book.len()))
            });
        }
        loop {
            let deadline = match args.duration {
                Some(d) => Duration::from_secs(d)
                    .saturating_sub(started.elapsed())
                    .min(every),
                None => every,
            };
            if let Ok(signal) = signals.recv_timeout(deadline) {
                println!("{signal}: shutting down");
                break;
            }
            let now = Instant::now();
            let s = rt.stats();
            print_line(&last.1, &s, now - last.0, base_rss, book.len());
            last = (now, s);
            if let Some(d) = args.duration {
                if started.elapsed() >= Duration::from_secs(d) {
                    break;
                }
            }
        }
        stop_metrics.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let s = rt.stats();
    rt.shutdown();
    println!(
        "stopped: {} peers disconnected, {} handshakes in {:.0} s",
        s.peers,
        s.handshakes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The runtime's counters in Prometheus' text format.
fn render_metrics(s: &RuntimeStats, known: usize) -> String {
    let mut out = String::new();
    let m = &mut out;
    ops::metric(m, "peerwire_peers", "gauge", "Peers connected.", s.peers);
    ops::metric(
        m,
        "peerwire_inbound_peers",
        "gauge",
        "Inbound peers connected.",
        s.inbound,
    );
    ops::metric(
        m,
        "peerwire_handshaken_peers",
        "gauge",
        "Peers past the handshake.",
        s.handshaken,
    );
    ops::metric(
        m,
        "peerwire_handshakes_total",
        "counter",
        "Handshakes completed.",
        s.handshakes,
    );
    ops::metric(
        m,
        "peerwire_accepted_total",
        "counter",
        "Inbound connections accepted.",
        s.accepted,
    );
    ops::metric(
        m,
        "peerwire_refused_total",
        "counter",
        "Inbound connections refused by a limit.",
        s.refused,
    );
    ops::metric(
        m,
        "peerwire_accept_backoffs_total",
        "counter",
        "Accept pauses (descriptors ran out).",
        s.accept_backoffs,
    );
    ops::metric(
        m,
        "peerwire_disconnects_total",
        "counter",
        "Peers that ended.",
        s.disconnects,
    );
    ops::metric(
        m,
        "peerwire_messages_received_total",
        "counter",
        "Messages read.",
        s.messages_in,
    );
    ops::metric(
        m,
        "peerwire_messages_sent_total",
        "counter",
        "Messages written.",
        s.messages_out,
    );
    ops::metric(
        m,
        "peerwire_received_bytes_total",
        "counter",
        "Bytes read.",
        s.bytes_in,
    );
    ops::metric(
        m,
        "peerwire_sent_bytes_total",
        "counter",
        "Bytes written.",
        s.bytes_out,
    );
    ops::metric(
        m,
        "peerwire_known_addresses",
        "gauge",
        "Addresses in the address book.",
        known,
    );
    if let Some(rss) = rss_bytes() {
        ops::metric(
            m,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            rss,
        );
    }
    out
}

fn print_line(prev: &RuntimeStats, s: &RuntimeStats, dt: Duration, base_rss: u64, known: usize) {
    let secs = dt.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / secs;
    let (rss, per_peer) = match rss_bytes() {
        None => ("n/a".to_string(), "descriptors exhausted".to_string()),
        Some(rss) if s.handshaken > 0 => (
            format!("{:.1}MiB", rss as f64 / 1048576.0),
            format!(
                "{:.0} B/peer",
                rss.saturating_sub(base_rss) as f64 / s.handshaken as f64
            ),
        ),
        Some(rss) => (format!("{:.1}MiB", rss as f64 / 1048576.0), "-".into()),
    };
    println!(
        "peers={} handshaken={} handshakes/s={:.0} msgs/s in={:.0} out={:.0} bytes/s in={:.0} out={:.0} \
         refused={} accept_backoffs={} known_addrs={} rss={rss} ({per_peer})",
        s.peers,
        s.handshaken,
        rate(prev.handshakes, s.handshakes),
        rate(prev.messages_in, s.messages_in),
        rate(prev.messages_out, s.messages_out),
        rate(prev.bytes_in, s.bytes_in),
        rate(prev.bytes_out, s.bytes_out),
        s.refused,
        s.accept_backoffs,
        known,
    );
}
