//! Handshake, negotiation, self-connection and configuration (issue behaviours 1–4).

use std::sync::Arc;
use std::time::Duration;

use peer_core::{DisconnectReason, NonceSet, Phase, BASE_USER_AGENT};
use wire_codec::message::{Message, Ping, RejectCode, ServiceFlags};
use wire_codec::{Hash256, Network};

use crate::harness::*;

/// Bytes of a version frame carrying user agent `ua` with the relay byte.
fn version_frame_len(ua: &str) -> u64 {
    (24 + 4 + 8 + 8 + 26 + 26 + 8 + 1 + ua.len() + 4 + 1) as u64
}

/// btcd TestPeerConnection ("basic handshake"): versions, services, witness, byte counts.
#[test]
fn basic_handshake_counts_bytes_and_negotiates() {
    if v1_bytes_only() {
        return;
    }
    let mut ca = config(Network::Mainnet);
    ca.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let mut cb = config(Network::Mainnet);
    cb.protocol_version = 70002;
    for c in [&mut ca, &mut cb] {
        c.user_agent_name = "peer".into();
        c.user_agent_version = "1.0".into();
        c.user_agent_comments = vec!["comment".into()];
    }
    let p = Pair::connected(ca, cb);
    let ua = format!("{BASE_USER_AGENT}peer:1.0(comment)/");
    let (a, b) = (&p.a.peer, &p.b.peer);
    // Both directions carry exactly one version and one verack (no feature messages:
    // the negotiated version is below 70016).
    let expect = version_frame_len(&ua) + 24;
    for peer in [a, b] {
        let s = peer.stats_snapshot(p.now);
        assert_eq!(s.bytes_sent, expect);
        assert_eq!(s.bytes_received, expect);
        assert_eq!(s.user_agent, ua);
        assert_eq!(s.negotiated_version, 70002);
        assert_eq!(s.time_offset, 0);
        assert_eq!(s.last_ping_nonce, 0);
        assert_eq!(s.last_ping_time, None);
        assert!(peer.version_known() && peer.verack_received());
    }
    // The inbound side sees the outbound's services (and witness), and vice versa.
    assert_eq!(b.services(), ServiceFlags::NETWORK | ServiceFlags::WITNESS);
    assert!(b.features().witness);
    assert_eq!(a.services(), ServiceFlags::NONE);
    assert!(!a.features().witness);
    assert_eq!(a.stats_snapshot(p.now).version, 70002, "remote advertised");
    assert_eq!(b.stats_snapshot(p.now).version, 70016, "remote advertised");
    // Listeners: one version, one verack, one handshake each; on_write for both.
    for n in [&p.a, &p.b] {
        assert_eq!(n.rec.count_msg("verack"), 1);
        assert_eq!(n.rec.versions.len(), 1);
        assert!(n.rec.recs.contains(&Rec::Handshake(70002)));
        assert_eq!(n.rec.written("version"), 1);
        assert_eq!(n.rec.written("verack"), 1);
    }
    assert_eq!(p.elapsed(), Duration::ZERO);
}

/// The order of events for the outbound side: version decision, verack, handshake.
#[test]
fn outbound_sees_version_then_verack_then_completion() {
    let p = Pair::connected(config(Network::Regtest), config(Network::Regtest));
    let recs: Vec<_> =
        p.a.rec
            .recs
            .iter()
            .filter(|r| !matches!(r, Rec::Read { .. } | Rec::Write { .. }))
            .cloned()
            .collect();
    assert_eq!(
        recs,
        vec![
            Rec::Version(70016),
            Rec::Msg("wtxidrelay".into()),
            Rec::Msg("sendaddrv2".into()),
            Rec::Msg("verack".into()),
            Rec::Handshake(70016),
        ]
    );
}

/// The handshake works whatever the delivery granularity.
#[test]
fn handshake_survives_one_byte_splits() {
    for split in [1, 3, 23, 24, 25, 143] {
        let mut p = Pair::default_on(Network::LbryRegtest);
        p.split = split;
        p.drive();
        assert!(
            p.a.peer.handshake_complete() && p.b.peer.handshake_complete(),
            "split {split}"
        );
        assert_eq!(p.a.peer.negotiated_version(), 70013);
    }
}

