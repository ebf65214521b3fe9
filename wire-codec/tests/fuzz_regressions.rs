//! The fuzz targets' checks on stable Rust: every input saved in `fuzz/regressions/<target>/`
//! and every vector frame goes through the same functions the libFuzzer targets call
//! (`fuzz/src/lib.rs`, included here). A finding is a panic; all of them are collected and
//! reported together.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_logic;
mod support;

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use wire_codec::{Command, HEADER_LEN};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `check` on `input`; a panic becomes an error message.
fn run(check: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    catch_unwind(|| check(input)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

#[test]
fn saved_regressions_pass() {
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 2] = [
        ("frame_decode", fuzz_logic::frame_decode),
        ("message_decode", fuzz_logic::message_decode),
    ];
    let mut count = 0;
    let mut failures = Vec::new();
    for (target, check) in targets {
        let dir = fuzz_dir().join("regressions").join(target);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let input = std::fs::read(&path).expect("readable regression input");
            count += 1;
            if let Err(why) = run(check, &input) {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                failures.push(format!("{target}/{name}: {why}"));
            }
        }
    }
    println!("replayed {count} saved fuzz inputs");
    assert!(
        count > 0,
        "no regression inputs found under fuzz/regressions"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vector_frames_pass_the_fuzz_checks() {
    let frames = support::all_vector_frames(&support::vectors_dir());
    assert!(!frames.is_empty(), "no vectors found");
    let mut failures = Vec::new();
    for (id, _net, frame) in &frames {
        if let Err(why) = run(fuzz_logic::frame_decode, frame) {
            failures.push(format!("frame_decode {id}: {why}"));
        }
        let Some(header) = frame.get(..HEADER_LEN) else {
            continue;
        };
        let mut field = [0u8; 12];
        field.copy_from_slice(&header[4..16]);
        if let Ok(command) = Command::from_wire(field) {
            if let Some(input) = fuzz_logic::message_decode_input(command, &frame[HEADER_LEN..]) {
                if let Err(why) = run(fuzz_logic::message_decode, &input) {
                    failures.push(format!("message_decode {id}: {why}"));
                }
            }
        }
    }
    println!("replayed {} vector frames", frames.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `fuzz/seed_corpus.py` numbers commands the way `message_decode` reads them.
#[test]
fn seed_corpus_script_uses_the_targets_command_order() {
    let script =
        std::fs::read_to_string(fuzz_dir().join("seed_corpus.py")).expect("fuzz/seed_corpus.py");
    let start = script.find("COMMANDS = [").expect("a COMMANDS list");
    let end = start + script[start..].find(']').expect("end of COMMANDS");
    let names: Vec<&str> = script[start + "COMMANDS = [".len()..end]
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty())
        .collect();
    let ours: Vec<&str> = fuzz_logic::COMMANDS.iter().map(|c| c.as_str()).collect();
    assert_eq!(names, ours);
}

/// `message_decode` reaches every message decoder: its command list is exactly the
/// codec's (the rows of the message table, `wire_codec::message::MESSAGES`), and the
/// codec decodes each of them as itself, never as an unknown command.
#[test]
fn message_decode_covers_every_known_command() {
    let mut codec: Vec<&str> = wire_codec::message::MESSAGES
        .iter()
        .map(|m| m.command.as_str())
        .collect();
    assert_eq!(codec.len(), wire_codec::message::command::ALL.len());
    codec.sort_unstable();
    let mut fuzzed: Vec<&str> = fuzz_logic::COMMANDS.iter().map(|c| c.as_str()).collect();
    fuzzed.sort_unstable();
    assert_eq!(
        fuzzed, codec,
        "fuzz/src/lib.rs COMMANDS differs from the codec's"
    );
    let ctx = wire_codec::Context::new(wire_codec::Network::Mainnet, 70016);
    for &command in fuzz_logic::COMMANDS {
        // A payload that is wrong for every message: the decoder must say so (or, for
        // empty messages, accept nothing but an empty payload) — not call it unknown.
        let decoded =
            wire_codec::Message::decode(command, bytes::Bytes::from_static(&[0xff; 3]), &ctx);
        assert!(
            !matches!(decoded, Ok(wire_codec::Message::Unknown { .. })),
            "{command:?} is not decoded by the codec"
        );
    }
}
