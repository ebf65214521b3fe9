//! BIP324's own test vectors (`../shared/vectors/bip324/`) through the code paths the v2
//! transport uses: secp256k1's ElligatorSwift decoding and ECDH, and the `bip324` crate's
//! session-key derivation (the function its handshake calls).
//!
//! What the public APIs reach, and what they do not:
//! - ElligatorSwift decode: every row of `ellswift_decode_test_vectors.csv`.
//! - ElligatorSwift inverse: secp256k1 does not expose the inverse map (`xswiftec_inv`),
//!   so every listed preimage `t` of `xswiftec_inv_test_vectors.csv` is checked to decode,
//!   with its `u`, to the row's `x` (the defining property of the inverse), and every row
//!   must list at least one case or be a row where no preimage exists.
//! - Packet encoding: the shared secret's x coordinates and the session id of every row
//!   against the `bip324` crate's key derivation. Every other column (shared secret, the
//!   four keys, both terminators, the ciphertexts across rekeys, reading them back) is
//!   checked through the transport's own functions by the unit test
//!   `transport::v2::v2_vectors_test` (the cipher is crate-internal).

use std::path::PathBuf;

use bip324::SessionKeyMaterial;
use secp256k1::ellswift::{ElligatorSwift, ElligatorSwiftParty};
use secp256k1::{PublicKey, Secp256k1, SecretKey};

const MAINNET_MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

/// Rows of one CSV of `shared/vectors/bip324` (`PEERWIRE_VECTORS` overrides the
/// vectors directory, as for wire-codec's vector tests).
fn vectors(name: &str) -> Vec<Vec<String>> {
    let dir = match std::env::var_os("PEERWIRE_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    let path = dir.join("bip324").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

fn x_of(ellswift: [u8; 64]) -> [u8; 32] {
    let pk = PublicKey::from_ellswift(ElligatorSwift::from_array(ellswift));
    pk.x_only_public_key().0.serialize()
}

#[test]
fn ellswift_decode_vectors() {
    let rows = vectors("ellswift_decode_test_vectors.csv");
    assert!(rows.len() >= 20, "{} rows", rows.len());
    for row in rows {
        assert_eq!(x_of(arr(&row[0])), arr::<32>(&row[1]), "{}", row[2]);
    }
}

#[test]
fn ellswift_inverse_vectors_every_preimage_decodes_to_x() {
    let rows = vectors("xswiftec_inv_test_vectors.csv");
    let mut checked = 0;
    for row in &rows {
        let u: [u8; 32] = arr(&row[0]);
        let x: [u8; 32] = arr(&row[1]);
        for t in &row[2..10] {
            if t.is_empty() {
                continue;
            }
            let mut enc = [0u8; 64];
            enc[..32].copy_from_slice(&u);
            enc[32..].copy_from_slice(&hex(t));
            assert_eq!(x_of(enc), x, "u={} t={t}", row[0]);
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} preimages");
}

#[test]
fn packet_vectors_shared_x_and_session_id() {
    let rows = vectors("packet_encoding_test_vectors.csv");
    assert_eq!(rows.len(), 7);
    let curve = Secp256k1::new();
    for row in rows {
        let idx = &row[0];
        let secret = SecretKey::from_slice(&hex(&row[1])).unwrap();
        let ours = ElligatorSwift::from_array(arr(&row[2]));
        let theirs = ElligatorSwift::from_array(arr(&row[3]));
        let initiating = row[4] == "1";
        // The row's encoding is of the row's key, and the remote's decodes as given.
        let our_x = PublicKey::from_secret_key(&curve, &secret)
            .x_only_public_key()
            .0
            .serialize();
        assert_eq!(our_x, arr::<32>(&row[9]), "row {idx}");
        assert_eq!(x_of(arr(&row[2])), our_x, "row {idx}");
        assert_eq!(x_of(arr(&row[3])), arr::<32>(&row[10]), "row {idx}");
        let (a, b, party) = if initiating {
            (ours, theirs, ElligatorSwiftParty::A)
        } else {
            (theirs, ours, ElligatorSwiftParty::B)
        };
        let keys = SessionKeyMaterial::from_ecdh(a, b, secret, party, MAINNET_MAGIC).unwrap();
        assert_eq!(keys.session_id, arr::<32>(&row[19]), "row {idx}");
    }
}
