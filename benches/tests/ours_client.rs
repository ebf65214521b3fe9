//! Our client (peer-runtime peers driven by their listeners) against a peer-runtime
//! server in the same process: every phase completes, counts add up, nobody is lost.

use std::net::IpAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use benches::load::{Plan, INV_FRAME_LEN, PING_FRAME_LEN};
use benches::protocol::{Command, Outcome, Report};
use peer_core::NonceSet;
use peer_runtime::{NoopListener, Runtime};
use wire_codec::Network;

#[test]
fn every_phase_against_a_runtime_server() {
    // Client and server share this process: the server gets its own set of version
    // nonces, or it would take our clients for connections to itself. It records where
    // each peer came from: the worker connects from a chosen loopback address.
    let sources: Arc<Mutex<Vec<IpAddr>>> = Arc::default();
    let seen = sources.clone();
    let server = Runtime::builder(Network::Regtest)
        .listener_factory(move |peer| {
            seen.lock().unwrap().push(peer.addr().ip());
            Box::new(NoopListener)
        })
        .configure(|c| c.nonces = Some(Arc::new(NonceSet::new())))
        .executors(1)
        .pin(false)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .expect("server runtime");
    let addr = server.local_addr().expect("listening");
    let (tx, rx) = mpsc::channel();
    let short = Duration::from_millis(300);
    for c in [
        Command::Connect,
        Command::Hold { duration: short },
        Command::Ping { duration: short },
        Command::Flood {
            duration: short,
            batch: 16,
        },
        Command::Close,
    ] {
        tx.send(c).unwrap();
    }
    let (rtx, rrx) = mpsc::channel();
    let plan = Plan {
        targets: vec![addr],
        count: 25,
        window: 8,
        nonce_base: 1 << 40,
        source: Some(IpAddr::from([127, 0, 0, 5])),
        v2: false,
    };
    benches::ours::run_worker(plan, rx, move |r| {
        let _ = rtx.send(r);
    })
    .expect("worker runs");
    let reports: Vec<Report> = rrx.try_iter().collect();
    assert_eq!(reports.first(), Some(&Report::Ready));
    assert!(
        !reports.iter().any(|r| matches!(r, Report::Fatal(_))),
        "{reports:?}"
    );
    let done: Vec<Outcome> = reports
        .into_iter()
        .filter_map(|r| match r {
            Report::Done(o) => Some(o),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = done.iter().map(|o| o.phase.as_str()).collect();
    assert_eq!(names, ["connect", "hold", "ping", "flood", "close"]);
    let (connect, hold, ping, flood) = (&done[0], &done[1], &done[2], &done[3]);
    assert_eq!((connect.ok, connect.failed), (25, 0), "{connect:?}");
    assert_eq!(connect.latency.count(), 25);
    assert_eq!((hold.ok, hold.failed), (25, 0));
    assert_eq!((ping.ok, ping.failed), (25, 0), "{ping:?}");
    assert!(ping.ops >= 25);
    assert_eq!(ping.latency.count(), ping.ops);
    assert_eq!(ping.bytes, ping.ops * PING_FRAME_LEN);
    assert_eq!((flood.ok, flood.failed), (25, 0), "{flood:?}");
    assert!(flood.ops >= 25 * 2 * 16, "two batches per peer at least");
    assert_eq!(flood.ops % 16, 0);
    assert_eq!(flood.bytes, flood.ops * INV_FRAME_LEN);
    // The server saw every handshake and at least every inventory message counted.
    let stats = server.stats();
    assert!(stats.handshakes >= 25, "{stats:?}");
    assert!(stats.messages_in >= flood.ops, "{stats:?}");
    let sources = sources.lock().unwrap();
    assert_eq!(sources.len(), 25);
    assert!(
        sources.iter().all(|ip| *ip == IpAddr::from([127, 0, 0, 5])),
        "{sources:?}"
    );
    server.shutdown();
}
