//! Stall detection (behaviour 10).

use std::time::Duration;

use peer_core::DisconnectReason;
use wire_codec::message::{command, BlockLocator, InvType, InvVect, Inventory, Message};
use wire_codec::{Hash256, Network};

use crate::harness::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn getdata() -> Message {
    Message::GetData(Inventory::new(vec![InvVect::new(
        InvType::BLOCK,
        Hash256([1; 32]),
    )]))
}

fn getheaders() -> Message {
    Message::GetHeaders(BlockLocator {
        version: 70016,
        locator: vec![],
        stop: Hash256::ZERO,
    })
}

/// Keeps pings from the remote flowing but never answers requests: only the stall
/// rule can fire.
fn pair() -> Pair {
    Pair::connected(config(Network::Mainnet), config(Network::Mainnet))
}

fn stalled_at(p: &mut Pair, max: Duration) -> Option<(Duration, DisconnectReason)> {
    let start = p.now;
    if p.run_until_cond(max, |p| p.a.peer.is_closed()) {
        Some((
            p.now - start,
            p.a.peer.disconnect_reason().cloned().unwrap(),
        ))
    } else {
        None
    }
}

/// getdata unanswered: disconnect at the first stall tick at or after 30 s.
#[test]
fn unanswered_getdata_stalls_at_30s() {
    let mut p = pair();
    p.a.peer.queue_message(getdata(), None);
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(at, s(30));
    assert_eq!(
        reason,
        DisconnectReason::Stalled {
            command: command::BLOCK,
            waited: s(30)
        }
    );
}

/// A request sent between ticks is detected at the next tick (btcd granularity).
#[test]
fn detection_happens_on_15s_ticks() {
    let mut p = pair();
    p.run_for(s(4));
    p.a.peer.queue_message(getdata(), None);
    p.drive();
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    // Deadline at 34 s after the handshake, first tick after it at 45 s.
    assert_eq!(at, s(41));
    assert!(matches!(reason, DisconnectReason::Stalled { waited, .. } if waited == s(41)));
}

/// getheaders gets 90 s.
#[test]
fn getheaders_gets_90s() {
    let mut p = pair();
    p.a.peer.queue_message(getheaders(), None);
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(at, s(90));
    assert!(
        matches!(reason, DisconnectReason::Stalled { command, .. } if command == command::HEADERS)
    );
}

/// getblocks and mempool expect an inv.
#[test]
fn getblocks_and_mempool_expect_inv() {
    for req in [
        Message::GetBlocks(BlockLocator {
            version: 70016,
            locator: vec![],
            stop: Hash256::ZERO,
        }),
        Message::MemPool,
    ] {
        let mut p = pair();
        p.a.peer.queue_message(req, None);
        let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
        assert_eq!(at, s(30));
        assert!(
            matches!(reason, DisconnectReason::Stalled { command, .. } if command == command::INV)
        );
    }
}

/// Any of block, merkleblock, tx or notfound answers a getdata; inv answers getblocks.
#[test]
fn answers_clear_the_deadline() {
    let mut p = pair();
    p.a.peer.queue_message(getdata(), None);
    p.drive();
    p.run_for(s(20));
    p.b.peer
        .queue_message(Message::NotFound(Inventory::default()), None);
    p.drive();
    assert_eq!(stalled_at(&mut p, s(200)), None);
    assert!(!p.a.peer.is_closed());
}

/// Unrelated messages (pings, pongs, addr) do not satisfy an expectation.
#[test]
fn unrelated_traffic_does_not_clear() {
    let mut p = pair();
    p.a.peer.queue_message(getheaders(), None);
    p.drive();
    for _ in 0..5 {
        p.run_for(s(10));
        p.b.peer.queue_message(Message::GetAddr, None);
        p.b.peer
            .queue_message(Message::Inv(Inventory::default()), None);
    }
    let (at, _) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(at, s(40), "90 s after the request, which was 50 s ago");
}

