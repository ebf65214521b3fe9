//! A seed server: accepts peers, completes handshakes, answers `getaddr` with a random
//! sample of the addresses it knows, and prints a statistics line every few seconds.
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example seed-server -- --network regtest --listen 127.0.0.1:PORT [--addrs FILE] [--max-peers N]
//! ```
//!
//! It builds with the workspace's patched glommio (`third_party/glommio`), whose batched
//! wake-ups (`LocalExecutorBuilder::wake_batch`, `--wake-batch-us`) it uses; the
//! peer-runtime library itself builds on stock glommio 0.9.
//!
//! Known addresses come from `--addrs` (one `host:port` per line; `#` starts a comment)
//! and from `addr`/`addrv2` messages peers send, at most 0.1 per second per peer after
//! a burst of 1,000 (Core's rate), kept in buckets per source network group that one
//! source cannot fill. Only routable addresses are learned and served unless
//! `--serve-local`; `getaddr` is answered once per connection. Pings are answered by peer-core. The
//! statistics line shows peers (handshaken), handshakes per second, messages and bytes
//! in and out per second, and resident memory (from `/proc/self/statm`) with the growth
//! since start divided by the handshaken peers.
//!
//! One port serves both transports: the first 16 bytes of each connection decide between
//! v1 and BIP324 v2 (NODE_P2P_V2 is advertised); `--v1-only` turns v2 off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use peer_core::{Listener, Peer};
use peer_helpers::push_addresses;
use peer_runtime::netgroup::{self, Netgroup};
use peer_runtime::{Limits, Runtime, RuntimeStats};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
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
    /// Most inbound peers per network group (/16 IPv4, /32 IPv6; all loopback
    /// addresses are one group). Default: an eighth of --max-peers. Loopback load
    /// tests raise it.
    #[arg(long)]
    max_per_netgroup: Option<usize>,
    /// Learn and serve local and private addresses too (default: routable only).
    #[arg(long)]
    serve_local: bool,
    /// Executors (default: one per CPU).
    #[arg(long)]
    executors: Option<usize>,
    /// Leave executors unpinned (default: executor i pinned to the i-th online CPU).
    #[arg(long)]
    no_pin: bool,
    /// Longest a received message may wait for others before a sleeping executor
    /// wakes for it, in microseconds (0: wake at every first message). A seed server
    /// has many peers far away: batching cut its CPU per ping round trip by a quarter
    /// (glommio change 19, `RuntimeBuilder::executor_builder`).
    #[arg(long, default_value_t = peer_runtime::DEFAULT_WAKE_BATCH_DELAY.as_micros() as u64)]
    wake_batch_us: u64,
    /// Seconds between statistics lines.
    #[arg(long, default_value_t = 5)]
    stats_every: u64,
    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long)]
    duration: Option<u64>,
    /// Backpressure off, for benchmarks only (peer-bench's `ours-nobp`, which
    /// measures what backpressure costs): no pause mark and no memory budget, so a
    /// peer that never reads makes the server grow without bound.
    #[arg(long)]
    no_backpressure: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

/// The longest `--wake-batch-us` accepted (100 ms): a message may wait that long for
/// others before its executor wakes, and a peer tolerates a round trip of seconds, but
/// a longer hold is a typo rather than a setting.
const MAX_WAKE_BATCH_US: u64 = 100_000;

/// Addresses we know, shared by every peer's listener.
///
/// Learned addresses live in buckets keyed by the network group of the peer that
/// taught them (Bitcoin Core's new-table idea): a bucket holds at most
/// [`BUCKET_SIZE`] entries and replaces its oldest when full, and serving draws a random
/// bucket before a random entry, so one source — however much it sends — owns at most
/// one bucket's share of what is served. The buckets are spread over [`SHARDS`]
/// independently locked shards: no lock is shared by every executor on every request,
/// and serving (once per connection) takes each shard's lock once.
struct AddressBook {
    shards: Vec<Mutex<Shard>>,
    /// Learn and serve local and private addresses too (tests, private networks).
    allow_local: bool,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Shard {
    buckets: HashMap<Netgroup, Vec<AddrV2Entry>>,
    /// The buckets' keys, for drawing one at random.
    keys: Vec<Netgroup>,
}

const SHARDS: usize = 16;
/// Entries per source-group bucket (Core's bucket size).
const BUCKET_SIZE: usize = 64;
/// Buckets per shard; a new source group beyond it replaces a random bucket.
const BUCKETS_PER_SHARD: usize = 1024;

/// Core's address rate limit: 0.1 addresses per second per peer, burst 1,000.
const ADDR_RATE: f64 = 0.1;
const ADDR_BURST: f64 = 1000.0;

fn same(a: &AddrV2Entry, b: &AddrV2Entry) -> bool {
    a.network == b.network && a.port == b.port && a.addr == b.addr
}

impl AddressBook {
    fn new(allow_local: bool) -> AddressBook {
        AddressBook {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            allow_local,
            hasher: Default::default(),
        }
    }

