//! Conformance with the shared wire vectors (`shared/vectors`, format in its README).
//!
//! Every positive vector must decode on its network, at its protocol version, to exactly
//! its `fields`, and re-encode to exactly its frame; every negative vector must fail with
//! the error class it names. All mismatches are collected and reported together.
//!
//! `PEERWIRE_VECTORS` overrides the directory (default: `shared/vectors` beside the
//! workspace).

#[path = "vectors/addr_names.rs"]
mod addr_names;
#[path = "vectors/fields.rs"]
mod fields;
mod support;
#[path = "vectors/tx_fields.rs"]
mod tx_fields;

use bytes::BytesMut;
use serde_json::Value;
use wire_codec::message::{BlockHeader, Headers};
use wire_codec::{encode_frame, Context, FrameDecoder, Hash256, Message, Network, HEADER_LEN};

use support::{hex_field, load_vector_files, protocol_version, str_field, to_hex, vectors_dir};

/// What went wrong with one vector.
struct Failure {
    id: String,
    file: String,
    reason: String,
}

fn network_of(v: &Value) -> Result<Network, String> {
    let name = str_field(v, "network")?;
    let net: Network = name.parse().map_err(|e| format!("{e}"))?;
    let magic = hex_field(v, "magic_hex")?;
    if magic != net.magic() {
        return Err(format!(
            "magic_hex {} is not the magic of {name} ({})",
            to_hex(&magic),
            to_hex(&net.magic())
        ));
    }
    Ok(net)
}

/// Decodes a positive vector and checks fields, payload and re-encoding.
fn check_positive(v: &Value) -> Result<(), String> {
    let net = network_of(v)?;
    let pver = protocol_version(v)?;
    let ctx = Context::new(net, pver);
    let command = str_field(v, "command")?;
    let frame_bytes = hex_field(v, "frame_hex")?;
    let payload = hex_field(v, "payload_hex")?;

    let mut buf = BytesMut::from(&frame_bytes[..]);
    let mut dec = FrameDecoder::new(net);
    let frame = match dec.decode(&mut buf) {
        Ok(Some(f)) => f,
        Ok(None) => return Err("frame decoder wants more bytes than the frame has".into()),
        Err(e) => return Err(format!("frame decoder: {e}")),
    };
    if !buf.is_empty() {
        return Err(format!("{} bytes left after the frame", buf.len()));
    }
    if frame.header.command.as_str() != command {
        return Err(format!(
            "header command {:?}, vector says {command:?}",
            frame.header.command.as_str()
        ));
    }
    if frame.payload[..] != payload[..] {
        return Err("frame payload differs from payload_hex".into());
    }
    let msg = frame
        .decode(&ctx)
        .map_err(|e| format!("decode at pver {pver}: {e} (class {})", e.class().as_str()))?;
    if msg.command().as_str() != command {
        return Err(format!("decoded as {:?}", msg.command().as_str()));
    }

    let mut expected = v["fields"].clone();
    if let Value::Object(m) = &mut expected {
        for k in fields::underivable_keys(command) {
            m.remove(*k);
        }
    }
    let actual = fields::fields(&msg)?;
    if actual != expected {
        let diffs = fields::differences(&expected, &actual, 5);
        return Err(format!("fields differ: {}", diffs.join("; ")));
    }

    let mut out = BytesMut::new();
    let n = encode_frame(net.magic(), &msg, &ctx, &mut out).map_err(|e| format!("encode: {e}"))?;
    if n != out.len() {
        return Err(format!("encode_frame returned {n}, wrote {}", out.len()));
    }
    if out.len() < HEADER_LEN || out[HEADER_LEN..] != payload[..] {
        return Err(format!(
            "re-encoded payload differs ({} bytes, vector has {})",
            out.len().saturating_sub(HEADER_LEN),
            payload.len()
        ));
    }
    if out[..] != frame_bytes[..] {
        return Err("re-encoded frame header differs from frame_hex".into());
    }
    Ok(())
}

