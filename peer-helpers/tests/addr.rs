//! push_addresses / push_addr / push_addr_v2: limits, sampling, format choice.

use std::collections::HashSet;

use bytes::BytesMut;
use peer_helpers::{
    push_addr, push_addr_v2, push_addresses, AddrFormat, AddressCandidate, Error, RecordingQueue,
    MAX_ADDR_PER_MSG,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire_codec::message::{AddrV2Entry, NetAddress, NetworkId, ServiceFlags};
use wire_codec::{encode_frame, Context, FrameDecoder, Limits, Message, Network};

fn legacy(i: u32) -> NetAddress {
    let b = i.to_be_bytes();
    let mut a =
        NetAddress::from_socket_addr(([10, b[1], b[2], b[3]], 8333).into(), ServiceFlags::NETWORK);
    a.time = Some(1_600_000_000 + i);
    a
}

fn ipv4(i: u32) -> AddrV2Entry {
    let b = i.to_be_bytes();
    AddrV2Entry::from_ip(
        1_600_000_000 + i,
        ServiceFlags::NETWORK,
        [10, b[1], b[2], b[3]].into(),
        8333,
    )
}

fn other(network: NetworkId, len: usize, i: u32) -> AddrV2Entry {
    let mut addr = vec![0u8; len];
    let b = i.to_be_bytes();
    let n = len.min(4);
    addr[..n].copy_from_slice(&b[..n]);
    AddrV2Entry {
        time: 1_600_000_000 + i,
        services: ServiceFlags::NETWORK,
        network,
        addr: addr.into(),
        port: 8333,
    }
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn queue_with_max(max_addr: usize, addrv2: bool) -> RecordingQueue {
    let q = RecordingQueue::new(70016).with_limits(Limits {
        max_addr,
        ..Limits::default()
    });
    if addrv2 {
        q.with_addrv2()
    } else {
        q
    }
}

fn sent_addr(q: &RecordingQueue) -> Vec<NetAddress> {
    match q.last() {
        Some(Message::Addr(a)) => a.addresses.clone(),
        other => panic!("expected addr, got {other:?}"),
    }
}

fn sent_addrv2(q: &RecordingQueue) -> Vec<AddrV2Entry> {
    match q.last() {
        Some(Message::AddrV2(a)) => a.addresses.clone(),
        other => panic!("expected addrv2, got {other:?}"),
    }
}

#[test]
fn empty_candidate_lists_send_nothing() {
    let mut q = RecordingQueue::new(70016);
    assert!(push_addr(&mut q, &[], &mut rng(1)).is_empty());
    let sent = push_addresses::<_, NetAddress, _>(&mut q, &[], &mut rng(1));
    assert!(sent.is_empty());
    assert_eq!(sent.format, AddrFormat::Addr);
    let mut v2 = RecordingQueue::new(70016).with_addrv2();
    assert_eq!(push_addr_v2(&mut v2, &[], &mut rng(1)), Ok(vec![]));
    assert!(q.messages.is_empty());
    assert!(v2.messages.is_empty());
}

#[test]
fn up_to_the_maximum_all_are_sent_in_order() {
    let cands: Vec<NetAddress> = (0..MAX_ADDR_PER_MSG as u32).map(legacy).collect();
    let mut q = RecordingQueue::new(70016);
    let sent = push_addr(&mut q, &cands, &mut rng(2));
    assert_eq!(sent, cands);
    assert_eq!(sent_addr(&q), cands);
    assert_eq!(q.messages.len(), 1);
    assert_eq!(q.messages[0].1, None, "addr is queued without notification");
}

#[test]
fn over_the_maximum_a_distinct_sample_of_1000_is_sent() {
    for n in [1_001u32, 5_000] {
        let cands: Vec<NetAddress> = (0..n).map(legacy).collect();
        let mut q = RecordingQueue::new(70016);
        let sent = push_addr(&mut q, &cands, &mut rng(u64::from(n)));
        assert_eq!(sent.len(), 1_000);
        assert_eq!(sent_addr(&q), sent);
        let distinct: HashSet<_> = sent.iter().collect();
        assert_eq!(distinct.len(), 1_000);
        let all: HashSet<_> = cands.iter().collect();
        assert!(sent.iter().all(|a| all.contains(a)));
    }
}

#[test]
fn the_sample_depends_on_the_rng() {
    let cands: Vec<NetAddress> = (0..2_000).map(legacy).collect();
    let mut q = RecordingQueue::new(70016);
    let a = push_addr(&mut q, &cands, &mut rng(10));
    let b = push_addr(&mut q, &cands, &mut rng(11));
    let a2 = push_addr(&mut q, &cands, &mut rng(10));
    assert_ne!(a, b);
    assert_eq!(a, a2, "the same seed gives the same sample");
}

#[test]
fn a_smaller_limit_of_the_queue_is_respected_and_a_larger_one_capped() {
    let cands: Vec<NetAddress> = (0..3_000).map(legacy).collect();
    let mut small = queue_with_max(10, false);
    assert_eq!(push_addr(&mut small, &cands, &mut rng(3)).len(), 10);
    let mut large = queue_with_max(50_000, false);
    assert_eq!(push_addr(&mut large, &cands, &mut rng(3)).len(), 1_000);
}

#[test]
fn legacy_peers_get_addr_without_what_addr_cannot_express() {
    let cands = vec![
        ipv4(1),
        other(NetworkId::TORV3, 32, 2),
        AddrV2Entry::from_ip(5, ServiceFlags::NONE, "2001:db8::5".parse().unwrap(), 18444),
        other(NetworkId::I2P, 32, 4),
        other(NetworkId::CJDNS, 16, 5),
        other(NetworkId(99), 20, 6),
        other(NetworkId::TORV2, 10, 7),
    ];
    let mut q = RecordingQueue::new(70016);
    let sent = push_addresses(&mut q, &cands, &mut rng(4));
    assert_eq!(sent.format, AddrFormat::Addr);
    assert_eq!(sent.indices, vec![0, 2]);
    let on_wire = sent_addr(&q);
    assert_eq!(
        on_wire,
        vec![cands[0].to_legacy().unwrap(), cands[2].to_legacy().unwrap()]
    );
    assert_eq!(on_wire[1].port, 18444);
    assert_eq!(on_wire[0].time, Some(1_600_000_001));
}

#[test]
fn addrv2_peers_get_addrv2_with_every_network() {
    let cands = vec![
        ipv4(1),
        other(NetworkId::TORV3, 32, 2),
        other(NetworkId::I2P, 32, 4),
        other(NetworkId::CJDNS, 16, 5),
        other(NetworkId(99), 20, 6),
        other(NetworkId::TORV3, 31, 7), // malformed: wrong length
        other(NetworkId(99), 513, 8),   // longer than BIP155 allows
    ];
    let mut q = RecordingQueue::new(70016).with_addrv2();
    let sent = push_addresses(&mut q, &cands, &mut rng(5));
    assert_eq!(sent.format, AddrFormat::AddrV2);
    assert_eq!(sent.indices, vec![0, 1, 2, 3, 4]);
    assert_eq!(sent_addrv2(&q), cands[..5].to_vec());
}

#[test]
fn legacy_candidates_go_to_addrv2_peers_as_v2_entries() {
    let cands: Vec<NetAddress> = (0..3).map(legacy).collect();
    let mut q = RecordingQueue::new(70016).with_addrv2();
    let sent = push_addresses(&mut q, &cands, &mut rng(6));
    assert_eq!(sent.indices, vec![0, 1, 2]);
    let v2 = sent_addrv2(&q);
    assert!(v2.iter().all(|e| e.network == NetworkId::IPV4));
    assert_eq!(v2[2].to_legacy(), Some(cands[2]));
}

#[test]
fn nothing_expressible_sends_nothing() {
    let cands = vec![other(NetworkId::TORV3, 32, 1), other(NetworkId::I2P, 32, 2)];
    let mut q = RecordingQueue::new(70016);
    let sent = push_addresses(&mut q, &cands, &mut rng(7));
    assert!(sent.is_empty());
    assert!(q.messages.is_empty());
}

#[test]
fn push_addr_v2_needs_sendaddrv2_and_drops_malformed_entries() {
    let cands = vec![
        ipv4(1),
        other(NetworkId::IPV4, 5, 2),
        other(NetworkId::I2P, 32, 3),
    ];
    let mut legacy_peer = RecordingQueue::new(70016);
    assert_eq!(
        push_addr_v2(&mut legacy_peer, &cands, &mut rng(8)),
        Err(Error::AddrV2NotNegotiated)
    );
    assert!(legacy_peer.messages.is_empty());

    let mut q = RecordingQueue::new(70016).with_addrv2();
    let sent = push_addr_v2(&mut q, &cands, &mut rng(8)).unwrap();
    assert_eq!(sent, vec![cands[0].clone(), cands[2].clone()]);
    assert_eq!(sent_addrv2(&q), sent);
}

#[test]
fn sampling_applies_after_leaving_out_inexpressible_addresses() {
    // 1,500 candidates, of which 900 are Tor v3: a legacy peer gets all 600 others.
    let cands: Vec<AddrV2Entry> = (0..1_500)
        .map(|i| {
            if i % 5 < 3 {
                other(NetworkId::TORV3, 32, i)
            } else {
                ipv4(i)
            }
        })
        .collect();
    let mut q = RecordingQueue::new(70016);
    let sent = push_addresses(&mut q, &cands, &mut rng(9));
    assert_eq!(sent.len(), 600);
    assert!(sent.indices.windows(2).all(|w| w[0] < w[1]), "order kept");
    let mut v2 = RecordingQueue::new(70016).with_addrv2();
    assert_eq!(push_addresses(&mut v2, &cands, &mut rng(9)).len(), 1_000);
}

#[test]
fn a_full_sample_encodes_and_decodes_as_a_valid_frame() {
    let net = Network::Mainnet;
    for addrv2 in [false, true] {
        let cands: Vec<AddrV2Entry> = (0..4_000)
            .map(|i| {
                if i % 2 == 0 {
                    ipv4(i)
                } else {
                    other(NetworkId::TORV3, 32, i)
                }
            })
            .collect();
        let mut q = RecordingQueue::new(70016);
        if addrv2 {
            q = q.with_addrv2();
        }
        let sent = push_addresses(&mut q, &cands, &mut rng(12));
        assert_eq!(sent.len(), 1_000);
        let (msg, _) = q.messages.pop().unwrap();
        let ctx = Context::new(net, 70016);
        let mut wire = BytesMut::new();
        encode_frame(net.magic(), &msg, &ctx, &mut wire).unwrap();
        let frame = FrameDecoder::new(net).decode(&mut wire).unwrap().unwrap();
        assert_eq!(frame.decode(&ctx).unwrap(), msg);
    }
}

/// Pearson's chi-square statistic of observed counts against one common expectation.
fn chi_square(counts: &[u64], expected: f64) -> f64 {
    counts
        .iter()
        .map(|&c| {
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

/// The chi-square value with 19 degrees of freedom that chance exceeds with probability
/// 1e-6: the test fails only on real bias.
const CHI2_19_P1E6: f64 = 63.7;

/// btcd's `PushAddrV2Msg` shuffle, reproduced to show the tests catch it: `rand.Shuffle`
/// with a "swap" that copies one element over the other.
#[allow(clippy::almost_swapped)]
fn btcd_addrv2_shuffle(idx: &mut [usize], r: &mut StdRng) {
    for i in (1..idx.len()).rev() {
        let j = rand::Rng::gen_range(r, 0..=i);
        idx[i] = idx[j];
        idx[j] = idx[i];
    }
}

#[test]
fn the_sample_is_uniform_chi_square() {
    const N: usize = 20;
    const K: usize = 5;
    const DRAWS: usize = 20_000;
    let cands: Vec<NetAddress> = (0..N as u32).map(legacy).collect();
    let mut q = queue_with_max(K, false);
    let mut r = rng(0x5eed);
    let mut member = [0u64; N];
    let mut first = [0u64; N];
    for _ in 0..DRAWS {
        let sent = push_addresses(&mut q, &cands, &mut r);
        assert_eq!(sent.len(), K);
        for &i in &sent.indices {
            member[i] += 1;
        }
        first[sent.indices[0]] += 1;
        q.messages.clear();
    }
    let chi_member = chi_square(&member, (DRAWS * K / N) as f64);
    let chi_first = chi_square(&first, (DRAWS / N) as f64);
    assert!(
        chi_member < CHI2_19_P1E6,
        "membership chi2 {chi_member}: {member:?}"
    );
    assert!(
        chi_first < CHI2_19_P1E6,
        "first-position chi2 {chi_first}: {first:?}"
    );

    // The same statistic catches a biased sampler: btcd's PushAddrV2Msg "shuffle", whose
    // swap copies one element over the other, run on the same candidates and seed.
    let mut r = rng(0x5eed);
    let mut member = [0u64; N];
    let mut saw_duplicate = false;
    for _ in 0..DRAWS {
        let mut idx: Vec<usize> = (0..N).collect();
        btcd_addrv2_shuffle(&mut idx, &mut r);
        idx.truncate(K);
        let distinct: HashSet<_> = idx.iter().collect();
        saw_duplicate |= distinct.len() < K;
        for &i in &idx {
            member[i] += 1;
        }
    }
    assert!(saw_duplicate);
    assert!(chi_square(&member, (DRAWS * K / N) as f64) > CHI2_19_P1E6);
}

fn mixed_candidate() -> impl Strategy<Value = AddrV2Entry> {
    (0u32..1_000_000, 0u8..8).prop_map(|(i, kind)| match kind {
        0..=3 => ipv4(i),
        4 => other(NetworkId::TORV3, 32, i),
        5 => other(NetworkId::I2P, 32, i),
        6 => other(NetworkId::TORV3, 20, i), // malformed
        _ => AddrV2Entry::from_ip(i, ServiceFlags::NETWORK, "2001:db8::1".parse().unwrap(), 1),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn push_addr_sends_min_of_count_and_max_distinct_members(
        n in 0u32..2_500,
        max in 1usize..1_200,
        seed in any::<u64>(),
    ) {
        let cands: Vec<NetAddress> = (0..n).map(legacy).collect();
        let mut q = queue_with_max(max, false);
        let sent = push_addr(&mut q, &cands, &mut rng(seed));
        let cap = max.min(MAX_ADDR_PER_MSG);
        prop_assert_eq!(sent.len(), (n as usize).min(cap));
        let distinct: HashSet<_> = sent.iter().collect();
        prop_assert_eq!(distinct.len(), sent.len());
        let all: HashSet<_> = cands.iter().collect();
        prop_assert!(sent.iter().all(|a| all.contains(a)));
        if n as usize <= cap {
            prop_assert_eq!(&sent, &cands);
        }
        if n == 0 {
            prop_assert!(q.messages.is_empty());
        } else {
            prop_assert_eq!(sent_addr(&q), sent);
        }
    }

    #[test]
    fn push_addresses_sends_exactly_the_expressible_sample(
        cands in prop::collection::vec(mixed_candidate(), 0..1_500),
        addrv2 in any::<bool>(),
        max in 1usize..1_100,
        seed in any::<u64>(),
    ) {
        let mut q = queue_with_max(max, addrv2);
        let sent = push_addresses(&mut q, &cands, &mut rng(seed));
        let expressible = cands
            .iter()
            .filter(|c| if addrv2 { c.has_addr_v2() } else { c.has_legacy() })
            .count();
        prop_assert_eq!(sent.len(), expressible.min(max.min(MAX_ADDR_PER_MSG)));
        let distinct: HashSet<_> = sent.indices.iter().collect();
        prop_assert_eq!(distinct.len(), sent.len());
        if sent.is_empty() {
            prop_assert!(q.messages.is_empty());
        } else if addrv2 {
            prop_assert_eq!(sent.format, AddrFormat::AddrV2);
            let expect: Vec<AddrV2Entry> =
                sent.indices.iter().map(|&i| cands[i].to_addr_v2().unwrap()).collect();
            prop_assert_eq!(sent_addrv2(&q), expect);
        } else {
            prop_assert_eq!(sent.format, AddrFormat::Addr);
            let expect: Vec<NetAddress> =
                sent.indices.iter().map(|&i| cands[i].to_legacy().unwrap()).collect();
            prop_assert_eq!(sent_addr(&q), expect);
        }
    }

    #[test]
    fn the_cheap_checks_agree_with_the_conversions(
        network in 0u8..9,
        addr in prop::collection::vec(any::<u8>(), 0..40),
        ip in any::<[u8; 16]>(),
    ) {
        let e = AddrV2Entry {
            time: 1,
            services: ServiceFlags::NETWORK,
            network: NetworkId(network),
            addr: addr.into(),
            port: 1,
        };
        prop_assert_eq!(e.has_legacy(), e.to_legacy().is_some());
        prop_assert_eq!(e.has_addr_v2(), e.to_addr_v2().is_some());
        let mut ip = ip;
        if network == 0 {
            // Make OnionCat addresses likely too.
            ip[..6].copy_from_slice(&[0xfd, 0x87, 0xd8, 0x7e, 0xeb, 0x43]);
        }
        let a = NetAddress {
            time: Some(1),
            services: ServiceFlags::NETWORK,
            ip: ip.into(),
            port: 1,
        };
        prop_assert_eq!(a.has_addr_v2(), a.to_addr_v2().is_some());
        prop_assert!(a.has_legacy());
    }
}
