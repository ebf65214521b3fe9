//! One executor of the runtime: its control mailbox, its acceptor, its peers.
//!
//! Each executor thread runs [`core_main`]: it takes requests from the runtime
//! (connect, adopt a stream, shut down) from its control mailbox, accepts on its own
//! `SO_REUSEPORT` listener when the runtime listens, and starts one [`Driver`] task per
//! peer. A peer never leaves the executor it started on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::{TcpListener, TcpStream};
use glommio::timer::Timer;
use peer_core::{Config, DisconnectReason, Listener, Peer};
use tracing::{debug, warn, Instrument};

use crate::counters::{bump, CoreCounters};
use crate::driver::Driver;
use crate::error::Error;
use crate::handle::{Command, Direction, PeerHandle, PeerShared};
use crate::limits::{Admission, Gate, Refusal};
use crate::mailbox::Mailbox;
use crate::pending::Resolver;

/// Size of the per-executor scratch buffer sockets are read into.
pub(crate) const SCRATCH_LEN: usize = 64 * 1024;

/// How many peers beyond `max_peers` may be admitted while the peers evicted for them
/// are still ending.
const EVICTION_SLACK: usize = 64;

/// Makes the application's listener for a new peer. Called on the peer's executor
/// thread, so the listener itself need not be `Send`.
pub type ListenerFactory = Arc<dyn Fn(&PeerHandle) -> Box<dyn Listener> + Send + Sync>;

/// Chooses the config of one accepted connection from its remote address (`None`: the
/// runtime's).
pub type InboundConfigFn = Arc<dyn Fn(SocketAddr) -> Option<Arc<Config>> + Send + Sync>;

/// A listener supplied with one connection request (it travels to the executor).
pub(crate) type SentListener = Box<dyn Listener + Send>;

/// The answer to a connect or adopt request.
pub(crate) type PeerReply = Resolver<Result<PeerHandle, Error>>;

/// What the runtime asks of an executor.
pub(crate) enum Control {
    Connect {
        addr: SocketAddr,
        /// The local address to connect from; `None`: the kernel's choice.
        local: Option<SocketAddr>,
        listener: Option<SentListener>,
        /// This peer's own config (`None`: the runtime's).
        config: Option<Arc<Config>>,
        reply: PeerReply,
    },
    Adopt {
        stream: std::net::TcpStream,
        direction: Direction,
        listener: Option<SentListener>,
        /// This peer's own config (`None`: the runtime's).
        config: Option<Arc<Config>>,
        reply: PeerReply,
    },
    Shutdown,
}

/// What every executor of a runtime shares.
pub(crate) struct RuntimeShared {
    pub(crate) config: Arc<Config>,
    pub(crate) factory: ListenerFactory,
    pub(crate) inbound_config: Option<InboundConfigFn>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) cores: Vec<Arc<CoreShared>>,
    pub(crate) shutting_down: AtomicBool,
    seeds: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

