//! The v2 (BIP324) receive path: arbitrary bytes into a fresh transport of either side
//! (detection, key, garbage, terminator, handshake packets), and arbitrary bytes, or
//! one corrupted byte of genuine packets, into an established session.
//!
//! Checks: never a panic; after an error nothing more is decoded; a frame from an
//! established session is only ever one that was sent, in order (a corrupted packet is
//! never delivered). The same properties run on stable as proptests in
//! `peer-core/tests/transport_v2_props.rs`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use peer_core::transport::{Received, Side, V2Transport};
use wire_codec::Command;

const MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn established() -> (V2Transport, V2Transport) {
    let mut a =
        V2Transport::from_parts(Side::Initiator, MAGIC, 100_000, [1; 32], vec![7; 10]).unwrap();
    let mut b = V2Transport::from_parts(Side::Responder, MAGIC, 100_000, [2; 32], vec![]).unwrap();
    let (mut a_in, mut b_in, mut out) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
    a.start(&mut b_in);
    for _ in 0..3 {
        let _ = b.receive(&mut b_in, &mut a_in).unwrap();
        let _ = a.receive(&mut a_in, &mut out).unwrap();
        b_in.extend_from_slice(&out);
        out.clear();
    }
    assert!(a.is_ready() && b.is_ready());
    (a, b)
}

/// Feeds `bytes` in pieces of `chunk`; returns the frames decoded.
fn feed(t: &mut V2Transport, bytes: &[u8], chunk: usize) -> Vec<(Command, Vec<u8>)> {
    let mut inbox = BytesMut::new();
    let mut out = BytesMut::new();
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        inbox.extend_from_slice(piece);
        loop {
            match t.receive(&mut inbox, &mut out) {
                Ok(Received::Frame(f)) => frames.push((f.header.command, f.payload.to_vec())),
                Ok(_) => break,
                Err(_) => {
                    let mut more = BytesMut::from(&[0u8; 32][..]);
                    assert!(
                        t.receive(&mut more, &mut out).is_err(),
                        "decoded after an error"
                    );
                    return frames;
                }
            }
        }
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode >> 2) + 1;
    match mode & 3 {
        0 | 1 => {
            let side = if mode & 1 == 0 {
                Side::Initiator
            } else {
                Side::Responder
            };
            let mut t = V2Transport::from_parts(side, MAGIC, 1000, [3; 32], vec![]).unwrap();
            t.start(&mut BytesMut::new());
            let frames = feed(&mut t, rest, chunk);
            assert!(frames.is_empty(), "a frame from arbitrary handshake bytes");
        }
        2 => {
            let (_, mut b) = established();
            let _ = feed(&mut b, rest, chunk);
        }
        _ => {
            // Messages from the input (1-byte length, command byte, payload), then one
            // byte flipped at a position the input's last two bytes choose.
            let (mut a, mut b) = established();
            let mut wire = BytesMut::new();
            let mut sent = Vec::new();
            let mut i = 0;
            while i + 2 <= rest.len() {
                let len = usize::from(rest[i]).min(rest.len() - i - 2);
                let cmd = ["ping", "inv", "version", "tx", "zzz"][usize::from(rest[i + 1]) % 5];
                let payload = rest[i + 2..i + 2 + len].to_vec();
                let command = Command::from_static(cmd);
                a.encrypt_message(command, &payload, &mut wire).unwrap();
                sent.push((command, payload));
                i += 2 + len;
            }
            if wire.is_empty() {
                return;
            }
            let pos = match rest {
                [.., hi, lo] => usize::from(u16::from_le_bytes([*lo, *hi])) % wire.len(),
                _ => 0,
            };
            wire[pos] ^= 0x80;
            let got = feed(&mut b, &wire, chunk);
            assert!(
                got.len() <= sent.len() && got[..] == sent[..got.len()],
                "corrupted delivery"
            );
        }
    }
});
