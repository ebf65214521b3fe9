//! Inventory trickling, the known-inventory filter and block announcements (behaviour 7
//! and the last-block statistics of behaviour 11).

use std::time::Duration;

use wire_codec::message::{BlockHeader, Headers, InvType, InvVect, Inventory, Message};
use wire_codec::{Hash256, Network};

use crate::harness::*;

fn tx(i: u32) -> InvVect {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&i.to_le_bytes());
    InvVect::new(InvType::TX, Hash256(h))
}

fn block(i: u32) -> InvVect {
    InvVect::new(InvType::BLOCK, tx(i).hash)
}

/// The invs `n` received. Both sides negotiate `wtxidrelay`, so transactions queued as
/// `MSG_TX` go out as `MSG_WTX` (tested in `announces_transactions_by_wtxid`); this
/// maps them back so the trickling tests compare with what they queued.
fn invs_received(n: &Node) -> Vec<Vec<InvVect>> {
    n.rec
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::Inv(i) => Some(
                i.inventory
                    .iter()
                    .map(|iv| match iv.kind {
                        InvType::WTX => InvVect::new(InvType::TX, iv.hash),
                        _ => *iv,
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Queued inventory waits for the trickle tick (10 s after the handshake) and goes out
/// in one inv.
#[test]
fn trickles_on_the_tick_in_one_message() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let start = p.now;
    p.run_for(Duration::from_secs(3));
    for i in 0..3 {
        p.a.peer.queue_inventory(tx(i));
    }
    assert_eq!(p.a.peer.pending_inventory(), 3);
    assert_eq!(p.next_timeout(), Some(start + Duration::from_secs(10)));
    p.run_for(Duration::from_secs(6)); // t = 9 s
    assert!(invs_received(&p.b).is_empty());
    p.run_for(Duration::from_secs(1)); // t = 10 s
    assert_eq!(invs_received(&p.b), vec![vec![tx(0), tx(1), tx(2)]]);
    assert_eq!(p.a.peer.pending_inventory(), 0);
    // Sent inventory is known: queueing it again announces nothing.
    for i in 0..3 {
        p.a.peer.queue_inventory(tx(i));
        assert!(p.a.peer.knows_inventory(&tx(i)));
    }
    p.run_for(Duration::from_secs(30));
    assert_eq!(invs_received(&p.b).len(), 1);
}

/// Large batches are split into inv messages of at most 1,000 entries; duplicates go
/// once.
#[test]
fn chunks_at_one_thousand() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    for i in 0..2500 {
        p.a.peer.queue_inventory(tx(i));
    }
    p.a.peer.queue_inventory(tx(2450)); // recent duplicate: still known
    p.run_for(Duration::from_secs(10));
    let got = invs_received(&p.b);
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1000, 1000, 500]
    );
    assert_eq!(got[2][499], tx(2499));
}

/// Inventory the remote announced is not announced back.
#[test]
fn remote_announcements_are_known() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    // A wtxidrelay peer announces transactions by wtxid (BIP339).
    let wtx = |iv: InvVect| InvVect::new(InvType::WTX, iv.hash);
    p.b.peer.queue_message(
        Message::Inv(Inventory::new(vec![wtx(tx(1)), wtx(tx(2))])),
        None,
    );
    p.drive();
    assert!(p.a.peer.knows_inventory(&tx(1)));
    p.a.peer.queue_inventory(tx(1));
    p.a.peer.queue_inventory(tx(3));
    p.a.peer.add_known_inventory(tx(4));
    p.a.peer.queue_inventory(tx(4));
    p.run_for(Duration::from_secs(10));
    assert_eq!(invs_received(&p.b), vec![vec![tx(3)]]);
}

/// The filter remembers the last 1,000 entries, keyed by type and hash.
#[test]
fn known_filter_is_an_mru_of_one_thousand() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    for i in 0..1001 {
        p.a.peer.add_known_inventory(tx(i));
    }
    assert!(!p.a.peer.knows_inventory(&tx(0)));
    assert!(p.a.peer.knows_inventory(&tx(1)));
    assert!(!p
        .a
        .peer
        .knows_inventory(&InvVect::new(InvType::WITNESS_TX, tx(1).hash)));
    // An equal value built separately matches (btcd's pointer-keyed LRU would not).
    let copy = InvVect::new(InvType::TX, Hash256(tx(5).hash.0));
    assert!(p.a.peer.knows_inventory(&copy));
}

/// Block announcements skip the trickle; immediate announcements of any type too.
#[test]
fn blocks_are_announced_immediately() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.a.peer.queue_inventory(block(1));
    p.a.peer
        .queue_inventory(InvVect::new(InvType::WITNESS_BLOCK, tx(2).hash));
    p.a.peer.queue_inventory_immediate(tx(3));
    p.drive();
    assert_eq!(
        invs_received(&p.b),
        vec![
            vec![block(1)],
            vec![InvVect::new(InvType::WITNESS_BLOCK, tx(2).hash)],
            vec![tx(3)]
        ]
    );
    assert_eq!(p.elapsed(), Duration::ZERO);
    // Announced once only.
    p.a.peer.queue_inventory(block(1));
    p.drive();
    assert_eq!(invs_received(&p.b).len(), 3);
}

/// The trickle interval is configurable.
#[test]
fn custom_trickle_interval() {
    let mut ca = config(Network::Mainnet);
    ca.trickle_interval = Duration::from_millis(500);
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    p.a.peer.queue_inventory(tx(1));
    p.run_for(Duration::from_millis(499));
    assert!(invs_received(&p.b).is_empty());
    p.run_for(Duration::from_millis(1));
    assert_eq!(invs_received(&p.b), vec![vec![tx(1)]]);
}

