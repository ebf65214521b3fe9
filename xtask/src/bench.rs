//! `cargo xtask demo` and `cargo xtask bench`.
//!
//! demo: builds the seed-server example and `peer-bench` in release, and runs
//! `peer-bench --spawn` (which starts the seed-server on a free 127.0.0.1 port, opens the
//! peers from worker processes, and stops everything at the end, on every exit path).
//!
//! bench: the criterion benches of every crate (short warm-up and measurement), then
//! peer-bench with the baselines at several peer counts; writes `target/bench-report.md`
//! with the machine, the tables and the ratios, and hand-written SVG line charts of
//! throughput and memory against peer count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cmd::{cargo, output, run, workspace_root, Failure};

/// Builds the two binaries the load test needs.
fn build_tools() -> Result<(), Failure> {
    cargo(
        &[
            "build",
            "--release",
            "-p",
            "peerwire-runtime",
            "--example",
            "seed-server",
        ],
        &[],
    )?;
    cargo(
        &["build", "--release", "-p", "benches", "--bin", "peer-bench"],
        &[],
    )
}

fn peer_bench() -> PathBuf {
    workspace_root()
        .join("target")
        .join("release")
        .join("peer-bench")
}

/// Runs peer-bench through `sh` so its open-files soft limit is raised to the hard limit
/// first (a fresh machine often starts at 1,024; std cannot call setrlimit, the shell's
/// `ulimit` can), with output passed through.
fn run_peer_bench(args: &[String]) -> Result<(), Failure> {
    let script = r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@""#;
    let mut full: Vec<&str> = vec!["-c", script, "peer-bench"];
    let exe = peer_bench().to_string_lossy().into_owned();
    full.push(&exe);
    full.extend(args.iter().map(String::as_str));
    run("sh", &full, &[])
}

/// Same, capturing standard output (the table); progress still shows on stderr.
fn peer_bench_output(args: &[String]) -> Result<String, Failure> {
    let script = r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@""#;
    let exe = peer_bench().to_string_lossy().into_owned();
    let mut full: Vec<&str> = vec!["-c", script, "peer-bench", &exe];
    full.extend(args.iter().map(String::as_str));
    println!("+ peer-bench {}", args.join(" "));
    output("sh", &full, &[])
}

fn parse_flag<T: std::str::FromStr>(
    it: &mut std::slice::Iter<'_, String>,
    name: &str,
) -> Result<T, Failure> {
    it.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Failure(format!("{name} needs a number")))
}

/// Entry point of `cargo xtask demo [--peers N] [--seconds S] [--baseline]`.
pub fn demo(args: &[String]) -> Result<(), Failure> {
    let mut peers: u64 = 5_000;
    let mut seconds: f64 = 20.0;
    let mut baseline = false;
    let mut sim_nodes: u32 = 3_000;
    let mut seeder_seconds: u64 = 15;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sim-nodes" => sim_nodes = parse_flag(&mut it, "--sim-nodes")?,
            "--seeder-seconds" => seeder_seconds = parse_flag(&mut it, "--seeder-seconds")?,
            "--peers" => peers = parse_flag(&mut it, "--peers")?,
            "--seconds" => seconds = parse_flag(&mut it, "--seconds")?,
            "--baseline" => baseline = true,
            other => return Err(Failure(format!("demo: unknown option {other:?}"))),
        }
    }
    if peers == 0 {
        return Err(Failure("demo: --peers must be at least 1".into()));
    }
    println!("==> building the seed-server and peer-bench (release)");
    build_tools()?;
    // About `seconds` in all: connecting takes a second or two, then an idle hold,
    // ping/pong and an inventory flood share the rest.
    let seconds = seconds.max(4.0);
    let hold = (seconds * 0.15).max(1.0);
    let phase = ((seconds - hold - 2.0) / 2.0).max(1.0);
    println!(
        "\n==> peer-bench: seed-server on 127.0.0.1, {peers} peers, ~{seconds:.0} s{}",
        if baseline {
            " per system (with the baselines)"
        } else {
            ""
        }
    );
    let mut pb = vec![
        "--spawn".to_string(),
        "--peers".into(),
        peers.to_string(),
        "--seconds".into(),
        format!("{phase:.1}"),
        "--hold-seconds".into(),
        format!("{hold:.1}"),
        "--json".into(),
        workspace_root()
            .join("target")
            .join("demo.json")
            .to_string_lossy()
            .into_owned(),
    ];
    if baseline {
        pb.push("--baseline".into());
    }
    run_peer_bench(&pb)?;
    crate::seeder::demo(sim_nodes.max(20), seeder_seconds.max(5))
}

