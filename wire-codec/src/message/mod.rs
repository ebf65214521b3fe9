//! Every message of the protocol, typed, with its payload encoding.
//!
//! Decoding takes the payload as `Bytes` and keeps scripts, witnesses, filters and raw
//! transactions as slices of it (no copy). Encoding writes straight into the caller's
//! buffer. Neither looks at the protocol version except where the wire format depends
//! on it (addr timestamps, the ping nonce, the version relay flag): which messages a
//! negotiated version *allows* is the peer's business (`peer-core`), and
//! [`Message::min_version`] tells it.

mod addr;
mod block;
mod block_header;
mod bloom;
mod cfilter;
mod common;
mod compact;
mod control;
mod inventory;
mod locator;
mod transaction;
mod version_msg;

pub use addr::{Addr, AddrV2, AddrV2Entry, NetworkId};
pub use block::{Block, MerkleBlock};
pub use block_header::{BlockHeader, Headers};
pub use bloom::{FilterAdd, FilterLoad};
pub use cfilter::{CFCheckpt, CFHeaders, CFilter, GetCFCheckpt, GetCFHeaders, GetCFilters};
pub use common::{InvType, InvVect, NetAddress, RejectCode, ServiceFlags};
pub use compact::{BlockTxn, CmpctBlock, GetBlockTxn, PrefilledTx};
pub use control::{Alert, FeeFilter, Ping, Pong, Reject, SendCmpct, SendTxRcncl};
pub use inventory::Inventory;
pub use locator::BlockLocator;
pub use transaction::{OutPoint, Transaction, TxIn, TxOut};
pub use version_msg::Version;

use bytes::{Bytes, BytesMut};

use crate::command::Command;
use crate::error::Result;
use crate::limits::Limits;
use crate::network::{HeaderKind, Network};
use crate::reader::Reader;
use crate::version;

/// What decoding and encoding depend on: the protocol version in use, the block header
/// layout of the network and the size limits.
///
/// ```
/// use wire_codec::{Context, HeaderKind, Network};
/// let ctx = Context::new(Network::LbryMainnet, 70013);
/// assert_eq!(ctx.header_kind, HeaderKind::Lbry);
/// assert_eq!(ctx.limits.max_payload, 8_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The protocol version in use (negotiated, or ours before negotiation).
    pub version: u32,
    /// The block header layout.
    pub header_kind: HeaderKind,
    /// Size limits.
    pub limits: Limits,
    /// Whether transactions (alone and in blocks) are written with their witness
    /// (BIP144). A peer that did not negotiate witness support is sent the
    /// serialization without it (btcd's `BaseEncoding`). Decoding accepts both.
    pub witness: bool,
}

impl Context {
    /// The context of `network` at protocol `version`, with default limits.
    pub const fn new(network: Network, version: u32) -> Context {
        Context {
            version,
            header_kind: network.header_kind(),
            limits: Limits::for_network(network),
            witness: true,
        }
    }

    /// The same context, writing transactions with or without their witness.
    ///
    /// ```
    /// use wire_codec::{Context, Network};
    /// let ctx = Context::new(Network::Mainnet, 70016).with_witness(false);
    /// assert!(!ctx.witness);
    /// ```
    pub const fn with_witness(mut self, witness: bool) -> Context {
        self.witness = witness;
        self
    }

    /// The same context at another protocol version.
    pub const fn with_version(mut self, version: u32) -> Context {
        self.version = version;
        self
    }
}

