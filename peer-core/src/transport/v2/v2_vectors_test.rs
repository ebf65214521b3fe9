//! BIP324's packet vectors (`shared/vectors/bip324/packet_encoding_test_vectors.csv`),
//! every row and every column, through the functions [`V2Transport`](super::V2Transport)
//! itself runs: [`SessionKeys::derive`] as the handshake calls it, `DirectionCipher::encrypt`
//! as `encrypt_message` calls it, and `read_packet` as `receive` calls it.
//!
//! As in Bitcoin Core's `bip324_tests`: `in_idx` empty decoy packets go first (so rows
//! 223, 448, 673 and 1024 cross one to four rekeys of both ciphers), then the row's
//! contents (`in_contents` repeated `in_multiply` times) with `in_aad` and the ignore bit;
//! the ciphertext must equal `out_ciphertext` (or end with `out_ciphertext_endswith`).
//! A receiver keyed as the sender's remote (the sender's keys swapped) then reads the
//! decoys and the packet back; a flipped bit, a changed AAD or the wrong packet index
//! must fail with `V2TagMismatch`.

use std::path::PathBuf;

use bytes::BytesMut;
use secp256k1::SecretKey;

use super::{read_packet, Packet, Session};
use crate::error::Error;
use crate::transport::v2_cipher::{DirectionCipher, MAX_CONTENTS};
use crate::transport::v2_keys::{shared_secret, SessionKeys};