/// The peer counts, phase lengths and criterion times of a bench run.
struct Plan {
    counts: Vec<u64>,
    seconds: f64,
    hold: f64,
    rounds: u32,
    warm_up: &'static str,
    measurement: &'static str,
}

/// Entry point of `cargo xtask bench [--quick] [--no-criterion]`.
pub fn bench(args: &[String]) -> Result<(), Failure> {
    let quick = args.iter().any(|a| a == "--quick");
    let criterion = !args.iter().any(|a| a == "--no-criterion");
    if let Some(bad) = args
        .iter()
        .find(|a| *a != "--quick" && *a != "--no-criterion")
    {
        return Err(Failure(format!("bench: unknown option {bad:?}")));
    }
    let plan = if quick {
        Plan {
            counts: vec![100, 1_000, 5_000],
            seconds: 2.0,
            hold: 1.0,
            rounds: 1,
            warm_up: "0.5",
            measurement: "1",
        }
    } else {
        Plan {
            counts: vec![100, 1_000, 5_000, 10_000],
            seconds: 4.0,
            hold: 2.0,
            rounds: 3,
            warm_up: "1",
            measurement: "3",
        }
    };
    let root = workspace_root();
    let target = root.join("target");
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure(format!("mkdir {}: {e}", out_dir.display())))?;

    let mut criterion_rows = Vec::new();
    if criterion {
        println!(
            "==> criterion benches (warm-up {} s, measurement {} s)",
            plan.warm_up, plan.measurement
        );
        let start = SystemTime::now();
        cargo(
            &[
                "bench",
                "--workspace",
                "--bench",
                "*",
                "--",
                "--warm-up-time",
                plan.warm_up,
                "--measurement-time",
                plan.measurement,
            ],
            &[],
        )?;
        criterion_rows = criterion_results(&target.join("criterion"), start);
    }

    println!(
        "\n==> peer-bench with the baselines at {:?} peers",
        plan.counts
    );
    build_tools()?;
    let mut tables = Vec::new();
    let mut scaling: Vec<(u64, Tsv)> = Vec::new();
    for &n in &plan.counts {
        let tsv_path = out_dir.join(format!("peer-bench-{n}.tsv"));
        let args = vec![
            "--spawn".to_string(),
            "--baseline".into(),
            "--peers".into(),
            n.to_string(),
            "--rounds".into(),
            plan.rounds.to_string(),
            "--seconds".into(),
            plan.seconds.to_string(),
            "--hold-seconds".into(),
            plan.hold.to_string(),
            "--json".into(),
            out_dir
                .join(format!("peer-bench-{n}.json"))
                .to_string_lossy()
                .into_owned(),
            "--tsv".into(),
            tsv_path.to_string_lossy().into_owned(),
        ];
        let table = peer_bench_output(&args)?;
        println!("{table}");
        tables.push((n, table));
        let text = std::fs::read_to_string(&tsv_path)
            .map_err(|e| Failure(format!("reading {}: {e}", tsv_path.display())))?;
        scaling.push((n, Tsv::parse(&text)));
    }

    let charts = [
        (
            "bench-ping.svg",
            "Ping/pong round trips per second",
            "ping_rt_per_s",
        ),
        (
            "bench-inv.svg",
            "Inventory messages per second",
            "inv_msgs_per_s",
        ),
        (
            "bench-handshakes.svg",
            "Handshakes per second",
            "handshakes_per_s",
        ),
        (
            "bench-memory.svg",
            "Server KiB per idle peer",
            "kib_per_idle_peer",
        ),
    ];
    for (file, title, key) in charts {
        let svg = chart(title, key, &scaling);
        std::fs::write(target.join(file), svg)
            .map_err(|e| Failure(format!("writing {file}: {e}")))?;
    }
    let report = render_report(quick, &plan, &criterion_rows, &tables, &scaling, &charts);
    let path = target.join("bench-report.md");
    std::fs::write(&path, report)
        .map_err(|e| Failure(format!("writing {}: {e}", path.display())))?;
    println!(
        "\nbench: wrote {} and {} SVG charts in target/",
        path.display(),
        charts.len()
    );
    Ok(())
}

