//! `cargo xtask`: peerwire's task runner (std only).
//!
//! | task | what it does |
//! |---|---|
//! | `ci` | fmt check, clippy (warnings denied), every test, docs (warnings denied), `cargo package` of every library, the wire vectors, interop with a real node |
//! | `interop` | starts the bcoin oracle on 127.0.0.1, runs the interop tests against it, stops it |
//! | `demo` | release build, seed-server on 127.0.0.1, peer-bench with 5,000 peers for ~20 s, prints the table; then peerwire-seeder crawling a sim-net network and answering DNS |
//! | `bench` | criterion benches + a quick peer-bench; writes `target/bench-report.md` and SVG plots |
//! | `release` | release builds of the tools into `dist/` with a systemd unit for the seed-server and `SHA256SUMS`; `cargo package` check of each library |
//! | `package` | `cargo package` of every library, each built alone from its `.crate` (also a `ci` step) |
//! | `fuzz` | runs every fuzz target for `--seconds N` each |

#![forbid(unsafe_code)]

mod bench;
mod cmd;
mod interop;
mod release;
mod seeder;

use std::process::ExitCode;

use cmd::{cargo, workspace_root, Failure};

const USAGE: &str = "usage: cargo xtask <task> [options]

tasks:
  ci [--no-interop]        fmt, clippy, tests, docs, vectors, interop (everything CI runs)
  interop                  start the bcoin oracle, run the interop tests, stop it
  demo [--peers N] [--seconds S] [--sim-nodes N] [--seeder-seconds S]
                           seed-server + peer-bench on 127.0.0.1 (default 5000 peers, 20 s),
                           then peerwire-seeder on a sim-net network (default 3000 nodes, 15 s)
  bench [--quick]          criterion benches + quick peer-bench -> target/bench-report.md
  release                  release builds into dist/ with a systemd unit for seed-server and
                           SHA256SUMS; cargo package checks
  package                  cargo package of every library, each built alone (a ci step)
  fuzz [--seconds N] [--target NAME]
                           run each fuzz target (or NAME) N seconds, default 60 (needs
                           cargo-fuzz + nightly); seeds empty corpora from the vectors
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match task.as_str() {
        "ci" => ci(rest),
        "interop" => interop::run(),
        "demo" => bench::demo(rest),
        "bench" => bench::bench(rest),
        "release" => release::run(),
        "package" => release::package_libraries(),
        "fuzz" => release::fuzz(rest),
        "-V" | "--version" => {
            println!("xtask {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("unknown task {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Everything CI checks, in the order that fails fastest.
fn ci(args: &[String]) -> Result<(), Failure> {
    let interop = !args.iter().any(|a| a == "--no-interop");
    let root = workspace_root();
    std::env::set_current_dir(&root).map_err(|e| Failure(format!("cd {root:?}: {e}")))?;

    step("cargo fmt --check");
    cargo(&["fmt", "--all", "--", "--check"], &[])?;

    step("cargo clippy (warnings denied)");
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;

    seeder::ensure_dig();
    // peer-runtime's tools test runs the seed-server as an operator would; `cargo test`
    // builds that example only as a test harness (it has unit tests), so build the
    // program itself first.
    step("cargo build --example seed-server (for the tools test)");
    cargo(
        &[
            "build",
            "-p",
            "peerwire-runtime",
            "--example",
            "seed-server",
        ],
        &[],
    )?;
    step("cargo test --workspace");
    cargo(&["test", "--workspace"], &[])?;

    step("simulation suite over the v2 (BIP324) transport");
    cargo(
        &["test", "-p", "peerwire-core", "--test", "sim"],
        &[("PEERWIRE_SIM_TRANSPORT", "v2")],
    )?;

    step("cargo doc (warnings denied)");
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;

    step("cargo package (every library, built alone from its .crate)");
    release::package_libraries()?;

    step("wire vectors");
    cargo(
        &[
            "test",
            "-p",
            "peerwire-codec",
            "--test",
            "vectors",
            "--",
            "--nocapture",
        ],
        &[],
    )?;

    if interop {
        step("interop with a real node (bcoin regtest on 127.0.0.1)");
        interop::run()?;
    }
    step("ci: all green");
    Ok(())
}

fn step(name: &str) {
    println!("\n==> {name}");
}
