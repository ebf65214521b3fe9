//! Bloom rules, version gating, unknown commands and decode errors (behaviours 8, 9,
//! 13, 15).

use bytes::Bytes;
use peer_core::DisconnectReason;
use wire_codec::message::{
    command, FeeFilter, FilterAdd, FilterLoad, Message, Ping, RejectCode, ServiceFlags,
};
use wire_codec::{Command, Network};

use crate::harness::*;

fn filterload() -> Message {
    Message::FilterLoad(FilterLoad {
        filter: Bytes::from_static(&[1]),
        hash_funcs: 10,
        tweak: 0,
        flags: 0,
    })
}

fn bloom_msgs() -> [Message; 3] {
    [
        filterload(),
        Message::FilterAdd(FilterAdd {
            data: Bytes::from_static(&[1]),
        }),
        Message::FilterClear,
    ]
}

fn pair_at(version_b: u32, bloom_a: bool) -> Pair {
    let mut ca = config(Network::Mainnet);
    if bloom_a {
        ca.services = ServiceFlags::BLOOM;
    }
    let mut cb = config(Network::Mainnet);
    cb.protocol_version = version_b;
    Pair::connected(ca, cb)
}

/// BIP111: without NODE_BLOOM, a filter message at ≥ 70011 disconnects.
#[test]
fn bloom_without_service_disconnects_from_70011() {
    for m in bloom_msgs() {
        let mut p = pair_at(70011, false);
        let cmd = m.command();
        let now = p.now;
        inject(&mut p.a, &frame(Network::Mainnet, 70011, &m), now);
        p.a.pump(&mut p.now);
        assert_eq!(
            p.a.peer.disconnect_reason(),
            Some(&DisconnectReason::BloomWithoutService { command: cmd })
        );
        assert_eq!(p.a.rec.count_msg(cmd.as_str()), 0);
    }
}

/// Below 70011 the same messages are ignored without calling the application.
#[test]
fn bloom_without_service_is_ignored_before_70011() {
    let mut p = pair_at(70010, false);
    for m in bloom_msgs() {
        p.b.peer.queue_message(m, None);
    }
    p.drive();
    assert!(!p.a.peer.is_closed());
    for c in ["filterload", "filteradd", "filterclear"] {
        assert_eq!(p.a.rec.count_msg(c), 0);
    }
    assert_eq!(p.a.peer.stats_snapshot(p.now).ignored_messages, 3);
}

/// With NODE_BLOOM the application gets them.
#[test]
fn bloom_with_service_reaches_the_application() {
    let mut p = pair_at(70016, true);
    for m in bloom_msgs() {
        p.b.peer.queue_message(m, None);
    }
    p.drive();
    assert!(!p.a.peer.is_closed());
    for c in ["filterload", "filteradd", "filterclear"] {
        assert_eq!(p.a.rec.count_msg(c), 1);
    }
}

/// Messages the negotiated version lacks never reach the application.
#[test]
fn version_gating_hides_messages_the_version_lacks() {
    let mut p = pair_at(70011, true);
    let now = p.now;
    let gated = [
        Message::SendHeaders,                            // 70012
        Message::FeeFilter(FeeFilter { feerate: 1000 }), // 70013
        Message::SendCmpct(wire_codec::message::SendCmpct {
            announce: false,
            version: 1,
        }), // 70014
        Message::AddrV2(wire_codec::message::AddrV2 { addresses: vec![] }), // 70016
    ];
    for m in &gated {
        inject(&mut p.a, &frame(Network::Mainnet, 70016, m), now);
    }
    inject(
        &mut p.a,
        &frame(Network::Mainnet, 70016, &filterload()),
        now,
    );
    p.a.pump(&mut p.now);
    assert!(!p.a.peer.is_closed());
    for m in &gated {
        assert_eq!(
            p.a.rec.count_msg(m.command().as_str()),
            0,
            "{}",
            m.command()
        );
    }
    assert_eq!(p.a.rec.count_msg("filterload"), 1, "70001 ≤ 70011");
    assert!(!p.a.peer.features().send_headers);
    assert_eq!(p.a.peer.features().fee_filter, None);
    assert_eq!(p.a.peer.stats_snapshot(p.now).ignored_messages, 4);
}

