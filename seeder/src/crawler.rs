//! The crawler: probes on peer-runtime (thousands in flight), each one connect,
//! handshake, `getaddr`, record what the node said, disconnect.
//!
//! One std thread owns the [`NodeDb`]; every probe is a peer with its own
//! [`ProbeListener`], which reports exactly once (from `on_disconnect`, or from its
//! `Drop` when the connection never came to be) over a channel. The thread starts
//! probes up to the concurrency limit, ends probes that overstay, records outcomes,
//! publishes the good-node snapshot, hands changed rows to the store thread and
//! rewrites the dump.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peer_core::{DisconnectReason, Listener, Peer};
use peer_runtime::{PeerHandle, PeerRequest, Runtime};
use tracing::{info, trace, warn};
use wire_codec::message::{Addr, AddrV2, Reject, Version};
use wire_codec::Message;

use crate::db::{NodeDb, Outcome};
use crate::goodset::{publish, GoodSet, SharedGood};
use crate::metrics::{self, Metrics};
use crate::node::Node;

/// The most addresses one probe keeps from getaddr answers.
const MAX_LEARNED_PER_PROBE: usize = 2500;

/// How long a probe waits for the getaddr answer after the handshake.
pub const ADDR_WAIT: Duration = Duration::from_secs(4);

/// The most a probe may take in all (connect, handshake, getaddr).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(20);

/// Seconds since 1970.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A finished probe.
#[derive(Debug)]
pub struct ProbeReport {
    seq: u64,
    outcome: Outcome,
    learned: Vec<(SocketAddr, u64)>,
}

/// One probe's listener.
pub struct ProbeListener {
    seq: u64,
    started: Instant,
    tx: Sender<ProbeReport>,
    version: Option<(u32, u64, i32, String, u32)>,
    handshaken: bool,
    learned: Vec<(SocketAddr, u64)>,
    reported: bool,
}

impl ProbeListener {
    fn new(seq: u64, tx: Sender<ProbeReport>) -> ProbeListener {
        ProbeListener {
            seq,
            started: Instant::now(),
            tx,
            version: None,
            handshaken: false,
            learned: Vec::new(),
            reported: false,
        }
    }

    fn report(&mut self, outcome: Outcome) {
        if self.reported {
            return;
        }
        self.reported = true;
        let _ = self.tx.send(ProbeReport {
            seq: self.seq,
            outcome,
            learned: std::mem::take(&mut self.learned),
        });
    }

    fn learned_enough(&mut self, peer: &mut Peer, batch: usize) {
        // A single address is usually the node announcing itself; a getaddr answer
        // carries many.
        if batch > 1 || self.learned.len() >= MAX_LEARNED_PER_PROBE {
            peer.disconnect(DisconnectReason::LocalRequest);
        }
    }
}

impl Listener for ProbeListener {
    fn on_version(&mut self, _peer: &mut Peer, msg: &Version) -> Option<Reject> {
        // Round trip: connect plus the version exchange are two round trips.
        let rtt = (self.started.elapsed().as_micros() / 2000).min(u128::from(u32::MAX)) as u32;
        self.version = Some((
            msg.version,
            msg.services.0,
            msg.start_height,
            msg.user_agent.clone(),
            rtt,
        ));
        None
    }

    fn on_handshake_complete(&mut self, peer: &mut Peer, _version: u32) {
        self.handshaken = true;
        peer.queue_message(Message::GetAddr, None);
    }

    fn on_addr(&mut self, peer: &mut Peer, msg: Addr) {
        let n = msg.addresses.len();
        for a in msg.addresses {
            if self.learned.len() < MAX_LEARNED_PER_PROBE {
                self.learned.push((a.socket_addr(), a.services.0));
            }
        }
        self.learned_enough(peer, n);
    }

    fn on_addr_v2(&mut self, peer: &mut Peer, msg: AddrV2) {
        let n = msg.addresses.len();
        for a in msg.addresses {
            if let Some(ip) = a.ip() {
                if self.learned.len() < MAX_LEARNED_PER_PROBE {
                    self.learned
                        .push((SocketAddr::new(ip, a.port), a.services.0));
                }
            }
        }
        self.learned_enough(peer, n);
    }

    fn on_disconnect(&mut self, _peer: &mut Peer, reason: &DisconnectReason) {
        let outcome = match (&self.version, self.handshaken, reason) {
            (Some((version, services, height, ua, rtt)), true, _) => Outcome::Success {
                version: *version,
                services: *services,
                height: *height,
                user_agent: ua.clone(),
                rtt_ms: *rtt,
            },
            (_, _, DisconnectReason::Decode(_)) => Outcome::Garbage,
            _ => Outcome::Failure,
        };
        trace!(seq = self.seq, %reason, ?outcome, "probe ended");
        self.report(outcome);
    }
}

impl Drop for ProbeListener {
    fn drop(&mut self) {
        self.report(Outcome::Failure); // the connection never came to be
    }
}

/// What the crawler thread is given.
pub struct CrawlerParts {
    /// The node table (restored from the store).
    pub db: NodeDb,
    /// The runtime probes run on.
    pub runtime: Arc<Runtime>,
    /// Most probes in flight.
    pub concurrency: usize,
    /// Where the good-node snapshot goes.
    pub good: SharedGood,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Changed rows go here (the store thread; a bounded channel).
    pub store_tx: SyncSender<Vec<Node>>,
    /// `--dump PATH`.
    pub dump: Option<PathBuf>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
}

