//! [`Runtime`] and [`RuntimeBuilder`]: the executor pool and its public entry points.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::{CpuSet, LocalExecutorBuilder, Placement};
use peer_core::{Config, Listener, SharedFrame};
use tracing::debug;
use wire_codec::message::ServiceFlags;
use wire_codec::Network;

use crate::control::{Control, InboundConfigFn, ListenerFactory, PeerReply};
use crate::counters::RuntimeStats;
use crate::error::Error;
use crate::executor::CoreLocal;
use crate::handle::{Direction, PeerHandle};
use crate::limits::{Gate, Limits};
use crate::options::PeerOptions;
use crate::pending::{pending, Pending};
use crate::serve::executor_main;
use crate::shared::{CoreShared, RuntimeShared};

/// Default io_uring buffer memory per executor. glommio preallocates (and locks) this
/// for storage I/O, which a peer runtime does not do; its own default is 10 MiB, more
/// than an unprivileged `ulimit -l` of 8 MiB allows.
pub const DEFAULT_IO_MEMORY: usize = 512 * 1024;

/// Submission entries of each of an executor's io_uring rings (glommio's default: 128).
///
/// Why: every read-readiness wait of every peer is a poll request the kernel files in
/// the ring's cancel hash table, whose size it derives from the ring's depth
/// (`ilog2(completion entries) - 5` bits, at most 8): 8 buckets at glommio's default.
/// glommio cancels two timeouts each time an executor parks, and a cancel walks the
/// poll requests of its bucket first, so every park walked an eighth of all the
/// executor's peers — `io_poll_find` was 2.5 % of the server's CPU in a ping flood at
/// 1,000 peers and 5 % in a connect storm at 3,000. 4,096 entries give the 256 buckets
/// the kernel allows; the rings cost ~1.2 MiB of kernel memory per executor.
const RING_DEPTH: usize = 4096;

/// The batch of a sleeping executor's wake-ups a server with many peers should ask
/// for: at most this many completions…
pub const DEFAULT_WAKE_BATCH_EVENTS: u32 = 64;
/// …awaited for at most this long (glommio change 19's `LocalExecutorBuilder::wake_batch`,
/// through [`RuntimeBuilder::executor_builder`]; off unless asked for).
pub const DEFAULT_WAKE_BATCH_DELAY: Duration = Duration::from_millis(1);

/// Adjusts an executor's glommio builder (see [`RuntimeBuilder::executor_builder`]).
type ExecutorBuilderFn = Arc<dyn Fn(LocalExecutorBuilder) -> LocalExecutorBuilder + Send + Sync>;

/// A listener that ignores every callback: peers still handshake, answer pings and
/// keep themselves alive (peer-core does that), and nothing else happens.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopListener;

impl Listener for NoopListener {}

/// Configures and starts a [`Runtime`].
///
/// ```
/// use peer_runtime::{Limits, Runtime};
/// use wire_codec::{message::ServiceFlags, Network};
///
/// let rt = Runtime::builder(Network::Regtest)
///     .configure(|cfg| cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS)
///     .listen("127.0.0.1:0".parse().unwrap())
///     .executors(2)
///     .start()
///     .unwrap();
/// println!("listening on {}", rt.local_addr().unwrap());
/// rt.shutdown();
/// ```
pub struct RuntimeBuilder {
    config: Config,
    executors: Option<usize>,
    pin: bool,
    listen: Option<SocketAddr>,
    limits: Limits,
    factory: ListenerFactory,
    inbound_config: Option<InboundConfigFn>,
    io_memory: usize,
    executor_builder: Option<ExecutorBuilderFn>,
    name: String,
}

impl RuntimeBuilder {
    /// A builder with peer-core's defaults for `network`, one executor per CPU, pinned,
    /// not listening, default [`Limits`], and [`NoopListener`]s.
    pub fn new(network: Network) -> RuntimeBuilder {
        RuntimeBuilder::with_config(Config::new(network))
    }

    /// A builder with a complete peer configuration.
    pub fn with_config(config: Config) -> RuntimeBuilder {
        RuntimeBuilder {
            config,
            executors: None,
            pin: true,
            listen: None,
            limits: Limits::default(),
            factory: Arc::new(|_| Box::new(NoopListener)),
            inbound_config: None,
            io_memory: DEFAULT_IO_MEMORY,
            executor_builder: None,
            name: "peerwire".into(),
        }
    }