/// Decodes a negative vector and checks the error class.
fn check_negative(v: &Value) -> Result<(), String> {
    let net = network_of(v)?;
    let pver = protocol_version(v)?;
    let ctx = Context::new(net, pver);
    let want = str_field(v, "expect_error")?;
    let frame_bytes = hex_field(v, "frame_hex")?;

    let mut buf = BytesMut::from(&frame_bytes[..]);
    let capacity_before = buf.capacity();
    let mut dec = FrameDecoder::new(net);
    let got = match dec.decode(&mut buf) {
        Err(e) => {
            if want == "oversize" {
                // The frame is a header only; refusing it must not touch the buffer
                // (nothing reserved, nothing consumed).
                if frame_bytes.len() != HEADER_LEN {
                    return Err(format!("oversize vector holds {} bytes", frame_bytes.len()));
                }
                if buf.len() != HEADER_LEN || buf.capacity() != capacity_before {
                    return Err(format!(
                        "oversize refusal changed the buffer: len {} cap {} (was {capacity_before})",
                        buf.len(),
                        buf.capacity()
                    ));
                }
            }
            e.class().as_str().to_string()
        }
        // A frame cut short: the decoder waits for bytes that never come.
        Ok(None) if !buf.is_empty() || dec.pending_header().is_some() => {
            if dec.bytes_needed(&buf) == 0 {
                return Err("decoder returned None but says it needs no more bytes".into());
            }
            "truncated".to_string()
        }
        Ok(None) => return Err("empty frame".into()),
        Ok(Some(frame)) => match frame.decode(&ctx) {
            Err(e) => e.class().as_str().to_string(),
            Ok(m) => {
                return Err(format!(
                    "decoded without error as {:?} (want {want})",
                    m.command().as_str()
                ))
            }
        },
    };
    if got != want {
        return Err(format!("error class {got:?}, want {want:?}"));
    }
    Ok(())
}

#[test]
fn every_vector_conforms() {
    let dir = vectors_dir();
    let files = load_vector_files(&dir);
    let (mut positive, mut negative) = (0usize, 0usize);
    let mut failures = Vec::new();
    for file in &files {
        for v in &file.vectors {
            let id = v["id"].as_str().unwrap_or("<no id>").to_string();
            let result = if v.get("expect_error").is_some() {
                negative += 1;
                check_negative(v)
            } else {
                positive += 1;
                check_positive(v)
            };
            if let Err(reason) = result {
                failures.push(Failure {
                    id,
                    file: file.name.clone(),
                    reason,
                });
            }
        }
    }
    println!(
        "checked {} vectors ({positive} positive, {negative} negative) from {} files in {}",
        positive + negative,
        files.len(),
        dir.display()
    );
    assert!(
        positive + negative > 0,
        "no vectors found in {}",
        dir.display()
    );
    if !failures.is_empty() {
        let mut report = format!(
            "{} of {} vectors failed:\n",
            failures.len(),
            positive + negative
        );
        for f in &failures {
            report.push_str(&format!("  {} ({}): {}\n", f.id, f.file, f.reason));
        }
        panic!("{report}");
    }
}

