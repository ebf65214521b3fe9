//! Networks, services and inventory entries.

use bitcoin::p2p::message_blockdata::Inventory as TheirInv;

use crate::error::{Error, Result};
use crate::message::{InvType, InvVect, Inventory, ServiceFlags};
use crate::{Hash256, Network};

/// Bitcoin's five built-in networks; LBRY and custom networks are refused.
impl TryFrom<Network> for bitcoin::Network {
    type Error = Error;

    fn try_from(n: Network) -> Result<Self> {
        Ok(match n {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet3 => bitcoin::Network::Testnet,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
            Network::LbryMainnet
            | Network::LbryTestnet
            | Network::LbryRegtest
            | Network::Custom(_) => {
                return Err(Error::Malformed {
                    what: "network",
                    reason: "only Bitcoin's built-in networks have a bitcoin::Network",
                })
            }
        })
    }
}

impl From<bitcoin::Network> for Network {
    fn from(n: bitcoin::Network) -> Self {
        match n {
            bitcoin::Network::Bitcoin => Network::Mainnet,
            bitcoin::Network::Testnet => Network::Testnet3,
            bitcoin::Network::Testnet4 => Network::Testnet4,
            bitcoin::Network::Signet => Network::Signet,
            bitcoin::Network::Regtest => Network::Regtest,
        }
    }
}

impl From<ServiceFlags> for bitcoin::p2p::ServiceFlags {
    fn from(s: ServiceFlags) -> Self {
        bitcoin::p2p::ServiceFlags::from(s.0)
    }
}

impl From<bitcoin::p2p::ServiceFlags> for ServiceFlags {
    fn from(s: bitcoin::p2p::ServiceFlags) -> Self {
        ServiceFlags(s.to_u64())
    }
}

/// Each known type maps to its `bitcoin` variant; everything else, `ERROR` (0) and
/// `MSG_FILTERED_BLOCK` included, to `Unknown` with the type and hash kept, which is
/// what `bitcoin` itself decodes them to. Lossless both ways.
impl From<InvVect> for TheirInv {
    fn from(iv: InvVect) -> Self {
        let h = iv.hash;
        match iv.kind {
            InvType::TX => TheirInv::Transaction(h.into()),
            InvType::BLOCK => TheirInv::Block(h.into()),
            InvType::CMPCT_BLOCK => TheirInv::CompactBlock(h.into()),
            InvType::WTX => TheirInv::WTx(h.into()),
            InvType::WITNESS_TX => TheirInv::WitnessTransaction(h.into()),
            InvType::WITNESS_BLOCK => TheirInv::WitnessBlock(h.into()),
            InvType(inv_type) => TheirInv::Unknown {
                inv_type,
                hash: h.0,
            },
        }
    }
}

impl From<TheirInv> for InvVect {
    fn from(iv: TheirInv) -> Self {
        let (kind, hash) = match iv {
            TheirInv::Error => (InvType::ERROR, Hash256::ZERO),
            TheirInv::Transaction(h) => (InvType::TX, h.into()),
            TheirInv::Block(h) => (InvType::BLOCK, h.into()),
            TheirInv::CompactBlock(h) => (InvType::CMPCT_BLOCK, h.into()),
            TheirInv::WTx(h) => (InvType::WTX, h.into()),
            TheirInv::WitnessTransaction(h) => (InvType::WITNESS_TX, h.into()),
            TheirInv::WitnessBlock(h) => (InvType::WITNESS_BLOCK, h.into()),
            TheirInv::Unknown { inv_type, hash } => (InvType(inv_type), Hash256(hash)),
        };
        InvVect { kind, hash }
    }
}

/// The entries of an `inv`, `getdata` or `notfound`.
impl From<&Inventory> for Vec<TheirInv> {
    fn from(m: &Inventory) -> Self {
        m.inventory.iter().map(|iv| TheirInv::from(*iv)).collect()
    }
}

impl From<Vec<TheirInv>> for Inventory {
    fn from(v: Vec<TheirInv>) -> Self {
        Inventory::new(v.into_iter().map(InvVect::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_agree_on_magic_and_port() {
        for n in Network::ALL {
            match bitcoin::Network::try_from(n) {
                Ok(theirs) => {
                    assert_eq!(bitcoin::p2p::Magic::from(theirs).to_bytes(), n.magic());
                    assert_eq!(Network::from(theirs), n);
                }
                Err(_) => assert!(n.is_lbry(), "{n}"),
            }
        }
    }

    #[test]
    fn error_and_filtered_block_keep_their_hash() {
        for kind in [InvType::ERROR, InvType::FILTERED_BLOCK, InvType(77)] {
            let iv = InvVect::new(kind, Hash256([3; 32]));
            assert_eq!(InvVect::from(TheirInv::from(iv)), iv);
        }
    }
}
