//! [`MessageQueue`] for the sans-IO [`peer_core::Peer`].

use peer_core::Peer;
use wire_codec::{Limits, Message};

use crate::queue::MessageQueue;

/// The helpers work on a `peer_core::Peer` directly, from the driver's loop or from
/// inside a [`peer_core::Listener`] callback (which gets `&mut Peer`).
///
/// The notification is the peer's own: a `u64` token of the caller's choosing, answered
/// exactly once by `Event::Sent(token)` or `Event::Failed(token)` from
/// [`Peer::poll_event`]. Before the handshake completes the peer holds queued messages
/// and reports our own version as the negotiated one (as btcd does), so a reject queued
/// then is sent once the handshake completes.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use bytes::BytesMut;
/// use peer_core::{Config, Event, NonceSet, Peer};
/// use peer_helpers::{push_reject, RejectOutcome};
/// use wire_codec::{message::RejectCode, Hash256, Message, Network};
///
/// // Two peers in one process: each gets its own nonce set, or they would look like a
/// // connection to ourselves.
/// let config = || {
///     let mut cfg = Config::new(Network::Regtest);
///     cfg.nonces = Some(Arc::new(NonceSet::new()));
///     Arc::new(cfg)
/// };
/// let now = Instant::now();
/// let mut a = Peer::new_outbound(config(), "127.0.0.1:18444".parse().unwrap(), now, 1_700_000_000, 1);
/// let mut b = Peer::new_inbound(config(), "127.0.0.1:50000".parse().unwrap(), now, 1_700_000_000, 2);
///
/// // Queue a tx reject on `a` and ask to be told when it is written (token 7).
/// let out = push_reject(&mut a, "tx", RejectCode::DUST, "dust", Some(Hash256([1; 32])), Some(7));
/// assert_eq!(out, Ok(RejectOutcome::Queued));
///
/// // Drive both peers in memory until `a` reports the reject written.
/// let (mut a_in, mut b_in) = (BytesMut::new(), BytesMut::new());
/// let (mut sent, mut got) = (false, None);
/// for _ in 0..8 {
///     b_in.extend_from_slice(a.transmit());
///     let n = a.transmit().len();
///     a.advance_transmit(n, now);
///     b.handle_read(&mut b_in, now);
///     a_in.extend_from_slice(b.transmit());
///     let n = b.transmit().len();
///     b.advance_transmit(n, now);
///     a.handle_read(&mut a_in, now);
///     while let Some(ev) = a.poll_event() {
///         match ev {
///             Event::Version(_) => a.accept_version(now),
///             Event::Sent(7) => sent = true,
///             _ => {}
///         }
///     }
///     while let Some(ev) = b.poll_event() {
///         match ev {
///             Event::Version(_) => b.accept_version(now),
///             Event::Message(Message::Reject(r)) => got = Some(r),
///             _ => {}
///         }
///     }
/// }
/// assert!(sent);
/// assert_eq!(got.map(|r| (r.message, r.hash)), Some(("tx".to_string(), Some(Hash256([1; 32])))));
/// ```
impl MessageQueue for Peer {
    type Notify = u64;

    fn queue_message(&mut self, msg: Message, notify: Option<u64>) {
        Peer::queue_message(self, msg, notify);
    }

    fn negotiated_version(&self) -> u32 {
        Peer::negotiated_version(self)
    }

    fn wants_addrv2(&self) -> bool {
        self.features().send_addr_v2
    }

    fn limits(&self) -> Limits {
        Limits::for_network(self.config().network)
    }
}
