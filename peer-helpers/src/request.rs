//! `getblocks` and `getheaders` with back-to-back duplicate filtering (btcd
//! `PushGetBlocksMsg`, `PushGetHeadersMsg`).

use wire_codec::message::BlockLocator;
use wire_codec::{Hash256, Message};

use crate::error::Error;
use crate::queue::MessageQueue;

/// The most hashes a `getblocks`/`getheaders` locator may carry on the wire (btcd's
/// `MaxBlockLocatorsPerMsg`). Bitcoin Core is stricter and disconnects a peer that sends
/// more than 101 (`MAX_LOCATOR_SZ`); locators from [`block_locator`](crate::block_locator)
/// never have more than 41 entries, so they satisfy both.
pub const MAX_LOCATOR_PER_MSG: usize = 500;

/// Which of the two chain requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `getblocks`: asks for an `inv` of up to 500 blocks.
    GetBlocks,
    /// `getheaders`: asks for up to 2,000 headers.
    GetHeaders,
}

/// What a chain request helper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum RequestOutcome {
    /// The request was queued.
    Queued,
    /// Nothing was queued: the previous request of the same kind to this peer had the same
    /// first locator hash and stop hash, so the peer is already answering it.
    SkippedDuplicate,
}

/// The last `getblocks` and the last `getheaders` sent to one peer: the state of the
/// back-to-back duplicate filter.
///
/// Keep one per peer, next to it, and pass it to [`push_get_blocks`] and
/// [`push_get_headers`]. It is a separate value rather than part of [`MessageQueue`]
/// because it is the helpers' state, not the peer's: the sans-IO peer knows nothing of it,
/// and a runtime `PeerHandle` is a cheap clone shared between threads, so a filter inside
/// it would have to be shared and locked by every clone. A caller that needs several
/// threads to request from one peer puts its filter behind its own lock.
///
/// Like btcd, only *back-to-back* repeats are filtered: a request is skipped when its
/// first locator hash and stop hash equal those of the previous request of the same kind.
/// A request with an empty locator is never skipped and clears the memory of that kind.
///
/// ```
/// use peer_helpers::{RequestFilter, RequestKind};
/// use wire_codec::Hash256;
///
/// let mut f = RequestFilter::new();
/// let tip = Hash256([1; 32]);
/// assert!(!f.is_duplicate(RequestKind::GetHeaders, &[tip], Hash256::ZERO));
/// f.record(RequestKind::GetHeaders, &[tip], Hash256::ZERO);
/// assert!(f.is_duplicate(RequestKind::GetHeaders, &[tip], Hash256::ZERO));
/// assert!(!f.is_duplicate(RequestKind::GetBlocks, &[tip], Hash256::ZERO)); // per kind
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RequestFilter {
    get_blocks: Option<(Hash256, Hash256)>,
    get_headers: Option<(Hash256, Hash256)>,
}

impl RequestFilter {
    /// A filter that has seen no request (a new peer).
    pub const fn new() -> RequestFilter {
        RequestFilter {
            get_blocks: None,
            get_headers: None,
        }
    }

    fn slot(&self, kind: RequestKind) -> &Option<(Hash256, Hash256)> {
        match kind {
            RequestKind::GetBlocks => &self.get_blocks,
            RequestKind::GetHeaders => &self.get_headers,
        }
    }

    fn slot_mut(&mut self, kind: RequestKind) -> &mut Option<(Hash256, Hash256)> {
        match kind {
            RequestKind::GetBlocks => &mut self.get_blocks,
            RequestKind::GetHeaders => &mut self.get_headers,
        }
    }

    /// The first locator hash and stop hash of the last request of `kind` that was sent
    /// with a non-empty locator (and not forgotten since).
    pub fn last(&self, kind: RequestKind) -> Option<(Hash256, Hash256)> {
        *self.slot(kind)
    }

    /// Whether a request of `kind` would repeat the previous one: same first locator hash
    /// and same stop hash. An empty locator is never a repeat.
    pub fn is_duplicate(&self, kind: RequestKind, locator: &[Hash256], stop: Hash256) -> bool {
        match (locator.first(), self.slot(kind)) {
            (Some(first), Some((prev_first, prev_stop))) => {
                first == prev_first && stop == *prev_stop
            }
            _ => false,
        }
    }

    /// Remembers that a request of `kind` was sent (an empty locator clears the memory of
    /// that kind, as in btcd).
    pub fn record(&mut self, kind: RequestKind, locator: &[Hash256], stop: Hash256) {
        *self.slot_mut(kind) = locator.first().map(|first| (*first, stop));
    }

    /// Forgets the last request of `kind`, so that the next one is sent even if it repeats
    /// it (for a caller that re-asks after the peer ignored a request).
    pub fn forget(&mut self, kind: RequestKind) {
        *self.slot_mut(kind) = None;
    }
}

