//! Helpers shared by the integration tests: hex, and loading the shared wire vectors.
//!
//! Each integration test is its own crate and uses a different subset of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes from hex (either case); `None` on odd length or a non-hex digit.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// The directory holding the vectors: `$PEERWIRE_VECTORS`, else `shared/vectors` beside the
/// workspace root (`<workspace>/../shared/vectors`).
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("PEERWIRE_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    }
}

/// One vector file: its name and its `vectors` array.
pub struct VectorFile {
    /// File name (no directory).
    pub name: String,
    /// The vectors, as JSON.
    pub vectors: Vec<Value>,
}

/// Every `*.json` file of `dir`, sorted by name. Panics with a clear message when the
/// directory cannot be read or a file is not a vector file, because then nothing can be
/// checked.
pub fn load_vector_files(dir: &Path) -> Vec<VectorFile> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the vector directory {} ({e}); set PEERWIRE_VECTORS",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let mut doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            let vectors = match doc.get_mut("vectors").map(Value::take) {
                Some(Value::Array(v)) => v,
                _ => panic!("{} has no \"vectors\" array", p.display()),
            };
            VectorFile {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                vectors,
            }
        })
        .collect()
}

/// A vector's `protocol_version`: a JSON number or a string of digits.
pub fn protocol_version(v: &Value) -> Result<u32, String> {
    let pv = &v["protocol_version"];
    let n = match pv {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().ok()
        }
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("bad protocol_version {pv}"))
}

/// A string field of a vector.
pub fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key]
        .as_str()
        .ok_or_else(|| format!("missing string field {key:?}"))
}

/// A hex field of a vector, decoded.
pub fn hex_field(v: &Value, key: &str) -> Result<Vec<u8>, String> {
    from_hex(str_field(v, key)?).ok_or_else(|| format!("field {key:?} is not hex"))
}

/// Every frame of every vector (positive and negative) with its network name, for
/// seeding fuzzers and replaying them.
pub fn all_vector_frames(dir: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for file in load_vector_files(dir) {
        for v in &file.vectors {
            if let (Ok(id), Ok(net), Ok(frame)) = (
                str_field(v, "id"),
                str_field(v, "network"),
                hex_field(v, "frame_hex"),
            ) {
                out.push((id.to_string(), net.to_string(), frame));
            }
        }
    }
    out
}