/// Pings are not tracked: an unanswered ping never stalls.
#[test]
fn pings_do_not_stall() {
    let mut p = pair();
    p.a.peer
        .queue_message(Message::Ping(wire_codec::message::Ping { nonce: 5 }), None);
    // b's answers never arrive; only the idle timeout (5 min) ends the connection.
    p.b.link_up = false;
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(reason, DisconnectReason::IdleTimeout);
    assert_eq!(at, s(300));
}

/// Time the application reports spending on received messages extends the deadline
/// (folded in, not reset per tick).
#[test]
fn processing_time_extends_deadlines() {
    let mut p = pair();
    p.a.peer.queue_message(getdata(), None);
    p.drive();
    // At 10 s, the remote sends two messages; each costs a's application 12 s.
    p.run_for(s(10));
    p.a.rec.processing = s(12);
    p.b.peer.queue_message(Message::GetAddr, None);
    p.b.peer.queue_message(Message::GetAddr, None);
    p.drive();
    p.a.rec.processing = Duration::ZERO;
    assert_eq!(p.now - p.start, s(34));
    // Deadline 30 s + 24 s of processing = 54 s: the 60 s tick fires.
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(p.now - p.start, s(60));
    assert_eq!(at, s(26));
    assert!(matches!(reason, DisconnectReason::Stalled { waited, .. } if waited == s(60)));
}

/// Same scenario without processing time: the 30 s tick fires.
#[test]
fn without_processing_time_the_same_scenario_stalls_earlier() {
    let mut p = pair();
    p.a.peer.queue_message(getdata(), None);
    p.drive();
    p.run_for(s(10));
    p.b.peer.queue_message(Message::GetAddr, None);
    p.b.peer.queue_message(Message::GetAddr, None);
    let _ = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(p.now - p.start, s(30));
}

/// Stall detection can be turned off.
#[test]
fn disabled_stall_detection_never_fires() {
    let mut ca = config(Network::Mainnet);
    ca.disable_stall_detection = true;
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    p.a.peer.queue_message(getdata(), None);
    p.a.peer.queue_message(getheaders(), None);
    // Pings keep both sides from idling; nothing else may end the connection.
    assert_eq!(stalled_at(&mut p, s(3600)), None);
}

/// A version sent after the handshake expects a verack (btcd table); here the remote
/// disconnects first for the duplicate, which is what btcd's test relies on.
#[test]
fn version_expects_verack() {
    let mut cb = config(Network::Mainnet);
    cb.disable_stall_detection = true;
    let mut p = Pair::connected(config(Network::Mainnet), cb);
    let v = p.b.rec.versions[0].clone();
    // Keep b from seeing it: a's version never arrives, so no verack comes back.
    p.a.link_up = false;
    p.a.peer.queue_message(Message::Version(Box::new(v)), None);
    // The frame is only "sent" once written; write it to nowhere.
    let n = p.a.peer.transmit().len();
    let now = p.now;
    p.a.peer.advance_transmit(n, now);
    let (at, reason) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(at, s(30));
    assert!(
        matches!(reason, DisconnectReason::Stalled { command, .. } if command == command::VERACK)
    );
}

/// The stall deadlines are configurable.
#[test]
fn stall_timeouts_are_configurable() {
    let mut ca = config(Network::Mainnet);
    ca.timeouts.stall_tick = s(1);
    ca.timeouts.stall_response = s(5);
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    p.a.peer.queue_message(getdata(), None);
    let (at, _) = stalled_at(&mut p, s(600)).unwrap();
    assert_eq!(at, s(5));
}