/// TestSendAddrV2Handshake: both 70016 → both want addrv2 (and wtxid relay); either
/// side below → neither.
#[test]
fn sendaddrv2_and_wtxidrelay_only_at_70016() {
    let p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    for n in [&p.a, &p.b] {
        let f = n.peer.features();
        assert!(f.send_addr_v2 && f.wtxid_relay);
        assert_eq!(n.rec.count_msg("sendaddrv2"), 1);
    }
    for (va, vb) in [(70015, 70016), (70016, 70015)] {
        let mut ca = config(Network::Mainnet);
        ca.protocol_version = va;
        let mut cb = config(Network::Mainnet);
        cb.protocol_version = vb;
        let p = Pair::connected(ca, cb);
        for n in [&p.a, &p.b] {
            let f = n.peer.features();
            assert!(!f.send_addr_v2 && !f.wtxid_relay);
            assert_eq!(n.rec.written("sendaddrv2"), 0);
            assert_eq!(n.rec.written("wtxidrelay"), 0);
        }
    }
}

/// LBRY networks advertise 70013 at most, whatever the configuration asks.
#[test]
fn lbry_stops_at_70013() {
    let mut ca = config(Network::LbryMainnet);
    ca.protocol_version = 70016;
    let p = Pair::connected(ca, config(Network::LbryMainnet));
    assert_eq!(p.b.rec.versions[0].version, 70013);
    assert_eq!(p.a.peer.negotiated_version(), 70013);
    assert!(!p.a.peer.features().send_addr_v2);
}

/// The handshake must complete within 30 s; a silent remote is dropped at exactly 30 s
/// and a message queued meanwhile is failed.
#[test]
fn negotiate_timeout_fires_at_30s() {
    let mut s = Solo::outbound(config(Network::Mainnet));
    s.node
        .peer
        .queue_message(Message::Ping(Ping { nonce: 1 }), Some(5));
    assert_eq!(s.fire_next(), Some(s.start + Duration::from_secs(30)));
    assert_eq!(
        s.node.rec.disconnects(),
        vec![DisconnectReason::NegotiateTimeout]
    );
    assert_eq!(s.node.rec.failed(), vec![5]);
    assert_eq!(s.node.peer.poll_timeout(), None);
}

/// The timeout is configurable, and also applies when the remote sent its version but
/// never its verack.
#[test]
fn negotiate_timeout_is_configurable_and_covers_missing_verack() {
    let mut cfg = config(Network::Mainnet);
    cfg.timeouts.negotiate = Duration::from_secs(5);
    let mut s = Solo::inbound(cfg);
    s.feed(
        70016,
        &Message::Version(Box::new(remote_version(70016, 42))),
    );
    assert_eq!(s.node.peer.phase(), Phase::AwaitingVerack);
    let out = s.take_output(70016);
    let cmds: Vec<_> = out.iter().map(|m| m.command().to_string()).collect();
    assert_eq!(cmds, ["version", "wtxidrelay", "sendaddrv2", "verack"]);
    assert_eq!(s.fire_next(), Some(s.start + Duration::from_secs(5)));
    assert_eq!(
        s.node.peer.disconnect_reason(),
        Some(&DisconnectReason::NegotiateTimeout)
    );
}

/// TestUnsupportedVersionPeer: a version below 209 disconnects, and nothing more is
/// written (no reject: the protocol has none at that version).
#[test]
fn unsupported_version_disconnects_silently() {
    let mut s = Solo::outbound(config(Network::Mainnet));
    let out = s.take_output(70016);
    assert!(matches!(out.as_slice(), [Message::Version(_)]));
    s.feed(70016, &Message::Version(Box::new(remote_version(1, 3))));
    assert_eq!(
        s.node.peer.disconnect_reason(),
        Some(&DisconnectReason::VersionTooOld {
            version: 1,
            minimum: 209
        })
    );
    assert!(s.node.peer.transmit().is_empty(), "no further output");
    assert!(
        s.node.rec.versions.is_empty(),
        "the application never saw it"
    );
}

/// With a minimum the protocol can reject (≥ 70002), the reject is sent.
#[test]
fn too_old_version_gets_a_reject_where_the_protocol_has_one() {
    let mut cfg = config(Network::Mainnet);
    cfg.min_protocol_version = 70012;
    let mut s = Solo::inbound(cfg);
    s.feed(70011, &Message::Version(Box::new(remote_version(70011, 3))));
    let out = s.take_output(70011);
    match out.as_slice() {
        [Message::Reject(r)] => {
            assert_eq!(r.message, "version");
            assert_eq!(r.code, RejectCode::OBSOLETE);
            assert_eq!(r.reason, "protocol version must be 70012 or greater");
        }
        other => panic!("expected one reject, got {other:?}"),
    }
    assert!(s.node.peer.is_closed());
}

