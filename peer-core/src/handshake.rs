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
//! The reactions live here, as `impl Peer` blocks: what each phase accepts, our
//! version and feature messages, the application's decision, and (once established)
//! the disconnect on a repeated `version`/`verack` or a late feature message.
//!
//! Negotiated version = min(ours, theirs). Before the remote's version only `version`
//! is accepted (btcd: reject "a version message must precede all others"); between
//! version and verack only `verack`, `sendaddrv2` and `wtxidrelay` (BIP155/BIP339),
//! with unknown commands ignored, as btcd-HEAD's `waitToFinishNegotiation` does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use tracing::debug;
use wire_codec::message::{Message, NetAddress, Reject, RejectCode, ServiceFlags, Version};

use crate::config::Config;
use crate::event::Event;
use crate::log::Summary;
use crate::outbound::PushError;
use crate::peer::Peer;
use crate::reason::DisconnectReason;

/// Where a peer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for the remote's `version` (an outbound peer has sent its own).
    AwaitingVersion,
    /// The remote's `version` arrived and was handed to the application
    /// ([`Event::Version`]); waiting for
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

impl Peer {
    /// The handshake's reactions once it is complete: a second `version` or `verack`,
    /// and the handshake-only feature messages, disconnect. Returns whether the
    /// message was consumed.
    #[inline]
    pub(crate) fn handshake_rule(&mut self, msg: &Message) -> bool {
        match msg {
            Message::Version(_) => self.fail(
                DisconnectReason::DuplicateVersion,
                Some(duplicate_reject("version")),
            ),
            Message::Verack => self.fail(
                DisconnectReason::DuplicateVerack,
                Some(duplicate_reject("verack")),
            ),
            // Bitcoin Core disconnects on `sendtxrcncl` after verack (BIP330) and on
            // the other two as misbehaviour (BIP155, BIP339).
            Message::SendAddrV2 | Message::WtxidRelay | Message::SendTxRcncl(_) => self.fail(
                DisconnectReason::FeatureAfterHandshake {
                    command: msg.command(),
                },
                None,
            ),
            _ => return false,
        }
        true
    }

