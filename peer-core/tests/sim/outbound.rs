//! The output queue: order, exactly-once notifications, the byte bound (behaviour 6).

use std::time::Duration;

use peer_core::{DisconnectReason, Event};
use wire_codec::message::{InvType, InvVect, Inventory, Message, Ping};
use wire_codec::{Hash256, Network};

use crate::harness::*;

/// Messages arrive in order, and each token is answered once, in order, with any
/// delivery granularity.
#[test]
fn order_and_notifications_with_small_splits() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.split = 7;
    for i in 0..100u64 {
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: i + 1 }), Some(i));
    }
    p.drive();
    assert_eq!(p.a.rec.sent(), (0..100).collect::<Vec<_>>());
    assert!(p.a.rec.failed().is_empty());
    let got: Vec<u64> =
        p.b.rec
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::Ping(Ping { nonce }) => Some(*nonce),
                _ => None,
            })
            .collect();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
}

/// Sent is reported when the last byte of the message is written, not before.
#[test]
fn sent_only_after_the_last_byte() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 9 }), Some(1));
    assert_eq!(p.a.peer.transmit().len(), 32);
    let now = p.now;
    p.a.peer.advance_transmit(31, now);
    assert!(!std::iter::from_fn(|| p.a.peer.poll_event()).any(|e| e == Event::Sent(1)));
    p.a.peer.advance_transmit(1, now);
    let evs: Vec<Event> = std::iter::from_fn(|| p.a.peer.poll_event()).collect();
    assert!(evs.contains(&Event::Sent(1)));
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Written { bytes: 32, .. })));
    // Over-reporting is clamped, never a panic.
    p.a.peer.advance_transmit(1000, now);
    let version_len = 24 + 80 + 1 + peer_core::BASE_USER_AGENT.len() + 4 + 1;
    let handshake = version_len + 3 * 24; // version, wtxidrelay, sendaddrv2, verack
    assert_eq!(
        p.a.peer.stats_snapshot(now).bytes_sent,
        (handshake + 32) as u64
    );
}

/// A remote that stops reading makes the bounded queue full: the peer disconnects and
/// every token is failed exactly once, before the single Disconnected.
#[test]
fn output_bound_disconnects_a_slow_reader() {
    let mut ca = config(Network::Mainnet);
    ca.max_output_bytes = 10_000;
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    p.a.link_up = false;
    let mut t = 0u64;
    while !p.a.peer.is_closed() {
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: t + 1 }), Some(t));
        t += 1;
        assert!(t < 10_000);
    }
    // 312 pings of 32 bytes fit in 10,000 bytes; the 313th does not.
    assert_eq!(t, 313);
    p.a.pump(&mut p.now);
    assert_eq!(p.a.rec.failed(), (0..313).collect::<Vec<_>>());
    assert!(p.a.rec.sent().is_empty());
    assert_eq!(
        p.a.rec.recs.last(),
        Some(&Rec::Disconnected(DisconnectReason::OutputQueueFull {
            bytes: 10_016,
            limit: 10_000
        }))
    );
    // Queued after close: answered at once.
    p.a.peer.queue_message(Message::GetAddr, Some(999));
    p.a.pump(&mut p.now);
    assert_eq!(p.a.rec.failed().last(), Some(&999));
}

/// A local disconnect while a message is half written fails it and the rest.
#[test]
fn disconnect_mid_write_fails_pending_tokens() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    for t in 0..3 {
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: 1 }), Some(t));
    }
    let now = p.now;
    p.a.peer.advance_transmit(40, now);
    p.a.peer.disconnect(DisconnectReason::LocalRequest);
    p.a.peer.disconnect(DisconnectReason::IdleTimeout); // idempotent
    p.a.pump(&mut p.now);
    assert_eq!(p.a.rec.sent(), vec![0]);
    assert_eq!(p.a.rec.failed(), vec![1, 2]);
    assert_eq!(p.a.rec.disconnects(), vec![DisconnectReason::LocalRequest]);
    // A message reported failed is never delivered afterwards: the rest of the
    // partial ping is dropped (the connection closes mid-frame instead).
    assert_eq!(p.a.peer.transmit().len(), 0);
}

