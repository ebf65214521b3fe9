//! The version handshake: its phases, our version message and what each phase accepts.
//!
//! Order of messages (btcd-HEAD and Bitcoin Core; btcd-peer.md §5):
//!
//! * outbound: we send `version` at creation; on the remote's `version` (once the
//!   application accepted it) we send `wtxidrelay` and `sendaddrv2` if the negotiated
//!   version is at least 70016, then `verack`; the handshake completes on the remote's
//!   `verack`.
//! * inbound: on the remote's `version` (once accepted) we send `version`, the same
//!   feature messages, and `verack`; the handshake completes on the remote's `verack`.
//!
//! Negotiated version = min(ours, theirs). Before the remote's version only `version`
//! is accepted (btcd: reject "a version message must precede all others"); between
//! version and verack only `verack`, `sendaddrv2` and `wtxidrelay` (BIP155/BIP339),
//! with unknown commands ignored, as btcd-HEAD's `waitToFinishNegotiation` does.

use std::net::SocketAddr;

use wire_codec::message::{NetAddress, ServiceFlags, Version};

use crate::config::Config;
use crate::reason::DisconnectReason;

/// Where a peer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for the remote's `version` (an outbound peer has sent its own).
    AwaitingVersion,
    /// The remote's `version` arrived and was handed to the application
    /// ([`Event::Version`](crate::Event::Version)); waiting for
    /// [`Peer::accept_version`](crate::Peer::accept_version) or
    /// [`Peer::reject_version`](crate::Peer::reject_version).
    AwaitingDecision,
    /// Our `verack` is out; waiting for the remote's.
    AwaitingVerack,
    /// The handshake is complete.
    Established,
    /// The peer has disconnected.
    Closed,
}

/// The data of our version message that does not come from the configuration.
pub(crate) struct VersionInputs {
    pub(crate) remote: SocketAddr,
    pub(crate) remote_services: ServiceFlags,
    pub(crate) nonce: u64,
    pub(crate) unix_time: u64,
    /// The protocol version the message is encoded at (decides the relay byte).
    pub(crate) encode_version: u32,
    pub(crate) inbound: bool,
}

/// Builds our version message (btcd `localVersionMsg`).
pub(crate) fn build_version(cfg: &Config, v: &VersionInputs) -> Result<Version, DisconnectReason> {
    let start_height = match &cfg.newest_block {
        Some(f) => match f() {
            Ok((_hash, height)) => height,
            Err(reason) => return Err(DisconnectReason::NewestBlockUnavailable { reason }),
        },
        None => 0,
    };
    let mut receiver = match (&cfg.host_to_net_address, v.inbound) {
        (Some(f), false) => match f(v.remote, v.remote_services) {
            Ok(na) => na,
            Err(reason) => return Err(DisconnectReason::AddressTranslation { reason }),
        },
        _ => NetAddress::from_socket_addr(v.remote, v.remote_services),
    };
    receiver.time = None;
    if cfg.masks_remote(v.remote) {
        receiver = NetAddress::unspecified(receiver.services);
    }
    Ok(Version {
        version: cfg.max_protocol_version(),
        services: cfg.advertised_services(),
        timestamp: i64::try_from(v.unix_time).unwrap_or(i64::MAX),
        receiver,
        // btcd: "Older nodes previously added the IP and port information to the
        // address manager which proved to be unreliable" — only services are sent.
        sender: NetAddress::unspecified(cfg.advertised_services()).with_unspecified_v6(),
        nonce: v.nonce,
        user_agent: cfg.user_agent(),
        start_height,
        relay: !cfg.disable_relay_tx,
        relay_present: Version::relay_byte_for(v.encode_version),
    })
}

/// btcd sends `addr_from` as an all-zero IP (a nil `net.IP`), not `::ffff:0.0.0.0`.
trait ZeroIp {
    fn with_unspecified_v6(self) -> NetAddress;
}

impl ZeroIp for NetAddress {
    fn with_unspecified_v6(mut self) -> NetAddress {
        self.ip = std::net::Ipv6Addr::UNSPECIFIED;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use wire_codec::{Hash256, Network};

    fn inputs() -> VersionInputs {
        VersionInputs {
            remote: "10.0.0.2:8333".parse().unwrap(),
            remote_services: ServiceFlags::NONE,
            nonce: 9,
            unix_time: 1_700_000_000,
            encode_version: 70016,
            inbound: false,
        }
    }

    #[test]
    fn version_carries_config_and_provider_height() {
        let mut cfg = Config::new(Network::Mainnet);
        cfg.services = ServiceFlags::NETWORK;
        cfg.disable_relay_tx = true;
        cfg.newest_block = Some(Arc::new(|| Ok((Hash256::ZERO, 234_439))));
        let v = build_version(&cfg, &inputs()).unwrap();
        assert_eq!(v.version, 70016);
        assert_eq!(v.start_height, 234_439);
        assert_eq!(v.services, ServiceFlags::NETWORK | ServiceFlags::P2P_V2);
        cfg.v2_transport = false;
        assert_eq!(
            build_version(&cfg, &inputs()).unwrap().services,
            ServiceFlags::NETWORK
        );
        assert!(!v.relay && v.relay_present);
        assert_eq!(v.receiver.socket_addr(), inputs().remote);
        assert_eq!(v.sender.ip, std::net::Ipv6Addr::UNSPECIFIED);
        assert_eq!(v.timestamp, 1_700_000_000);
    }

    #[test]
    fn provider_errors_fail_and_proxy_is_masked() {
        let mut cfg = Config::new(Network::Mainnet);
        cfg.newest_block = Some(Arc::new(|| Err("no chain".into())));
        assert_eq!(
            build_version(&cfg, &inputs()).unwrap_err(),
            DisconnectReason::NewestBlockUnavailable {
                reason: "no chain".into()
            }
        );
        let mut cfg = Config::new(Network::Mainnet);
        cfg.proxy = Some("10.0.0.2:9050".into());
        let v = build_version(&cfg, &inputs()).unwrap();
        assert_eq!(v.receiver.socket_addr(), "0.0.0.0:0".parse().unwrap());
        cfg.proxy = None;
        cfg.host_to_net_address = Some(Arc::new(|_, _| Err("unresolvable".into())));
        assert!(matches!(
            build_version(&cfg, &inputs()),
            Err(DisconnectReason::AddressTranslation { .. })
        ));
    }
}
