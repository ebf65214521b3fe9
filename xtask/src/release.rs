//! `cargo xtask release` and `cargo xtask fuzz`.
//!
//! release: builds the tools (the `seed-server` and `connect` examples of peer-runtime,
//! and `peer-bench`) with the `dist` profile (fat LTO, one codegen unit, stripped), copies
//! them into `dist/` with a `SHA256SUMS` file, then checks that every library crate
//! packages on its own (`cargo package`, which builds each `.crate` in isolation; the
//! libraries are packaged together so their path dependencies resolve to each other's
//! freshly packaged versions instead of a registry).
//!
//! fuzz: runs every target of `fuzz/fuzz_targets` (or the one named by `--target`) for
//! N seconds with cargo-fuzz on a nightly toolchain, or says exactly what is missing. An
//! empty corpus is seeded from the shared wire vectors first, so a fresh checkout (the
//! corpora are git-ignored) starts from real frames instead of from nothing. A crash does
//! not stop the run: the other targets still get their time, and the end of the output
//! says where each crash input is and how to keep it as a stable regression test.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{cargo, output, run as run_cmd, shared_dir, workspace_root, Failure};

/// The libraries that must be usable on their own, in dependency order.
const LIBRARIES: [&str; 5] = [
    "peerwire-codec",
    "peerwire-core",
    "peerwire-helpers",
    "peerwire-runtime",
    "peerwire-tokio",
];

/// The binaries shipped in `dist/`: (package, target kind flag, name).
const TOOLS: [(&str, &str, &str); 3] = [
    ("peerwire-runtime", "--example", "seed-server"),
    ("peerwire-runtime", "--example", "connect"),
    ("benches", "--bin", "peer-bench"),
];

/// The systemd unit written beside the tools.
const UNIT_NAME: &str = "seed-server.service";

/// A systemd unit for the seed-server installed in `bin_dir`: SIGTERM on stop (the server
/// stops accepting, disconnects every peer and exits 0), restarts on failure, a dynamic
/// unprivileged user in a read-only system, descriptors for tens of thousands of peers,
/// and the memory glommio locks for io_uring. Metrics on 127.0.0.1:9464 for a local
/// Prometheus; logs go to the journal as plain text (stderr is not a terminal there).
pub fn systemd_unit(bin_dir: &str) -> String {
    format!(
        "# peerwire seed-server; install: cp seed-server {bin_dir}/ && \
cp seed-server.service /etc/systemd/system/ && systemctl daemon-reload && \
systemctl enable --now seed-server
# Adjust --network, --listen and --max-peers in ExecStart (or add a drop-in with
# `systemctl edit seed-server`).
[Unit]
Description=peerwire seed-server (Bitcoin P2P: answers getaddr with known addresses)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={bin_dir}/seed-server --network mainnet --listen 0.0.0.0:8333 --max-peers 20000 --metrics 127.0.0.1:9464
Environment=RUST_LOG=info
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
LimitNOFILE=65536
LimitMEMLOCK=64M

[Install]
WantedBy=multi-user.target
"
    )
}

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
    let unit = dist.join(UNIT_NAME);
    std::fs::write(&unit, systemd_unit("/usr/local/bin"))
        .map_err(|e| Failure(format!("writing {}: {e}", unit.display())))?;
    names.push(UNIT_NAME);
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
            "dist/{name:<20} {:>8.1} MiB",
            size as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "dist/SHA256SUMS:\n{}",
        String::from_utf8_lossy(&sums.stdout).trim_end()
    );

    println!("\n==> cargo package: each library on its own");
    package_libraries()?;
    println!(
        "\nrelease: dist/ holds {} tools, {UNIT_NAME} and SHA256SUMS; {} libraries package and build alone",
        names.len() - 1,
        LIBRARIES.len()
    );
    Ok(())
}

