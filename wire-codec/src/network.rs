//! The networks peerwire speaks: their magics, ports, header kinds and limits.

use core::fmt;
use core::str::FromStr;

use crate::hash::Hash256;
use crate::limits::Limits;
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
///
/// Networks beyond the built-in ones (btcd's `chaincfg.Params`: simnet, a signet with
/// its own challenge, a private test network) are [`Network::Custom`], built from
/// [`NetworkParams`] with [`Network::custom`], [`Network::simnet`] or
/// [`Network::custom_signet`].
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
    /// A network given by its parameters (magic, port, header layout, highest protocol
    /// version, limits). The parameters live for the whole process: networks are made
    /// once, at start-up, and copied freely after.
    Custom(&'static NetworkParams),
}

/// Everything the codec and a peer need to know about a network (btcd's
/// `chaincfg.Params`, the part the wire uses).
///
/// ```
/// use wire_codec::{HeaderKind, Limits, Network, NetworkParams};
/// let params = NetworkParams {
///     name: "private",
///     magic: [0xde, 0xad, 0xbe, 0xef],
///     default_port: 19999,
///     header_kind: HeaderKind::Bitcoin,
///     max_protocol_version: 70016,
///     limits: Limits { max_payload: 1_000_000, ..Limits::BITCOIN },
/// };
/// let net = Network::custom(params);
/// assert_eq!(net.magic(), [0xde, 0xad, 0xbe, 0xef]);
/// assert_eq!(net.default_port(), 19999);
/// assert_eq!(net.max_payload(), 1_000_000);
/// assert_eq!(net.name(), "private");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkParams {
    /// The name used in logs and on command lines.
    pub name: &'static str,
    /// The four magic bytes, in wire order.
    pub magic: [u8; 4],
    /// The default P2P port.
    pub default_port: u16,
    /// The block header layout.
    pub header_kind: HeaderKind,
    /// The highest protocol version peers on this network use.
    pub max_protocol_version: u32,
    /// Size limits (the largest payload among them).
    pub limits: Limits,
}

