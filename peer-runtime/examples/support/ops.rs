//! What the example tools share to be operable: logging at `info` by default (plain text
//! when stderr is not a terminal), SIGINT/SIGTERM as a request to shut down, and a
//! Prometheus text endpoint. Included by path (`#[path = "support/ops.rs"] mod ops;`).

#![allow(dead_code)] // each tool uses the parts it needs

use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// `RUST_LOG` if set, `info` otherwise; ANSI colours only when stderr is a terminal (no
/// escape codes in pipes, files or journald).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr)
        .init();
}

/// The name of the first SIGINT or SIGTERM that arrives, sent once. Signals are taken on
/// a thread of their own (a one-thread tokio runtime), so the caller waits with
/// `recv_timeout` between its own work and shuts down in order.
pub fn shutdown_signals() -> io::Result<mpsc::Receiver<&'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered here, before returning: a signal right after start is not lost.
    let (mut term, mut int) = rt.block_on(async {
        Ok::<_, io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let name = rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            });
            let _ = tx.send(name);
        })?;
    Ok(rx)
}

/// Serves `GET /metrics` (anything else: 404) on `listener` until `stop` is set, with the
/// text `render` returns (Prometheus exposition format). One request at a time, each
/// bounded (8 KiB, 2 s): a scrape endpoint, not a web server.
pub fn serve_metrics(listener: TcpListener, stop: &AtomicBool, render: impl Fn() -> String) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let first = String::from_utf8_lossy(&req);
                let path = first.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if first.starts_with("GET ") && path == "/metrics" {
                    ("200 OK", render())
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Binds the metrics address, saying clearly which one failed.
pub fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))
}

/// One Prometheus metric: `# HELP`, `# TYPE` and the sample.
pub fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