/// Finds one vector by id.
fn vector(id: &str) -> Value {
    let dir = vectors_dir();
    load_vector_files(&dir)
        .into_iter()
        .flat_map(|f| f.vectors)
        .find(|v| v["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("vector {id} not found in {}", dir.display()))
}

fn hash(display: &str) -> Hash256 {
    display.parse().expect("64 hex digits")
}

const LBRY_GENESIS: &str = "9c89283ba0f3227f6c03b70216b9f665f0118d5e0fa729cedf4fb34d6a34f463";
const BITCOIN_GENESIS: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

/// The LBRY mainnet genesis header, built from its fields (btcd-peer.md §15.2, lbcd
/// `chaincfg/genesis.go`), is 112 bytes and hashes to the chain's genesis hash; decoded
/// from a `headers` payload on an LBRY network it gives the same header back.
#[test]
fn lbry_genesis_header_hashes_to_the_genesis_hash() {
    let mut claim_trie = [0u8; 32];
    claim_trie[0] = 1;
    let h = BlockHeader {
        version: 1,
        prev_block: Hash256::ZERO,
        merkle_root: hash("b8211c82c3d15bcd78bba57005b86fed515149a53a425eb592c07af99fe559cc"),
        claim_trie: Some(Hash256(claim_trie)),
        time: 1_446_058_291,
        bits: 0x1f00_ffff,
        nonce: 1287,
    };
    let raw = h.to_bytes();
    assert_eq!(raw.len(), 112);
    assert_eq!(
        to_hex(&raw[raw.len() - 12..]),
        "33193156ffff001f07050000",
        "time, bits, nonce at offsets 100..112"
    );
    assert_eq!(h.hash().to_string(), LBRY_GENESIS);

    // The same bytes as one entry of a `headers` message on LBRY mainnet.
    let ctx = Context::new(Network::LbryMainnet, 70013);
    let msg = Message::Headers(Headers { headers: vec![h] });
    let mut payload = BytesMut::new();
    msg.encode_payload(&mut payload, &ctx).expect("encodes");
    assert_eq!(payload.len(), 1 + 112 + 1);
    assert_eq!(&payload[1..113], &raw[..]);
    let back = Message::decode(msg.command(), payload.freeze(), &ctx).expect("decodes");
    assert_eq!(back, msg);

    // On a Bitcoin network the same 114 bytes are not an 80-byte header plus count.
    let btc = Context::new(Network::Mainnet, 70016);
    let mut payload = BytesMut::new();
    msg.encode_payload(&mut payload, &ctx).expect("encodes");
    assert!(Message::decode(msg.command(), payload.freeze(), &btc).is_err());
}

/// lbcd's own genesis block frame decodes on LBRY mainnet and its header hashes to the
/// genesis hash.
#[test]
fn lbry_genesis_block_vector_decodes_and_hashes() {
    let v = vector("block-genesis-lbry-mainnet");
    let frame = hex_field(&v, "frame_hex").expect("hex");
    let mut buf = BytesMut::from(&frame[..]);
    let f = FrameDecoder::new(Network::LbryMainnet)
        .decode(&mut buf)
        .expect("valid frame")
        .expect("whole frame");
    // The header is the first 112 bytes of the payload, whatever the block decoder does.
    let mut r_payload = f.payload.clone();
    let header_bytes = r_payload.split_to(112);
    let mut r = wire_codec::Reader::new(&header_bytes);
    let h = BlockHeader::decode_kind(&mut r, wire_codec::HeaderKind::Lbry).expect("header");
    assert_eq!(h.hash().to_string(), LBRY_GENESIS);
    match f.decode(&Context::new(Network::LbryMainnet, 70013)) {
        Ok(Message::Block(b)) => {
            assert_eq!(b.header, h);
            assert_eq!(b.header.hash().to_string(), LBRY_GENESIS);
            assert_eq!(b.txs.len(), 1, "the genesis block has one transaction");
        }
        other => panic!("LBRY genesis block did not decode as a block: {other:?}"),
    }
}

/// Bitcoin's genesis header hashes to the genesis hash, and the genesis block frame of the
/// vectors decodes to that header.
#[test]
fn bitcoin_genesis_hashes_to_the_genesis_hash() {
    let h = BlockHeader {
        version: 1,
        prev_block: Hash256::ZERO,
        merkle_root: hash("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"),
        claim_trie: None,
        time: 1_231_006_505,
        bits: 0x1d00_ffff,
        nonce: 2_083_236_893,
    };
    assert_eq!(h.to_bytes().len(), 80);
    assert_eq!(h.hash().to_string(), BITCOIN_GENESIS);

    let v = vector("block-genesis-mainnet");
    let frame = hex_field(&v, "frame_hex").expect("hex");
    let mut buf = BytesMut::from(&frame[..]);
    let f = FrameDecoder::new(Network::Mainnet)
        .decode(&mut buf)
        .expect("valid frame")
        .expect("whole frame");
    assert_eq!(&f.payload[..80], &h.to_bytes()[..]);
    match f.decode(&Context::new(Network::Mainnet, 70016)) {
        Ok(Message::Block(b)) => {
            assert_eq!(b.header, h);
            assert_eq!(b.txs.len(), 1, "the genesis block has one transaction");
        }
        other => panic!("Bitcoin genesis block did not decode as a block: {other:?}"),
    }
}