/// The medians/ratios/goals file peer-bench writes with `--tsv`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tsv {
    medians: BTreeMap<(String, String), f64>,
    ratios: BTreeMap<(String, String), f64>,
    goals: Vec<(bool, f64, f64, String)>,
}

impl Tsv {
    fn parse(text: &str) -> Tsv {
        let mut t = Tsv::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["median", sys, key, v] => {
                    if let Ok(v) = v.parse() {
                        t.medians.insert((sys.to_string(), key.to_string()), v);
                    }
                }
                ["ratio", sys, key, v] => {
                    if let Ok(v) = v.parse() {
                        t.ratios.insert((sys.to_string(), key.to_string()), v);
                    }
                }
                ["goal", met, measured, target, what] => {
                    if let (Ok(m), Ok(tg)) = (measured.parse(), target.parse()) {
                        t.goals.push((*met == "yes", m, tg, what.to_string()));
                    }
                }
                _ => {}
            }
        }
        t
    }

    fn median(&self, sys: &str, key: &str) -> Option<f64> {
        self.medians
            .get(&(sys.to_string(), key.to_string()))
            .copied()
    }
}

/// One criterion benchmark's result.
#[derive(Debug, Clone, PartialEq)]
struct CriterionRow {
    id: String,
    median_ns: f64,
    throughput: Option<(String, f64)>,
}

