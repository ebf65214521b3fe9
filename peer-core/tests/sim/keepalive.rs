//! Keep-alive pings, pong matching and the idle timeout (issue behaviour 5).

use std::time::Duration;

use peer_core::DisconnectReason;
use wire_codec::message::{Message, Ping, Pong};
use wire_codec::Network;

use crate::harness::*;

const MIN: Duration = Duration::from_secs(60);

/// A ping every 2 minutes from each side, answered, with no disconnect over an hour.
#[test]
fn pings_every_two_minutes_and_stays_up() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.run_for(2 * MIN - Duration::from_millis(1));
    assert_eq!(p.b.rec.count_msg("ping"), 0);
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.b.rec.count_msg("ping"), 1);
    assert_eq!(p.a.rec.count_msg("pong"), 1);
    p.run_for(60 * MIN);
    // 62 minutes: pings at 2, 4, …, 62.
    assert_eq!(p.b.rec.count_msg("ping"), 31);
    assert_eq!(p.a.rec.count_msg("ping"), 31);
    assert!(!p.a.peer.is_closed() && !p.b.peer.is_closed());
    // Every ping carried a distinct random nonce, answered by the same nonce.
    let nonces: Vec<u64> =
        p.b.rec
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::Ping(Ping { nonce }) => Some(*nonce),
                _ => None,
            })
            .collect();
    let mut dedup = nonces.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), nonces.len());
    assert!(p
        .a
        .rec
        .messages
        .iter()
        .any(|m| matches!(m, Message::Pong(Pong { nonce }) if *nonce == nonces[0])));
}

/// The pong matching our ping records the round trip and clears the nonce.
#[test]
fn pong_records_latency() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    // Fire the ping timer without delivering, then let 3 s pass before the pong.
    let t = p.a.peer.poll_timeout().unwrap();
    p.now = t;
    p.a.peer.handle_timeout(t);
    let s = p.a.peer.stats_snapshot(p.now);
    assert_ne!(s.last_ping_nonce, 0);
    assert_eq!(s.last_ping_time, Some(t));
    p.now += Duration::from_secs(3);
    p.drive();
    let s = p.a.peer.stats_snapshot(p.now);
    assert_eq!(s.last_ping_nonce, 0);
    assert_eq!(s.last_ping_latency, Some(Duration::from_secs(3)));
}

/// A pong with another nonce changes nothing.
#[test]
fn unmatched_pong_is_ignored_by_the_stats() {
    if v1_bytes_only() {
        return;
    }
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let t = p.a.peer.poll_timeout().unwrap();
    p.now = t;
    p.a.peer.handle_timeout(t);
    p.a.link_up = false; // the real ping never arrives
    let nonce = p.a.peer.stats_snapshot(p.now).last_ping_nonce;
    let now = p.now;
    inject(
        &mut p.a,
        &frame(
            Network::Mainnet,
            70016,
            &Message::Pong(Pong { nonce: nonce ^ 1 }),
        ),
        now,
    );
    p.a.pump(&mut p.now);
    let s = p.a.peer.stats_snapshot(p.now);
    assert_eq!(s.last_ping_nonce, nonce);
    assert_eq!(s.last_ping_latency, None);
    assert_eq!(
        p.a.rec.count_msg("pong"),
        1,
        "the application still sees it"
    );
}

/// Every ping is answered with a pong carrying its nonce, even unsolicited ones.
#[test]
fn pings_are_answered() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    for n in [1u64, 2, 3] {
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: n }), None);
    }
    p.drive();
    let pongs: Vec<u64> =
        p.a.rec
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::Pong(Pong { nonce }) => Some(*nonce),
                _ => None,
            })
            .collect();
    assert_eq!(pongs, vec![1, 2, 3]);
}

