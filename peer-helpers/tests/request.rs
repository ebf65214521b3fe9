//! push_get_blocks / push_get_headers: message content and the back-to-back duplicate
//! filter.

use peer_helpers::{
    push_get_blocks, push_get_headers, Error, RecordingQueue, RequestFilter, RequestKind,
    RequestOutcome, MAX_LOCATOR_PER_MSG,
};
use proptest::prelude::*;
use wire_codec::message::BlockLocator;
use wire_codec::{Hash256, Limits, Message};

fn h(n: u8) -> Hash256 {
    Hash256([n; 32])
}

fn push(
    kind: RequestKind,
    q: &mut RecordingQueue,
    f: &mut RequestFilter,
    locator: Vec<Hash256>,
    stop: Hash256,
) -> Result<RequestOutcome, Error> {
    match kind {
        RequestKind::GetBlocks => push_get_blocks(q, f, locator, stop),
        RequestKind::GetHeaders => push_get_headers(q, f, locator, stop),
    }
}

fn payload(msg: &Message) -> (RequestKind, &BlockLocator) {
    match msg {
        Message::GetBlocks(l) => (RequestKind::GetBlocks, l),
        Message::GetHeaders(l) => (RequestKind::GetHeaders, l),
        other => panic!("not a chain request: {other:?}"),
    }
}

#[test]
fn the_message_carries_locator_stop_and_negotiated_version() {
    for kind in [RequestKind::GetBlocks, RequestKind::GetHeaders] {
        let mut q = RecordingQueue::new(70015);
        let mut f = RequestFilter::new();
        let locator = vec![h(9), h(8), h(0)];
        let out = push(kind, &mut q, &mut f, locator.clone(), h(77));
        assert_eq!(out, Ok(RequestOutcome::Queued));
        let (k, l) = payload(&q.messages[0].0);
        assert_eq!(k, kind);
        assert_eq!((l.version, &l.locator, l.stop), (70015, &locator, h(77)));
        assert_eq!(q.messages[0].1, None);
    }
}

#[test]
fn a_back_to_back_repeat_is_skipped_and_reported() {
    for kind in [RequestKind::GetBlocks, RequestKind::GetHeaders] {
        let mut q = RecordingQueue::new(70016);
        let mut f = RequestFilter::new();
        assert_eq!(
            push(kind, &mut q, &mut f, vec![h(5), h(4)], h(0)),
            Ok(RequestOutcome::Queued)
        );
        // Same first hash and stop, different rest of the locator: still a repeat.
        assert_eq!(
            push(kind, &mut q, &mut f, vec![h(5), h(3), h(1)], h(0)),
            Ok(RequestOutcome::SkippedDuplicate)
        );
        assert_eq!(q.messages.len(), 1);
    }
}

#[test]
fn another_first_hash_or_stop_is_not_a_repeat() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    let k = RequestKind::GetHeaders;
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(5)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(5)], h(1)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(6)], h(1)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(q.messages.len(), 3);
}

#[test]
fn only_back_to_back_repeats_are_filtered() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    let k = RequestKind::GetBlocks;
    for (first, expect) in [
        (1, RequestOutcome::Queued),
        (2, RequestOutcome::Queued),
        (1, RequestOutcome::Queued), // not back-to-back with the first
        (1, RequestOutcome::SkippedDuplicate),
    ] {
        assert_eq!(push(k, &mut q, &mut f, vec![h(first)], h(0)), Ok(expect));
    }
    assert_eq!(q.messages.len(), 3);
}

