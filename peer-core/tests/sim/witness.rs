//! Witness encoding (btcd `QueueMessageWithEncoding`): blocks and transactions go out
//! without witness to remotes that did not negotiate it (no NODE_WITNESS), and on
//! request.

use bytes::Bytes;
use peer_core::Encoding;
use wire_codec::message::{
    Block, BlockHeader, Message, OutPoint, ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{Hash256, Network};

use crate::harness::*;

fn witness_tx() -> Transaction {
    Transaction::build(
        2,
        &[TxIn {
            prevout: OutPoint {
                txid: Hash256([0xbb; 32]),
                vout: 1,
            },
            script_sig: Bytes::new(),
            sequence: u32::MAX,
            witness: vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])],
        }],
        &[TxOut {
            value: 5_000,
            script_pubkey: Bytes::from_static(&[0x51]),
        }],
        0,
    )
}

fn block() -> Block {
    let header = BlockHeader {
        version: 4,
        prev_block: Hash256::ZERO,
        merkle_root: Hash256::ZERO,
        claim_trie: None,
        time: 0,
        bits: 0x207fffff,
        nonce: 0,
    };
    Block::new(header, vec![witness_tx()])
}

fn pair(b_witness: bool) -> Pair {
    let mut ca = config(Network::Mainnet);
    ca.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let mut cb = config(Network::Mainnet);
    if b_witness {
        cb.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    }
    Pair::connected(ca, cb)
}

fn received_txs(n: &Node) -> Vec<Transaction> {
    n.rec
        .messages
        .iter()
        .flat_map(|m| match m {
            Message::Tx(t) => vec![t.clone()],
            Message::Block(b) => b.txs.clone(),
            _ => vec![],
        })
        .collect()
}

/// A remote without NODE_WITNESS gets the serialization without witness, whatever
/// the application asked for.
#[test]
fn no_witness_to_a_remote_without_it() {
    let mut p = pair(false);
    assert!(!p.a.peer.features().witness);
    p.a.peer.queue_message(Message::Tx(witness_tx()), None);
    p.a.peer
        .queue_message(Message::Block(Box::new(block())), None);
    p.drive();
    let got = received_txs(&p.b);
    assert_eq!(got.len(), 2);
    for t in got {
        assert!(!t.has_witness());
        assert_eq!(t.txid(), witness_tx().txid());
        assert_eq!(t.total_size(), witness_tx().base_size());
    }
}

/// A witness remote gets witnesses by default, and none with `Encoding::Base`.
#[test]
fn witness_by_default_and_base_on_request() {
    let mut p = pair(true);
    assert!(p.a.peer.features().witness);
    p.a.peer.queue_message(Message::Tx(witness_tx()), None);
    p.a.peer
        .queue_message_with_encoding(Message::Tx(witness_tx()), Encoding::Base, Some(1));
    p.a.peer
        .queue_message_with_encoding(Message::Block(Box::new(block())), Encoding::Base, None);
    p.drive();
    let got = received_txs(&p.b);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], witness_tx());
    assert!(got[0].has_witness());
    assert!(!got[1].has_witness() && !got[2].has_witness());
    assert_eq!(p.a.rec.sent(), vec![1]);
}

/// Messages queued before the handshake are encoded after it, by what it negotiated.
#[test]
fn held_messages_follow_the_negotiated_witness_support() {
    let mut ca = config(Network::Mainnet);
    ca.services = ServiceFlags::WITNESS;
    let mut p = Pair::new(ca, config(Network::Mainnet));
    p.a.peer.queue_message(Message::Tx(witness_tx()), None);
    p.drive();
    let got = received_txs(&p.b);
    assert_eq!(got.len(), 1);
    assert!(!got[0].has_witness());
}
