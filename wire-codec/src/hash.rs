//! 32-byte hashes and double SHA-256.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha256};

/// A 32-byte hash in wire (internal) byte order. `Display` and `FromStr` use the
/// byte-reversed "explorer" order, as every block explorer and RPC does.
///
/// ```
/// use wire_codec::Hash256;
/// let h = Hash256::sha256d(b"hello");
/// let shown = h.to_string();
/// assert_eq!(shown.parse::<Hash256>().unwrap(), h);
/// assert_eq!(Hash256::ZERO.to_string(), "0".repeat(64));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// All zeros (the "no stop hash" value of getblocks/getheaders).
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// SHA-256 applied twice, as Bitcoin hashes everything.
    pub fn sha256d(data: &[u8]) -> Hash256 {
        Hash256(crate::sha256d::sha256d(data))
    }

    /// Double SHA-256 of several slices as if concatenated (used for txids, which skip
    /// the witness parts of the serialization without copying).
    pub fn sha256d_parts(parts: &[&[u8]]) -> Hash256 {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash256(Sha256::digest(h.finalize()).into())
    }

    /// The bytes in wire order.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bytes in display (reversed) order.
    pub fn to_display_bytes(&self) -> [u8; 32] {
        let mut b = self.0;
        b.reverse();
        b
    }

    /// Builds a hash from its display (reversed) byte order.
    pub fn from_display_bytes(mut b: [u8; 32]) -> Hash256 {
        b.reverse();
        Hash256(b)
    }

    /// Lower-case hex of the wire-order bytes.
    pub fn to_internal_hex(&self) -> String {
        to_hex(&self.0)
    }
}

pub(crate) fn to_hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.to_display_bytes()))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHashHex;

impl fmt::Display for InvalidHashHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hash is 64 hex digits")
    }
}

impl std::error::Error for InvalidHashHex {}

impl FromStr for Hash256 {
    type Err = InvalidHashHex;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(InvalidHashHex);
        }
        let mut b = [0u8; 32];
        for (i, out) in b.iter_mut().enumerate() {
            let hi = hex_val(s[2 * i]).ok_or(InvalidHashHex)?;
            let lo = hex_val(s[2 * i + 1]).ok_or(InvalidHashHex)?;
            *out = (hi << 4) | lo;
        }
        Ok(Hash256::from_display_bytes(b))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_known_value() {
        // sha256d("") = 5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456
        assert_eq!(
            Hash256::sha256d(b"").to_internal_hex(),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
        assert_eq!(
            Hash256::sha256d_parts(&[b"ab", b"c"]),
            Hash256::sha256d(b"abc")
        );
    }
}