const MAINNET_MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn rows() -> Vec<std::collections::HashMap<String, String>> {
    let dir = match std::env::var_os("PEERWIRE_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    let path = dir.join("bip324/packet_encoding_test_vectors.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            names
                .iter()
                .zip(l.split(','))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

/// A session that receives what `keys`' owner sends (its remote's view).
fn receiver_of(keys: &SessionKeys) -> Session {
    Session {
        send: DirectionCipher::new(keys.recv_length, keys.recv_packet),
        recv: DirectionCipher::new(keys.send_length, keys.send_packet),
        session_id: keys.session_id,
        pending_len: None,
    }
}

/// Reads `dummies` decoys, then `packet` with `aad`.
fn read_back(
    keys: &SessionKeys,
    dummies: &[BytesMut],
    skip: usize,
    packet: &[u8],
    aad: &[u8],
) -> Result<Option<Packet>, Error> {
    let mut rx = receiver_of(keys);
    for d in dummies.iter().take(skip) {
        let mut buf = d.clone();
        assert!(matches!(
            read_packet(&mut rx, &mut buf, MAX_CONTENTS, &[]),
            Ok(Some(Packet::Decoy))
        ));
        assert!(buf.is_empty());
    }
    let mut buf = BytesMut::from(packet);
    read_packet(&mut rx, &mut buf, MAX_CONTENTS, aad)
}

#[test]
fn every_packet_vector_row_keys_ciphertext_and_read_back() {
    let rows = rows();
    assert_eq!(rows.len(), 7);
    for row in &rows {
        let idx: usize = row["in_idx"].parse().unwrap();
        let secret = SecretKey::from_slice(&hex(&row["in_priv_ours"])).unwrap();
        let ours: [u8; 64] = arr(&row["in_ellswift_ours"]);
        let theirs: [u8; 64] = arr(&row["in_ellswift_theirs"]);
        let initiating = row["in_initiating"] == "1";
        let ignore = row["in_ignore"] == "1";
        let aad = hex(&row["in_aad"]);
        let contents = hex(&row["in_contents"]).repeat(row["in_multiply"].parse().unwrap());

        // Key derivation, every intermediate value.
        let shared = shared_secret(&secret, &ours, &theirs, initiating);
        assert_eq!(shared, arr::<32>(&row["mid_shared_secret"]), "row {idx}");
        let keys = SessionKeys::derive(&secret, &ours, &theirs, initiating, MAINNET_MAGIC);
        let (il, ip, rl, rp) = if initiating {
            (
                keys.send_length,
                keys.send_packet,
                keys.recv_length,
                keys.recv_packet,
            )
        } else {
            (
                keys.recv_length,
                keys.recv_packet,
                keys.send_length,
                keys.send_packet,
            )
        };
        assert_eq!(il, arr::<32>(&row["mid_initiator_l"]), "row {idx}");
        assert_eq!(ip, arr::<32>(&row["mid_initiator_p"]), "row {idx}");
        assert_eq!(rl, arr::<32>(&row["mid_responder_l"]), "row {idx}");
        assert_eq!(rp, arr::<32>(&row["mid_responder_p"]), "row {idx}");
        let send_term: [u8; 16] = arr(&row["mid_send_garbage_terminator"]);
        let recv_term: [u8; 16] = arr(&row["mid_recv_garbage_terminator"]);
        assert_eq!(keys.send_terminator, send_term, "row {idx}");
        assert_eq!(keys.recv_terminator, recv_term, "row {idx}");
        assert_eq!(
            keys.session_id,
            arr::<32>(&row["out_session_id"]),
            "row {idx}"
        );

        // Seek with empty decoys, then the row's packet.
        let mut tx = keys.sender();
        let dummies: Vec<BytesMut> = (0..idx)
            .map(|_| {
                let mut out = BytesMut::new();
                tx.encrypt(&[], true, &[], &mut out).unwrap();
                out
            })
            .collect();
        let mut out = BytesMut::new();
        tx.encrypt(&aad, ignore, &[&contents], &mut out).unwrap();
        let whole = hex(&row["out_ciphertext"]);
        let tail = hex(&row["out_ciphertext_endswith"]);
        if !whole.is_empty() {
            assert_eq!(&out[..], &whole[..], "row {idx}");
        } else {
            assert!(tail.len() >= 16, "row {idx}");
            assert!(out.ends_with(&tail), "row {idx} ciphertext tail");
        }
        assert_eq!(out.len(), contents.len() + 20, "row {idx}");

        // Read back as the remote does.
        match read_back(&keys, &dummies, idx, &out, &aad) {
            Ok(Some(Packet::Decoy)) => assert!(ignore, "row {idx}"),
            Ok(Some(Packet::Genuine(pkt))) => {
                assert!(!ignore, "row {idx}");
                assert_eq!(&pkt[4..], &contents[..], "row {idx}");
            }
            other => panic!("row {idx}: {:?}", other.map(|p| p.is_some())),
        }

        // Damage: a bit in the header, contents or tag; the AAD; the packet index.
        let mut positions = vec![3, out.len() - 1, out.len() - 17];
        positions.push(3 + (out.len() - 3) / 2);
        for (n, pos) in positions.into_iter().enumerate() {
            let mut bad = out.clone();
            bad[pos] ^= 1 << (n % 8);
            assert!(
                matches!(
                    read_back(&keys, &dummies, idx, &bad, &aad),
                    Err(Error::V2TagMismatch)
                ),
                "row {idx} flip at {pos}"
            );
        }
        let mut longer_aad = aad.clone();
        longer_aad.push(0);
        assert!(
            matches!(
                read_back(&keys, &dummies, idx, &out, &longer_aad),
                Err(Error::V2TagMismatch)
            ),
            "row {idx} aad"
        );
        if idx > 0 {
            // One decoy fewer: the length decrypts to garbage (too large, or a short
            // packet that fails), never to the contents.
            let r = read_back(&keys, &dummies, idx - 1, &out, &aad);
            assert!(
                matches!(
                    r,
                    Err(Error::V2TagMismatch) | Err(Error::V2PacketTooLarge { .. }) | Ok(None)
                ),
                "row {idx} wrong index"
            );
        }
    }
}

/// The session id and terminators agree with the `bip324` crate's own derivation (the
/// crate keeps its cipher keys private, so those are checked by the vectors above).
#[test]
fn session_keys_agree_with_the_bip324_crate() {
    use secp256k1::ellswift::{ElligatorSwift, ElligatorSwiftParty};
    for row in rows() {
        let secret = SecretKey::from_slice(&hex(&row["in_priv_ours"])).unwrap();
        let ours: [u8; 64] = arr(&row["in_ellswift_ours"]);
        let theirs: [u8; 64] = arr(&row["in_ellswift_theirs"]);
        let initiating = row["in_initiating"] == "1";
        let (a, b, party) = if initiating {
            (ours, theirs, ElligatorSwiftParty::A)
        } else {
            (theirs, ours, ElligatorSwiftParty::B)
        };
        let crate_keys = bip324::SessionKeyMaterial::from_ecdh(
            ElligatorSwift::from_array(a),
            ElligatorSwift::from_array(b),
            secret,
            party,
            MAINNET_MAGIC,
        )
        .unwrap();
        let keys = SessionKeys::derive(&secret, &ours, &theirs, initiating, MAINNET_MAGIC);
        assert_eq!(keys.session_id, crate_keys.session_id);
    }
}
