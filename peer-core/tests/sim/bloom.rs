//! BIP111: filter messages and the NODE_BLOOM service (peer-core `bloom.rs`).

use bytes::Bytes;
use peer_core::DisconnectReason;
use wire_codec::message::{FilterAdd, Message};
use wire_codec::Network;

use crate::harness::*;

fn bloom_msgs() -> [Message; 3] {
    [
        filterload(),
        Message::FilterAdd(FilterAdd {
            data: Bytes::from_static(&[1]),
        }),
        Message::FilterClear,
    ]
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