    /// Adjusts the peer configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> RuntimeBuilder {
        f(&mut self.config);
        self
    }

    /// How many executors (threads) to run. Default: one per available CPU.
    pub fn executors(mut self, n: usize) -> RuntimeBuilder {
        self.executors = Some(n.max(1));
        self
    }

    /// Whether executor `i` is pinned to the `i`-th online CPU (default: yes). Turn off
    /// when several runtimes share a machine's CPUs unevenly.
    pub fn pin(mut self, pin: bool) -> RuntimeBuilder {
        self.pin = pin;
        self
    }

    /// Accept inbound peers on `addr`; every executor gets its own `SO_REUSEPORT`
    /// socket on it, and the kernel spreads connections over them. Port 0 picks a free
    /// port (see [`Runtime::local_addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> RuntimeBuilder {
        self.listen = Some(addr);
        self
    }

    /// Connection limits.
    pub fn limits(mut self, limits: Limits) -> RuntimeBuilder {
        self.limits = limits;
        self
    }

    /// Makes each peer's listener (called on the peer's executor, with the peer's
    /// handle, before the peer's task starts).
    pub fn listener_factory<F>(mut self, f: F) -> RuntimeBuilder
    where
        F: Fn(&PeerHandle) -> Box<dyn Listener> + Send + Sync + 'static,
    {
        self.factory = Arc::new(f);
        self
    }

    /// Chooses the config of each accepted connection from its remote address (called
    /// on the accepting executor; `None` keeps the runtime's config). Outbound peers
    /// and adopted streams take theirs from [`PeerOptions`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::Config;
    /// use peer_runtime::Runtime;
    /// use wire_codec::Network;
    ///
    /// let mut local = Config::new(Network::Regtest);
    /// local.user_agent_name = "for-loopback".into();
    /// let local = Arc::new(local);
    /// let rt = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .inbound_config(move |remote| remote.ip().is_loopback().then(|| local.clone()))
    ///     .start()
    ///     .unwrap();
    /// rt.shutdown();
    /// ```
    pub fn inbound_config<F>(mut self, f: F) -> RuntimeBuilder
    where
        F: Fn(SocketAddr) -> Option<Arc<Config>> + Send + Sync + 'static,
    {
        self.inbound_config = Some(Arc::new(f));
        self
    }

    /// io_uring buffer memory per executor (default [`DEFAULT_IO_MEMORY`]).
    pub fn io_memory(mut self, bytes: usize) -> RuntimeBuilder {
        self.io_memory = bytes;
        self
    }

    /// Adjusts each executor's glommio builder before it is made (after the runtime
    /// has set placement, I/O memory and ring depth): for glommio settings the runtime
    /// does not choose itself.
    ///
    /// The workspace's patched glommio (`third_party/glommio`, change 19) offers
    /// `LocalExecutorBuilder::wake_batch`: a busy executor's sleep waits for the
    /// completions it expects within a delay and is woken once for them. A server with
    /// many peers should ask for [`DEFAULT_WAKE_BATCH_EVENTS`] within
    /// [`DEFAULT_WAKE_BATCH_DELAY`] (the seed-server example does): it cut the
    /// seed-server's CPU per ping round trip by a quarter at 1,000 peers. A message never
    /// waits longer than the delay; closed loops of few flows over loopback, whose
    /// short round trips look like a high rate, back off from batches that do not
    /// come (one peer pinging the seed-server on 127.0.0.1: 52.5 k round trips/s
    /// unbatched, 49.6 k batched, p50 0.02 ms both). It is not this library's default
    /// only because stock glommio, which the published crate builds on, lacks it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peer_runtime::Runtime;
    /// use wire_codec::Network;
    ///
    /// let rt = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .executor_builder(|b| b.preempt_timer(Duration::from_millis(50)))
    ///     .start()
    ///     .unwrap();
    /// rt.shutdown();
    /// ```
    pub fn executor_builder<F>(mut self, f: F) -> RuntimeBuilder
    where
        F: Fn(LocalExecutorBuilder) -> LocalExecutorBuilder + Send + Sync + 'static,
    {
        self.executor_builder = Some(Arc::new(f));
        self
    }

    /// Prefix of the executor threads' names (default `peerwire`).
    pub fn thread_name(mut self, name: &str) -> RuntimeBuilder {
        self.name = name.into();
        self
    }

    /// Starts the executors (and their listeners). Fails if the configuration is
    /// invalid, an executor cannot start, or the address cannot be bound; nothing keeps
    /// running then.
    pub fn start(self) -> Result<Runtime, Error> {
        self.config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        let n = self.executors.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let cpus = if self.pin { online_cpus() } else { Vec::new() };
        let cores: Vec<Arc<CoreShared>> = (0..n).map(|i| Arc::new(CoreShared::new(i))).collect();
        let shared = Arc::new(RuntimeShared::new(
            Arc::new(self.config),
            self.factory,
            self.inbound_config,
            Arc::new(Gate::new(self.limits)),
            cores.clone(),
        ));
        let mut runtime = Runtime {
            shared: shared.clone(),
            threads: Mutex::new(Vec::with_capacity(n)),
            local_addr: None,
            next: AtomicUsize::new(0),
        };
        let mut listen = self.listen;
        for (i, core) in cores.into_iter().enumerate() {
            let placement = match cpus.get(i % cpus.len().max(1)) {
                Some(cpu) if self.pin => Placement::Fixed(*cpu),
                _ => Placement::Unbound,
            };
            let mut builder = LocalExecutorBuilder::new(placement)
                .io_memory(self.io_memory)
                .ring_depth(RING_DEPTH);
            if let Some(f) = &self.executor_builder {
                builder = f(builder);
            }
            let (tx, rx) = mpsc::channel::<Result<Option<SocketAddr>, Error>>();
            let rt = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || run_executor(i, builder, rt, core, listen, tx));
            let thread = match spawned {
                Ok(t) => t,
                Err(e) => {
                    return Err(Error::ExecutorStart {
                        executor: i,
                        reason: e.to_string(),
                    })
                }
            };
            runtime.lock_threads().push(thread);
            match rx.recv() {
                Ok(Ok(bound)) => {
                    // Later executors bind the port the first one got (port 0 case).
                    if let Some(addr) = bound {
                        listen = Some(addr);
                        runtime.local_addr = Some(addr);
                    }
                }
                Ok(Err(e)) => return Err(e), // `runtime` drops: started executors stop
                Err(_) => {
                    return Err(Error::ExecutorStart {
                        executor: i,
                        reason: "executor thread ended during start".into(),
                    })
                }
            }
        }
        debug!(executors = n, listen = ?runtime.local_addr, "runtime started");
        Ok(runtime)
    }
}

