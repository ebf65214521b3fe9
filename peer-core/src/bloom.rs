//! The BIP111 bloom-service rule: `filterload`, `filteradd` and `filterclear` are for
//! peers that advertise NODE_BLOOM.
//!
//! When we do not advertise NODE_BLOOM, a filter message is a protocol violation from
//! protocol version 70011 (BIP111) on — the peer disconnects with
//! [`DisconnectReason::BloomWithoutService`] — and is silently ignored before it, as
//! btcd does. With NODE_BLOOM the messages reach the application (BIP37).

use tracing::debug;
use wire_codec::message::{Message, ServiceFlags};
use wire_codec::version;

use crate::peer::Peer;
use crate::reason::DisconnectReason;

impl Peer {
    /// Applies the rule to a received message; returns whether it consumed it.
    pub(crate) fn bloom_rule(&mut self, msg: &Message) -> bool {
        if !matches!(
            msg,
            Message::FilterLoad(_) | Message::FilterAdd(_) | Message::FilterClear
        ) || self.config.services.has(ServiceFlags::BLOOM)
        {
            return false;
        }
        let command = msg.command();
        if self.version >= version::BIP0111 {
            self.fail(DisconnectReason::BloomWithoutService { command }, None);
        } else {
            debug!("ignoring {command}: NODE_BLOOM not offered");
            self.stats.ignored_messages += 1;
        }
        true
    }
}
