//! The frame checksum: the first four bytes of double SHA-256 of the payload.

/// The checksum of an empty payload (`5df6e0e2`), used by every payload-less message.
pub const EMPTY_CHECKSUM: [u8; 4] = [0x5d, 0xf6, 0xe0, 0xe2];

/// First four bytes of `SHA256(SHA256(payload))`.
///
/// The `sha2` crate picks the SHA-NI instructions at run time where the CPU has them.
///
/// ```
/// assert_eq!(wire_codec::checksum(&[]), wire_codec::EMPTY_CHECKSUM);
/// ```
#[inline]
pub fn checksum(payload: &[u8]) -> [u8; 4] {
    if payload.is_empty() {
        return EMPTY_CHECKSUM;
    }
    let h = crate::sha256d::sha256d(payload);
    [h[0], h[1], h[2], h[3]]
}

/// The checksum of the last 8-byte payload a [`FrameDecoder`](crate::FrameDecoder)
/// received and verified, for [`encode_frame_with_memo`](crate::frame::encode_frame_with_memo):
/// a frame whose payload is those same 8 bytes takes it instead of hashing them again.
///
/// A `pong` echoes its `ping`'s 8-byte nonce (BIP31), so a node answering pings hashes
/// every nonce twice, once to check the `ping` and once for the `pong`: two of the four
/// SHA-256 compressions of its round trip. Equality of the payload bytes, not any rule
/// of the protocol, is what makes the reuse right; only a decoder fills a memo, after
/// the checksum matched, so a memo never holds a checksum nobody verified.
///
/// ```
/// use bytes::BytesMut;
/// use wire_codec::frame::encode_frame_with_memo;
/// use wire_codec::message::{Ping, Pong};
/// use wire_codec::{encode_frame, Context, FrameDecoder, Message, Network};
/// let ctx = Context::new(Network::Regtest, 70016);
/// let mut wire = BytesMut::new();
/// encode_frame(Network::Regtest.magic(), &Message::Ping(Ping { nonce: 9 }), &ctx, &mut wire).unwrap();
/// let mut dec = FrameDecoder::new(Network::Regtest);
/// dec.decode(&mut wire).unwrap().unwrap();
/// assert!(dec.memo().holds(&9u64.to_le_bytes()));
///
/// let (mut fast, mut slow) = (BytesMut::new(), BytesMut::new());
/// let pong = Message::Pong(Pong { nonce: 9 });
/// encode_frame_with_memo(Network::Regtest.magic(), &pong, &ctx, &mut fast, dec.memo()).unwrap();
/// encode_frame(Network::Regtest.magic(), &pong, &ctx, &mut slow).unwrap();
/// assert_eq!(fast, slow);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumMemo {
    /// The payload and its verified checksum; `None` until a decoder fills it.
    entry: Option<([u8; MEMO_PAYLOAD], [u8; 4])>,
}

/// The payload size a [`ChecksumMemo`] remembers: a `ping`'s and a `pong`'s.
pub const MEMO_PAYLOAD: usize = 8;

impl ChecksumMemo {
    /// An empty memo: every checksum is computed.
    pub const EMPTY: ChecksumMemo = ChecksumMemo { entry: None };

    /// Remembers a verified checksum (decoders only: `checksum` must be the payload's).
    #[inline]
    pub(crate) fn remember(&mut self, payload: &[u8], checksum: [u8; 4]) {
        if let Ok(p) = <[u8; MEMO_PAYLOAD]>::try_from(payload) {
            self.entry = Some((p, checksum));
        }
    }

    /// Whether it holds the checksum of exactly `payload`.
    #[inline]
    pub fn holds(&self, payload: &[u8]) -> bool {
        self.entry.is_some_and(|(p, _)| p[..] == *payload)
    }

    /// The checksum of `payload`: the remembered one when the payload is the same
    /// bytes, computed otherwise.
    #[inline]
    pub fn checksum(&self, payload: &[u8]) -> [u8; 4] {
        match self.entry {
            Some((p, sum)) if p[..] == *payload => sum,
            _ => checksum(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_empty_memo_computes() {
        assert_eq!(
            ChecksumMemo::EMPTY.checksum(&[1, 2, 3]),
            checksum(&[1, 2, 3])
        );
        assert!(!ChecksumMemo::EMPTY.holds(&[0; 8]));
    }

    #[test]
    fn only_eight_byte_payloads_are_remembered() {
        let mut m = ChecksumMemo::default();
        m.remember(&[1; 7], checksum(&[1; 7]));
        m.remember(&[1; 9], checksum(&[1; 9]));
        assert_eq!(m, ChecksumMemo::EMPTY);
    }

    proptest! {
        /// Whatever was remembered last, the memo's answer is the payload's checksum.
        #[test]
        fn the_memo_answers_what_hashing_would(
            seen in proptest::collection::vec(any::<[u8; 8]>(), 0..4),
            asked in proptest::collection::vec(0u8..4, 0..12),
        ) {
            let mut m = ChecksumMemo::default();
            for p in &seen {
                m.remember(p, checksum(p));
            }
            let mut payload = [0u8; 8];
            if let Some(last) = seen.last() {
                payload = *last;
            }
            for a in asked {
                payload[0] = payload[0].wrapping_add(a);
                prop_assert_eq!(m.checksum(&payload), checksum(&payload));
                prop_assert_eq!(m.checksum(&payload[..5]), checksum(&payload[..5]));
            }
        }
    }
}
