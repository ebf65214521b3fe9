//! The v2 transport end to end in memory: two of ours, ours against the `bip324` crate's
//! own blocking `Protocol` (an independent implementation of the handshake loop), and the
//! typed errors for bad input.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use bytes::BytesMut;
use peer_core::transport::{Received, Side, V2Transport, MAX_GARBAGE_LEN};
use peer_core::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;
use wire_codec::Command;

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];
const MAX_PAYLOAD: u32 = 4_000_000;

fn pair(seed: u64, garbage_a: usize, garbage_b: usize) -> (V2Transport, V2Transport) {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = V2Transport::new(Side::Initiator, MAGIC, MAX_PAYLOAD, &mut rng, garbage_a).unwrap();
    let b = V2Transport::new(Side::Responder, MAGIC, MAX_PAYLOAD, &mut rng, garbage_b).unwrap();
    (a, b)
}

/// Commands and payloads received.
type Frames = Vec<(String, Vec<u8>)>;

/// Feeds `bytes` to `t` `chunk` bytes at a time; returns the frames and what it sent back.
fn feed(
    t: &mut V2Transport,
    inbox: &mut BytesMut,
    bytes: &[u8],
    chunk: usize,
) -> Result<(Frames, BytesMut), Error> {
    let mut frames = Vec::new();
    let mut out = BytesMut::new();
    for piece in bytes.chunks(chunk.max(1)) {
        inbox.extend_from_slice(piece);
        loop {
            match t.receive(inbox, &mut out)? {
                Received::Frame(f) => {
                    frames.push((f.header.command.as_str().to_owned(), f.payload.to_vec()))
                }
                Received::NeedMore => break,
                Received::RemoteIsV1 => panic!("unexpected v1"),
            }
        }
    }
    if bytes.is_empty() {
        while let Received::Frame(f) = t.receive(inbox, &mut out)? {
            frames.push((f.header.command.as_str().to_owned(), f.payload.to_vec()))
        }
    }
    Ok((frames, out))
}

/// Runs the handshake, delivering every byte in pieces of `chunk`.
fn handshake(a: &mut V2Transport, b: &mut V2Transport, chunk: usize) -> (BytesMut, BytesMut) {
    let (mut a_in, mut b_in) = (BytesMut::new(), BytesMut::new());
    let mut to_b = BytesMut::new();
    a.start(&mut to_b);
    for _ in 0..10 {
        let (_, to_a) = feed(b, &mut b_in, &to_b, chunk).unwrap();
        let (_, next) = feed(a, &mut a_in, &to_a, chunk).unwrap();
        to_b = next;
        if a.is_ready() && b.is_ready() && to_b.is_empty() {
            break;
        }
    }
    assert!(a.is_ready() && b.is_ready());
    (a_in, b_in)
}

#[test]
fn v2_to_v2_handshake_and_messages_both_ways_across_rekeying() {
    for (chunk, ga, gb) in [
        (usize::MAX, 0, 0),
        (1, 3, 4095),
        (7, 4095, 0),
        (64, 100, 100),
    ] {
        let (mut a, mut b) = pair(chunk as u64, ga, gb);
        let (mut a_in, mut b_in) = handshake(&mut a, &mut b, chunk);
        assert_eq!(a.session_id(), b.session_id());
        assert!(a.session_id().is_some());
        // 600 messages: more than two rekey intervals (224 packets) each way.
        let mut wire = BytesMut::new();
        let mut expect = Vec::new();
        for i in 0..600u32 {
            let cmd = ["ping", "inv", "version", "sendaddrv2", "tx"][i as usize % 5];
            let payload = vec![i as u8; (i as usize * 37) % 300];
            a.encrypt_message(Command::new(cmd).unwrap(), &payload, &mut wire)
                .unwrap();
            expect.push((cmd.to_owned(), payload));
        }
        let (got, _) = feed(&mut b, &mut b_in, &wire, chunk.min(4096)).unwrap();
        assert_eq!(got, expect, "chunk {chunk}");
        let mut back = BytesMut::new();
        b.encrypt_message(Command::from_static("pong"), b"12345678", &mut back)
            .unwrap();
        let (got, _) = feed(&mut a, &mut a_in, &back, chunk).unwrap();
        assert_eq!(got, vec![("pong".to_owned(), b"12345678".to_vec())]);
    }
}

#[test]
fn a_v1_frame_is_encrypted_with_one_copy_and_decodes_to_the_same_message() {
    let (mut a, mut b) = pair(9, 0, 0);
    let (_, mut b_in) = handshake(&mut a, &mut b, usize::MAX);
    let ctx = wire_codec::Context::new(wire_codec::Network::Regtest, 70016);
    for msg in [
        wire_codec::Message::Ping(wire_codec::message::Ping { nonce: 99 }),
        wire_codec::Message::Verack,
    ] {
        let mut frame = BytesMut::new();
        wire_codec::encode_frame(MAGIC, &msg, &ctx, &mut frame).unwrap();
        let mut wire = BytesMut::new();
        a.encrypt_frame(&frame, &mut wire).unwrap();
        b_in.extend_from_slice(&wire);
        let Received::Frame(f) = b.receive(&mut b_in, &mut BytesMut::new()).unwrap() else {
            panic!("no frame")
        };
        assert_eq!(f.into_message(&ctx).unwrap(), msg);
    }
}