/// btcd's simnet (`wire.SimNet`, magic 0x12141c16, port 18555).
static SIMNET: NetworkParams = NetworkParams {
    name: "simnet",
    magic: [0x16, 0x1c, 0x14, 0x12],
    default_port: 18555,
    header_kind: HeaderKind::Bitcoin,
    max_protocol_version: version::WTXID_RELAY,
    limits: Limits::BITCOIN,
};

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

    /// A network from its parameters. The parameters are kept for the rest of the
    /// process (a few dozen bytes, once per network the application defines).
    pub fn custom(params: NetworkParams) -> Network {
        Network::Custom(Box::leak(Box::new(params)))
    }

    /// btcd's simulation test network (simnet).
    ///
    /// ```
    /// use wire_codec::Network;
    /// let n = Network::simnet();
    /// assert_eq!(n.magic(), 0x12141c16u32.to_le_bytes());
    /// assert_eq!(n.default_port(), 18555);
    /// assert_eq!("simnet".parse::<Network>().unwrap(), n);
    /// ```
    pub fn simnet() -> Network {
        Network::Custom(&SIMNET)
    }

    /// A signet with its own challenge script (BIP325): the magic is the first four
    /// bytes of the double SHA-256 of the challenge, serialized with its length.
    ///
    /// ```
    /// use wire_codec::Network;
    /// // The default signet's challenge gives the default signet's magic.
    /// let challenge = [0x51u8, 0x21, 0x03, 0xad, 0x5e, 0x0e, 0xda, 0xd1, 0x8c, 0xb1, 0xf0,
    ///     0xfc, 0x0d, 0x28, 0xa3, 0xd4, 0xf1, 0xf3, 0xe4, 0x45, 0x64, 0x03, 0x37, 0x48, 0x9a,
    ///     0xbb, 0x10, 0x40, 0x4f, 0x2d, 0x1e, 0x08, 0x6b, 0xe4, 0x30, 0x21, 0x03, 0x59, 0xef,
    ///     0x50, 0x21, 0x96, 0x4f, 0xe2, 0x2d, 0x6f, 0x8e, 0x05, 0xb2, 0x46, 0x3c, 0x95, 0x40,
    ///     0xce, 0x96, 0x88, 0x3f, 0xe3, 0xb2, 0x78, 0x76, 0x0f, 0x04, 0x8f, 0x51, 0x89, 0xf2,
    ///     0xe6, 0xc4, 0x52, 0xae];
    /// assert_eq!(Network::custom_signet(&challenge).magic(), Network::Signet.magic());
    /// ```
    pub fn custom_signet(challenge: &[u8]) -> Network {
        let mut data = Vec::with_capacity(challenge.len() + 9);
        crate::compact_size::write(&mut data, challenge.len() as u64);
        data.extend_from_slice(challenge);
        let h = Hash256::sha256d(&data);
        Network::custom(NetworkParams {
            name: "signet-custom",
            magic: [h.0[0], h.0[1], h.0[2], h.0[3]],
            default_port: 38333,
            header_kind: HeaderKind::Bitcoin,
            max_protocol_version: version::WTXID_RELAY,
            limits: Limits::BITCOIN,
        })
    }

    /// The parameters of a custom network (`None` for the built-in ones).
    pub const fn params(self) -> Option<&'static NetworkParams> {
        match self {
            Network::Custom(p) => Some(p),
            _ => None,
        }
    }

    /// The four magic bytes, in wire order.
    pub const fn magic(self) -> [u8; 4] {
        match self {
            Network::Custom(p) => p.magic,
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
            Network::Custom(p) => p.default_port,
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

    /// Whether this is one of the built-in LBRY networks.
    pub const fn is_lbry(self) -> bool {
        matches!(
            self,
            Network::LbryMainnet | Network::LbryTestnet | Network::LbryRegtest
        )
    }

    /// The block header layout.
    pub const fn header_kind(self) -> HeaderKind {
        if let Network::Custom(p) = self {
            p.header_kind
        } else if self.is_lbry() {
            HeaderKind::Lbry
        } else {
            HeaderKind::Bitcoin
        }
    }

    /// The largest payload a frame may announce on this network (from its
    /// [`Limits`], the one source of the codec's limits).
    pub const fn max_payload(self) -> u32 {
        Limits::for_network(self).max_payload
    }

    /// The highest protocol version whose features peerwire implements on this network
    /// (LBRY peers stop at 70013).
    pub const fn max_protocol_version(self) -> u32 {
        if let Network::Custom(p) = self {
            p.max_protocol_version
        } else if self.is_lbry() {
            version::FEE_FILTER
        } else {
            version::WTXID_RELAY
        }
    }

    /// The name used on command lines (`mainnet`, `lbry-regtest`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Network::Custom(p) => p.name,
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
            "simnet" => Network::simnet(),
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

    #[test]
    fn custom_networks_carry_their_parameters() {
        let n = Network::custom(NetworkParams {
            name: "lbry-private",
            magic: [1, 2, 3, 4],
            default_port: 1234,
            header_kind: HeaderKind::Lbry,
            max_protocol_version: 70013,
            limits: Limits {
                max_payload: 9_000_000,
                max_inv: 10,
                ..Limits::BITCOIN
            },
        });
        assert_eq!(n.header_kind(), HeaderKind::Lbry);
        assert_eq!(n.max_payload(), 9_000_000);
        assert_eq!(n.max_protocol_version(), 70013);
        assert_eq!(Limits::for_network(n).max_inv, 10);
        assert_eq!(
            Network::from_magic([1, 2, 3, 4]),
            None,
            "only built-ins by magic"
        );
        assert_eq!(Network::simnet().max_payload(), 4_000_000);
        assert_eq!(Network::simnet().name(), "simnet");
    }
}