/// A payload type: how it is read from and written to the wire.
pub trait Payload: Sized {
    /// Reads the payload from `r`. Trailing bytes are checked by the caller.
    fn decode(r: &mut Reader<'_>, ctx: &Context) -> Result<Self>;
    /// Appends the payload to `out`.
    fn encode(&self, out: &mut BytesMut, ctx: &Context) -> Result<()>;
    /// A guess of the encoded size, for reserving (never trusted for correctness).
    fn size_hint(&self) -> usize {
        0
    }
}

/// The message table: one row per message — its variant, payload type (how it is
/// decoded and encoded), command, the protocol version it exists from, and the
/// `peer_core::Listener` method that receives it. Everything per message below is
/// generated from these rows (see [`MESSAGES`] for the table at run time).
macro_rules! message_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $([$kind:ident $ty:ty])? = $cmd:ident $name:literal,
            since $min:expr, listener $listener:literal;
    )*) => {
        /// The protocol's command names.
        pub mod command {
            use crate::command::Command;
            $(#[doc = concat!("`", $name, "`")] pub const $cmd: Command = Command::from_static($name);)*

            /// Every command this codec decodes into a typed message, in table order
            /// (anything else becomes [`Message::Unknown`](super::Message::Unknown)).
            ///
            /// ```
            /// use wire_codec::message::command;
            /// assert_eq!(command::ALL.len(), 37);
            /// assert!(command::ALL.contains(&command::WTXIDRELAY));
            /// ```
            pub const ALL: &[Command] = &[$($cmd),*];
        }

        /// One row of the message table, at run time.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct MessageInfo {
            /// The command.
            pub command: Command,
            /// The lowest protocol version at which the message exists.
            pub min_version: u32,
            /// The `peer_core::Listener` method that receives it.
            pub listener: &'static str,
        }

        /// The message table (see the source of this module: one row per message).
        ///
        /// ```
        /// use wire_codec::message::{command, MESSAGES};
        /// let row = MESSAGES.iter().find(|m| m.command == command::SENDCMPCT).unwrap();
        /// assert_eq!((row.min_version, row.listener), (70014, "on_send_cmpct"));
        /// ```
        pub const MESSAGES: &[MessageInfo] = &[$(MessageInfo {
            command: command::$cmd,
            min_version: $min,
            listener: $listener,
        }),*];

        /// One protocol message.
        ///
        /// ```
        /// use bytes::BytesMut;
        /// use wire_codec::{message::Ping, Context, Message, Network};
        /// let ctx = Context::new(Network::Regtest, 70016);
        /// let msg = Message::Ping(Ping { nonce: 42 });
        /// let mut payload = BytesMut::new();
        /// msg.encode_payload(&mut payload, &ctx).unwrap();
        /// let back = Message::decode(msg.command(), payload.freeze(), &ctx).unwrap();
        /// assert_eq!(back, msg);
        /// ```
        /// The six payloads larger than 72 bytes (`version`, `block`, `reject`,
        /// `merkleblock`, `cfheaders`, `cmpctblock`) are boxed. Every message received is
        /// moved through a peer's event queue and into a listener; at 184 bytes a
        /// `Message` was copied with a `memcpy` call at each step (a fifth of a busy
        /// server's CPU in an inv flood), at 80 the copies are a few register moves, and
        /// the rare large messages pay one allocation instead.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $($(#[doc = $doc])* $variant $((payload_type!($kind $ty)))?,)*
            /// Any command this codec does not know, with its payload untouched.
            Unknown {
                /// The command.
                command: Command,
                /// The payload as received.
                payload: Bytes,
            },
        }

        impl Message {
            /// The command name of this message.
            pub fn command(&self) -> Command {
                match self {
                    $(Message::$variant $((ignore!($kind _)))? => command::$cmd,)*
                    Message::Unknown { command, .. } => *command,
                }
            }

            /// The lowest protocol version at which this command exists (btcd's
            /// per-message gates). A peer should not hand an application a message its
            /// negotiated version does not have. `None` for commands this codec does
            /// not know.
            pub fn min_version(command: Command) -> Option<u32> {
                $(if command == command::$cmd { return Some($min); })*
                None
            }

            /// [`Message::min_version`] of this message's command, by variant (no
            /// command comparisons); 0 for unknown commands.
            #[inline]
            pub fn min_version_of(&self) -> u32 {
                match self {
                    $(Message::$variant $((ignore!($kind _)))? => $min,)*
                    Message::Unknown { .. } => 0,
                }
            }

            /// Decodes a payload received under `command`. Unknown commands become
            /// [`Message::Unknown`]; trailing bytes after a known payload are an error.
            pub fn decode(command: Command, payload: Bytes, ctx: &Context) -> Result<Message> {
                let r = &mut Reader::new(&payload);
                $(if command == command::$cmd {
                    let msg = decode_row!(r, ctx, command, $variant $($kind $ty)?);
                    r.finish(command)?;
                    return Ok(msg);
                })*
                Ok(Message::Unknown { command, payload })
            }

            /// Appends the payload (no frame header) to `out`.
            pub fn encode_payload(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
                match self {
                    $(Message::$variant $((bind!($kind m)))? => encode_row!(out, ctx $(, $kind m)?),)*
                    Message::Unknown { payload, .. } => {
                        out.extend_from_slice(payload);
                        Ok(())
                    }
                }
            }

            /// A guess of the payload size, used to reserve the output buffer once (64
            /// where the payload type gives no better one).
            pub fn size_hint(&self) -> usize {
                let hint = match self {
                    $(Message::$variant $((bind!($kind m)))? => size_row!($($kind m)?),)*
                    Message::Unknown { payload, .. } => payload.len(),
                };
                if hint == 0 {
                    64
                } else {
                    hint
                }
            }
        }
    };
}

