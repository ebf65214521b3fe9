//! Property tests of the v2 transport: any messages round-trip in any chunking, also
//! after up to three rekeys of both ciphers (224 packets each) and across them; any one
//! flipped bit yields a typed error (`V2TagMismatch`; or, in a length, which BIP324
//! leaves to the tag, `V2PacketTooLarge` or a wait for bytes the length asks for), never
//! a message built from corrupted bytes, nothing decoded after, never a panic; arbitrary
//! bytes at either end of a handshake never panic.

use bytes::BytesMut;
use peer_core::transport::{Received, Side, V2Transport};
use peer_core::Error;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire_codec::Command;

const MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn ready_pair(seed: u64) -> (V2Transport, V2Transport) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut a = V2Transport::new(Side::Initiator, MAGIC, 100_000, &mut rng, 17).unwrap();
    let mut b = V2Transport::new(Side::Responder, MAGIC, 100_000, &mut rng, 33).unwrap();
    let (mut a_in, mut b_in, mut out) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
    a.start(&mut b_in);
    for _ in 0..3 {
        assert_eq!(b.receive(&mut b_in, &mut a_in).unwrap(), Received::NeedMore);
        assert_eq!(a.receive(&mut a_in, &mut out).unwrap(), Received::NeedMore);
        b_in.extend_from_slice(&out);
        out.clear();
    }
    assert!(a.is_ready() && b.is_ready());
    (a, b)
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        prop::sample::select(vec!["ping", "inv", "tx", "block", "addrv2", "headers"])
            .prop_map(Command::from_static),
        "[a-z]{1,12}".prop_map(|s| Command::new(&s).unwrap()),
    ]
}

fn messages() -> impl Strategy<Value = Vec<(Command, Vec<u8>)>> {
    prop::collection::vec(
        (command(), prop::collection::vec(any::<u8>(), 0..600)),
        1..12,
    )
}

/// `ready_pair` after `skip` pings from the initiator, all read by the responder: both
/// ciphers of that direction are `skip` packets along (rekeyed every 224).
fn advanced_pair(seed: u64, skip: usize) -> (V2Transport, V2Transport) {
    let (mut a, mut b) = ready_pair(seed);
    let mut wire = BytesMut::new();
    for i in 0..skip {
        a.encrypt_message(
            Command::from_static("ping"),
            &(i as u64).to_le_bytes(),
            &mut wire,
        )
        .unwrap();
    }
    let (got, end) = deliver(&mut b, &wire, wire.len().max(1));
    assert_eq!((got.len(), end), (skip, Ok(())));
    (a, b)
}

/// Messages of the given sizes, contents derived from `seed`.
fn sized(seed: u64, sizes: &[usize]) -> Vec<(Command, Vec<u8>)> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let payload = (0..n)
                .map(|j| (seed as usize ^ (i * 31 + j * 7)) as u8)
                .collect();
            (Command::from_static("tx"), payload)
        })
        .collect()
}

/// A message: command and payload.
type Sent = (Command, Vec<u8>);