#[test]
fn responder_hands_a_v1_initiator_back_untouched() {
    let (_, mut b) = pair(1, 0, 0);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(b"version\0\0\0\0");
    let mut out = BytesMut::new();
    assert_eq!(b.receive(&mut buf, &mut out).unwrap(), Received::NeedMore);
    buf.extend_from_slice(b"\0\x66\0\0\0");
    assert_eq!(b.receive(&mut buf, &mut out).unwrap(), Received::RemoteIsV1);
    assert_eq!(buf.len(), 20, "nothing consumed");
    assert!(out.is_empty(), "nothing sent");
}

#[test]
fn initiator_refuses_a_key_that_is_v1_traffic() {
    let (mut a, _) = pair(2, 0, 0);
    let mut out = BytesMut::new();
    a.start(&mut out);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0x11; 60]);
    assert_eq!(a.receive(&mut buf, &mut out), Err(Error::V2RemoteSpeaksV1));
    assert_eq!(a.receive(&mut buf, &mut out), Err(Error::V2Failed));
}

#[test]
fn garbage_over_4095_bytes_without_terminator_is_refused() {
    let (mut a, mut b) = pair(3, 0, 0);
    let mut to_b = BytesMut::new();
    a.start(&mut to_b);
    let mut b_in = BytesMut::new();
    let (_, to_a) = feed(&mut b, &mut b_in, &to_b, usize::MAX).unwrap();
    // The responder's key and garbage, then more garbage than allowed.
    let mut a_in = BytesMut::new();
    let mut bytes = to_a[..64].to_vec();
    bytes.extend(std::iter::repeat(0x5a).take(MAX_GARBAGE_LEN + 16));
    let r = feed(&mut a, &mut a_in, &bytes, 1000);
    assert_eq!(r.err(), Some(Error::V2GarbageTooLong));
}

#[test]
fn a_flipped_bit_fails_the_tag_and_nothing_after_it_is_decoded() {
    let (mut a, mut b) = pair(4, 0, 0);
    let (_, mut b_in) = handshake(&mut a, &mut b, usize::MAX);
    let mut wire = BytesMut::new();
    for i in 0..3u8 {
        a.encrypt_message(Command::from_static("ping"), &[i; 8], &mut wire)
            .unwrap();
    }
    let second = wire.len() / 3;
    wire[second + 10] ^= 0x04; // inside the second packet's contents
    b_in.extend_from_slice(&wire);
    let mut out = BytesMut::new();
    assert!(matches!(
        b.receive(&mut b_in, &mut out),
        Ok(Received::Frame(_))
    ));
    assert_eq!(b.receive(&mut b_in, &mut out), Err(Error::V2TagMismatch));
    assert_eq!(b.receive(&mut b_in, &mut out), Err(Error::V2Failed));
    assert!(b.is_failed());
}

#[test]
fn a_length_over_the_limit_is_refused_before_its_bytes_arrive() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut a = V2Transport::new(Side::Initiator, MAGIC, MAX_PAYLOAD, &mut rng, 0).unwrap();
    let mut b = V2Transport::new(Side::Responder, MAGIC, 1000, &mut rng, 0).unwrap();
    let (_, mut b_in) = handshake(&mut a, &mut b, usize::MAX);
    // The limit counts the long form's 13 bytes: 1 + 1012 fits 1000 + 13.
    let mut wire = BytesMut::new();
    a.encrypt_message(Command::from_static("block"), &[0u8; 1012], &mut wire)
        .unwrap();
    b_in.extend_from_slice(&wire);
    assert!(matches!(
        b.receive(&mut b_in, &mut BytesMut::new()),
        Ok(Received::Frame(_))
    ));
    // One byte more is refused from the 3 length bytes alone.
    let mut wire = BytesMut::new();
    a.encrypt_message(Command::from_static("block"), &[0u8; 1013], &mut wire)
        .unwrap();
    b_in.extend_from_slice(&wire[..3]);
    assert_eq!(
        b.receive(&mut b_in, &mut BytesMut::new()),
        Err(Error::V2PacketTooLarge {
            len: 1014,
            max: 1013
        })
    );
}

#[test]
fn encrypting_before_the_handshake_is_refused() {
    let (mut a, _) = pair(7, 0, 0);
    assert_eq!(
        a.encrypt_message(Command::from_static("ping"), &[], &mut BytesMut::new()),
        Err(Error::V2NotReady)
    );
}

