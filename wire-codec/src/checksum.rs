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