/// At a version that has them, the same messages arrive and set the features.
#[test]
fn features_are_recorded_when_allowed() {
    let mut p = pair_at(70016, false);
    p.b.peer.queue_message(Message::SendHeaders, None);
    p.b.peer
        .queue_message(Message::FeeFilter(FeeFilter { feerate: 15_000 }), None);
    p.drive();
    let f = p.a.peer.features();
    assert!(f.send_headers);
    assert_eq!(f.fee_filter, Some(15_000));
    assert_eq!(p.a.peer.stats_snapshot(p.now).features, f);
}

/// Unknown commands are ignored and counted, never a reason to disconnect.
#[test]
fn unknown_commands_are_ignored_and_counted() {
    let mut p = pair_at(70016, false);
    for name in ["sendcmpct2", "xversion", "feature"] {
        p.b.peer.queue_message(
            Message::Unknown {
                command: Command::new(name).unwrap(),
                payload: Bytes::from_static(b"abc"),
            },
            None,
        );
    }
    p.b.peer
        .queue_message(Message::Ping(Ping { nonce: 3 }), None);
    p.drive();
    assert!(!p.a.peer.is_closed());
    let s = p.a.peer.stats_snapshot(p.now);
    assert_eq!(s.unknown_messages, 3);
    assert_eq!(p.a.rec.count_msg("ping"), 1);
    // on_read still saw them.
    assert!(p
        .a
        .rec
        .recs
        .iter()
        .any(|r| matches!(r, Rec::Read { command: Some(c), error: false, .. } if c == "xversion")));
}

/// A checksum error disconnects with a "malformed" reject (btcd).
#[test]
fn checksum_error_disconnects_with_a_reject() {
    let mut p = pair_at(70016, false);
    let mut bad = frame(Network::Mainnet, 70016, &Message::Ping(Ping { nonce: 1 }));
    bad[20] ^= 0xff;
    let now = p.now;
    inject(&mut p.a, &bad, now);
    p.drive();
    assert!(matches!(
        p.a.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(
            wire_codec::Error::ChecksumMismatch { .. }
        ))
    ));
    let r =
        p.b.rec
            .messages
            .iter()
            .find_map(|m| match m {
                Message::Reject(r) => Some(r.clone()),
                _ => None,
            })
            .expect("b got the reject");
    assert_eq!(r.message, "malformed");
    assert_eq!(r.code, RejectCode::MALFORMED);
    assert!(r.reason.starts_with("Can't read message from"));
    assert!(p.a.rec.recs.iter().any(|x| matches!(
        x,
        Rec::Read { bytes: 32, command: Some(c), error: true } if c == "ping"
    )));
}

/// A payload that does not decode disconnects too (the frame is intact).
#[test]
fn malformed_payload_disconnects() {
    let mut p = pair_at(70016, false);
    let bad = Message::Unknown {
        command: command::PING,
        payload: Bytes::from_static(&[1, 2, 3]),
    };
    let now = p.now;
    inject(&mut p.a, &frame(Network::Mainnet, 70016, &bad), now);
    assert!(matches!(
        p.a.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(
            wire_codec::Error::Truncated { .. }
        ))
    ));
}

/// No reject is sent where the protocol has none (negotiated < 70002).
#[test]
fn no_malformed_reject_below_70002() {
    let mut p = pair_at(70001, false);
    let mut bad = frame(Network::Mainnet, 70001, &Message::GetAddr);
    bad[20] ^= 0xff;
    let now = p.now;
    inject(&mut p.a, &bad, now);
    assert!(p.a.peer.is_closed());
    assert!(p.a.peer.transmit().is_empty());
}

