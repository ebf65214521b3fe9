//! Shared frames (`Peer::queue_frame`): a message encoded once is queued to many peers
//! without a per-peer copy, and behaves on the wire exactly as `queue_message` does.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use peer_core::{DisconnectReason, Event, SharedFrame, LARGE_FRAME};
use proptest::prelude::*;
use wire_codec::message::{
    Block, BlockHeader, Message, OutPoint, Ping, ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{encode_frame, Command, Context, Hash256, Network};

use crate::harness::*;

fn tx(script_len: usize, witness: bool) -> Transaction {
    Transaction::build(
        2,
        &[TxIn {
            prevout: OutPoint {
                txid: Hash256([0xbb; 32]),
                vout: 1,
            },
            script_sig: Bytes::new(),
            sequence: u32::MAX,
            witness: if witness {
                vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])]
            } else {
                vec![]
            },
        }],
        &[TxOut {
            value: 5_000,
            script_pubkey: Bytes::from(vec![0x51; script_len]),
        }],
        0,
    )
}

/// A block of about `size` bytes (one transaction with a large output script).
fn block(size: usize, witness: bool) -> Message {
    let header = BlockHeader {
        version: 4,
        prev_block: Hash256::ZERO,
        merkle_root: Hash256::ZERO,
        claim_trie: None,
        time: 0,
        bits: 0x207fffff,
        nonce: 0,
    };
    Message::Block(Box::new(Block::new(header, vec![tx(size, witness)])))
}

fn blob(len: usize, fill: u8) -> Message {
    Message::Unknown {
        command: Command::from_static("blob"),
        payload: Bytes::from(vec![fill; len]),
    }
}

fn witness_pair(b_witness: bool) -> Pair {
    let mut ca = config(Network::Mainnet);
    ca.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let mut cb = config(Network::Mainnet);
    if b_witness {
        cb.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    }
    Pair::connected(ca, cb)
}

/// What `queue_message` would put on the v1 wire for `msg` from `a` of `p`.
fn encoded(p: &Pair, msg: &Message) -> Vec<u8> {
    let ctx = Context::new(Network::Mainnet, p.a.peer.negotiated_version())
        .with_witness(p.a.peer.features().witness);
    let mut out = BytesMut::new();
    encode_frame(Network::Mainnet.magic(), msg, &ctx, &mut out).unwrap();
    out.to_vec()
}

fn output(p: &Pair) -> Vec<u8> {
    p.a.peer.transmit_chunks().flatten().copied().collect()
}

fn range_of(b: &[u8]) -> Range<usize> {
    let start = b.as_ptr() as usize;
    start..start + b.len()
}

/// (a) One 4 MB block (3.99 MB of transaction), encoded once, queued to 8 peers between small messages: in every
/// peer's output the frame's segment is the frame's own allocation (a pointer into it,
/// its full length), no other segment holds a copy of it, and the bytes are those
/// `queue_message` would have written. The block arrives intact everywhere.
#[test]
fn a_frame_queued_to_many_peers_points_into_one_allocation() {
    let msg = block(3_990_000, true); // a full block: under the 4 MB payload cap
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    let shared = range_of(frame.bytes());
    let mut pairs: Vec<Pair> = (0..8).map(|_| witness_pair(true)).collect();
    for (i, p) in pairs.iter_mut().enumerate() {
        assert_eq!(p.a.peer.queued_bytes(), 0);
        let before = Message::Ping(Ping {
            nonce: i as u64 + 1,
        });
        let after = Message::Ping(Ping {
            nonce: 1000 + i as u64,
        });
        p.a.peer.queue_message(before.clone(), Some(1));
        p.a.peer.queue_frame(frame.clone(), Some(2));
        p.a.peer.queue_message(after.clone(), Some(3));
        let mut want = encoded(p, &before);
        want.extend(encoded(p, &msg));
        want.extend(encoded(p, &after));
        if !over_v2() {
            assert_eq!(p.a.peer.queued_bytes(), want.len());
            let chunks: Vec<&[u8]> = p.a.peer.transmit_chunks().collect();
            assert_eq!(chunks.len(), 3, "small, the frame, small");
            assert_eq!(range_of(chunks[1]), shared, "the frame's own bytes");
            for c in [chunks[0], chunks[2]] {
                let r = range_of(c);
                assert!(r.end <= shared.start || r.start >= shared.end);
                assert!(c.len() < LARGE_FRAME, "no copy of the block elsewhere");
            }
            assert_eq!(output(p), want, "the bytes queue_message writes");
        }
    }
    for p in &mut pairs {
        let before = p.a.peer.stats_snapshot(p.now);
        let queued = p.a.peer.queued_bytes() as u64;
        p.split = 100_000;
        p.drive();
        let after = p.a.peer.stats_snapshot(p.now);
        assert!(
            after.bytes_sent - before.bytes_sent >= queued,
            "frame bytes counted"
        );
        assert!(
            after.messages_sent - before.messages_sent >= 3,
            "the frame counts as one"
        );
        assert_eq!(p.a.rec.sent(), vec![1, 2, 3]);
        assert_eq!(
            p.a.rec.written("block"),
            1,
            "on_write gets the frame's message"
        );
        assert_eq!(p.b.rec.messages.iter().filter(|m| **m == msg).count(), 1);
        assert_eq!(p.a.peer.queued_bytes(), 0);
        assert_eq!(p.a.peer.transmit_segments(), 0);
    }
}

