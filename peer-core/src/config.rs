//! What a peer is configured with: identity, network, services, policies and timeouts.
//!
//! A [`Config`] is plain data plus two optional providers (the newest block, and the
//! address translation for the version message). It is shared by many peers through an
//! `Arc`, so building one per connection is never needed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wire_codec::message::{NetAddress, ServiceFlags};
use wire_codec::{version, Hash256, Network};

use crate::error::Error;
use crate::nonce::NonceSet;

/// The user agent every peerwire peer starts with; the application's name, version and
/// comments are appended to it (BIP14), as btcd appends to `/btcwire:0.5.0/`.
pub const BASE_USER_AGENT: &str = concat!("/peerwire:", env!("CARGO_PKG_VERSION"), "/");

/// The longest user agent the protocol allows (btcd `MaxUserAgentLen`; the codec's
/// [`Limits::max_user_agent`](wire_codec::Limits::max_user_agent)).
pub const MAX_USER_AGENT_LEN: usize = wire_codec::Limits::BITCOIN.max_user_agent;

/// The lowest remote protocol version accepted by default (btcd
/// `MinAcceptableProtocolVersion` = `MultipleAddressVersion`).
pub const MIN_ACCEPTABLE_PROTOCOL_VERSION: u32 = version::MULTIPLE_ADDRESS;

/// Default inventory trickle interval (btcd `DefaultTrickleInterval`).
pub const DEFAULT_TRICKLE_INTERVAL: Duration = Duration::from_secs(10);

/// Default cap on a payload received before the handshake completes. A version message
/// is at most 358 bytes; the rest is room for reject messages and BIP434-style feature
/// messages that may arrive between version and verack.
pub const DEFAULT_MAX_PRE_HANDSHAKE_PAYLOAD: u32 = 4096;

/// Default bound on bytes waiting in the output buffer (see [`Config::max_output_bytes`]).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 8 * 1024 * 1024;

/// Provides the hash and height of our best block for our version message
/// (btcd `Config.NewestBlock`). An error fails the handshake.
pub type NewestBlockFn = Arc<dyn Fn() -> Result<(Hash256, i32), String> + Send + Sync>;

/// Translates the remote address into the `addr_recv` field of our version message for
/// outbound peers (btcd `Config.HostToNetAddress`, called with the services we know of
/// the remote: none yet). An error fails the handshake.
pub type HostToNetAddressFn =
    Arc<dyn Fn(SocketAddr, ServiceFlags) -> Result<NetAddress, String> + Send + Sync>;

/// Every timer of a peer. Each can be overridden (tests and unusual deployments); the
/// defaults are btcd's constants.
///
/// ```
/// use std::time::Duration;
/// use peer_core::Timeouts;
/// let t = Timeouts::default();
/// assert_eq!(t.negotiate, Duration::from_secs(30));
/// assert_eq!(t.stall_headers_response, Duration::from_secs(90));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The handshake must complete within this time of the peer's creation
    /// (btcd `negotiateTimeout`, 30 s).
    pub negotiate: Duration,
    /// A ping is sent this long after the handshake and then periodically
    /// (btcd `pingInterval`, 2 min).
    pub ping_interval: Duration,
    /// The peer is disconnected when no message at all arrived for this long
    /// (btcd `idleTimeout`, 5 min).
    pub idle: Duration,
    /// Stall deadlines are checked at this period (btcd `stallTickInterval`, 15 s).
    pub stall_tick: Duration,
    /// Base deadline for an expected response (btcd `stallResponseTimeout`, 30 s).
    pub stall_response: Duration,
    /// Deadline for `headers` after `getheaders` (btcd: 3 × `stallResponseTimeout`, 90 s).
    pub stall_headers_response: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            negotiate: Duration::from_secs(30),
            ping_interval: Duration::from_secs(120),
            idle: Duration::from_secs(300),
            stall_tick: Duration::from_secs(15),
            stall_response: Duration::from_secs(30),
            stall_headers_response: Duration::from_secs(90),
        }
    }
}

