//! Relaying a block to many peers: encoded once as a `SharedFrame`, it is held once in
//! the server's heap however many peers wait to read it; queued as a message, it is
//! held once per peer. Measured with the counting allocator against remotes that do
//! not read (their sockets take part of it; the rest waits in each peer's output).
//! Nothing asserts on timing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peer_core::{Config, NonceSet, SharedFrame};
use peer_runtime::{Delivery, Limits, Notification, PeerHandle, Runtime, RuntimeBuilder};
use wire_codec::message::ServiceFlags;
use wire_codec::{Command, Message, Network};

#[allow(dead_code)]
mod support;
use support::{heap, serial};
#[path = "support/raw.rs"]
mod raw;
use raw::Raw;

const WAIT: Duration = Duration::from_secs(60);
const PEERS: usize = 20;
const BLOCK: usize = 4_000_000;

fn server() -> Runtime {
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    // Room in peer-core's bound for the filler and both blocks.
    cfg.max_output_bytes = 64 << 20;
    // The filler and both blocks go into the peers' output; none waits in the
    // runtime's backlog.
    let mut limits = Limits::default();
    limits.send_pause_bytes = 64 << 20;
    RuntimeBuilder::with_config(cfg)
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .limits(limits)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .expect("server starts")
}

fn handle(rt: &Runtime, client: SocketAddr) -> PeerHandle {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(p) = rt.peers().into_iter().find(|p| p.addr() == client) {
            return p;
        }
        assert!(Instant::now() < deadline, "peer never registered");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn block() -> Message {
    Message::Unknown {
        command: Command::from_static("blob"),
        payload: Bytes::from((0..BLOCK).map(|i| i as u8).collect::<Vec<_>>()),
    }
}

/// Queues one block to every peer (as a frame or as a message), waits until every
/// peer has it in its output, and returns the heap growth and the notifications.
fn relay(handles: &[PeerHandle], by_frame: bool) -> (usize, Vec<Notification>) {
    let msg = block();
    let frame = SharedFrame::new(msg.clone(), Network::Regtest).unwrap();
    let before = heap();
    let notes: Vec<Notification> = handles
        .iter()
        .map(|h| {
            if by_frame {
                h.queue_frame(frame.clone())
            } else {
                h.queue_message(msg.clone())
            }
        })
        .collect();
    // Each handle's command has been applied once a later closure runs.
    for h in handles {
        let queued = h.with_peer(|p, _| p.queued_bytes()).wait().expect("alive");
        assert!(queued > 0, "the remote does not read: output waits");
    }
    let grown = heap().saturating_sub(before);
    (grown, notes)
}

/// 20 peers that do not read get a 4 MB block: as one shared frame the server holds
/// it once (heap growth under two blocks); as a message, once per peer (over ten
/// blocks: each peer's output buffer keeps its encoded copy until written). Every
/// notification answers Sent once the remotes read.
#[test]
fn a_block_relayed_as_one_frame_is_held_once_for_all_peers() {
    let _g = serial();
    let rt = server();
    let addr = rt.local_addr().unwrap();
    let mut remotes: Vec<Raw> = (0..PEERS).map(|_| Raw::connect(addr)).collect();
    let handles: Vec<PeerHandle> = remotes.iter().map(|r| handle(&rt, r.local())).collect();
    for h in &handles {
        h.wait_for_handshake_timeout(WAIT).unwrap().unwrap();
    }
    // Fill the sockets first (two shared 3.9 MB frames: more than a loopback socket
    // takes from a remote that does not read), so the blocks wait in the peers' output.
    let filler = SharedFrame::new(
        Message::Unknown {
            command: Command::from_static("filler"),
            payload: Bytes::from(vec![0u8; 3_900_000]),
        },
        Network::Regtest,
    )
    .unwrap();
    for h in &handles {
        h.queue_frame_detached(filler.clone());
        h.queue_frame_detached(filler.clone());
    }

    let (by_frame, frame_notes) = relay(&handles, true);
    let (by_message, message_notes) = relay(&handles, false);
    eprintln!(
        "heap held for a {BLOCK}-byte block queued to {PEERS} non-reading peers: \
         {by_frame} bytes as a shared frame, {by_message} bytes as messages"
    );
    assert!(by_frame < 2 * BLOCK, "shared frame held once: {by_frame}");
    assert!(
        by_message > 10 * BLOCK,
        "messages held per peer: {by_message}"
    );

    let readers: Vec<_> = remotes
        .drain(..)
        .map(|mut r| {
            std::thread::spawn(move || {
                let mut blobs = 0;
                while blobs < 2 {
                    let (cmd, len) = r.recv().expect("server closed");
                    match cmd.as_str() {
                        "blob" => {
                            assert_eq!(len, BLOCK);
                            blobs += 1;
                        }
                        "filler" => assert_eq!(blobs, 0, "in order"),
                        _ => {}
                    }
                }
                r
            })
        })
        .collect();
    for n in frame_notes.into_iter().chain(message_notes) {
        assert_eq!(n.wait_timeout(WAIT).ok(), Some(Delivery::Sent));
    }
    for r in readers {
        r.join().expect("reader got both blocks");
    }
    rt.shutdown();
}