    fn shard(&self, g: Netgroup) -> &Mutex<Shard> {
        use std::hash::BuildHasher;
        let i = (self.hasher.hash_one(g) % SHARDS as u64) as usize;
        &self.shards[i]
    }

    /// Learns `e` from a peer in network group `source`. Unroutable addresses are
    /// dropped unless local ones are allowed.
    fn add(&self, source: Netgroup, e: AddrV2Entry, rng: &mut impl Rng) -> bool {
        if !self.allow_local && !e.ip().is_some_and(netgroup::is_routable) {
            return false;
        }
        let mut sh = self.shard(source).lock().unwrap_or_else(|p| p.into_inner());
        if !sh.buckets.contains_key(&source) {
            if sh.keys.len() >= BUCKETS_PER_SHARD {
                let i = rng.gen_range(0..sh.keys.len());
                let old = sh.keys.swap_remove(i);
                sh.buckets.remove(&old);
            }
            sh.keys.push(source);
        }
        let bucket = sh.buckets.entry(source).or_default();
        if let Some(known) = bucket.iter_mut().find(|k| same(k, &e)) {
            known.time = known.time.max(e.time);
        } else if bucket.len() < BUCKET_SIZE {
            bucket.push(e);
        } else if let Some(oldest) = bucket.iter_mut().min_by_key(|k| k.time) {
            *oldest = e;
        }
        true
    }

    /// Up to `n` addresses: in each shard, random buckets, one random entry each.
    fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<AddrV2Entry> {
        let per_shard = n.div_ceil(SHARDS);
        let mut out: Vec<AddrV2Entry> = Vec::with_capacity(n);
        for shard in &self.shards {
            let sh = shard.lock().unwrap_or_else(|p| p.into_inner());
            if sh.keys.is_empty() {
                continue;
            }
            for _ in 0..per_shard {
                let key = sh.keys[rng.gen_range(0..sh.keys.len())];
                if let Some(b) = sh.buckets.get(&key).filter(|b| !b.is_empty()) {
                    let e = &b[rng.gen_range(0..b.len())];
                    if !out.iter().any(|o| same(o, e)) {
                        out.push(e.clone());
                    }
                }
            }
        }
        out.truncate(n);
        out
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let sh = s.lock().unwrap_or_else(|p| p.into_inner());
                sh.buckets.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }
}

/// One peer's listener: answers the first getaddr, learns addresses at Core's rate.
struct Seed {
    book: Arc<AddressBook>,
    rng: SmallRng,
    /// The network group of this peer: the bucket its addresses go to.
    source: Netgroup,
    answered_getaddr: bool,
    /// Address token bucket (Core: 0.1/s, burst 1,000).
    tokens: f64,
    /// When the bucket was last refilled; `None` until the first addresses arrive (the
    /// bucket starts full, so the time before them adds nothing, and a new peer costs
    /// no clock read).
    refilled: Option<Instant>,
    dropped: u64,
}

impl Seed {
    fn learn(&mut self, entries: impl IntoIterator<Item = AddrV2Entry>) {
        let now = Instant::now();
        let dt = self
            .refilled
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        self.tokens = (self.tokens + dt * ADDR_RATE).min(ADDR_BURST);
        self.refilled = Some(now);
        for e in entries {
            if self.tokens < 1.0 {
                self.dropped += 1;
                continue;
            }
            self.tokens -= 1.0;
            self.book.add(self.source, e, &mut self.rng);
        }
    }
}

impl Listener for Seed {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        // Once per connection (Core, btcd): a peer asking again learns nothing new and
        // would make us send 13-30 kB per 24-byte request.
        if std::mem::replace(&mut self.answered_getaddr, true) {
            return;
        }
        let sample = self.book.sample(1000, &mut self.rng);
        // addrv2 to peers that asked for it, addr to the others.
        push_addresses(peer, &sample, &mut self.rng);
    }

    fn on_addr(&mut self, _peer: &mut Peer, msg: Addr) {
        self.learn(
            msg.addresses
                .into_iter()
                .map(|a| AddrV2Entry::from_ip(a.time.unwrap_or(0), a.services, a.ip(), a.port)),
        );
    }

    fn on_addr_v2(&mut self, _peer: &mut Peer, msg: AddrV2) {
        self.learn(msg.addresses);
    }
}