/// Once the handshake is done and nothing was requested, no deadline is pending, so a
/// driver need not time its callbacks; a request makes it pending until answered.
#[test]
fn processing_time_is_needed_only_while_a_response_is_expected() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    assert!(!p.a.peer.needs_processing_time());
    assert!(!p.b.peer.needs_processing_time());
    p.a.peer.queue_message(
        Message::GetHeaders(wire_codec::message::BlockLocator {
            version: 70016,
            locator: vec![Hash256::ZERO],
            stop: Hash256::ZERO,
        }),
        None,
    );
    p.drive();
    assert!(p.a.peer.needs_processing_time());
    p.b.peer.queue_message(
        Message::Headers(wire_codec::message::Headers { headers: vec![] }),
        None,
    );
    p.drive();
    assert!(!p.a.peer.needs_processing_time());
}

/// A remote that sends `version` and `verack` back to back, both read before our own
/// version was written: the handshake completes, and our version finishing its write
/// afterwards arms no verack deadline (the verack already came). It used to: every such
/// inbound peer was dropped as `Stalled { verack }` 30-45 s later.
#[test]
fn pipelined_version_and_verack_arm_no_deadline() {
    use bytes::BytesMut;
    use std::sync::Arc;
    use wire_codec::{encode_frame, Context};
    let cfg = Arc::new(config(Network::Mainnet));
    let now = std::time::Instant::now();
    let mut b = peer_core::Peer::new_inbound(
        cfg,
        "127.0.0.1:50000".parse().unwrap(),
        now,
        1_700_000_000,
        2,
    );
    let a = peer_core::Peer::new_outbound(
        Arc::new(config(Network::Mainnet)),
        "127.0.0.1:8333".parse().unwrap(),
        now,
        1_700_000_000,
        1,
    );
    // a's version, then a verack, in one buffer.
    let mut input = BytesMut::from(a.transmit());
    let ctx = Context::new(Network::Mainnet, 70016);
    encode_frame(Network::Mainnet.magic(), &Message::Verack, &ctx, &mut input).unwrap();
    b.handle_read(&mut input, now);
    while let Some(ev) = b.poll_event() {
        peer_core::dispatch(&mut b, ev, &mut Nop, now);
    }
    assert!(b.handshake_complete());
    // Only now is b's version (and verack) written.
    let n = b.transmit().len();
    b.advance_transmit(n, now);
    let mut t = now;
    for _ in 0..20 {
        t += s(15);
        b.handle_timeout(t);
        // Keep the idle and ping rules quiet: only stall detection could end it.
        let mut ping = BytesMut::new();
        let ping_msg = Message::Ping(wire_codec::message::Ping { nonce: 1 });
        encode_frame(Network::Mainnet.magic(), &ping_msg, &ctx, &mut ping).unwrap();
        b.handle_read(&mut ping, t);
        let n = b.transmit().len();
        b.advance_transmit(n, t);
        while b.poll_event().is_some() {}
    }
    assert!(!b.is_closed(), "{:?}", b.disconnect_reason());
}

struct Nop;
impl peer_core::Listener for Nop {}

/// BIP152: a getdata for MSG_CMPCT_BLOCK is answered with cmpctblock, which satisfies
/// the deadline (before, a healthy peer was dropped 30–45 s after asking).
#[test]
fn cmpctblock_answers_a_getdata() {
    let mut p = pair();
    p.a.peer.queue_message(
        Message::GetData(Inventory::new(vec![InvVect::new(
            InvType::CMPCT_BLOCK,
            Hash256([1; 32]),
        )])),
        None,
    );
    p.drive();
    let header = wire_codec::message::BlockHeader {
        version: 1,
        prev_block: Hash256::ZERO,
        merkle_root: Hash256::ZERO,
        claim_trie: None,
        time: 0,
        bits: 0x207fffff,
        nonce: 0,
    };
    p.b.peer.queue_message(
        Message::CmpctBlock(Box::new(wire_codec::message::CmpctBlock {
            header,
            nonce: 1,
            short_ids: vec![],
            prefilled: vec![],
        })),
        None,
    );
    p.drive();
    assert_eq!(p.a.rec.count_msg("cmpctblock"), 1);
    assert_eq!(stalled_at(&mut p, s(120)), None);
    assert!(!p.a.peer.is_closed());
}
