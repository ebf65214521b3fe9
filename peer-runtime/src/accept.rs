//! The acceptor of one executor: admission (limits, Core's eviction when full, the
//! memory budget) and backing off when descriptors run out.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use glommio::timer::Timer;
use tracing::{debug, warn};

use crate::counters::bump;
use crate::executor::CoreLocal;
use crate::handle::Direction;
use crate::limits::Refusal;
use crate::start::start_peer;

/// How many peers beyond `max_peers` may be admitted while the peers evicted for them
/// are still ending.
const EVICTION_SLACK: usize = 64;

/// Accepts connections until cancelled; backs off when descriptors run out.
pub(crate) async fn accept_loop(core: Rc<CoreLocal>, listener: TcpListener) {
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
                            false,
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