fn load_addrs(
    path: &std::path::Path,
    book: &AddressBook,
    rng: &mut impl Rng,
) -> Result<usize, String> {
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
        let e = AddrV2Entry::from_ip(
            now,
            ServiceFlags::NETWORK | ServiceFlags::WITNESS,
            addr.ip(),
            addr.port(),
        );
        // A file's addresses are spread over buckets by their own network group.
        if book.add(Netgroup::of(addr.ip(), false), e, rng) {
            n += 1;
        }
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
    let book = Arc::new(AddressBook::new(args.serve_local));
    if let Some(path) = &args.addrs {
        let n = load_addrs(path, &book, &mut SmallRng::seed_from_u64(0x5eed))?;
        println!("loaded {n} addresses from {}", path.display());
    }
    let mut limits = Limits::default();
    if let Some(n) = args.max_peers {
        limits.max_peers = n;
    }
    if let Some(n) = args.max_per_ip {
        limits.max_inbound_per_ip = n;
    }
    if let Some(n) = args.max_per_netgroup {
        limits.max_inbound_per_netgroup = n;
    }
    if args.no_backpressure {
        limits.send_pause_bytes = usize::MAX;
        limits.memory_budget = usize::MAX;
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
    if args.no_pin {
        builder = builder.pin(false);
    }
    if args.wake_batch_us > MAX_WAKE_BATCH_US {
        return Err(format!(
            "--wake-batch-us {} is above {MAX_WAKE_BATCH_US}: a batch holds a message at most that long",
            args.wake_batch_us
        ));
    }
    if args.wake_batch_us > 0 {
        let batch = glommio::WakeBatch {
            max_events: peer_runtime::DEFAULT_WAKE_BATCH_EVENTS,
            max_delay: std::time::Duration::from_micros(args.wake_batch_us),
        };
        builder = builder.executor_builder(move |b| b.wake_batch(batch));
    }
    let factory_book = book.clone();
    let rt = builder
        .listener_factory(move |h| {
            Box::new(Seed {
                book: factory_book.clone(),
                rng: SmallRng::seed_from_u64(h.id() ^ 0x5eed),
                source: Netgroup::of(h.addr().ip(), false),
                answered_getaddr: false,
                tokens: ADDR_BURST,
                refilled: None,
                dropped: 0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn entry(a: u8, b: u8, c: u8, d: u8) -> AddrV2Entry {
        AddrV2Entry::from_ip(
            1_700_000_000,
            ServiceFlags::NETWORK,
            IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            8333,
        )
    }

    fn group(a: u8, b: u8) -> Netgroup {
        Netgroup::of(IpAddr::V4(Ipv4Addr::new(a, b, 1, 1)), false)
    }

    /// One source sending 100,000 addresses keeps one bucket; with 99 honest sources
    /// its share of what is served is about 1%, not 94%.
    #[test]
    fn one_source_cannot_fill_the_table() {
        let book = AddressBook::new(false);
        let mut rng = SmallRng::seed_from_u64(1);
        for i in 0..100_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            book.add(group(66, 6), entry(66, b, c, d.max(1)), &mut rng);
        }
        assert_eq!(
            book.len(),
            BUCKET_SIZE,
            "the attacker's bucket replaces its oldest"
        );
        for s in 0..99u8 {
            for k in 0..10u8 {
                book.add(group(20 + s, 1), entry(30 + s, k, 1, 1), &mut rng);
            }
        }
        let mut from_attacker = 0;
        let mut served = 0;
        for _ in 0..50 {
            let sample = book.sample(1000, &mut rng);
            served += sample.len();
            from_attacker += sample
                .iter()
                .filter(|e| {
                    e.ip()
                        .is_some_and(|ip| matches!(ip, IpAddr::V4(v) if v.octets()[0] == 66))
                })
                .count();
        }
        let share = from_attacker as f64 / served as f64;
        assert!(
            share < 0.05,
            "the attacker got {:.1}% of what was served",
            share * 100.0
        );
    }

    #[test]
    fn only_routable_addresses_unless_allowed() {
        let mut rng = SmallRng::seed_from_u64(2);
        let book = AddressBook::new(false);
        assert!(!book.add(group(1, 1), entry(127, 0, 0, 1), &mut rng));
        assert!(!book.add(group(1, 1), entry(192, 168, 1, 1), &mut rng));
        assert!(!book.add(group(1, 1), entry(10, 1, 1, 1), &mut rng));
        assert!(book.add(group(1, 1), entry(8, 8, 8, 8), &mut rng));
        assert_eq!(book.len(), 1);
        let local = AddressBook::new(true);
        assert!(local.add(group(1, 1), entry(127, 0, 0, 1), &mut rng));
    }

    /// Core's rate: a burst of 1,000, then 0.1 per second.
    #[test]
    fn a_peer_teaches_at_most_the_token_bucket() {
        let mut seed = Seed {
            book: Arc::new(AddressBook::new(false)),
            rng: SmallRng::seed_from_u64(3),
            source: group(5, 5),
            answered_getaddr: false,
            tokens: ADDR_BURST,
            refilled: None,
            dropped: 0,
        };
        // Each from its own source group would be kept; here the count is what matters.
        let many: Vec<AddrV2Entry> = (0..3000u32)
            .map(|i| {
                let [_, b, c, d] = i.to_be_bytes();
                entry(9, b, c, d)
            })
            .collect();
        seed.learn(many);
        assert_eq!(seed.dropped, 2000);
        seed.refilled = seed.refilled.map(|t| t - Duration::from_secs(100));
        seed.learn((0..20u8).map(|i| entry(9, 9, 9, i)));
        assert_eq!(seed.dropped, 2000 + 10, "100 s at 0.1/s buys 10");
    }
}
