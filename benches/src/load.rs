//! The phases, written once for every kind of client.
//!
//! A worker runs one single-threaded executor (glommio for ours and the raw limit, a
//! tokio current-thread runtime for the tokio + `bitcoin` baseline) and drives all its
//! connections through the same code: [`drive`] waits for [`Command`]s, runs the phase
//! over every connection at once, and reports an [`Outcome`]. What differs between
//! clients is only how they connect, do one round trip, and write a batch of
//! inventory messages: the [`Client`] and [`Conn`] traits.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use crate::histogram::Histogram;
use crate::protocol::{Command, Outcome, Report};

/// One kind of client: how to open a connection (handshake included).
pub trait Client: 'static {
    /// An open, handshaken connection.
    type Conn: Conn + 'static;
    /// Opens a connection to `target` (from `source` when given, any free port) and
    /// completes the handshake (for the raw limit: until the server's first byte
    /// arrives, i.e. the server has accepted).
    fn connect(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
    ) -> impl Future<Output = io::Result<Self::Conn>>;
}

/// One open connection of a client.
pub trait Conn {
    /// Sends a ping carrying `nonce` and waits for the matching pong.
    fn round_trip(&mut self, nonce: u64) -> impl Future<Output = io::Result<()>>;
    /// Writes `batch` one-entry inventory messages (in one write where the client can);
    /// returns the bytes written.
    fn flood(&mut self, batch: u32) -> impl Future<Output = io::Result<u64>>;
}

/// The few things the phases need from an executor.
pub trait Exec: Clone + 'static {
    /// Runs `f` as a task on this thread.
    fn spawn(&self, f: impl Future<Output = ()> + 'static);
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// Where a worker's connections go, how many, and how many connects may be in flight.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Server addresses, used round robin.
    pub targets: Vec<SocketAddr>,
    /// Connections this worker opens.
    pub count: usize,
    /// Connects in flight at once (a connect storm beyond the listen backlog only
    /// measures SYN retransmissions).
    pub window: usize,
    /// The first nonce (distinct per worker so pongs cannot be confused).
    pub nonce_base: u64,
    /// The local address this worker connects from (`None`: the kernel's choice). Each
    /// address has its own ephemeral port range, so spreading workers over
    /// `127.0.0.x` opens more connections to one server than one address can.
    pub source: Option<IpAddr>,
    /// ours: connect with BIP324 v2 (`peer-bench --v2`).
    pub v2: bool,
}

/// Counters shared by the tasks of one phase.
struct Tally {
    ok: Cell<u64>,
    failed: Cell<u64>,
    ops: Cell<u64>,
    bytes: Cell<u64>,
    running: Cell<usize>,
    last: Cell<Option<Instant>>,
    latency: RefCell<Histogram>,
    first_error: RefCell<Option<String>>,
}

impl Tally {
    fn new() -> Rc<Tally> {
        Rc::new(Tally {
            ok: Cell::new(0),
            failed: Cell::new(0),
            ops: Cell::new(0),
            bytes: Cell::new(0),
            running: Cell::new(0),
            last: Cell::new(None),
            latency: RefCell::new(Histogram::default()),
            first_error: RefCell::new(None),
        })
    }

    fn fail(&self, e: &io::Error) {
        self.failed.set(self.failed.get() + 1);
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }

    fn finish(&self) {
        self.last.set(Some(Instant::now()));
    }

    fn outcome(&self, phase: &str, start: Instant) -> Outcome {
        let end = self.last.get().unwrap_or(start);
        Outcome {
            phase: phase.to_string(),
            ok: self.ok.get(),
            failed: self.failed.get(),
            ops: self.ops.get(),
            bytes: self.bytes.get(),
            elapsed: end.saturating_duration_since(start),
            latency: self.latency.borrow().clone(),
            first_error: self.first_error.borrow().clone(),
        }
    }
}

