//! The vectors' `fields` objects, computed from decoded messages (README "Fields").

use serde_json::{json, Map, Value};
use wire_codec::message::{AddrV2Entry, BlockHeader, InvVect, NetAddress, Transaction};
use wire_codec::{Hash256, Message};

use super::addr_names::addr_text;
use crate::support::to_hex;

/// Keys of `fields` that cannot be derived from a decoded message, per command. They are
/// removed from the expected object before comparing.
pub fn underivable_keys(command: &str) -> &'static [&'static str] {
    match command {
        // Whether a cmpctblock's short ids were made from txids (v1) or wtxids (v2) is
        // not on the wire: it was fixed by the `sendcmpct` version negotiated earlier.
        // (Checking it would need the block's transactions, which a cmpctblock lacks.)
        "cmpctblock" => &["short_id_kind"],
        _ => &[],
    }
}

/// `{display, internal}`.
pub fn hash(h: &Hash256) -> Value {
    json!({ "display": h.to_string(), "internal": h.to_internal_hex() })
}

fn hashes(hs: &[Hash256]) -> Value {
    Value::Array(hs.iter().map(hash).collect())
}

fn net_address(a: &NetAddress) -> Value {
    json!({
        "time": a.time,
        "services": a.services.0,
        "ip": a.ip().to_string(),
        "port": a.port,
    })
}

fn addrv2_entry(e: &AddrV2Entry) -> Value {
    json!({
        "time": e.time,
        "services": e.services.0,
        "network_id": e.network.0,
        "addr_hex": to_hex(&e.addr),
        "addr": addr_text(e),
        "port": e.port,
    })
}

fn inventory(list: &[InvVect]) -> Value {
    let entries = list
        .iter()
        .map(|iv| json!({ "type": iv.kind.0, "hash": hash(&iv.hash) }))
        .collect();
    json!({ "inventory": Value::Array(entries) })
}

/// A block header inside `block`, `merkleblock` and `cmpctblock` (no `tx_count`).
pub fn header(h: &BlockHeader) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), json!(h.version));
    m.insert("prev_block".into(), hash(&h.prev_block));
    m.insert("merkle_root".into(), hash(&h.merkle_root));
    if let Some(c) = &h.claim_trie {
        m.insert("claim_trie".into(), hash(c));
    }
    m.insert("time".into(), json!(h.time));
    m.insert("bits".into(), json!(h.bits));
    m.insert("nonce".into(), json!(h.nonce));
    m.insert("hash".into(), hash(&h.hash()));
    Value::Object(m)
}

/// A transaction's fields.
pub fn tx(t: &Transaction) -> Result<Value, String> {
    crate::tx_fields::tx(t)
}

/// BIP152 differential encoding of absolute indexes, as on the wire.
fn index_diffs(indexes: impl IntoIterator<Item = u64>) -> Value {
    let mut prev: Option<u64> = None;
    let mut diffs = Vec::new();
    for i in indexes {
        let d = match prev {
            None => i,
            Some(p) => i.wrapping_sub(p).wrapping_sub(1),
        };
        diffs.push(json!(d));
        prev = Some(i);
    }
    Value::Array(diffs)
}