/// `cargo package` of every library, verified: each `.crate` is unpacked and built on its
/// own, its sibling dependencies resolved to the siblings' freshly packaged `.crate`s
/// (cargo packages several `-p` at once through a local overlay registry, so nothing needs
/// to be on crates.io first — `--no-verify` would skip exactly the build that proves the
/// packages are complete).
///
/// Cargo takes what comes from a registry to be immutable, and the siblings come from
/// one (the overlay) under an unchanged version: their unpacked sources and their built
/// artifacts from an earlier run would be reused, and a library verified against a
/// sibling's older code. So the verification builds in a target directory of its own
/// (`target/package-check`: third-party dependencies stay built between runs) from which
/// our libraries' fingerprints are removed first, and the unpacked sources are removed.
pub fn package_libraries() -> Result<(), Failure> {
    let target = workspace_root().join("target").join("package-check");
    forget_unpacked_packages()?;
    forget_built_packages(&target)?;
    let mut package_args = vec!["package", "--allow-dirty"];
    for lib in LIBRARIES {
        package_args.push("-p");
        package_args.push(lib);
    }
    let target_env = target.to_string_lossy().into_owned();
    cargo(&package_args, &[("CARGO_TARGET_DIR", target_env.as_str())])?;
    for lib in LIBRARIES {
        let listing = output(
            &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            &["package", "--list", "--allow-dirty", "-p", lib],
            &[],
        )?;
        for needed in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
            if !listing.lines().any(|l| l == needed) {
                return Err(Failure(format!("{lib}: the package lacks {needed}")));
            }
        }
        println!("{lib}: {} files packaged", listing.lines().count());
    }
    Ok(())
}

/// Whether a file or directory name is one of our libraries' (`<lib>-<version or hash>`).
fn is_ours(name: &str) -> bool {
    LIBRARIES.iter().any(|lib| {
        name.strip_prefix(lib)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_alphanumeric()))
    })
}

/// Removes our libraries' fingerprints from the verification's target directory, so
/// cargo rebuilds them instead of trusting artifacts built from an earlier package.
fn forget_built_packages(target: &Path) -> Result<(), Failure> {
    let Ok(fingerprints) = std::fs::read_dir(target.join("debug").join(".fingerprint")) else {
        return Ok(());
    };
    for dir in fingerprints.flatten() {
        if is_ours(&dir.file_name().to_string_lossy()) {
            std::fs::remove_dir_all(dir.path())
                .map_err(|e| Failure(format!("removing {}: {e}", dir.path().display())))?;
        }
    }
    Ok(())
}

/// Removes the sources cargo unpacked from earlier `cargo package` runs of our own
/// libraries. Cargo unpacks the siblings' `.crate`s from its local overlay registry into
/// `$CARGO_HOME/registry/src/<registry>/<name>-<version>/` and never unpacks the same
/// name and version again: without this, a library would be verified against a sibling's
/// source from an earlier run (same version, older code) and fail — or pass — wrongly.
fn forget_unpacked_packages() -> Result<(), Failure> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in crates.flatten() {
            if is_ours(&dir.file_name().to_string_lossy()) {
                std::fs::remove_dir_all(dir.path())
                    .map_err(|e| Failure(format!("removing {}: {e}", dir.path().display())))?;
            }
        }
    }
    Ok(())
}

/// What `cargo xtask fuzz` needs to know about one target of `fuzz/fuzz_targets`.
struct FuzzTarget {
    name: &'static str,
    /// libFuzzer's `-max_len`, the largest input it generates.
    max_len: u32,
    /// The package whose `fuzz_regressions` test replays `fuzz/regressions/<name>/` on
    /// stable, where a crash input is kept once found.
    replayed_by: &'static str,
}

/// Every fuzz target. The `-max_len` bounds are small because larger inputs slow the
/// fuzzer (each execution decodes, re-encodes and compares all of it) without reaching
/// new code: the frame decoder only needs a header plus a payload to reach every path,
/// and the codec checks every count and length prefix against its limit and against the
/// bytes left before reading on, so the "too many" and "too long" rules are reached by a
/// few bytes too. A `peer` script reaches every state of the peer with a handshake and a
/// few frames fed in 255-byte chunks, well within 8 KiB.
const FUZZ_TARGETS: [FuzzTarget; 3] = [
    FuzzTarget {
        name: "frame_decode",
        max_len: 16_384,
        replayed_by: "peerwire-codec",
    },
    FuzzTarget {
        name: "message_decode",
        max_len: 16_384,
        replayed_by: "peerwire-codec",
    },
    FuzzTarget {
        name: "peer",
        max_len: 8_192,
        replayed_by: "peerwire-core",
    },
];

/// A target whose `cargo fuzz run` exited non-zero, with the inputs it left behind.
struct FuzzFailure {
    target: &'static FuzzTarget,
    /// Files that appeared in `fuzz/artifacts/<target>/` during the run (file names).
    artifacts: Vec<String>,
}

