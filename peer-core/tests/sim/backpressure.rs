//! Backpressure: a driver can pause a peer's input, and the peer never decodes far
//! ahead of the driver's `poll_event`.

use wire_codec::message::{Message, Ping};
use wire_codec::Network;

use crate::harness::*;

/// `n` pings as `from`'s transport puts them on the wire (v1 frames, or v2 packets of
/// its session when the suite runs over v2), taken from its output in one piece.
fn pings(from: &mut peer_core::Peer, n: u64, now: std::time::Instant) -> Vec<u8> {
    for nonce in 0..n {
        from.queue_message(Message::Ping(Ping { nonce }), None);
    }
    let bytes = from.transmit().to_vec();
    from.advance_transmit(bytes.len(), now);
    bytes
}

/// 1,000 pings in one read: they wait as bytes, are processed as events are taken,
/// stop while input is paused (no pong is queued then) and resume by themselves.
#[test]
fn input_pauses_and_resumes_and_decodes_only_a_little_ahead() {
    let mut p = Pair::connected(config(Network::Regtest), config(Network::Regtest));
    let now = p.now;
    let wire = pings(&mut p.a.peer, 1_000, now);
    let b = &mut p.b.peer;
    let sent_before = b.queued_bytes();
    b.handle_input(&wire, now);
    let processed = |b: &peer_core::Peer| b.stats_snapshot(now).messages_received;
    let first = processed(b);
    assert!(first < 100, "{first} frames decoded ahead of the driver");
    assert!(b.buffered_input() > 0);
    // Paused: taking events processes nothing more.
    b.set_input_paused(true);
    assert!(!b.wants_read());
    while b.poll_event().is_some() {}
    let paused_at = processed(b);
    assert!(paused_at < 100);
    let queued = b.queued_bytes();
    for _ in 0..10 {
        assert!(b.poll_event().is_none());
    }
    assert_eq!(b.queued_bytes(), queued, "pongs queued while paused");
    // Unpaused: everything is processed as the driver takes events.
    b.set_input_paused(false);
    assert!(b.wants_read());
    while b.poll_event().is_some() {}
    let total = processed(b);
    assert!(total >= 1_000, "{total} messages processed");
    assert_eq!(b.buffered_input(), 0);
    let pong_bytes = b.queued_bytes() - sent_before;
    // One pong per ping: 32 bytes each as a v1 frame; over v2 each pong packet is
    // 3 (length) + 1 (header) + 1 (message id) + 8 (nonce) + 16 (tag) = 29 bytes.
    let per_pong = if over_v2() { 29 } else { 32 };
    assert_eq!(pong_bytes, 1_000 * per_pong, "one pong per ping");
}

/// Inventory queued before the handshake is bounded (it cannot be sent yet).
#[test]
fn inventory_before_the_handshake_is_bounded() {
    use std::sync::Arc;
    use wire_codec::message::{InvType, InvVect};
    let now = std::time::Instant::now();
    let mut p = peer_core::Peer::new_outbound(
        Arc::new(config(Network::Regtest)),
        "127.0.0.1:18444".parse().unwrap(),
        now,
        1_700_000_000,
        1,
    );
    for i in 0..60_000u32 {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_le_bytes());
        p.queue_inventory(InvVect::new(InvType::TX, wire_codec::Hash256(h)));
    }
    assert_eq!(p.pending_inventory(), 50_000);
}
