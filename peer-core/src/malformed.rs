//! Malformed input: what a peer does with bytes that do not decode.
//!
//! As btcd: a frame that cannot be read ends the peer with a `reject` ("malformed",
//! where the protocol has rejects) and [`DisconnectReason::Decode`] carrying the codec's
//! error — except on regtest from a loopback address, where btcd's
//! `isAllowedReadError` tolerates malformed messages (regression tests send them)
//! when the stream stays framed (a checksum or payload error, not a broken header).

use std::net::IpAddr;
use std::time::Instant;

use tracing::debug;
use wire_codec::message::{Reject, RejectCode};
use wire_codec::{Command, Error as CodecError, Network};

use crate::event::Event;
use crate::peer::Peer;
use crate::reason::DisconnectReason;

impl Peer {
    pub(crate) fn on_decode_error(
        &mut self,
        e: CodecError,
        command: Option<Command>,
        bytes: usize,
        now: Instant,
    ) {
        if self.config.report_io {
            self.events.push_back(Event::Read {
                bytes,
                command,
                error: Some(e.clone()),
            });
        }
        // btcd `isAllowedReadError`: on regtest, malformed messages from a loopback
        // peer are tolerated so regression tests can send them. Only errors after which
        // the stream stays framed can be tolerated here.
        if e.is_frame_local() && self.tolerates_malformed() {
            debug!(error = %e, "tolerating malformed message from a regtest loopback peer");
            self.stats.ignored_messages += 1;
            self.keepalive.on_receive(now);
            return;
        }
        debug!(error = %e, "cannot read message");
        let reject = Reject {
            message: "malformed".into(),
            code: RejectCode::MALFORMED,
            reason: format!("Can't read message from {}: {}", self.remote, e),
            hash: None,
        };
        self.fail(DisconnectReason::Decode(e), Some(reject));
    }

    pub(crate) fn tolerates_malformed(&self) -> bool {
        matches!(self.config.network, Network::Regtest | Network::LbryRegtest)
            && match self.remote.ip() {
                IpAddr::V4(ip) => ip.is_loopback(),
                IpAddr::V6(ip) => ip.is_loopback(),
            }
    }
}
