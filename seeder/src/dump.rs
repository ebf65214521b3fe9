//! `--dump PATH`: sipa's `dnsseed.dump` text format, which seed-list scripts (Core's
//! `contrib/seeds/makeseeds.py`) read. Every node we ever reached, most reliable first;
//! written to a temporary file and renamed, so a reader never sees half a dump.

use std::io::Write;
use std::path::Path;

use crate::node::{Node, Rules};

/// The header line, as sipa's seeder writes it.
pub const HEADER: &str = "# address                                        good  lastSuccess    %(2h)   %(8h)   %(1d)   %(7d)  %(30d)  blocks      svcs  version";

/// One node's line.
///
/// ```
/// use seeder::{dump, node::{Node, Rules}};
/// let rules = Rules::for_network(wire_codec::Network::Regtest, true);
/// let mut n = Node::untried("127.1.0.1:18444".parse().unwrap(), 0);
/// n.record_success(1_700_000_000, 70016, 9, 120, "/Satoshi:27.0.0/".into(), 2);
/// let line = dump::line(&n, &rules, 1_700_000_000);
/// assert!(line.starts_with("127.1.0.1:18444"));
/// assert!(line.ends_with("70016 \"/Satoshi:27.0.0/\""));
/// ```
pub fn line(n: &Node, rules: &Rules, now: u64) -> String {
    let w = &n.reliability.windows;
    let ua: String = n
        .user_agent
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    format!(
        "{:<47}  {:4}  {:11}  {:6.2}% {:6.2}% {:6.2}% {:6.2}% {:6.2}%  {:6}  {:08x}  {:5} \"{}\"",
        n.addr.to_string(),
        i32::from(n.is_good(rules, now)),
        n.last_success,
        100.0 * w[0].reliability,
        100.0 * w[1].reliability,
        100.0 * w[2].reliability,
        100.0 * w[3].reliability,
        100.0 * w[4].reliability,
        n.height,
        n.services,
        n.version,
        ua
    )
}

/// The whole dump: every node with a success, sorted as sipa's (1-month reliability,
/// then 1-week, then version, all descending).
pub fn render<'a>(nodes: impl IntoIterator<Item = &'a Node>, rules: &Rules, now: u64) -> String {
    let mut v: Vec<&Node> = nodes.into_iter().filter(|n| n.success > 0).collect();
    v.sort_by(|a, b| {
        let (aw, bw) = (&a.reliability.windows, &b.reliability.windows);
        bw[4]
            .reliability
            .total_cmp(&aw[4].reliability)
            .then(bw[3].reliability.total_cmp(&aw[3].reliability))
            .then(b.version.cmp(&a.version))
    });
    let mut out = String::with_capacity(160 * (v.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for n in v {
        out.push_str(&line(n, rules, now));
        out.push('\n');
    }
    out
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reached_nodes_sorted_by_reliability() {
        let rules = Rules::for_network(wire_codec::Network::Regtest, true);
        let mut a = Node::untried("127.1.0.1:18444".parse().unwrap(), 0);
        a.record_success(100, 70016, 9, 1, "/a\"b/".into(), 1);
        a.record_failure(200, 0, &rules);
        let mut b = Node::untried("127.2.0.1:18444".parse().unwrap(), 0);
        b.record_success(100, 70015, 9, 1, "/b/".into(), 1);
        let c = Node::untried("127.3.0.1:18444".parse().unwrap(), 0);
        let text = render([&a, &b, &c], &rules, 200);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert!(lines[1].starts_with("127.2.0.1:18444"));
        assert!(
            lines[2].contains("\"/ab/\""),
            "quotes removed: {}",
            lines[2]
        );
    }
}