/// The variant's field type: the payload, boxed for `boxed` rows.
macro_rules! payload_type {
    (plain $ty:ty) => { $ty };
    (boxed $ty:ty) => { Box<$ty> };
}

/// A pattern ignoring the variant's field.
macro_rules! ignore {
    ($kind:ident _) => {
        _
    };
}

/// A pattern binding the variant's field.
macro_rules! bind {
    ($kind:ident $m:ident) => {
        $m
    };
}

macro_rules! decode_row {
    ($r:ident, $ctx:ident, $c:ident, $variant:ident) => {
        Message::$variant
    };
    ($r:ident, $ctx:ident, $c:ident, $variant:ident plain $ty:ty) => {
        Message::$variant(<$ty as Payload>::decode($r, $ctx)?)
    };
    ($r:ident, $ctx:ident, $c:ident, $variant:ident boxed $ty:ty) => {
        Message::$variant(Box::new(<$ty as Payload>::decode($r, $ctx)?))
    };
}

macro_rules! encode_row {
    ($out:ident, $ctx:ident) => {
        Ok(())
    };
    ($out:ident, $ctx:ident, $kind:ident $m:ident) => {
        $m.encode($out, $ctx)
    };
}

macro_rules! size_row {
    () => {
        0
    };
    ($kind:ident $m:ident) => {
        $m.size_hint()
    };
}

message_table! {
    /// `version`: the first message of the handshake.
    Version [boxed Version] = VERSION "version", since 0, listener "on_version";
    /// `verack`: acknowledges a version.
    Verack = VERACK "verack", since 0, listener "on_verack";
    /// `ping` (BIP31 nonce from version 60001).
    Ping [plain Ping] = PING "ping", since 0, listener "on_ping";
    /// `pong` (BIP31).
    Pong [plain Pong] = PONG "pong", since version::BIP0031 + 1, listener "on_pong";
    /// `getaddr`.
    GetAddr = GETADDR "getaddr", since 0, listener "on_get_addr";
    /// `addr`.
    Addr [plain Addr] = ADDR "addr", since 0, listener "on_addr";
    /// `addrv2` (BIP155).
    AddrV2 [plain AddrV2] = ADDRV2 "addrv2", since version::ADDR_V2, listener "on_addr_v2";
    /// `sendaddrv2` (BIP155).
    SendAddrV2 = SENDADDRV2 "sendaddrv2", since version::ADDR_V2, listener "on_send_addr_v2";
    /// `inv`.
    Inv [plain Inventory] = INV "inv", since 0, listener "on_inv";
    /// `getdata`.
    GetData [plain Inventory] = GETDATA "getdata", since 0, listener "on_get_data";
    /// `notfound`.
    NotFound [plain Inventory] = NOTFOUND "notfound", since 0, listener "on_not_found";
    /// `getblocks`.
    GetBlocks [plain BlockLocator] = GETBLOCKS "getblocks", since 0, listener "on_get_blocks";
    /// `getheaders`.
    GetHeaders [plain BlockLocator] = GETHEADERS "getheaders", since 0, listener "on_get_headers";
    /// `headers`.
    Headers [plain Headers] = HEADERS "headers", since 0, listener "on_headers";
    /// `block` (the payload as received is kept: [`Block::raw`]).
    Block [boxed Block] = BLOCK "block", since 0, listener "on_block";
    /// `tx`.
    Tx [plain Transaction] = TX "tx", since 0, listener "on_tx";
    /// `mempool` (BIP35).
    MemPool = MEMPOOL "mempool", since version::BIP0035, listener "on_mem_pool";
    /// `reject` (BIP61).
    Reject [boxed Reject] = REJECT "reject", since version::REJECT, listener "on_reject";
    /// `sendheaders` (BIP130).
    SendHeaders = SENDHEADERS "sendheaders", since version::SEND_HEADERS, listener "on_send_headers";
    /// `feefilter` (BIP133).
    FeeFilter [plain FeeFilter] = FEEFILTER "feefilter", since version::FEE_FILTER, listener "on_fee_filter";
    /// `filterload` (BIP37).
    FilterLoad [plain FilterLoad] = FILTERLOAD "filterload", since version::BIP0037, listener "on_filter_load";
    /// `filteradd` (BIP37).
    FilterAdd [plain FilterAdd] = FILTERADD "filteradd", since version::BIP0037, listener "on_filter_add";
    /// `filterclear` (BIP37).
    FilterClear = FILTERCLEAR "filterclear", since version::BIP0037, listener "on_filter_clear";
    /// `merkleblock` (BIP37).
    MerkleBlock [boxed MerkleBlock] = MERKLEBLOCK "merkleblock", since version::BIP0037, listener "on_merkle_block";
    /// `getcfilters` (BIP157).
    GetCFilters [plain GetCFilters] = GETCFILTERS "getcfilters", since 0, listener "on_get_cfilters";
    /// `cfilter` (BIP157).
    CFilter [plain CFilter] = CFILTER "cfilter", since 0, listener "on_cfilter";
    /// `getcfheaders` (BIP157).
    GetCFHeaders [plain GetCFHeaders] = GETCFHEADERS "getcfheaders", since 0, listener "on_get_cfheaders";
    /// `cfheaders` (BIP157).
    CFHeaders [boxed CFHeaders] = CFHEADERS "cfheaders", since 0, listener "on_cfheaders";
    /// `getcfcheckpt` (BIP157).
    GetCFCheckpt [plain GetCFCheckpt] = GETCFCHECKPT "getcfcheckpt", since 0, listener "on_get_cfcheckpt";
    /// `cfcheckpt` (BIP157).
    CFCheckpt [plain CFCheckpt] = CFCHECKPT "cfcheckpt", since 0, listener "on_cfcheckpt";
    /// `wtxidrelay` (BIP339).
    WtxidRelay = WTXIDRELAY "wtxidrelay", since version::WTXID_RELAY, listener "on_wtxid_relay";
    /// `sendcmpct` (BIP152).
    SendCmpct [plain SendCmpct] = SENDCMPCT "sendcmpct", since version::SHORT_IDS_BLOCKS, listener "on_send_cmpct";
    /// `cmpctblock` (BIP152).
    CmpctBlock [boxed CmpctBlock] = CMPCTBLOCK "cmpctblock", since version::SHORT_IDS_BLOCKS, listener "on_cmpct_block";
    /// `getblocktxn` (BIP152).
    GetBlockTxn [plain GetBlockTxn] = GETBLOCKTXN "getblocktxn", since version::SHORT_IDS_BLOCKS, listener "on_get_block_txn";
    /// `blocktxn` (BIP152).
    BlockTxn [plain BlockTxn] = BLOCKTXN "blocktxn", since version::SHORT_IDS_BLOCKS, listener "on_block_txn";
    /// `alert` (retired; kept opaque).
    Alert [plain Alert] = ALERT "alert", since 0, listener "on_alert";
    /// `sendtxrcncl` (BIP330, Erlay).
    SendTxRcncl [plain SendTxRcncl] = SENDTXRCNCL "sendtxrcncl", since version::WTXID_RELAY, listener "on_send_tx_rcncl";
}

