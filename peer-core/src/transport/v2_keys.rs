//! BIP324's session keys: x-only ECDH over the two ElligatorSwift encodings, then
//! HKDF-SHA256 into the session id, four cipher keys and two garbage terminators.
//!
//! Why here and not the `bip324` crate's: the crate derives the same keys but keeps all
//! except the session id private to its own cipher session, which our SIMD cipher
//! ([`v2_cipher`](super::v2_cipher)) replaces. HKDF is a few HMAC-SHA256 calls on `sha2`
//! (already in the tree for v1's checksum); every intermediate value is checked against
//! the BIP's packet vectors and against the crate's session id in the tests.

use secp256k1::ellswift::{ElligatorSwift, ElligatorSwiftParty};
use secp256k1::SecretKey;
use sha2::{Digest, Sha256};

use crate::transport::v2_cipher::DirectionCipher;

/// Bytes of a garbage terminator.
pub(crate) const TERMINATOR_LEN: usize = 16;

/// Everything one end derives from the key exchange, oriented for that end.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct SessionKeys {
    pub(crate) session_id: [u8; 32],
    pub(crate) send_length: [u8; 32],
    pub(crate) send_packet: [u8; 32],
    pub(crate) recv_length: [u8; 32],
    pub(crate) recv_packet: [u8; 32],
    pub(crate) send_terminator: [u8; TERMINATOR_LEN],
    pub(crate) recv_terminator: [u8; TERMINATOR_LEN],
}

impl SessionKeys {
    /// Keys for the end holding `secret` (whose encoding is `ours`) talking to `theirs`.
    pub(crate) fn derive(
        secret: &SecretKey,
        ours: &[u8; 64],
        theirs: &[u8; 64],
        initiator: bool,
        magic: [u8; 4],
    ) -> SessionKeys {
        let shared = shared_secret(secret, ours, theirs, initiator);
        SessionKeys::from_shared_secret(&shared, initiator, magic)
    }

    /// HKDF-SHA256 with salt "bitcoin_v2_shared_secret" ‖ magic over the ECDH secret.
    pub(crate) fn from_shared_secret(
        shared: &[u8; 32],
        initiator: bool,
        magic: [u8; 4],
    ) -> SessionKeys {
        let mut salt = [0u8; 28];
        salt[..24].copy_from_slice(b"bitcoin_v2_shared_secret");
        salt[24..].copy_from_slice(&magic);
        let prk = hmac_sha256(&salt, &[shared]);
        // Every output is 32 bytes: one HKDF-Expand block, HMAC(prk, info ‖ 0x01).
        let expand = |info: &[u8]| hmac_sha256(&prk, &[info, &[1u8]]);
        let initiator_l = expand(b"initiator_L");
        let initiator_p = expand(b"initiator_P");
        let responder_l = expand(b"responder_L");
        let responder_p = expand(b"responder_P");
        let terminators = expand(b"garbage_terminators");
        let mut first = [0u8; TERMINATOR_LEN];
        let mut second = [0u8; TERMINATOR_LEN];
        first.copy_from_slice(&terminators[..TERMINATOR_LEN]);
        second.copy_from_slice(&terminators[TERMINATOR_LEN..]);
        let session_id = expand(b"session_id");
        if initiator {
            SessionKeys {
                session_id,
                send_length: initiator_l,
                send_packet: initiator_p,
                recv_length: responder_l,
                recv_packet: responder_p,
                send_terminator: first,
                recv_terminator: second,
            }
        } else {
            SessionKeys {
                session_id,
                send_length: responder_l,
                send_packet: responder_p,
                recv_length: initiator_l,
                recv_packet: initiator_p,
                send_terminator: second,
                recv_terminator: first,
            }
        }
    }

    /// The cipher for what this end sends.
    pub(crate) fn sender(&self) -> DirectionCipher {
        DirectionCipher::new(self.send_length, self.send_packet)
    }

    /// The cipher for what this end receives.
    pub(crate) fn receiver(&self) -> DirectionCipher {
        DirectionCipher::new(self.recv_length, self.recv_packet)
    }
}

/// BIP324's x-only ECDH: the BIP's tagged hash of both encodings (initiator's first) and
/// the shared x coordinate (libsecp256k1's `ellswift_xdh` with its BIP324 hash).
pub(crate) fn shared_secret(
    secret: &SecretKey,
    ours: &[u8; 64],
    theirs: &[u8; 64],
    initiator: bool,
) -> [u8; 32] {
    let ours = ElligatorSwift::from_array(*ours);
    let theirs = ElligatorSwift::from_array(*theirs);
    let (a, b, party) = if initiator {
        (ours, theirs, ElligatorSwiftParty::A)
    } else {
        (theirs, ours, ElligatorSwiftParty::B)
    };
    ElligatorSwift::shared_secret(a, b, *secret, party, Some(b"bip324_ellswift_xonly_ecdh"))
        .to_secret_bytes()
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`; `key` is at most one block.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a short key) for the HMAC underneath.
    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let got: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }
}
