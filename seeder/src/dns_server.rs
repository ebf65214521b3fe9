//! The DNS server: UDP workers (one `SO_REUSEPORT` socket each, so the kernel spreads
//! datagrams over them) and a TCP acceptor with a bounded number of connection threads.
//! Both hand every query to [`crate::dns::respond`] with the current good-node snapshot.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use crate::answer_cache::AnswerCache;
use crate::dns::{respond, Transport, Zone};
use crate::error::Error;
use crate::goodset::{current, SharedGood};
use crate::metrics::{self, Metrics};

/// Most TCP connections served at once; more are closed at once.
pub const MAX_TCP_CONNECTIONS: usize = 128;

/// A TCP client idle this long is dropped.
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// Everything a DNS worker needs.
#[derive(Clone)]
pub struct DnsContext {
    /// The zone.
    pub zone: Arc<Zone>,
    /// The good nodes.
    pub good: SharedGood,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, Error> {
    let bind = |e: std::io::Error| Error::Bind { addr, source: e };
    let s =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(bind)?;
    s.set_reuse_port(true).map_err(bind)?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into()).map_err(bind)?;
    Ok(s.into())
}

/// Binds UDP and TCP on `addr` and starts `workers` UDP threads and the TCP acceptor.
/// Returns the bound address (with the real port when 0 was asked for).
pub fn start(addr: SocketAddr, workers: usize, ctx: DnsContext) -> Result<SocketAddr, Error> {
    let first = udp_socket(addr)?;
    let bound = first.local_addr()?;
    let tcp = TcpListener::bind(bound).map_err(|e| Error::Bind {
        addr: bound,
        source: e,
    })?;
    let mut sockets = vec![first];
    for _ in 1..workers.max(1) {
        sockets.push(udp_socket(bound)?);
    }
    for (i, sock) in sockets.into_iter().enumerate() {
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || udp_worker(sock, ctx, i as u64))?;
    }
    let ctx2 = ctx.clone();
    std::thread::Builder::new()
        .name("dns-tcp".into())
        .spawn(move || tcp_acceptor(tcp, ctx2))?;
    Ok(bound)
}

fn udp_worker(sock: UdpSocket, ctx: DnsContext, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(rand::random::<u64>() ^ seed);
    let mut buf = [0u8; 4096];
    // The snapshot is re-read every few hundred queries (and at least every 100 ms):
    // one shared lock per query would bounce its cache line between the workers.
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut good = current(&ctx.good);
    let mut cache = AnswerCache::default();
    let mut since = 0u32;
    let mut answered = 0u64;
    loop {
        since += 1;
        if since >= 256 {
            since = 0;
            good = current(&ctx.good);
            metrics::add(&ctx.metrics.dns_udp, std::mem::take(&mut answered));
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    debug!("dns udp recv: {e}");
                }
                since = 256; // idle: refresh the snapshot and the counter
                continue;
            }
        };
        match cache.respond(&ctx.zone, &good, &buf[..n], &mut rng) {
            Some(out) => {
                let _ = sock.send_to(&out, from);
                answered += 1;
            }
            None => metrics::add(&ctx.metrics.dns_dropped, 1),
        }
    }
}

fn tcp_acceptor(listener: TcpListener, ctx: DnsContext) {
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        if open.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
            continue; // dropped: closed at once
        }
        open.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let open2 = open.clone();
        let spawned = std::thread::Builder::new()
            .name("dns-tcp-conn".into())
            .spawn(move || {
                tcp_connection(stream, &ctx);
                open2.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            warn!("dns tcp thread: {e}");
        }
    }
}

/// Serves length-prefixed queries until the client closes, idles or misbehaves.
fn tcp_connection(mut s: TcpStream, ctx: &DnsContext) {
    let _ = s.set_read_timeout(Some(TCP_IDLE));
    let _ = s.set_write_timeout(Some(TCP_IDLE));
    let _ = s.set_nodelay(true);
    let mut rng = SmallRng::seed_from_u64(rand::random());
    let mut len = [0u8; 2];
    let mut buf = vec![0u8; 0];
    loop {
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let n = usize::from(u16::from_be_bytes(len));
        buf.resize(n, 0);
        if s.read_exact(&mut buf).is_err() {
            return;
        }
        let good = current(&ctx.good);
        match respond(&ctx.zone, &good, &buf, Transport::Tcp, &mut rng) {
            Some(out) => {
                let mut framed = Vec::with_capacity(out.len() + 2);
                framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
                framed.extend_from_slice(&out);
                if s.write_all(&framed).is_err() {
                    return;
                }
                metrics::add(&ctx.metrics.dns_tcp, 1);
            }
            None => {
                metrics::add(&ctx.metrics.dns_dropped, 1);
                return; // nothing sensible to say: close
            }
        }
    }
}