/// Entry point of `cargo xtask fuzz [--seconds N] [--target NAME]`.
pub fn fuzz(args: &[String]) -> Result<(), Failure> {
    let mut seconds = 60u64;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Failure("--seconds needs a whole number".into()))?;
            }
            "--target" => {
                only = Some(
                    it.next()
                        .cloned()
                        .ok_or_else(|| Failure("--target needs a fuzz target name".into()))?,
                );
            }
            other => return Err(Failure(format!("fuzz: unknown option {other:?}"))),
        }
    }
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let targets = fuzz_targets(&fuzz_dir.join("fuzz_targets"))?;
    let targets: Vec<&'static FuzzTarget> = match &only {
        None => targets,
        Some(name) => vec![*targets
            .iter()
            .find(|t| t.name == name.as_str())
            .ok_or_else(|| {
                Failure(format!(
                    "fuzz: no target {name:?}; the targets are {}",
                    names(&targets)
                ))
            })?],
    };
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
            names(&targets),
            missing.join(" and ")
        )));
    }
    let max_time = format!("-max_total_time={seconds}");
    let mut failures = Vec::new();
    for &t in &targets {
        let corpus = fuzz_dir.join("corpus").join(t.name);
        if count_files(&corpus) == 0 {
            seed_corpora(&fuzz_dir)?;
            let seeded = count_files(&corpus);
            if seeded == 0 {
                return Err(Failure(format!(
                    "fuzz: seeding left {} empty",
                    corpus.display()
                )));
            }
            println!("seeded fuzz/corpus/{}: {seeded} inputs", t.name);
        }
        let artifacts = fuzz_dir.join("artifacts").join(t.name);
        let before = file_names(&artifacts);
        println!(
            "\n==> fuzz {} for {seconds} s (corpus: {} inputs)",
            t.name,
            count_files(&corpus)
        );
        let corpus_arg = format!("fuzz/corpus/{}", t.name);
        let max_len = format!("-max_len={}", t.max_len);
        // `cargo +nightly`: the proxy picks the toolchain, so call cargo itself, not $CARGO.
        let run = run_cmd(
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                t.name,
                &corpus_arg,
                "--",
                &max_time,
                &max_len,
            ],
            &[],
        );
        match run {
            Ok(()) => println!(
                "fuzz {}: no crash; corpus now {} inputs",
                t.name,
                count_files(&corpus)
            ),
            Err(Failure(why)) => {
                let mut new: Vec<String> = file_names(&artifacts)
                    .into_iter()
                    .filter(|f| !before.contains(f))
                    .collect();
                new.sort();
                println!("fuzz {}: FAILED: {why}", t.name);
                failures.push(FuzzFailure {
                    target: t,
                    artifacts: new,
                });
            }
        }
    }
    if failures.is_empty() {
        println!(
            "\nfuzz: {} target(s) ran {seconds} s each without a crash: {}",
            targets.len(),
            names(&targets)
        );
        return Ok(());
    }
    println!("\n==> fuzz findings (commands run from {})", root.display());
    for f in &failures {
        report_failure(f);
    }
    let failed: Vec<&str> = failures.iter().map(|f| f.target.name).collect();
    Err(Failure(format!(
        "fuzz: {} of {} target(s) failed: {}",
        failed.len(),
        targets.len(),
        failed.join(", ")
    )))
}