impl RuntimeShared {
    pub(crate) fn new(
        config: Arc<Config>,
        factory: ListenerFactory,
        inbound_config: Option<InboundConfigFn>,
        gate: Arc<Gate>,
        cores: Vec<Arc<CoreShared>>,
    ) -> RuntimeShared {
        RuntimeShared {
            config,
            factory,
            inbound_config,
            gate,
            cores,
            shutting_down: AtomicBool::new(false),
            seeds: AtomicU64::new(0),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Bytes all peers of all executors hold in queued output and read buffers.
    pub(crate) fn memory_in_use(&self) -> usize {
        self.cores
            .iter()
            .map(|c| c.memory.load(Ordering::Relaxed))
            .sum()
    }

    /// Disconnects one inbound peer chosen by Core's eviction rules
    /// ([`crate::evict`]); false when every inbound peer is protected.
    pub(crate) fn evict_one(&self) -> bool {
        let now = Instant::now();
        let handles: Vec<PeerHandle> = self
            .cores
            .iter()
            .flat_map(|c| {
                c.peers()
                    .values()
                    .filter(|h| h.is_inbound() && h.connected())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let candidates = handles
            .iter()
            .filter_map(|h| h.shared.standing.candidate(h.id(), now))
            .collect();
        let Some(victim) = crate::evict::select(candidates, &self.hasher) else {
            return false;
        };
        match handles.iter().find(|h| h.id() == victim) {
            Some(h) => {
                debug!(remote = %h.addr(), "evicting an inbound peer to admit a new one");
                h.shared.life.set_closing();
                h.shared
                    .post(Command::DisconnectWith(DisconnectReason::Evicted));
                true
            }
            None => false,
        }
    }

    /// A seed for a peer's random numbers: a keyed hash of a counter (the key is
    /// random per process), so nonces differ between peers and between runs.
    fn next_seed(&self) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u64(self.seeds.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }
}

/// The part of an executor other threads can see.
pub(crate) struct CoreShared {
    pub(crate) index: usize,
    pub(crate) control: Mailbox<Control>,
    pub(crate) counters: Arc<CoreCounters>,
    pub(crate) peers: Mutex<HashMap<u64, PeerHandle>>,
    /// Bytes this executor's peers hold in queued output and read buffers (written by
    /// this executor only; summed against [`Limits::memory_budget`](crate::Limits)).
    pub(crate) memory: AtomicUsize,
}

impl CoreShared {
    pub(crate) fn new(index: usize) -> CoreShared {
        CoreShared {
            index,
            control: Mailbox::new(),
            counters: Arc::new(CoreCounters::default()),
            peers: Mutex::new(HashMap::new()),
            memory: AtomicUsize::new(0),
        }
    }

    pub(crate) fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PeerHandle>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The executor-local state (lives on the executor thread only).
pub(crate) struct CoreLocal {
    pub(crate) index: usize,
    pub(crate) rt: Arc<RuntimeShared>,
    pub(crate) me: Arc<CoreShared>,
    pub(crate) counters: Arc<CoreCounters>,
    /// Sockets are read into this, then only incomplete frames are copied to peers.
    pub(crate) scratch: RefCell<Box<[u8]>>,
    /// Peer and connect tasks still running.
    tasks: Cell<usize>,
    tasks_done: RefCell<Option<Waker>>,
    stopping: Cell<bool>,
    /// Tasks waiting in [`CoreLocal::stopped`], by waiter key. A waiter removes its
    /// entry when it is dropped: a connect that finishes first must not leave its
    /// waker behind (a waker keeps its whole task allocated).
    stop_wakers: RefCell<HashMap<u64, Waker>>,
    next_stop_waiter: Cell<u64>,
    /// The budget state as of the last check (see [`budget_loop`]).
    pub(crate) budget: BudgetState,
}

/// What the last memory-budget check found, read by every peer of the executor.
#[derive(Default)]
pub(crate) struct BudgetState {
    /// The runtime holds more than `Limits::memory_budget`.
    pub(crate) over: Cell<bool>,
    /// Peers paused by the budget, woken at the next check.
    pub(crate) waiters: RefCell<Vec<Waker>>,
    /// Incremented at every check; a paused peer registers once per check.
    pub(crate) epoch: Cell<u64>,
}

impl CoreLocal {
    /// Whether a peer holding `held` bytes is over its share of an exceeded budget.
    /// (The driver asks only for peers with output waiting: a peer whose output is
    /// empty adds nothing by processing, and a paused peer must have a write pending
    /// to notice that its remote went away.)
    pub(crate) fn over_budget(&self, held: usize) -> bool {
        let budget = self.rt.gate.limits().memory_budget;
        if held <= budget / self.rt.gate.total().max(1) {
            return false;
        }
        self.budget.over.get()
            || self.me.memory.load(Ordering::Relaxed) > budget / self.rt.cores.len().max(1)
    }

    /// Whether a peer holding `held` bytes must stop reading now, and if so registers
    /// its waker for the next budget check (once per check).
    ///
    /// Over budget means: the last check found the runtime over
    /// `Limits::memory_budget`, or this executor alone holds more than its share of
    /// it (seen at once, without waiting for the check). Then a peer holding more
    /// than its fair share (budget / peers) pauses.
    pub(crate) fn budget_pause(&self, held: usize, registered: &mut u64, cx: &Context<'_>) -> bool {
        if !self.over_budget(held) {
            return false;
        }
        let b = &self.budget;
        if *registered != b.epoch.get() {
            *registered = b.epoch.get();
            b.waiters.borrow_mut().push(cx.waker().clone());
        }
        true
    }
}

/// Every `Limits::budget_check_interval`, sums the memory of all executors and decides
/// who pauses: while over the budget, peers above their fair share stop reading and the
/// acceptor refuses; paused peers are woken at every check to look again.
async fn budget_loop(core: Rc<CoreLocal>) {
    let limits = core.rt.gate.limits();
    let (budget, every) = (limits.memory_budget, limits.budget_check_interval);
    loop {
        Timer::new(every).await;
        let used = core.rt.memory_in_use();
        let over = used > budget;
        let b = &core.budget;
        if over && !b.over.get() {
            warn!(
                used,
                budget,
                "memory budget reached: pausing the heaviest peers, refusing new connections"
            );
        }
        b.over.set(over);
        // Paused peers look again only once the runtime is back under the budget
        // (waking them all at every check while over would be a wake-up storm).
        if !over && !b.waiters.borrow().is_empty() {
            b.epoch.set(b.epoch.get().wrapping_add(1));
            let waiters = std::mem::take(&mut *b.waiters.borrow_mut());
            for w in waiters {
                w.wake();
            }
        }
    }
}

impl CoreLocal {
    pub(crate) fn new(rt: Arc<RuntimeShared>, me: Arc<CoreShared>) -> CoreLocal {
        CoreLocal {
            index: me.index,
            counters: me.counters.clone(),
            rt,
            me,
            scratch: RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice()),
            tasks: Cell::new(0),
            tasks_done: RefCell::new(None),
            stopping: Cell::new(false),
            stop_wakers: RefCell::new(HashMap::new()),
            next_stop_waiter: Cell::new(0),
            budget: BudgetState::default(),
        }
    }

    pub(crate) fn unregister(&self, id: u64) {
        let mut peers = self.me.peers();
        peers.remove(&id);
        shrink_when_sparse(&mut peers);
    }

    fn task_started(&self) {
        self.tasks.set(self.tasks.get() + 1);
    }

    fn task_ended(&self) {
        let n = self.tasks.get().saturating_sub(1);
        self.tasks.set(n);
        if n == 0 {
            if let Some(w) = self.tasks_done.borrow_mut().take() {
                w.wake();
            }
        }
    }

    async fn all_tasks_ended(&self) {
        poll_fn(|cx| {
            if self.tasks.get() == 0 {
                Poll::Ready(())
            } else {
                *self.tasks_done.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn stop(&self) {
        self.stopping.set(true);
        let waiters = std::mem::take(&mut *self.stop_wakers.borrow_mut());
        for w in waiters.into_values() {
            w.wake();
        }
    }

    /// Resolves when the executor begins shutting down.
    fn stopped(&self) -> Stopped<'_> {
        Stopped {
            core: self,
            key: None,
        }
    }

    fn refusal_error(&self, refusal: Refusal, remote: SocketAddr) -> Error {
        let limits = self.rt.gate.limits();
        match refusal {
            Refusal::Total => Error::TooManyPeers {
                max: limits.max_peers,
            },
            Refusal::Core => Error::TooManyPeersOnCore {
                executor: self.index,
                max: limits.max_peers_per_core,
            },
            Refusal::PerIp => Error::TooManyFromIp {
                ip: remote.ip(),
                max: limits.max_inbound_per_ip,
            },
            Refusal::PerNetgroup => Error::TooManyFromNetgroup {
                ip: remote.ip(),
                max: limits.max_inbound_per_netgroup,
            },
        }
    }
}

/// The future of [`CoreLocal::stopped`]: registers its waker under its own key while
/// pending and removes it when dropped.
struct Stopped<'a> {
    core: &'a CoreLocal,
    key: Option<u64>,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let core = self.core;
        if core.stopping.get() {
            return Poll::Ready(());
        }
        let key = *self.key.get_or_insert_with(|| {
            let k = core.next_stop_waiter.get();
            core.next_stop_waiter.set(k.wrapping_add(1));
            k
        });
        core.stop_wakers
            .borrow_mut()
            .insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut wakers = self.core.stop_wakers.borrow_mut();
            wakers.remove(&key);
            shrink_when_sparse(&mut wakers);
        }
    }
}

/// The listener of a peer whose listener factory panicked: the peer is closed before
/// its driver starts, so nothing is ever dispatched to it.
struct NoListener;

impl Listener for NoListener {}

/// Gives a per-peer table's memory back once a surge of peers has left.
///
/// Why: a hash table keeps the capacity of its peak, and the tombstones that removals
/// leave can make it grow again during the next surge of the same size; a server that
/// once held 10,000 peers would keep (and add to) tables sized for them. Shrinking
/// when under a quarter full keeps the amortised cost constant (a table halves at most
/// once per quarter of its capacity removed) and memory near what the peers now hold.
fn shrink_when_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// Starts the driver task of a new peer on this executor and returns its handle.
fn start_peer(
    core: &Rc<CoreLocal>,
    stream: TcpStream,
    remote: SocketAddr,
    direction: Direction,
    admission: Admission,
    listener: Option<Box<dyn Listener>>,
    config: Option<Arc<Config>>,
) -> PeerHandle {
    // We batch our own writes; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    let now = Instant::now();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let seed = core.rt.next_seed();
    let config = config.unwrap_or_else(|| core.rt.config.clone());
    let our_version = config.max_protocol_version();
    let mut peer = match direction {
        Direction::Inbound => Peer::new_inbound(config, remote, now, unix, seed),
        Direction::Outbound => Peer::new_outbound(config, remote, now, unix, seed),
    };
    let local = stream.local_addr().ok();
    let shared = Arc::new(PeerShared::new(
        &peer,
        local,
        direction,
        core.index,
        our_version,
        admission.netgroup(),
    ));
    let handle = PeerHandle {
        shared: shared.clone(),
    };
    let listener = match listener {
        Some(l) => l,
        // The factory is application code: a panic in it ends this peer (with the
        // reason, for whoever waits on it), not the executor and its other peers.
        None => match catch_unwind(AssertUnwindSafe(|| (core.rt.factory)(&handle))) {
            Ok(l) => l,
            Err(panic) => {
                let message = crate::driver::panic_message(&*panic);
                tracing::error!(panic = %message, "listener factory panicked; disconnecting the peer");
                peer.disconnect(DisconnectReason::ApplicationPanicked {
                    what: "listener factory".into(),
                    message,
                });
                Box::new(NoListener)
            }
        },
    };
    core.me.peers().insert(handle.id(), handle.clone());
    let span = peer.span().clone();
    let driver = Box::new(Driver::new(
        stream,
        peer,
        shared,
        listener,
        core.clone(),
        admission,
    ));
    core.task_started();
    let c = core.clone();
    glommio::spawn_local(
        async move {
            driver.run().await;
            c.task_ended();
        }
        .instrument(span),
    )
    .detach();
    if core.stopping.get() {
        // Started while the executor shuts down (a connect finishing at that moment).
        handle.disconnect();
    }
    handle
}

/// The main future of one executor thread.
pub(crate) async fn core_main(core: Rc<CoreLocal>, listener: Option<TcpListener>) {
    let acceptor = listener.map(|l| glommio::spawn_local(accept_loop(core.clone(), l)));
    let budget = glommio::spawn_local(budget_loop(core.clone()));
    'serve: loop {
        poll_fn(|cx| core.me.control.poll_ready(cx)).await;
        for control in core.me.control.take_all() {
            match control {
                Control::Connect {
                    addr,
                    local,
                    listener,
                    config,
                    reply,
                } => {
                    core.task_started();
                    let c = core.clone();
                    glommio::spawn_local(async move {
                        connect(&c, addr, local, listener, config, reply).await;
                        c.task_ended();
                    })
                    .detach();
                }
                Control::Adopt {
                    stream,
                    direction,
                    listener,
                    config,
                    reply,
                } => reply.resolve(adopt(&core, stream, direction, listener, config)),
                Control::Shutdown => break 'serve,
            }
        }
        if core.me.control.is_closed() {
            break;
        }
    }

    debug!(executor = core.index, "executor shutting down");
    core.stop();
    budget.cancel().await;
    if let Some(acceptor) = acceptor {
        // Dropping the listener stops new connections reaching this executor.
        acceptor.cancel().await;
    }
    // Requests that arrive from now on are answered `ShuttingDown` (by the fallback of
    // their dropped resolvers).
    drop(core.me.control.close());
    let peers: Vec<PeerHandle> = core.me.peers().values().cloned().collect();
    for p in peers {
        p.disconnect();
    }
    core.all_tasks_ended().await;
    debug!(executor = core.index, "executor stopped");
}

/// Accepts connections until cancelled; backs off when descriptors run out.
async fn accept_loop(core: Rc<CoreLocal>, listener: TcpListener) {
    let backoff = core.rt.gate.limits().accept_backoff;
    let mut last_warning: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                bump(&core.counters.accepted, 1);
                let remote = match stream.peer_addr() {
                    Ok(a) => a,
                    // The remote is already gone.
                    Err(_) => continue,
                };
                if core.budget.over.get() {
                    // Over the memory budget: a new peer would only add to it.
                    bump(&core.counters.refused, 1);
                    debug!(%remote, "connection refused: memory budget reached");
                    drop(stream);
                    continue;
                }
                let mut admitted = core.rt.gate.admit(&core.counters.peers, Some(remote.ip()));
                if admitted.as_ref().err() == Some(&Refusal::Total)
                    && core.rt.gate.limits().evict_when_full
                    && core.rt.evict_one()
                {
                    // The evicted peer's slot comes back when its task ends; until
                    // then the newcomer may take one beyond the limit.
                    admitted = core.rt.gate.admit_over(
                        &core.counters.peers,
                        Some(remote.ip()),
                        EVICTION_SLACK,
                    );
                }
                match admitted {
                    Ok(admission) => {
                        let config = core.rt.inbound_config.as_ref().and_then(|f| f(remote));
                        start_peer(
                            &core,
                            stream,
                            remote,
                            Direction::Inbound,
                            admission,
                            None,
                            config,
                        );
                    }
                    Err(refusal) => {
                        bump(&core.counters.refused, 1);
                        debug!(%remote, ?refusal, "connection refused by limit");
                        drop(stream);
                    }
                }
            }
            Err(e) => {
                let e: io::Error = e.into();
                bump(&core.counters.accept_errors, 1);
                if is_resource_exhaustion(&e) {
                    bump(&core.counters.accept_backoffs, 1);
                    let now = Instant::now();
                    if last_warning.map_or(true, |t| now - t > Duration::from_secs(10)) {
                        warn!(error = %e, backoff_ms = backoff.as_millis() as u64,
                            "accept: out of descriptors or memory; backing off");
                        last_warning = Some(now);
                    }
                    Timer::new(backoff).await;
                } else {
                    debug!(error = %e, "accept failed");
                    // Never spin on a persistent error.
                    Timer::new(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux numbers; glommio runs on Linux only).
fn is_resource_exhaustion(e: &io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOBUFS: i32 = 105;
    matches!(e.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOBUFS))
}

/// Connects out, unless the executor shuts down first.
async fn connect(
    core: &Rc<CoreLocal>,
    addr: SocketAddr,
    local: Option<SocketAddr>,
    listener: Option<SentListener>,
    config: Option<Arc<Config>>,
    reply: PeerReply,
) {
    let admission = match core.rt.gate.admit(&core.counters.peers, None) {
        Ok(a) => a,
        Err(r) => return reply.resolve(Err(core.refusal_error(r, addr))),
    };
    let timeout = core.rt.gate.limits().connect_timeout;
    // A plain connect raced against a timer, not glommio's `connect_timeout`: that one
    // links an io_uring timeout to the connect, which sends the connect through the
    // kernel's async workers; 100 connects at once then took ~20 ms instead of ~2 ms
    // (peer-bench, 100 peers). Dropping the losing connect cancels it.
    let attempt = async {
        Some(match local {
            None => TcpStream::connect(addr).await.map_err(|e| Error::Connect {
                addr,
                source: e.into(),
            }),
            Some(local) => crate::dial::connect_from(local, addr).await,
        })
    };
    let expired = async {
        Timer::new(timeout).await;
        Some(Err(Error::Connect {
            addr,
            source: io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
        }))
    };
    let stop = async {
        core.stopped().await;
        None
    };
    let attempt = futures_lite::future::or(attempt, expired);
    match futures_lite::future::or(attempt, stop).await {
        None => reply.resolve(Err(Error::ShuttingDown)),
        Some(Err(e)) => {
            bump(&core.counters.connect_failures, 1);
            debug!(%addr, error = %e, "connect failed");
            reply.resolve(Err(e));
        }
        Some(Ok(stream)) => {
            let listener = listener.map(|l| l as Box<dyn Listener>);
            let handle = start_peer(
                core,
                stream,
                addr,
                Direction::Outbound,
                admission,
                listener,
                config,
            );
            reply.resolve(Ok(handle));
        }
    }
}

/// Takes over a caller-owned connected stream.
fn adopt(
    core: &Rc<CoreLocal>,
    stream: std::net::TcpStream,
    direction: Direction,
    listener: Option<SentListener>,
    config: Option<Arc<Config>>,
) -> Result<PeerHandle, Error> {
    if core.stopping.get() {
        return Err(Error::ShuttingDown);
    }
    let remote = stream
        .peer_addr()
        .map_err(|source| Error::Adopt { source })?;
    let inbound_ip = (direction == Direction::Inbound).then(|| remote.ip());
    let admission = core
        .rt
        .gate
        .admit(&core.counters.peers, inbound_ip)
        .map_err(|r| core.refusal_error(r, remote))?;
    let stream = crate::adopt::into_glommio(stream);
    let listener = listener.map(|l| l as Box<dyn Listener>);
    Ok(start_peer(
        core, stream, remote, direction, admission, listener, config,
    ))
}

#[cfg(test)]
mod tests {
    use super::shrink_when_sparse;
    use std::collections::HashMap;

    #[test]
    fn a_table_shrinks_once_a_surge_has_left_and_keeps_what_remains() {
        let mut map: HashMap<u64, u64> = (0..10_000).map(|i| (i, i * 2)).collect();
        let peak = map.capacity();
        for i in 0..9_990 {
            map.remove(&i);
            shrink_when_sparse(&mut map);
        }
        assert!(map.capacity() < peak / 64, "{} of {peak}", map.capacity());
        assert_eq!(map.len(), 10);
        assert!((9_990..10_000).all(|i| map.get(&i) == Some(&(i * 2))));
    }
}
