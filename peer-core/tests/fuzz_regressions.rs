//! The `peer` fuzz target's checks on stable Rust: every script saved in
//! `fuzz/regressions/peer/` (inputs that once broke an invariant, and hand-written
//! scripts that reach deep states) runs through `peer_core::fuzzing::fuzz_peer_at`, the
//! function the libFuzzer target calls. A finding is a panic; all of them are collected
//! and reported together.

// Tests and benches take origin instants from the clock (clippy.toml forbids it in
// the crate itself).
#![allow(clippy::disallowed_methods)]

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::time::Instant;

use peer_core::fuzzing::{fuzz_peer_at, FuzzReport};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/peer")
}

/// Runs one script; a panic becomes an error message.
fn run(input: &[u8]) -> Result<FuzzReport, String> {
    catch_unwind(|| fuzz_peer_at(input, Instant::now())).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

#[test]
fn saved_peer_scripts_pass() {
    let dir = regressions_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    let mut established = 0;
    for path in &entries {
        let input = std::fs::read(path).expect("readable regression input");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match run(&input) {
            Ok(report) => established += usize::from(report.established),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    println!(
        "replayed {} saved peer scripts ({established} reached the handshake)",
        entries.len()
    );
    assert!(
        !entries.is_empty(),
        "no scripts under {}",
        regressions_dir().display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The saved scripts are only worth replaying if they get past the handshake.
    assert!(established > 0, "no saved script completes a handshake");
}

/// A script is deterministic apart from its time origin: replaying it gives the same
/// report whatever the origin (the fuzzer relies on this to reproduce findings).
#[test]
fn replays_do_not_depend_on_the_time_origin() {
    let dir = regressions_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("cannot read {}", dir.display());
    };
    let origin = Instant::now();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let input = std::fs::read(&path).expect("readable regression input");
        let (Ok(a), Ok(b)) = (
            catch_unwind(|| fuzz_peer_at(&input, origin)),
            catch_unwind(|| fuzz_peer_at(&input, origin + std::time::Duration::from_secs(3600))),
        ) else {
            continue; // reported by saved_peer_scripts_pass
        };
        assert_eq!(a, b, "{}", path.display());
    }
}