    pub(crate) fn on_message_before_version(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Version(v) => self.on_remote_version(v, now),
            Message::Unknown { .. } => self.stats.unknown_messages += 1,
            Message::Reject(r) => self.on_handshake_reject(r),
            other => {
                let command = other.command();
                self.fail(
                    DisconnectReason::UnexpectedMessage { command },
                    Some(Reject {
                        message: "version".into(),
                        code: RejectCode::MALFORMED,
                        reason: "a version message must precede all others".into(),
                        hash: None,
                    }),
                );
            }
        }
    }

    pub(crate) fn on_message_before_verack(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Verack => {
                self.verack_received = true;
                self.events.push_back(Event::Message(Message::Verack));
                self.establish(now);
            }
            Message::SendAddrV2 | Message::WtxidRelay | Message::SendTxRcncl(_) => {
                if self.allows(msg.command()) {
                    match msg {
                        Message::SendAddrV2 => self.features.send_addr_v2 = true,
                        // BIP339: announcements go by wtxid when both sides sent it.
                        Message::WtxidRelay => self.features.wtxid_relay = self.config.wtxid_relay,
                        _ => {}
                    }
                    self.events.push_back(Event::Message(msg));
                } else {
                    // Bitcoin Core ignores these below 70016; so do we.
                    self.stats.ignored_messages += 1;
                }
            }
            Message::Version(_) => self.fail(
                DisconnectReason::DuplicateVersion,
                Some(duplicate_reject("version")),
            ),
            // BIP434: `feature` messages (and any other the codec does not know) may
            // come between version and verack; the application decides.
            Message::Unknown { .. } => {
                self.stats.unknown_messages += 1;
                self.events.push_back(Event::Message(msg));
            }
            Message::Reject(r) => self.on_handshake_reject(r),
            other => {
                let command = other.command();
                self.fail(
                    DisconnectReason::UnexpectedMessage { command },
                    Some(Reject {
                        message: "verack".into(),
                        code: RejectCode::MALFORMED,
                        reason: "a verack message must follow version".into(),
                        hash: None,
                    }),
                );
            }
        }
    }

    pub(crate) fn on_handshake_reject(&mut self, r: Box<Reject>) {
        let reason = DisconnectReason::RejectedByRemote {
            message: r.message.clone(),
            reason: r.reason.clone(),
        };
        self.events.push_back(Event::Message(Message::Reject(r)));
        self.fail(reason, None);
    }

    pub(crate) fn on_remote_version(&mut self, v: Box<Version>, now: Instant) {
        // btcd readRemoteVersionMsg step 2: self-connection detection (no reject).
        if !self.config.allow_self_connections && self.nonces.contains(v.nonce) {
            self.fail(DisconnectReason::SelfConnection { nonce: v.nonce }, None);
            return;
        }
        let ours = self.config.max_protocol_version();
        self.version = ours.min(v.version);
        self.services = v.services;
        self.features.witness = v.services.has(ServiceFlags::WITNESS);
        self.features.relay_tx = v.relay;
        self.stats.starting_height = v.start_height;
        self.stats.last_block = v.start_height;
        self.stats.time_offset = v.timestamp.saturating_sub(self.unix_time(now) as i64);
        let remote_version = v.version;
        self.remote_version = Some(v.clone());
        // btcd checks the minimum after OnVersion; checking first spares the
        // application obsolete peers. The reject goes out only where the protocol has
        // one (negotiated >= 70002), so with the default minimum of 209 it never does.
        let minimum = self.config.min_protocol_version;
        if remote_version < minimum {
            self.fail(
                DisconnectReason::VersionTooOld {
                    version: remote_version,
                    minimum,
                },
                Some(Reject {
                    message: "version".into(),
                    code: RejectCode::OBSOLETE,
                    reason: format!("protocol version must be {minimum} or greater"),
                    hash: None,
                }),
            );
            return;
        }
        self.phase = Phase::AwaitingDecision;
        self.events.push_back(Event::Version(v));
    }

    /// Accepts the remote's version (after [`Event::Version`]): sends ours if we are
    /// inbound, the feature messages and our verack, and goes on with the handshake.
    /// Does nothing in any other phase.
    pub fn accept_version(&mut self, now: Instant) {
        self.touch(now);
        if self.phase != Phase::AwaitingDecision {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        if self.inbound {
            self.send_our_version();
            if self.is_closed() {
                return;
            }
        }
        // The feature messages exist from 70016 on (BIP155, BIP339).
        if self.allows(wire_codec::message::command::WTXIDRELAY) {
            if self.config.wtxid_relay {
                self.send_handshake_message(Message::WtxidRelay);
            } else {
                self.features.wtxid_relay = false;
            }
            self.send_handshake_message(Message::SendAddrV2);
        }
        for msg in std::mem::take(&mut self.handshake_extras) {
            self.send_handshake_message(msg);
        }
        self.send_handshake_message(Message::Verack);
        if self.is_closed() {
            return;
        }
        self.phase = Phase::AwaitingVerack;
        while let Some(frame) = self.held_frames.pop_front() {
            if self.is_closed() {
                break;
            }
            self.on_frame(frame, now);
        }
        self.held_frames = VecDeque::new();
        // Input that arrived while paused waits in our buffer: go on with it now, so
        // no driver has to know it is there.
        self.process_received(now);
    }

    /// Queues a message to go out between our `version` and our `verack`, such as a
    /// BIP434 `feature` message (`Message::Unknown` with command `feature`). Call it
    /// while the version decision is pending — from
    /// [`Listener::on_version`](crate::Listener::on_version) — or, for an outbound
    /// peer, any time before; [`Peer::accept_version`] sends it after the
    /// `wtxidrelay`/`sendaddrv2` messages. Returns `false` (and sends nothing) once our
    /// `verack` is out.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use bytes::Bytes;
    /// # use peer_core::{Config, Peer};
    /// # use wire_codec::{Command, Message, Network};
    /// let mut peer = Peer::new_outbound(Arc::new(Config::new(Network::Regtest)),
    ///     "127.0.0.1:18444".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
    /// let feature = Message::Unknown {
    ///     command: Command::from_static("feature"),
    ///     payload: Bytes::from_static(b"\x04demo"),
    /// };
    /// assert!(peer.queue_handshake_message(feature));
    /// ```
    pub fn queue_handshake_message(&mut self, msg: Message) -> bool {
        match self.phase {
            Phase::AwaitingVersion | Phase::AwaitingDecision => {
                self.handshake_extras.push(msg);
                true
            }
            _ => false,
        }
    }

    /// Refuses the remote's version (after [`Event::Version`]): `reject` is sent where
    /// the protocol allows one and the peer disconnects with
    /// [`DisconnectReason::RejectedByApplication`]. Does nothing in any other phase.
    pub fn reject_version(&mut self, reject: Reject, now: Instant) {
        self.touch(now);
        if self.phase != Phase::AwaitingDecision {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        let reason = DisconnectReason::RejectedByApplication {
            reason: reject.reason.clone(),
        };
        self.fail(reason, Some(reject));
    }

    pub(crate) fn establish(&mut self, now: Instant) {
        self.phase = Phase::Established;
        self.established_at = Some(now);
        self.trim_events = true;
        self.trim_output = true;
        self.transport
            .set_max_payload(self.config.network.max_payload());
        let t = self.config.timeouts;
        self.keepalive.start(now, t.ping_interval);
        if !self.config.disable_stall_detection {
            self.stall.start(now);
        }
        self.inventory
            .start(now, self.config.effective_trickle_interval(), now);
        debug!(version = self.version, "handshake complete");
        self.events.push_back(Event::HandshakeComplete {
            version: self.version,
            features: self.features,
        });
        self.held_bytes = 0;
        while let Some((out, token)) = self.held.pop_front() {
            if self.is_closed() {
                if let Some(t) = token {
                    self.events.push_back(Event::Failed(t));
                }
                continue;
            }
            self.send_held(out, token);
        }
        self.held = VecDeque::new();
        for (txid, wtxid) in std::mem::take(&mut self.pending_wtxids) {
            self.queue_transaction_inventory(txid, wtxid);
        }
    }

    /// Encodes a handshake message right away (bypassing the pre-handshake hold).
    pub(crate) fn send_handshake_message(&mut self, msg: Message) {
        let limit = self.config.max_output_bytes;
        let cmd = msg.command();
        debug!("sending {cmd} {}", Summary(&msg));
        let keep = self.config.report_io;
        let ctx = self.ctx();
        match self
            .output
            .push(&mut self.transport, msg, &ctx, None, limit, keep)
        {
            Ok(()) => self.log_sent(cmd),
            Err(PushError::Full { bytes, limit }) => {
                self.fail(DisconnectReason::OutputQueueFull { bytes, limit }, None)
            }
            Err(PushError::Encode(e)) => {
                debug!(error = %e, "cannot encode {cmd}");
            }
        }
    }

    pub(crate) fn send_our_version(&mut self) {
        let mut nonce = 0;
        while nonce == 0 {
            nonce = self.rng.gen::<u64>();
        }
        self.our_nonce = nonce;
        let inputs = VersionInputs {
            remote: self.remote,
            remote_services: if self.inbound {
                self.services
            } else {
                ServiceFlags::NONE
            },
            nonce,
            unix_time: self.unix_time(self.last_now),
            encode_version: self.version,
            inbound: self.inbound,
        };
        match build_version(&self.config, &inputs) {
            Ok(v) => {
                // Only an outbound peer's nonce can come back in an inbound version
                // (we dialled ourselves; Core checks only those, btcd kept all): an
                // inbound one would only cost a lock of the process-wide set and,
                // at a busy listener's accept rate, push the outbound nonces out of
                // its 50 entries before their versions came back.
                if !self.inbound {
                    self.nonces.insert(nonce);
                }
                self.send_handshake_message(Message::Version(Box::new(v)));
            }
            Err(reason) => self.fail(reason, None),
        }
    }
}

fn duplicate_reject(cmd: &str) -> Reject {
    Reject {
        message: cmd.into(),
        code: RejectCode::DUPLICATE,
        reason: format!("duplicate {cmd} message"),
        hash: None,
    }
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