/// How often the control task looks at commands and at the phase's tasks.
const TICK: Duration = Duration::from_millis(10);
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Runs a worker: waits for commands, runs each phase over all connections, and emits
/// one [`Report`] per line through `emit`, until [`Command::Close`] (or the end of the
/// command channel, which means the coordinator is gone).
pub async fn drive<C: Client, E: Exec>(
    client: Rc<C>,
    exec: E,
    plan: Plan,
    commands: Receiver<Command>,
    emit: impl Fn(Report),
) {
    let conns: Rc<RefCell<Vec<C::Conn>>> = Rc::new(RefCell::new(Vec::new()));
    let nonce = Rc::new(Cell::new(plan.nonce_base));
    emit(Report::Ready);
    loop {
        let cmd = match commands.try_recv() {
            Ok(c) => c,
            Err(TryRecvError::Empty) => {
                exec.sleep(TICK).await;
                continue;
            }
            Err(TryRecvError::Disconnected) => Command::Close,
        };
        let start = Instant::now();
        let tally = Tally::new();
        match cmd {
            Command::Connect => {
                let next = Rc::new(Cell::new(0usize));
                for _ in 0..plan.window.clamp(1, plan.count.max(1)) {
                    tally.running.set(tally.running.get() + 1);
                    let (client, conns, tally, next, plan) = (
                        client.clone(),
                        conns.clone(),
                        tally.clone(),
                        next.clone(),
                        plan.clone(),
                    );
                    exec.spawn(async move {
                        loop {
                            let i = next.get();
                            if i >= plan.count || plan.targets.is_empty() {
                                break;
                            }
                            next.set(i + 1);
                            let target = plan.targets[i % plan.targets.len()];
                            let t = Instant::now();
                            match client.connect(target, plan.source).await {
                                Ok(c) => {
                                    tally.latency.borrow_mut().record(micros(t.elapsed()));
                                    tally.ok.set(tally.ok.get() + 1);
                                    tally.ops.set(tally.ops.get() + 1);
                                    conns.borrow_mut().push(c);
                                }
                                Err(e) => tally.fail(&e),
                            }
                            tally.finish();
                        }
                        tally.running.set(tally.running.get() - 1);
                    });
                }
                wait_phase(&exec, &tally, &emit, |t| t.ok.get() + t.failed.get()).await;
            }
            Command::Ping { duration } | Command::Flood { duration, .. } => {
                let deadline = start + duration;
                let batch = match cmd {
                    Command::Flood { batch, .. } => Some(batch),
                    _ => None,
                };
                let list = std::mem::take(&mut *conns.borrow_mut());
                for mut conn in list {
                    tally.running.set(tally.running.get() + 1);
                    let (conns, tally, nonce) = (conns.clone(), tally.clone(), nonce.clone());
                    exec.spawn(async move {
                        let result = match batch {
                            None => ping_loop(&mut conn, deadline, &tally, &nonce).await,
                            Some(b) => flood_loop(&mut conn, deadline, b, &tally, &nonce).await,
                        };
                        match result {
                            Ok(()) => {
                                tally.ok.set(tally.ok.get() + 1);
                                conns.borrow_mut().push(conn);
                            }
                            Err(e) => tally.fail(&e),
                        }
                        tally.finish();
                        tally.running.set(tally.running.get() - 1);
                    });
                }
                wait_phase(&exec, &tally, &emit, |t| t.ops.get()).await;
            }
            Command::Hold { duration } => {
                let until = start + duration;
                let mut last_progress = Instant::now();
                while Instant::now() < until {
                    exec.sleep(
                        TICK.max(until.saturating_duration_since(Instant::now()))
                            .min(PROGRESS_EVERY),
                    )
                    .await;
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        emit(Report::Progress(start.elapsed().as_millis() as u64));
                        last_progress = Instant::now();
                    }
                }
                tally.ok.set(conns.borrow().len() as u64);
                tally.finish();
            }
            Command::Close => {
                let n = conns.borrow().len() as u64;
                conns.borrow_mut().clear();
                tally.ok.set(n);
                tally.finish();
                emit(Report::Done(tally.outcome(cmd.name(), start)));
                return;
            }
        }
        emit(Report::Done(tally.outcome(cmd.name(), start)));
    }
}

/// Waits until every task of the phase has ended, reporting progress.
async fn wait_phase<E: Exec>(
    exec: &E,
    tally: &Tally,
    emit: &impl Fn(Report),
    progress: impl Fn(&Tally) -> u64,
) {
    let mut last_progress = Instant::now();
    while tally.running.get() > 0 {
        exec.sleep(TICK).await;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            emit(Report::Progress(progress(tally)));
            last_progress = Instant::now();
        }
    }
}