/// CPU ids that are online, in order.
fn online_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = CpuSet::online()
        .map(|set| set.into_iter().map(|l| l.cpu).collect())
        .unwrap_or_default();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The body of one executor thread.
fn run_executor(
    index: usize,
    builder: LocalExecutorBuilder,
    rt: Arc<RuntimeShared>,
    core: Arc<CoreShared>,
    listen: Option<SocketAddr>,
    started: mpsc::Sender<Result<Option<SocketAddr>, Error>>,
) {
    let ex = match builder.make() {
        Ok(ex) => ex,
        Err(e) => {
            let _ = started.send(Err(Error::ExecutorStart {
                executor: index,
                reason: e.to_string(),
            }));
            return;
        }
    };
    ex.run(async move {
        let listener = match listen {
            None => None,
            Some(addr) => match TcpListener::bind(addr) {
                Ok(l) => Some(l),
                Err(e) => {
                    let _ = started.send(Err(Error::Bind {
                        addr,
                        source: e.into(),
                    }));
                    return;
                }
            },
        };
        let bound = listener.as_ref().and_then(|l| l.local_addr().ok());
        // The first time a process's executor parks, glommio spends 6–15 ms on one-time
        // set-up (measured: a first 10 µs sleep took 12.6 ms, later ones microseconds;
        // the first connect of a fresh runtime took 6–15 ms, later ones 0.2 ms). Park
        // once here, so that Runtime::start pays it and the first peers do not.
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        let _ = started.send(Ok(bound));
        executor_main(Rc::new(CoreLocal::new(rt, core)), listener).await;
    });
}