/// The targets in `dir` (one `<name>.rs` each), which must be exactly those of
/// [`FUZZ_TARGETS`]: a new target needs its `-max_len` and its stable replay test
/// decided, and a stale entry would run a target that no longer exists.
fn fuzz_targets(dir: &Path) -> Result<Vec<&'static FuzzTarget>, Failure> {
    let on_disk: HashSet<String> = std::fs::read_dir(dir)
        .map_err(|e| Failure(format!("fuzz: no fuzz targets in {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let mut unknown: Vec<&str> = on_disk
        .iter()
        .map(String::as_str)
        .filter(|n| !FUZZ_TARGETS.iter().any(|t| t.name == *n))
        .collect();
    unknown.sort_unstable();
    let gone: Vec<&str> = FUZZ_TARGETS
        .iter()
        .map(|t| t.name)
        .filter(|n| !on_disk.contains(*n))
        .collect();
    if !unknown.is_empty() || !gone.is_empty() {
        return Err(Failure(format!(
            "fuzz: FUZZ_TARGETS in xtask/src/release.rs is out of date with {} \
             (not in the table: [{}]; no such file: [{}])",
            dir.display(),
            unknown.join(", "),
            gone.join(", ")
        )));
    }
    Ok(FUZZ_TARGETS.iter().collect())
}

fn names(targets: &[&FuzzTarget]) -> String {
    targets
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of the files in `dir`; none if it does not exist.
fn file_names(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn count_files(dir: &Path) -> usize {
    file_names(dir).len()
}

/// Writes the vector seeds into every corpus with `fuzz/seed_corpus.py` (which fills
/// all three at once; a seed already there is rewritten with the same bytes, so
/// corpora that were not empty only gain the seeds they lacked).
///
/// Vectors come from `$PEERWIRE_VECTORS` (as for the vector tests), else `vectors/` of
/// the shared directory (as for `cargo xtask interop`). Frames larger than the
/// largest `-max_len` are left out: libFuzzer would only cut them short, and the full
/// frames are replayed by wire-codec's `fuzz_regressions` test anyway.
fn seed_corpora(fuzz_dir: &Path) -> Result<(), Failure> {
    let vectors = std::env::var_os("PEERWIRE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_dir().join("vectors"));
    let max_bytes = FUZZ_TARGETS
        .iter()
        .map(|t| t.max_len)
        .max()
        .unwrap_or(16_384)
        .to_string();
    let script = fuzz_dir.join("seed_corpus.py");
    println!("\n==> seeding the fuzz corpora from {}", vectors.display());
    run_cmd(
        "python3",
        &[
            &script.to_string_lossy(),
            "--vectors",
            &vectors.to_string_lossy(),
            "--max-bytes",
            &max_bytes,
        ],
        &[],
    )
    .map_err(|Failure(why)| Failure(format!("fuzz: seeding the corpora failed: {why}")))
}

/// Says where a failed target's crash inputs are and how to keep each one as a
/// regression that the stable tests replay from then on.
fn report_failure(f: &FuzzFailure) {
    let t = f.target.name;
    let test = format!(
        "cargo test -p {} --test fuzz_regressions",
        f.target.replayed_by
    );
    if f.artifacts.is_empty() {
        println!(
            "{t}: failed without leaving an input in fuzz/artifacts/{t}/ \
             (a build error or an interrupted run: see its output above)"
        );
        return;
    }
    println!("{t}: libFuzzer saved in fuzz/artifacts/{t}/:");
    for a in &f.artifacts {
        println!("  fuzz/artifacts/{t}/{a}");
        println!("    reproduce:  cargo +nightly fuzz run {t} fuzz/artifacts/{t}/{a}");
        println!("    keep it:    cp fuzz/artifacts/{t}/{a} fuzz/regressions/{t}/{a} && {test}");
    }
    // The stable replay only sees panics: an out-of-memory, timeout or leak report comes
    // from libFuzzer or AddressSanitizer, so its input may pass there.
    println!(
        "  (rename a kept file to say what it breaks; the replay fails on a crash-* input \
         until the bug is fixed, but an oom-*, timeout-* or leak-* one may pass it: \
         reproduce those with the first command)"
    );
}

#[cfg(test)]
mod tests {
    use super::{is_ours, systemd_unit};

    #[test]
    fn only_our_libraries_are_forgotten() {
        assert!(is_ours("peerwire-codec-0.1.0"));
        assert!(is_ours("peerwire-core-3f2a9c01b7d4e5f6"));
        assert!(!is_ours("peerwire-fuzz-0.0.0"));
        assert!(!is_ours("wire-codec-1.1.0"));
        assert!(!is_ours("peerwire-codecs-0.1.0"));
    }

    #[test]
    fn the_unit_starts_the_installed_server_and_stops_it_with_sigterm() {
        let unit = systemd_unit("/opt/peerwire/bin");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        assert!(exec.starts_with("/opt/peerwire/bin/seed-server "), "{exec}");
        assert!(exec.contains("--metrics 127.0.0.1:"), "{exec}");
        for line in ["KillSignal=SIGTERM", "Restart=on-failure", "[Install]"] {
            assert!(unit.lines().any(|l| l == line), "missing {line}");
        }
        // Every section header is one systemd knows.
        for l in unit.lines().filter(|l| l.starts_with('[')) {
            assert!(["[Unit]", "[Service]", "[Install]"].contains(&l), "{l}");
        }
    }
}
