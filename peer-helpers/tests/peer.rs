//! The helpers on real `peer_core::Peer`s, wired to each other in memory.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use peer_core::{Config, Event, NonceSet, Peer};
use peer_helpers::{
    block_locator, push_addr_v2, push_addresses, push_get_blocks, push_get_headers, push_reject,
    AddrFormat, Error, MessageQueue, RejectOutcome, RequestFilter, RequestOutcome,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire_codec::message::{AddrV2Entry, NetworkId, RejectCode, ServiceFlags};
use wire_codec::{Hash256, Message, Network};

/// Two peers connected through in-memory buffers; `a` dialled `b`.
struct Pair {
    a: Peer,
    b: Peer,
    a_in: BytesMut,
    b_in: BytesMut,
    now: Instant,
    /// What each side's application saw, oldest first.
    a_events: Vec<Event>,
    b_events: Vec<Event>,
}

impl Pair {
    fn new(a_version: u32, b_version: u32) -> Pair {
        // Each side has its own nonce set: sharing one would look like a self-connection.
        let config = |v: u32| {
            let mut c = Config::new(Network::Regtest);
            c.protocol_version = v;
            c.nonces = Some(Arc::new(NonceSet::new()));
            Arc::new(c)
        };
        let now = Instant::now();
        let a = Peer::new_outbound(
            config(a_version),
            "127.0.0.1:18444".parse().unwrap(),
            now,
            1_700_000_000,
            1,
        );
        let b = Peer::new_inbound(
            config(b_version),
            "127.0.0.1:50000".parse().unwrap(),
            now,
            1_700_000_000,
            2,
        );
        Pair {
            a,
            b,
            a_in: BytesMut::new(),
            b_in: BytesMut::new(),
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    /// Moves bytes both ways and drains events until nothing moves.
    fn run(&mut self) {
        for _ in 0..32 {
            let mut moved = false;
            if !self.a.transmit().is_empty() {
                moved = true;
                self.b_in.extend_from_slice(self.a.transmit());
                let n = self.a.transmit().len();
                self.a.advance_transmit(n, self.now);
            }
            self.b.handle_read(&mut self.b_in, self.now);
            if !self.b.transmit().is_empty() {
                moved = true;
                self.a_in.extend_from_slice(self.b.transmit());
                let n = self.b.transmit().len();
                self.b.advance_transmit(n, self.now);
            }
            self.a.handle_read(&mut self.a_in, self.now);
            for (p, log) in [
                (&mut self.a, &mut self.a_events),
                (&mut self.b, &mut self.b_events),
            ] {
                while let Some(ev) = p.poll_event() {
                    moved = true;
                    if matches!(ev, Event::Version(_)) {
                        p.accept_version(self.now);
                    }
                    log.push(ev);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn established(a_version: u32, b_version: u32) -> Pair {
        let mut p = Pair::new(a_version, b_version);
        p.run();
        assert!(
            p.a.handshake_complete() && p.b.handshake_complete(),
            "{:?} {:?} {:?} {:?}",
            p.a.phase(),
            p.b.phase(),
            p.a_events,
            p.b_events
        );
        p.a_events.clear();
        p.b_events.clear();
        p
    }

    fn b_messages(&self) -> Vec<&Message> {
        self.b_events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }
}

fn entries() -> Vec<AddrV2Entry> {
    vec![
        AddrV2Entry::from_ip(
            1_700_000_000,
            ServiceFlags::NETWORK,
            "10.1.2.3".parse().unwrap(),
            8333,
        ),
        AddrV2Entry {
            time: 1_700_000_000,
            services: ServiceFlags::NETWORK,
            network: NetworkId::TORV3,
            addr: vec![0x42; 32].into(),
            port: 8333,
        },
    ]
}

#[test]
fn peers_at_70016_negotiate_addrv2_and_get_every_network() {
    let mut p = Pair::established(0, 0);
    assert!(MessageQueue::wants_addrv2(&p.a));
    assert_eq!(MessageQueue::negotiated_version(&p.a), 70016);
    let cands = entries();
    let sent = push_addresses(&mut p.a, &cands, &mut StdRng::seed_from_u64(1));
    assert_eq!(
        (sent.format, sent.indices),
        (AddrFormat::AddrV2, vec![0, 1])
    );
    p.run();
    match p.b_messages().as_slice() {
        [Message::AddrV2(m)] => assert_eq!(m.addresses, cands),
        other => panic!("b saw {other:?}"),
    }
}

#[test]
fn a_70015_peer_gets_legacy_addr_without_the_onion() {
    let mut p = Pair::established(0, 70015);
    assert!(!MessageQueue::wants_addrv2(&p.a));
    let cands = entries();
    let sent = push_addresses(&mut p.a, &cands, &mut StdRng::seed_from_u64(1));
    assert_eq!((sent.format, sent.indices), (AddrFormat::Addr, vec![0]));
    assert_eq!(
        push_addr_v2(&mut p.a, &cands, &mut StdRng::seed_from_u64(1)),
        Err(Error::AddrV2NotNegotiated)
    );
    p.run();
    match p.b_messages().as_slice() {
        [Message::Addr(m)] => {
            assert_eq!(m.addresses.len(), 1);
            assert_eq!(
                m.addresses[0].socket_addr(),
                "10.1.2.3:8333".parse().unwrap()
            );
        }
        other => panic!("b saw {other:?}"),
    }
}

#[test]
fn get_headers_and_get_blocks_reach_the_peer_once() {
    let mut p = Pair::established(0, 0);
    let mut filter = RequestFilter::new();
    let hash_at = |h: u32| Some(Hash256::sha256d(&h.to_le_bytes()));
    let locator = block_locator(500, hash_at).unwrap();
    for _ in 0..3 {
        let _ = push_get_headers(&mut p.a, &mut filter, locator.clone(), Hash256::ZERO).unwrap();
    }
    assert_eq!(
        push_get_blocks(&mut p.a, &mut filter, locator.clone(), Hash256::ZERO),
        Ok(RequestOutcome::Queued)
    );
    p.run();
    match p.b_messages().as_slice() {
        [Message::GetHeaders(h), Message::GetBlocks(b)] => {
            assert_eq!(h.locator, locator);
            assert_eq!(b.locator, locator);
            assert_eq!(h.version, 70016);
        }
        other => panic!("b saw {other:?}"),
    }
}

#[test]
fn a_waited_reject_is_answered_with_sent_and_arrives() {
    let mut p = Pair::established(0, 0);
    let hash = Hash256([9; 32]);
    let out = push_reject(
        &mut p.a,
        "block",
        RejectCode::INVALID,
        "bad-txns",
        Some(hash),
        Some(11),
    );
    assert_eq!(out, Ok(RejectOutcome::Queued));
    p.run();
    assert!(p.a_events.contains(&Event::Sent(11)), "{:?}", p.a_events);
    match p.b_messages().as_slice() {
        [Message::Reject(r)] => {
            assert_eq!(
                (r.message.as_str(), r.code, r.hash),
                ("block", RejectCode::INVALID, Some(hash))
            );
        }
        other => panic!("b saw {other:?}"),
    }
}

#[test]
fn a_reject_to_a_closed_peer_is_answered_with_failed() {
    let mut p = Pair::established(0, 0);
    p.a.disconnect(peer_core::DisconnectReason::LocalRequest);
    let out = push_reject(
        &mut p.a,
        "tx",
        RejectCode::DUST,
        "dust",
        Some(Hash256::ZERO),
        Some(5),
    );
    assert_eq!(out, Ok(RejectOutcome::Queued));
    let mut events = Vec::new();
    while let Some(ev) = p.a.poll_event() {
        events.push(ev);
    }
    assert!(events.contains(&Event::Failed(5)), "{events:?}");
}

#[test]
fn no_reject_goes_to_a_70001_peer() {
    let mut p = Pair::established(0, 70001);
    assert_eq!(MessageQueue::negotiated_version(&p.a), 70001);
    let out = push_reject(
        &mut p.a,
        "tx",
        RejectCode::DUST,
        "dust",
        Some(Hash256::ZERO),
        Some(5),
    );
    assert_eq!(out, Ok(RejectOutcome::SkippedOldVersion { version: 70001 }));
    assert!(p.a.transmit().is_empty());
    p.run();
    assert!(p.b_messages().is_empty());
}

#[test]
fn a_reject_queued_before_the_handshake_is_sent_after_it() {
    let mut p = Pair::new(0, 0);
    assert!(!p.a.version_known());
    let out = push_reject(
        &mut p.a,
        "ping",
        RejectCode::MALFORMED,
        "early",
        None,
        Some(3),
    );
    assert_eq!(out, Ok(RejectOutcome::Queued));
    p.run();
    assert!(p.a.handshake_complete());
    assert!(p.a_events.contains(&Event::Sent(3)), "{:?}", p.a_events);
    assert!(p
        .b_messages()
        .iter()
        .any(|m| matches!(m, Message::Reject(r) if r.reason == "early")));
}

#[test]
fn the_peer_reports_its_network_limits() {
    let p = Pair::new(0, 0);
    assert_eq!(MessageQueue::limits(&p.a).max_addr, 1_000);
    assert_eq!(MessageQueue::limits(&p.a).max_locator, 500);
}

/// An application that answers `getaddr` from its address book, inside the listener
/// callback that peer-core's `dispatch` calls with `&mut Peer`.
struct AddrServer {
    book: Vec<AddrV2Entry>,
    rng: StdRng,
    answered: usize,
}

impl peer_core::Listener for AddrServer {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        self.answered += push_addresses(peer, &self.book, &mut self.rng).len();
    }
}

#[test]
fn a_listener_answers_getaddr_with_a_sample() {
    let mut p = Pair::established(0, 0);
    let book: Vec<AddrV2Entry> = (0..3_000u32)
        .map(|i| {
            AddrV2Entry::from_ip(
                1_700_000_000,
                ServiceFlags::NETWORK,
                [10, 0, (i >> 8) as u8, i as u8].into(),
                8333,
            )
        })
        .collect();
    let mut app = AddrServer {
        book: book.clone(),
        rng: StdRng::seed_from_u64(3),
        answered: 0,
    };
    // b asks; a's application answers from its callback.
    p.b.queue_message(Message::GetAddr, None);
    p.a_in.extend_from_slice(p.b.transmit());
    let n = p.b.transmit().len();
    p.b.advance_transmit(n, p.now);
    p.a.handle_read(&mut p.a_in, p.now);
    while let Some(ev) = p.a.poll_event() {
        peer_core::dispatch(&mut p.a, ev, &mut app, p.now);
    }
    assert_eq!(app.answered, 1_000);
    p.run();
    match p.b_messages().as_slice() {
        [Message::AddrV2(m)] => {
            assert_eq!(m.addresses.len(), 1_000);
            let distinct: std::collections::HashSet<_> = m.addresses.iter().collect();
            assert_eq!(distinct.len(), 1_000);
            assert!(m.addresses.iter().all(|a| book.contains(a)));
        }
        other => panic!("b saw {other:?}"),
    }
}
