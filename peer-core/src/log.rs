//! What a peer logs: one-line summaries of messages (btcd `messageSummary`, §11) and
//! hex dumps for trace level.
//!
//! Everything here is lazy: the types implement `Display` and are only formatted when a
//! `tracing` subscriber enables the event, so the hot path pays one interest check.

use core::fmt;

use wire_codec::message::{InvType, InvVect, Message, Reject};
use wire_codec::Hash256;

/// The longest reject reason shown (btcd `maxRejectReasonLen`).
pub const MAX_REJECT_REASON_LEN: usize = 250;

/// Keeps only the characters btcd's `sanitizeString` allows, truncating to `max`
/// characters with `...` appended (0 = no limit).
///
/// ```
/// assert_eq!(peer_core::log::sanitize("bad\u{7}\nreason!", 0), "badreason");
/// assert_eq!(peer_core::log::sanitize("abcdef", 3), "abc...");
/// ```
pub fn sanitize(s: &str, max: usize) -> String {
    const SAFE: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890 .,;_/:?@";
    let mut out: String = s.chars().filter(|c| SAFE.contains(*c)).collect();
    if max > 0 && out.len() > max {
        out.truncate(max);
        out.push_str("...");
    }
    out
}

struct InvSummary<'a>(&'a [InvVect]);

impl fmt::Display for InvSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("empty"),
            [iv] => {
                let kind = match iv.kind {
                    InvType::ERROR => "error",
                    InvType::WITNESS_BLOCK => "witness block",
                    InvType::BLOCK => "block",
                    InvType::WITNESS_TX => "witness tx",
                    InvType::TX => "tx",
                    InvType::WTX => "wtx",
                    other => return write!(f, "unknown ({}) {}", other.0, iv.hash),
                };
                write!(f, "{kind} {}", iv.hash)
            }
            many => write!(f, "size {}", many.len()),
        }
    }
}

/// btcd `formatLockTime`: block heights below 500,000,000, Unix times above.
struct LockTime(u32);

impl fmt::Display for LockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 500_000_000 {
            write!(f, "height {}", self.0)
        } else {
            write!(f, "time {}", self.0)
        }
    }
}

struct LocatorSummary<'a>(&'a [Hash256], &'a Hash256);

impl fmt::Display for LocatorSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.first() {
            Some(h) => write!(f, "locator {h}, stop {}", self.1),
            None => write!(f, "no locator, stop {}", self.1),
        }
    }
}

fn reject_summary(r: &Reject, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "cmd {}, code {}, reason {}",
        sanitize(&r.message, 12),
        r.code,
        sanitize(&r.reason, MAX_REJECT_REASON_LEN)
    )?;
    if let Some(h) = &r.hash {
        write!(f, ", hash {h}")?;
    }
    Ok(())
}

/// A one-line description of a message's content (empty for messages without one),
/// after btcd's `messageSummary`.
///
/// ```
/// use wire_codec::message::{Message, Ping};
/// use peer_core::log::Summary;
/// assert_eq!(Summary(&Message::Ping(Ping { nonce: 7 })).to_string(), "nonce 7");
/// ```
pub struct Summary<'a>(pub &'a Message);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Message::Version(v) => write!(
                f,
                "agent {}, pver {}, block {}",
                sanitize(&v.user_agent, 256),
                v.version,
                v.start_height
            ),
            Message::Ping(p) => write!(f, "nonce {}", p.nonce),
            Message::Pong(p) => write!(f, "nonce {}", p.nonce),
            Message::Addr(a) => write!(f, "{} addr", a.addresses.len()),
            Message::AddrV2(a) => write!(f, "{} addr", a.addresses.len()),
            Message::Tx(t) => write!(
                f,
                "hash {}, {} inputs, {} outputs, lock {}",
                t.txid(),
                t.input_count(),
                t.output_count(),
                LockTime(t.lock_time())
            ),
            Message::Block(b) => write!(
                f,
                "hash {}, ver {}, {} tx, time {}",
                b.header.hash(),
                b.header.version,
                b.txs.len(),
                b.header.time
            ),
            Message::Inv(i) | Message::GetData(i) | Message::NotFound(i) => {
                InvSummary(&i.inventory).fmt(f)
            }
            Message::GetBlocks(l) | Message::GetHeaders(l) => {
                LocatorSummary(&l.locator, &l.stop).fmt(f)
            }
            Message::Headers(h) => write!(f, "num {}", h.headers.len()),
            Message::GetCFHeaders(m) => write!(
                f,
                "start_height={}, stop_hash={}",
                m.start_height, m.stop_hash
            ),
            Message::CFHeaders(m) => write!(
                f,
                "stop_hash={}, num_filter_hashes={}",
                m.stop_hash,
                m.filter_hashes.len()
            ),
            Message::Reject(r) => reject_summary(r, f),
            Message::FeeFilter(m) => write!(f, "feerate {}", m.feerate),
            Message::Unknown { payload, .. } => write!(f, "{} bytes", payload.len()),
            _ => Ok(()),
        }
    }
}

/// Lower-case hex of raw bytes, for trace-level dumps.
///
/// ```
/// assert_eq!(peer_core::log::Hex(&[0xde, 0xad]).to_string(), "dead");
/// ```
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_codec::message::{BlockLocator, Inventory, RejectCode};

    #[test]
    fn summaries_follow_btcd() {
        let h = Hash256([1; 32]);
        let inv = |v: Vec<InvVect>| Message::Inv(Inventory::new(v));
        assert_eq!(Summary(&inv(vec![])).to_string(), "empty");
        assert_eq!(
            Summary(&inv(vec![InvVect::new(InvType::BLOCK, h)])).to_string(),
            format!("block {h}")
        );
        assert_eq!(
            Summary(&inv(vec![InvVect::new(InvType(77), h)])).to_string(),
            format!("unknown (77) {h}")
        );
        assert_eq!(
            Summary(&inv(vec![InvVect::new(InvType::TX, h); 3])).to_string(),
            "size 3"
        );
        let loc = Message::GetHeaders(BlockLocator {
            version: 70016,
            locator: vec![],
            stop: Hash256::ZERO,
        });
        assert_eq!(
            Summary(&loc).to_string(),
            format!("no locator, stop {}", Hash256::ZERO)
        );
        let rej = Message::Reject(Box::new(Reject {
            message: "block\n".into(),
            code: RejectCode::DUPLICATE,
            reason: "dupe (block)".into(),
            hash: Some(h),
        }));
        assert_eq!(
            Summary(&rej).to_string(),
            format!("cmd block, code REJECT_DUPLICATE, reason dupe block, hash {h}")
        );
        assert_eq!(Summary(&Message::Verack).to_string(), "");
        let tx = wire_codec::message::Transaction::build(2, &[], &[], 600_000_000);
        assert_eq!(
            Summary(&Message::Tx(tx.clone())).to_string(),
            format!(
                "hash {}, 0 inputs, 0 outputs, lock time 600000000",
                tx.txid()
            )
        );
        assert_eq!(LockTime(10).to_string(), "height 10");
    }
}
