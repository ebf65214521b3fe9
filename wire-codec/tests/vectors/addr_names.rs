//! Text forms of BIP155 addresses, as the vectors' `addr` field writes them: dotted IPv4,
//! RFC 5952 IPv6 (also for CJDNS), `<base32>.onion` for Tor and `<base32>.b32.i2p` for I2P.
//!
//! A Tor v3 name carries a two-byte checksum made with SHA3-256, which no dependency of
//! this workspace provides, so a small Keccak is written out here (test code only; checked
//! against the FIPS 202 test values below).

use std::net::{Ipv4Addr, Ipv6Addr};

use wire_codec::message::{AddrV2Entry, NetworkId};

/// The `addr` text of an entry; `None` for a network BIP155 does not define.
pub fn addr_text(e: &AddrV2Entry) -> Option<String> {
    let a = &e.addr[..];
    match e.network {
        NetworkId::IPV4 => {
            let b: [u8; 4] = a.try_into().ok()?;
            Some(Ipv4Addr::from(b).to_string())
        }
        NetworkId::IPV6 | NetworkId::CJDNS => {
            let b: [u8; 16] = a.try_into().ok()?;
            Some(Ipv6Addr::from(b).to_string())
        }
        NetworkId::TORV2 => Some(format!("{}.onion", base32(a))),
        NetworkId::TORV3 => {
            // BIP155 / rend-spec-v3: base32(pubkey | checksum[..2] | version 3), where
            // checksum = SHA3-256(".onion checksum" | pubkey | version).
            let mut pre = b".onion checksum".to_vec();
            pre.extend_from_slice(a);
            pre.push(3);
            let sum = sha3_256(&pre);
            let mut name = a.to_vec();
            name.extend_from_slice(&sum[..2]);
            name.push(3);
            Some(format!("{}.onion", base32(&name)))
        }
        NetworkId::I2P => Some(format!("{}.b32.i2p", base32(a))),
        _ => None,
    }
}

/// RFC 4648 base32, lower case, no padding.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

const ROUND_CONSTANTS: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];
const ROTATIONS: [u32; 24] = [
    1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
];
const PI_LANES: [usize; 24] = [
    10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
];

fn keccak_f(st: &mut [u64; 25]) {
    for rc in ROUND_CONSTANTS {
        let mut c = [0u64; 5];
        for (x, cx) in c.iter_mut().enumerate() {
            *cx = st[x] ^ st[x + 5] ^ st[x + 10] ^ st[x + 15] ^ st[x + 20];
        }
        for x in 0..5 {
            let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotate_left(1);
            for y in 0..5 {
                st[5 * y + x] ^= d;
            }
        }
        let mut carry = st[1];
        for (&lane, &rot) in PI_LANES.iter().zip(ROTATIONS.iter()) {
            let next = st[lane];
            st[lane] = carry.rotate_left(rot);
            carry = next;
        }
        for y in 0..5 {
            let row = [
                st[5 * y],
                st[5 * y + 1],
                st[5 * y + 2],
                st[5 * y + 3],
                st[5 * y + 4],
            ];
            for x in 0..5 {
                st[5 * y + x] = row[x] ^ (!row[(x + 1) % 5] & row[(x + 2) % 5]);
            }
        }
        st[0] ^= rc;
    }
}

/// SHA3-256 (FIPS 202).
pub fn sha3_256(msg: &[u8]) -> [u8; 32] {
    const RATE: usize = 136;
    let mut st = [0u64; 25];
    let mut padded = msg.to_vec();
    padded.push(0x06);
    while padded.len() % RATE != 0 {
        padded.push(0);
    }
    if let Some(last) = padded.last_mut() {
        *last |= 0x80;
    }
    for block in padded.chunks_exact(RATE) {
        for (lane, word) in st.iter_mut().zip(block.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *lane ^= u64::from_le_bytes(w);
        }
        keccak_f(&mut st);
    }
    let mut out = [0u8; 32];
    for (chunk, lane) in out.chunks_exact_mut(8).zip(st.iter()) {
        chunk.copy_from_slice(&lane.to_le_bytes());
    }
    out
}

#[test]
fn sha3_256_matches_fips_202() {
    use crate::support::to_hex;
    assert_eq!(
        to_hex(&sha3_256(b"")),
        "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
    );
    assert_eq!(
        to_hex(&sha3_256(b"abc")),
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
    // 200 bytes: longer than one 136-byte block (NIST's 1600-bit example).
    assert_eq!(
        to_hex(&sha3_256(&[0xa3; 200])),
        "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787"
    );
}

#[test]
fn base32_matches_rfc_4648() {
    assert_eq!(base32(b""), "");
    assert_eq!(base32(b"f"), "my");
    assert_eq!(base32(b"fo"), "mzxq");
    assert_eq!(base32(b"foobar"), "mzxw6ytboi");
}