/// TestDuplicateVersionMsg: a second version after the handshake disconnects the
/// receiver, which says why with a reject.
#[test]
fn duplicate_version_disconnects() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let v = p.b.rec.versions[0].clone();
    p.a.peer
        .queue_message(Message::Version(Box::new(v)), Some(1));
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![1]);
    assert_eq!(
        p.b.peer.disconnect_reason(),
        Some(&DisconnectReason::DuplicateVersion)
    );
    let reject = p.a.rec.messages.iter().find_map(|m| match m {
        Message::Reject(r) => Some(r.clone()),
        _ => None,
    });
    let reject = reject.expect("reject delivered before close");
    assert_eq!(reject.code, RejectCode::DUPLICATE);
    assert_eq!(reject.reason, "duplicate version message");
    assert_eq!(
        p.a.peer.disconnect_reason(),
        Some(&DisconnectReason::RemoteClosed)
    );
}

/// A duplicate verack is a violation too.
#[test]
fn duplicate_verack_disconnects() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.a.peer.queue_message(Message::Verack, None);
    p.drive();
    assert_eq!(
        p.b.peer.disconnect_reason(),
        Some(&DisconnectReason::DuplicateVerack)
    );
}

/// Only version may come first; verack first is a violation with btcd's reject.
#[test]
fn verack_or_ping_before_version_is_a_violation() {
    for first in [Message::Verack, Message::Ping(Ping { nonce: 1 })] {
        let mut s = Solo::inbound(config(Network::Mainnet));
        let cmd = first.command();
        s.feed(70016, &first);
        assert_eq!(
            s.node.peer.disconnect_reason(),
            Some(&DisconnectReason::UnexpectedMessage { command: cmd })
        );
        match s.take_output(70016).as_slice() {
            [Message::Reject(r)] => {
                assert_eq!(r.reason, "a version message must precede all others");
                assert_eq!(r.code, RejectCode::MALFORMED);
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Between version and verack, only verack, sendaddrv2, wtxidrelay and unknown
/// commands are accepted.
#[test]
fn between_version_and_verack_only_features_and_unknown_are_allowed() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 9))));
    let unknown = Message::Unknown {
        command: wire_codec::Command::new("feature").unwrap(),
        payload: bytes::Bytes::from_static(b"\x01\x02"),
    };
    s.feed(70016, &unknown);
    s.feed(70016, &Message::WtxidRelay);
    s.feed(70016, &Message::SendAddrV2);
    assert!(!s.node.peer.is_closed());
    s.feed(70016, &Message::Ping(Ping { nonce: 1 }));
    assert_eq!(
        s.node.peer.disconnect_reason(),
        Some(&DisconnectReason::UnexpectedMessage {
            command: wire_codec::message::command::PING
        })
    );
    let snap = s.node.peer.stats_snapshot(s.now);
    assert_eq!(snap.unknown_messages, 1);
    assert!(snap.features.wtxid_relay && snap.features.send_addr_v2);
}

/// Feature messages after the handshake are violations (BIP155, BIP339, and BIP330's
/// `sendtxrcncl`: Bitcoin Core disconnects on it after verack).
#[test]
fn feature_messages_after_handshake_disconnect() {
    if v1_bytes_only() {
        return;
    }
    let rcncl = Message::SendTxRcncl(wire_codec::message::SendTxRcncl {
        version: 1,
        salt: 7,
    });
    for m in [Message::SendAddrV2, Message::WtxidRelay, rcncl] {
        let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
        let cmd = m.command();
        let now = p.now;
        inject(&mut p.b, &frame(Network::Mainnet, 70016, &m), now);
        assert_eq!(
            p.b.peer.disconnect_reason(),
            Some(&DisconnectReason::FeatureAfterHandshake { command: cmd })
        );
    }
}

