//! `cargo xtask interop`: our peers against a real, independent node.
//!
//! Starts bcoin (from npm, via `../shared/oracle/start-bcoin.sh`) on regtest on a free
//! loopback port with 2,100 blocks, runs `cargo test -p peerwire-runtime --test interop` with
//! the node's ports in the environment, and stops the node whatever the result.

use std::path::Path;

use crate::cmd::{self, cargo, output, shared_dir, Failure};

/// Blocks mined before the tests: more than one `headers` reply (2,000).
const BLOCKS: &str = "2100";

struct Oracle {
    stop_script: String,
    port: String,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = cmd::run("bash", &[&self.stop_script, &self.port], &[]);
    }
}

pub fn run_tests() -> Result<(), Failure> {
    let oracle = shared_dir().join("oracle");
    let start = oracle.join("start-bcoin.sh");
    if !start.exists() {
        return Err(Failure(format!("{} not found", start.display())));
    }
    let start = start.to_string_lossy().into_owned();
    let stop = oracle.join("stop-bcoin.sh").to_string_lossy().into_owned();
    let port = output("bash", &[&start, "auto", BLOCKS], &[])?
        .trim()
        .to_string();
    if port.is_empty() || port.parse::<u16>().is_err() {
        return Err(Failure(format!("oracle printed no port: {port:?}")));
    }
    let guard = Oracle {
        stop_script: stop,
        port: port.clone(),
    };
    let http = http_port(&port)?;
    println!("oracle: bcoin p2p 127.0.0.1:{port}, rpc 127.0.0.1:{http}");
    let result = cargo(
        &[
            "test",
            "-p",
            "peerwire-runtime",
            "--test",
            "interop",
            "--",
            "--nocapture",
            "--test-threads=1",
        ],
        &[
            ("PEERWIRE_ORACLE_PORT", &port),
            ("PEERWIRE_ORACLE_HTTP", &http),
            (
                "PEERWIRE_ORACLE_RPC",
                &oracle.join("rpc.py").to_string_lossy(),
            ),
        ],
    );
    drop(guard);
    result
}

/// The oracle's HTTP port, written by the start script beside its pid file.
fn http_port(p2p: &str) -> Result<String, Failure> {
    let cache = std::env::var("ORACLE_CACHE").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
        format!("{home}/.cache/peerwire-oracle")
    });
    let file = Path::new(&cache)
        .join("run")
        .join(format!("bcoin-{p2p}.http"));
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_string())
        .map_err(|e| Failure(format!("reading {}: {e}", file.display())))
}

/// Entry point of `cargo xtask interop`.
pub fn run() -> Result<(), Failure> {
    run_tests()
}