/// Our transport (as responder, then as initiator) against the `bip324` crate's own
/// blocking `Protocol`, over a Unix socket pair, with garbage and decoys from the crate's
/// side, unassigned message IDs and decoy packets after the handshake.
#[test]
fn ours_against_the_crates_own_protocol_both_roles() {
    for our_side in [Side::Responder, Side::Initiator] {
        let (mut ours_sock, theirs_sock) = UnixStream::pair().unwrap();
        let their_role = match our_side {
            Side::Responder => bip324::Role::Initiator,
            Side::Initiator => bip324::Role::Responder,
        };
        let theirs = std::thread::spawn(move || {
            let reader = std::io::BufReader::new(theirs_sock.try_clone().unwrap());
            let mut p = bip324::io::Protocol::new(
                MAGIC,
                their_role,
                Some(vec![0xab; 300]),
                Some(vec![vec![1, 2, 3], vec![]]),
                reader,
                theirs_sock,
            )
            .unwrap();
            p.write(&bip324::io::Payload::decoy(vec![9; 40])).unwrap();
            p.write(&bip324::io::Payload::genuine(vec![200, 1, 2]))
                .unwrap();
            let mut ping = vec![18u8];
            ping.extend_from_slice(&42u64.to_le_bytes());
            p.write(&bip324::io::Payload::genuine(ping)).unwrap();
            let got = p.read().unwrap();
            got.contents().to_vec()
        });
        let mut rng = StdRng::seed_from_u64(11);
        let mut t = V2Transport::new(our_side, MAGIC, MAX_PAYLOAD, &mut rng, 77).unwrap();
        let mut out = BytesMut::new();
        t.start(&mut out);
        let mut inbox = BytesMut::new();
        let mut frame = None;
        while frame.is_none() {
            ours_sock.write_all(&out).unwrap();
            out.clear();
            let mut chunk = [0u8; 512];
            let n = ours_sock.read(&mut chunk).unwrap();
            assert!(n > 0, "crate closed");
            inbox.extend_from_slice(&chunk[..n]);
            match t.receive(&mut inbox, &mut out).unwrap() {
                Received::Frame(f) => frame = Some(f),
                Received::NeedMore => {}
                Received::RemoteIsV1 => panic!("v1?"),
            }
        }
        let f = frame.unwrap();
        assert_eq!(f.header.command.as_str(), "ping");
        assert_eq!(&f.payload[..], &42u64.to_le_bytes());
        assert!(t.decoys_received() >= 3, "{}", t.decoys_received());
        assert_eq!(t.ignored_messages(), 1);
        t.encrypt_message(Command::from_static("verack"), &[], &mut out)
            .unwrap();
        ours_sock.write_all(&out).unwrap();
        let contents = theirs.join().unwrap();
        let mut expect = vec![0u8];
        expect.extend_from_slice(b"verack\0\0\0\0\0\0");
        assert_eq!(contents, expect);
    }
}

/// The remote (the crate's own sans-IO handshake) sends `decoys` decoy packets before its
/// version packet and we receive them one whole packet per read: the handshake state is
/// kept between reads, so any number of pieces completes (no key work is repeated).
fn decoys_one_per_read(decoys: usize) -> Result<bool, Error> {
    let mut rng = StdRng::seed_from_u64(decoys as u64);
    let mut ours = V2Transport::new(Side::Initiator, MAGIC, MAX_PAYLOAD, &mut rng, 0).unwrap();
    let mut our_bytes = BytesMut::new();
    ours.start(&mut our_bytes);
    let theirs = bip324::Handshake::new(MAGIC, bip324::Role::Responder).unwrap();
    let mut key = [0u8; 64];
    let theirs = theirs.send_key(None, &mut key).unwrap();
    let theirs = theirs
        .receive_key(our_bytes[..64].try_into().unwrap())
        .unwrap();
    let decoy_contents = [7u8; 5];
    let decoy_list: Vec<&[u8]> = (0..decoys).map(|_| &decoy_contents[..]).collect();
    let mut rest =
        vec![
            0u8;
            bip324::Handshake::<bip324::ReceivedKey<'_>>::send_version_len(Some(&decoy_list))
        ];
    let _ = theirs.send_version(&mut rest, Some(&decoy_list)).unwrap();
    let mut inbox = BytesMut::new();
    let mut out = BytesMut::new();
    inbox.extend_from_slice(&key);
    inbox.extend_from_slice(&rest[..16 + 3]); // terminator and the first length
    assert_eq!(ours.receive(&mut inbox, &mut out)?, Received::NeedMore);
    let mut pos = 16 + 3;
    let decoy_len = 5 + 17;
    while pos < rest.len() {
        let end = (pos + decoy_len).min(rest.len());
        inbox.extend_from_slice(&rest[pos..end]);
        pos = end;
        ours.receive(&mut inbox, &mut out)?;
    }
    Ok(ours.is_ready())
}

#[test]
fn handshake_decoys_split_across_reads_all_complete() {
    for decoys in [0, 5, 30, 300] {
        assert_eq!(decoys_one_per_read(decoys), Ok(true), "{decoys} decoys");
    }
}
