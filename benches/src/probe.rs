//! What a `--target` is: one handshake from the coordinator, for the remote's user agent,
//! so a report labels an external target by what it is (`/btcd:0.24.2/`) instead of
//! calling it peerwire. peer-core does the protocol; this is a blocking driver of a few
//! lines over a std socket (the sans-IO core needs no runtime).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peer_core::{dispatch, Config, Event, Listener, Peer};
use wire_codec::Network;

struct Quiet;
impl Listener for Quiet {}

/// The user agent of the node at `addr` on `network`, or why it could not be learnt.
/// Bounded by `timeout` in all.
pub fn user_agent(addr: SocketAddr, network: Network, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut config = Config::new(network);
    config.user_agent_name = "peer-bench".into();
    config.user_agent_version = env!("CARGO_PKG_VERSION").into();
    // Its own nonce set: a target in this very process is not a connection to self.
    config.nonces = Some(Arc::new(peer_core::NonceSet::new()));
    let mut peer = Peer::new_outbound(Arc::new(config), addr, Instant::now(), unix, 0x9e0b);
    let mut chunk = [0u8; 4096];
    loop {
        let now = Instant::now();
        while let Some(ev) = peer.poll_event() {
            if let Event::Version(v) = &ev {
                return Ok(v.user_agent.clone());
            }
            dispatch(&mut peer, ev, &mut Quiet, now);
        }
        if let Some(reason) = peer.disconnect_reason() {
            return Err(reason.to_string());
        }
        while !peer.transmit().is_empty() {
            let n = stream.write(peer.transmit()).map_err(|e| e.to_string())?;
            peer.advance_transmit(n, Instant::now());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no version message within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection was closed".into());
        }
        peer.handle_input(&chunk[..n], Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_the_user_agent_of_a_peerwire_node() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let node = peer_tokio::Node::builder(Network::Regtest)
            .configure(|c| c.user_agent_name = "probe-target".into())
            .build()
            .unwrap();
        let addr = rt
            .block_on(node.listen("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        // The node's tasks run while this thread waits in the probe.
        let handle =
            std::thread::spawn(move || user_agent(addr, Network::Regtest, Duration::from_secs(20)));
        let ua = rt.block_on(async {
            loop {
                if handle.is_finished() {
                    break handle.join().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(ua.unwrap().contains("/probe-target:"));
        rt.block_on(node.shutdown());
    }

    #[test]
    fn a_closed_port_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(user_agent(addr, Network::Regtest, Duration::from_secs(5)).is_err());
    }
}
