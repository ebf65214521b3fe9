//! Wiring: the store, the crawler thread, the runtime, DNS, the seed node, metrics,
//! the status line, and a clean stop on SIGTERM/SIGINT.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use peer_runtime::{Limits, Runtime};
use tracing::{info, warn};

use crate::cli::Args;
use crate::crawler::{self, CrawlerParts};
use crate::db::NodeDb;
use crate::dns::Zone;
use crate::dns_server::{self, DnsContext};
use crate::error::Error;
use crate::goodset::{GoodSet, SharedGood};
use crate::metrics::{self, Metrics};
use crate::node::{Node, Rules};
use crate::seed_node::SeedListener;
use crate::store::Store;

/// A running seeder.
pub struct Seeder {
    /// Where DNS is answered.
    pub dns_addr: SocketAddr,
    /// Where the seed node listens.
    pub p2p_addr: Option<SocketAddr>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    crawler: Option<std::thread::JoinHandle<()>>,
    store: Option<std::thread::JoinHandle<()>>,
    runtime: Arc<Runtime>,
}

fn resolve(seed: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let with_port = if seed.contains(':') && !seed.starts_with('[') && seed.matches(':').count() > 1
    {
        format!("[{seed}]:{port}") // a bare IPv6 address
    } else if seed.contains(':') {
        seed.to_string()
    } else {
        format!("{seed}:{port}")
    };
    let v: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| Error::SeedUnresolvable {
            seed: seed.into(),
            reason: e.to_string(),
        })?
        .collect();
    if v.is_empty() {
        return Err(Error::SeedUnresolvable {
            seed: seed.into(),
            reason: "no addresses".into(),
        });
    }
    Ok(v)
}

impl Seeder {
    /// Opens the database, restores the nodes, publishes the good ones at once, and
    /// starts every service.
    pub fn start(args: &Args) -> Result<Seeder, Error> {
        let zone = Arc::new(Zone::new(&args.zone, &args.ns)?);
        let rules = Rules::for_network(args.network, args.allow_local_addresses);
        let mut store = Store::open(&args.db)?;
        let mut db = NodeDb::new(rules, args.revisit.max(1));
        let restored = store.load()?;
        let n_restored = restored.len();
        for node in restored {
            db.restore(node);
        }
        for seed in &args.seeds {
            for addr in resolve(seed, args.network.default_port())? {
                db.add_seed(addr);
            }
        }
        let metrics = Arc::new(Metrics::default());
        let good: SharedGood = Arc::new(RwLock::new(Arc::new(GoodSet::default())));
        crawler::publish_good(&db, &good, &metrics);
        info!(
            restored = n_restored,
            good = metrics::get(&metrics.good),
            seeds = args.seeds.len(),
            "node database {} open",
            args.db.display()
        );

        let dns_threads = args
            .dns_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let dns_addr = dns_server::start(
            args.dns_listen,
            dns_threads,
            DnsContext {
                zone,
                good: good.clone(),
                metrics: metrics.clone(),
            },
        )?;
        info!(%dns_addr, "DNS answering over UDP and TCP");

        // Probes need descriptors: raise the soft limit to the hard one, and keep the
        // concurrency under it (a probe refused for want of a descriptor would count as
        // the node's failure).
        let nofile = rlimit::utils::increase_nofile_limit(u64::MAX).unwrap_or(1024) as usize;
        let room = nofile.saturating_sub(512).max(16);
        let concurrency = if args.concurrency > room {
            warn!(
                asked = args.concurrency,
                open_files = nofile,
                "--concurrency lowered to {room}: not enough file descriptors"
            );
            room
        } else {
            args.concurrency.max(1)
        };
        let mut limits = Limits::default();
        limits.max_peers = concurrency + 256;
        limits.connect_timeout = Duration::from_secs(5);
        let mut builder = Runtime::builder(args.network)
            .configure(|c| {
                c.user_agent_name = "peerwire-seeder".into();
                c.user_agent_version = env!("CARGO_PKG_VERSION").into();
                c.disable_relay_tx = true;
                c.report_io = false;
                c.timeouts.negotiate = Duration::from_secs(8);
            })
            .pin(false)
            .limits(limits)
            .thread_name("seeder");
        if let Some(n) = args.executors {
            builder = builder.executors(n);
        }
        if let Some(p2p) = args.p2p_listen {
            let g = good.clone();
            let m = metrics.clone();
            builder = builder.listen(p2p).listener_factory(move |h| {
                Box::new(SeedListener::new(g.clone(), m.clone(), h.id()))
            });
        }
        let runtime = Arc::new(builder.start()?);
        let p2p_addr = runtime.local_addr();
        if let Some(a) = p2p_addr {
            info!(%a, "seed node listening");
        }

        if let Some(addr) = args.metrics_listen {
            let l = TcpListener::bind(addr).map_err(|e| Error::Bind { addr, source: e })?;
            info!(addr = %l.local_addr()?, "metrics at /metrics");
            metrics::serve(l, metrics.clone());
        }

        // Bounded: when SQLite falls behind, the crawler waits for it instead of piling
        // up batches in memory.
        let (store_tx, store_rx) = std::sync::mpsc::sync_channel::<Vec<Node>>(4);
        let store_thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                for rows in store_rx {
                    if let Err(e) = store.save(&rows) {
                        warn!("database write failed: {e}");
                    }
                }
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let parts = CrawlerParts {
            db,
            runtime: runtime.clone(),
            concurrency,
            good,
            metrics: metrics.clone(),
            store_tx,
            dump: args.dump.clone(),
            stop: stop.clone(),
        };
        let crawler_thread = std::thread::Builder::new()
            .name("crawler".into())
            .spawn(move || crawler::run(parts))?;
        Ok(Seeder {
            dns_addr,
            p2p_addr,
            metrics,
            stop,
            crawler: Some(crawler_thread),
            store: Some(store_thread),
            runtime,
        })
    }

