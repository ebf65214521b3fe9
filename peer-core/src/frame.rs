//! Encode once, send to many: [`SharedFrame`].
//!
//! A block relayed to a hundred peers is the same bytes a hundred times. A
//! `SharedFrame` holds the whole v1 frame — 24-byte header with its checksum, and the
//! payload — in one reference-counted [`Bytes`], encoded once; every peer it is queued
//! to ([`Peer::queue_frame`](crate::Peer::queue_frame)) keeps a reference to that
//! allocation in its output queue, and the driver writes the segment straight from it.
//! Cloning a frame is one atomic increment.
//!
//! What each peer still decides for itself, as for
//! [`Peer::queue_message`](crate::Peer::queue_message):
//!
//! * version gating: a command the peer's negotiated version does not have answers
//!   `Failed`;
//! * witness: a peer without NODE_WITNESS gets the frame without witness data. That
//!   encoding is made once per frame, on the first such peer, and shared by all of them
//!   (when the message carries no witness data the two encodings are the same bytes);
//! * the few encodings that depend on the protocol version (`addr` timestamps, the
//!   `ping`/`pong` nonce below BIP31) are encoded per peer when the peer's negotiated
//!   version differs from the frame's: they are small;
//! * BIP324 v2: each session encrypts with its own keys, so the frame is encrypted into
//!   that peer's output — a ciphertext per peer that no design can avoid. Today the
//!   frame is also staged once per peer before encryption (the `bip324` crate's
//!   `encrypt` takes the packet's contents — message type, then payload — as one slice,
//!   and the frame has a 24-byte header there), as `queue_message` over v2 does; a
//!   cipher that takes the two parts apart would save that copy.
//!
//! Frames smaller than [`LARGE_FRAME`] are copied into the peer's contiguous output
//! buffer rather than kept by reference: copying a few kilobytes costs less than an
//! extra segment (one more `iovec`, or one more `send` where the socket has no
//! vectored write), and small messages batch into one write as before.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use wire_codec::{encode_frame, Command, Context, Error as CodecError, Message, Network};

use crate::outbound::Encoding;

/// Frames at least this long go out by reference (a segment of their own in each
/// peer's output queue); shorter ones are copied into the contiguous buffer.
///
/// 16 KiB: below it a `memcpy` (a few microseconds at most) is cheaper than what a
/// segment costs — an entry in the segment list, one more `iovec` in the vectored
/// write (or a separate `send` on a stream without one) — and small frames keep
/// batching with their neighbours into one contiguous write. Above it the copy
/// dominates: a 4 MB block copied for 100 peers is 400 MB of `memcpy` and of memory.
pub const LARGE_FRAME: usize = 16 * 1024;

/// Slices a driver hands [`Peer::transmit_vectored`](crate::Peer::transmit_vectored) for
/// one vectored write: far below Linux's `IOV_MAX` (1,024), and more than a peer's output
/// usually holds (each large shared frame and the run of small messages between them);
/// what does not fit goes out in the next write.
pub const TRANSMIT_SLICES: usize = 64;

/// Messages whose encoding depends on the protocol version (besides witness).
fn version_sensitive(cmd: Command) -> bool {
    matches!(cmd.as_str(), "addr" | "ping" | "pong")
}

/// One message encoded once as a v1 frame, to be queued to many peers without a
/// per-peer copy (see the [module documentation](self)).
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use peer_core::{Config, Peer, SharedFrame};
/// use wire_codec::{message::Ping, Message, Network};
///
/// let frame = SharedFrame::new(Message::Ping(Ping { nonce: 7 }), Network::Regtest).unwrap();
/// assert_eq!(frame.len(), 24 + 8);
/// assert_eq!(frame.command().as_str(), "ping");
/// // Queue the same frame to any number of peers (here one, still in its handshake:
/// // it is held and sent once the handshake completes).
/// let mut peer = Peer::new_inbound(Arc::new(Config::new(Network::Regtest)),
///     "127.0.0.1:50000".parse().unwrap(), Instant::now(), 1_700_000_000, 1);
/// peer.queue_frame(frame.clone(), Some(1));
/// assert_eq!(peer.queued_messages(), 1);
/// ```
#[derive(Clone)]
pub struct SharedFrame(Arc<Inner>);

struct Inner {
    network: Network,
    version: u32,
    encoding: Encoding,
    command: Command,
    message: Message,
    /// The frame as encoded at construction.
    bytes: Bytes,
    /// The frame without witness data, made on the first peer that needs it (`None`
    /// if it could not be encoded).
    base: OnceLock<Option<Bytes>>,
}

impl fmt::Debug for SharedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFrame")
            .field("command", &self.0.command)
            .field("len", &self.0.bytes.len())
            .field("network", &self.0.network)
            .field("version", &self.0.version)
            .field("encoding", &self.0.encoding)
            .finish()
    }
}

/// What a peer sends for a frame.
pub(crate) enum Wire {
    /// These shared bytes (the whole v1 frame).
    Shared(Bytes),
    /// The peer encodes the message itself, with this encoding (a version-sensitive
    /// message at another version).
    Own(Encoding),
}

impl SharedFrame {
    /// Encodes `msg` for `network` with witness data (what peers that negotiated
    /// witness support get; others get it without), at the network's protocol version.
    /// Fails if the message breaks a protocol limit.
    ///
    /// ```
    /// use peer_core::SharedFrame;
    /// use wire_codec::{Message, Network};
    /// let frame = SharedFrame::new(Message::Verack, Network::Mainnet).unwrap();
    /// assert_eq!(&frame.bytes()[..4], &Network::Mainnet.magic());
    /// ```
    pub fn new(msg: Message, network: Network) -> Result<SharedFrame, CodecError> {
        SharedFrame::with_encoding(msg, network, Encoding::Witness)
    }

