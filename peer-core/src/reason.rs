//! Why a peer was disconnected: one typed enum for every path that ends a connection.

use core::fmt;
use std::time::Duration;

use wire_codec::{Command, Error as CodecError};

/// Why a peer ended. Every disconnect carries exactly one of these, in the single
/// [`Event::Disconnected`](crate::Event::Disconnected) a peer emits.
///
/// ```
/// use peer_core::DisconnectReason;
/// let r = DisconnectReason::IdleTimeout;
/// assert!(r.is_timeout());
/// assert!(!r.is_misbehaviour());
/// assert_eq!(r.to_string(), "no message received within the idle timeout");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The v2 (BIP324) transport refused the remote's bytes (garbage too long, a failed
    /// tag, a packet over the limit, …).
    Transport(crate::Error),
    /// The application asked for it ([`Peer::disconnect`](crate::Peer::disconnect)).
    LocalRequest,
    /// The driver saw the remote close the connection.
    RemoteClosed,
    /// The driver hit an I/O error on the socket.
    Io(String),
    /// The handshake did not complete within the negotiate timeout (30 s).
    NegotiateTimeout,
    /// No message arrived within the idle timeout (5 min).
    IdleTimeout,
    /// An expected response did not arrive in time (btcd stall detection).
    Stalled {
        /// The response that was expected (`verack`, `inv`, `block`, `headers`, …).
        command: Command,
        /// How long past the request the deadline was, processing time included.
        waited: Duration,
    },
    /// The remote's version carried a nonce of one of our own version messages.
    SelfConnection {
        /// The nonce.
        nonce: u64,
    },
    /// The remote's protocol version is below our minimum.
    VersionTooOld {
        /// The remote's version.
        version: u32,
        /// Our minimum.
        minimum: u32,
    },
    /// A second `version` message.
    DuplicateVersion,
    /// A second `verack` message.
    DuplicateVerack,
    /// A message the handshake does not allow at this point (anything but `version`
    /// first; anything but `verack`, `sendaddrv2`, `wtxidrelay` or unknown commands
    /// between version and verack).
    UnexpectedMessage {
        /// The message's command.
        command: Command,
    },
    /// A handshake-only feature message (`sendaddrv2`, `wtxidrelay`) after the
    /// handshake (BIP155, BIP339).
    FeatureAfterHandshake {
        /// The message's command.
        command: Command,
    },
    /// A bloom filter message while we do not advertise NODE_BLOOM and the negotiated
    /// version is at least 70011 (BIP111).
    BloomWithoutService {
        /// `filterload`, `filteradd` or `filterclear`.
        command: Command,
    },
    /// The remote sent bytes that do not decode.
    Decode(CodecError),
    /// The application's version callback answered with a reject.
    RejectedByApplication {
        /// The reject's reason text.
        reason: String,
    },
    /// The remote rejected us during the handshake (typically our version).
    RejectedByRemote {
        /// The rejected command.
        message: String,
        /// The reject's reason text.
        reason: String,
    },
    /// The newest-block provider failed, so our version message cannot be built.
    NewestBlockUnavailable {
        /// The provider's error.
        reason: String,
    },
    /// The address translation provider failed for an outbound peer.
    AddressTranslation {
        /// The provider's error.
        reason: String,
    },
    /// The output buffer would exceed its bound: the remote does not read fast enough.
    OutputQueueFull {
        /// Bytes the buffer would have held.
        bytes: usize,
        /// The configured bound.
        limit: usize,
    },
    /// Bytes were waiting to be written and not one could be for this long: the
    /// remote stopped reading (Core's send timeout).
    SendStalled {
        /// How long the output made no progress.
        waited: Duration,
    },
    /// Our inbound slots were full and a peer from a less represented network group
    /// arrived: this one was chosen for eviction (Core `AttemptToEvictConnection`).
    Evicted,
    /// The remote sent more than the peer holds while the application decides on its
    /// version (a remote that floods before it is accepted).
    TooMuchInput {
        /// Bytes waiting.
        bytes: usize,
        /// The bound.
        limit: usize,
    },
    /// Application code run for this peer panicked (a listener callback, the listener
    /// factory, a closure run on the peer). A driver catches the panic, ends this peer
    /// and keeps its other peers running; the remote did nothing wrong.
    ApplicationPanicked {
        /// Which code: `listener`, `listener factory`, `with_peer closure`, …
        what: String,
        /// The panic's message.
        message: String,
    },
}