/// A frame below `LARGE_FRAME` is copied into the contiguous buffer (one segment), with
/// the same bytes.
#[test]
fn a_small_frame_is_batched_with_small_messages() {
    if v1_bytes_only() {
        return;
    }
    let mut p = witness_pair(true);
    let msg = blob(1000, 7);
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    p.a.peer.queue_message(Message::Verack, None);
    p.a.peer.queue_frame(frame.clone(), None);
    assert_eq!(p.a.peer.transmit_segments(), 1);
    let mut want = encoded(&p, &Message::Verack);
    want.extend(encoded(&p, &msg));
    assert_eq!(p.a.peer.transmit(), &want[..]);
}

/// (c) Witness: a peer without NODE_WITNESS gets the block without witness, as
/// `queue_message` sends it; the base encoding is made once and shared by every such
/// peer, while witness peers share the original.
#[test]
fn a_frame_to_peers_without_witness_is_stripped_once() {
    let msg = block(100_000, true);
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    let mut plain: Vec<Pair> = (0..3).map(|_| witness_pair(false)).collect();
    let mut full = witness_pair(true);
    full.a.peer.queue_frame(frame.clone(), Some(1));
    let mut ranges = Vec::new();
    for p in &mut plain {
        assert!(!p.a.peer.features().witness);
        p.a.peer.queue_frame(frame.clone(), Some(1));
        let want = encoded(p, &msg);
        assert_ne!(&want[..], &frame.bytes()[..], "stripped differs");
        if !over_v2() {
            assert_eq!(output(p), want);
            ranges.push(range_of(p.a.peer.transmit()));
        }
    }
    if !over_v2() {
        let base = frame.base_bytes().expect("made for the first plain peer");
        assert!(ranges.iter().all(|r| *r == range_of(base)), "shared by all");
        assert_eq!(range_of(full.a.peer.transmit()), range_of(frame.bytes()));
    }
    for p in plain.iter_mut().chain(std::iter::once(&mut full)) {
        p.drive();
        assert_eq!(p.a.rec.sent(), vec![1]);
    }
    let stripped = |m: &Message| match m {
        Message::Block(b) => b.txs[0].inputs().all(|i| i.witness.is_empty()),
        _ => false,
    };
    for p in &plain {
        assert_eq!(p.b.rec.messages.iter().filter(|m| stripped(m)).count(), 1);
    }
    assert!(full.b.rec.messages.contains(&msg));
}

