//! Protocol-version gating of received messages (peer-core `gating.rs`).

use wire_codec::message::{FeeFilter, Message};
use wire_codec::Network;

use crate::harness::*;

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
