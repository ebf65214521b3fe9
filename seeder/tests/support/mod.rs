//! Shared by the seeder's integration tests: processes (sim-net, peerwire-seeder), free
//! ports, and DNS clients (hickory-proto over std sockets, and `dig` when installed).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends SIGTERM (through `kill`, std has no signals) and waits for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.0.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (bind both, then release).
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts sim-net and waits for its `ready` line.
pub fn sim(nodes: u32, seed: u64, shard: u32, shards: u32) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim-net"))
        .args([
            "--network",
            "regtest",
            "--nodes",
            &nodes.to_string(),
            "--seed",
            &seed.to_string(),
            "--shard",
            &shard.to_string(),
            "--shards",
            &shards.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "sim-net said {line:?}");
    // Every live node of the shard must have bound its address (another sim on the
    // same addresses would answer for it).
    let live = seeder::sim::layout(nodes, seed)
        .iter()
        .enumerate()
        .filter(|(i, (_, b))| *i as u32 % shards == shard && *b != seeder::sim::Behaviour::Dead)
        .count();
    assert!(
        line.contains(&format!("listening={live} ")),
        "sim-net could not bind all {live} addresses: {line:?}"
    );
    Proc(child)
}

/// Starts peerwire-seeder with the contract's options plus `extra`.
pub fn seeder(dns_port: u16, db: &Path, seeds: &[String], extra: &[&str]) -> Proc {
    let mut args: Vec<String> = vec![
        "--network".into(),
        "regtest".into(),
        "--zone".into(),
        "seed.test".into(),
        "--ns".into(),
        "ns.test".into(),
        "--dns-listen".into(),
        format!("127.0.0.1:{dns_port}"),
        "--db".into(),
        db.display().to_string(),
    ];
    for s in seeds {
        args.push("--seed".into());
        args.push(s.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_peerwire-seeder"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    Proc(child)
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seeder-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One UDP query with hickory-proto; `None` on timeout.
pub fn udp_raw(port: u16, bytes: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.send_to(bytes, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 65535];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// A parsed UDP answer to `name`/`qtype`.
pub fn udp_query(port: u16, name: &str, qtype: RecordType) -> Option<Message> {
    let q = seeder::dns::query_bytes(rand::random(), name, qtype);
    udp_raw(port, &q).map(|r| Message::from_vec(&r).unwrap())
}

/// A parsed TCP answer.
pub fn tcp_query(port: u16, name: &str, qtype: RecordType) -> Message {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = seeder::dns::query_bytes(7, name, qtype);
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// The addresses in an answer.
pub fn ips(m: &Message) -> Vec<IpAddr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            Some(RData::A(a)) => Some(IpAddr::V4(a.0)),
            Some(RData::AAAA(a)) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// `dig +short` output lines, or `None` when dig is not installed.
pub fn dig(port: u16, args: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=2"])
        .args(args)
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// Polls `f` every 200 ms until it returns `Some` or `secs` pass.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The sim address of node `i` as a socket address on regtest's port.
pub fn sim_addr(i: u32) -> SocketAddr {
    SocketAddr::from((seeder::sim::address(i), 18444))
}
