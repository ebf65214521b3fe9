//! `sim-net`: a simulated Bitcoin network on 127.0.0.0/8 for the seeder's tests and
//! measurements. Every node has its own loopback address at the network's default
//! port; its behaviour follows from its index, so any process can compute the whole
//! layout and serve a shard of it (one process holds at most 20,000 descriptors).
//!
//! Behaviours: good; wrong network (speaks first, with another network's magic); old
//! protocol version; no NODE_NETWORK; silent (accepts, never speaks); poisoner (a good
//! handshake, then 1,000 fake addresses); dead (nothing listens). Every node that
//! answers `getaddr` (except poisoners) answers with a random sample of the layout.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use peer_core::{dispatch, Config, Listener, NonceSet, Peer};
use peer_helpers::push_addresses;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wire_codec::message::{AddrV2Entry, ServiceFlags};
use wire_codec::Network;

/// What a simulated node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// A healthy full node.
    Good,
    /// Another network's magic: speaks first, in a tongue we do not decode.
    WrongNetwork,
    /// Protocol version 60000 (below the good-node floor of 70001).
    OldVersion,
    /// Services without NODE_NETWORK.
    NoNetwork,
    /// Accepts and never sends a byte.
    Silent,
    /// A good handshake, then answers getaddr with 1,000 fake addresses.
    Poisoner,
    /// Nothing listens there.
    Dead,
}

impl Behaviour {
    /// Whether a correct seeder may serve this node.
    pub fn servable(self) -> bool {
        matches!(self, Behaviour::Good | Behaviour::Poisoner)
    }
}

/// The 20-slot pattern behaviours are drawn from: 11 good, 1 poisoner, 2 dead, and 1
/// each of wrong network, old version, no NODE_NETWORK, silent — plus 2 more dead.
const PATTERN: [Behaviour; 20] = [
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::Good,
    Behaviour::WrongNetwork,
    Behaviour::OldVersion,
    Behaviour::NoNetwork,
    Behaviour::Silent,
    Behaviour::Poisoner,
    Behaviour::Dead,
    Behaviour::Dead,
    Behaviour::Dead,
    Behaviour::Dead,
];

/// Network groups (/16s inside 127/8) the layout spreads over: 127.10 to 127.109.
pub const GROUPS: u32 = 100;

/// The address of node `i`: 127.(10 + i mod 100).y.z.
///
/// ```
/// assert_eq!(seeder::sim::address(0).to_string(), "127.10.0.1");
/// assert_eq!(seeder::sim::address(100).to_string(), "127.10.0.2");
/// ```
pub fn address(i: u32) -> Ipv4Addr {
    let g = 10 + (i % GROUPS) as u8;
    let rest = i / GROUPS;
    Ipv4Addr::new(127, g, (rest / 250) as u8, 1 + (rest % 250) as u8)
}

/// The behaviour of node `i` in a network built with `seed`.
pub fn behaviour(i: u32, seed: u64) -> Behaviour {
    let mut x = (u64::from(i) ^ seed.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    PATTERN[(x % PATTERN.len() as u64) as usize]
}

/// A fake address a poisoner hands out: 127.230-249.x.y, where nothing listens.
pub fn fake_address<R: Rng>(rng: &mut R) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        rng.gen_range(230..250),
        rng.gen(),
        rng.gen_range(1..255),
    )
}

/// The layout of a network of `nodes`.
pub fn layout(nodes: u32, seed: u64) -> Vec<(Ipv4Addr, Behaviour)> {
    (0..nodes)
        .map(|i| (address(i), behaviour(i, seed)))
        .collect()
}

/// A running shard of the network.
#[derive(Debug)]
pub struct SimHandle {
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Nodes listening in this shard.
    pub listening: usize,
}

