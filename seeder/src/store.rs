//! SQLite persistence of the node table: one row per address, written in batches of
//! changed nodes, read whole at start, so a restart serves the good nodes it knew.
//!
//! The reliability windows are one 60-byte blob per row: five windows of (weight,
//! count, reliability) as little-endian `f32`, 2h first.

use std::net::SocketAddr;
use std::path::Path;

use rusqlite::{params, Connection};

use crate::error::Error;
use crate::node::Node;
use crate::stats::{Reliability, Window};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    addr TEXT PRIMARY KEY NOT NULL,
    services INTEGER NOT NULL,
    version INTEGER NOT NULL,
    height INTEGER NOT NULL,
    user_agent TEXT NOT NULL,
    rtt_ms INTEGER NOT NULL,
    last_try INTEGER NOT NULL,
    last_success INTEGER NOT NULL,
    ignore_till INTEGER NOT NULL,
    ban_till INTEGER NOT NULL,
    total INTEGER NOT NULL,
    success INTEGER NOT NULL,
    windows BLOB NOT NULL
) WITHOUT ROWID;
";

/// An open node database.
///
/// ```
/// use seeder::{node::Node, store::Store};
/// let dir = std::env::temp_dir().join(format!("seeder-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("nodes.sqlite");
/// let mut store = Store::open(&path).unwrap();
/// store.save(&[Node::untried("127.1.0.1:18444".parse().unwrap(), 9)]).unwrap();
/// assert_eq!(Store::open(&path).unwrap().load().unwrap().len(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    /// Every stored node. Rows whose address does not parse are skipped.
    pub fn load(&self) -> Result<Vec<Node>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT addr, services, version, height, user_agent, rtt_ms, last_try, \
             last_success, ignore_till, ban_till, total, success, windows FROM nodes",
        )?;
        let rows = stmt.query_map([], |r| {
            let addr: String = r.get(0)?;
            let blob: Vec<u8> = r.get(12)?;
            Ok((
                addr,
                Node {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    services: r.get::<_, i64>(1)? as u64,
                    version: r.get::<_, i64>(2)? as u32,
                    height: r.get::<_, i64>(3)? as i32,
                    user_agent: r.get(4)?,
                    rtt_ms: r.get::<_, i64>(5)? as u32,
                    last_try: r.get::<_, i64>(6)? as u64,
                    last_success: r.get::<_, i64>(7)? as u64,
                    ignore_till: r.get::<_, i64>(8)? as u64,
                    ban_till: r.get::<_, i64>(9)? as u64,
                    total: r.get::<_, i64>(10)? as u32,
                    success: r.get::<_, i64>(11)? as u32,
                    reliability: decode_windows(&blob),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (addr, mut node) = row?;
            if let Ok(a) = addr.parse() {
                node.addr = a;
                out.push(node);
            }
        }
        Ok(out)
    }

    /// Inserts or replaces `nodes` in one transaction.
    pub fn save(&mut self, nodes: &[Node]) -> Result<(), Error> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO nodes (addr, services, version, height, user_agent, \
                 rtt_ms, last_try, last_success, ignore_till, ban_till, total, success, windows) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for n in nodes {
                stmt.execute(params![
                    n.addr.to_string(),
                    n.services as i64,
                    i64::from(n.version),
                    i64::from(n.height),
                    n.user_agent,
                    i64::from(n.rtt_ms),
                    n.last_try as i64,
                    n.last_success as i64,
                    n.ignore_till as i64,
                    n.ban_till as i64,
                    i64::from(n.total),
                    i64::from(n.success),
                    encode_windows(&n.reliability),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn encode_windows(r: &Reliability) -> Vec<u8> {
    let mut out = Vec::with_capacity(60);
    for w in &r.windows {
        out.extend_from_slice(&w.weight.to_le_bytes());
        out.extend_from_slice(&w.count.to_le_bytes());
        out.extend_from_slice(&w.reliability.to_le_bytes());
    }
    out
}

/// A blob of the wrong length reads as empty windows (the node is re-learned).
fn decode_windows(b: &[u8]) -> Reliability {
    let mut r = Reliability::default();
    if b.len() != 60 {
        return r;
    }
    let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    for (k, w) in r.windows.iter_mut().enumerate() {
        let o = k * 12;
        let sane = |x: f32| if x.is_finite() { x } else { 0.0 };
        *w = Window {
            weight: sane(f(o)),
            count: sane(f(o + 4)),
            reliability: sane(f(o + 8)),
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nodes_round_trip() {
        let dir = std::env::temp_dir().join(format!("seeder-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite");
        let _ = std::fs::remove_file(&path);
        let mut n = Node::untried("[2a01:4f8::1]:8333".parse().unwrap(), 9);
        n.record_success(1000, 70016, 1033, 800_000, "/Satoshi:27.0.0/".into(), 42);
        let m = Node::untried("127.1.2.3:18444".parse().unwrap(), 1);
        {
            let mut s = Store::open(&path).unwrap();
            s.save(&[n.clone(), m.clone()]).unwrap();
            n.rtt_ms = 7;
            s.save(&[n.clone()]).unwrap();
        }
        let mut back = Store::open(&path).unwrap().load().unwrap();
        back.sort_by_key(|x| x.addr.to_string());
        assert_eq!(back, vec![m, n]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest! {
        #[test]
        fn any_blob_decodes_to_finite_windows(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let r = decode_windows(&b);
            for w in r.windows {
                prop_assert!(w.weight.is_finite() && w.count.is_finite() && w.reliability.is_finite());
            }
        }
    }
}
