//! The seeder part of `cargo xtask demo` (and the dig install of `cargo xtask ci`).
//!
//! Starts `sim-net` (a simulated network on 127.x addresses), starts `peerwire-seeder`
//! on it with a free DNS port, lets it crawl for a few seconds while its status lines
//! show, then asks DNS (with `seeder-query`, and `dig` and `dnsperf` when installed),
//! checks the dump against the simulated layout (no bad node marked good), stops the
//! seeder with SIGTERM (it must exit 0) and the simulation.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, workspace_root, Failure};

/// A child killed on drop (every exit path).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(name: &str) -> PathBuf {
    workspace_root().join("target").join("release").join(name)
}

/// Runs `exe args` through `sh` with the open-files soft limit raised to the hard one.
fn spawn_raised(exe: &PathBuf, args: &[String], stdout: Stdio) -> Result<Child, Failure> {
    let script = r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(exe)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Failure(format!("could not start {}: {e}", exe.display())))
}

fn free_port() -> u16 {
    loop {
        let Ok(u) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(a) = u.local_addr() else { continue };
        if std::net::TcpListener::bind(("127.0.0.1", a.port())).is_ok() {
            return a.port();
        }
    }
}

fn capture(exe: &PathBuf, args: &[&str]) -> Result<String, Failure> {
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| Failure(format!("could not start {}: {e}", exe.display())))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// `cargo xtask ci`: the seeder's tests read answers with `dig` when it is installed;
/// install Debian's dnsutils when it is missing (best effort: without it the tests
/// read the answers with hickory-proto only).
pub fn ensure_dig() {
    if have("dig") {
        return;
    }
    println!("+ apt-get install -y dnsutils (dig, for the seeder's DNS tests)");
    let ok = Command::new("sh")
        .arg("-c")
        .arg("(apt-get update -qq && apt-get install -y -qq dnsutils) >/dev/null 2>&1")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("  could not install dnsutils; the seeder tests use hickory-proto's client alone");
    }
}

