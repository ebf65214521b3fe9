//! What the kernel says about a process and the machine (`/proc`).
//!
//! Memory per peer is the growth of the server's resident set (`VmRSS`) divided by the
//! peers it holds; "per core" rates divide work by the CPU time (`utime + stime`) that the
//! server and the clients spent on it, which is fair on a small, shared machine where
//! wall-clock rates depend on who else runs.

use std::time::Duration;

/// Linux reports CPU times in clock ticks of `USER_HZ`, which is 100 on every
/// architecture peerwire runs on (it is fixed in the kernel ABI, unlike `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// The resident set size of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`), `None` if
/// the process is gone or the line is missing.
///
/// ```
/// let me = std::process::id();
/// assert!(benches::procfs::rss_kib(me).unwrap() > 0);
/// ```
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss(&status)
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, all threads) `pid` has used so far.
///
/// Nanosecond-exact where the kernel keeps scheduler statistics (the sum of
/// `/proc/<pid>/task/*/schedstat`): `utime + stime` come in 10 ms ticks, too coarse for a
/// phase of a tenth of a second. Falls back to the ticks of `/proc/<pid>/stat`. (The
/// sum leaves out threads that have exited; the processes measured here keep theirs.)
///
/// ```
/// let me = std::process::id();
/// assert!(benches::procfs::cpu_time(me).is_some());
/// ```
pub fn cpu_time(pid: u32) -> Option<Duration> {
    if let Some(t) = scheduled_time(pid) {
        return Some(t);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

/// The sum of every live thread's time on a CPU (first field of `schedstat`, ns).
fn scheduled_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended between the listing and the read adds nothing.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += parse_schedstat(&text)?;
        }
    }
    (total > 0).then(|| Duration::from_nanos(total))
}

fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn parse_cpu(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted
    // after the last ')'. There, field 3 (state) is index 0, so utime (14) is index 11.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

/// How many ephemeral ports the kernel hands out per local address
/// (`/proc/sys/net/ipv4/ip_local_port_range`; 28,232 by default): the most
/// connections one local address can open to one server.
///
/// ```
/// assert!(benches::procfs::ephemeral_ports().unwrap() > 1_000);
/// ```
pub fn ephemeral_ports() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_port_range(&text)
}

fn parse_port_range(text: &str) -> Option<usize> {
    let mut it = text.split_whitespace().map(|f| f.parse::<usize>().ok());
    let (low, high) = (it.next()??, it.next()??);
    (high >= low).then(|| high - low + 1)
}

/// The kernel's count of connections dropped because a listen queue was full
/// (`TcpExt: ListenOverflows` of `/proc/net/netstat`, machine-wide). A connect storm
/// that overflows the server's backlog measures SYN retransmission timers (1 s), not
/// the server: the delta over a phase says whether that happened.
///
/// ```
/// assert!(benches::procfs::listen_overflows().is_some());
/// ```
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    parse_netstat(&text, "TcpExt:", "ListenOverflows")
}

fn parse_netstat(text: &str, prefix: &str, field: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    // Lines come in pairs: names, then values.
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let names = names.split_whitespace();
        let values = values.split_whitespace();
        if let Some((_, v)) = names.zip(values).find(|(n, _)| *n == field) {
            return v.parse().ok();
        }
    }
    None
}

/// The machine a run happened on, for reports: a number means little without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// The CPU model (`model name` of `/proc/cpuinfo`).
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// The soft limit on open files of this process.
    pub open_files: Option<u64>,
}

impl Machine {
    /// Reads the machine description; missing facts read as "unknown" / 0.
    ///
    /// ```
    /// let m = benches::procfs::Machine::detect();
    /// assert!(m.cpus >= 1);
    /// ```
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map(|kib| kib / 1024)
            .unwrap_or(0);
        let open_files = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_open_files(&l));
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            kernel,
            memory_mib,
            open_files,
        }
    }

    /// One line: "2 CPUs (AMD EPYC), 23 GiB, Linux 6.18, 20000 open files".
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {} MiB RAM, Linux {}, open files limit {}",
            self.cpus,
            self.cpu_model,
            self.memory_mib,
            self.kernel,
            self.open_files
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unknown".into())
        )
    }
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_sums_threads() {
        assert_eq!(parse_schedstat("123456789 2000 17\n"), Some(123_456_789));
        assert_eq!(parse_schedstat(""), None);
        // This process burns some CPU: the exact clock sees it, the tick clock may not.
        let me = std::process::id();
        let before = scheduled_time(me).unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = scheduled_time(me).unwrap();
        assert!(after > before, "{before:?} -> {after:?} ({x})");
    }

    #[test]
    fn parses_the_port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 1024"), Some(1));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("a b"), None);
    }

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tx\nVmPeak:\t  999 kB\nVmRSS:\t    4242 kB\nThreads:\t3\n";
        assert_eq!(parse_rss(status), Some(4242));
        assert_eq!(parse_rss("Name: x\n"), None);
        // comm with a space and a parenthesis; utime = 250 ticks, stime = 50 ticks.
        let stat = "123 (a) b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_cpu("123 (x) S 1"), None);
        assert_eq!(parse_cpu("no paren"), None);
    }

    #[test]
    fn parses_netstat_pairs() {
        let t = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 1156 1160\n\
                 IpExt: InNoRoutes\nIpExt: 7\n";
        assert_eq!(parse_netstat(t, "TcpExt:", "ListenOverflows"), Some(1156));
        assert_eq!(parse_netstat(t, "IpExt:", "InNoRoutes"), Some(7));
        assert_eq!(parse_netstat(t, "TcpExt:", "Missing"), None);
    }

    #[test]
    fn parses_limits() {
        let l = "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max open files            20000                20000                files\n";
        assert_eq!(parse_open_files(l), Some(20000));
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap_or(0) > 100);
        // Burn a little CPU so the counter is non-zero on any machine.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert!(x != 1 || cpu_time(me).is_some());
        assert!(cpu_time(me).is_some());
        assert!(rss_kib(u32::MAX).is_none());
    }
}
