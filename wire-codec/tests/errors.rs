//! Each error of the codec, produced by the smallest input that shows it, with the facts
//! it carries; and the rules of the command field.

mod support;

use bytes::{Bytes, BytesMut};
use wire_codec::message::{command, Ping, Version};
use wire_codec::{
    checksum, encode_frame, Command, Context, Error, ErrorClass, FrameDecoder, FrameHeader,
    Message, Network, Payload, Reader, HEADER_LEN,
};

fn ctx() -> Context {
    Context::new(Network::Mainnet, 70016)
}

fn decode(command: Command, payload: &[u8]) -> Result<Message, Error> {
    Message::decode(command, Bytes::copy_from_slice(payload), &ctx())
}

/// A frame header for `command` with the given length and checksum fields.
fn header(magic: [u8; 4], command: &[u8; 12], length: u32, sum: [u8; 4]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&magic);
    h.extend_from_slice(command);
    h.extend_from_slice(&length.to_le_bytes());
    h.extend_from_slice(&sum);
    h
}

fn ping_frame(net: Network, nonce: u64) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(
        net.magic(),
        &Message::Ping(Ping { nonce }),
        &Context::new(net, 70016),
        &mut out,
    )
    .expect("ping encodes");
    out
}

#[test]
fn non_canonical_compact_size() {
    for (payload, prefix, value) in [
        (&[0xfd, 0x01, 0x00][..], 0xfd, 1u64),
        (&[0xfd, 0xfc, 0x00][..], 0xfd, 0xfc),
        (&[0xfe, 0xff, 0xff, 0x00, 0x00][..], 0xfe, 0xffff),
        (&[0xff, 0x01, 0, 0, 0, 0, 0, 0, 0][..], 0xff, 1),
    ] {
        let e = decode(command::INV, payload).unwrap_err();
        assert_eq!(e, Error::NonCanonicalCompactSize { prefix, value });
        assert_eq!(e.class().as_str(), "noncanonical_varint");
    }
    // The smallest canonical forms are accepted (and then the entries are missing).
    assert!(matches!(
        decode(command::INV, &[0xfd, 0xfd, 0x00]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn too_many_entries_is_checked_before_the_bytes() {
    // 50,001 inventory entries announced, none present: the count alone is refused.
    let e = decode(command::INV, &[0xfd, 0x51, 0xc3]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyEntries {
                count: 50_001,
                max: 50_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::TooManyEntries);
    // 50,000 announced and none present is merely truncated.
    let e = decode(command::INV, &[0xfd, 0x50, 0xc3]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                needed: 1_800_000,
                available: 0,
                ..
            }
        ),
        "{e:?}"
    );
    // addr: 1,001; headers: 2,001; locator: 501.
    assert!(matches!(
        decode(command::ADDR, &[0xfd, 0xe9, 0x03]),
        Err(Error::TooManyEntries {
            count: 1001,
            max: 1000,
            ..
        })
    ));
    assert!(matches!(
        decode(command::HEADERS, &[0xfd, 0xd1, 0x07]),
        Err(Error::TooManyEntries {
            count: 2001,
            max: 2000,
            ..
        })
    ));
    assert!(matches!(
        decode(command::GETHEADERS, &[0, 0, 0, 0, 0xfd, 0xf5, 0x01]),
        Err(Error::TooManyEntries {
            count: 501,
            max: 500,
            ..
        })
    ));
}

#[test]
fn too_long() {
    // filteradd of 521 bytes: the length alone is refused.
    let e = decode(command::FILTERADD, &[0xfd, 0x09, 0x02]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLong {
                len: 521,
                max: 520,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.class().as_str(), "too_long");
    // filterload of 36,001 bytes.
    assert!(matches!(
        decode(command::FILTERLOAD, &[0xfd, 0xa1, 0x8c]),
        Err(Error::TooLong {
            len: 36_001,
            max: 36_000,
            ..
        })
    ));
    // A user agent of 257 bytes: everything before it present, the text itself not.
    let mut v = vec![0u8; 4 + 8 + 8 + 26 + 26 + 8];
    v.extend_from_slice(&[0xfd, 0x01, 0x01]);
    assert!(matches!(
        decode(command::VERSION, &v),
        Err(Error::TooLong {
            len: 257,
            max: 256,
            ..
        })
    ));
}

#[test]
fn trailing_bytes() {
    let e = decode(command::VERACK, &[0]).unwrap_err();
    assert_eq!(
        e,
        Error::TrailingBytes {
            command: command::VERACK,
            extra: 1
        }
    );
    assert_eq!(e.class().as_str(), "trailing_bytes");
    assert_eq!(
        decode(command::PING, &[0; 10]).unwrap_err(),
        Error::TrailingBytes {
            command: command::PING,
            extra: 2
        }
    );
    // Before BIP31 a ping has no payload at all.
    let old = Context::new(Network::Mainnet, 60000);
    assert!(matches!(
        Message::decode(command::PING, Bytes::from_static(&[0; 8]), &old),
        Err(Error::TrailingBytes { extra: 8, .. })
    ));
}

#[test]
fn truncated_fields_and_frames() {
    let e = decode(command::PING, &[1, 2, 3, 4]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                needed: 8,
                available: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.class().as_str(), "truncated");
    // A length prefix promising more than is there.
    assert!(matches!(
        decode(command::FILTERADD, &[33, 1, 2, 3]),
        Err(Error::Truncated {
            needed: 33,
            available: 3,
            ..
        })
    ));

    // A frame cut short is not an error: the decoder waits and says for how much.
    let frame = ping_frame(Network::Signet, 9);
    let mut dec = FrameDecoder::new(Network::Signet);
    let mut buf = BytesMut::from(&frame[..13]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.bytes_needed(&buf), 11);
    buf.extend_from_slice(&frame[13..28]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert!(dec.pending_header().is_some());
    assert_eq!(dec.bytes_needed(&buf), 4);
    buf.extend_from_slice(&frame[28..]);
    let f = dec.decode(&mut buf).unwrap().expect("whole frame");
    assert_eq!(f.decode(&ctx()), Ok(Message::Ping(Ping { nonce: 9 })));
}

#[test]
fn bad_magic_names_both_magics_and_keeps_failing() {
    let mut buf = ping_frame(Network::Regtest, 1);
    let mut dec = FrameDecoder::new(Network::Mainnet);
    let want = Error::BadMagic {
        expected: Network::Mainnet.magic(),
        actual: Network::Regtest.magic(),
    };
    assert_eq!(dec.decode(&mut buf), Err(want.clone()));
    assert_eq!(want.class().as_str(), "magic");
    assert!(!want.is_frame_local());
    // The stream cannot be resynchronised: the header stays and the error repeats.
    assert_eq!(buf.len(), 32);
    assert_eq!(dec.decode(&mut buf), Err(want));
}

#[test]
fn checksum_mismatch_reports_both_values_and_the_stream_goes_on() {
    let good = ping_frame(Network::Mainnet, 0x0102_0304_0506_0708);
    let mut bad = good.clone();
    bad[20] ^= 0xff;
    let expected = [bad[20], bad[21], bad[22], bad[23]];
    let actual = checksum(&good[HEADER_LEN..]);
    assert_ne!(expected, actual);

    let mut buf = bad;
    buf.extend_from_slice(&good);
    let mut dec = FrameDecoder::new(Network::Mainnet);
    let e = dec.decode(&mut buf).unwrap_err();
    assert_eq!(e, Error::ChecksumMismatch { expected, actual });
    assert_eq!(e.class().as_str(), "checksum");
    assert!(e.is_frame_local());
    // The bad frame was consumed; the good one after it decodes.
    let f = dec.decode(&mut buf).unwrap().expect("second frame");
    assert_eq!(
        f.decode(&ctx()),
        Ok(Message::Ping(Ping {
            nonce: 0x0102_0304_0506_0708
        }))
    );
    assert!(buf.is_empty());
}

#[test]
fn oversize_is_refused_from_the_header_alone() {
    let mut cmd = [0u8; 12];
    cmd[..5].copy_from_slice(b"block");
    for (net, len) in [
        (Network::Mainnet, 4_000_001u32),
        (Network::Mainnet, u32::MAX),
        (Network::LbryMainnet, 8_000_001),
    ] {
        let raw = header(net.magic(), &cmd, len, [0; 4]);
        let mut buf = BytesMut::from(&raw[..]);
        let cap = buf.capacity();
        let mut dec = FrameDecoder::new(net);
        let e = dec.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            Error::PayloadTooLarge {
                len: u64::from(len),
                max: u64::from(net.max_payload())
            }
        );
        assert_eq!(e.class().as_str(), "oversize");
        assert!(!e.is_frame_local());
        // Nothing consumed, nothing reserved.
        assert_eq!((buf.len(), buf.capacity()), (HEADER_LEN, cap));
        assert!(dec.pending_header().is_none());
    }
    // Exactly the maximum is accepted (the decoder then waits for the payload).
    let raw = header(Network::Mainnet.magic(), &cmd, 4_000_000, [0; 4]);
    let mut buf = BytesMut::from(&raw[..]);
    assert_eq!(
        FrameDecoder::new(Network::Mainnet).decode(&mut buf),
        Ok(None)
    );
    // LBRY blocks may be up to 8,000,000 bytes.
    let raw = header(Network::LbryMainnet.magic(), &cmd, 8_000_000, [0; 4]);
    let mut buf = BytesMut::from(&raw[..]);
    assert_eq!(
        FrameDecoder::new(Network::LbryMainnet).decode(&mut buf),
        Ok(None)
    );
}

#[test]
fn malformed() {
    // A headers entry with a transaction count.
    let mut p = vec![1u8];
    p.extend_from_slice(&[0; 80]);
    p.push(1);
    let e = decode(command::HEADERS, &p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                what: "headers",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.class().as_str(), "malformed");
    // An addrv2 IPv4 entry with a 5-byte address.
    let p = [1, 0, 0, 0, 0, 0, 1, 5, 1, 2, 3, 4, 5, 0x20, 0x8d];
    assert!(matches!(
        decode(command::ADDRV2, &p),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn command_field_rules() {
    let field = |s: &[u8]| {
        let mut b = [0u8; 12];
        b[..s.len()].copy_from_slice(s);
        b
    };
    // Printable ASCII then NUL padding.
    assert_eq!(
        Command::from_wire(field(b"verack")).unwrap().as_str(),
        "verack"
    );
    assert_eq!(
        Command::from_wire(*b"abcdefghijkl").unwrap().as_str(),
        "abcdefghijkl"
    );
    // A NUL followed by anything but NUL, and non-printable bytes, are refused.
    for bad in [
        field(b"ver\0ack"),
        field(b"verack\0\0x"),
        field(b"ver\x01ack"),
        field(b"ver\x7fack"),
        field(b"\xffverack"),
    ] {
        let e = Command::from_wire(bad).unwrap_err();
        assert_eq!(e, Error::InvalidCommand { bytes: bad });
        assert_eq!(e.class().as_str(), "malformed");
    }
    // In a frame: refused from the header, and the stream cannot go on.
    let raw = header(
        Network::Mainnet.magic(),
        &field(b"ver\0ack"),
        0,
        checksum(&[]),
    );
    let mut buf = BytesMut::from(&raw[..]);
    let e = FrameDecoder::new(Network::Mainnet)
        .decode(&mut buf)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCommand { .. }));
    assert!(!e.is_frame_local());
    assert_eq!(buf.len(), HEADER_LEN);

    // Names: at most 12 printable characters.
    assert!(Command::new("abcdefghijkl").is_some());
    assert!(Command::new("abcdefghijklm").is_none());
    assert!(Command::new("tab\there").is_none());
    assert_eq!(&command::PING.to_bytes(), &field(b"ping"));
}

/// rust-bitcoin's unknown 12-character command vector: an unknown command fills the whole
/// field (no NUL at all) and comes out as `Unknown` with its payload untouched.
#[test]
fn unknown_twelve_character_command() {
    let dir = support::vectors_dir();
    let v = support::load_vector_files(&dir)
        .into_iter()
        .flat_map(|f| f.vectors)
        .find(|v| v["id"] == "unknown-12char-command-signet")
        .expect("the rbtc vector unknown-12char-command-signet");
    let frame = support::hex_field(&v, "frame_hex").unwrap();
    assert_eq!(&frame[4..16], b"abcdefghijkl");
    let mut buf = BytesMut::from(&frame[..]);
    let f = FrameDecoder::new(Network::Signet)
        .decode(&mut buf)
        .unwrap()
        .expect("whole frame");
    let msg = f.decode(&Context::new(Network::Signet, 70016)).unwrap();
    assert_eq!(Message::min_version(msg.command()), None);
    match &msg {
        Message::Unknown { command, payload } => {
            assert_eq!(command.as_str(), "abcdefghijkl");
            assert_eq!(
                &payload[..],
                &support::hex_field(&v, "payload_hex").unwrap()[..]
            );
        }
        other => panic!("decoded as {other:?}"),
    }
    let mut out = BytesMut::new();
    encode_frame(
        Network::Signet.magic(),
        &msg,
        &Context::new(Network::Signet, 70016),
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..], &frame[..]);
    let parsed = FrameHeader::parse(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
    assert_eq!(parsed.length as usize, frame.len() - HEADER_LEN);
}

/// A user agent of invalid UTF-8 decodes (a peer is never dropped over its user agent),
/// and the decoded message can always be encoded again: the replacement characters never
/// push it past the 256-byte limit.
#[test]
fn invalid_utf8_user_agent_decodes_and_re_encodes() {
    let mut p = vec![0x7f, 0x11, 0x01, 0x00];
    p.extend_from_slice(&[0; 8 + 8 + 26 + 26 + 8]);
    p.extend_from_slice(&[0xfd, 0x00, 0x01]);
    p.extend_from_slice(&[0xff; 256]);
    p.extend_from_slice(&[0; 4]);
    let ctx = ctx();
    let payload = Bytes::from(p);
    let v = Version::decode(&mut Reader::new(&payload), &ctx).unwrap();
    assert!(v.user_agent.len() <= 256);
    assert!(v.user_agent.chars().all(|c| c == '\u{fffd}'));
    assert_eq!(v.user_agent.chars().count(), 85);
    let msg = Message::Version(Box::new(v));
    let mut out = BytesMut::new();
    msg.encode_payload(&mut out, &ctx).unwrap();
    assert_eq!(
        Message::decode(command::VERSION, out.freeze(), &ctx),
        Ok(msg)
    );
}

/// Every class name the vectors use maps from exactly one class.
#[test]
fn class_names_are_the_vectors_names() {
    let names: Vec<&str> = [
        ErrorClass::Magic,
        ErrorClass::Checksum,
        ErrorClass::Oversize,
        ErrorClass::Truncated,
        ErrorClass::NoncanonicalVarint,
        ErrorClass::TooManyEntries,
        ErrorClass::TooLong,
        ErrorClass::TrailingBytes,
        ErrorClass::Malformed,
    ]
    .iter()
    .map(|c| c.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "magic",
            "checksum",
            "oversize",
            "truncated",
            "noncanonical_varint",
            "too_many_entries",
            "too_long",
            "trailing_bytes",
            "malformed"
        ]
    );
}

/// `headers` reads whole records in one pass while every transaction count is the byte
/// 0; a bad count anywhere (first, middle or last record) still gets its precise error,
/// and the headers before it are not mistaken for the whole message.
#[test]
fn headers_bad_transaction_count_at_any_position() {
    let record = |i: u8| {
        let mut r = vec![i; 80];
        r[0] = 1; // version 1
        r
    };
    for bad_at in [0usize, 2, 4] {
        for (count, canonical) in [(&[1u8][..], true), (&[0xfd, 0, 0][..], false)] {
            let mut p = vec![5u8];
            for i in 0..5u8 {
                p.extend_from_slice(&record(i));
                p.extend_from_slice(if usize::from(i) == bad_at {
                    count
                } else {
                    &[0]
                });
            }
            let e = decode(command::HEADERS, &p).unwrap_err();
            if canonical {
                assert!(
                    matches!(
                        e,
                        Error::Malformed {
                            what: "headers",
                            ..
                        }
                    ),
                    "bad count at {bad_at}: {e:?}"
                );
            } else {
                assert!(
                    matches!(e, Error::NonCanonicalCompactSize { .. }),
                    "non-canonical zero at {bad_at}: {e:?}"
                );
            }
        }
    }
    // All counts zero: every header comes back, in order.
    let mut p = vec![5u8];
    for i in 0..5u8 {
        p.extend_from_slice(&record(i));
        p.push(0);
    }
    match decode(command::HEADERS, &p) {
        Ok(Message::Headers(h)) => {
            assert_eq!(h.headers.len(), 5);
            for (i, h) in h.headers.iter().enumerate() {
                assert_eq!(h.prev_block.0, [i as u8; 32]);
                assert_eq!(h.nonce, u32::from_le_bytes([i as u8; 4]));
            }
        }
        other => panic!("{other:?}"),
    }
}

/// The encoder never produces a frame its own decoder (and every other node) must refuse:
/// an unknown-command payload one byte over the limit is refused with the facts, and the
/// output is left as it was; at the limit it encodes and decodes back.
#[test]
fn encoding_a_payload_over_the_limit_is_refused_and_writes_nothing() {
    let mut ctx = ctx();
    ctx.limits.max_payload = 1_000;
    let command = Command::new("xyzzy").unwrap();
    let mut out = BytesMut::from(&b"kept"[..]);
    let over = Message::Unknown {
        command,
        payload: Bytes::from(vec![7u8; 1_001]),
    };
    let err = encode_frame(Network::Mainnet.magic(), &over, &ctx, &mut out).unwrap_err();
    assert_eq!(
        err,
        Error::PayloadTooLarge {
            len: 1_001,
            max: 1_000
        }
    );
    assert_eq!(&out[..], b"kept");

    let at = Message::Unknown {
        command,
        payload: Bytes::from(vec![7u8; 1_000]),
    };
    let n = encode_frame(Network::Mainnet.magic(), &at, &ctx, &mut out).unwrap();
    assert_eq!(n, HEADER_LEN + 1_000);
    let mut dec = FrameDecoder::with_limits(Network::Mainnet.magic(), 1_000);
    let mut wire = out.split_off(4);
    let frame = dec.decode(&mut wire).unwrap().expect("one whole frame");
    assert_eq!(frame.payload.len(), 1_000);
}
