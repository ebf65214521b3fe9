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

use crate::error::Result;
use crate::header::Command;
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

/// A driver gives payloads under this many bytes whose value keeps slices of them
/// ([`Message::keeps_payload`]) an allocation of their own before decoding, so a kept
/// 200-byte transaction holds 200 bytes, not the read buffer it arrived in; larger
/// ones stay zero-copy, where the buffer they pin is a small multiple of their size.
pub const OWN_BELOW: usize = 64 * 1024;

/// The protocol's command names.
pub mod command {
    use crate::header::Command;
    macro_rules! commands {
        ($($name:ident = $s:literal),* $(,)?) => {
            $(#[doc = concat!("`", $s, "`")] pub const $name: Command = Command::from_static($s);)*

            /// Every command this codec decodes into a typed message, in the order of the
            /// table above (anything else becomes [`Message::Unknown`](super::Message::Unknown)).
            ///
            /// ```
            /// use wire_codec::message::command;
            /// assert_eq!(command::ALL.len(), 37);
            /// assert!(command::ALL.contains(&command::WTXIDRELAY));
            /// ```
            pub const ALL: &[Command] = &[$($name),*];
        };
    }
    commands! {
        VERSION = "version", VERACK = "verack", PING = "ping", PONG = "pong",
        GETADDR = "getaddr", ADDR = "addr", ADDRV2 = "addrv2", SENDADDRV2 = "sendaddrv2",
        INV = "inv", GETDATA = "getdata", NOTFOUND = "notfound", GETBLOCKS = "getblocks",
        GETHEADERS = "getheaders", HEADERS = "headers", BLOCK = "block", TX = "tx",
        MEMPOOL = "mempool", REJECT = "reject", SENDHEADERS = "sendheaders",
        FEEFILTER = "feefilter", FILTERLOAD = "filterload", FILTERADD = "filteradd",
        FILTERCLEAR = "filterclear", MERKLEBLOCK = "merkleblock", GETCFILTERS = "getcfilters",
        CFILTER = "cfilter", GETCFHEADERS = "getcfheaders", CFHEADERS = "cfheaders",
        GETCFCHECKPT = "getcfcheckpt", CFCHECKPT = "cfcheckpt", WTXIDRELAY = "wtxidrelay",
        SENDCMPCT = "sendcmpct", CMPCTBLOCK = "cmpctblock", GETBLOCKTXN = "getblocktxn",
        BLOCKTXN = "blocktxn", ALERT = "alert", SENDTXRCNCL = "sendtxrcncl",
    }
}

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
/// `merkleblock`, `cfheaders`, `cmpctblock`) are boxed. Every message received is moved
/// through a peer's event queue and into a listener; at 184 bytes a `Message` was copied
/// with a `memcpy` call at each step (a fifth of a busy server's CPU in an inv flood),
/// at 80 the copies are a few register moves, and the rare large messages pay one
/// allocation instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `version`: the first message of the handshake.
    Version(Box<Version>),
    /// `verack`: acknowledges a version.
    Verack,
    /// `ping` (BIP31 nonce from version 60001).
    Ping(Ping),
    /// `pong` (BIP31).
    Pong(Pong),
    /// `getaddr`.
    GetAddr,
    /// `addr`.
    Addr(Addr),
    /// `addrv2` (BIP155).
    AddrV2(AddrV2),
    /// `sendaddrv2` (BIP155).
    SendAddrV2,
    /// `inv`.
    Inv(Inventory),
    /// `getdata`.
    GetData(Inventory),
    /// `notfound`.
    NotFound(Inventory),
    /// `getblocks`.
    GetBlocks(BlockLocator),
    /// `getheaders`.
    GetHeaders(BlockLocator),
    /// `headers`.
    Headers(Headers),
    /// `block`.
    Block(Box<Block>),
    /// `tx`.
    Tx(Transaction),
    /// `mempool` (BIP35).
    MemPool,
    /// `reject` (BIP61).
    Reject(Box<Reject>),
    /// `sendheaders` (BIP130).
    SendHeaders,
    /// `feefilter` (BIP133).
    FeeFilter(FeeFilter),
    /// `filterload` (BIP37).
    FilterLoad(FilterLoad),
    /// `filteradd` (BIP37).
    FilterAdd(FilterAdd),
    /// `filterclear` (BIP37).
    FilterClear,
    /// `merkleblock` (BIP37).
    MerkleBlock(Box<MerkleBlock>),
    /// `getcfilters` (BIP157).
    GetCFilters(GetCFilters),
    /// `cfilter` (BIP157).
    CFilter(CFilter),
    /// `getcfheaders` (BIP157).
    GetCFHeaders(GetCFHeaders),
    /// `cfheaders` (BIP157).
    CFHeaders(Box<CFHeaders>),
    /// `getcfcheckpt` (BIP157).
    GetCFCheckpt(GetCFCheckpt),
    /// `cfcheckpt` (BIP157).
    CFCheckpt(CFCheckpt),
    /// `wtxidrelay` (BIP339).
    WtxidRelay,
    /// `sendcmpct` (BIP152).
    SendCmpct(SendCmpct),
    /// `cmpctblock` (BIP152).
    CmpctBlock(Box<CmpctBlock>),
    /// `getblocktxn` (BIP152).
    GetBlockTxn(GetBlockTxn),
    /// `blocktxn` (BIP152).
    BlockTxn(BlockTxn),
    /// `alert` (retired; kept opaque).
    Alert(Alert),
    /// `sendtxrcncl` (BIP330, Erlay).
    SendTxRcncl(SendTxRcncl),
    /// Any command this codec does not know, with its payload untouched.
    Unknown {
        /// The command.
        command: Command,
        /// The payload as received.
        payload: Bytes,
    },
}