/// The `fields` object of `msg`.
pub fn fields(msg: &Message) -> Result<Value, String> {
    let v = match msg {
        Message::Version(v) => json!({
            "version": v.version,
            "services": v.services.0,
            "timestamp": v.timestamp,
            "addr_recv": net_address(&v.receiver),
            "addr_from": net_address(&v.sender),
            "nonce": v.nonce,
            "user_agent": v.user_agent,
            "start_height": v.start_height,
            "relay": v.relay,
            "relay_present": v.relay_present,
        }),
        Message::Verack
        | Message::GetAddr
        | Message::SendAddrV2
        | Message::MemPool
        | Message::SendHeaders
        | Message::FilterClear
        | Message::WtxidRelay => json!({}),
        Message::Ping(p) => json!({ "nonce": p.nonce }),
        Message::Pong(p) => json!({ "nonce": p.nonce }),
        Message::Addr(a) => {
            json!({ "addresses": a.addresses.iter().map(net_address).collect::<Vec<_>>() })
        }
        Message::AddrV2(a) => {
            json!({ "addresses": a.addresses.iter().map(addrv2_entry).collect::<Vec<_>>() })
        }
        Message::Inv(i) | Message::GetData(i) | Message::NotFound(i) => inventory(&i.inventory),
        Message::GetBlocks(l) | Message::GetHeaders(l) => json!({
            "version": l.version,
            "locator": hashes(&l.locator),
            "stop": hash(&l.stop),
        }),
        Message::Headers(h) => {
            let list = h
                .headers
                .iter()
                .map(|h| {
                    let mut v = header(h);
                    if let Value::Object(m) = &mut v {
                        // `headers` entries carry a transaction count on the wire; the
                        // codec refuses any value but 0.
                        m.insert("tx_count".into(), json!(0));
                    }
                    v
                })
                .collect::<Vec<_>>();
            json!({ "headers": list })
        }
        Message::Block(b) => crate::tx_fields::block(b)?,
        Message::Tx(t) => tx(t)?,
        Message::Reject(r) => json!({
            "message": r.message,
            "code": r.code.0,
            "reason": r.reason,
            "hash": r.hash.as_ref().map(hash),
        }),
        Message::FeeFilter(f) => json!({ "feerate": f.feerate }),
        Message::FilterLoad(f) => json!({
            "filter_hex": to_hex(&f.filter),
            "hash_funcs": f.hash_funcs,
            "tweak": f.tweak,
            "flags": f.flags,
        }),
        Message::FilterAdd(f) => json!({ "data_hex": to_hex(&f.data) }),
        Message::MerkleBlock(m) => json!({
            "header": header(&m.header),
            "total_transactions": m.total_transactions,
            "hashes": hashes(&m.hashes),
            "flags_hex": to_hex(&m.flags),
        }),
        Message::GetCFilters(g) | Message::GetCFHeaders(g) => json!({
            "filter_type": g.filter_type,
            "start_height": g.start_height,
            "stop_hash": hash(&g.stop_hash),
        }),
        Message::CFilter(c) => json!({
            "filter_type": c.filter_type,
            "block_hash": hash(&c.block_hash),
            "filter_hex": to_hex(&c.filter),
        }),
        Message::CFHeaders(c) => json!({
            "filter_type": c.filter_type,
            "stop_hash": hash(&c.stop_hash),
            "previous_filter_header": hash(&c.previous_filter_header),
            "filter_hashes": hashes(&c.filter_hashes),
        }),
        Message::GetCFCheckpt(c) => json!({
            "filter_type": c.filter_type,
            "stop_hash": hash(&c.stop_hash),
        }),
        Message::CFCheckpt(c) => json!({
            "filter_type": c.filter_type,
            "stop_hash": hash(&c.stop_hash),
            "filter_headers": hashes(&c.filter_headers),
        }),
        Message::SendCmpct(s) => json!({ "announce": s.announce, "version": s.version }),
        Message::CmpctBlock(c) => {
            let diffs = index_diffs(c.prefilled.iter().map(|p| p.index));
            let mut prefilled = Vec::new();
            for (p, d) in c
                .prefilled
                .iter()
                .zip(diffs.as_array().into_iter().flatten())
            {
                prefilled.push(json!({ "index": p.index, "index_diff": d, "tx": tx(&p.tx)? }));
            }
            json!({
                "header": header(&c.header),
                "nonce": c.nonce,
                "short_ids_hex": c.short_ids.iter().map(|s| to_hex(s)).collect::<Vec<_>>(),
                "prefilled": prefilled,
            })
        }
        Message::GetBlockTxn(g) => json!({
            "block_hash": hash(&g.block_hash),
            "indexes": g.indexes,
            "indexes_diff": index_diffs(g.indexes.iter().copied()),
        }),
        Message::BlockTxn(b) => {
            let txs = b
                .transactions
                .iter()
                .map(tx)
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "block_hash": hash(&b.block_hash), "transactions": txs })
        }
        Message::Alert(a) => json!({
            "message_hex": to_hex(&a.payload),
            "signature_hex": to_hex(&a.signature),
        }),
        Message::SendTxRcncl(s) => json!({ "version": s.version, "salt": s.salt }),
        Message::Unknown { payload, .. } => json!({ "payload_hex": to_hex(payload) }),
        other => return Err(format!("no field mapping for {:?}", other.command())),
    };
    Ok(v)
}

/// Paths where `expected` and `actual` differ (at most `limit` of them).
pub fn differences(expected: &Value, actual: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", expected, actual, limit, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

fn diff_into(path: &str, e: &Value, a: &Value, limit: usize, out: &mut Vec<String>) {
    if out.len() >= limit || e == a {
        return;
    }
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let p = format!("{path}.{k}");
                match am.get(k) {
                    Some(av) => diff_into(&p, ev, av, limit, out),
                    None => out.push(format!("{p}: missing from decoded message")),
                }
                if out.len() >= limit {
                    return;
                }
            }
            for k in am.keys().filter(|k| !em.contains_key(*k)) {
                if out.len() >= limit {
                    return;
                }
                out.push(format!("{path}.{k}: not in the vector"));
            }
        }
        (Value::Array(ev), Value::Array(av)) if ev.len() == av.len() => {
            for (i, (x, y)) in ev.iter().zip(av).enumerate() {
                diff_into(&format!("{path}[{i}]"), x, y, limit, out);
            }
        }
        (Value::Array(ev), Value::Array(av)) => out.push(format!(
            "{path}: {} entries expected, {} decoded",
            ev.len(),
            av.len()
        )),
        _ => out.push(format!(
            "{path}: expected {}, decoded {}",
            short(e),
            short(a)
        )),
    }
}