/// (c) Version gating: a frame of a command the negotiated version lacks is not sent
/// and answers Failed; a frame of another network answers Failed; a version-sensitive
/// small message at an older version is encoded for that version.
#[test]
fn a_frame_is_gated_like_queue_message() {
    let mut p = pair_at(70011, false);
    assert_eq!(p.a.peer.negotiated_version(), 70011);
    let sendheaders = SharedFrame::new(Message::SendHeaders, Network::Mainnet).unwrap();
    p.a.peer.queue_frame(sendheaders, Some(1));
    let testnet = SharedFrame::new(blob(LARGE_FRAME, 1), Network::Testnet3).unwrap();
    p.a.peer.queue_frame(testnet, Some(2));
    assert_eq!(p.a.peer.queued_bytes(), 0, "nothing encoded");
    let evs: Vec<Event> = std::iter::from_fn(|| p.a.peer.poll_event()).collect();
    assert_eq!(evs, vec![Event::Failed(1), Event::Failed(2)]);
    // Ping is encoded at the frame's version; at 70011 the same bytes (both > BIP31).
    let ping = Message::Ping(Ping { nonce: 5 });
    p.a.peer.queue_frame(
        SharedFrame::new(ping.clone(), Network::Mainnet).unwrap(),
        Some(3),
    );
    if !over_v2() {
        assert_eq!(output(&p), encoded(&p, &ping));
    }
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![3]);
    assert_eq!(p.b.rec.count_msg("ping"), 1);
    assert!(!p.a.peer.is_closed() && !p.b.peer.is_closed());
}

/// Before the handshake a frame is held, and sent (by reference) after it, in order
/// with held messages; on a closed peer it answers Failed at once.
#[test]
fn a_frame_is_held_until_the_handshake_and_failed_when_closed() {
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    let msg = blob(50_000, 3);
    let frame = SharedFrame::new(msg.clone(), Network::Mainnet).unwrap();
    let version = p.a.peer.queued_messages(); // our version message
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 1 }), Some(1));
    p.a.peer.queue_frame(frame.clone(), Some(2));
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 2 }), Some(3));
    assert_eq!(p.a.peer.queued_messages(), version + 3);
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![1, 2, 3]);
    let got: Vec<&Message> =
        p.b.rec
            .messages
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Message::Ping(Ping { nonce: 1 | 2 }) | Message::Unknown { .. }
                )
            })
            .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], &msg);
    p.a.peer.disconnect(DisconnectReason::LocalRequest);
    p.a.peer.queue_frame(frame, Some(9));
    let evs: Vec<Event> = std::iter::from_fn(|| p.a.peer.poll_event()).collect();
    assert!(evs.contains(&Event::Failed(9)));
}

/// (e) A disconnect in the middle of a shared frame fails it (and what follows) exactly
/// once, drops its remaining bytes — the remote never gets the rest — and adds no
/// farewell after the torn frame.
#[test]
fn a_disconnect_mid_frame_fails_it_and_sends_nothing_more() {
    let mut p = witness_pair(true);
    let now = p.now;
    let frame = SharedFrame::new(blob(100_000, 9), Network::Mainnet).unwrap();
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 1 }), Some(1));
    let first = p.a.peer.queued_bytes();
    p.a.peer.queue_frame(frame.clone(), Some(2));
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 2 }), Some(3));
    p.a.peer.advance_transmit(first + 5_000, now); // into the frame
    p.a.peer.disconnect(DisconnectReason::LocalRequest);
    let evs: Vec<Event> = std::iter::from_fn(|| p.a.peer.poll_event()).collect();
    let answers: Vec<&Event> = evs
        .iter()
        .filter(|e| matches!(e, Event::Sent(_) | Event::Failed(_)))
        .collect();
    assert_eq!(
        answers,
        vec![&Event::Sent(1), &Event::Failed(2), &Event::Failed(3)]
    );
    assert!(!p.a.peer.wants_write(), "nothing after a torn frame");
    assert_eq!(p.a.peer.queued_bytes(), 0);
    p.a.peer.advance_transmit(usize::MAX, now);
    assert!(std::iter::from_fn(|| p.a.peer.poll_event())
        .all(|e| !matches!(e, Event::Sent(_) | Event::Failed(_))));
}

