//! Measures what an idle, handshaken peer costs a server process: heap bytes (counted
//! by a counting global allocator) and resident memory growth, per peer.
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example idle-memory -- --peers 5000 [--v2]
//! ```
//!
//! `--v2`: the clients connect with BIP324 v2 (the server accepts both).
//!
//! The server runtime runs in this process; the clients run in child processes (this
//! same program with `--client`), so their memory is not counted and each stays under
//! the 20,000-descriptor limit. The kernel's socket memory is not part of either figure.

use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use peer_runtime::Runtime;
use wire_codec::message::ServiceFlags;
use wire_codec::Network;

// The counting allocator and the VmRSS reader the hostile and soak tests use, so the
// three measure memory the same way. (`serial` is only for tests.)
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(
    name = "idle-memory",
    version,
    about = "Heap and RSS per idle handshaken peer"
)]
struct Args {
    /// Peers to hold.
    #[arg(long, default_value_t = 5000)]
    peers: usize,
    /// Client processes to spread them over (each holds at most ~19,700).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Server executors.
    #[arg(long, default_value_t = 2)]
    executors: usize,
    /// Internal: run as a client of this server.
    #[arg(long)]
    client: Option<SocketAddr>,
    /// Clients connect with BIP324 v2.
    #[arg(long)]
    v2: bool,
    /// Internal: seconds a client holds its peers.
    #[arg(long, default_value_t = 60)]
    hold: u64,
}

fn runtime(executors: usize) -> Runtime {
    Runtime::builder(Network::Regtest)
        .configure(|c| c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS)
        .executors(executors)
        .listen("127.0.0.1:0".parse().expect("address"))
        .start()
        .expect("runtime starts")
}

fn rss_bytes() -> usize {
    usize::try_from(support::rss_kib()).unwrap_or(usize::MAX / 1024) * 1024
}

fn client(server: SocketAddr, peers: usize, hold: u64, v2: bool) {
    let rt = Runtime::builder(Network::Regtest)
        .configure(|c| c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS)
        .executors(1)
        .start()
        .expect("client runtime");
    let mut handles = Vec::with_capacity(peers);
    for chunk in (0..peers).collect::<Vec<_>>().chunks(256) {
        let reqs: Vec<_> = chunk
            .iter()
            .map(|_| {
                if v2 {
                    rt.connect_v2(server)
                } else {
                    rt.connect(server)
                }
            })
            .collect();
        handles.extend(reqs.into_iter().filter_map(|r| r.wait().ok()));
    }
    std::thread::sleep(Duration::from_secs(hold));
    drop(handles);
    rt.shutdown();
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(server) = args.client {
        client(server, args.peers, args.hold, args.v2);
        return ExitCode::SUCCESS;
    }
    let rt = runtime(args.executors);
    let addr = rt.local_addr().expect("listening");
    std::thread::sleep(Duration::from_millis(200));
    let (heap0, rss0) = (support::heap(), rss_bytes());
    let exe = std::env::current_exe().expect("own path");
    let per = args.peers.div_ceil(args.clients.max(1));
    let mut children = Vec::new();
    let mut left = args.peers;
    while left > 0 {
        let n = left.min(per);
        left -= n;
        children.push(
            Command::new(&exe)
                .args(["--client", &addr.to_string(), "--peers", &n.to_string()])
                .args(args.v2.then_some("--v2"))
                .stdout(Stdio::null())
                .spawn()
                .expect("client process"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while rt.stats().handshaken < args.peers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let every peer settle (trimming happens when the handshake's bursts are over).
    std::thread::sleep(Duration::from_secs(3));
    let s = rt.stats();
    let (heap1, rss1) = (support::heap(), rss_bytes());
    let n = s.handshaken.max(1) as f64;
    println!(
        "peers={} handshaken={} heap={:.1}MiB (+{:.0} B/peer) rss={:.1}MiB (+{:.0} B/peer)",
        s.peers,
        s.handshaken,
        heap1 as f64 / 1048576.0,
        heap1.saturating_sub(heap0) as f64 / n,
        rss1 as f64 / 1048576.0,
        rss1.saturating_sub(rss0) as f64 / n,
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    rt.shutdown();
    ExitCode::SUCCESS
}