/// The configuration of a peer (btcd `peer.Config`).
///
/// Build one with [`Config::new`] and adjust the public fields; wrap it in an `Arc` and
/// hand it to every [`Peer`](crate::Peer) it applies to.
///
/// ```
/// use std::sync::Arc;
/// use peer_core::Config;
/// use wire_codec::{message::ServiceFlags, Network};
///
/// let mut cfg = Config::new(Network::Regtest);
/// cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
/// cfg.user_agent_name = "example".into();
/// cfg.user_agent_version = "1.0".into();
/// assert_eq!(cfg.user_agent(), format!("{}example:1.0/", peer_core::BASE_USER_AGENT));
/// assert_eq!(cfg.max_protocol_version(), 70016);
/// let cfg = Arc::new(cfg);
/// # let _ = cfg;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The network (magic, payload limits, header layout, highest protocol version).
    pub network: Network,
    /// The services we advertise.
    pub services: ServiceFlags,
    /// The highest protocol version we use and advertise. `0` means the network's
    /// highest ([`Network::max_protocol_version`]); larger values are clamped to it,
    /// because we advertise only versions whose features this crate implements.
    pub protocol_version: u32,
    /// Remote versions below this are refused (default 209). When it is at least
    /// 70002 the refusal is also sent as a `reject` (the protocol has rejects only from
    /// 70002 on).
    pub min_protocol_version: u32,
    /// Application name appended to the user agent (BIP14).
    pub user_agent_name: String,
    /// Application version appended to the user agent (BIP14), e.g. `1.2.3`.
    pub user_agent_version: String,
    /// BIP14 comments, joined with `; ` inside parentheses.
    pub user_agent_comments: Vec<String>,
    /// Ask the remote not to relay transactions (BIP37 relay flag = false).
    pub disable_relay_tx: bool,
    /// Send `wtxidrelay` during the handshake at protocol version 70016 or higher
    /// (BIP339; default on, as Bitcoin Core). When both sides sent it,
    /// [`Features::wtxid_relay`](crate::Features::wtxid_relay) is set and transactions
    /// queued with [`Peer::queue_inventory`](crate::Peer::queue_inventory) are announced
    /// as `MSG_WTX`: Core ignores `MSG_TX` announcements from such peers.
    pub wtxid_relay: bool,
    /// Period of inventory trickling (default 10 s; zero means the default).
    pub trickle_interval: Duration,
    /// Do not detect connections to ourselves (tests).
    pub allow_self_connections: bool,
    /// Turn stall detection off (btcd `DisableStallHandler`).
    pub disable_stall_detection: bool,
    /// Our best block, for the version message. `None` means height 0.
    pub newest_block: Option<NewestBlockFn>,
    /// Translation of the remote address for outbound version messages. `None` uses
    /// the socket address itself.
    pub host_to_net_address: Option<HostToNetAddressFn>,
    /// The proxy we connect through (`host:port`), if any. When the remote address is
    /// the proxy's (or the proxy string cannot be parsed), our version message reports
    /// the remote as `0.0.0.0:0` so the proxy's address is not leaked (btcd `Proxy`).
    pub proxy: Option<String>,
    /// All timers.
    pub timeouts: Timeouts,
    /// Largest payload accepted before the handshake completes.
    pub max_pre_handshake_payload: u32,
    /// Bound on encoded bytes waiting to be written. A message that would take the
    /// buffer past it disconnects the peer with
    /// [`DisconnectReason::OutputQueueFull`](crate::DisconnectReason::OutputQueueFull)
    /// (a single message into an empty buffer is always accepted).
    pub max_output_bytes: usize,
    /// Report [`Event::Read`](crate::Event::Read) and
    /// [`Event::Written`](crate::Event::Written) for every message (btcd's `OnRead` and
    /// `OnWrite`). Turn off to save the events when no listener wants them.
    pub report_io: bool,
    /// BIP324 v2 transport (default on, as Bitcoin Core since 27.0): NODE_P2P_V2 is
    /// advertised, inbound connections may speak v2 or v1 (the first 16 bytes decide),
    /// and [`Peer::new_outbound_v2`](crate::Peer::new_outbound_v2) connects in v2. Off:
    /// v1 only, NODE_P2P_V2 not advertised.
    pub v2_transport: bool,
    /// The set of our recent version nonces used for self-connection detection. `None`
    /// uses the process-wide set ([`NonceSet::global`]); tests give each pair its own.
    pub nonces: Option<Arc<NonceSet>>,
}

impl Config {
    /// The defaults for `network`: btcd's timeouts, no services, the network's highest
    /// protocol version, relay on, self-connections refused, stall detection on.
    pub fn new(network: Network) -> Config {
        Config {
            network,
            services: ServiceFlags::NONE,
            protocol_version: 0,
            min_protocol_version: MIN_ACCEPTABLE_PROTOCOL_VERSION,
            user_agent_name: String::new(),
            user_agent_version: String::new(),
            user_agent_comments: Vec::new(),
            disable_relay_tx: false,
            wtxid_relay: true,
            trickle_interval: DEFAULT_TRICKLE_INTERVAL,
            allow_self_connections: false,
            disable_stall_detection: false,
            newest_block: None,
            host_to_net_address: None,
            proxy: None,
            timeouts: Timeouts::default(),
            max_pre_handshake_payload: DEFAULT_MAX_PRE_HANDSHAKE_PAYLOAD,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            report_io: true,
            v2_transport: true,
            nonces: None,
        }
    }

