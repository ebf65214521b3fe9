//! Per-peer choices for one connect or adopted stream, and outbound targets given by
//! host name.
//!
//! In btcd every peer has its own `peer.Config`; here a runtime has a default
//! [`Config`] and a [`PeerOptions`] can override it (and the listener and the local
//! address) for one peer. Host names are resolved here, in the runtime, on a helper
//! thread: peer-core never resolves anything, and an executor never blocks on DNS.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use peer_core::{Config, Listener};

use crate::error::Error;

/// What one peer does differently from the runtime's defaults.
///
/// ```
/// use std::sync::Arc;
/// use peer_core::Config;
/// use peer_runtime::PeerOptions;
/// use wire_codec::Network;
///
/// let mut cfg = Config::new(Network::Regtest);
/// cfg.user_agent_name = "special".into();
/// let opts = PeerOptions::new()
///     .config(Arc::new(cfg))
///     .local_addr("127.0.0.1:0".parse().unwrap());
/// # let _ = opts;
/// ```
#[derive(Default)]
#[non_exhaustive]
pub struct PeerOptions {
    pub(crate) listener: Option<Box<dyn Listener + Send>>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) config: Option<Arc<Config>>,
}

impl PeerOptions {
    /// The runtime's defaults: its config, a listener from its factory, the kernel's
    /// choice of local address.
    pub fn new() -> PeerOptions {
        PeerOptions::default()
    }

    /// This peer's own listener instead of one from the runtime's factory.
    pub fn listener(mut self, listener: Box<dyn Listener + Send>) -> PeerOptions {
        self.listener = Some(listener);
        self
    }

    /// Connect from this local address (port 0: any free port). Ignored for adopted
    /// streams, which are already connected.
    pub fn local_addr(mut self, local: SocketAddr) -> PeerOptions {
        self.local = Some(local);
        self
    }

    /// This peer's configuration instead of the runtime's (btcd: each peer has its own
    /// `peer.Config`): another user agent, services, protocol version, timeouts, even
    /// another network.
    pub fn config(mut self, config: Arc<Config>) -> PeerOptions {
        self.config = Some(config);
        self
    }
}

impl std::fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerOptions")
            .field("listener", &self.listener.is_some())
            .field("local", &self.local)
            .field("config", &self.config)
            .finish()
    }
}

/// Splits `host[:port]` (IPv6 literals in brackets) into host and port, with
/// `default_port` when none is given.
pub(crate) fn split_host(target: &str, default_port: u16) -> (String, u16) {
    let t = target.trim();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            return (host.to_string(), port);
        }
    }
    match t.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 literal.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_string(), p),
            Err(_) => (t.to_string(), default_port),
        },
        _ => (t.to_string(), default_port),
    }
}

/// Resolves `host` (blocking: call it off the executors). The first address wins, as
/// btcd's dialer takes the first.
pub(crate) fn resolve(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            host: host.to_string(),
            source,
        })?;
    addrs.next().ok_or_else(|| Error::Resolve {
        host: host.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split() {
        assert_eq!(
            split_host("seed.example:8333", 1),
            ("seed.example".into(), 8333)
        );
        assert_eq!(
            split_host("seed.example", 18444),
            ("seed.example".into(), 18444)
        );
        assert_eq!(split_host("[::1]:8333", 1), ("::1".into(), 8333));
        assert_eq!(split_host("[::1]", 7), ("::1".into(), 7));
        assert_eq!(split_host("::1", 7), ("::1".into(), 7));
        assert_eq!(split_host("127.0.0.1:99", 7), ("127.0.0.1".into(), 99));
    }

    #[test]
    fn localhost_resolves_and_nonsense_fails() {
        let a = resolve("localhost", 1234).unwrap();
        assert!(a.ip().is_loopback() && a.port() == 1234);
        assert!(matches!(
            resolve("no-such-host.invalid", 1),
            Err(Error::Resolve { .. })
        ));
    }
}