    /// [`SharedFrame::new`] with a choice of encoding (btcd's
    /// `QueueMessageWithEncoding`): [`Encoding::Base`] never sends witness data.
    ///
    /// ```
    /// use peer_core::{Encoding, SharedFrame};
    /// use wire_codec::{message::Transaction, Message, Network};
    /// let tx = Transaction::build(1, &[], &[], 0);
    /// let frame = SharedFrame::with_encoding(Message::Tx(tx), Network::Regtest, Encoding::Base)
    ///     .unwrap();
    /// assert_eq!(frame.encoding(), Encoding::Base);
    /// ```
    pub fn with_encoding(
        msg: Message,
        network: Network,
        encoding: Encoding,
    ) -> Result<SharedFrame, CodecError> {
        let version = network.max_protocol_version();
        let ctx = Context::new(network, version).with_witness(encoding == Encoding::Witness);
        // The encoder reserves the frame's size itself.
        let mut out = BytesMut::new();
        encode_frame(network.magic(), &msg, &ctx, &mut out)?;
        Ok(SharedFrame(Arc::new(Inner {
            network,
            version,
            encoding,
            command: msg.command(),
            message: msg,
            bytes: out.freeze(),
            base: OnceLock::new(),
        })))
    }

    /// The whole frame as encoded at construction: header (magic, command, length,
    /// checksum) and payload.
    pub fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// Length of the frame on the v1 wire (header included).
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Always false: a frame has at least its 24-byte header.
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// The message's command.
    pub fn command(&self) -> Command {
        self.0.command
    }

    /// The message the frame was encoded from.
    pub fn message(&self) -> &Message {
        &self.0.message
    }

    /// The network whose magic the frame carries.
    pub fn network(&self) -> Network {
        self.0.network
    }

    /// The protocol version the frame was encoded at.
    pub fn version(&self) -> u32 {
        self.0.version
    }

    /// The encoding asked for at construction.
    pub fn encoding(&self) -> Encoding {
        self.0.encoding
    }

    /// Whether `a` and `b` are clones of one frame (same encoded allocation).
    pub fn ptr_eq(a: &SharedFrame, b: &SharedFrame) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The bytes a peer at `version` with (`witness`) or without witness support
    /// sends for this frame, or `None` if the frame belongs to another network.
    pub(crate) fn wire_for(&self, network: Network, version: u32, witness: bool) -> Option<Wire> {
        if network != self.0.network {
            return None;
        }
        let encoding = if witness {
            self.0.encoding
        } else {
            Encoding::Base
        };
        if version != self.0.version && version_sensitive(self.0.command) {
            return Some(Wire::Own(encoding));
        }
        if encoding == self.0.encoding {
            return Some(Wire::Shared(self.0.bytes.clone()));
        }
        let base = self.0.base.get_or_init(|| {
            let ctx = Context::new(self.0.network, self.0.version).with_witness(false);
            // The encoder reserves what it needs (a capacity given here would be
            // grown by doubling).
            let mut out = BytesMut::new();
            encode_frame(self.0.network.magic(), &self.0.message, &ctx, &mut out).ok()?;
            // No witness data in the message: the same bytes, shared.
            Some(if out[..] == self.0.bytes[..] {
                self.0.bytes.clone()
            } else {
                out.freeze()
            })
        });
        Some(match base {
            Some(b) => Wire::Shared(b.clone()),
            None => Wire::Own(Encoding::Base),
        })
    }

    /// The frame without witness data, if it was made (for tests of sharing).
    #[doc(hidden)]
    pub fn base_bytes(&self) -> Option<&Bytes> {
        self.0.base.get().and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::message::Ping;

    #[test]
    fn a_frame_is_the_queue_message_encoding() {
        let msg = Message::Ping(Ping { nonce: 9 });
        let frame = SharedFrame::new(msg.clone(), Network::Regtest).unwrap();
        let mut want = BytesMut::new();
        let ctx = Context::new(Network::Regtest, Network::Regtest.max_protocol_version());
        encode_frame(Network::Regtest.magic(), &msg, &ctx, &mut want).unwrap();
        assert_eq!(&frame.bytes()[..], &want[..]);
        let clone = frame.clone();
        assert!(SharedFrame::ptr_eq(&frame, &clone));
        assert_eq!(clone.bytes().as_ptr(), frame.bytes().as_ptr());
    }

    #[test]
    fn wire_for_shares_or_declines() {
        let frame = SharedFrame::new(Message::Verack, Network::Regtest).unwrap();
        let v = frame.version();
        assert!(frame.wire_for(Network::Mainnet, v, true).is_none());
        match frame.wire_for(Network::Regtest, v, true) {
            Some(Wire::Shared(b)) => assert_eq!(b.as_ptr(), frame.bytes().as_ptr()),
            _ => panic!("shared"),
        }
        // No witness data: the base form is the same allocation.
        match frame.wire_for(Network::Regtest, v, false) {
            Some(Wire::Shared(b)) => assert_eq!(b.as_ptr(), frame.bytes().as_ptr()),
            _ => panic!("shared"),
        }
        let ping = SharedFrame::new(Message::Ping(Ping { nonce: 1 }), Network::Regtest).unwrap();
        assert!(matches!(
            ping.wire_for(Network::Regtest, 60000, true),
            Some(Wire::Own(Encoding::Witness))
        ));
    }
}
