//! The checks behind the codec fuzz targets, as plain functions.
//!
//! The libFuzzer targets `frame_decode` and `message_decode` only call these, so the
//! same checks also run on stable Rust: `wire-codec/tests/fuzz_regressions.rs` includes
//! this file and replays `fuzz/regressions/` and every vector frame through it. A check
//! fails by panicking, which is how libFuzzer learns of a finding. (The `peer` target
//! calls `peer_core::fuzzing::fuzz_peer`, replayed by
//! `peer-core/tests/fuzz_regressions.rs`; it is not here because wire-codec's test
//! cannot depend on peer-core.)
//!
//! Invariants checked on any input:
//! - decoding never panics;
//! - a message that decodes re-encodes (no error), and the re-encoded frame decodes to
//!   an equal message under the same command.

use bytes::{Bytes, BytesMut};
use wire_codec::message::command;
use wire_codec::{encode_frame, Command, Context, Frame, FrameDecoder, Message, Network};

/// Protocol versions where a wire format changes (addr timestamps at 31402, the ping
/// nonce after 60000, LBRY's highest 70013, the current 70016).
pub const VERSIONS: [u32; 5] = [209, 31402, 60001, 70013, 70016];

/// The commands `message_decode` chooses from with its first byte, in this order
/// (`fuzz/seed_corpus.py` writes seeds with the same order). Index 37 and above mean
/// "a command the codec does not know".
pub const COMMANDS: &[Command] = command::ALL;

/// A command no version of the protocol has.
const UNKNOWN: Command = Command::from_static("fuzzunknown");

/// Checks that `msg`, decoded under `ctx`, re-encodes and reads back equal.
pub fn assert_round_trip(net: Network, ctx: &Context, msg: &Message) {
    let mut wire = BytesMut::new();
    if let Err(e) = encode_frame(net.magic(), msg, ctx, &mut wire) {
        panic!(
            "decoded {msg:?} at {} but it does not encode: {e}",
            ctx.version
        );
    }
    // No payload cap here: lossy text (reject, version) may grow when re-encoded.
    let mut dec = FrameDecoder::with_limits(net.magic(), u32::MAX);
    let frame = match dec.decode(&mut wire) {
        Ok(Some(f)) => f,
        other => panic!("re-encoded {:?} does not frame: {other:?}", msg.command()),
    };
    assert!(wire.is_empty(), "re-encoded frame has trailing bytes");
    assert_eq!(frame.header.command, msg.command(), "command changed");
    match frame.decode(ctx) {
        Ok(back) => assert_eq!(&back, msg, "message changed through re-encoding"),
        Err(e) => panic!("re-encoded {:?} does not decode: {e}", msg.command()),
    }
}

fn check_frame(net: Network, frame: &Frame) {
    for pver in VERSIONS {
        let ctx = Context::new(net, pver);
        if let Ok(msg) = frame.decode(&ctx) {
            assert_round_trip(net, &ctx, &msg);
        }
    }
}

/// Target `frame_decode`: `data` as a byte stream on several networks; every frame the
/// decoder returns is decoded at several versions and, where that succeeds, round-tripped.
pub fn frame_decode(data: &[u8]) {
    for net in Network::ALL {
        let mut dec = FrameDecoder::new(net);
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => check_frame(net, &frame),
                Ok(None) => break,
                // A checksum error consumes its frame and the stream goes on; any other
                // error leaves the header in place and would repeat.
                Err(e) if e.is_frame_local() && buf.len() < before => {}
                Err(_) => break,
            }
        }
    }
}

/// Target `message_decode`: the first byte picks a command ([`COMMANDS`], or an unknown
/// one past its end), the rest is the payload, decoded at several versions on a Bitcoin
/// and an LBRY network (the two header layouts).
pub fn message_decode(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let command = COMMANDS.get(usize::from(pick)).copied().unwrap_or(UNKNOWN);
    let payload = Bytes::copy_from_slice(payload);
    for net in [Network::Mainnet, Network::LbryMainnet] {
        for pver in VERSIONS {
            let ctx = Context::new(net, pver);
            if let Ok(msg) = Message::decode(command, payload.clone(), &ctx) {
                assert_round_trip(net, &ctx, &msg);
            }
        }
    }
}

/// The `message_decode` input for a payload received under `command`, if the command is
/// one of [`COMMANDS`].
pub fn message_decode_input(command: Command, payload: &[u8]) -> Option<Vec<u8>> {
    let index = COMMANDS.iter().position(|c| *c == command)?;
    let mut v = Vec::with_capacity(1 + payload.len());
    v.push(u8::try_from(index).ok()?);
    v.extend_from_slice(payload);
    Some(v)
}
