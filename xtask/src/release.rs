//! `cargo xtask release` and `cargo xtask fuzz`.
//!
//! release: builds the tools (the `seed-server` and `connect` examples of peer-runtime,
//! and `peer-bench`) with the `dist` profile (fat LTO, one codegen unit, stripped), copies
//! them into `dist/` with a `SHA256SUMS` file, then checks that every library crate
//! packages on its own (`cargo package`, which builds each `.crate` in isolation; the
//! libraries are packaged together so their path dependencies resolve to each other's
//! freshly packaged versions instead of a registry).
//!
//! fuzz: runs every target of `fuzz/fuzz_targets` for N seconds with cargo-fuzz on a
//! nightly toolchain, or says exactly what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{cargo, output, run as run_cmd, workspace_root, Failure};

/// The libraries that must be usable on their own, in dependency order.
const LIBRARIES: [&str; 4] = ["wire-codec", "peer-core", "peer-helpers", "peer-runtime"];

/// The binaries shipped in `dist/`: (package, target kind flag, name).
const TOOLS: [(&str, &str, &str); 3] = [
    ("peer-runtime", "--example", "seed-server"),
    ("peer-runtime", "--example", "connect"),
    ("benches", "--bin", "peer-bench"),
];

/// Where cargo put a tool built with the `dist` profile.
fn built_path(root: &Path, kind: &str, name: &str) -> PathBuf {
    let dir = root.join("target").join("dist");
    if kind == "--example" {
        dir.join("examples").join(name)
    } else {
        dir.join(name)
    }
}

pub fn run() -> Result<(), Failure> {
    let root = workspace_root();
    println!("==> release builds (profile dist: lto = fat, codegen-units = 1, strip)");
    for (package, kind, name) in TOOLS {
        cargo(
            &["build", "--profile", "dist", "-p", package, kind, name],
            &[],
        )?;
    }
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist)
        .map_err(|e| Failure(format!("mkdir {}: {e}", dist.display())))?;
    let mut names = Vec::new();
    for (_, kind, name) in TOOLS {
        let from = built_path(&root, kind, name);
        let to = dist.join(name);
        std::fs::copy(&from, &to)
            .map_err(|e| Failure(format!("copy {} -> {}: {e}", from.display(), to.display())))?;
        names.push(name);
    }
    let mut args = vec!["--"];
    args.extend(names.iter().copied());
    let sums = Command::new("sha256sum")
        .args(&args)
        .current_dir(&dist)
        .output()
        .map_err(|e| Failure(format!("sha256sum (coreutils) is needed: {e}")))?;
    if !sums.status.success() {
        return Err(Failure(format!("sha256sum failed ({})", sums.status)));
    }
    std::fs::write(dist.join("SHA256SUMS"), &sums.stdout)
        .map_err(|e| Failure(format!("writing SHA256SUMS: {e}")))?;
    let verified = Command::new("sha256sum")
        .args(["--check", "--quiet", "SHA256SUMS"])
        .current_dir(&dist)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !verified {
        return Err(Failure("dist/SHA256SUMS does not verify".into()));
    }
    for name in &names {
        let size = std::fs::metadata(dist.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "dist/{name:<12} {:>8.1} MiB",
            size as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "dist/SHA256SUMS:\n{}",
        String::from_utf8_lossy(&sums.stdout).trim_end()
    );

    println!("\n==> cargo package: each library on its own");
    let mut package_args = vec!["package", "--allow-dirty"];
    for lib in LIBRARIES {
        package_args.push("-p");
        package_args.push(lib);
    }
    cargo(&package_args, &[])?;
    for lib in LIBRARIES {
        let listing = output(
            &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            &["package", "--list", "--allow-dirty", "-p", lib],
            &[],
        )?;
        println!("{lib}: {} files packaged", listing.lines().count());
    }
    println!(
        "\nrelease: dist/ holds {} tools and SHA256SUMS; {} libraries package and build alone",
        names.len(),
        LIBRARIES.len()
    );
    Ok(())
}

/// Entry point of `cargo xtask fuzz [--seconds N]`.
pub fn fuzz(args: &[String]) -> Result<(), Failure> {
    let mut seconds = 60u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Failure("--seconds needs a whole number".into()))?;
            }
            other => return Err(Failure(format!("fuzz: unknown option {other:?}"))),
        }
    }
    let root = workspace_root();
    let targets_dir = root.join("fuzz").join("fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&targets_dir)
        .map_err(|e| {
            Failure(format!(
                "fuzz: no fuzz targets in {}: {e}",
                targets_dir.display()
            ))
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    targets.sort();
    if targets.is_empty() {
        return Err(Failure(format!(
            "fuzz: no *.rs in {}",
            targets_dir.display()
        )));
    }
    let mut missing = Vec::new();
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !nightly {
        missing.push("a nightly toolchain (rustup toolchain install nightly)");
    }
    let cargo_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !cargo_fuzz {
        missing.push("cargo-fuzz (cargo install cargo-fuzz)");
    }
    if !missing.is_empty() {
        return Err(Failure(format!(
            "fuzz: cannot run the {} targets ({}): missing {}",
            targets.len(),
            targets.join(", "),
            missing.join(" and ")
        )));
    }
    let max_time = format!("-max_total_time={seconds}");
    for t in &targets {
        println!("\n==> fuzz {t} for {seconds} s");
        // `cargo +nightly`: the proxy picks the toolchain, so call cargo itself, not $CARGO.
        run_cmd(
            "cargo",
            &["+nightly", "fuzz", "run", t, "--", &max_time],
            &[],
        )?;
    }
    println!(
        "\nfuzz: {} targets ran {seconds} s each without a crash",
        targets.len()
    );
    Ok(())
}