/// A pong reuses the checksum of the ping it answers (the same 8 payload bytes): its
/// frame is byte for byte what a fresh encoding gives, whichever nonce came before,
/// and so is every other 8-byte payload the peer sends.
#[test]
fn pong_frames_match_a_fresh_encoding() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 9))));
    s.feed(70016, &Message::Verack);
    assert!(s.node.peer.handshake_complete());
    let _ = s.take_output(70016);
    for nonce in [5u64, 5, 6, u64::MAX, 0, 6] {
        s.feed(70016, &Message::Ping(Ping { nonce }));
        let wrote = s.node.peer.transmit().to_vec();
        s.node.peer.advance_transmit(wrote.len(), s.now);
        let pong = frame(Network::Mainnet, 70016, &Message::Pong(Pong { nonce }));
        assert_eq!(wrote, pong, "pong to nonce {nonce}");
    }
    // Other 8-byte payloads of ours, equal to the last nonce received or not.
    for nonce in [6u64, 7] {
        s.node
            .peer
            .queue_message(Message::Ping(Ping { nonce }), None);
        let wrote = s.node.peer.transmit().to_vec();
        s.node.peer.advance_transmit(wrote.len(), s.now);
        let ping = frame(Network::Mainnet, 70016, &Message::Ping(Ping { nonce }));
        assert_eq!(wrote, ping, "our ping {nonce}");
    }
}

/// Idle timeout: when nothing arrives for 5 minutes the peer disconnects, although it
/// keeps pinging.
#[test]
fn idle_timeout_after_five_silent_minutes() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.b.link_up = false; // b's bytes never reach a
    let start = p.now;
    let done = p.run_until_cond(10 * MIN, |p| p.a.peer.is_closed());
    assert!(done);
    assert_eq!(
        p.a.peer.disconnect_reason(),
        Some(&DisconnectReason::IdleTimeout)
    );
    assert_eq!(p.now - start, 5 * MIN);
    assert_eq!(p.b.rec.count_msg("ping"), 2, "pinged at 2 and 4 minutes");
}

/// Any received message resets the idle timer.
#[test]
fn traffic_resets_the_idle_timer() {
    let mk = || {
        let mut cfg = config(Network::Mainnet);
        cfg.timeouts.ping_interval = Duration::from_secs(3600);
        cfg
    };
    let mut p = Pair::connected(mk(), mk());
    let start = p.now;
    p.run_for(4 * MIN);
    p.b.peer.queue_message(Message::GetAddr, None);
    p.a.peer.queue_message(Message::GetAddr, None);
    p.drive();
    assert!(p.run_until_cond(10 * MIN, |p| p.a.peer.is_closed()));
    assert_eq!(p.now - start, 9 * MIN);
    assert_eq!(
        p.a.peer.disconnect_reason(),
        Some(&DisconnectReason::IdleTimeout)
    );
}

/// Before BIP31 (≤ 60000) pings carry no nonce, are not tracked and get no pong.
#[test]
fn pre_bip31_pings_have_no_nonce_and_no_pong() {
    let mut ca = config(Network::Mainnet);
    ca.protocol_version = 60000;
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    p.run_for(2 * MIN);
    assert_eq!(p.b.rec.count_msg("ping"), 1);
    assert_eq!(p.a.rec.count_msg("ping"), 1);
    assert_eq!(p.a.rec.count_msg("pong") + p.b.rec.count_msg("pong"), 0);
    assert_eq!(p.a.peer.stats_snapshot(p.now).last_ping_nonce, 0);
    assert!(p
        .b
        .rec
        .messages
        .iter()
        .any(|m| matches!(m, Message::Ping(Ping { nonce: 0 }))));
}

/// The timers are configurable.
#[test]
fn ping_interval_and_idle_are_configurable() {
    let mk = || {
        let mut cfg = config(Network::Mainnet);
        cfg.timeouts.ping_interval = Duration::from_secs(10);
        cfg.timeouts.idle = Duration::from_secs(25);
        cfg
    };
    let mut p = Pair::connected(mk(), mk());
    p.run_for(Duration::from_secs(30));
    assert_eq!(p.b.rec.count_msg("ping"), 3);
    p.b.link_up = false;
    let start = p.now;
    assert!(p.run_until_cond(MIN, |p| p.a.peer.is_closed()));
    assert_eq!(p.now - start, Duration::from_secs(25));
}