/// The benchmarks criterion measured since `since` (its `new/` results under `dir`).
fn criterion_results(dir: &Path, since: SystemTime) -> Vec<CriterionRow> {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "new") {
                let est = p.join("estimates.json");
                let meta = p.join("benchmark.json");
                let fresh = std::fs::metadata(&est)
                    .and_then(|m| m.modified())
                    .map(|t| t >= since)
                    .unwrap_or(false);
                if !fresh {
                    continue;
                }
                if let (Ok(est), Ok(meta)) = (
                    std::fs::read_to_string(&est),
                    std::fs::read_to_string(&meta),
                ) {
                    if let Some(row) = criterion_row(&est, &meta) {
                        rows.push(row);
                    }
                }
            } else if p.file_name().is_some_and(|n| n != "report") {
                stack.push(p);
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

/// Reads one benchmark from criterion's `estimates.json` and `benchmark.json` (a few
/// fixed fields, found by key: xtask has no JSON parser).
fn criterion_row(estimates: &str, benchmark: &str) -> Option<CriterionRow> {
    let id = json_string(benchmark, "full_id")?;
    let median_part = &estimates[estimates.find("\"median\"")?..];
    let median_ns = json_number(median_part, "point_estimate")?;
    let throughput = throughput(benchmark);
    Some(CriterionRow {
        id,
        median_ns,
        throughput,
    })
}

/// `"throughput":{"Bytes":32}` → `("Bytes", 32.0)`; `null` or absent → `None`.
fn throughput(benchmark: &str) -> Option<(String, f64)> {
    let pat = "\"throughput\":";
    let rest = benchmark[benchmark.find(pat)? + pat.len()..].trim_start();
    let rest = rest.strip_prefix('{')?;
    let kind = rest.strip_prefix('"')?;
    let kind = &kind[..kind.find('"')?];
    let value = json_number(rest, kind)?;
    Some((kind.to_string(), value))
}

fn json_string(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":\"");
    let start = text.find(&pat)? + pat.len();
    let mut out = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

fn json_number(text: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let start = text.find(&pat)? + pat.len();
    let rest = text[start..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn fmt_time(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

fn fmt_throughput(row: &CriterionRow) -> String {
    match &row.throughput {
        Some((kind, n)) if row.median_ns > 0.0 => {
            let per_s = n / (row.median_ns / 1e9);
            if kind.starts_with("Bytes") {
                format!("{}B/s", fmt_rate(per_s))
            } else {
                format!("{} elem/s", fmt_rate(per_s))
            }
        }
        _ => String::new(),
    }
}

fn machine() -> Vec<(String, String)> {
    let nproc = output("nproc", &[], &[])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = output("uname", &["-r"], &[])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.trim_start_matches("MemTotal:").trim().to_string())
        })
        .unwrap_or_default();
    let rustc = output("rustc", &["-V"], &[])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let nofile = output("sh", &["-c", "ulimit -Hn"], &[])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    vec![
        ("nproc".into(), nproc),
        ("CPU".into(), cpu),
        ("kernel".into(), kernel),
        ("memory".into(), mem),
        ("rustc".into(), rustc),
        ("open files (hard limit)".into(), nofile),
    ]
}

const SYSTEMS: [(&str, &str, &str); 4] = [
    ("ours", "peerwire", "#1f77b4"),
    ("raw", "raw glommio echo", "#7f7f7f"),
    ("tokio", "tokio + bitcoin", "#d62728"),
    ("peer-tokio", "peerwire on tokio", "#2ca02c"),
];

fn render_report(
    quick: bool,
    plan: &Plan,
    criterion: &[CriterionRow],
    tables: &[(u64, String)],
    scaling: &[(u64, Tsv)],
    charts: &[(&str, &str, &str)],
) -> String {
    let mut r = String::new();
    r.push_str("# peerwire bench report\n\n");
    r.push_str(&format!(
        "Written by `cargo xtask bench{}`. Every peer-bench figure is the median of {} round(s); \
         every ratio is taken within a round (the systems run back to back), then medianed. \
         The machine is shared and small: absolute rates move 10–30 % between runs, ratios much less.\n\n",
        if quick { " --quick" } else { "" },
        plan.rounds
    ));
    r.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (k, v) in machine() {
        r.push_str(&format!("| {k} | {v} |\n"));
    }
    r.push_str("\n## Scaling with the number of peers\n\n");
    r.push_str("| peers | system | handshakes/s | ping round trips/s | inv msgs/s | KiB per idle peer |\n|---:|---|---:|---:|---:|---:|\n");
    for (n, t) in scaling {
        for (sys, label, _) in SYSTEMS {
            let cell = |key: &str, digits: usize| {
                t.median(sys, key)
                    .map(|v| format!("{v:.digits$}"))
                    .unwrap_or_else(|| "–".into())
            };
            r.push_str(&format!(
                "| {n} | {label} | {} | {} | {} | {} |\n",
                cell("handshakes_per_s", 0),
                cell("ping_rt_per_s", 0),
                cell("inv_msgs_per_s", 0),
                cell("kib_per_idle_peer", 1)
            ));
        }
    }
    r.push_str("\n| peers | ours/raw handshakes | ours/raw ping | ours/raw inv | ours/tokio ping per CPU-s | ours/tokio inv per CPU-s |\n|---:|---:|---:|---:|---:|---:|\n");
    for (n, t) in scaling {
        let ratio = |sys: &str, key: &str| {
            t.ratios
                .get(&(sys.to_string(), key.to_string()))
                .map(|v| format!("{v:.2}×"))
                .unwrap_or_else(|| "–".into())
        };
        r.push_str(&format!(
            "| {n} | {} | {} | {} | {} | {} |\n",
            ratio("raw", "handshakes_per_s"),
            ratio("raw", "ping_rt_per_s"),
            ratio("raw", "inv_msgs_per_s"),
            ratio("tokio", "ping_msgs_per_cpu_s"),
            ratio("tokio", "inv_msgs_per_cpu_s")
        ));
    }
    r.push('\n');
    for (file, title, _) in charts {
        r.push_str(&format!("![{title}]({file})\n"));
    }
    for (n, table) in tables {
        r.push_str(&format!(
            "\n## peer-bench, {n} peers\n\n{}\n",
            table.trim_end()
        ));
    }
    if !criterion.is_empty() {
        r.push_str(
            "\n## criterion (median)\n\n| benchmark | time | throughput |\n|---|---:|---:|\n",
        );
        for row in criterion {
            r.push_str(&format!(
                "| {} | {} | {} |\n",
                row.id,
                fmt_time(row.median_ns),
                fmt_throughput(row)
            ));
        }
    }
    r
}

/// How the y axis maps values: linear from 0, or logarithmic between two decades when
/// the systems' values differ by more than 10× (a linear axis then flattens the slower
/// systems onto the floor and their lines cannot be read).
#[derive(Debug, Clone, Copy, PartialEq)]
enum YAxis {
    Linear { max: f64 },
    Log { lo: f64, hi: f64 },
}

impl YAxis {
    fn for_values(values: &[f64]) -> YAxis {
        let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
        let max = positive.iter().copied().fold(0.0f64, f64::max);
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        if positive.len() >= 2 && max / min > 10.0 {
            YAxis::Log {
                lo: 10f64.powf(min.log10().floor()),
                hi: 10f64.powf(max.log10().ceil()),
            }
        } else {
            YAxis::Linear {
                max: nice_ceiling(max),
            }
        }
    }

    /// Position of `v` between 0 (bottom) and 1 (top).
    fn frac(self, v: f64) -> f64 {
        match self {
            YAxis::Linear { max } => v / max,
            YAxis::Log { lo, hi } => (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()),
        }
    }

    /// The values that get a grid line and a label.
    fn ticks(self) -> Vec<f64> {
        match self {
            YAxis::Linear { max } => (0..=4).map(|i| max * i as f64 / 4.0).collect(),
            YAxis::Log { lo, hi } => {
                let mut t = Vec::new();
                let mut d = lo;
                while d <= hi * 1.0001 {
                    t.push(d);
                    d *= 10.0;
                }
                t
            }
        }
    }

    fn is_log(self) -> bool {
        matches!(self, YAxis::Log { .. })
    }
}

/// A line chart of `key` (median per system) against the peer count, log scale on x;
/// y is linear, or logarithmic when the systems differ by more than 10× (see [`YAxis`]),
/// so every system's line stays readable. Each point is labelled with its value.
fn chart(title: &str, key: &str, scaling: &[(u64, Tsv)]) -> String {
    let (w, h) = (680.0, 380.0);
    let (left, right, top, bottom) = (80.0, 170.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let xs: Vec<f64> = scaling
        .iter()
        .map(|(n, _)| (*n as f64).max(1.0).log10())
        .collect();
    let (x0, x1) = match (xs.first(), xs.last()) {
        (Some(a), Some(b)) if b > a => (*a, *b),
        (Some(a), _) => (*a - 0.5, *a + 0.5),
        _ => (0.0, 1.0),
    };
    let values: Vec<f64> = scaling
        .iter()
        .flat_map(|(_, t)| SYSTEMS.iter().filter_map(|(s, _, _)| t.median(s, key)))
        .collect();
    let axis = YAxis::for_values(&values);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + ph - axis.frac(y) * ph;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}{}</text>\n",
        left + pw / 2.0,
        escape(title),
        if axis.is_log() { " (log scale)" } else { "" }
    );
    // Axes and grid.
    for y in axis.ticks() {
        s.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>\n",
            py(y),
            left + pw,
            left - 6.0,
            py(y) + 4.0,
            fmt_rate(y)
        ));
    }
    for (n, _) in scaling {
        let x = px((*n as f64).max(1.0).log10());
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>\n\
             <text x=\"{x:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">{n}</text>\n",
            top + ph,
            top + ph + 18.0
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0:.1}\" stroke=\"black\"/>\n\
         <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">peers (log scale)</text>\n",
        top + ph,
        left + pw,
        left + pw / 2.0,
        h - 12.0
    ));
    let mut legend = 0;
    for (sys, label, color) in SYSTEMS.iter() {
        let points: Vec<(f64, f64, f64)> = scaling
            .iter()
            .filter_map(|(n, t)| {
                t.median(sys, key)
                    .map(|v| (px((*n as f64).max(1.0).log10()), py(v), v))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for (x, y, v) in &points {
            s.push_str(&format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{color}\">{}</text>\n",
                y - 6.0,
                fmt_rate(*v)
            ));
        }
        let ly = top + 10.0 + legend as f64 * 20.0;
        legend += 1;
        s.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"{ly:.1}\" x2=\"{1:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>\n\
             <text x=\"{2:.1}\" y=\"{3:.1}\">{4}</text>\n",
            left + pw + 12.0,
            left + pw + 32.0,
            left + pw + 38.0,
            ly + 4.0,
            escape(label)
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peer_bench_tsv() {
        let t = Tsv::parse(
            "peers\t1000\nmedian\tours\tping_rt_per_s\t123.5\nratio\traw\tping_rt_per_s\t0.8\n\
             goal\tno\t0.8\t0.7\tping ≥ 0.7 × raw\nmedian\tbroken\n",
        );
        assert_eq!(t.median("ours", "ping_rt_per_s"), Some(123.5));
        assert_eq!(t.median("raw", "ping_rt_per_s"), None);
        assert_eq!(t.ratios.len(), 1);
        assert_eq!(
            t.goals,
            vec![(false, 0.8, 0.7, "ping ≥ 0.7 × raw".to_string())]
        );
    }

    #[test]
    fn reads_criterion_files() {
        let est = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.0,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5e3,"standard_error":0.1}}"#;
        let meta = r#"{"group_id":"decode","function_id":"ping","value_str":null,"throughput":{"Bytes":32},"full_id":"decode/ping","directory_name":"decode/ping","title":"decode/ping"}"#;
        let row = criterion_row(est, meta).unwrap();
        assert_eq!(row.id, "decode/ping");
        assert_eq!(row.median_ns, 1500.0);
        assert_eq!(row.throughput, Some(("Bytes".into(), 32.0)));
        // 32 bytes in 1.5 µs = 21.3 MB/s.
        assert_eq!(fmt_throughput(&row), "21.33 MB/s");
        let no_tp = meta.replace(r#"{"Bytes":32}"#, "null");
        assert_eq!(criterion_row(est, &no_tp).unwrap().throughput, None);
        assert!(criterion_row("{}", meta).is_none());
    }

    #[test]
    fn chart_has_one_line_per_system_with_data() {
        let mut a = Tsv::default();
        a.medians.insert(("ours".into(), "k".into()), 10.0);
        a.medians.insert(("raw".into(), "k".into()), 20.0);
        let mut b = a.clone();
        b.medians.insert(("ours".into(), "k".into()), 30.0);
        let svg = chart("T <1>", "k", &[(100, a), (1000, b)]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("T &lt;1&gt;"));
        // The y axis tops out at a round 50 for a maximum of 30.
        assert!(svg.contains(">50.0<"), "{svg}");
    }

    #[test]
    fn systems_far_apart_get_a_log_axis_that_keeps_the_slow_one_readable() {
        let mut a = Tsv::default();
        a.medians.insert(("ours".into(), "k".into()), 3_000_000.0);
        a.medians.insert(("tokio".into(), "k".into()), 90_000.0);
        a.medians
            .insert(("peer-tokio".into(), "k".into()), 50_000.0);
        let axis = YAxis::for_values(&[3_000_000.0, 90_000.0, 50_000.0]);
        assert_eq!(
            axis,
            YAxis::Log {
                lo: 10_000.0,
                hi: 10_000_000.0
            }
        );
        // On a linear axis 50,000 would sit 1.7% above the floor; here it is a quarter up.
        assert!(axis.frac(50_000.0) > 0.2, "{}", axis.frac(50_000.0));
        assert_eq!(axis.ticks().len(), 4);
        let svg = chart("inv", "k", &[(1000, a)]);
        assert!(svg.contains("(log scale)</text>"), "{svg}");
        // Every system with data has its line and its legend entry.
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains(">peerwire on tokio<"));
        // Close values keep a linear axis from 0.
        assert_eq!(
            YAxis::for_values(&[10.0, 30.0]),
            YAxis::Linear { max: 50.0 }
        );
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(30.0), 50.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }
}