macro_rules! empty_payload {
    ($r:expr, $cmd:expr, $variant:expr) => {{
        $r.finish($cmd)?;
        $variant
    }};
}

impl Message {
    /// The command name of this message.
    pub fn command(&self) -> Command {
        use command::*;
        match self {
            Message::Version(_) => VERSION,
            Message::Verack => VERACK,
            Message::Ping(_) => PING,
            Message::Pong(_) => PONG,
            Message::GetAddr => GETADDR,
            Message::Addr(_) => ADDR,
            Message::AddrV2(_) => ADDRV2,
            Message::SendAddrV2 => SENDADDRV2,
            Message::Inv(_) => INV,
            Message::GetData(_) => GETDATA,
            Message::NotFound(_) => NOTFOUND,
            Message::GetBlocks(_) => GETBLOCKS,
            Message::GetHeaders(_) => GETHEADERS,
            Message::Headers(_) => HEADERS,
            Message::Block(_) => BLOCK,
            Message::Tx(_) => TX,
            Message::MemPool => MEMPOOL,
            Message::Reject(_) => REJECT,
            Message::SendHeaders => SENDHEADERS,
            Message::FeeFilter(_) => FEEFILTER,
            Message::FilterLoad(_) => FILTERLOAD,
            Message::FilterAdd(_) => FILTERADD,
            Message::FilterClear => FILTERCLEAR,
            Message::MerkleBlock(_) => MERKLEBLOCK,
            Message::GetCFilters(_) => GETCFILTERS,
            Message::CFilter(_) => CFILTER,
            Message::GetCFHeaders(_) => GETCFHEADERS,
            Message::CFHeaders(_) => CFHEADERS,
            Message::GetCFCheckpt(_) => GETCFCHECKPT,
            Message::CFCheckpt(_) => CFCHECKPT,
            Message::WtxidRelay => WTXIDRELAY,
            Message::SendCmpct(_) => SENDCMPCT,
            Message::CmpctBlock(_) => CMPCTBLOCK,
            Message::GetBlockTxn(_) => GETBLOCKTXN,
            Message::BlockTxn(_) => BLOCKTXN,
            Message::Alert(_) => ALERT,
            Message::SendTxRcncl(_) => SENDTXRCNCL,
            Message::Unknown { command, .. } => *command,
        }
    }

    /// The lowest protocol version at which this command exists (btcd's per-message
    /// gates). A peer should not hand an application a message its negotiated version
    /// does not have. `None` for commands this codec does not know.
    pub fn min_version(command: Command) -> Option<u32> {
        use command::*;
        let v = match command {
            c if c == PONG => version::BIP0031 + 1,
            c if c == MEMPOOL => version::BIP0035,
            c if c == FILTERLOAD || c == FILTERADD || c == FILTERCLEAR || c == MERKLEBLOCK => {
                version::BIP0037
            }
            c if c == REJECT => version::REJECT,
            c if c == SENDHEADERS => version::SEND_HEADERS,
            c if c == FEEFILTER => version::FEE_FILTER,
            c if c == SENDCMPCT || c == CMPCTBLOCK || c == GETBLOCKTXN || c == BLOCKTXN => {
                version::SHORT_IDS_BLOCKS
            }
            c if c == WTXIDRELAY || c == SENDADDRV2 || c == ADDRV2 || c == SENDTXRCNCL => {
                version::WTXID_RELAY
            }
            c if c == VERSION
                || c == VERACK
                || c == PING
                || c == GETADDR
                || c == ADDR
                || c == INV
                || c == GETDATA
                || c == NOTFOUND
                || c == GETBLOCKS
                || c == GETHEADERS
                || c == HEADERS
                || c == BLOCK
                || c == TX
                || c == ALERT
                || c == GETCFILTERS
                || c == CFILTER
                || c == GETCFHEADERS
                || c == CFHEADERS
                || c == GETCFCHECKPT
                || c == CFCHECKPT =>
            {
                0
            }
            _ => return None,
        };
        Some(v)
    }