impl SimHandle {
    /// Stops the shard (listeners close; open connections end with the process or
    /// their own timeouts).
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Which part of the network this process serves.
#[derive(Debug, Clone, Copy)]
pub struct SimSpec {
    /// The network nodes speak (regtest in tests).
    pub network: Network,
    /// Nodes in the whole network.
    pub nodes: u32,
    /// Layout seed.
    pub seed: u64,
    /// This shard: nodes `i` with `i % shards == shard`.
    pub shard: u32,
    /// Number of shards.
    pub shards: u32,
    /// Executor threads.
    pub threads: usize,
}

fn config(network: Network, b: Behaviour, nonces: &Arc<NonceSet>) -> Arc<Config> {
    let mut c = Config::new(network);
    c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    c.user_agent_name = "sim-net".into();
    c.user_agent_version = format!("{b:?}");
    c.nonces = Some(nonces.clone());
    c.report_io = false;
    c.disable_stall_detection = true;
    match b {
        Behaviour::WrongNetwork => {
            c.network = if network == Network::Mainnet {
                Network::Testnet3
            } else {
                Network::Mainnet
            };
        }
        Behaviour::OldVersion => c.protocol_version = 60000,
        Behaviour::NoNetwork => c.services = ServiceFlags::WITNESS,
        _ => {}
    }
    let height = 100;
    c.newest_block = Some(Arc::new(move || {
        Ok((wire_codec::Hash256::default(), height))
    }));
    Arc::new(c)
}

/// Starts serving shard `spec.shard` of the network; returns once every listener is
/// bound (an address that cannot be bound is skipped and logged).
pub fn start(spec: SimSpec) -> std::io::Result<SimHandle> {
    let port = spec.network.default_port();
    let all: Vec<(Ipv4Addr, Behaviour)> = layout(spec.nodes, spec.seed);
    let book: Arc<Vec<AddrV2Entry>> = Arc::new(
        all.iter()
            .map(|(ip, _)| {
                AddrV2Entry::from_ip(
                    1_700_000_000,
                    ServiceFlags::NETWORK | ServiceFlags::WITNESS,
                    (*ip).into(),
                    port,
                )
            })
            .collect(),
    );
    let mine: Vec<(u32, Ipv4Addr, Behaviour)> = all
        .iter()
        .enumerate()
        .filter(|(i, (_, b))| *i as u32 % spec.shards.max(1) == spec.shard && *b != Behaviour::Dead)
        .map(|(i, (ip, b))| (i as u32, *ip, *b))
        .collect();
    let threads = spec.threads.max(1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<usize>();
    for t in 0..threads {
        let part: Vec<_> = mine.iter().copied().skip(t).step_by(threads).collect();
        let book = book.clone();
        let stop = stop.clone();
        let ready = ready_tx.clone();
        let network = spec.network;
        let h = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(peer_runtime::DEFAULT_IO_MEMORY)
            .name(&format!("sim-{t}"))
            .spawn(move || async move {
                let nonces = Arc::new(NonceSet::new());
                let mut bound = 0;
                for (i, ip, b) in part {
                    let addr = SocketAddr::from((ip, port));
                    match TcpListener::bind(addr) {
                        Ok(l) => {
                            bound += 1;
                            let cfg = config(network, b, &nonces);
                            let book = book.clone();
                            glommio::spawn_local(accept_loop(l, b, cfg, book, i)).detach();
                        }
                        Err(e) => tracing::warn!(%addr, "sim node cannot bind: {e}"),
                    }
                }
                let _ = ready.send(bound);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        handles.push(h);
    }
    drop(ready_tx);
    let listening = ready_rx.iter().take(threads).sum();
    Ok(SimHandle {
        threads: handles
            .into_iter()
            .map(|h| {
                std::thread::spawn(move || {
                    let _ = h.join();
                })
            })
            .collect(),
        stop,
        listening,
    })
}

async fn accept_loop(
    l: TcpListener,
    b: Behaviour,
    cfg: Arc<Config>,
    book: Arc<Vec<AddrV2Entry>>,
    index: u32,
) {
    let mut n = 0u64;
    loop {
        let Ok(stream) = l.accept().await else {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            continue;
        };
        n += 1;
        let seed = (u64::from(index) << 32) ^ n;
        let cfg = cfg.clone();
        let book = book.clone();
        glommio::spawn_local(async move {
            let _ = serve(stream, b, cfg, book, seed).await;
        })
        .detach();
    }
}

/// A sim node's listener: answers getaddr.
struct SimListener {
    behaviour: Behaviour,
    book: Arc<Vec<AddrV2Entry>>,
    rng: SmallRng,
    port: u16,
}

impl Listener for SimListener {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        if self.behaviour == Behaviour::Poisoner {
            let fakes: Vec<AddrV2Entry> = (0..1000)
                .map(|_| {
                    AddrV2Entry::from_ip(
                        1_700_000_000,
                        ServiceFlags::NETWORK | ServiceFlags::WITNESS,
                        fake_address(&mut self.rng).into(),
                        self.port,
                    )
                })
                .collect();
            push_addresses(peer, &fakes, &mut self.rng);
        } else {
            push_addresses(peer, &self.book, &mut self.rng);
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    b: Behaviour,
    cfg: Arc<Config>,
    book: Arc<Vec<AddrV2Entry>>,
    seed: u64,
) -> std::io::Result<()> {
    let remote = stream.peer_addr()?;
    let mut tmp = vec![0u8; 16 * 1024];
    if b == Behaviour::Silent {
        // Read and drop until the prober gives up (or a minute passes).
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let r = futures_lite::future::or(async { Some(stream.read(&mut tmp).await) }, async {
                glommio::timer::sleep(Duration::from_secs(1)).await;
                None
            })
            .await;
            if let Some(Ok(0) | Err(_)) = r {
                break;
            }
        }
        return Ok(());
    }
    let now = Instant::now();
    let unix = crate::crawler::unix_now();
    let port = cfg.network.default_port();
    let mut peer = if b == Behaviour::WrongNetwork {
        Peer::new_outbound(cfg, remote, now, unix, seed)
    } else {
        Peer::new_inbound(cfg, remote, now, unix, seed)
    };
    let mut listener = SimListener {
        behaviour: b,
        book,
        rng: SmallRng::seed_from_u64(seed),
        port,
    };
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let now = Instant::now();
        while let Some(ev) = peer.poll_event() {
            dispatch(&mut peer, ev, &mut listener, now);
        }
        while peer.wants_write() {
            let n = stream.write(peer.transmit()).await?;
            if n == 0 {
                return Ok(());
            }
            peer.advance_transmit(n, Instant::now());
        }
        if peer.is_closed() {
            return Ok(());
        }
        let wait = peer.poll_timeout().map_or(Duration::from_secs(30), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let r = futures_lite::future::or(async { Some(stream.read(&mut tmp).await) }, async {
            glommio::timer::sleep(wait).await;
            None
        })
        .await;
        let now = Instant::now();
        match r {
            Some(Ok(0)) | Some(Err(_)) => return Ok(()),
            Some(Ok(n)) => {
                buf.extend_from_slice(&tmp[..n]);
                peer.handle_read(&mut buf, now);
            }
            None => peer.handle_timeout(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn layout_has_every_behaviour_and_distinct_addresses() {
        let l = layout(2000, 7);
        let kinds: HashSet<_> = l.iter().map(|(_, b)| *b).collect();
        assert_eq!(kinds.len(), 7);
        let ips: HashSet<_> = l.iter().map(|(ip, _)| *ip).collect();
        assert_eq!(ips.len(), 2000);
        let good = l.iter().filter(|(_, b)| *b == Behaviour::Good).count();
        assert!((900..1300).contains(&good), "{good}");
    }

    #[test]
    fn fakes_never_collide_with_the_layout() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..1000 {
            assert!(fake_address(&mut rng).octets()[1] >= 230);
        }
        assert!(address(5_000_000).octets()[1] < 110);
    }
}
