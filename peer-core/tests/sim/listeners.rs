//! btcd TestPeerListeners: every message reaches exactly its listener method, once
//! (behaviour 12).

use bytes::Bytes;
use wire_codec::message::*;
use wire_codec::{Command, Hash256, Network};

use crate::harness::*;

fn header() -> BlockHeader {
    BlockHeader {
        version: 1,
        prev_block: Hash256::ZERO,
        merkle_root: Hash256([2; 32]),
        claim_trie: None,
        time: 1_600_000_000,
        bits: 0x207fffff,
        nonce: 1,
    }
}

fn tx() -> Transaction {
    Transaction::build(
        1,
        &[TxIn {
            prevout: OutPoint {
                txid: Hash256([0xaa; 32]),
                vout: 0,
            },
            script_sig: Bytes::from_static(&[0x51]),
            sequence: u32::MAX,
            witness: vec![],
        }],
        &[TxOut {
            value: 10_000,
            script_pubkey: Bytes::from_static(&[0x51]),
        }],
        0,
    )
}

fn all_messages() -> Vec<Message> {
    let inv = Inventory::new(vec![InvVect::new(InvType::TX, Hash256([4; 32]))]);
    let locator = BlockLocator {
        version: 70016,
        locator: vec![Hash256([5; 32])],
        stop: Hash256::ZERO,
    };
    vec![
        Message::GetAddr,
        Message::Addr(Addr { addresses: vec![] }),
        Message::AddrV2(AddrV2 { addresses: vec![] }),
        Message::Ping(Ping { nonce: 42 }),
        Message::Pong(Pong { nonce: 42 }),
        Message::Alert(Alert {
            payload: Bytes::from_static(b"payload"),
            signature: Bytes::from_static(b"signature"),
        }),
        Message::MemPool,
        Message::Tx(tx()),
        Message::Block(Box::new(Block::new(header(), vec![tx()]))),
        Message::Inv(inv.clone()),
        Message::Headers(Headers {
            headers: vec![header()],
        }),
        Message::NotFound(inv.clone()),
        Message::GetData(inv),
        Message::GetBlocks(locator.clone()),
        Message::GetHeaders(locator),
        Message::GetCFilters(GetCFilters {
            filter_type: 0,
            start_height: 0,
            stop_hash: Hash256::ZERO,
        }),
        Message::GetCFHeaders(GetCFHeaders {
            filter_type: 0,
            start_height: 0,
            stop_hash: Hash256::ZERO,
        }),
        Message::GetCFCheckpt(GetCFCheckpt {
            filter_type: 0,
            stop_hash: Hash256::ZERO,
        }),
        Message::CFilter(CFilter {
            filter_type: 0,
            block_hash: Hash256::ZERO,
            filter: Bytes::from_static(b"payload"),
        }),
        Message::CFHeaders(Box::new(CFHeaders {
            filter_type: 0,
            stop_hash: Hash256::ZERO,
            previous_filter_header: Hash256::ZERO,
            filter_hashes: vec![Hash256([1; 32])],
        })),
        Message::CFCheckpt(CFCheckpt {
            filter_type: 0,
            stop_hash: Hash256::ZERO,
            filter_headers: vec![Hash256([1; 32])],
        }),
        Message::FeeFilter(FeeFilter { feerate: 15_000 }),
        Message::FilterAdd(FilterAdd {
            data: Bytes::from_static(&[1]),
        }),
        Message::FilterClear,
        Message::FilterLoad(FilterLoad {
            filter: Bytes::from_static(&[1]),
            hash_funcs: 10,
            tweak: 0,
            flags: 0,
        }),
        Message::MerkleBlock(Box::new(MerkleBlock {
            header: header(),
            total_transactions: 1,
            hashes: vec![Hash256([3; 32])],
            flags: Bytes::from_static(&[1]),
        })),
        Message::Reject(Box::new(Reject {
            message: "block".into(),
            code: RejectCode::DUPLICATE,
            reason: "dupe block".into(),
            hash: Some(Hash256::ZERO),
        })),
        Message::SendHeaders,
        Message::SendCmpct(SendCmpct {
            announce: false,
            version: 2,
        }),
        Message::GetBlockTxn(GetBlockTxn {
            block_hash: Hash256::ZERO,
            indexes: vec![0, 2],
        }),
        Message::BlockTxn(BlockTxn {
            block_hash: Hash256::ZERO,
            transactions: vec![tx()],
        }),
        Message::Unknown {
            command: Command::from_static("feature"),
            payload: Bytes::from_static(b"payload"),
        },
    ]
}

