//! The seed-server as an operator runs it: `--version`, the metrics endpoint, logs
//! without colour codes in a pipe, and SIGTERM ending it cleanly (peers disconnected,
//! exit status 0).
//!
//! Uses the example program at `target/<profile>/examples/seed-server`. `cargo test`
//! builds that example only as a test harness (it has unit tests), so `cargo xtask ci`
//! builds the program first; by hand: `cargo build -p peerwire-runtime --example seed-server`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peer_core::{Config, DisconnectReason, NonceSet};
use peer_runtime::Runtime;
use wire_codec::Network;

#[path = "support/example.rs"]
mod example;

const LONG: Duration = Duration::from_secs(30);

fn seed_server() -> PathBuf {
    example::example_program("seed-server")
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn version_answers() {
    let out = Command::new(seed_server())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("seed-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_wake_batch_longer_than_100_ms_is_refused_with_a_reason() {
    let out = Command::new(seed_server())
        .args(["--listen", "127.0.0.1:0", "--wake-batch-us", "100001"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--wake-batch-us 100001 is above 100000"),
        "stderr: {err}"
    );
}

#[test]
fn metrics_then_sigterm_disconnects_every_peer_and_exits_0() {
    let mut child = Command::new(seed_server())
        .args([
            "--network",
            "regtest",
            "--listen",
            "127.0.0.1:0",
            "--executors",
            "1",
        ])
        .args(["--metrics", "127.0.0.1:0", "--stats-every", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stdout on a thread: the addresses come first, statistics lines follow.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut listen, mut metrics) = (None, None);
    let deadline = Instant::now() + LONG;
    while listen.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server announces its addresses");
        if let Some(rest) = line.strip_prefix("listening on ") {
            listen = rest
                .split_whitespace()
                .next()
                .and_then(|a| a.parse::<SocketAddr>().ok());
        }
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            metrics = rest
                .strip_suffix("/metrics")
                .and_then(|a| a.parse::<SocketAddr>().ok());
        }
    }
    let (listen, metrics) = (listen.unwrap(), metrics.unwrap());

    let page = get(metrics, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.contains("# TYPE peerwire_handshakes_total counter"),
        "{page}"
    );
    assert!(get(metrics, "/other").starts_with("HTTP/1.1 404"));

    // A peer: the metrics see it handshaken.
    let client = Runtime::builder(Network::Regtest)
        .configure(|c: &mut Config| c.nonces = Some(Arc::new(NonceSet::new())))
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .start()
        .unwrap();
    let peer = client.connect(listen).wait_timeout(LONG).unwrap().unwrap();
    peer.wait_for_handshake_timeout(LONG).unwrap().unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        let page = get(metrics, "/metrics");
        if metric(&page, "peerwire_handshaken_peers") == Some(1.0) {
            assert_eq!(
                metric(&page, "peerwire_handshakes_total"),
                Some(1.0),
                "{page}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the peer:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGTERM (through sh's kill builtin: std has no signal API).
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        peer.wait_for_disconnect_timeout(LONG),
        Some(DisconnectReason::RemoteClosed)
    );
    let deadline = Instant::now() + LONG;
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    let said: Vec<String> = rx.try_iter().collect();
    assert!(
        said.iter().any(|l| l == "SIGTERM: shutting down"),
        "{said:?}"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
    client.shutdown();
}