    /// Decodes a payload received under `command`. Unknown commands become
    /// [`Message::Unknown`]; trailing bytes after a known payload are an error.
    ///
    /// Ownership: small variable-length fields an application may keep (addrv2
    /// addresses, filter data, alert fields) are copied, so they never keep the payload
    /// alive; user agents and reject reasons are `String`s. Transactions, blocks and
    /// unknown payloads stay zero-copy slices of `payload`: a driver that reads many
    /// frames into one buffer gives the small ones their own allocation first (see
    /// [`Message::keeps_payload`] and [`OWN_BELOW`]; peer-core does).
    pub fn decode(command: Command, payload: Bytes, ctx: &Context) -> Result<Message> {
        use command::*;
        let c = command;
        let r = &mut Reader::new(&payload);
        let msg = if c == VERSION {
            Message::Version(Box::new(Version::decode(r, ctx)?))
        } else if c == VERACK {
            empty_payload!(r, c, Message::Verack)
        } else if c == PING {
            Message::Ping(Ping::decode(r, ctx)?)
        } else if c == PONG {
            Message::Pong(Pong::decode(r, ctx)?)
        } else if c == GETADDR {
            empty_payload!(r, c, Message::GetAddr)
        } else if c == ADDR {
            Message::Addr(Addr::decode(r, ctx)?)
        } else if c == ADDRV2 {
            Message::AddrV2(AddrV2::decode(r, ctx)?)
        } else if c == SENDADDRV2 {
            empty_payload!(r, c, Message::SendAddrV2)
        } else if c == INV {
            Message::Inv(Inventory::decode(r, ctx)?)
        } else if c == GETDATA {
            Message::GetData(Inventory::decode(r, ctx)?)
        } else if c == NOTFOUND {
            Message::NotFound(Inventory::decode(r, ctx)?)
        } else if c == GETBLOCKS {
            Message::GetBlocks(BlockLocator::decode(r, ctx)?)
        } else if c == GETHEADERS {
            Message::GetHeaders(BlockLocator::decode(r, ctx)?)
        } else if c == HEADERS {
            Message::Headers(Headers::decode(r, ctx)?)
        } else if c == BLOCK {
            let mut block = Block::decode(r, ctx)?;
            block.set_raw(payload.clone());
            Message::Block(Box::new(block))
        } else if c == TX {
            Message::Tx(Transaction::decode(r, ctx)?)
        } else if c == MEMPOOL {
            empty_payload!(r, c, Message::MemPool)
        } else if c == REJECT {
            Message::Reject(Box::new(Reject::decode(r, ctx)?))
        } else if c == SENDHEADERS {
            empty_payload!(r, c, Message::SendHeaders)
        } else if c == FEEFILTER {
            Message::FeeFilter(FeeFilter::decode(r, ctx)?)
        } else if c == FILTERLOAD {
            Message::FilterLoad(FilterLoad::decode(r, ctx)?)
        } else if c == FILTERADD {
            Message::FilterAdd(FilterAdd::decode(r, ctx)?)
        } else if c == FILTERCLEAR {
            empty_payload!(r, c, Message::FilterClear)
        } else if c == MERKLEBLOCK {
            Message::MerkleBlock(Box::new(MerkleBlock::decode(r, ctx)?))
        } else if c == GETCFILTERS {
            Message::GetCFilters(GetCFilters::decode(r, ctx)?)
        } else if c == CFILTER {
            Message::CFilter(CFilter::decode(r, ctx)?)
        } else if c == GETCFHEADERS {
            Message::GetCFHeaders(GetCFHeaders::decode(r, ctx)?)
        } else if c == CFHEADERS {
            Message::CFHeaders(Box::new(CFHeaders::decode(r, ctx)?))
        } else if c == GETCFCHECKPT {
            Message::GetCFCheckpt(GetCFCheckpt::decode(r, ctx)?)
        } else if c == CFCHECKPT {
            Message::CFCheckpt(CFCheckpt::decode(r, ctx)?)
        } else if c == WTXIDRELAY {
            empty_payload!(r, c, Message::WtxidRelay)
        } else if c == SENDCMPCT {
            Message::SendCmpct(SendCmpct::decode(r, ctx)?)
        } else if c == CMPCTBLOCK {
            Message::CmpctBlock(Box::new(CmpctBlock::decode(r, ctx)?))
        } else if c == GETBLOCKTXN {
            Message::GetBlockTxn(GetBlockTxn::decode(r, ctx)?)
        } else if c == BLOCKTXN {
            Message::BlockTxn(BlockTxn::decode(r, ctx)?)
        } else if c == ALERT {
            Message::Alert(Alert::decode(r, ctx)?)
        } else if c == SENDTXRCNCL {
            Message::SendTxRcncl(SendTxRcncl::decode(r, ctx)?)
        } else {
            return Ok(Message::Unknown { command, payload });
        };
        r.finish(command)?;
        Ok(msg)
    }

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

