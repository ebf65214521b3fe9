//! Properties: random interleavings of messages, input splits and clock jumps never
//! panic, never livelock, and answer every notification exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use peer_core::fuzzing::{fuzz_peer, fuzz_peer_at};
use peer_core::DisconnectReason;
use proptest::prelude::*;
use wire_codec::message::{BlockLocator, InvType, InvVect, Inventory, Message, Ping};
use wire_codec::{Command, Hash256, Network};

use crate::harness::*;

#[derive(Debug, Clone)]
enum Op {
    QueueA(u8, bool),
    QueueB(u8),
    Inventory(u8),
    Step,
    Split(usize),
    Advance(u32),
    JumpToTimeout,
    Link(bool, bool),
    Processing(u8),
    Disconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<bool>()).prop_map(|(m, t)| Op::QueueA(m, t)),
        2 => any::<u8>().prop_map(Op::QueueB),
        2 => any::<u8>().prop_map(Op::Inventory),
        4 => Just(Op::Step),
        1 => (1usize..64).prop_map(Op::Split),
        2 => (0u32..400_000).prop_map(Op::Advance),
        2 => Just(Op::JumpToTimeout),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(a, up)| Op::Link(a, up)),
        1 => any::<u8>().prop_map(Op::Processing),
        1 => (0u8..8).prop_map(|_| Op::Disconnect),
    ]
}

fn message(i: u8) -> Message {
    let h = Hash256([i; 32]);
    match i % 9 {
        0 => Message::Ping(Ping {
            nonce: u64::from(i) + 1,
        }),
        1 => Message::GetAddr,
        2 => Message::GetData(Inventory::new(vec![InvVect::new(InvType::TX, h)])),
        3 => Message::GetHeaders(BlockLocator {
            version: 70016,
            locator: vec![h],
            stop: Hash256::ZERO,
        }),
        4 => Message::Inv(Inventory::new(vec![InvVect::new(InvType::BLOCK, h)])),
        5 => Message::NotFound(Inventory::new(vec![InvVect::new(InvType::TX, h)])),
        6 => Message::SendHeaders,
        7 => Message::Unknown {
            command: Command::new("zz").unwrap(),
            payload: Bytes::from(vec![i; usize::from(i)]),
        },
        _ => Message::MemPool,
    }
}

/// Counts answers per token from a recorder.
fn answers(rec: &Recorder) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for t in rec.sent().into_iter().chain(rec.failed()) {
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

fn check_timers(p: &Pair) {
    for n in [&p.a, &p.b] {
        if let Some(t) = n.peer.poll_timeout() {
            assert!(
                t > p.now,
                "a fired deadline stayed due: the driver would spin"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_interleavings_answer_every_token_once(
        ops in prop::collection::vec(op(), 0..120),
        lbry in any::<bool>(),
        version_b in prop::sample::select(vec![209u32, 60000, 70001, 70002, 70011, 70013, 70016]),
    ) {
        let net = if lbry { Network::LbryRegtest } else { Network::Regtest };
        let mut ca = config(net);
        ca.max_output_bytes = 4000;
        let mut cb = config(net);
        cb.protocol_version = version_b;
        let mut p = Pair::new(ca, cb);
        let mut tokens = 0u64;
        for op in ops {
            match op {
                Op::QueueA(m, with) => {
                    let t = with.then(|| { tokens += 1; tokens - 1 });
                    p.a.peer.queue_message(message(m), t);
                }
                Op::QueueB(m) => p.b.peer.queue_message(message(m), None),
                Op::Inventory(i) => {
                    let kind = if i % 4 == 0 { InvType::BLOCK } else { InvType::TX };
                    p.a.peer.queue_inventory(InvVect::new(kind, Hash256([i; 32])));
                }
                Op::Step => { p.step(); }
                Op::Split(n) => p.split = n,
                Op::Advance(ms) => {
                    p.now += Duration::from_millis(u64::from(ms));
                    let now = p.now;
                    p.a.peer.handle_timeout(now);
                    p.b.peer.handle_timeout(now);
                    check_timers(&p);
                }
                Op::JumpToTimeout => {
                    let until = p.now + Duration::from_secs(3600);
                    if p.fire_next(until) {
                        check_timers(&p);
                    }
                }
                Op::Link(a, up) => if a { p.a.link_up = up } else { p.b.link_up = up },
                Op::Processing(s) => p.a.peer.add_processing_time(Duration::from_secs(u64::from(s))),
                Op::Disconnect => p.a.peer.disconnect(DisconnectReason::LocalRequest),
            }
            p.a.pump(&mut p.now);
            p.b.pump(&mut p.now);
            for (t, n) in answers(&p.a.rec) {
                prop_assert!(n == 1, "token {} answered {} times", t, n);
            }
        }
        // Let everything settle with the links up, bounded in steps and virtual time.
        p.a.link_up = true;
        p.b.link_up = true;
        p.run_for(Duration::from_secs(60));
        p.a.peer.disconnect(DisconnectReason::LocalRequest);
        p.b.peer.disconnect(DisconnectReason::LocalRequest);
        p.drive();
        let got = answers(&p.a.rec);
        prop_assert_eq!(got.len() as u64, tokens, "every token answered");
        prop_assert!(got.values().all(|&n| n == 1));
        prop_assert_eq!(p.a.rec.disconnects().len(), 1);
        prop_assert_eq!(p.b.rec.disconnects().len(), 1);
        prop_assert!(p.both_closed());
    }

    /// The fuzz entry point on random scripts.
    #[test]
    fn fuzz_peer_random_inputs(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_peer(&data);
    }

    /// Arbitrary bytes to an inbound peer, in arbitrary splits: no panic, and any
    /// disconnect names a reason.
    #[test]
    fn garbage_input_in_any_split(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        split in 1usize..100,
    ) {
        let mut s = Solo::inbound(config(Network::Mainnet));
        for chunk in data.chunks(split) {
            s.feed_raw(chunk);
        }
        if s.node.peer.is_closed() {
            prop_assert!(s.node.peer.disconnect_reason().is_some());
        }
        prop_assert!(s.node.rec.disconnects().len() <= 1);
    }
}

/// A few hand-picked scripts that reach deep states (handshake done, traffic both
/// ways, timers), run on every test run.
#[test]
fn fuzz_peer_reaches_the_established_state() {
    // flags 0: outbound mainnet; versions; then transfers both ways repeatedly.
    for flags in [0u8, 4, 1, 2, 64 | 8] {
        let mut script = vec![flags, 9, 200, 200, 9];
        for _ in 0..6 {
            // transfer p -> r and r -> p, everything, 255-byte splits
            script.extend_from_slice(&[1, 0, 0, 255, 0, 0, 0, 255]);
        }
        // queue messages with tokens, deliver both ways, jump to the next timer.
        for i in 0..20 {
            script.extend_from_slice(&[6, i, 1, 0, 0, 7, 0, 0, 0, 7, 5]);
        }
        let report = fuzz_peer_at(&script, std::time::Instant::now());
        assert!(report.established, "flags {flags}: {report:?}");
        assert_eq!(report.tokens, 20);
        assert!(
            report.messages_received > 4,
            "traffic after the handshake: {report:?}"
        );
    }
}