async fn ping_loop<C: Conn>(
    conn: &mut C,
    deadline: Instant,
    tally: &Tally,
    nonce: &Cell<u64>,
) -> io::Result<()> {
    let mut local = Histogram::default();
    let mut t = Instant::now();
    while t < deadline {
        let n = nonce.get().wrapping_add(1);
        nonce.set(n);
        conn.round_trip(n).await?;
        let now = Instant::now();
        local.record(micros(now - t));
        tally.ops.set(tally.ops.get() + 1);
        tally.bytes.set(tally.bytes.get() + PING_FRAME_LEN);
        t = now;
    }
    tally.latency.borrow_mut().merge(&local);
    Ok(())
}

async fn flood_loop<C: Conn>(
    conn: &mut C,
    deadline: Instant,
    batch: u32,
    tally: &Tally,
    nonce: &Cell<u64>,
) -> io::Result<()> {
    // Flow control: after every FLOOD_WINDOW messages a ping, and no more writes until
    // its pong. The server answers in order, so the pong says it has consumed everything
    // before it; messages count only then. The rate is what the server consumed, not
    // what the client managed to write, and a server that reads slower than the client
    // writes (btcd reads ~0.3 M inv/s, a client writes ~3 M/s) is left at most one
    // window per connection behind — no backlog that outlives the phase, times peers out
    // and spoils the next one.
    let per_ack = (flood_window() / batch.max(1)).max(1);
    let (mut unacked_ops, mut unacked_bytes) = (0u64, 0u64);
    let mut since_ack = 0u32;
    loop {
        let writing = Instant::now() < deadline;
        if writing {
            unacked_bytes += conn.flood(batch).await?;
            unacked_ops += u64::from(batch);
            since_ack += 1;
        }
        // A window is full, or the phase is over: the final barrier always runs.
        if since_ack >= per_ack || !writing {
            let n = nonce.get().wrapping_add(1);
            nonce.set(n);
            let t = Instant::now();
            conn.round_trip(n).await?;
            // The last barrier's latency is how far behind the server was at the end.
            if !writing {
                tally.latency.borrow_mut().record(micros(t.elapsed()));
            }
            tally.ops.set(tally.ops.get() + unacked_ops);
            tally.bytes.set(tally.bytes.get() + unacked_bytes);
            (unacked_ops, unacked_bytes, since_ack) = (0, 0, 0);
            if !writing {
                return Ok(());
            }
        }
    }
}

/// Most `inv` messages a flooding connection writes before the server has answered the
/// ping after the previous window (see `flood_loop`), by default: 512 messages, 31 KB —
/// enough to keep a fast server busy with hundreds of connections, little enough that a
/// slow one is never more than a fraction of a second behind.
pub const FLOOD_WINDOW: u32 = 512;

/// The environment variable through which `peer-bench --flood-window N` reaches the
/// worker processes.
pub const FLOOD_WINDOW_ENV: &str = "PEER_BENCH_FLOOD_WINDOW";

/// The flood window in force: [`FLOOD_WINDOW_ENV`] if set to a number, else
/// [`FLOOD_WINDOW`].
pub fn flood_window() -> u32 {
    std::env::var(FLOOD_WINDOW_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|w| *w > 0)
        .unwrap_or(FLOOD_WINDOW)
}

/// Bytes of a `ping` frame on the wire (24-byte header + 8-byte nonce); the raw limit
/// uses records of the same size.
pub const PING_FRAME_LEN: u64 = 32;

