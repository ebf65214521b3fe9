//! Starting a peer: its `peer_core::Peer`, its handle, its listener and its driver
//! task, on the executor that has its socket.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use glommio::net::TcpStream;
use peer_core::{Config, DisconnectReason, Listener, Peer};
use tracing::Instrument;

use crate::driver::Driver;
use crate::executor::CoreLocal;
use crate::handle::{Direction, PeerHandle, PeerShared};
use crate::limits::Admission;

/// The listener of a peer whose listener factory panicked: the peer is closed before
/// its driver starts, so nothing is ever dispatched to it.
struct NoListener;

impl Listener for NoListener {}

/// What is already known of a new peer's socket, so that starting it asks the kernel
/// no more than it must: an accepted connection's local address is the listener's when
/// that is a specific address (a `getsockname` per accepted peer otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SocketFacts {
    /// The local address, when known without `getsockname`.
    pub(crate) local: Option<SocketAddr>,
}

/// Starts the driver task of a new peer on this executor and returns its handle.
// One call site per way a peer starts; bundling the arguments would only move them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_peer(
    core: &Rc<CoreLocal>,
    stream: TcpStream,
    remote: SocketAddr,
    direction: Direction,
    admission: Admission,
    listener: Option<Box<dyn Listener>>,
    config: Option<Arc<Config>>,
    v2: bool,
    facts: SocketFacts,
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
    let v2 = v2 && config.v2_transport;
    let mut peer = match direction {
        Direction::Inbound => Peer::new_inbound(config, remote, now, unix, seed),
        Direction::Outbound if v2 => Peer::new_outbound_v2(config, remote, now, unix, seed),
        Direction::Outbound => Peer::new_outbound(config, remote, now, unix, seed),
    };
    // A v2 attempt that fails before the version exchange is retried in v1 by the
    // driver: what was queued for it is kept for the retry, not failed.
    peer.keep_queue_for_v1_retry(v2 && direction == Direction::Outbound);
    let local = facts.local.or_else(|| stream.local_addr().ok());
    let shared = Arc::new(PeerShared::new(
        &peer,
        local,
        direction,
        core.index,
        our_version,
        admission.netgroup(),
        now,
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
                let reason = DisconnectReason::application_panicked("listener factory", &*panic);
                tracing::error!(%reason, "listener factory panicked; disconnecting the peer");
                peer.disconnect(reason);
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
    let mut driver = driver;
    driver.v1_fallback = v2;
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
