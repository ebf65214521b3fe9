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
use crate::start::{start_peer, SocketFacts};

/// How many peers beyond `max_peers` may be admitted while the peers evicted for them
/// are still ending.
const EVICTION_SLACK: usize = 64;

/// What every socket `listener` accepts will have: the listener's own address as its
/// local address when the listener is bound to a specific one (a wildcard listener's
/// connections each ask `getsockname`). `TCP_NODELAY` is still set per accepted socket:
/// setting it once on the listener (Linux's accepted sockets inherit it) needs the
/// listener's descriptor, which stock glommio 0.9 gives only through `unsafe` code.
fn listener_facts(listener: &TcpListener) -> SocketFacts {
    SocketFacts {
        local: listener
            .local_addr()
            .ok()
            .filter(|a| !a.ip().is_unspecified()),
    }
}

/// Accepts connections until cancelled; backs off when descriptors run out.
pub(crate) async fn accept_loop(core: Rc<CoreLocal>, listener: TcpListener) {
    let backoff = core.rt.gate.limits().accept_backoff;
    let mut last_warning: Option<Instant> = None;
    let facts = listener_facts(&listener);
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
                            facts,
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

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;

    /// An accepted peer's local address comes from a listener bound to a specific
    /// address, never from a wildcard one; the remote address is the one the
    /// connection came from.
    #[test]
    fn listener_facts_name_only_a_specific_local_address() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let facts = listener_facts(&listener);
                assert_eq!(facts.local, listener.local_addr().ok());
                let addr = listener.local_addr().unwrap();
                let client = std::net::TcpStream::connect(addr).unwrap();
                let accepted = listener.accept().await.unwrap();
                assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
                assert_eq!(accepted.local_addr().unwrap(), addr);

                let wildcard = TcpListener::bind("0.0.0.0:0").unwrap();
                assert_eq!(listener_facts(&wildcard).local, None);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
