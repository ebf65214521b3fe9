//! push_reject: the hash rule, the version rule, notification pass-through, limits.

use bytes::BytesMut;
use peer_helpers::{push_reject, Error, RecordingQueue, RejectOutcome};
use wire_codec::message::{Reject, RejectCode};
use wire_codec::{encode_frame, Context, FrameDecoder, Hash256, Message, Network};

fn reject_of(q: &RecordingQueue) -> (&Reject, Option<u64>) {
    match q.messages.last() {
        Some((Message::Reject(r), n)) => (r, *n),
        other => panic!("expected reject, got {other:?}"),
    }
}

#[test]
fn block_and_tx_rejects_carry_the_hash() {
    for cmd in ["block", "tx"] {
        let mut q = RecordingQueue::new(70016);
        let hash = Hash256([0xab; 32]);
        let out = push_reject(&mut q, cmd, RejectCode::INVALID, "bad", Some(hash), None);
        assert_eq!(out, Ok(RejectOutcome::Queued));
        let (r, n) = reject_of(&q);
        assert_eq!(
            r,
            &Reject {
                message: cmd.into(),
                code: RejectCode::INVALID,
                reason: "bad".into(),
                hash: Some(hash),
            }
        );
        assert_eq!(n, None);
    }
}

#[test]
fn other_rejects_leave_the_hash_out() {
    let mut q = RecordingQueue::new(70016);
    let out = push_reject(
        &mut q,
        "version",
        RejectCode::DUPLICATE,
        "duplicate version message",
        Some(Hash256([1; 32])),
        None,
    );
    assert_eq!(out, Ok(RejectOutcome::Queued));
    assert_eq!(reject_of(&q).0.hash, None);
}

#[test]
fn a_block_or_tx_reject_without_hash_is_refused() {
    let mut q = RecordingQueue::new(70016);
    assert_eq!(
        push_reject(&mut q, "tx", RejectCode::DUST, "dust", None, Some(1)),
        Err(Error::RejectHashMissing {
            command: "tx".into()
        })
    );
    assert!(q.messages.is_empty());
}

#[test]
fn nothing_is_sent_below_the_reject_version() {
    for (version, sent) in [(209, false), (70001, false), (70002, true), (70016, true)] {
        let mut q = RecordingQueue::new(version);
        let out = push_reject(&mut q, "ping", RejectCode::MALFORMED, "x", None, Some(3));
        if sent {
            assert_eq!(out, Ok(RejectOutcome::Queued));
            assert_eq!(q.messages.len(), 1);
        } else {
            assert_eq!(out, Ok(RejectOutcome::SkippedOldVersion { version }));
            assert!(q.messages.is_empty());
        }
    }
}

#[test]
fn the_notification_goes_with_the_message() {
    let mut q = RecordingQueue::new(70016);
    let _ = push_reject(
        &mut q,
        "block",
        RejectCode::CHECKPOINT,
        "cp",
        Some(Hash256::ZERO),
        Some(42),
    );
    assert_eq!(reject_of(&q).1, Some(42));
}

#[test]
fn over_long_command_or_reason_is_refused() {
    let mut q = RecordingQueue::new(70016);
    assert_eq!(
        push_reject(&mut q, "thirteen_byte", RejectCode::INVALID, "", None, None),
        Err(Error::RejectCommandTooLong { len: 13, max: 12 })
    );
    let reason = "r".repeat(112);
    assert_eq!(
        push_reject(
            &mut q,
            "tx",
            RejectCode::INVALID,
            &reason,
            Some(Hash256::ZERO),
            None
        ),
        Err(Error::RejectReasonTooLong { len: 112, max: 111 })
    );
    assert!(q.messages.is_empty());
    let reason = "r".repeat(111);
    assert_eq!(
        push_reject(
            &mut q,
            "twelve_bytes",
            RejectCode::INVALID,
            &reason,
            None,
            None
        ),
        Ok(RejectOutcome::Queued)
    );
}

#[test]
fn the_reject_round_trips_through_the_codec() {
    let net = Network::Regtest;
    let ctx = Context::new(net, 70016);
    let mut q = RecordingQueue::new(70016);
    let hash = Hash256::sha256d(b"a transaction");
    let _ = push_reject(
        &mut q,
        "tx",
        RejectCode::NONSTANDARD,
        "scriptsig-size",
        Some(hash),
        None,
    );
    let _ = push_reject(
        &mut q,
        "getdata",
        RejectCode::MALFORMED,
        "too big",
        Some(hash),
        None,
    );
    for (msg, _) in &q.messages {
        let mut wire = BytesMut::new();
        encode_frame(net.magic(), msg, &ctx, &mut wire).unwrap();
        let frame = FrameDecoder::new(net).decode(&mut wire).unwrap().unwrap();
        assert_eq!(&frame.decode(&ctx).unwrap(), msg);
    }
}
