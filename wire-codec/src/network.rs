//! The networks peerwire speaks: their magics, ports, header kinds and limits.

use core::fmt;
use core::str::FromStr;

use crate::version;

/// Which block header layout a network uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    /// Bitcoin's 80-byte header.
    Bitcoin,
    /// LBRY's 112-byte header: the claim-trie root sits between the merkle root and
    /// the time.
    Lbry,
}

impl HeaderKind {
    /// Serialized header length in bytes (80 or 112).
    pub const fn len(self) -> usize {
        match self {
            HeaderKind::Bitcoin => 80,
            HeaderKind::Lbry => 112,
        }
    }

    /// Always false: a header is never empty (here to satisfy `len` conventions).
    pub const fn is_empty(self) -> bool {
        false
    }
}

/// A peer-to-peer network. Its magic is the first four bytes of every frame.
///
/// ```
/// use wire_codec::{HeaderKind, Network};
/// let n: Network = "lbry-mainnet".parse().unwrap();
/// assert_eq!(n.magic(), [0xfa, 0xe4, 0xaa, 0xf1]);
/// assert_eq!(n.default_port(), 9246);
/// assert_eq!(n.header_kind(), HeaderKind::Lbry);
/// assert_eq!(Network::from_magic([0xf9, 0xbe, 0xb4, 0xd9]), Some(Network::Mainnet));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Bitcoin mainnet.
    Mainnet,
    /// Bitcoin testnet3.
    Testnet3,
    /// Bitcoin testnet4 (BIP94).
    Testnet4,
    /// Bitcoin's default signet.
    Signet,
    /// Bitcoin regtest.
    Regtest,
    /// LBRY mainnet.
    LbryMainnet,
    /// LBRY testnet.
    LbryTestnet,
    /// LBRY regtest.
    LbryRegtest,
}

/// The largest message payload Bitcoin Core accepts (`MAX_PROTOCOL_MESSAGE_LENGTH`).
pub const BITCOIN_MAX_PAYLOAD: u32 = 4_000_000;
/// The largest LBRY payload: blocks may be up to 8,000,000 bytes (lbcd `MaxBlockPayload`).
pub const LBRY_MAX_PAYLOAD: u32 = 8_000_000;

impl Network {
    /// Every network, in a stable order.
    pub const ALL: [Network; 8] = [
        Network::Mainnet,
        Network::Testnet3,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
        Network::LbryMainnet,
        Network::LbryTestnet,
        Network::LbryRegtest,
    ];

    /// The four magic bytes, in wire order.
    pub const fn magic(self) -> [u8; 4] {
        match self {
            Network::Mainnet => [0xf9, 0xbe, 0xb4, 0xd9],
            Network::Testnet3 => [0x0b, 0x11, 0x09, 0x07],
            Network::Testnet4 => [0x1c, 0x16, 0x3f, 0x28],
            Network::Signet => [0x0a, 0x03, 0xcf, 0x40],
            Network::Regtest => [0xfa, 0xbf, 0xb5, 0xda],
            Network::LbryMainnet => [0xfa, 0xe4, 0xaa, 0xf1],
            Network::LbryTestnet => [0xfa, 0xe4, 0xaa, 0xe1],
            Network::LbryRegtest => [0xfa, 0xe4, 0xaa, 0xd1],
        }
    }

    /// The network whose magic this is.
    pub fn from_magic(magic: [u8; 4]) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.magic() == magic)
    }

    /// The default P2P port.
    pub const fn default_port(self) -> u16 {
        match self {
            Network::Mainnet => 8333,
            Network::Testnet3 => 18333,
            Network::Testnet4 => 48333,
            Network::Signet => 38333,
            Network::Regtest => 18444,
            Network::LbryMainnet => 9246,
            Network::LbryTestnet => 19246,
            Network::LbryRegtest => 29246,
        }
    }

    /// Whether this is one of the LBRY networks.
    pub const fn is_lbry(self) -> bool {
        matches!(
            self,
            Network::LbryMainnet | Network::LbryTestnet | Network::LbryRegtest
        )
    }

    /// The block header layout.
    pub const fn header_kind(self) -> HeaderKind {
        if self.is_lbry() {
            HeaderKind::Lbry
        } else {
            HeaderKind::Bitcoin
        }
    }

    /// The largest payload a frame may announce on this network.
    pub const fn max_payload(self) -> u32 {
        if self.is_lbry() {
            LBRY_MAX_PAYLOAD
        } else {
            BITCOIN_MAX_PAYLOAD
        }
    }

    /// The highest protocol version whose features peerwire implements on this network
    /// (LBRY peers stop at 70013).
    pub const fn max_protocol_version(self) -> u32 {
        if self.is_lbry() {
            version::FEE_FILTER
        } else {
            version::WTXID_RELAY
        }
    }

    /// The name used on command lines (`mainnet`, `lbry-regtest`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet3 => "testnet3",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
            Network::LbryMainnet => "lbry-mainnet",
            Network::LbryTestnet => "lbry-testnet",
            Network::LbryRegtest => "lbry-regtest",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network name that is not one of [`Network::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNetwork(pub String);

impl fmt::Display for UnknownNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown network {:?}; expected one of", self.0)?;
        for n in Network::ALL {
            write!(f, " {n}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownNetwork {}

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let n = match lower.as_str() {
            "mainnet" | "main" | "bitcoin" => Network::Mainnet,
            "testnet3" | "testnet" | "test" => Network::Testnet3,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            "lbry-mainnet" | "lbry" | "lbry-main" => Network::LbryMainnet,
            "lbry-testnet" | "lbry-test" => Network::LbryTestnet,
            "lbry-regtest" => Network::LbryRegtest,
            _ => return Err(UnknownNetwork(s.to_string())),
        };
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_magics_are_distinct() {
        for n in Network::ALL {
            assert_eq!(n.name().parse::<Network>().unwrap(), n);
            assert_eq!(Network::from_magic(n.magic()), Some(n));
        }
        assert!("nonsense".parse::<Network>().is_err());
    }

    #[test]
    fn lbry_facts() {
        assert_eq!(Network::LbryMainnet.max_protocol_version(), 70013);
        assert_eq!(Network::LbryRegtest.max_payload(), 8_000_000);
        assert_eq!(Network::Regtest.max_payload(), 4_000_000);
        assert_eq!(HeaderKind::Lbry.len(), 112);
    }
}