impl DisconnectReason {
    /// The reason a driver gives when its socket fails: the remote's close or reset is
    /// [`RemoteClosed`](Self::RemoteClosed), anything else [`Io`](Self::Io) with the
    /// error's text. One mapping for every driver (glommio, tokio, yours).
    ///
    /// ```
    /// use peer_core::DisconnectReason;
    /// use std::io::{Error, ErrorKind};
    /// let reset = Error::from(ErrorKind::ConnectionReset);
    /// assert_eq!(DisconnectReason::from_io_error(&reset), DisconnectReason::RemoteClosed);
    /// let other = Error::new(ErrorKind::Other, "no route");
    /// assert_eq!(DisconnectReason::from_io_error(&other), DisconnectReason::Io("no route".into()));
    /// ```
    pub fn from_io_error(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof => DisconnectReason::RemoteClosed,
            _ => DisconnectReason::Io(e.to_string()),
        }
    }

    /// The reason a driver gives when application code (`what`: the listener, a
    /// factory, a closure) panicked, with the panic's message when it is a string.
    ///
    /// ```
    /// use peer_core::DisconnectReason;
    /// let panic = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
    /// let r = DisconnectReason::application_panicked("listener", &*panic);
    /// assert_eq!(r.to_string(), "listener panicked: boom 1");
    /// ```
    pub fn application_panicked(what: &str, panic: &(dyn std::any::Any + Send)) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        DisconnectReason::ApplicationPanicked {
            what: what.into(),
            message,
        }
    }

    /// Whether a timer ended the peer (negotiate, idle, stall).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            DisconnectReason::NegotiateTimeout
                | DisconnectReason::IdleTimeout
                | DisconnectReason::Stalled { .. }
                | DisconnectReason::SendStalled { .. }
        )
    }

    /// Whether the remote broke a protocol rule (a node would count it against the
    /// remote's reputation).
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            DisconnectReason::DuplicateVersion
                | DisconnectReason::DuplicateVerack
                | DisconnectReason::UnexpectedMessage { .. }
                | DisconnectReason::FeatureAfterHandshake { .. }
                | DisconnectReason::BloomWithoutService { .. }
                | DisconnectReason::Decode(_)
                | DisconnectReason::Transport(_)
                | DisconnectReason::TooMuchInput { .. }
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Transport(e) => write!(f, "transport: {e}"),
            DisconnectReason::LocalRequest => f.write_str("disconnect requested locally"),
            DisconnectReason::RemoteClosed => f.write_str("connection closed by the remote"),
            DisconnectReason::Io(e) => write!(f, "i/o error: {e}"),
            DisconnectReason::NegotiateTimeout => f.write_str("protocol negotiation timeout"),
            DisconnectReason::IdleTimeout => {
                f.write_str("no message received within the idle timeout")
            }
            DisconnectReason::Stalled { command, waited } => write!(
                f,
                "stalled: no {command} within {:.1}s",
                waited.as_secs_f64()
            ),
            DisconnectReason::SelfConnection { nonce } => {
                write!(f, "connected to self (nonce {nonce:#x})")
            }
            DisconnectReason::VersionTooOld { version, minimum } => write!(
                f,
                "protocol version {version} is below the minimum {minimum}"
            ),
            DisconnectReason::DuplicateVersion => f.write_str("duplicate version message"),
            DisconnectReason::DuplicateVerack => f.write_str("duplicate verack message"),
            DisconnectReason::UnexpectedMessage { command } => {
                write!(f, "unexpected {command} during the handshake")
            }
            DisconnectReason::FeatureAfterHandshake { command } => {
                write!(f, "{command} after the handshake")
            }
            DisconnectReason::BloomWithoutService { command } => write!(
                f,
                "{command} received but NODE_BLOOM is not offered (BIP111)"
            ),
            DisconnectReason::Decode(e) => write!(f, "undecodable input: {e}"),
            DisconnectReason::RejectedByApplication { reason } => {
                write!(f, "version rejected: {reason}")
            }
            DisconnectReason::RejectedByRemote { message, reason } => {
                write!(f, "remote rejected our {message}: {reason}")
            }
            DisconnectReason::NewestBlockUnavailable { reason } => {
                write!(f, "newest block unavailable: {reason}")
            }
            DisconnectReason::AddressTranslation { reason } => {
                write!(f, "remote address translation failed: {reason}")
            }
            DisconnectReason::OutputQueueFull { bytes, limit } => write!(
                f,
                "output queue full: {bytes} bytes would exceed the bound of {limit}"
            ),
            DisconnectReason::SendStalled { waited } => write!(
                f,
                "send stalled: nothing could be written for {:.1}s (the remote does not read)",
                waited.as_secs_f64()
            ),
            DisconnectReason::Evicted => {
                f.write_str("evicted to make room for a peer from another network group")
            }
            DisconnectReason::TooMuchInput { bytes, limit } => write!(
                f,
                "{bytes} bytes sent before the version was accepted (bound {limit})"
            ),
            DisconnectReason::ApplicationPanicked { what, message } => {
                write!(f, "{what} panicked: {message}")
            }
        }
    }
}
