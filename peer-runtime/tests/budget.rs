//! The process-wide memory budget ([`Limits::memory_budget`]): from half of it the
//! runtime pauses the peer over its share, so answers alone keep it within the budget
//! and new connections are still served; past the budget itself (here because the
//! application queues big messages through the handle, which only the pause mark
//! paces) new connections are closed at once (counted in `refused`) and the peer
//! already connected is paused, not dropped; once the memory is back under,
//! connections are accepted again — by themselves.
//!
//! The load is one remote that asks for 16 KiB answers in bulk and does not read:
//! its queued output (up to the 1 MB pause mark) would be far over a 256 KiB budget.
//! Nothing asserts on timing; waits are bounded only so a broken build cannot hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peer_core::{Config, Listener, NonceSet, Peer};
use peer_runtime::{Limits, Runtime, RuntimeBuilder};
use wire_codec::message::{NetAddress, Ping, ServiceFlags, Version};
use wire_codec::{Command, Message, Network};

#[path = "support/raw.rs"]
mod raw;
use raw::{frame, Raw};

const WAIT: Duration = Duration::from_secs(60);
const ANSWER: usize = 16 * 1024;
const BUDGET: usize = 256 * 1024;
const ASKED: usize = 400;
/// Messages the application queues to the hog through its handle, and their size: far
/// more than the kernel's socket buffers take on loopback (a few MB).
const BIG_COUNT: usize = 16;
const BIG: usize = 512 * 1024;

/// Answers every `getaddr` with 16 KiB.
struct Answering;

impl Listener for Answering {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        peer.queue_message(
            Message::Unknown {
                command: Command::from_static("answer"),
                payload: Bytes::from(vec![0x5a; ANSWER]),
            },
            None,
        );
    }
}

fn server() -> Runtime {
    let mut limits = Limits::default();
    limits.memory_budget = BUDGET;
    limits.max_inbound_per_netgroup = usize::MAX;
    limits.budget_check_interval = Duration::from_millis(10);
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    RuntimeBuilder::with_config(cfg)
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .limits(limits)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(|_| Box::new(Answering) as Box<dyn Listener>)
        .start()
        .expect("server starts")
}

fn version() -> Vec<u8> {
    let services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    frame(&Message::Version(Box::new(Version {
        version: 70016,
        services,
        timestamp: 1_700_000_000,
        receiver: NetAddress::unspecified(ServiceFlags::NETWORK),
        sender: NetAddress::unspecified(services),
        nonce: 3,
        user_agent: "/budget:0.1/".into(),
        start_height: 0,
        relay: true,
        relay_present: true,
    })))
    .to_vec()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects, sends a `version` and waits for the server's first bytes (its own
/// `version`) or the end of the stream: `true` if the server spoke.
fn server_speaks(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).expect("the kernel accepts");
    s.set_read_timeout(Some(WAIT)).unwrap();
    // A refused connection may be closed before or during this write.
    let _ = s.write_all(&version());
    let mut b = [0u8; 24];
    match s.read(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
        Err(e) => panic!("read: {e}"),
    }
}

#[test]
fn over_the_memory_budget_new_connections_are_refused_until_it_drains() {
    let rt = server();
    let addr = rt.local_addr().unwrap();
    assert!(server_speaks(addr), "under budget, a connection is served");

    let mut hog = Raw::connect(addr);
    let h = {
        let local = hog.local();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(p) = rt.peers().into_iter().find(|p| p.addr() == local) {
                break p;
            }
            assert!(Instant::now() < deadline, "the hog never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    hog.flood_getaddr(ASKED);
    // The answers alone: the runtime reacts at half the budget (the hog stops being
    // read and processed) and stays within the budget; the door stays open.
    wait_until("the runtime over half its budget", || {
        rt.stats().memory > BUDGET / 2
    });
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(20));
        let held = rt.stats().memory;
        assert!(
            held <= BUDGET,
            "answers took the runtime past its budget: {held}"
        );
    }
    assert!(
        server_speaks(addr),
        "refused while within the budget ({} bytes held)",
        rt.stats().memory
    );

    // The application queues big messages to the hog (paced by the pause mark, not
    // by the budget): the runtime passes its budget and the door closes.
    for _ in 0..BIG_COUNT {
        h.queue_message_detached(Message::Unknown {
            command: Command::from_static("big"),
            payload: Bytes::from(vec![0x33; BIG]),
        });
    }
    wait_until("the runtime over its budget", || rt.stats().memory > BUDGET);
    // The acceptor acts on the budget check's verdict (every 10 ms here), which may
    // not have seen the total pass the budget yet: the door closes within a check or
    // a few (a connection served meanwhile is closed by us at once).
    let deadline = Instant::now() + WAIT;
    while server_speaks(addr) {
        assert!(
            Instant::now() < deadline,
            "never refused while over budget ({} bytes held)",
            rt.stats().memory
        );
    }
    // Refused while over: each attempt is closed without a word, and counted.
    let refused_before = rt.stats().refused;
    for _ in 0..3 {
        assert!(
            !server_speaks(addr),
            "served while over budget ({} bytes held)",
            rt.stats().memory
        );
    }
    wait_until("three refusals counted", || {
        rt.stats().refused >= refused_before + 3
    });
    // The heavy peer is paused, not dropped (served probes above, closed by us, leave).
    wait_until("only the hog connected", || rt.stats().peers == 1);
    let stats = rt.stats();
    assert!(stats.memory > BUDGET, "{stats:?}");

    // The remote reads everything: the runtime drains below the budget, and the hog
    // (paused by it with a drained output) gives back what it kept and resumes.
    let (mut answers, mut bigs) = (0, 0);
    while answers < ASKED || bigs < BIG_COUNT {
        let (cmd, len) = hog.recv().expect("server closed the hog");
        match cmd.as_str() {
            "answer" => {
                assert_eq!(len, ANSWER);
                answers += 1;
            }
            "big" => {
                assert_eq!(len, BIG);
                bigs += 1;
            }
            _ => {}
        }
    }
    wait_until("memory back under half the budget", || {
        rt.stats().memory <= BUDGET / 2
    });
    // Accepting again by itself (the acceptor sees the next check's verdict, so the
    // first attempt may still meet the old one).
    let deadline = Instant::now() + WAIT;
    while !server_speaks(addr) {
        assert!(Instant::now() < deadline, "never accepted again");
    }
    let mut fresh = Raw::connect(addr);
    fresh.send(&Message::Ping(Ping { nonce: 5 }));
    loop {
        let (cmd, _) = fresh.recv().expect("a served peer");
        if cmd.as_str() == "pong" {
            break;
        }
    }
    drop(hog);
    rt.shutdown();
}
