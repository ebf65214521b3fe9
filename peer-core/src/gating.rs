//! Protocol-version gating, in one place: a message exists from the protocol version
//! `wire_codec::Message::min_version` gives (btcd's per-message gates).
//!
//! * received: a message the negotiated version does not have is ignored (counted in
//!   `ignored_messages`), never handed to the application;
//! * sent: it is not encoded, and its notification answers `Failed`;
//! * the handshake's feature messages (`wtxidrelay`, `sendaddrv2`, `sendtxrcncl`) are
//!   sent and accepted only where the negotiated version has them (70016).
//!
//! Commands the codec does not know have no minimum: they pass (the application
//! decides).

use tracing::debug;
use wire_codec::{Command, Message};

use crate::peer::Peer;

impl Peer {
    /// Whether `cmd` exists at the negotiated version.
    #[inline]
    pub(crate) fn allows(&self, cmd: Command) -> bool {
        Message::min_version(cmd).map_or(true, |min| self.version >= min)
    }

    /// Gates a received message: false (and counted) when the negotiated version does
    /// not have it. Unknown commands pass and are counted as unknown.
    pub(crate) fn gate_incoming(&mut self, msg: &Message) -> bool {
        let cmd = msg.command();
        if let Message::Unknown { .. } = msg {
            debug!("unknown command {cmd}");
            self.stats.unknown_messages += 1;
            return true;
        }
        if self.version >= msg.min_version_of() {
            return true;
        }
        debug!(
            "ignoring {cmd}: not part of protocol version {}",
            self.version
        );
        self.stats.ignored_messages += 1;
        false
    }

    /// Gates a message we are about to send.
    pub(crate) fn gate_outgoing(&self, msg: &Message) -> bool {
        let ok = self.version >= msg.min_version_of();
        if !ok {
            let cmd = msg.command();
            debug!(
                "not sending {cmd}: not part of protocol version {}",
                self.version
            );
        }
        ok
    }
}