struct InFlight {
    addr: SocketAddr,
    started: Instant,
    request: Option<PeerRequest>,
    handle: Option<PeerHandle>,
    handshaken_at: Option<Instant>,
    asked_to_end: bool,
}

/// How often the good-node snapshot is rebuilt while results come in.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// How often changed rows go to the store.
const STORE_EVERY: Duration = Duration::from_secs(2);
/// How often the dump is rewritten.
const DUMP_EVERY: Duration = Duration::from_secs(15);

/// Rebuilds the good-node snapshot and the gauges from `db`.
pub fn publish_good(db: &NodeDb, good: &SharedGood, m: &Metrics) {
    let now = unix_now();
    let set = GoodSet::build(db.good(now).into_iter().map(|n| (n.addr, n.services)));
    metrics::set(&m.good, set.len() as u64);
    let (known, tried, banned) = db.counts(now);
    metrics::set(&m.known, known as u64);
    metrics::set(&m.tried, tried as u64);
    metrics::set(&m.banned, banned as u64);
    publish(good, set);
}

/// Runs the crawl loop until `stop` is set; then flushes changed rows and the dump.
pub fn run(mut p: CrawlerParts) {
    let (tx, rx): (Sender<ProbeReport>, Receiver<ProbeReport>) = std::sync::mpsc::channel();
    let mut flights: HashMap<u64, InFlight> = HashMap::new();
    let mut seq = 0u64;
    let mut changed = true;
    let mut last_publish = Instant::now() - PUBLISH_EVERY;
    let mut last_store = Instant::now();
    let mut last_dump = Instant::now();
    publish_good(&p.db, &p.good, &p.metrics);
    while !p.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let unix = unix_now();
        // Start probes.
        let free = p.concurrency.saturating_sub(flights.len());
        if free > 0 {
            for addr in p.db.take_due(free, unix) {
                seq += 1;
                let listener = Box::new(ProbeListener::new(seq, tx.clone()));
                let request = p.runtime.connect_with(addr, listener);
                flights.insert(
                    seq,
                    InFlight {
                        addr,
                        started: now,
                        request: Some(request),
                        handle: None,
                        handshaken_at: None,
                        asked_to_end: false,
                    },
                );
            }
        }
        // Watch the ones in flight.
        let mut expired = Vec::new();
        for (s, f) in flights.iter_mut() {
            if let Some(req) = &f.request {
                if let Some(answer) = req.try_take() {
                    f.request = None;
                    f.handle = answer.ok();
                }
            }
            if let Some(h) = &f.handle {
                if f.handshaken_at.is_none() && h.handshake_complete() {
                    f.handshaken_at = Some(now);
                }
                let overdue = now.duration_since(f.started) > PROBE_DEADLINE
                    || f.handshaken_at
                        .is_some_and(|t| now.duration_since(t) > ADDR_WAIT);
                if overdue && !f.asked_to_end {
                    f.asked_to_end = true;
                    h.disconnect();
                }
            }
            if now.duration_since(f.started) > PROBE_DEADLINE * 2 {
                expired.push(*s); // the runtime never answered: count a failure
            }
        }
        for s in expired {
            if let Some(f) = flights.remove(&s) {
                warn!(addr = %f.addr, "probe never reported; counted as a failure");
                p.db.report(f.addr, Outcome::Failure, unix);
                metrics::add(&p.metrics.probes, 1);
            }
        }
        // Results.
        let mut got = 0;
        let wait = if flights.is_empty() {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(5)
        };
        let first = rx.recv_timeout(wait).ok();
        for r in first.into_iter().chain(rx.try_iter()) {
            got += 1;
            let Some(f) = flights.remove(&r.seq) else {
                continue;
            };
            if matches!(r.outcome, Outcome::Success { .. }) {
                metrics::add(&p.metrics.probe_successes, 1);
                let n = p.db.learn(f.addr, &r.learned);
                metrics::add(&p.metrics.learned, n as u64);
            }
            p.db.report(f.addr, r.outcome, unix_now());
            metrics::add(&p.metrics.probes, 1);
        }
        changed |= got > 0;
        metrics::set(&p.metrics.in_flight, flights.len() as u64);
        if changed && last_publish.elapsed() >= PUBLISH_EVERY {
            publish_good(&p.db, &p.good, &p.metrics);
            last_publish = Instant::now();
            changed = false;
        }
        if last_store.elapsed() >= STORE_EVERY {
            let rows = p.db.take_dirty();
            if !rows.is_empty() {
                let _ = p.store_tx.send(rows);
            }
            last_store = Instant::now();
        }
        if last_dump.elapsed() >= DUMP_EVERY {
            write_dump(&p);
            last_dump = Instant::now();
        }
    }
    // Shut down: end the probes in flight (they count as not tried), flush, dump.
    for f in flights.values() {
        if let Some(h) = &f.handle {
            h.disconnect();
        }
    }
    let rows = p.db.take_dirty();
    info!(rows = rows.len(), "crawler stopping; flushing the database");
    if !rows.is_empty() {
        let _ = p.store_tx.send(rows);
    }
    publish_good(&p.db, &p.good, &p.metrics);
    write_dump(&p);
}

fn write_dump(p: &CrawlerParts) {
    if let Some(path) = &p.dump {
        let text = crate::dump::render(p.db.nodes(), p.db.rules(), unix_now());
        if let Err(e) = crate::dump::write_atomically(path, &text) {
            warn!(path = %path.display(), "cannot write the dump: {e}");
        }
    }
}