/// A thread-per-core peer runtime: executors pinned one per CPU, each with its own
/// listener, driving `peer_core` peers over io_uring sockets.
///
/// `Send + Sync`: share it (in an `Arc`) with any thread that connects peers or reads
/// statistics. Dropping it shuts it down (see [`Runtime::shutdown`]).
///
/// ```
/// use peer_runtime::{Error, Runtime};
/// use wire_codec::Network;
///
/// let rt = Runtime::builder(Network::Regtest).executors(1).start().unwrap();
/// // A port nobody listens on: the answer says why there is no peer.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
/// match rt.connect(closed).wait() {
///     Ok(peer) => println!("connected to {}", peer.addr()),
///     Err(e) => assert!(matches!(e, Error::Connect { .. }), "{e}"),
/// }
/// assert_eq!(rt.stats().connect_failures, 1);
/// rt.shutdown();
/// ```
pub struct Runtime {
    shared: Arc<RuntimeShared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    local_addr: Option<SocketAddr>,
    next: AtomicUsize,
}

impl Runtime {
    /// A [`RuntimeBuilder`] for `network`.
    pub fn builder(network: Network) -> RuntimeBuilder {
        RuntimeBuilder::new(network)
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The address the runtime listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// How many executors run.
    pub fn executors(&self) -> usize {
        self.shared.cores.len()
    }

    /// The peer configuration every peer of this runtime uses.
    pub fn config(&self) -> &Arc<Config> {
        &self.shared.config
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.shared.gate.limits()
    }

    fn next_core(&self) -> &Arc<CoreShared> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shared.cores.len();
        &self.shared.cores[i]
    }

    /// The one request behind the `connect*` methods.
    fn connect_request(
        &self,
        addr: SocketAddr,
        local: Option<SocketAddr>,
        listener: Option<Box<dyn Listener + Send>>,
    ) -> PeerRequest {
        self.connect_with_options(
            addr,
            PeerOptions {
                listener,
                local,
                config: None,
                v2: false,
            },
        )
    }

    /// Connects to `addr` with per-peer choices: its own config (overriding the
    /// runtime's, as btcd gives each peer its own `peer.Config`), listener and local
    /// address.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::{Config, NonceSet};
    /// use peer_runtime::{PeerOptions, Runtime};
    /// use wire_codec::Network;
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// let client = Runtime::builder(Network::Regtest).executors(1).start().unwrap();
    /// let mut cfg = Config::new(Network::Regtest);
    /// cfg.protocol_version = 70015;
    /// // Both runtimes are in this process: the client's nonces are its own, or the
    /// // server would take the connection for one to itself.
    /// cfg.nonces = Some(Arc::new(NonceSet::new()));
    /// let opts = PeerOptions::new().config(Arc::new(cfg));
    /// let peer = client.connect_with_options(server.local_addr().unwrap(), opts).wait().unwrap();
    /// assert_eq!(peer.wait_for_handshake_blocking(), Ok(70015));
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    pub fn connect_with_options(&self, addr: SocketAddr, opts: PeerOptions) -> PeerRequest {
        let PeerOptions {
            listener,
            local,
            config,
            v2,
        } = opts;
        self.request(|reply| Control::Connect {
            addr,
            local,
            listener,
            config,
            v2,
            reply,
        })
    }

    /// Connects to `addr` with BIP324 v2 ([`PeerOptions::v2`]: one v1 reconnect if the
    /// node drops the v2 attempt before the version exchange).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::{transport::TransportVersion, NonceSet};
    /// use peer_runtime::Runtime;
    /// use wire_codec::Network;
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// // Both runtimes live in one process here: own nonces, or it looks like a
    /// // connection to ourselves.
    /// let client = Runtime::builder(Network::Regtest)
    ///     .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
    ///     .executors(1)
    ///     .start()
    ///     .unwrap();
    /// let peer = client.connect_v2(server.local_addr().unwrap()).wait().unwrap();
    /// peer.wait_for_handshake_blocking().unwrap();
    /// assert_eq!(peer.transport(), Some(TransportVersion::V2));
    /// assert!(peer.session_id().is_some());
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    pub fn connect_v2(&self, addr: SocketAddr) -> PeerRequest {
        self.connect_with_options(addr, PeerOptions::new().v2(true))
    }

    /// Connects in v2 when the remote advertises NODE_P2P_V2 in `services` (from an
    /// address message or a seed), in v1 otherwise.
    pub fn connect_to_services(&self, addr: SocketAddr, services: ServiceFlags) -> PeerRequest {
        self.connect_with_options(
            addr,
            PeerOptions::new().v2(services.has(ServiceFlags::P2P_V2)),
        )
    }