    /// The protocol version we advertise: [`Config::protocol_version`], defaulted and
    /// clamped to the network's highest.
    pub fn max_protocol_version(&self) -> u32 {
        let max = self.network.max_protocol_version();
        if self.protocol_version == 0 {
            max
        } else {
            self.protocol_version.min(max)
        }
    }

    /// The services our version message advertises: [`Config::services`], plus
    /// NODE_P2P_V2 when [`Config::v2_transport`] is on.
    ///
    /// ```
    /// use peer_core::Config;
    /// use wire_codec::{message::ServiceFlags, Network};
    /// let mut cfg = Config::new(Network::Regtest);
    /// assert!(cfg.advertised_services().has(ServiceFlags::P2P_V2));
    /// cfg.v2_transport = false;
    /// assert_eq!(cfg.advertised_services(), ServiceFlags::NONE);
    /// ```
    pub fn advertised_services(&self) -> ServiceFlags {
        if self.v2_transport {
            self.services | ServiceFlags::P2P_V2
        } else {
            self.services
        }
    }

    /// The trickle interval with the default applied.
    pub fn effective_trickle_interval(&self) -> Duration {
        if self.trickle_interval.is_zero() {
            DEFAULT_TRICKLE_INTERVAL
        } else {
            self.trickle_interval
        }
    }

    /// The BIP14 user agent we send: [`BASE_USER_AGENT`] followed by
    /// `name:version(comment; comment)/`. If the result would exceed 256 bytes the
    /// application part is left out (as btcd's `AddUserAgent` does); [`Config::validate`]
    /// reports that case.
    pub fn user_agent(&self) -> String {
        match self.composed_user_agent() {
            Ok(ua) => ua,
            Err(_) => BASE_USER_AGENT.to_string(),
        }
    }

    fn composed_user_agent(&self) -> Result<String, Error> {
        if self.user_agent_name.is_empty() && self.user_agent_version.is_empty() {
            return Ok(BASE_USER_AGENT.to_string());
        }
        // Sized once: every version message we send composes it (one allocation
        // per peer, not one per push and one for the joined comments).
        let comments = &self.user_agent_comments;
        let len = BASE_USER_AGENT.len()
            + self.user_agent_name.len()
            + 1
            + self.user_agent_version.len()
            + if comments.is_empty() {
                0
            } else {
                comments.iter().map(|c| c.len()).sum::<usize>() + 2 * (comments.len() - 1) + 2
            }
            + 1;
        let mut ua = String::with_capacity(len);
        ua.push_str(BASE_USER_AGENT);
        ua.push_str(&self.user_agent_name);
        ua.push(':');
        ua.push_str(&self.user_agent_version);
        if !comments.is_empty() {
            ua.push('(');
            for (i, c) in comments.iter().enumerate() {
                if i > 0 {
                    ua.push_str("; ");
                }
                ua.push_str(c);
            }
            ua.push(')');
        }
        ua.push('/');
        debug_assert_eq!(ua.len(), len);
        if ua.len() > MAX_USER_AGENT_LEN {
            return Err(Error::UserAgentTooLong {
                len: ua.len(),
                max: MAX_USER_AGENT_LEN,
            });
        }
        Ok(ua)
    }