/// The seeder demo: `nodes` simulated nodes, about `seconds` of crawling.
pub fn demo(nodes: u32, seconds: u64) -> Result<(), Failure> {
    println!("\n==> building peerwire-seeder, sim-net and seeder-query (release)");
    cargo(&["build", "--release", "-p", "seeder", "--bins"], &[])?;
    let layout = capture(
        &bin("sim-net"),
        &["--nodes", &nodes.to_string(), "--print-layout"],
    )?;
    let rows: Vec<(&str, &str)> = layout.lines().filter_map(|l| l.split_once(' ')).collect();
    let count = |b: &str| rows.iter().filter(|(_, x)| *x == b).count();
    let seed = rows
        .iter()
        .find(|(_, b)| *b == "Good")
        .map(|(ip, _)| format!("{ip}:18444"))
        .ok_or_else(|| Failure("sim layout has no good node".into()))?;
    println!(
        "\n==> sim-net: {nodes} nodes on 127.x:18444 (regtest): {} good, {} poisoners, {} wrong network, \
         {} old version, {} without NODE_NETWORK, {} silent, {} dead",
        count("Good"),
        count("Poisoner"),
        count("WrongNetwork"),
        count("OldVersion"),
        count("NoNetwork"),
        count("Silent"),
        count("Dead")
    );
    let mut sim = Proc(spawn_raised(
        &bin("sim-net"),
        &["--nodes".into(), nodes.to_string()],
        Stdio::piped(),
    )?);
    let mut ready = String::new();
    if let Some(out) = sim.0.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut ready);
    }
    if !ready.starts_with("ready") {
        return Err(Failure(format!("sim-net did not start: {ready:?}")));
    }
    print!("    {ready}");

    let port = free_port();
    let dir = workspace_root().join("target").join("seeder-demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
    let dump = dir.join("dnsseed.dump");
    let args: Vec<String> = [
        "--network",
        "regtest",
        "--seed",
        &seed,
        "--zone",
        "seed.demo",
        "--ns",
        "ns.demo",
        "--dns-listen",
        &format!("127.0.0.1:{port}"),
        "--db",
        &dir.join("nodes.sqlite").to_string_lossy(),
        "--dump",
        &dump.to_string_lossy(),
        "--allow-local-addresses",
        "--revisit",
        "5",
        "--status-interval",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    println!("\n==> peerwire-seeder {}", args.join(" "));
    let seeder = Proc(spawn_raised(
        &bin("peerwire-seeder"),
        &args,
        Stdio::inherit(),
    )?);
    let server = format!("127.0.0.1:{port}");
    let query = |name: &str, t: &str| capture(&bin("seeder-query"), &[&server, name, t]);
    let started = Instant::now();
    let mut first_answer = None;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(250));
        if first_answer.is_none() {
            let a = query("seed.demo", "A")?;
            if a.lines().count() > 1 {
                first_answer = Some(started.elapsed());
            }
        }
    }
    println!("\n==> DNS answers (seeder-query, hickory-proto's wire format)");
    for (name, t) in [
        ("seed.demo", "A"),
        ("x9.seed.demo", "A"),
        ("seed.demo", "NS"),
        ("seed.demo", "SOA"),
        ("www.seed.demo", "A"),
    ] {
        let a = query(name, t)?;
        let mut lines = a.lines();
        println!("  {name} {t}: {}", lines.next().unwrap_or("no answer"));
        for l in lines.take(3) {
            println!("    {l}");
        }
    }
    if have("dig") {
        println!("\n==> dig @127.0.0.1 -p {port} seed.demo A +short (first 5)");
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "seed.demo",
                "A",
                "+short",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for l in out.lines().take(5) {
            println!("    {l}");
        }
    }
    let qps = if have("dnsperf") {
        let qfile = dir.join("queries.txt");
        let _ = std::fs::write(&qfile, "seed.demo A\nx9.seed.demo A\nseed.demo AAAA\n");
        println!("\n==> dnsperf -l 5 (4 clients, 2 threads) against the seeder");
        let out = Command::new("dnsperf")
            .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
            .arg(&qfile)
            .args(["-l", "5", "-c", "4", "-T", "2", "-q", "500"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .find(|l| l.contains("Queries per second"))
            .map(|l| l.trim().to_string())
    } else {
        None
    };

    // Stop with SIGTERM: the seeder flushes the database and the dump, exits 0.
    let pid = seeder.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut seeder = seeder;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut code = None;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = seeder.0.try_wait() {
            code = Some(st.code());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(sim);

    let text = std::fs::read_to_string(&dump).unwrap_or_default();
    let marked: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("1"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let behaviour = |addr: &str| {
        let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip);
        rows.iter().find(|(x, _)| *x == ip).map(|(_, b)| *b)
    };
    let good_marked = marked
        .iter()
        .filter(|a| behaviour(a) == Some("Good"))
        .count();
    let bad_marked = marked
        .iter()
        .filter(|a| !matches!(behaviour(a), Some("Good" | "Poisoner")))
        .count();
    println!("\n==> seeder summary");
    println!("  | figure | value |");
    println!("  |---|---|");
    println!(
        "  | first DNS answer with nodes | {} |",
        first_answer.map_or("none".into(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    println!(
        "  | good sim nodes marked good in the dump | {good_marked} of {} |",
        count("Good")
    );
    println!("  | bad nodes marked good | {bad_marked} |");
    if let Some(q) = qps {
        println!("  | dnsperf | {q} |");
    }
    println!(
        "  | exit code after SIGTERM | {} |",
        code.flatten().map_or("none".into(), |c| c.to_string())
    );
    if bad_marked > 0 || code.flatten() != Some(0) {
        return Err(Failure(
            "seeder demo: a bad node was marked good or the seeder did not exit 0".into(),
        ));
    }
    Ok(())
}
