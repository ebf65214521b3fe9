//! Running commands and finding the workspace.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A task failed; the message says which step and why.
#[derive(Debug)]
pub struct Failure(pub String);

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The directory beside the workspace that holds the shared vectors and oracle.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("PEERWIRE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("..").join("shared"))
}

/// Runs `cargo <args>` in the workspace root with extra environment, failing on a
/// non-zero exit.
pub fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), Failure> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(&cargo, args, env)
}

/// Runs a program with arguments and extra environment in the workspace root.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), Failure> {
    println!("+ {program} {}", args.join(" "));
    let mut c = Command::new(program);
    c.args(args).current_dir(workspace_root());
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c
        .status()
        .map_err(|e| Failure(format!("could not start {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!(
            "`{program} {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Runs a program and returns its standard output (standard error passes through).
pub fn output(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, Failure> {
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .output()
        .map_err(|e| Failure(format!("could not start {program}: {e}")))?;
    if !out.status.success() {
        return Err(Failure(format!(
            "`{program} {}` failed ({})",
            args.join(" "),
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