/// Payloads before the handshake are capped.
#[test]
fn pre_handshake_payload_is_capped() {
    if v1_bytes_only() {
        return;
    }
    let mut cfg = config(Network::Mainnet);
    cfg.max_pre_handshake_payload = 1000;
    let mut s = Solo::inbound(cfg);
    let big = Message::Unknown {
        command: wire_codec::Command::new("junk").unwrap(),
        payload: bytes::Bytes::from(vec![0u8; 1001]),
    };
    s.feed(70016, &big);
    assert!(matches!(
        s.node.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(
            wire_codec::Error::PayloadTooLarge {
                len: 1001,
                max: 1000
            }
        ))
    ));
    // After the handshake, the network's maximum applies instead.
    let mut cfg = config(Network::Mainnet);
    cfg.max_pre_handshake_payload = 1000;
    let mut p = Pair::connected(cfg, config(Network::Mainnet));
    let now = p.now;
    let big = Message::Unknown {
        command: wire_codec::Command::new("junk").unwrap(),
        payload: bytes::Bytes::from(vec![0u8; 100_000]),
    };
    inject(&mut p.a, &frame(Network::Mainnet, 70016, &big), now);
    assert!(!p.a.peer.is_closed());
    assert_eq!(p.a.peer.stats_snapshot(now).unknown_messages, 1);
}

/// Self-connection: our own nonce coming back disconnects, unless allowed.
#[test]
fn self_connection_is_detected_through_the_shared_nonce_set() {
    let nonces = Arc::new(NonceSet::new());
    let mut ca = config(Network::Mainnet);
    ca.nonces = Some(nonces.clone());
    let mut cb = config(Network::Mainnet);
    cb.nonces = Some(nonces.clone());
    let mut p = Pair::new(ca, cb);
    p.drive();
    assert!(nonces.contains(p.a.peer.our_nonce()));
    match p.b.peer.disconnect_reason() {
        Some(DisconnectReason::SelfConnection { nonce }) => {
            assert_eq!(*nonce, p.a.peer.our_nonce())
        }
        other => panic!("{other:?}"),
    }
    assert!(p.b.rec.versions.is_empty());

    let nonces = Arc::new(NonceSet::new());
    let mut ca = config(Network::Mainnet);
    ca.nonces = Some(nonces.clone());
    ca.allow_self_connections = true;
    let mut cb = ca.clone();
    cb.allow_self_connections = true;
    Pair::connected(ca, cb);
}

/// Only outbound nonces are remembered: an inbound peer's version can never come back
/// to us, and a busy listener's inbound nonces would push the outbound ones out of the
/// set (50 entries) before their versions return.
#[test]
fn only_outbound_version_nonces_enter_the_nonce_set() {
    let (na, nb) = (Arc::new(NonceSet::new()), Arc::new(NonceSet::new()));
    let mut ca = config(Network::Mainnet);
    ca.nonces = Some(na.clone());
    let mut cb = config(Network::Mainnet);
    cb.nonces = Some(nb.clone());
    let p = Pair::connected(ca, cb);
    assert!(
        na.contains(p.a.peer.our_nonce()),
        "the outbound nonce is kept"
    );
    assert_ne!(p.b.peer.our_nonce(), 0, "the inbound end sent a version");
    assert!(
        !nb.contains(p.b.peer.our_nonce()),
        "the inbound nonce is not"
    );
}

/// The application can refuse a version; the reject reaches the remote.
#[test]
fn application_reject_fails_the_handshake() {
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    p.b.rec.reject_with = Some(wire_codec::message::Reject {
        message: "version".into(),
        code: RejectCode::NONSTANDARD,
        reason: "required services 0x1 not offered".into(),
        hash: None,
    });
    p.drive();
    assert_eq!(
        p.b.peer.disconnect_reason(),
        Some(&DisconnectReason::RejectedByApplication {
            reason: "required services 0x1 not offered".into()
        })
    );
    assert_eq!(
        p.a.peer.disconnect_reason(),
        Some(&DisconnectReason::RejectedByRemote {
            message: "version".into(),
            reason: "required services 0x1 not offered".into()
        })
    );
    assert_eq!(p.a.rec.count_msg("reject"), 1);
}