#[test]
fn every_message_reaches_its_listener_once() {
    let mut cb = config(Network::Mainnet);
    cb.services = ServiceFlags::BLOOM;
    let mut p = Pair::connected(config(Network::Mainnet), cb);
    let msgs = all_messages();
    for (i, m) in msgs.iter().enumerate() {
        p.a.peer.queue_message(m.clone(), Some(i as u64));
    }
    p.drive();
    assert!(!p.b.peer.is_closed(), "{:?}", p.b.peer.disconnect_reason());
    assert_eq!(p.a.rec.sent(), (0..msgs.len() as u64).collect::<Vec<_>>());
    // b's listener saw, after the handshake's verack, exactly these messages in order
    // (its own wtxidrelay/sendaddrv2/verack came first).
    let handshake = ["wtxidrelay", "sendaddrv2", "verack"];
    let got: Vec<&Message> = p.b.rec.messages.iter().skip(handshake.len()).collect();
    assert_eq!(got.len(), msgs.len());
    for (want, got) in msgs.iter().zip(got) {
        assert_eq!(want, got);
    }
    // And on_read fired for each of them.
    let reads =
        p.b.rec
            .recs
            .iter()
            .filter(|r| matches!(r, Rec::Read { error: false, .. }))
            .count();
    assert_eq!(reads, 1 + handshake.len() + msgs.len());
}

/// `on_block` gets the block's bytes as received, zero-copy beside the decoded block;
/// `on_read` and `on_write` get the message (btcd `OnRead`/`OnWrite`).
#[test]
fn block_bytes_and_messages_reach_read_and_write_callbacks() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let block = Block::new(header(), vec![tx()]);
    p.a.peer
        .queue_message(Message::Block(Box::new(block.clone())), None);
    p.a.peer
        .queue_message(Message::Ping(Ping { nonce: 3 }), None);
    p.drive();
    let wire = frame(
        Network::Mainnet,
        70016,
        &Message::Block(Box::new(block.clone())),
    );
    assert_eq!(p.b.rec.block_raw.len(), 1);
    let raw = &p.b.rec.block_raw[0];
    assert_eq!(&raw[..], &wire[24..], "the payload as received");
    let got = p.b.rec.messages.iter().find_map(|m| match m {
        Message::Block(b) => Some(b.clone()),
        _ => None,
    });
    let got = got.unwrap();
    assert_eq!(*got, block);
    // Zero-copy: the transaction's bytes lie inside the raw block.
    let tx_ptr = got.txs[0].raw().as_ptr() as usize;
    assert!(tx_ptr >= raw.as_ptr() as usize && tx_ptr < raw.as_ptr() as usize + raw.len());
    // on_read saw every message b handed on, in order, including the handshake's.
    let read: Vec<String> =
        p.b.rec
            .read_messages
            .iter()
            .map(|m| m.command().to_string())
            .collect();
    assert_eq!(
        read,
        [
            "version",
            "wtxidrelay",
            "sendaddrv2",
            "verack",
            "block",
            "ping"
        ]
    );
    // on_write saw a's messages, the ping with its nonce.
    assert!(p
        .a
        .rec
        .written_messages
        .contains(&Message::Ping(Ping { nonce: 3 })));
    assert!(p
        .a
        .rec
        .written_messages
        .iter()
        .any(|m| matches!(m, Message::Block(_))));
}

/// The message table's listener column (wire-codec `message::MESSAGES`) names methods
/// the `Listener` trait has.
#[test]
fn the_message_table_names_real_listener_methods() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/listener.rs"))
        .expect("src/listener.rs");
    for row in wire_codec::message::MESSAGES {
        assert!(
            src.contains(&format!("fn {}(", row.listener)),
            "{}: no Listener::{}",
            row.command,
            row.listener
        );
    }
}
