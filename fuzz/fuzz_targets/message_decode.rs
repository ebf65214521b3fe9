//! First byte: a known command; the rest: its payload, decoded at several protocol
//! versions; decoded messages must re-encode and read back equal. The checks are in
//! `src/lib.rs` (also replayed on stable by `wire-codec/tests/fuzz_regressions.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    peerwire_fuzz::message_decode(data);
});