/// Inventory queued during the handshake is sent on the first tick after it (btcd
/// drops it).
#[test]
fn inventory_before_the_handshake_is_kept() {
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    p.a.peer.queue_inventory(tx(1));
    p.a.peer.queue_inventory(block(2));
    p.drive();
    assert_eq!(invs_received(&p.b), vec![vec![block(2)]]);
    p.run_for(Duration::from_secs(10));
    assert_eq!(invs_received(&p.b), vec![vec![block(2)], vec![tx(1)]]);
}

/// Received block invs and headers update the last announced block.
#[test]
fn announcements_update_the_last_announced_block() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    p.b.peer.queue_message(
        Message::Inv(Inventory::new(vec![block(1), tx(9), block(2)])),
        None,
    );
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(block(2).hash));
    let header = BlockHeader {
        version: 1,
        prev_block: block(2).hash,
        merkle_root: Hash256([3; 32]),
        claim_trie: None,
        time: 1,
        bits: 0x207fffff,
        nonce: 0,
    };
    p.b.peer.queue_message(
        Message::Headers(Headers {
            headers: vec![header],
        }),
        None,
    );
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(header.hash()));
    assert_eq!(
        p.a.peer.stats_snapshot(p.now).last_announced_block,
        Some(header.hash())
    );
}

/// The last announced block never moves backwards: a repeated block inv (a getblocks
/// reply) and headers that do not continue from it (a reply to an old locator) leave it.
#[test]
fn the_last_announced_block_never_moves_backwards() {
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    let header = |prev: Hash256, n: u8| BlockHeader {
        version: 1,
        prev_block: prev,
        merkle_root: Hash256([n; 32]),
        claim_trie: None,
        time: 1,
        bits: 0x207fffff,
        nonce: 0,
    };
    let old = header(Hash256::ZERO, 1);
    let tip = header(old.hash(), 2);
    let headers = |hs: Vec<BlockHeader>| Message::Headers(Headers { headers: hs });
    p.b.peer.queue_message(headers(vec![old, tip]), None);
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(tip.hash()));
    // A reply to an old locator: headers from genesis again.
    p.b.peer.queue_message(headers(vec![old]), None);
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(tip.hash()));
    // An inv of blocks: a new one moves it on, an old one (already announced) not.
    let new_block = InvVect::new(InvType::BLOCK, Hash256([7; 32]));
    p.b.peer
        .queue_message(Message::Inv(Inventory::new(vec![new_block])), None);
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(new_block.hash));
    let old_block = InvVect::new(InvType::BLOCK, tip.hash());
    p.a.peer.add_known_inventory(old_block);
    p.b.peer
        .queue_message(Message::Inv(Inventory::new(vec![old_block])), None);
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(new_block.hash));
    // Headers continuing from the older tip, not from the latest announcement, do not.
    let next = header(tip.hash(), 3);
    p.b.peer.queue_message(headers(vec![next]), None);
    p.drive();
    assert_eq!(p.a.peer.last_announced_block(), Some(new_block.hash));
}

/// BIP339: a transaction queued as `MSG_TX` to a peer that negotiated `wtxidrelay` is
/// announced as `MSG_WTX` (Core ignores `MSG_TX` from such peers); with
/// `queue_transaction_inventory` the wtxid is used; without the option, `MSG_TX`.
#[test]
fn announces_transactions_by_wtxid() {
    let raw = |n: &Node| -> Vec<InvVect> {
        n.rec
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::Inv(i) => Some(i.inventory.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
    assert!(p.a.peer.features().wtxid_relay && p.b.peer.features().wtxid_relay);
    p.a.peer.queue_inventory(tx(1));
    p.a.peer
        .queue_transaction_inventory(Hash256([2; 32]), Hash256([3; 32]));
    p.run_for(Duration::from_secs(10));
    assert_eq!(
        raw(&p.b),
        vec![
            InvVect::new(InvType::WTX, tx(1).hash),
            InvVect::new(InvType::WTX, Hash256([3; 32]))
        ]
    );

    // Queued before the handshake: decided when it goes out.
    let mut p = Pair::new(config(Network::Mainnet), config(Network::Mainnet));
    p.a.peer.queue_inventory(tx(4));
    p.a.peer
        .queue_transaction_inventory(Hash256([5; 32]), Hash256([6; 32]));
    p.run_for(Duration::from_secs(10));
    let mut got = raw(&p.b);
    got.sort_by_key(|iv| iv.hash.0);
    assert_eq!(
        got,
        vec![
            InvVect::new(InvType::WTX, tx(4).hash),
            InvVect::new(InvType::WTX, Hash256([6; 32]))
        ]
    );

    // One side does not send wtxidrelay: transactions go by txid.
    let mut ca = config(Network::Mainnet);
    ca.wtxid_relay = false;
    let mut p = Pair::connected(ca, config(Network::Mainnet));
    assert!(!p.a.peer.features().wtxid_relay && !p.b.peer.features().wtxid_relay);
    assert_eq!(p.b.rec.count_msg("wtxidrelay"), 0);
    p.a.peer.queue_inventory(tx(1));
    p.a.peer
        .queue_transaction_inventory(Hash256([2; 32]), Hash256([3; 32]));
    p.b.peer.queue_inventory(tx(7));
    p.run_for(Duration::from_secs(10));
    assert_eq!(
        raw(&p.b),
        vec![tx(1), InvVect::new(InvType::TX, Hash256([2; 32]))]
    );
    assert_eq!(raw(&p.a), vec![tx(7)]);
}
