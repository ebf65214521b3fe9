//! Bytes that do not decode: rejects, disconnects, the regtest tolerance (peer-core
//! `malformed.rs`), and how disconnect reasons classify themselves.

use bytes::Bytes;
use peer_core::DisconnectReason;
use wire_codec::message::{command, Message, Ping, RejectCode};
use wire_codec::Network;

use crate::harness::*;

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
