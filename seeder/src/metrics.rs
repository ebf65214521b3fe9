//! Counters shared by the crawler, the DNS server and the reporters (status line and the
//! optional Prometheus `/metrics` endpoint, a tiny HTTP responder on std).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every counter and gauge the seeder exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Known addresses (gauge).
    pub known: AtomicU64,
    /// Good nodes (gauge).
    pub good: AtomicU64,
    /// Addresses tried at least once (gauge).
    pub tried: AtomicU64,
    /// Banned addresses (gauge).
    pub banned: AtomicU64,
    /// Probes in flight (gauge).
    pub in_flight: AtomicU64,
    /// Probes finished.
    pub probes: AtomicU64,
    /// Probes that completed a handshake.
    pub probe_successes: AtomicU64,
    /// New addresses learned from getaddr answers.
    pub learned: AtomicU64,
    /// DNS queries answered over UDP.
    pub dns_udp: AtomicU64,
    /// DNS queries answered over TCP.
    pub dns_tcp: AtomicU64,
    /// DNS datagrams dropped (unparseable headers, responses).
    pub dns_dropped: AtomicU64,
    /// getaddr requests answered by the seed node.
    pub getaddr_answered: AtomicU64,
}

/// Reads a counter.
pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Adds to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Sets a gauge.
pub fn set(c: &AtomicU64, n: u64) {
    c.store(n, Ordering::Relaxed);
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    ///
    /// ```
    /// let m = seeder::metrics::Metrics::default();
    /// seeder::metrics::add(&m.probes, 3);
    /// assert!(m.render().contains("peerwire_seeder_probes_total 3\n"));
    /// ```
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 12] = [
            ("known_nodes", "gauge", "addresses known", &self.known),
            (
                "good_nodes",
                "gauge",
                "nodes passing the good-node rule",
                &self.good,
            ),
            (
                "tried_nodes",
                "gauge",
                "addresses tried at least once",
                &self.tried,
            ),
            (
                "banned_nodes",
                "gauge",
                "addresses banned now",
                &self.banned,
            ),
            (
                "probes_in_flight",
                "gauge",
                "probes in flight",
                &self.in_flight,
            ),
            ("probes_total", "counter", "probes finished", &self.probes),
            (
                "probe_successes_total",
                "counter",
                "probes that completed a handshake",
                &self.probe_successes,
            ),
            (
                "learned_total",
                "counter",
                "new addresses learned",
                &self.learned,
            ),
            (
                "dns_udp_queries_total",
                "counter",
                "DNS queries answered over UDP",
                &self.dns_udp,
            ),
            (
                "dns_tcp_queries_total",
                "counter",
                "DNS queries answered over TCP",
                &self.dns_tcp,
            ),
            (
                "dns_dropped_total",
                "counter",
                "DNS datagrams not answered",
                &self.dns_dropped,
            ),
            (
                "getaddr_answered_total",
                "counter",
                "getaddr requests answered",
                &self.getaddr_answered,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP peerwire_seeder_{name} {help}\n# TYPE peerwire_seeder_{name} {kind}\npeerwire_seeder_{name} {}\n",
                get(v)
            ));
        }
        out
    }
}

/// Serves `GET /metrics` (any path, really) on `listener` from one thread, one short
/// connection at a time (scrapers are few; each read has a 2 s timeout).
pub fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let body = metrics.render();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::warn!("metrics thread: {e}"));
}
