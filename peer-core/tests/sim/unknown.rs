//! Messages the codec does not know: sent as given (command + payload), received and
//! handed to `Listener::on_unknown`, during the handshake and after it.

use bytes::Bytes;
use wire_codec::message::Ping;
use wire_codec::{Command, Message, Network};

use crate::harness::*;

fn unknown(cmd: &'static str, payload: &'static [u8]) -> Message {
    Message::Unknown {
        command: Command::from_static(cmd),
        payload: Bytes::from_static(payload),
    }
}

#[test]
fn unknown_messages_travel_both_ways() {
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    // Queued before the handshake: held and sent after it, like any message.
    p.a.peer.queue_message(unknown("xping", b"1"), Some(1));
    p.drive();
    p.b.peer.queue_message(unknown("xpong", b"22"), Some(2));
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![1]);
    assert_eq!(p.b.rec.sent(), vec![2]);
    assert!(p.b.rec.messages.contains(&unknown("xping", b"1")));
    assert!(p.a.rec.messages.contains(&unknown("xpong", b"22")));
    assert_eq!(p.b.peer.stats_snapshot(p.now).unknown_messages, 1);
    assert!(!p.a.peer.is_closed() && !p.b.peer.is_closed());
}

/// Before the remote's version, unknown messages are counted and dropped (Core ignores
/// anything before version); between version and verack they reach the application.
#[test]
fn unknown_before_version_is_dropped_and_during_the_handshake_delivered() {
    let mut s = Solo::inbound(config(Network::Mainnet));
    s.feed(70016, &unknown("early", b""));
    assert!(!s.node.peer.is_closed());
    assert!(s.node.rec.messages.is_empty());
    s.feed(70016, &Message::Version(Box::new(remote_version(70016, 9))));
    s.feed(70016, &unknown("feature", b"x"));
    assert_eq!(s.node.rec.messages, vec![unknown("feature", b"x")]);
    assert_eq!(s.node.peer.stats_snapshot(s.now).unknown_messages, 2);
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
