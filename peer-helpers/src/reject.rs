//! `reject` (BIP61): telling a peer that one of its messages was refused (btcd
//! `PushRejectMsg`).

use wire_codec::message::{Reject, RejectCode};
use wire_codec::{version, Hash256, Message};

use crate::error::Error;
use crate::queue::MessageQueue;

/// The longest command a reject may name: the 12 bytes of a command field.
pub const MAX_REJECT_COMMAND_LEN: usize = 12;

/// What [`push_reject`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum RejectOutcome {
    /// The reject was queued; a notification handed in will be answered.
    Queued,
    /// Nothing was queued because the peer's protocol version predates `reject` (70002).
    /// A notification handed in was dropped unanswered: do not wait for it.
    SkippedOldVersion {
        /// The peer's negotiated version.
        version: u32,
    },
}

/// Tells the peer that its `command` message was refused, with `code` and a `reason`
/// (btcd `PushRejectMsg`).
///
/// `hash` names the rejected block or transaction and is sent only when `command` is
/// `block` or `tx` (the only rejects whose format has it); for other commands it is
/// ignored. Nothing is sent to a peer whose negotiated version is below 70002, which does
/// not know `reject`.
///
/// To wait until the reject has been written — btcd's `wait = true`, used before
/// disconnecting so the peer learns why — pass a `notify` and wait on it the way the
/// queue answers (an `Event::Sent`/`Event::Failed` token with `peer_core::Peer`, a
/// channel or future with a runtime handle). It is answered only when the outcome is
/// [`RejectOutcome::Queued`].
///
/// # Errors
///
/// Nothing is queued when the request itself is wrong:
/// [`Error::RejectCommandTooLong`] (over 12 bytes), [`Error::RejectReasonTooLong`] (over
/// the limit of 111 bytes receivers accept), [`Error::RejectHashMissing`] for a `block`
/// or `tx` reject without a hash (btcd sends a zero hash, which names nothing).
///
/// ```
/// use peer_helpers::{push_reject, RecordingQueue, RejectOutcome};
/// use wire_codec::message::RejectCode;
/// use wire_codec::{Hash256, Message};
///
/// let txid = Hash256([7; 32]);
/// let mut q = RecordingQueue::new(70016);
/// let out = push_reject(&mut q, "tx", RejectCode::INSUFFICIENT_FEE, "mempool min fee not met", Some(txid), Some(1));
/// assert_eq!(out, Ok(RejectOutcome::Queued));
/// match &q.messages[0] {
///     (Message::Reject(r), Some(1)) => assert_eq!(r.hash, Some(txid)),
///     other => panic!("unexpected {other:?}"),
/// }
///
/// // A peer at 70001 does not know reject.
/// let mut old = RecordingQueue::new(70001);
/// let out = push_reject(&mut old, "version", RejectCode::OBSOLETE, "too old", None, None);
/// assert_eq!(out, Ok(RejectOutcome::SkippedOldVersion { version: 70001 }));
/// assert!(old.messages.is_empty());
/// ```
pub fn push_reject<Q: MessageQueue + ?Sized>(
    queue: &mut Q,
    command: &str,
    code: RejectCode,
    reason: &str,
    hash: Option<Hash256>,
    notify: Option<Q::Notify>,
) -> Result<RejectOutcome, Error> {
    if command.len() > MAX_REJECT_COMMAND_LEN {
        return Err(Error::RejectCommandTooLong {
            len: command.len(),
            max: MAX_REJECT_COMMAND_LEN,
        });
    }
    let max_reason = queue.limits().max_reject_reason;
    if reason.len() > max_reason {
        return Err(Error::RejectReasonTooLong {
            len: reason.len(),
            max: max_reason,
        });
    }
    let hash = if Reject::command_has_hash(command) {
        match hash {
            Some(h) => Some(h),
            None => {
                return Err(Error::RejectHashMissing {
                    command: command.to_owned(),
                })
            }
        }
    } else {
        None
    };
    let version = queue.negotiated_version();
    if version < version::REJECT {
        return Ok(RejectOutcome::SkippedOldVersion { version });
    }
    let msg = Message::Reject(Box::new(Reject {
        message: command.to_owned(),
        code,
        reason: reason.to_owned(),
        hash,
    }));
    queue.queue_message(msg, notify);
    Ok(RejectOutcome::Queued)
}