/// TestOutboundPeer (a): a failing newest-block provider fails the handshake at once;
/// afterwards queueing is a no-op and a notification is answered immediately.
#[test]
fn newest_block_error_fails_and_later_queues_fail_at_once() {
    let mut cfg = config(Network::Mainnet);
    cfg.newest_block = Some(Arc::new(|| Err("chain unavailable".into())));
    let mut s = Solo::outbound(cfg);
    s.node.pump(&mut s.now);
    assert_eq!(
        s.node.rec.disconnects(),
        vec![DisconnectReason::NewestBlockUnavailable {
            reason: "chain unavailable".into()
        }]
    );
    assert!(s.node.peer.transmit().is_empty());
    let iv = wire_codec::message::InvVect::new(wire_codec::message::InvType::TX, Hash256::ZERO);
    s.node.peer.queue_inventory(iv);
    s.node.peer.add_known_inventory(iv);
    s.node.peer.queue_message(Message::Verack, None);
    s.node.peer.queue_message(Message::Verack, Some(77));
    s.node.pump(&mut s.now);
    assert_eq!(s.node.rec.failed(), vec![77]);
    assert_eq!(s.node.peer.pending_inventory(), 0);
    assert!(s.node.peer.transmit().is_empty());
}

/// TestUpdateLastBlockHeight: the remote's height from its version; updates only raise.
#[test]
fn last_block_height_only_increases() {
    let mut cb = config(Network::Mainnet);
    cb.newest_block = Some(Arc::new(|| Ok((Hash256::ZERO, 100))));
    let mut p = Pair::connected(config(Network::Mainnet), cb);
    assert_eq!(p.a.peer.last_block(), 100);
    assert_eq!(p.a.peer.starting_height(), 100);
    p.a.peer.update_last_block_height(99);
    assert_eq!(p.a.peer.last_block(), 100);
    p.a.peer.update_last_block_height(101);
    assert_eq!(p.a.peer.last_block(), 101);
    assert_eq!(p.a.peer.starting_height(), 100);
    let h = Hash256([7; 32]);
    p.a.peer.update_last_announced_block(h);
    assert_eq!(p.a.peer.last_announced_block(), Some(h));
}

/// Time offset = remote clock − ours, from the version timestamp.
#[test]
fn time_offset_comes_from_the_version_timestamp() {
    let p = Pair::with_clocks(
        config(Network::Mainnet),
        config(Network::Mainnet),
        UNIX_START,
        UNIX_START + 90,
    );
    let mut p = p;
    p.drive();
    assert_eq!(p.a.peer.time_offset(), 90);
    assert_eq!(p.b.peer.time_offset(), -90);
}

/// Proxy rule: our version hides the remote address when it is the proxy's.
#[test]
fn proxy_address_is_masked_in_our_version() {
    let mut ca = config(Network::Mainnet);
    ca.proxy = Some(format!("{}:9050", A_ADDR.split(':').next().unwrap()));
    let p = Pair::connected(ca, config(Network::Mainnet));
    let v = &p.b.rec.versions[0];
    assert_eq!(v.receiver.socket_addr(), "0.0.0.0:0".parse().unwrap());
    // Without the proxy the real address is sent.
    let p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    assert_eq!(
        p.b.rec.versions[0].receiver.socket_addr(),
        A_ADDR.parse().unwrap()
    );
}

/// Address translation for outbound version messages, and its failure.
#[test]
fn host_to_net_address_translates_or_fails() {
    let mut ca = config(Network::Mainnet);
    ca.host_to_net_address = Some(Arc::new(|addr, services| {
        let mut na = wire_codec::message::NetAddress::from_socket_addr(addr, services);
        na.port = 1;
        Ok(na)
    }));
    let p = Pair::connected(ca, config(Network::Mainnet));
    assert_eq!(p.b.rec.versions[0].receiver.port, 1);

    let mut ca = config(Network::Mainnet);
    ca.host_to_net_address = Some(Arc::new(|_, _| Err("no route".into())));
    let s = Solo::outbound(ca);
    assert_eq!(
        s.node.peer.disconnect_reason(),
        Some(&DisconnectReason::AddressTranslation {
            reason: "no route".into()
        })
    );
}