/// A driver gives payloads under this many bytes whose value keeps slices of them
/// ([`Message::keeps_payload`]) an allocation of their own before decoding, so a kept
/// 200-byte transaction holds 200 bytes, not the read buffer it arrived in; larger
/// ones stay zero-copy, where the buffer they pin is a small multiple of their size.
/// (Small variable-length fields — addrv2 addresses, filter data, alert fields — are
/// copied by the codec itself; user agents and reject reasons are `String`s.)
pub const OWN_BELOW: usize = 64 * 1024;

impl Message {
    /// Whether the value decoded from a `command` payload keeps slices of the payload
    /// (transactions, blocks, compact blocks, block transactions, unknown commands):
    /// such a value keeps the payload's whole allocation alive.
    ///
    /// ```
    /// use wire_codec::{message::{command, Message}, Command};
    /// assert!(Message::keeps_payload(command::TX));
    /// assert!(Message::keeps_payload(Command::from_static("unknown")));
    /// assert!(!Message::keeps_payload(command::PING));
    /// ```
    pub fn keeps_payload(command: Command) -> bool {
        use command::*;
        let c = command;
        c == TX || c == BLOCK || c == CMPCTBLOCK || c == BLOCKTXN || !ALL.contains(&c)
    }
}

#[cfg(test)]
mod size_tests {
    /// The large payloads stay boxed: a `Message` is moved through every peer's event
    /// queue, so its size is a per-message cost (see the enum's documentation).
    #[test]
    fn a_message_is_at_most_80_bytes() {
        assert!(
            std::mem::size_of::<super::Message>() <= 80,
            "{} bytes",
            std::mem::size_of::<super::Message>()
        );
    }
}
