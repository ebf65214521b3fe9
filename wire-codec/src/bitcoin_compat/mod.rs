//! Conversions to and from the [`bitcoin`] crate (0.32), behind the `bitcoin` feature.
//!
//! Every conversion is a `From` (it cannot fail) or a `TryFrom` whose error is the codec's
//! own [`Error`](crate::Error), so code that already handles codec errors handles these.
//! What can fail, and why:
//!
//! - LBRY headers, blocks and networks have no `bitcoin` equivalent (the 112-byte header
//!   carries a claim-trie root).
//! - A codec [`Transaction`](crate::message::Transaction) the `bitcoin` crate refuses to
//!   read (it is stricter in places, e.g. a witness marker with only empty witnesses), and
//!   a `bitcoin::Transaction` the codec cannot read back (no inputs and no witness: the
//!   empty input count reads as the BIP144 marker, exactly as in Bitcoin Core).
//! - An `addrv2` entry of a known network whose address has the wrong length.
//!
//! Copies: hashes, services, networks and inventory entries are the same 32 or 8 bytes on
//! both sides (no allocation). A `bitcoin` transaction or block becomes codec bytes with
//! one serialization whose buffer the codec keeps (`Bytes::from(Vec)`, no second copy);
//! the other way, `bitcoin` owns its scripts and witnesses in `Vec`s, so they are copied
//! once, straight from the codec's shared buffer. `addrv2` addresses of unknown networks
//! move their `Vec` into `Bytes` without a copy.
//!
//! ```
//! use wire_codec::message::{BlockHeader, InvType, InvVect};
//! use wire_codec::Hash256;
//!
//! // Bitcoin's genesis header, through the bitcoin crate and back.
//! let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Bitcoin);
//! let ours = BlockHeader::from(genesis.header);
//! assert_eq!(Hash256::from(genesis.block_hash()), ours.hash());
//! assert_eq!(bitcoin::block::Header::try_from(ours).unwrap(), genesis.header);
//!
//! // An inventory entry names the same object on both sides.
//! let iv = InvVect::new(InvType::BLOCK, ours.hash());
//! let theirs = bitcoin::p2p::message_blockdata::Inventory::from(iv);
//! assert_eq!(theirs, bitcoin::p2p::message_blockdata::Inventory::Block(genesis.block_hash()));
//! assert_eq!(InvVect::from(theirs), iv);
//! ```

mod addresses;
mod chain;
mod hashes;
mod network;