fn push_request<Q: MessageQueue + ?Sized>(
    kind: RequestKind,
    queue: &mut Q,
    filter: &mut RequestFilter,
    locator: Vec<Hash256>,
    stop: Hash256,
) -> Result<RequestOutcome, Error> {
    let max = queue.limits().max_locator.min(MAX_LOCATOR_PER_MSG);
    if locator.len() > max {
        return Err(Error::LocatorTooLong {
            len: locator.len(),
            max,
        });
    }
    if filter.is_duplicate(kind, &locator, stop) {
        return Ok(RequestOutcome::SkippedDuplicate);
    }
    filter.record(kind, &locator, stop);
    let payload = BlockLocator {
        version: queue.negotiated_version(),
        locator,
        stop,
    };
    let msg = match kind {
        RequestKind::GetBlocks => Message::GetBlocks(payload),
        RequestKind::GetHeaders => Message::GetHeaders(payload),
    };
    queue.queue_message(msg, None);
    Ok(RequestOutcome::Queued)
}

/// Asks the peer for the blocks after the first `locator` hash it knows, up to `stop`
/// (zero: as many as it sends at once) — btcd `PushGetBlocksMsg`.
///
/// Skipped, and [`RequestOutcome::SkippedDuplicate`] returned, when the previous
/// `getblocks` to this peer (as `filter` remembers it) had the same first locator hash and
/// stop hash. The message's version field is the negotiated version (btcd writes its own
/// protocol constant; receivers ignore the field).
///
/// # Errors
///
/// [`Error::LocatorTooLong`] for more than 500 hashes (or the queue's `max_locator`);
/// nothing is queued and `filter` is unchanged.
///
/// ```
/// use peer_helpers::{block_locator_from_slice, push_get_blocks, RecordingQueue, RequestFilter, RequestOutcome};
/// use wire_codec::{Hash256, Message};
///
/// let chain: Vec<Hash256> = (0u8..=50).map(|i| Hash256([i; 32])).collect();
/// let mut q = RecordingQueue::new(70016);
/// let mut filter = RequestFilter::new();
/// let locator = block_locator_from_slice(&chain);
/// assert_eq!(push_get_blocks(&mut q, &mut filter, locator.clone(), Hash256::ZERO), Ok(RequestOutcome::Queued));
/// assert_eq!(push_get_blocks(&mut q, &mut filter, locator, Hash256::ZERO), Ok(RequestOutcome::SkippedDuplicate));
/// assert_eq!(q.messages.len(), 1);
/// assert!(matches!(q.last(), Some(Message::GetBlocks(l)) if l.locator[0] == chain[50]));
/// ```
pub fn push_get_blocks<Q: MessageQueue + ?Sized>(
    queue: &mut Q,
    filter: &mut RequestFilter,
    locator: Vec<Hash256>,
    stop: Hash256,
) -> Result<RequestOutcome, Error> {
    push_request(RequestKind::GetBlocks, queue, filter, locator, stop)
}

/// Asks the peer for the headers after the first `locator` hash it knows, up to `stop`
/// (zero: as many as it sends at once) — btcd `PushGetHeadersMsg`.
///
/// Skipped, and [`RequestOutcome::SkippedDuplicate`] returned, when the previous
/// `getheaders` to this peer had the same first locator hash and stop hash; `getblocks`
/// requests are remembered separately. The version field is the negotiated version (btcd
/// sends 0 here).
///
/// # Errors
///
/// [`Error::LocatorTooLong`] for more than 500 hashes (or the queue's `max_locator`);
/// nothing is queued and `filter` is unchanged.
///
/// ```
/// use peer_helpers::{block_locator, push_get_headers, RecordingQueue, RequestFilter, RequestOutcome};
/// use wire_codec::{Hash256, Message};
///
/// // A chain where block h has hash [h; 32] (for h < 256).
/// let locator = block_locator(200, |h| Some(Hash256([h as u8; 32]))).unwrap();
/// let mut q = RecordingQueue::new(70016);
/// let mut filter = RequestFilter::new();
/// let stop = Hash256([255; 32]);
/// assert_eq!(push_get_headers(&mut q, &mut filter, locator, stop), Ok(RequestOutcome::Queued));
/// match q.last() {
///     Some(Message::GetHeaders(l)) => {
///         assert_eq!((l.version, l.stop), (70016, stop));
///         assert_eq!(l.locator.last(), Some(&Hash256([0; 32]))); // genesis last
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
pub fn push_get_headers<Q: MessageQueue + ?Sized>(
    queue: &mut Q,
    filter: &mut RequestFilter,
    locator: Vec<Hash256>,
    stop: Hash256,
) -> Result<RequestOutcome, Error> {
    push_request(RequestKind::GetHeaders, queue, filter, locator, stop)
}
