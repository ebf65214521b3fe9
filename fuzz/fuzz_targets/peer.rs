//! A `peer_core::Peer` driven by a script of arbitrary bytes: raw and corrupted frames,
//! transfers to and from a well-behaved remote peer in any split, clock steps and jumps
//! to the next deadline, queued messages with notifications, disconnects. The script
//! format and the invariants checked after every step (every notification answered
//! exactly once, one `Disconnected`, no deadline that would make a driver spin) are in
//! `peer_core::fuzzing`. Saved findings are replayed on stable by
//! `peer-core/tests/fuzz_regressions.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    peer_core::fuzzing::fuzz_peer(data);
});