/// Our version carries the configuration: services, relay flag, user agent, height.
#[test]
fn version_message_reflects_config() {
    let mut ca = config(Network::Mainnet);
    ca.services = ServiceFlags::NETWORK | ServiceFlags::BLOOM;
    ca.disable_relay_tx = true;
    ca.user_agent_name = "app".into();
    ca.user_agent_version = "2.1".into();
    ca.newest_block = Some(Arc::new(|| Ok((Hash256::ZERO, 5))));
    let p = Pair::connected(ca, config(Network::Mainnet));
    let v = &p.b.rec.versions[0];
    let v2 = if over_v2() {
        ServiceFlags::P2P_V2
    } else {
        ServiceFlags::NONE
    };
    assert_eq!(v.services, ServiceFlags::NETWORK | ServiceFlags::BLOOM | v2);
    assert!(!v.relay);
    assert!(!p.b.peer.features().relay_tx);
    assert!(p.a.peer.features().relay_tx);
    assert_eq!(v.user_agent, format!("{BASE_USER_AGENT}app:2.1/"));
    assert_eq!(v.start_height, 5);
    assert_eq!(v.timestamp, UNIX_START as i64);
}

/// Messages queued before the handshake go out after it, at the negotiated version;
/// those the negotiated version lacks fail.
#[test]
fn messages_queued_before_the_handshake_are_held() {
    let mut cb = config(Network::Mainnet);
    cb.protocol_version = 70011;
    let mut p = Pair::new(config(Network::Mainnet), cb);
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 5 }), Some(1));
    p.a.peer.queue_message(Message::SendHeaders, Some(2));
    p.a.peer.queue_message(Message::GetAddr, Some(3));
    // Over v2 our version itself waits for the v2 session.
    let version_queued = usize::from(!over_v2());
    assert_eq!(
        p.a.peer.queued_messages(),
        3 + version_queued,
        "version + three held"
    );
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![1, 3]);
    assert_eq!(p.a.rec.failed(), vec![2]);
    assert_eq!(p.b.rec.count_msg("ping"), 1);
    assert_eq!(p.b.rec.count_msg("getaddr"), 1);
    assert_eq!(p.b.rec.count_msg("sendheaders"), 0);
}

/// btcd never signals messages queued before a handshake that fails (§13.7); we fail
/// each of them exactly once.
#[test]
fn held_messages_fail_when_the_handshake_fails() {
    let mut s = Solo::outbound(config(Network::Mainnet));
    for t in 0..5 {
        s.node.peer.queue_message(Message::GetAddr, Some(t));
    }
    s.fire_next();
    assert_eq!(s.node.rec.failed(), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        s.node.rec.recs.last(),
        Some(&Rec::Disconnected(DisconnectReason::NegotiateTimeout))
    );
}

/// TestOutboundPeer (b, c): while the handshake is pending, queueing messages and
/// inventory and updating heights are safe; our version carries the provider's
/// height; a disconnect answers every queued notification.
#[test]
fn outbound_queueing_while_the_handshake_is_pending() {
    let mut cfg = config(Network::Regtest);
    cfg.services = ServiceFlags::BLOOM;
    cfg.newest_block = Some(Arc::new(|| Ok((Hash256([9; 32]), 234_439))));
    let mut s = Solo::outbound(cfg);
    match s.take_output(70016).as_slice() {
        [Message::Version(v)] => assert_eq!(v.start_height, 234_439),
        other => panic!("{other:?}"),
    }
    let h = Hash256([1; 32]);
    s.node.peer.update_last_announced_block(h);
    s.node.peer.update_last_block_height(234_440);
    assert_eq!(s.node.peer.last_announced_block(), Some(h));
    assert_eq!(s.node.peer.last_block(), 234_440);
    s.node
        .peer
        .queue_inventory(wire_codec::message::InvVect::new(
            wire_codec::message::InvType::TX,
            h,
        ));
    let msgs = [
        Message::GetAddr,
        Message::Ping(Ping { nonce: 1 }),
        Message::MemPool,
        Message::GetData(wire_codec::message::Inventory::default()),
        Message::GetHeaders(wire_codec::message::BlockLocator {
            version: 70016,
            locator: vec![],
            stop: Hash256::ZERO,
        }),
        Message::FeeFilter(wire_codec::message::FeeFilter { feerate: 20_000 }),
    ];
    for (i, m) in msgs.into_iter().enumerate() {
        s.node.peer.queue_message(m, Some(i as u64));
    }
    assert!(
        s.node.peer.transmit().is_empty(),
        "held until the handshake"
    );
    assert_eq!(s.node.peer.pending_inventory(), 1);
    s.node.peer.disconnect(DisconnectReason::LocalRequest);
    s.node.pump(&mut s.now);
    assert_eq!(s.node.rec.failed(), (0..6).collect::<Vec<_>>());
    assert_eq!(s.node.peer.pending_inventory(), 0);
}

