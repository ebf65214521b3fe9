//! Responder-side transport detection.
//!
//! A v1 initiator's first message is always `version`, so its first 16 bytes are the
//! network magic, `version` and five NUL bytes. A v2 initiator's first 64 bytes are an
//! ElligatorSwift-encoded public key, indistinguishable from random: as soon as one of
//! the first 16 bytes differs from that prefix the initiator speaks v2 (Bitcoin Core's
//! `V2Transport` decides the same way). One listening port therefore serves both.

/// How many leading bytes decide between v1 and v2.
pub const V1_PREFIX_LEN: usize = 16;

/// What the first bytes of an inbound connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Every byte so far matches the v1 prefix, but fewer than 16 have arrived.
    NeedMore,
    /// The 16 bytes are the v1 prefix: the initiator speaks v1 (plaintext).
    V1,
    /// A byte differs from the v1 prefix: the initiator speaks v2 (BIP324).
    V2,
}

/// Decides from the bytes received so far (the whole buffer, nothing consumed).
///
/// ```
/// use peer_core::transport::{detect, Detected};
/// let magic = [0xfa, 0xbf, 0xb5, 0xda]; // regtest
/// let mut v1 = magic.to_vec();
/// v1.extend_from_slice(b"version\0\0\0\0\0");
/// assert_eq!(detect(magic, &v1[..10]), Detected::NeedMore);
/// assert_eq!(detect(magic, &v1), Detected::V1);
/// assert_eq!(detect(magic, &[0xfa, 0x00]), Detected::V2);
/// ```
pub fn detect(magic: [u8; 4], received: &[u8]) -> Detected {
    let prefix = v1_prefix(magic);
    let n = received.len().min(V1_PREFIX_LEN);
    if received[..n] != prefix[..n] {
        Detected::V2
    } else if n == V1_PREFIX_LEN {
        Detected::V1
    } else {
        Detected::NeedMore
    }
}

/// The 16 bytes every v1 connection starts with on the network of `magic`.
pub fn v1_prefix(magic: [u8; 4]) -> [u8; V1_PREFIX_LEN] {
    let mut p = [0u8; V1_PREFIX_LEN];
    p[..4].copy_from_slice(&magic);
    p[4..11].copy_from_slice(b"version");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

    #[test]
    fn every_prefix_of_v1_needs_more_and_the_whole_is_v1() {
        let p = v1_prefix(MAGIC);
        assert_eq!(detect(MAGIC, &[]), Detected::NeedMore);
        for n in 1..V1_PREFIX_LEN {
            assert_eq!(detect(MAGIC, &p[..n]), Detected::NeedMore, "{n}");
        }
        let mut longer = p.to_vec();
        longer.extend_from_slice(&[0x55; 20]);
        assert_eq!(detect(MAGIC, &longer), Detected::V1);
    }

    #[test]
    fn one_differing_byte_anywhere_in_the_prefix_is_v2() {
        let p = v1_prefix(MAGIC);
        for i in 0..V1_PREFIX_LEN {
            let mut q = p;
            q[i] ^= 0x01;
            assert_eq!(detect(MAGIC, &q[..=i]), Detected::V2, "{i}");
            assert_eq!(detect(MAGIC, &q), Detected::V2, "{i}");
        }
    }

    #[test]
    fn v1_on_another_network_is_v2_here() {
        let other = v1_prefix([0x0b, 0x11, 0x09, 0x07]);
        assert_eq!(detect(MAGIC, &other), Detected::V2);
    }
}
