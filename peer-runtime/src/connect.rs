//! Outbound connections and caller-made streams: admission, the connect timeout, and
//! the peer's start.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use glommio::net::TcpStream;
use glommio::timer::Timer;
use peer_core::{Config, Listener};
use tracing::debug;

use crate::control::{PeerReply, SentListener};
use crate::counters::bump;
use crate::error::Error;
use crate::executor::CoreLocal;
use crate::handle::{Direction, PeerHandle};
use crate::start::{start_peer, SocketFacts};

/// Connects out, unless the executor shuts down first.
pub(crate) async fn connect(
    core: &Rc<CoreLocal>,
    addr: SocketAddr,
    local: Option<SocketAddr>,
    listener: Option<SentListener>,
    config: Option<Arc<Config>>,
    v2: bool,
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
                v2,
                SocketFacts::default(),
            );
            reply.resolve(Ok(handle));
        }
    }
}

/// Dials `addr` again for the v1 reconnect of a v2 connection that failed before the
/// version exchange (Bitcoin Core does the same), within the runtime's connect timeout;
/// `None` if the executor stops, the remote refuses or the timeout passes.
///
/// The new connection leaves from the failed one's local IP (`from`, any port): a
/// caller that chose its source address (`connect_from`, a load generator spreading
/// over 127.0.0.x) keeps it, and for anyone else it is the address the kernel picked.
pub(crate) async fn redial(
    core: &Rc<CoreLocal>,
    addr: SocketAddr,
    from: Option<SocketAddr>,
) -> Option<TcpStream> {
    if core.stopping.get() {
        return None;
    }
    let timeout = core.rt.gate.limits().connect_timeout;
    let attempt = async {
        match from {
            Some(local) => crate::dial::connect_from(SocketAddr::new(local.ip(), 0), addr)
                .await
                .ok(),
            None => TcpStream::connect(addr).await.ok(),
        }
    };
    let expired = async {
        Timer::new(timeout).await;
        None
    };
    futures_lite::future::or(attempt, expired).await
}

/// Takes over a caller-owned connected stream.
pub(crate) fn adopt(
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
        core,
        stream,
        remote,
        direction,
        admission,
        listener,
        config,
        false,
        SocketFacts::default(),
    ))
}