#[test]
fn getblocks_and_getheaders_are_filtered_separately() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    assert_eq!(
        push_get_blocks(&mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push_get_headers(&mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push_get_blocks(&mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::SkippedDuplicate)
    );
    assert_eq!(
        push_get_headers(&mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::SkippedDuplicate)
    );
    assert_eq!(q.messages.len(), 2);
}

#[test]
fn an_empty_locator_is_never_skipped_and_clears_the_memory() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    let k = RequestKind::GetHeaders;
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push(k, &mut q, &mut f, vec![], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(
        push(k, &mut q, &mut f, vec![], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(f.last(k), None);
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(q.messages.len(), 4);
}

#[test]
fn forget_lets_the_same_request_go_again() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    let k = RequestKind::GetBlocks;
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    assert_eq!(f.last(k), Some((h(1), h(0))));
    f.forget(k);
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
}

#[test]
fn a_too_long_locator_is_refused_without_touching_queue_or_filter() {
    let mut q = RecordingQueue::new(70016);
    let mut f = RequestFilter::new();
    let k = RequestKind::GetHeaders;
    assert_eq!(
        push(k, &mut q, &mut f, vec![h(1)], h(0)),
        Ok(RequestOutcome::Queued)
    );
    let long: Vec<Hash256> = (0..=MAX_LOCATOR_PER_MSG).map(|i| h(i as u8)).collect();
    assert_eq!(
        push(k, &mut q, &mut f, long, h(0)),
        Err(Error::LocatorTooLong { len: 501, max: 500 })
    );
    assert_eq!(f.last(k), Some((h(1), h(0))));
    assert_eq!(q.messages.len(), 1);
    let exactly: Vec<Hash256> = (0..MAX_LOCATOR_PER_MSG)
        .map(|i| h((i % 200) as u8 + 2))
        .collect();
    assert_eq!(
        push(k, &mut q, &mut f, exactly, h(0)),
        Ok(RequestOutcome::Queued)
    );
}

#[test]
fn the_queue_limit_on_locators_applies() {
    let mut q = RecordingQueue::new(70016).with_limits(Limits {
        max_locator: 3,
        ..Limits::default()
    });
    let mut f = RequestFilter::new();
    assert_eq!(
        push_get_blocks(&mut q, &mut f, vec![h(1); 4], h(0)),
        Err(Error::LocatorTooLong { len: 4, max: 3 })
    );
}

#[derive(Debug, Clone)]
struct Req {
    kind: RequestKind,
    locator: Vec<Hash256>,
    stop: Hash256,
}

fn req() -> impl Strategy<Value = Req> {
    (any::<bool>(), prop::collection::vec(0u8..3, 0..4), 0u8..2).prop_map(|(blocks, loc, stop)| {
        Req {
            kind: if blocks {
                RequestKind::GetBlocks
            } else {
                RequestKind::GetHeaders
            },
            locator: loc.into_iter().map(h).collect(),
            stop: h(stop),
        }
    })
}

proptest! {
    /// Against a model: a request is skipped iff the last request of its kind that was sent
    /// had a non-empty locator with the same first hash and the same stop.
    #[test]
    fn duplicate_filter_matches_the_model(reqs in prop::collection::vec(req(), 0..60)) {
        let mut q = RecordingQueue::new(70016);
        let mut f = RequestFilter::new();
        let mut last_blocks: Option<(Hash256, Hash256)> = None;
        let mut last_headers: Option<(Hash256, Hash256)> = None;
        let mut sent = 0usize;
        for r in reqs {
            let slot = match r.kind {
                RequestKind::GetBlocks => &mut last_blocks,
                RequestKind::GetHeaders => &mut last_headers,
            };
            let dup = matches!((r.locator.first(), *slot), (Some(a), Some((b, s))) if *a == b && r.stop == s);
            let out = push(r.kind, &mut q, &mut f, r.locator.clone(), r.stop).unwrap();
            if dup {
                prop_assert_eq!(out, RequestOutcome::SkippedDuplicate);
            } else {
                prop_assert_eq!(out, RequestOutcome::Queued);
                *slot = r.locator.first().map(|a| (*a, r.stop));
                sent += 1;
                let (k, l) = payload(q.last().unwrap());
                prop_assert_eq!(k, r.kind);
                prop_assert_eq!(&l.locator, &r.locator);
                prop_assert_eq!(l.stop, r.stop);
            }
            prop_assert_eq!(q.messages.len(), sent);
        }
    }
}