/// btcd isAllowedReadError: on regtest, from a loopback address, malformed frames are
/// tolerated and counted.
#[test]
fn regtest_loopback_tolerates_malformed_frames() {
    let mut s = Solo::new(config(Network::Regtest), true, "127.0.0.1:40000");
    s.feed(
        70016,
        &Message::Version(Box::new(remote_version(70016, 99))),
    );
    s.feed(70016, &Message::Verack);
    assert!(s.node.peer.handshake_complete());
    let mut bad = frame(Network::Regtest, 70016, &Message::Ping(Ping { nonce: 1 }));
    bad[20] ^= 0xff;
    s.feed_raw(&bad);
    let undecodable = Message::Unknown {
        command: command::PING,
        payload: Bytes::from_static(&[1]),
    };
    s.feed(70016, &undecodable);
    assert!(!s.node.peer.is_closed());
    s.feed(70016, &Message::Ping(Ping { nonce: 2 }));
    assert_eq!(s.node.rec.count_msg("ping"), 1);
    assert_eq!(s.node.peer.stats_snapshot(s.now).ignored_messages, 2);
    // A broken header cannot be tolerated: the stream has no frame boundary.
    let mut bad_magic = frame(Network::Regtest, 70016, &Message::GetAddr);
    bad_magic[0] ^= 0xff;
    s.feed_raw(&bad_magic);
    assert!(matches!(
        s.node.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(wire_codec::Error::BadMagic { .. }))
    ));
    // The same frames from a non-loopback regtest peer disconnect.
    let mut s = Solo::new(config(Network::Regtest), true, "10.1.1.1:40000");
    s.feed(
        70016,
        &Message::Version(Box::new(remote_version(70016, 99))),
    );
    s.feed(70016, &Message::Verack);
    s.feed_raw(&bad);
    assert!(s.node.peer.is_closed());
}

/// Frames from another network disconnect.
#[test]
fn wrong_network_disconnects() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed_raw(&frame(
        Network::Testnet3,
        70016,
        &Message::Version(Box::new(remote_version(70016, 1))),
    ));
    assert!(matches!(
        s.node.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(wire_codec::Error::BadMagic { .. }))
    ));
}

/// Disconnect reasons classify themselves.
#[test]
fn reason_classes() {
    assert!(DisconnectReason::Stalled {
        command: command::INV,
        waited: std::time::Duration::from_secs(30)
    }
    .is_timeout());
    assert!(DisconnectReason::BloomWithoutService {
        command: command::FILTERADD
    }
    .is_misbehaviour());
    assert!(!DisconnectReason::LocalRequest.is_misbehaviour());
    assert!(!DisconnectReason::OutputQueueFull { bytes: 1, limit: 0 }.is_timeout());
}

/// A tolerated malformed frame whose header arrived in an earlier read does not stop
/// the frames after it from being processed in the same call.
#[test]
fn tolerated_error_mid_buffer_keeps_reading() {
    let mut s = Solo::new(config(Network::Regtest), true, "127.0.0.1:40000");
    s.feed(
        70016,
        &Message::Version(Box::new(remote_version(70016, 99))),
    );
    s.feed(70016, &Message::Verack);
    let mut bad = frame(Network::Regtest, 70016, &Message::Ping(Ping { nonce: 3 }));
    bad[20] ^= 0xff;
    // The header alone first: the decoder keeps it pending.
    s.feed_raw(&bad[..24]);
    assert_eq!(s.node.peer.buffered_input(), 0);
    // Then its payload and two good frames in one read.
    let mut rest = bad[24..].to_vec();
    rest.extend(frame(
        Network::Regtest,
        70016,
        &Message::Ping(Ping { nonce: 4 }),
    ));
    rest.extend(frame(
        Network::Regtest,
        70016,
        &Message::Ping(Ping { nonce: 5 }),
    ));
    s.feed_raw(&rest);
    assert!(!s.node.peer.is_closed());
    assert_eq!(s.node.rec.count_msg("ping"), 2);
    assert_eq!(s.node.peer.buffered_input(), 0);
}
