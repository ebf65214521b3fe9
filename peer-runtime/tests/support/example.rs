//! Where the example programs the tool tests run are (included with `#[path]` by the
//! tests that start the seed-server as an operator would).

use std::path::PathBuf;

/// `target/<profile>/examples/<name>`, which must exist: `cargo test` builds examples
/// that have unit tests only as test harnesses, so `cargo xtask ci` builds the program
/// first (by hand: `cargo build -p peerwire-runtime --example <name>`).
pub fn example_program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p peerwire-runtime --example {name}` \
         (`cargo xtask ci` does)",
        bin.display()
    );
    bin
}