/// Delivers `wire` in pieces of `chunk` bytes; the frames and how it ended.
fn deliver(t: &mut V2Transport, wire: &[u8], chunk: usize) -> (Vec<Sent>, Result<(), Error>) {
    let mut inbox = BytesMut::new();
    let mut got = Vec::new();
    for piece in wire.chunks(chunk) {
        inbox.extend_from_slice(piece);
        loop {
            match t.receive(&mut inbox, &mut BytesMut::new()) {
                Ok(Received::Frame(f)) => got.push((f.header.command, f.payload.to_vec())),
                Ok(Received::NeedMore) => break,
                Ok(Received::RemoteIsV1) => unreachable!(),
                Err(e) => return (got, Err(e)),
            }
        }
    }
    (got, Ok(()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn messages_round_trip_in_any_chunking(seed in any::<u64>(), msgs in messages(), chunk in 1usize..700) {
        let (mut a, mut b) = ready_pair(seed);
        let mut wire = BytesMut::new();
        for (c, p) in &msgs {
            a.encrypt_message(*c, p, &mut wire).unwrap();
        }
        let (got, end) = deliver(&mut b, &wire, chunk);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn one_corrupted_byte_never_yields_a_corrupted_message(
        seed in any::<u64>(), msgs in messages(), at in any::<prop::sample::Index>(), bit in 0u8..8,
    ) {
        let (mut a, mut b) = ready_pair(seed);
        let mut wire = BytesMut::new();
        let mut ends = Vec::new();
        for (c, p) in &msgs {
            a.encrypt_message(*c, p, &mut wire).unwrap();
            ends.push(wire.len());
        }
        let pos = at.index(wire.len());
        wire[pos] ^= 1 << bit;
        // The corrupted packet and its start.
        let hit = ends.iter().position(|&e| pos < e).unwrap();
        let start = if hit == 0 { 0 } else { ends[hit - 1] };
        let (got, end) = deliver(&mut b, &wire, wire.len());
        prop_assert_eq!(&got[..], &msgs[..hit], "only the packets before the corruption");
        match end {
            Err(Error::V2TagMismatch) | Err(Error::V2PacketTooLarge { .. }) => {}
            // A corrupted length larger than what follows: the transport waits for bytes.
            Ok(()) => prop_assert!(pos < start + 3, "waited although the length was intact"),
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
        // Whatever follows, nothing more is decoded.
        let mut more = BytesMut::from(&[0u8; 64][..]);
        let next = b.receive(&mut more, &mut BytesMut::new());
        prop_assert!(!matches!(next, Ok(Received::Frame(_))));
    }

    #[test]
    fn arbitrary_bytes_into_a_handshake_never_panic(
        seed in any::<u64>(), initiator in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..5000), chunk in 1usize..600,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let side = if initiator { Side::Initiator } else { Side::Responder };
        let mut t = V2Transport::new(side, MAGIC, 1000, &mut rng, 0).unwrap();
        let mut out = BytesMut::new();
        t.start(&mut out);
        let mut inbox = BytesMut::new();
        for piece in bytes.chunks(chunk) {
            inbox.extend_from_slice(piece);
            match t.receive(&mut inbox, &mut out) {
                Ok(Received::Frame(_)) => prop_assert!(false, "a frame from random bytes"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    #[test]
    fn round_trip_across_rekeys_in_any_chunking(
        seed in any::<u64>(),
        skip in 0usize..700,
        sizes in prop::collection::vec(prop_oneof![0usize..300, 300usize..20_000], 1..60),
        chunk in 1usize..9000,
    ) {
        let (mut a, mut b) = advanced_pair(seed, skip);
        let msgs = sized(seed, &sizes);
        let mut wire = BytesMut::new();
        for (c, p) in &msgs {
            a.encrypt_message(*c, p, &mut wire).unwrap();
        }
        let (got, end) = deliver(&mut b, &wire, chunk);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn a_flipped_bit_after_rekeys_is_refused_and_nothing_follows(
        seed in any::<u64>(),
        skip in 200usize..700,
        sizes in prop::collection::vec(0usize..2000, 1..12),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        chunk in 1usize..3000,
    ) {
        let (mut a, mut b) = advanced_pair(seed, skip);
        let msgs = sized(seed, &sizes);
        let mut wire = BytesMut::new();
        let mut ends = Vec::new();
        for (c, p) in &msgs {
            a.encrypt_message(*c, p, &mut wire).unwrap();
            ends.push(wire.len());
        }
        let pos = at.index(wire.len());
        wire[pos] ^= 1 << bit;
        let hit = ends.iter().position(|&e| pos < e).unwrap();
        let start = if hit == 0 { 0 } else { ends[hit - 1] };
        let (got, end) = deliver(&mut b, &wire, chunk);
        prop_assert_eq!(&got[..], &msgs[..hit], "only the packets before the flipped bit");
        match &end {
            Err(Error::V2TagMismatch) => {}
            Err(Error::V2PacketTooLarge { .. }) => prop_assert!(pos < start + 3),
            Ok(()) => prop_assert!(pos < start + 3, "waited although the length was intact"),
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
        if pos >= start + 3 {
            prop_assert_eq!(end, Err(Error::V2TagMismatch));
        }
        let mut more = BytesMut::from(&wire[..]);
        let next = b.receive(&mut more, &mut BytesMut::new());
        prop_assert!(!matches!(next, Ok(Received::Frame(_))));
    }
}
