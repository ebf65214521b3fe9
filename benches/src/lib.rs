//! # benches — peerwire's load generator and cross-crate benchmarks
//!
//! `peer-bench` (the binary) opens thousands of peers to a server and measures, phase by
//! phase, what peerwire does against two baselines measured by the same tool in the same
//! run: the limit (a raw glommio echo, no protocol, no checksum) and the alternative (a
//! tokio peer on the `bitcoin` crate). This library holds its parts; nothing else in the
//! workspace depends on it.
//!
//! ## Contents
//! - [`load`]: the phases (connect, ping, flood, hold), written once over the [`load::Client`] trait.
//! - [`ours`]: peerwire's client (peer-runtime) — the system under test.
//! - [`raw`]: the raw glommio echo server and client — the limit.
//! - [`peer_tokio`]: peerwire's peers on tokio (peer-tokio) as a server — the fourth system.
//! - [`btc`]: the tokio + `bitcoin` server and client — the alternative.
//! - [`worker`]: a worker process (client peers are spread over processes: 20,000 fds each).
//! - [`protocol`]: the coordinator ↔ worker JSON lines.
//! - [`suite`]: one system measured: workers, phases, CPU and memory from `/proc`.
//! - [`run`]: a whole run: servers started and stopped, rounds.
//! - [`report`]: medians, ratios within a round, goals, the table and the JSON.
//! - [`histogram`]: mergeable latency histograms.
//! - [`procfs`]: resident memory, CPU time, the machine.
//! - [`spawn`]: child processes that are always reaped.
//! - [`probe`]: one handshake with a `--target`, for its user agent (the report's label).
//! - [`signals`]: SIGINT/SIGTERM end a run early with the results so far.

#![forbid(unsafe_code)]

pub mod btc;
pub mod histogram;
pub mod load;
pub mod ours;
pub mod peer_tokio;
pub mod probe;
pub mod procfs;
pub mod protocol;
pub mod raw;
pub mod report;
pub mod run;
pub mod signals;
pub mod spawn;
pub mod suite;
pub mod worker;

/// A system under test: a server and the client that loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// peerwire: the seed-server example (peer-runtime) and peer-runtime clients.
    Ours,
    /// The limit: raw glommio echo server and client, no protocol, no checksum.
    Raw,
    /// The alternative: tokio and the `bitcoin` crate.
    Tokio,
    /// peerwire's peers (peer-core) on tokio: the peer-tokio crate, as a server loaded by
    /// peerwire's client.
    PeerTokio,
    /// [`Kind::Ours`] with backpressure off (`seed-server --no-backpressure`: no pause
    /// mark, no memory budget), loaded by the same client: run next to `ours` in the
    /// same rounds, it measures what backpressure costs (issue #11).
    OursNoBp,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 5] = [
        Kind::Ours,
        Kind::OursNoBp,
        Kind::Raw,
        Kind::Tokio,
        Kind::PeerTokio,
    ];

    /// The systems `--baseline` compares peerwire with.
    pub const BASELINE: [Kind; 4] = [Kind::Ours, Kind::Raw, Kind::Tokio, Kind::PeerTokio];

    /// The short name used on command lines and in JSON.
    ///
    /// ```
    /// use benches::Kind;
    /// for k in Kind::ALL {
    ///     assert_eq!(Kind::parse(k.name()), Some(k));
    /// }
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Raw => "raw",
            Kind::Tokio => "tokio",
            Kind::PeerTokio => "peer-tokio",
            Kind::OursNoBp => "ours-nobp",
        }
    }

    /// The column title in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ours => "peerwire",
            Kind::Raw => "raw glommio echo",
            Kind::Tokio => "tokio + bitcoin",
            Kind::PeerTokio => "peerwire on tokio",
            Kind::OursNoBp => "peerwire, backpressure off",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Logical CPUs available (at least 1).
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
