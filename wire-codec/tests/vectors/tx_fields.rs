//! Fields of `tx` and `block`, read through the transaction accessors.

use serde_json::{json, Value};
use wire_codec::message::{Block, Transaction};

use super::fields::{hash, header};
use crate::support::to_hex;

/// A transaction's fields.
pub fn tx(t: &Transaction) -> Result<Value, String> {
    let inputs: Vec<Value> = t
        .inputs()
        .map(|i| {
            json!({
                "prevout_hash": hash(&i.prevout.txid),
                "prevout_index": i.prevout.vout,
                "script_sig_hex": to_hex(&i.script_sig),
                "sequence": i.sequence,
                "witness_hex": i.witness.iter().map(|w| to_hex(w)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outputs: Vec<Value> = t
        .outputs()
        .map(|o| json!({ "value": o.value, "script_pubkey_hex": to_hex(&o.script_pubkey) }))
        .collect();
    Ok(json!({
        "txid": hash(&t.txid()),
        "wtxid": hash(&t.wtxid()),
        "version": t.version(),
        "locktime": t.lock_time(),
        "has_witness": t.has_witness(),
        "inputs": inputs,
        "outputs": outputs,
    }))
}

/// A block's fields.
pub fn block(b: &Block) -> Result<Value, String> {
    Ok(json!({
        "header": header(&b.header),
        "tx_count": b.txs.len(),
        "txids": b.txs.iter().map(|t| hash(&t.txid())).collect::<Vec<_>>(),
        "wtxids": b.txs.iter().map(|t| hash(&t.wtxid())).collect::<Vec<_>>(),
    }))
}