    /// Connects to a peer given by host name: `host:port`, `[v6]:port`, or a bare host
    /// (the default port of the peer's network). The name is resolved by the runtime,
    /// on a short-lived helper thread (never on an executor); the first address is
    /// dialled. A name that does not resolve fails with [`Error::Resolve`].
    ///
    /// ```
    /// use peer_runtime::{PeerOptions, Runtime};
    /// use wire_codec::Network;
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// let client = Runtime::builder(Network::Regtest).executors(1).start().unwrap();
    /// let target = format!("localhost:{}", server.local_addr().unwrap().port());
    /// let peer = client.connect_host(&target, PeerOptions::new()).wait().unwrap();
    /// assert!(peer.addr().ip().is_loopback());
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    pub fn connect_host(&self, target: &str, opts: PeerOptions) -> PeerRequest {
        let network = opts
            .config
            .as_ref()
            .map_or(self.shared.config.network, |c| c.network);
        let (host, port) = crate::options::split_host(target, network.default_port());
        let (reply, answer) = pending(|| Err(Error::ShuttingDown));
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return answer;
        }
        let core = self.next_core().clone();
        let spawned = std::thread::Builder::new()
            .name("peerwire-resolve".into())
            .spawn(move || match crate::options::resolve(&host, port) {
                Err(e) => reply.resolve(Err(e)),
                Ok(addr) => {
                    let PeerOptions {
                        listener,
                        local,
                        config,
                        v2,
                    } = opts;
                    // A refused push drops the resolver: ShuttingDown.
                    let _ = core.control.push(Control::Connect {
                        addr,
                        local,
                        listener,
                        config,
                        v2,
                        reply,
                    });
                }
            });
        // A thread that could not start dropped the resolver with it: the answer is
        // ShuttingDown, as for a runtime that cannot take work.
        drop(spawned);
        answer
    }

    fn request(&self, make: impl FnOnce(PeerReply) -> Control) -> PeerRequest {
        let (reply, answer) = pending(|| Err(Error::ShuttingDown));
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return answer; // `reply` drops: answered ShuttingDown
        }
        // A refused push drops the request and with it the resolver: ShuttingDown.
        let _ = self.next_core().control.push(make(reply));
        answer
    }

    /// Connects to `addr` on the next executor (round robin); the answer is the peer
    /// (its handshake runs on) or why it could not be made.
    pub fn connect(&self, addr: SocketAddr) -> PeerRequest {
        self.connect_request(addr, None, None)
    }

    /// Like [`Runtime::connect`], with this peer's own listener instead of one from
    /// the factory.
    pub fn connect_with(
        &self,
        addr: SocketAddr,
        listener: Box<dyn Listener + Send>,
    ) -> PeerRequest {
        self.connect_request(addr, None, Some(listener))
    }

    /// Like [`Runtime::connect`], from the local address `local` (port 0: any free
    /// port). Each local IP address has its own range of ephemeral ports, so spreading
    /// connections over several (`127.0.0.2`, `127.0.0.3`, … on loopback) opens more
    /// connections to one server than one address can; on a multi-homed host it picks
    /// the interface. An address this machine does not have fails with
    /// [`Error::LocalBind`].
    ///
    /// ```
    /// use peer_runtime::Runtime;
    /// use wire_codec::Network;
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// let client = Runtime::builder(Network::Regtest).executors(1).start().unwrap();
    /// let from = "127.0.0.9:0".parse().unwrap();
    /// let peer = client.connect_from(server.local_addr().unwrap(), from).wait().unwrap();
    /// assert_eq!(peer.local_addr().unwrap().ip().to_string(), "127.0.0.9");
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    pub fn connect_from(&self, addr: SocketAddr, local: SocketAddr) -> PeerRequest {
        self.connect_request(addr, Some(local), None)
    }

    /// Like [`Runtime::connect_from`], with this peer's own listener.
    pub fn connect_from_with(
        &self,
        addr: SocketAddr,
        local: SocketAddr,
        listener: Box<dyn Listener + Send>,
    ) -> PeerRequest {
        self.connect_request(addr, Some(local), Some(listener))
    }

    /// Takes over a connection the caller made (through a proxy, a custom dialer, or
    /// its own listener). `direction` says who opened it: an outbound peer sends its
    /// version first, an inbound one waits for the remote's.
    pub fn add_connection(&self, stream: std::net::TcpStream, direction: Direction) -> PeerRequest {
        self.add_connection_with_options(stream, direction, PeerOptions::new())
    }

    /// Like [`Runtime::add_connection`], with this peer's own listener.
    pub fn add_connection_with(
        &self,
        stream: std::net::TcpStream,
        direction: Direction,
        listener: Box<dyn Listener + Send>,
    ) -> PeerRequest {
        self.add_connection_with_options(stream, direction, PeerOptions::new().listener(listener))
    }

    /// Like [`Runtime::add_connection`], with per-peer choices (its own config and
    /// listener; a local address is meaningless for a connected stream and ignored).
    pub fn add_connection_with_options(
        &self,
        stream: std::net::TcpStream,
        direction: Direction,
        opts: PeerOptions,
    ) -> PeerRequest {
        self.request(|reply| Control::Adopt {
            stream,
            direction,
            listener: opts.listener,
            config: opts.config,
            reply,
        })
    }

    /// Handles of every running peer.
    pub fn peers(&self) -> Vec<PeerHandle> {
        self.shared
            .cores
            .iter()
            .flat_map(|c| c.peers().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Queues one frame, encoded once, to every running peer (detached: no
    /// notifications); returns how many peers it was queued to. Over v1 a large frame
    /// (a block) is then written to each peer from the frame's one allocation — 100
    /// peers hold 100 references, not 100 copies; over v2 each session encrypts it.
    /// For per-peer notifications or a subset of peers, use
    /// [`PeerHandle::queue_frame`] on the handles.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use peer_core::{NonceSet, SharedFrame};
    /// use peer_runtime::Runtime;
    /// use wire_codec::{message::Ping, Message, Network};
    ///
    /// let server = Runtime::builder(Network::Regtest)
    ///     .executors(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()
    ///     .unwrap();
    /// // Both runtimes live in one process here: own nonces, or it looks like a
    /// // connection to ourselves.
    /// let client = Runtime::builder(Network::Regtest)
    ///     .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
    ///     .executors(1)
    ///     .start()
    ///     .unwrap();
    /// for _ in 0..2 {
    ///     let peer = client.connect(server.local_addr().unwrap()).wait().unwrap();
    ///     peer.wait_for_handshake_blocking().unwrap();
    /// }
    /// // Encode once (a block in a real relay), queue to every peer.
    /// let frame = SharedFrame::new(Message::Ping(Ping { nonce: 1 }), Network::Regtest).unwrap();
    /// assert_eq!(client.broadcast(&frame), 2);
    /// client.shutdown();
    /// server.shutdown();
    /// ```
    pub fn broadcast(&self, frame: &SharedFrame) -> usize {
        let peers = self.peers();
        for p in &peers {
            p.queue_frame_detached(frame.clone());
        }
        peers.len()
    }

    /// Counters summed over all executors.
    pub fn stats(&self) -> RuntimeStats {
        let mut s = RuntimeStats::sum(self.shared.cores.iter().map(|c| &*c.counters));
        s.memory = self.shared.memory_in_use();
        s
    }

    /// Stops accepting, disconnects every peer (their pending notifications are
    /// answered `Failed`), waits for every peer task to end and joins the executors.
    /// Requests made during or after shutdown are answered [`Error::ShuttingDown`].
    pub fn shutdown(self) {
        self.stop_and_join();
    }

    fn stop_and_join(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        for core in &self.shared.cores {
            let _ = core.control.push(Control::Shutdown);
        }
        let me = std::thread::current().id();
        let threads: Vec<JoinHandle<()>> = self.lock_threads().drain(..).collect();
        for t in threads {
            if t.thread().id() == me {
                // Dropped on one of its own executors: that thread cannot wait for
                // itself; it ends when its executor finishes shutting down.
                continue;
            }
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("executors", &self.executors())
            .field("local_addr", &self.local_addr)
            .field("peers", &self.shared.gate.total())
            .finish()
    }
}

/// The answer to a connect or add-connection request: the new peer, or why not.
pub type PeerRequest = Pending<Result<PeerHandle, Error>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpus_are_sorted_and_unique() {
        let cpus = online_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
}