/// The output bound counts a shared frame's full length in each peer.
#[test]
fn the_output_bound_counts_shared_frames() {
    let mut ca = config(Network::Mainnet);
    ca.max_output_bytes = 150_000;
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    let frame = SharedFrame::new(blob(60_000, 1), Network::Mainnet).unwrap();
    p.a.peer.queue_frame(frame.clone(), Some(1));
    p.a.peer.queue_frame(frame.clone(), Some(2));
    assert!(p.a.peer.queued_bytes() >= 120_000);
    assert!(!p.a.peer.is_closed());
    p.a.peer.queue_frame(frame, Some(3));
    assert!(p.a.peer.is_closed());
    assert!(matches!(
        p.a.peer.disconnect_reason(),
        Some(DisconnectReason::OutputQueueFull { .. })
    ));
    let evs: Vec<Event> = std::iter::from_fn(|| p.a.peer.poll_event()).collect();
    for t in 1..=3 {
        assert_eq!(evs.iter().filter(|e| **e == Event::Failed(t)).count(), 1);
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// queue_message of a ping.
    Small,
    /// queue_frame of a blob this long (either side of `LARGE_FRAME`).
    Frame(usize),
    /// The driver writes this many bytes (gathered across segments).
    Write(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Small),
        2 => (1_000usize..60_000).prop_map(Op::Frame),
        3 => (1usize..70_000).prop_map(Op::Write),
    ]
}

/// Writes up to `n` bytes the way a vectored driver does; returns them.
fn write_some(p: &mut Pair, n: usize) -> Vec<u8> {
    let mut slots = [std::io::IoSlice::new(&[]); 8];
    let k = p.a.peer.transmit_vectored(&mut slots);
    let mut out = Vec::new();
    for s in &slots[..k] {
        let take = (n - out.len()).min(s.len());
        out.extend_from_slice(&s[..take]);
        if out.len() == n {
            break;
        }
    }
    let now = p.now;
    p.a.peer.advance_transmit(out.len(), now);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// (b) Any mix of small messages and shared frames, queued between writes of any
    /// size: the byte stream is the concatenation of the individually encoded frames,
    /// and every token is answered exactly once, Sent, in order.
    #[test]
    fn segments_keep_order_across_partial_writes(ops in prop::collection::vec(op(), 1..40)) {
        let mut p = witness_pair(true);
        let mut want = Vec::new();
        let mut got = Vec::new();
        let mut token = 0u64;
        let mut msgs = Vec::new();
        for op in &ops {
            match op {
                Op::Small => {
                    let m = Message::Ping(Ping { nonce: token + 1 });
                    want.extend(encoded(&p, &m));
                    p.a.peer.queue_message(m.clone(), Some(token));
                    msgs.push(m);
                    token += 1;
                }
                Op::Frame(len) => {
                    let m = blob(*len, token as u8);
                    want.extend(encoded(&p, &m));
                    let f = SharedFrame::new(m.clone(), Network::Mainnet).unwrap();
                    p.a.peer.queue_frame(f, Some(token));
                    msgs.push(m);
                    token += 1;
                }
                Op::Write(n) => got.extend(write_some(&mut p, *n)),
            }
            prop_assert_eq!(p.a.peer.queued_bytes(), p.a.peer.transmit_chunks().map(<[u8]>::len).sum::<usize>());
        }
        let mut sizes = ops.iter().filter_map(|o| match o { Op::Write(n) => Some(*n), _ => None }).cycle();
        while p.a.peer.wants_write() {
            let n = sizes.next().unwrap_or(usize::MAX);
            got.extend(write_some(&mut p, n));
        }
        let sent: Vec<u64> = std::iter::from_fn(|| p.a.peer.poll_event())
            .filter_map(|e| match e {
                Event::Sent(t) => Some(t),
                Event::Failed(t) => Some(1_000_000 + t),
                _ => None,
            })
            .collect();
        prop_assert_eq!(sent, (0..token).collect::<Vec<_>>());
        if over_v2() {
            // Ciphertext: check what the remote decodes instead.
            let now = p.now;
            p.b.peer.handle_input(&got, now);
            p.b.pump(&mut p.now);
            let recv: Vec<&Message> = p.b.rec.messages.iter()
                .filter(|m| matches!(m, Message::Ping(_) | Message::Unknown { .. }))
                .collect();
            prop_assert_eq!(recv, msgs.iter().collect::<Vec<_>>());
        } else {
            prop_assert!(got == want, "stream differs ({} vs {} bytes)", got.len(), want.len());
        }
    }
}