    /// Appends this message's payload to `out`.
    pub fn encode_payload(&self, out: &mut BytesMut, ctx: &Context) -> Result<()> {
        match self {
            Message::Version(m) => m.encode(out, ctx),
            Message::Ping(m) => m.encode(out, ctx),
            Message::Pong(m) => m.encode(out, ctx),
            Message::Addr(m) => m.encode(out, ctx),
            Message::AddrV2(m) => m.encode(out, ctx),
            Message::Inv(m) | Message::GetData(m) | Message::NotFound(m) => m.encode(out, ctx),
            Message::GetBlocks(m) | Message::GetHeaders(m) => m.encode(out, ctx),
            Message::Headers(m) => m.encode(out, ctx),
            Message::Block(m) => m.encode(out, ctx),
            Message::Tx(m) => m.encode(out, ctx),
            Message::Reject(m) => m.encode(out, ctx),
            Message::FeeFilter(m) => m.encode(out, ctx),
            Message::FilterLoad(m) => m.encode(out, ctx),
            Message::FilterAdd(m) => m.encode(out, ctx),
            Message::MerkleBlock(m) => m.encode(out, ctx),
            Message::GetCFilters(m) => m.encode(out, ctx),
            Message::CFilter(m) => m.encode(out, ctx),
            Message::GetCFHeaders(m) => m.encode(out, ctx),
            Message::CFHeaders(m) => m.encode(out, ctx),
            Message::GetCFCheckpt(m) => m.encode(out, ctx),
            Message::CFCheckpt(m) => m.encode(out, ctx),
            Message::SendCmpct(m) => m.encode(out, ctx),
            Message::CmpctBlock(m) => m.encode(out, ctx),
            Message::GetBlockTxn(m) => m.encode(out, ctx),
            Message::BlockTxn(m) => m.encode(out, ctx),
            Message::Alert(m) => m.encode(out, ctx),
            Message::SendTxRcncl(m) => m.encode(out, ctx),
            Message::Unknown { payload, .. } => {
                out.extend_from_slice(payload);
                Ok(())
            }
            Message::Verack
            | Message::GetAddr
            | Message::SendAddrV2
            | Message::MemPool
            | Message::SendHeaders
            | Message::FilterClear
            | Message::WtxidRelay => Ok(()),
        }
    }

    /// A guess of the payload size, used to reserve the output buffer once.
    pub fn size_hint(&self) -> usize {
        match self {
            Message::Version(m) => m.size_hint(),
            Message::Addr(m) => m.size_hint(),
            Message::AddrV2(m) => m.size_hint(),
            Message::Inv(m) | Message::GetData(m) | Message::NotFound(m) => m.size_hint(),
            Message::GetBlocks(m) | Message::GetHeaders(m) => m.size_hint(),
            Message::Headers(m) => m.size_hint(),
            Message::Block(m) => m.size_hint(),
            Message::Tx(m) => m.size_hint(),
            Message::MerkleBlock(m) => m.size_hint(),
            Message::CFilter(m) => m.size_hint(),
            Message::CFHeaders(m) => m.size_hint(),
            Message::CFCheckpt(m) => m.size_hint(),
            Message::CmpctBlock(m) => m.size_hint(),
            Message::BlockTxn(m) => m.size_hint(),
            Message::Unknown { payload, .. } => payload.len(),
            _ => 64,
        }
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
