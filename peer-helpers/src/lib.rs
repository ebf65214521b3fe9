//! # peer-helpers
//!
//! The message helpers of btcd's `peer` package — `PushAddrMsg`, `PushAddrV2Msg`,
//! `PushGetBlocksMsg`, `PushGetHeadersMsg`, `PushRejectMsg` — and block locators, for any
//! peer that implements [`MessageQueue`]: the sans-IO `peer_core::Peer` (implemented
//! here) and the runtime's thread-safe `PeerHandle` (implemented in `peer-runtime`).
//!
//! The helpers hold the protocol rules around those messages (per-message maxima, random
//! sampling, which format a peer understands, which version knows `reject`, not repeating
//! a chain request) so that callers only say what they want sent. They do no I/O: each
//! builds a message and hands it to the queue.
//!
//! ```
//! use peer_helpers::{block_locator_from_slice, push_get_headers, RecordingQueue, RequestFilter};
//! use wire_codec::{Hash256, Message};
//!
//! let chain: Vec<Hash256> = (0..1_000u32).map(|h| Hash256::sha256d(&h.to_le_bytes())).collect();
//! let mut peer = RecordingQueue::new(70016); // stands in for a peer
//! let mut filter = RequestFilter::new(); // kept next to the peer
//! let locator = block_locator_from_slice(&chain);
//! push_get_headers(&mut peer, &mut filter, locator, Hash256::ZERO).unwrap();
//! assert!(matches!(peer.last(), Some(Message::GetHeaders(_))));
//! ```
//!
//! ## Contents
//! - [`queue`] — [`MessageQueue`], the trait the helpers work through, and
//!   [`RecordingQueue`], a queue that records (for tests and examples).
//! - [`addr`] — [`push_addresses`] (picks `addr` or `addrv2`), [`push_addr`],
//!   [`push_addr_v2`], [`AddressCandidate`].
//! - [`sample`] — [`sample_in_place`], the partial Fisher–Yates sample they use.
//! - [`request`] — [`push_get_blocks`], [`push_get_headers`] and [`RequestFilter`], the
//!   back-to-back duplicate filter.
//! - [`reject`] — [`push_reject`].
//! - [`locator`] — [`block_locator`], [`block_locator_from_slice`], [`locator_heights`].
//! - [`peer`] — [`MessageQueue`] for `peer_core::Peer`.
//! - [`error`] — [`Error`], one enum of facts.

#![forbid(unsafe_code)]

pub mod addr;
pub mod error;
pub mod locator;
pub mod peer;
pub mod queue;
pub mod reject;
pub mod request;
pub mod sample;

pub use addr::{
    push_addr, push_addr_v2, push_addresses, AddrFormat, AddressCandidate, SentAddresses,
    MAX_ADDRV2_ADDR_LEN, MAX_ADDR_PER_MSG,
};
pub use error::Error;
pub use locator::{
    block_locator, block_locator_from_slice, locator_heights, LocatorHeights, LOCATOR_DENSE_PREFIX,
    MAX_LOCATOR_LEN,
};
pub use queue::{MessageQueue, RecordingQueue};
pub use reject::{push_reject, RejectOutcome, MAX_REJECT_COMMAND_LEN};
pub use request::{
    push_get_blocks, push_get_headers, RequestFilter, RequestKind, RequestOutcome,
    MAX_LOCATOR_PER_MSG,
};
pub use sample::sample_in_place;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