/// Bytes of an `inv` frame with one entry (header + count + type + hash); the raw
/// limit uses records of the same size.
pub const INV_FRAME_LEN: u64 = 24 + 1 + 36;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btc::{BtcClient, TokioExec};
    use std::sync::mpsc;

    /// Every phase against the tokio + bitcoin server, in one thread: counts are
    /// consistent, every connection survives, the flood's barrier completes.
    #[test]
    fn phases_run_end_to_end_over_loopback() {
        let port = crate::spawn::free_port("127.0.0.1".parse().unwrap()).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        std::thread::spawn(move || crate::btc::serve(addr, 1));
        let probe_deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < probe_deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (tx, rx) = mpsc::channel();
        let short = Duration::from_millis(200);
        for c in [
            Command::Connect,
            Command::Hold { duration: short },
            Command::Ping { duration: short },
            Command::Flood {
                duration: short,
                batch: 8,
            },
            Command::Close,
        ] {
            tx.send(c).unwrap();
        }
        let reports = Rc::new(RefCell::new(Vec::new()));
        let sink = reports.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let plan = Plan {
            targets: vec![addr],
            count: 20,
            window: 4,
            nonce_base: 0,
            source: None,
            v2: false,
        };
        tokio::task::LocalSet::new().block_on(
            &rt,
            drive(Rc::new(Rc::new(BtcClient)), TokioExec, plan, rx, move |r| {
                sink.borrow_mut().push(r)
            }),
        );
        let done: Vec<Outcome> = reports
            .borrow()
            .iter()
            .filter_map(|r| match r {
                Report::Done(o) => Some(o.clone()),
                _ => None,
            })
            .collect();
        assert!(matches!(reports.borrow().first(), Some(Report::Ready)));
        let names: Vec<&str> = done.iter().map(|o| o.phase.as_str()).collect();
        assert_eq!(names, ["connect", "hold", "ping", "flood", "close"]);
        let (connect, hold, ping, flood) = (&done[0], &done[1], &done[2], &done[3]);
        assert_eq!((connect.ok, connect.failed, connect.ops), (20, 0, 20));
        assert_eq!(connect.latency.count(), 20);
        assert_eq!(hold.ok, 20);
        assert_eq!((ping.ok, ping.failed), (20, 0));
        assert!(ping.ops >= 20, "at least one round trip per connection");
        assert_eq!(ping.latency.count(), ping.ops);
        assert_eq!(ping.bytes, ping.ops * PING_FRAME_LEN);
        assert!(ping.elapsed >= Duration::from_millis(200));
        assert_eq!((flood.ok, flood.failed), (20, 0));
        assert_eq!(flood.ops % 8, 0, "whole batches");
        assert_eq!(flood.bytes, flood.ops * INV_FRAME_LEN);
        // One barrier round trip per connection.
        assert_eq!(flood.latency.count(), 20);
        assert_eq!(done[4].ok, 20);
    }

    /// Records what a flooding connection does: messages written since the last pong.
    struct Recorder {
        in_flight: u64,
        most_in_flight: u64,
        written: u64,
        acks: u64,
    }

    impl Conn for Recorder {
        async fn round_trip(&mut self, _nonce: u64) -> io::Result<()> {
            self.in_flight = 0;
            self.acks += 1;
            Ok(())
        }
        async fn flood(&mut self, batch: u32) -> io::Result<u64> {
            self.in_flight += u64::from(batch);
            self.most_in_flight = self.most_in_flight.max(self.in_flight);
            self.written += u64::from(batch);
            Ok(u64::from(batch) * INV_FRAME_LEN)
        }
    }

    #[test]
    fn a_flood_never_runs_more_than_a_window_ahead_and_counts_only_what_was_answered() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for batch in [1u32, 64, 100, 2048] {
            let mut c = Recorder {
                in_flight: 0,
                most_in_flight: 0,
                written: 0,
                acks: 0,
            };
            let tally = Tally::new();
            let nonce = Cell::new(0);
            let deadline = Instant::now() + Duration::from_millis(30);
            rt.block_on(flood_loop(&mut c, deadline, batch, &tally, &nonce))
                .unwrap();
            let window = u64::from(flood_window().max(batch));
            assert!(
                c.most_in_flight <= window,
                "batch {batch}: {}",
                c.most_in_flight
            );
            // Everything written was answered by the final barrier, and counted once.
            assert_eq!(c.in_flight, 0);
            assert_eq!(tally.ops.get(), c.written, "batch {batch}");
            assert_eq!(tally.bytes.get(), c.written * INV_FRAME_LEN);
            assert!(c.acks >= 1 && c.written > 0);
            // Only the final barrier's latency is recorded.
            assert_eq!(tally.latency.borrow().count(), 1);
        }
    }
}
