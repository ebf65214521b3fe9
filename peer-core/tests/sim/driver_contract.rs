//! The driver contract, checked with a driver written only from the crate's
//! documentation: read → `handle_read` → drain `poll_event` (dispatch) → write
//! `transmit` → `advance_transmit`, and sleep when there is nothing to do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use peer_core::{dispatch, Peer};
use wire_codec::message::{Ping, Version};
use wire_codec::{Command, Context, FrameDecoder, Message, Network};

use crate::harness::*;

/// A scripted socket: what the remote wrote, in reads of at most `chunk` bytes, and
/// what we wrote.
struct Socket {
    incoming: VecDeque<u8>,
    chunk: usize,
    written: Vec<u8>,
}

impl Socket {
    fn read(&mut self, buf: &mut BytesMut) -> usize {
        let n = self.incoming.len().min(self.chunk);
        buf.extend(self.incoming.drain(..n));
        n
    }
}

/// The loop of the crate documentation, run until nothing happens any more.
fn run(peer: &mut Peer, socket: &mut Socket, rec: &mut Recorder, now: Instant) {
    let mut buf = BytesMut::new();
    loop {
        let mut progress = false;
        if socket.read(&mut buf) > 0 {
            peer.handle_read(&mut buf, now);
            progress = true;
        }
        while let Some(ev) = peer.poll_event() {
            dispatch(peer, ev, rec, now);
            progress = true;
        }
        let out = peer.transmit();
        if !out.is_empty() {
            socket.written.extend_from_slice(out);
            let n = out.len();
            peer.advance_transmit(n, now);
            progress = true;
        }
        if !progress {
            return;
        }
    }
}

fn remote_script(extra: usize) -> Vec<u8> {
    let mut v: Version = remote_version(70016, 42);
    v.user_agent = "/scripted/".into();
    let mut bytes = frame(Network::Mainnet, 70016, &Message::Version(Box::new(v)));
    let feature = Message::Unknown {
        command: Command::from_static("feature"),
        payload: bytes::Bytes::from_static(b"x"),
    };
    for _ in 0..4 {
        bytes.extend(frame(Network::Mainnet, 70016, &feature));
    }
    bytes.extend(frame(Network::Mainnet, 70016, &Message::Verack));
    for i in 0..extra {
        bytes.extend(frame(
            Network::Mainnet,
            70016,
            &Message::Ping(Ping {
                nonce: i as u64 + 1,
            }),
        ));
    }
    bytes
}

/// The remote sends its version and 20 more frames at once, then nothing: every frame
/// is processed (the application's decision in between pauses the peer, which then
/// resumes from its own buffer) without a single new byte arriving.
#[test]
fn twenty_frames_after_the_version_are_processed_without_new_bytes() {
    for chunk in [usize::MAX, 1_000, 100, 1] {
        let now = Instant::now();
        let mut peer = Peer::new_inbound(
            Arc::new(config(Network::Mainnet)),
            B_ADDR.parse().unwrap(),
            now,
            UNIX_START,
            3,
        );
        let mut socket = Socket {
            incoming: remote_script(15).into(),
            chunk,
            written: Vec::new(),
        };
        let mut rec = Recorder::default();
        run(&mut peer, &mut socket, &mut rec, now);
        assert!(peer.handshake_complete(), "chunk {chunk}: {:?}", rec.recs);
        assert_eq!(rec.count_msg("feature"), 4, "chunk {chunk}");
        assert_eq!(rec.count_msg("ping"), 15, "chunk {chunk}");
        assert_eq!(peer.buffered_input(), 0);
        // Every ping was answered.
        let mut out = BytesMut::from(&socket.written[..]);
        let mut dec = FrameDecoder::new(Network::Mainnet);
        let ctx = Context::new(Network::Mainnet, 70016);
        let mut pongs = 0;
        while let Some(f) = dec.decode(&mut out).unwrap() {
            if matches!(f.decode(&ctx).unwrap(), Message::Pong(_)) {
                pongs += 1;
            }
        }
        assert_eq!(pongs, 15, "chunk {chunk}");
    }
}

/// A driver that reads straight into the peer's buffer (`receive_buffer` +
/// `process_received`) gets the same result.
#[test]
fn reading_into_the_peer_buffer_works_the_same() {
    let now = Instant::now();
    let mut peer = Peer::new_inbound(
        Arc::new(config(Network::Mainnet)),
        B_ADDR.parse().unwrap(),
        now,
        UNIX_START,
        3,
    );
    let mut rec = Recorder::default();
    peer.receive_buffer().extend_from_slice(&remote_script(15));
    peer.process_received(now);
    while let Some(ev) = peer.poll_event() {
        dispatch(&mut peer, ev, &mut rec, now);
    }
    assert!(peer.handshake_complete());
    assert_eq!(rec.count_msg("ping"), 15);
}

/// While the version decision is pending the peer holds what arrives, says it wants no
/// more (`wants_read`), and past its bound disconnects instead of growing.
#[test]
fn input_while_the_decision_is_pending_is_bounded() {
    let now = Instant::now();
    let mut peer = Peer::new_inbound(
        Arc::new(config(Network::Mainnet)),
        B_ADDR.parse().unwrap(),
        now,
        UNIX_START,
        3,
    );
    let mut bytes = remote_script(0); // version, 4 features, verack
    let big = Message::Unknown {
        command: Command::from_static("feature"),
        payload: bytes::Bytes::from(vec![7u8; 4000]),
    };
    for _ in 0..12 {
        bytes.extend(frame(Network::Mainnet, 70016, &big));
    }
    // No events are drained: the decision stays pending.
    peer.handle_input(&bytes, now);
    assert!(!peer.is_closed());
    assert!(
        !peer.wants_read(),
        "16 frames held: the peer asks for no more"
    );
    let held = peer.buffered_input();
    assert!(held > 0);
    for _ in 0..16 {
        peer.handle_input(&frame(Network::Mainnet, 70016, &big), now);
    }
    assert!(
        matches!(
            peer.disconnect_reason(),
            Some(peer_core::DisconnectReason::TooMuchInput { .. })
        ),
        "{:?}",
        peer.disconnect_reason()
    );
}