/// Frames that arrive while the application decides on the version wait in the peer
/// (16 decoded, the rest as bytes in its buffer), and all are processed on acceptance
/// with no new input: the driver contract a README-style loop relies on.
#[test]
fn frames_during_the_version_decision_are_held_then_processed() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    let mut bytes = frame(
        Network::Mainnet,
        70016,
        &Message::Version(Box::new(remote_version(70016, 5))),
    );
    let unknown = Message::Unknown {
        command: wire_codec::Command::new("feature").unwrap(),
        payload: bytes::Bytes::new(),
    };
    for _ in 0..20 {
        bytes.extend(frame(Network::Mainnet, 70016, &unknown));
    }
    bytes.extend(frame(Network::Mainnet, 70016, &Message::Verack));
    inject(&mut s.node, &bytes, s.now);
    assert_eq!(s.node.peer.phase(), Phase::AwaitingDecision);
    assert!(
        s.node.peer.buffered_input() > 0 && !s.node.peer.wants_read(),
        "decoding paused after 16 held frames"
    );
    s.node.pump(&mut s.now); // accepts: processes the held frames and the rest
    assert!(s.node.peer.handshake_complete());
    assert_eq!(s.node.peer.buffered_input(), 0);
    assert_eq!(s.node.peer.stats_snapshot(s.now).unknown_messages, 20);
}

/// An inbound peer builds its version when accepting the remote's: a failing provider
/// fails the handshake there, and nothing is sent.
#[test]
fn inbound_newest_block_error_fails_on_accept() {
    let mut cfg = config(Network::Mainnet);
    cfg.newest_block = Some(Arc::new(|| Err("reindexing".into())));
    let mut s = Solo::inbound(cfg);
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 8))));
    assert_eq!(
        s.node.peer.disconnect_reason(),
        Some(&DisconnectReason::NewestBlockUnavailable {
            reason: "reindexing".into()
        })
    );
    assert!(s.node.peer.transmit().is_empty());
}

/// A chain of `n` headers building on `prev`.
fn header_chain(mut prev: Hash256, n: usize, salt: u32) -> Vec<wire_codec::message::BlockHeader> {
    (0..n)
        .map(|i| {
            let h = wire_codec::message::BlockHeader {
                version: 4,
                prev_block: prev,
                merkle_root: Hash256([salt as u8; 32]),
                claim_trie: None,
                time: 1_700_000_000 + i as u32,
                bits: 0x207f_ffff,
                nonce: salt + i as u32,
            };
            prev = h.hash();
            h
        })
        .collect()
}

/// btcd's UpdateLastBlockHeight/UpdateLastAnnouncedBlock, done by the peer: once the
/// application pins the height of a block of the remote's chain, `headers` that build
/// on it move the height on by their count (a BIP130 announcement, a sync batch);
/// headers from elsewhere only record the announced hash.
#[test]
fn last_block_height_follows_headers_that_build_on_a_known_block() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let send = |p: &mut Pair, headers: Vec<wire_codec::message::BlockHeader>| {
        p.a.peer.queue_message(
            Message::Headers(wire_codec::message::Headers { headers }),
            None,
        );
        p.drive();
    };
    // Unanchored: the hash is recorded, the height stays.
    let before = p.b.peer.last_block();
    let stray = header_chain(Hash256([5; 32]), 3, 1);
    send(&mut p, stray.clone());
    assert_eq!(p.b.peer.last_block(), before);
    assert_eq!(p.b.peer.last_announced_block(), Some(stray[2].hash()));

    // Anchored at height 1,000: a batch of 2,000, then one announced header.
    let anchor = Hash256([9; 32]);
    p.b.peer.update_last_block(anchor, 1_000);
    assert_eq!(p.b.peer.last_block(), 1_000);
    let batch = header_chain(anchor, 2_000, 2);
    send(&mut p, batch.clone());
    assert_eq!(p.b.peer.last_block(), 3_000);
    let next = header_chain(batch[1_999].hash(), 1, 3);
    send(&mut p, next.clone());
    assert_eq!(p.b.peer.last_block(), 3_001);
    assert_eq!(p.b.peer.last_announced_block(), Some(next[0].hash()));
    assert_eq!(p.b.peer.stats_snapshot(p.now).last_block, 3_001);

    // A fork from below the tip, or a repeat of an old batch, does not move it.
    send(&mut p, header_chain(anchor, 5, 4));
    assert_eq!(p.b.peer.last_block(), 3_001);
    // The height never goes down, even when the application pins a lower block.
    p.b.peer.update_last_block(Hash256([1; 32]), 10);
    assert_eq!(p.b.peer.last_block(), 3_001);
    send(&mut p, header_chain(Hash256([1; 32]), 7, 5));
    assert_eq!(p.b.peer.last_block(), 3_001);
}

