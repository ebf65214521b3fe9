//! Property tests of the `bitcoin` feature: every conversion round-trips through both
//! crates, and where both sides can serialize a value, the bytes are the same.
//!
//! Runs with `--features bitcoin` (the workspace's `cargo test --workspace` enables it:
//! `benches` depends on the codec with the feature).

#![cfg(feature = "bitcoin")]

use bitcoin::consensus::serialize;
use bitcoin::p2p::address::{AddrV2Message, Address};
use bitcoin::p2p::message_blockdata::Inventory as TheirInv;
use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::Ipv6Addr;
use wire_codec::message::{
    Addr, AddrV2, AddrV2Entry, Block, BlockHeader, Headers, InvType, InvVect, Inventory,
    NetAddress, NetworkId, OutPoint, Payload, ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{Context, Hash256, Network};

fn ctx() -> Context {
    Context::new(Network::Mainnet, 70016)
}

fn encode(p: &impl Payload) -> Vec<u8> {
    let mut out = BytesMut::new();
    p.encode(&mut out, &ctx()).unwrap();
    out.to_vec()
}

fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// A codec transaction that can be read back (at least one input).
fn our_tx() -> impl Strategy<Value = Transaction> {
    let input = (
        hash(),
        any::<u32>(),
        bytes(40),
        any::<u32>(),
        vec(bytes(40), 0..3),
    )
        .prop_map(|(txid, vout, script_sig, sequence, witness)| TxIn {
            prevout: OutPoint { txid, vout },
            script_sig: script_sig.into(),
            sequence,
            witness: witness.into_iter().map(Bytes::from).collect(),
        });
    let output = (any::<i64>(), bytes(40)).prop_map(|(value, s)| TxOut {
        value,
        script_pubkey: s.into(),
    });
    (
        any::<i32>(),
        vec(input, 1..4),
        vec(output, 0..4),
        any::<u32>(),
    )
        .prop_map(|(v, i, o, l)| Transaction::build(v, &i, &o, l))
}

/// A `bitcoin` transaction built from its own types (at least one input).
fn their_tx() -> impl Strategy<Value = bitcoin::Transaction> {
    let input = (
        any::<[u8; 32]>(),
        any::<u32>(),
        bytes(40),
        any::<u32>(),
        vec(bytes(40), 0..3),
    )
        .prop_map(
            |(txid, vout, script_sig, sequence, witness)| bitcoin::TxIn {
                previous_output: bitcoin::OutPoint {
                    txid: Hash256(txid).into(),
                    vout,
                },
                script_sig: bitcoin::ScriptBuf::from_bytes(script_sig),
                sequence: bitcoin::Sequence(sequence),
                witness: bitcoin::Witness::from_slice(&witness),
            },
        );
    let output = (any::<u64>(), bytes(40)).prop_map(|(sat, s)| bitcoin::TxOut {
        value: bitcoin::Amount::from_sat(sat),
        script_pubkey: bitcoin::ScriptBuf::from_bytes(s),
    });
    (
        any::<i32>(),
        vec(input, 1..4),
        vec(output, 0..4),
        any::<u32>(),
    )
        .prop_map(|(v, i, o, l)| bitcoin::Transaction {
            version: bitcoin::transaction::Version(v),
            lock_time: bitcoin::absolute::LockTime::from_consensus(l),
            input: i,
            output: o,
        })
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<i32>(),
        hash(),
        hash(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(version, prev_block, merkle_root, time, bits, nonce)| BlockHeader {
                version,
                prev_block,
                merkle_root,
                claim_trie: None,
                time,
                bits,
                nonce,
            },
        )
}

fn inv_vect() -> impl Strategy<Value = InvVect> {
    // Known types often, any u32 sometimes.
    let kind = prop_oneof![
        3 => prop::sample::select(vec![0u32, 1, 2, 3, 4, 5, 1 | 1 << 30, 2 | 1 << 30, 3 | 1 << 30]),
        1 => any::<u32>(),
    ];
    (kind, hash()).prop_map(|(k, h)| InvVect::new(InvType(k), h))
}

fn net_address() -> impl Strategy<Value = NetAddress> {
    (any::<u32>(), any::<u64>(), any::<[u8; 16]>(), any::<u16>()).prop_map(
        |(time, services, ip, port)| NetAddress {
            time: Some(time),
            services: ServiceFlags(services),
            ip: Ipv6Addr::from(ip),
            port,
        },
    )
}

fn addrv2_entry() -> impl Strategy<Value = AddrV2Entry> {
    let known = prop::sample::select(vec![1u8, 2, 3, 4, 5, 6]).prop_flat_map(|id| {
        let len = NetworkId(id).address_len().unwrap_or(0);
        (Just(id), vec(any::<u8>(), len..=len))
    });
    let unknown = (7u8..=255, bytes(40));
    (
        any::<u32>(),
        any::<u64>(),
        prop_oneof![4 => known, 1 => unknown],
        any::<u16>(),
    )
        .prop_map(|(time, services, (id, addr), port)| AddrV2Entry {
            time,
            services: ServiceFlags(services),
            network: NetworkId(id),
            addr: Bytes::from(addr),
            port,
        })
}

proptest! {
    #[test]
    fn hashes_keep_their_bytes(h in hash()) {
        prop_assert_eq!(Hash256::from(bitcoin::BlockHash::from(h)), h);
        prop_assert_eq!(Hash256::from(bitcoin::Txid::from(h)), h);
        prop_assert_eq!(Hash256::from(bitcoin::Wtxid::from(h)), h);
        prop_assert_eq!(Hash256::from(bitcoin::TxMerkleNode::from(h)), h);
        prop_assert_eq!(Hash256::from(bitcoin::WitnessMerkleNode::from(h)), h);
        prop_assert_eq!(bitcoin::Txid::from(h).to_string(), h.to_string());
    }

    #[test]
    fn our_transactions_round_trip_through_bitcoin(tx in our_tx()) {
        let theirs = bitcoin::Transaction::try_from(&tx).unwrap();
        prop_assert_eq!(Hash256::from(theirs.compute_txid()), tx.txid());
        prop_assert_eq!(Hash256::from(theirs.compute_wtxid()), tx.wtxid());
        prop_assert_eq!(theirs.weight().to_wu() as usize, tx.weight());
        prop_assert_eq!(&serialize(&theirs)[..], &tx.raw()[..]);
        prop_assert_eq!(Transaction::try_from(&theirs).unwrap(), tx);
    }

    #[test]
    fn bitcoin_transactions_round_trip_through_ours(theirs in their_tx()) {
        let ours = Transaction::try_from(&theirs).unwrap();
        prop_assert_eq!(ours.txid(), Hash256::from(theirs.compute_txid()));
        prop_assert_eq!(ours.input_count(), theirs.input.len());
        prop_assert_eq!(ours.output_count(), theirs.output.len());
        for (o, t) in ours.outputs().zip(&theirs.output) {
            prop_assert_eq!(o.value as u64, t.value.to_sat());
        }
        for (o, t) in ours.inputs().zip(&theirs.input) {
            prop_assert_eq!(bitcoin::OutPoint::from(o.prevout), t.previous_output);
            prop_assert_eq!(OutPoint::from(t.previous_output), o.prevout);
            prop_assert_eq!(o.witness.len(), t.witness.len());
        }
        prop_assert_eq!(bitcoin::Transaction::try_from(&ours).unwrap(), theirs);
    }

    #[test]
    fn headers_round_trip_and_hash_alike(hs in vec(header(), 0..5)) {
        let ours = Headers { headers: hs };
        let theirs = Vec::<bitcoin::block::Header>::try_from(&ours).unwrap();
        for (o, t) in ours.headers.iter().zip(&theirs) {
            prop_assert_eq!(o.hash(), Hash256::from(t.block_hash()));
            prop_assert_eq!(serialize(t), o.to_bytes());
        }
        prop_assert_eq!(Headers::from(theirs), ours);
    }

    #[test]
    fn blocks_round_trip_both_ways(h in header(), txs in vec(our_tx(), 0..4)) {
        let ours = Block::new(h, txs);
        let theirs = bitcoin::Block::try_from(&ours).unwrap();
        prop_assert_eq!(serialize(&theirs), encode(&ours));
        let back = Block::try_from(&theirs).unwrap();
        prop_assert_eq!(back.merkle_root(), Hash256::from(
            theirs.compute_merkle_root().unwrap_or(bitcoin::TxMerkleNode::from(Hash256::ZERO))));
        prop_assert_eq!(back, ours);
    }

    #[test]
    fn inventory_round_trips_and_encodes_alike(ivs in vec(inv_vect(), 0..20)) {
        let ours = Inventory::new(ivs);
        let theirs = Vec::<TheirInv>::from(&ours);
        prop_assert_eq!(serialize(&theirs), encode(&ours));
        prop_assert_eq!(Inventory::from(theirs), ours);
    }

    #[test]
    fn addr_round_trips_and_encodes_alike(addrs in vec(net_address(), 0..10)) {
        let ours = Addr { addresses: addrs };
        let theirs = Vec::<(u32, Address)>::from(&ours);
        prop_assert_eq!(serialize(&theirs), encode(&ours));
        prop_assert_eq!(Addr::from(theirs), ours);
    }

    #[test]
    fn addrv2_round_trips_and_encodes_alike(entries in vec(addrv2_entry(), 0..10)) {
        let ours = AddrV2 { addresses: entries };
        let theirs = Vec::<AddrV2Message>::try_from(&ours).unwrap();
        prop_assert_eq!(serialize(&theirs), encode(&ours));
        prop_assert_eq!(AddrV2::from(theirs), ours);
    }

    #[test]
    fn services_keep_every_bit(s in any::<u64>()) {
        let theirs = bitcoin::p2p::ServiceFlags::from(ServiceFlags(s));
        prop_assert_eq!(ServiceFlags::from(theirs), ServiceFlags(s));
    }
}

#[test]
fn every_bitcoin_network_maps_to_the_same_magic() {
    for theirs in [
        bitcoin::Network::Bitcoin,
        bitcoin::Network::Testnet,
        bitcoin::Network::Testnet4,
        bitcoin::Network::Signet,
        bitcoin::Network::Regtest,
    ] {
        let ours = Network::from(theirs);
        assert_eq!(ours.magic(), bitcoin::p2p::Magic::from(theirs).to_bytes());
        assert_eq!(bitcoin::Network::try_from(ours).unwrap(), theirs);
    }
    assert!(bitcoin::Network::try_from(Network::LbryMainnet).is_err());
    assert!(bitcoin::Network::try_from(Network::simnet()).is_err());
}