    /// Checks what a peer would otherwise silently work around: a user agent longer
    /// than 256 bytes, or BIP14 comments containing a reserved character
    /// (`/ : ( )`), which btcd documents but never checks.
    ///
    /// ```
    /// use peer_core::{Config, Error};
    /// let mut cfg = Config::new(wire_codec::Network::Mainnet);
    /// cfg.user_agent_name = "x".repeat(300);
    /// assert!(matches!(cfg.validate(), Err(Error::UserAgentTooLong { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        for c in &self.user_agent_comments {
            if let Some(ch) = c.chars().find(|ch| matches!(ch, '/' | ':' | '(' | ')')) {
                return Err(Error::ReservedUserAgentCharacter { character: ch });
            }
        }
        self.composed_user_agent().map(|_| ())
    }

    /// Whether our version message must hide the remote address because it is the
    /// proxy's (btcd `Proxy` rule).
    pub(crate) fn masks_remote(&self, remote: SocketAddr) -> bool {
        let Some(proxy) = &self.proxy else {
            return false;
        };
        if proxy.is_empty() {
            return false;
        }
        match split_host_port(proxy) {
            Some(host) => remote.ip().to_string() == host,
            None => true,
        }
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed), or `None` if the
/// string is not of that form.
fn split_host_port(s: &str) -> Option<&str> {
    let (host, port) = s.rsplit_once(':')?;
    if port.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']');
    }
    if host.contains(':') {
        return None;
    }
    Some(host)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("network", &self.network)
            .field("services", &self.services)
            .field("protocol_version", &self.max_protocol_version())
            .field("min_protocol_version", &self.min_protocol_version)
            .field("user_agent", &self.user_agent())
            .field("disable_relay_tx", &self.disable_relay_tx)
            .field("wtxid_relay", &self.wtxid_relay)
            .field("trickle_interval", &self.trickle_interval)
            .field("allow_self_connections", &self.allow_self_connections)
            .field("disable_stall_detection", &self.disable_stall_detection)
            .field("newest_block", &self.newest_block.is_some())
            .field("host_to_net_address", &self.host_to_net_address.is_some())
            .field("proxy", &self.proxy)
            .field("timeouts", &self.timeouts)
            .field("max_pre_handshake_payload", &self.max_pre_handshake_payload)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("report_io", &self.report_io)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_bip14() {
        let mut cfg = Config::new(Network::Mainnet);
        assert_eq!(cfg.user_agent(), BASE_USER_AGENT);
        cfg.user_agent_name = "peer".into();
        cfg.user_agent_version = "1.0".into();
        cfg.user_agent_comments = vec!["comment".into(), "two".into()];
        assert_eq!(
            cfg.user_agent(),
            format!("{BASE_USER_AGENT}peer:1.0(comment; two)/")
        );
        assert!(cfg.validate().is_ok());
    }

    proptest::proptest! {
        /// The user agent every version message carries is composed in one allocation
        /// of exactly its size, and reads as BIP14 says.
        #[test]
        fn user_agent_is_composed_in_one_exact_allocation(
            name in "[a-z]{0,12}",
            version in "[0-9.]{0,6}",
            comments in proptest::collection::vec("[a-z0-9 ]{0,10}", 0..4),
        ) {
            let mut cfg = Config::new(Network::Mainnet);
            cfg.user_agent_name = name.clone();
            cfg.user_agent_version = version.clone();
            cfg.user_agent_comments = comments.clone();
            let ua = cfg.composed_user_agent().unwrap();
            let expected = if name.is_empty() && version.is_empty() {
                BASE_USER_AGENT.to_string()
            } else if comments.is_empty() {
                format!("{BASE_USER_AGENT}{name}:{version}/")
            } else {
                format!("{BASE_USER_AGENT}{name}:{version}({})/", comments.join("; "))
            };
            proptest::prop_assert_eq!(&ua, &expected);
            proptest::prop_assert_eq!(ua.capacity(), ua.len());
        }
    }

    #[test]
    fn too_long_user_agent_keeps_the_base() {
        let mut cfg = Config::new(Network::Mainnet);
        cfg.user_agent_name = "n".repeat(250);
        cfg.user_agent_version = "1".into();
        assert_eq!(cfg.user_agent(), BASE_USER_AGENT);
        assert_eq!(
            cfg.validate(),
            Err(Error::UserAgentTooLong {
                len: BASE_USER_AGENT.len() + 250 + 3,
                max: 256
            })
        );
        cfg.user_agent_name = "n".into();
        cfg.user_agent_comments = vec!["a:b".into()];
        assert_eq!(
            cfg.validate(),
            Err(Error::ReservedUserAgentCharacter { character: ':' })
        );
    }

    #[test]
    fn protocol_version_is_clamped_per_network() {
        let mut cfg = Config::new(Network::LbryMainnet);
        assert_eq!(cfg.max_protocol_version(), 70013);
        cfg.protocol_version = 70016;
        assert_eq!(cfg.max_protocol_version(), 70013);
        cfg.protocol_version = 70002;
        assert_eq!(cfg.max_protocol_version(), 70002);
        let cfg = Config::new(Network::Mainnet);
        assert_eq!(cfg.max_protocol_version(), 70016);
    }

    #[test]
    fn proxy_masking_follows_btcd() {
        let remote: SocketAddr = "10.0.0.1:8333".parse().unwrap();
        let mut cfg = Config::new(Network::Mainnet);
        assert!(!cfg.masks_remote(remote));
        cfg.proxy = Some("10.0.0.1:9050".into());
        assert!(cfg.masks_remote(remote));
        cfg.proxy = Some("10.0.0.2:9050".into());
        assert!(!cfg.masks_remote(remote));
        cfg.proxy = Some("not a proxy".into());
        assert!(cfg.masks_remote(remote));
        cfg.proxy = Some("[::1]:9050".into());
        assert!(!cfg.masks_remote(remote));
        assert!(cfg.masks_remote("[::1]:8333".parse().unwrap()));
    }
}
