//! CompactSize, Bitcoin's variable-length integer, with canonical-form checks.

use bytes::BufMut;

use crate::error::{Error, Result};

/// Encoded length of `value` as a CompactSize (1, 3, 5 or 9 bytes).
///
/// ```
/// use wire_codec::compact_size;
/// assert_eq!(compact_size::len(0xfc), 1);
/// assert_eq!(compact_size::len(0xfd), 3);
/// assert_eq!(compact_size::len(0x1_0000), 5);
/// assert_eq!(compact_size::len(u64::MAX), 9);
/// ```
pub const fn len(value: u64) -> usize {
    match value {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends `value` in its shortest (canonical) form.
///
/// ```
/// let mut out = Vec::new();
/// wire_codec::compact_size::write(&mut out, 515);
/// assert_eq!(out, [0xfd, 0x03, 0x02]);
/// ```
pub fn write<B: BufMut>(out: &mut B, value: u64) {
    match value {
        0..=0xfc => out.put_u8(value as u8),
        0xfd..=0xffff => {
            out.put_u8(0xfd);
            out.put_u16_le(value as u16);
        }
        0x1_0000..=0xffff_ffff => {
            out.put_u8(0xfe);
            out.put_u32_le(value as u32);
        }
        _ => {
            out.put_u8(0xff);
            out.put_u64_le(value);
        }
    }
}

/// Reads a CompactSize from the front of `input`, returning the value and the number of
/// bytes it took. Non-canonical encodings are refused.
///
/// ```
/// use wire_codec::{compact_size, Error};
/// assert_eq!(compact_size::read(&[0xfd, 0x03, 0x02]).unwrap(), (515, 3));
/// assert!(matches!(compact_size::read(&[0xfd, 0x10, 0x00]),
///     Err(Error::NonCanonicalCompactSize { prefix: 0xfd, value: 16 })));
/// ```
pub fn read(input: &[u8]) -> Result<(u64, usize)> {
    let Some(&first) = input.first() else {
        return Err(Error::Truncated {
            what: "CompactSize",
            needed: 1,
            available: 0,
        });
    };
    let (need, min) = match first {
        0..=0xfc => return Ok((u64::from(first), 1)),
        0xfd => (3usize, 0xfdu64),
        0xfe => (5, 0x1_0000),
        0xff => (9, 0x1_0000_0000),
    };
    if input.len() < need {
        return Err(Error::Truncated {
            what: "CompactSize",
            needed: need as u64,
            available: input.len() as u64,
        });
    }
    let value = match need {
        3 => u64::from(u16::from_le_bytes([input[1], input[2]])),
        5 => u64::from(u32::from_le_bytes([input[1], input[2], input[3], input[4]])),
        _ => u64::from_le_bytes([
            input[1], input[2], input[3], input[4], input[5], input[6], input[7], input[8],
        ]),
    };
    if value < min {
        return Err(Error::NonCanonicalCompactSize {
            prefix: first,
            value,
        });
    }
    Ok((value, need))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            write(&mut out, v);
            prop_assert_eq!(out.len(), len(v));
            prop_assert_eq!(read(&out).unwrap(), (v, out.len()));
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = read(&b);
        }
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        assert!(matches!(
            read(&[0xfe, 0xff, 0xff, 0, 0]),
            Err(Error::NonCanonicalCompactSize { prefix: 0xfe, .. })
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            Err(Error::NonCanonicalCompactSize { prefix: 0xff, .. })
        ));
        assert!(matches!(read(&[0xfe, 1]), Err(Error::Truncated { .. })));
    }
}