/// BIP330: `sendtxrcncl` is legal between version and verack (handed to the
/// application), not before version.
#[test]
fn sendtxrcncl_is_accepted_between_version_and_verack() {
    let rcncl = Message::SendTxRcncl(wire_codec::message::SendTxRcncl {
        version: 1,
        salt: 7,
    });
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 9))));
    s.feed(70016, &rcncl);
    assert!(
        !s.node.peer.is_closed(),
        "{:?}",
        s.node.peer.disconnect_reason()
    );
    assert_eq!(s.node.rec.count_msg("sendtxrcncl"), 1);
    s.feed(70016, &Message::Verack);
    assert!(s.node.peer.handshake_complete());
    // Below 70016 it is ignored, as Core ignores it.
    let mut cfg = config(Network::Mainnet);
    cfg.protocol_version = 70015;
    let mut s = Solo::inbound(cfg);
    s.feed(70015, &Message::Version(Box::new(remote_version(70015, 9))));
    s.feed(70015, &rcncl);
    assert!(!s.node.peer.is_closed());
    assert_eq!(s.node.rec.count_msg("sendtxrcncl"), 0);
}

/// `wtxidrelay` is a configuration option (default on): off, it is not sent and not
/// negotiated even when the remote sends it.
#[test]
fn wtxidrelay_is_optional() {
    let mut ca = config(Network::Mainnet);
    ca.wtxid_relay = false;
    let p = Pair::connected(ca, config(Network::Mainnet));
    assert_eq!(p.b.rec.count_msg("wtxidrelay"), 0);
    assert_eq!(p.b.rec.count_msg("sendaddrv2"), 1);
    assert_eq!(
        p.a.rec.count_msg("wtxidrelay"),
        1,
        "the remote still sends it"
    );
    assert!(!p.a.peer.features().wtxid_relay);
    assert!(!p.b.peer.features().wtxid_relay);
    let p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    assert!(p.a.peer.features().wtxid_relay && p.b.peer.features().wtxid_relay);
}

/// BIP434: `feature` messages (unknown to the codec) go out between our version and
/// our verack, and the remote's arrive at the application there too.
#[test]
fn feature_messages_between_version_and_verack() {
    let feature = |tag: &'static [u8]| Message::Unknown {
        command: wire_codec::Command::from_static("feature"),
        payload: bytes::Bytes::from_static(tag),
    };
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    assert!(p.a.peer.queue_handshake_message(feature(b"from-a")));
    p.drive();
    assert!(p.a.peer.handshake_complete() && p.b.peer.handshake_complete());
    // b received it after version and before verack.
    let cmds: Vec<String> =
        p.b.rec
            .messages
            .iter()
            .map(|m| m.command().to_string())
            .collect();
    assert_eq!(cmds, ["wtxidrelay", "sendaddrv2", "feature", "verack"]);
    assert_eq!(p.b.rec.messages[2], feature(b"from-a"));
    // Once our verack is out it is too late.
    assert!(!p.a.peer.queue_handshake_message(feature(b"late")));

    // An inbound peer sends its own from the version callback (scripted remote).
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 9))));
    let out: Vec<String> = s
        .take_output(70016)
        .iter()
        .map(|m| m.command().to_string())
        .collect();
    assert_eq!(out, ["version", "wtxidrelay", "sendaddrv2", "verack"]);
}

/// The negotiated version is min(ours, theirs) from the moment the remote's version
/// arrives (what the runtime's handle reports from then on too).
#[test]
fn negotiated_version_is_known_at_the_remote_version() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    assert_eq!(s.node.peer.negotiated_version(), 70016);
    s.feed(70012, &Message::Version(Box::new(remote_version(70012, 9))));
    assert_eq!(s.node.peer.negotiated_version(), 70012);
    assert!(!s.node.peer.handshake_complete());
}