/// Nothing of a message reported failed reaches the remote: the pair keeps running
/// until both ends closed and the remote never sees it.
#[test]
fn a_message_failed_at_disconnect_is_never_delivered() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let tx = wire_codec::message::Transaction::build(1, &[], &[], 0);
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 5 }), Some(1));
    p.a.peer.queue_message(Message::Tx(tx), Some(2));
    let now = p.now;
    p.a.peer.advance_transmit(32 + 10, now); // the ping and part of the tx
    p.a.peer.disconnect(DisconnectReason::LocalRequest);
    p.a.pump(&mut p.now);
    assert_eq!(p.a.rec.failed(), vec![2]);
    // Deliver what was written and whatever the transmit buffer still holds.
    let out = p.a.peer.transmit().to_vec();
    let mut written = frame(Network::Mainnet, 70016, &Message::Ping(Ping { nonce: 5 }));
    let tx_frame = frame(
        Network::Mainnet,
        70016,
        &Message::Tx(wire_codec::message::Transaction::build(1, &[], &[], 0)),
    );
    written.extend_from_slice(&tx_frame[..10]);
    written.extend_from_slice(&out);
    let now = p.now;
    inject(&mut p.b, &written, now);
    p.b.pump(&mut p.now);
    assert_eq!(p.b.rec.count_msg("ping"), 1);
    assert_eq!(p.b.rec.count_msg("tx"), 0, "a failed message arrived");
}

/// Messages the negotiated version lacks, and messages that cannot be encoded, fail
/// without harming the connection.
#[test]
fn unsendable_messages_fail_but_the_peer_stays() {
    let mut cb = config(Network::Mainnet);
    cb.protocol_version = 70012;
    let mut p = Pair::connected(config(Network::Mainnet), cb);
    p.a.peer.queue_message(Message::SendAddrV2, Some(1));
    let too_many = vec![InvVect::new(InvType::TX, Hash256::ZERO); 50_001];
    p.a.peer
        .queue_message(Message::Inv(Inventory::new(too_many)), Some(2));
    p.a.peer.queue_message(Message::SendHeaders, Some(3));
    p.drive();
    assert_eq!(p.a.rec.failed(), vec![1, 2]);
    assert_eq!(p.a.rec.sent(), vec![3]);
    assert!(!p.a.peer.is_closed());
    assert_eq!(p.b.rec.count_msg("sendheaders"), 1);
    assert!(p.b.peer.features().send_headers);
}

/// The single Disconnected event comes after all Failed events and nothing follows it
/// except answers to later queueing.
#[test]
fn disconnected_is_last_and_unique() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.b.link_up = false;
    for t in 0..10 {
        p.a.peer.queue_message(Message::GetAddr, Some(t));
    }
    p.a.link_up = false;
    p.run_for(Duration::from_secs(600));
    let recs = &p.a.rec.recs;
    let d = recs
        .iter()
        .position(|r| matches!(r, Rec::Disconnected(_)))
        .unwrap();
    assert_eq!(d, recs.len() - 1);
    assert_eq!(p.a.rec.failed(), (0..10).collect::<Vec<_>>());
    assert_eq!(p.a.rec.disconnects().len(), 1);
}

/// Byte counts follow what was written and read, on both sides.
#[test]
fn byte_counts_match_between_sides() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.split = 5;
    for i in 0..10 {
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: i + 1 }), None);
    }
    p.drive();
    let (a, b) = (
        p.a.peer.stats_snapshot(p.now),
        p.b.peer.stats_snapshot(p.now),
    );
    assert_eq!(a.bytes_sent, b.bytes_received);
    assert_eq!(b.bytes_sent, a.bytes_received);
    assert_eq!(a.messages_sent, 4 + 10);
    assert_eq!(b.messages_received, 4 + 10);
    assert_eq!(a.last_send, Some(p.now));
    assert_eq!(b.last_recv, Some(p.now));
}
