//! Protocol version numbers that switch features on (btcd `wire/protocol.go` names).

/// Lowest version btcd accepts from a peer (`MultipleAddressVersion`).
pub const MULTIPLE_ADDRESS: u32 = 209;
/// From here `addr` entries carry a timestamp (`NetAddressTimeVersion`).
pub const NET_ADDRESS_TIME: u32 = 31402;
/// After this (strictly greater) ping carries a nonce and pong exists (BIP31).
pub const BIP0031: u32 = 60000;
/// From here `mempool` exists (BIP35).
pub const BIP0035: u32 = 60002;
/// From here bloom filters and the version relay flag exist (BIP37).
pub const BIP0037: u32 = 70001;
/// From here `reject` exists (BIP61).
pub const REJECT: u32 = 70002;
/// From here bloom filtering must be advertised by NODE_BLOOM (BIP111).
pub const BIP0111: u32 = 70011;
/// From here `sendheaders` exists (BIP130).
pub const SEND_HEADERS: u32 = 70012;
/// From here `feefilter` exists (BIP133). LBRY's highest.
pub const FEE_FILTER: u32 = 70013;
/// From here compact blocks exist (BIP152).
pub const SHORT_IDS_BLOCKS: u32 = 70014;
/// From here invalid compact blocks are not punished.
pub const INVALID_CB_NO_BAN: u32 = 70015;
/// From here `wtxidrelay` and `sendaddrv2` are negotiated (BIP339, BIP155).
pub const WTXID_RELAY: u32 = 70016;
/// Same number as [`WTXID_RELAY`], as btcd names it.
pub const ADDR_V2: u32 = 70016;
