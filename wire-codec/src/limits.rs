//! The protocol's size limits, one place to read and override them.

use crate::network::Network;

/// Maximum entries and lengths accepted by the decoder. The defaults are Bitcoin Core's
/// and btcd's; a user with other needs (a crawler accepting larger addr lists, a test
/// harness) overrides single fields.
///
/// ```
/// use wire_codec::{Limits, Network};
/// let l = Limits::for_network(Network::LbryMainnet);
/// assert_eq!(l.max_payload, 8_000_000);
/// let strict = Limits { max_inv: 1_000, ..Limits::for_network(Network::Mainnet) };
/// assert_eq!(strict.max_inv, 1_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest payload a frame header may announce.
    pub max_payload: u32,
    /// inv / getdata / notfound entries (`MAX_INV_SZ`).
    pub max_inv: usize,
    /// addr and addrv2 entries (`MAX_ADDR_TO_SEND`).
    pub max_addr: usize,
    /// headers per `headers` message.
    pub max_headers: usize,
    /// Block locator hashes in getblocks/getheaders (btcd `MaxBlockLocatorsPerMsg`).
    pub max_locator: usize,
    /// User agent bytes in `version`.
    pub max_user_agent: usize,
    /// filterload filter bytes.
    pub max_filterload: usize,
    /// filterload hash functions.
    pub max_filter_hash_funcs: u32,
    /// filteradd data bytes.
    pub max_filteradd: usize,
    /// cfheaders filter hashes.
    pub max_cfheaders: usize,
    /// cfcheckpt filter headers.
    pub max_cfcheckpt: usize,
    /// cfilter filter bytes.
    pub max_cfilter: usize,
    /// reject reason and command bytes.
    pub max_reject_reason: usize,
    /// addrv2 address bytes (BIP155: 512).
    pub max_addrv2_addr: usize,
}

impl Limits {
    /// Core's and btcd's limits; the payload maximum is Core's
    /// `MAX_PROTOCOL_MESSAGE_LENGTH`.
    pub const BITCOIN: Limits = Limits {
        max_payload: 4_000_000,
        max_inv: 50_000,
        max_addr: 1_000,
        max_headers: 2_000,
        max_locator: 500,
        max_user_agent: 256,
        max_filterload: 36_000,
        max_filter_hash_funcs: 50,
        max_filteradd: 520,
        max_cfheaders: 2_000,
        max_cfcheckpt: 100_000,
        max_cfilter: 256 * 1024,
        max_reject_reason: 111,
        max_addrv2_addr: 512,
    };

    /// LBRY's limits: Bitcoin's, with blocks of up to 8,000,000 bytes (lbcd
    /// `MaxBlockPayload`).
    pub const LBRY: Limits = Limits {
        max_payload: 8_000_000,
        ..Limits::BITCOIN
    };

    /// The limits of `network`: a custom network's own, LBRY's for the LBRY networks,
    /// Bitcoin's otherwise.
    pub const fn for_network(network: Network) -> Limits {
        match network {
            Network::Custom(p) => p.limits,
            n if n.is_lbry() => Limits::LBRY,
            _ => Limits::BITCOIN,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_network(Network::Mainnet)
    }
}
