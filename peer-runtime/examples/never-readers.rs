//! Measures a server's resident memory under many peers that ask and never read,
//! against the same server with the same peers idle (issue #11's "RSS under 10,000
//! never-reading peers ≤ 2× the idle figure").
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example never-readers -- --peers 10000 --clients 2 [--budget-mib 32]
//! ```
//!
//! The server runtime runs in this process and answers every `getaddr` with 16 KiB
//! (the worst a server's answers get); the remotes run in python3 child processes (so
//! their memory is not counted and each stays under the 20,000-descriptor limit), with
//! 4 KiB receive buffers so the kernel takes little of what is sent. Each remote
//! handshakes; once all are handshaken and settled the idle RSS is taken; then every
//! remote writes `--asks` getaddr in one go and never reads, and the RSS is sampled
//! every 200 ms for `--seconds`. The kernel's socket memory is in neither figure.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use peer_core::{Config, Listener, Peer};
use peer_runtime::{Limits, RuntimeBuilder};
use wire_codec::message::{NetAddress, ServiceFlags, Version};
use wire_codec::{encode_frame, Command, Context, Message, Network};

#[derive(Parser, Debug)]
#[command(
    name = "never-readers",
    version,
    about = "Server RSS under peers that never read, against idle"
)]
struct Args {
    /// Never-reading remotes.
    #[arg(long, default_value_t = 10_000)]
    peers: usize,
    /// python3 processes to spread them over (each holds at most ~19,700).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Server executors.
    #[arg(long, default_value_t = 1)]
    executors: usize,
    /// getaddr each remote asks (each answered with 16 KiB).
    #[arg(long, default_value_t = 400)]
    asks: usize,
    /// `Limits::memory_budget` in MiB (default: the runtime's default,
    /// `limits::default_memory_budget(max_peers)`).
    #[arg(long)]
    budget_mib: Option<usize>,
    /// Seconds of attack sampled.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

const ANSWER: usize = 16 * 1024;

struct Answering;

impl Listener for Answering {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        peer.queue_message(
            Message::Unknown {
                command: Command::from_static("answer"),
                payload: Bytes::from(vec![0xa5; ANSWER]),
            },
            None,
        );
    }
}

/// A python3 remote set: `n` connections, 4 KiB receive buffers, `hello` written on
/// each; prints `ready`; on a line from stdin writes `flood` on each and prints
/// `flooded`; holds everything without reading until stdin closes.
const REMOTES: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hello, flood = bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(hello)
    socks.append(s)
print("ready", flush=True)
sys.stdin.readline()
for s in socks:
    s.setblocking(False)
    try:
        s.send(flood)
    except OSError:
        pass
print("flooded", flush=True)
sys.stdin.read()
"#;

fn frame(msg: &Message) -> Vec<u8> {
    let net = Network::Regtest;
    let mut out = bytes::BytesMut::new();
    encode_frame(net.magic(), msg, &Context::new(net, 70016), &mut out).expect("encodes");
    out.to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut limits = Limits::default();
    limits.max_inbound_per_netgroup = usize::MAX;
    limits.max_peers = limits.max_peers.max(args.peers + 16);
    if let Some(mib) = args.budget_mib {
        limits.memory_budget = mib << 20;
    }
    let budget = limits.memory_budget;
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let rt = RuntimeBuilder::with_config(cfg)
        .executors(args.executors)
        .limits(limits)
        .listen("127.0.0.1:0".parse().expect("address"))
        .listener_factory(|_| Box::new(Answering) as Box<dyn Listener>)
        .start()
        .expect("runtime starts");
    let addr = rt.local_addr().expect("listening");
    std::thread::sleep(Duration::from_millis(300));
    let rss_empty = rss_kib();

    let services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    let mut hello = frame(&Message::Version(Box::new(Version {
        version: 70016,
        services,
        timestamp: 1_700_000_000,
        receiver: NetAddress::unspecified(ServiceFlags::NETWORK),
        sender: NetAddress::unspecified(services),
        nonce: 9,
        user_agent: "/never-reader:0.1/".into(),
        start_height: 0,
        relay: true,
        relay_present: true,
    })));
    hello.extend_from_slice(&frame(&Message::Verack));
    let flood: Vec<u8> = (0..args.asks)
        .flat_map(|_| frame(&Message::GetAddr))
        .collect();
    let per = args.peers.div_ceil(args.clients.max(1));
    let mut children = Vec::new();
    let mut left = args.peers;
    while left > 0 {
        let n = left.min(per);
        left -= n;
        let mut child = Process::new("python3")
            .args(["-c", REMOTES, &addr.ip().to_string()])
            .arg(addr.port().to_string())
            .arg(n.to_string())
            .args([hex(&hello), hex(&flood)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        children.push((child, out));
    }
    for (_, out) in children.iter_mut() {
        let mut line = String::new();
        out.read_line(&mut line).expect("child speaks");
        assert_eq!(line.trim(), "ready");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while rt.stats().handshaken < args.peers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_kib();
    let s = rt.stats();
    println!(
        "{} peers handshaken; RSS empty {} KiB, idle {} KiB (+{} B/peer)",
        s.handshaken,
        rss_empty,
        idle,
        (idle.saturating_sub(rss_empty) * 1024) / s.handshaken.max(1) as u64
    );

    let started = Instant::now();
    for (child, _) in children.iter_mut() {
        writeln!(child.stdin.as_mut().expect("stdin")).expect("signal");
    }
    let (mut peak, mut held) = (0u64, 0usize);
    let mut sampled = Vec::new();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        std::thread::sleep(Duration::from_millis(200));
        let r = rss_kib();
        peak = peak.max(r);
        held = held.max(rt.stats().memory);
        sampled.push(r);
    }
    let s = rt.stats();
    let end = *sampled.last().unwrap_or(&idle);
    println!(
        "never reading for {} s: peers {} (disconnects {}), peers' accounted memory at most {} KiB (budget {} KiB); RSS idle {} KiB -> peak {} KiB, end {} KiB: peak/idle {:.2}",
        args.seconds,
        s.peers,
        s.disconnects,
        held / 1024,
        budget / 1024,
        idle,
        peak,
        end,
        peak as f64 / idle.max(1) as f64
    );
    for (mut child, _) in children {
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    }
    rt.shutdown();
    ExitCode::SUCCESS
}