    /// Stops crawling, writes every change to the database and the dump, and returns
    /// when the database is flushed.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.crawler.take() {
            let _ = c.join(); // drops the store sender: the store thread drains and ends
        }
        if let Some(s) = self.store.take() {
            let _ = s.join();
        }
        if let Ok(rt) = Arc::try_unwrap(self.runtime) {
            rt.shutdown();
        }
    }
}

/// The status line: known / good / tried / banned, probes per second, DNS queries per
/// second.
pub fn status_line(m: &Metrics, prev: &mut (Instant, u64, u64)) -> String {
    let now = Instant::now();
    let secs = now.duration_since(prev.0).as_secs_f64().max(1e-6);
    let probes = metrics::get(&m.probes);
    let dns = metrics::get(&m.dns_udp) + metrics::get(&m.dns_tcp);
    let line = format!(
        "known={} good={} tried={} banned={} in_flight={} probes/s={:.0} successes={} dns_queries/s={:.0}",
        metrics::get(&m.known),
        metrics::get(&m.good),
        metrics::get(&m.tried),
        metrics::get(&m.banned),
        metrics::get(&m.in_flight),
        (probes - prev.1) as f64 / secs,
        metrics::get(&m.probe_successes),
        (dns - prev.2) as f64 / secs,
    );
    *prev = (now, probes, dns);
    line
}

/// Runs the seeder until SIGTERM or SIGINT; then flushes and returns.
pub fn run(args: &Args) -> Result<(), Error> {
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, term.clone())?;
    let seeder = Seeder::start(args)?;
    let every = Duration::from_secs(args.status_interval.max(1));
    let mut prev = (Instant::now(), 0, 0);
    let mut last = Instant::now();
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= every {
            info!("{}", status_line(&seeder.metrics, &mut prev));
            last = Instant::now();
        }
    }
    info!("signal received: flushing the database");
    seeder.stop();
    info!("stopped");
    Ok(())
}
