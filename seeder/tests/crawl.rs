//! The seeder against a simulated network, through its real command line: every good
//! node is found and served, no bad one ever is; DNS read by real clients; the seed
//! node answers getaddr with good nodes only; SIGTERM flushes and exits 0; a restart
//! from the database (no --seed, the network gone) serves good nodes within seconds.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use peer_core::{Listener, Peer};
use peer_runtime::Runtime;
use seeder::sim::{self, Behaviour};
use support::*;
use wire_codec::message::{Addr, AddrV2};
use wire_codec::{Message, Network};

const NODES: u32 = 600;
const SEED: u64 = 11;

struct AddrCatcher(mpsc::Sender<Vec<SocketAddr>>);

impl Listener for AddrCatcher {
    fn on_handshake_complete(&mut self, peer: &mut Peer, _v: u32) {
        peer.queue_message(Message::GetAddr, None);
        peer.queue_message(Message::GetAddr, None); // the second one is ignored
    }
    fn on_addr(&mut self, _p: &mut Peer, m: Addr) {
        let _ = self
            .0
            .send(m.addresses.iter().map(|a| a.socket_addr()).collect());
    }
    fn on_addr_v2(&mut self, _p: &mut Peer, m: AddrV2) {
        let v = m
            .addresses
            .iter()
            .filter_map(|a| a.ip().map(|ip| SocketAddr::new(ip, a.port)))
            .collect();
        let _ = self.0.send(v);
    }
}

#[test]
fn crawls_serves_only_good_nodes_and_restarts_from_the_db() {
    let layout: HashMap<IpAddr, Behaviour> = sim::layout(NODES, SEED)
        .into_iter()
        .map(|(ip, b)| (IpAddr::V4(ip), b))
        .collect();
    let good: HashSet<IpAddr> = layout
        .iter()
        .filter(|(_, b)| **b == Behaviour::Good)
        .map(|(ip, _)| *ip)
        .collect();
    let servable = |ip: &IpAddr| layout.get(ip).is_some_and(|b| b.servable());
    let first_good = (0..NODES)
        .find(|&i| sim::behaviour(i, SEED) == Behaviour::Good)
        .unwrap();

    let dir = temp_dir("crawl");
    let db = dir.join("nodes.sqlite");
    let dump = dir.join("dnsseed.dump");
    let dns = free_port();
    let p2p = free_port();
    let net = sim(NODES, SEED, 0, 1);
    let s = seeder(
        dns,
        &db,
        &[sim_addr(first_good).to_string()],
        &[
            "--allow-local-addresses",
            "--revisit",
            "5",
            "--concurrency",
            "400",
            "--dump",
            dump.to_str().unwrap(),
            "--p2p-listen",
            &format!("127.0.0.1:{p2p}"),
        ],
    );

    // Serve: union of many answers until every good node was seen.
    let mut served: HashSet<IpAddr> = HashSet::new();
    let all_seen = eventually(90, || {
        for _ in 0..20 {
            if let Some(m) = udp_query(dns, "seed.test.", RecordType::A) {
                assert_eq!(m.response_code(), ResponseCode::NoError);
                for ip in ips(&m) {
                    assert!(
                        servable(&ip),
                        "served a bad node: {ip} {:?}",
                        layout.get(&ip)
                    );
                    served.insert(ip);
                }
            }
        }
        good.is_subset(&served).then_some(())
    });
    assert!(
        all_seen.is_some(),
        "good nodes never served: {} of {}",
        good.difference(&served).count(),
        good.len()
    );

    // Service filter: x8 (witness) holds for all good ones; x400 for none.
    let m = udp_query(dns, "x9.seed.test.", RecordType::A).unwrap();
    assert!(!ips(&m).is_empty() && ips(&m).iter().all(servable));
    assert!(ips(&udp_query(dns, "x400.seed.test.", RecordType::A).unwrap()).is_empty());
    // TCP, SOA, NS, NXDOMAIN, REFUSED.
    let t = tcp_query(dns, "seed.test.", RecordType::A);
    assert!(!ips(&t).is_empty() && ips(&t).iter().all(servable));
    assert_eq!(
        tcp_query(dns, "seed.test.", RecordType::SOA)
            .answers()
            .len(),
        1
    );
    assert_eq!(
        udp_query(dns, "nope.seed.test.", RecordType::A)
            .unwrap()
            .response_code(),
        ResponseCode::NXDomain
    );
    assert_eq!(
        udp_query(dns, "example.org.", RecordType::A)
            .unwrap()
            .response_code(),
        ResponseCode::Refused
    );
    // A real client: dig (installed by `cargo xtask ci`).
    match dig(dns, &["seed.test", "A", "+short"]) {
        Some(lines) => {
            assert!(!lines.is_empty(), "dig got no answer");
            for l in &lines {
                let ip: IpAddr = l.parse().unwrap_or_else(|_| panic!("dig said {l:?}"));
                assert!(servable(&ip));
            }
            let tcp = dig(dns, &["+tcp", "x9.seed.test", "A", "+short"]).unwrap();
            assert!(!tcp.is_empty());
            let ns = dig(dns, &["seed.test", "NS", "+short"]).unwrap();
            assert_eq!(ns, vec!["ns.test.".to_string()]);
        }
        None => eprintln!("dig not installed: the hickory-proto client above read the answers"),
    }

    // The seed node: one addr answer of good addresses only.
    let (tx, rx) = mpsc::channel();
    let client = Runtime::builder(Network::Regtest)
        .executors(1)
        .pin(false)
        .start()
        .unwrap();
    let peer = client
        .connect_with(
            SocketAddr::from(([127, 0, 0, 1], p2p)),
            Box::new(AddrCatcher(tx)),
        )
        .wait()
        .unwrap();
    let addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!addrs.is_empty());
    for a in &addrs {
        assert!(servable(&a.ip()), "seed node gave {a}");
        assert_eq!(a.port(), 18444);
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "answered twice"
    );
    peer.disconnect();
    client.shutdown();

    // The dump: sipa's header, every good node marked good, no bad one.
    let text = eventually(30, || {
        std::fs::read_to_string(&dump)
            .ok()
            .filter(|t| t.lines().count() > 1)
    })
    .expect("dump written");
    assert!(text.starts_with("# address"));
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let addr: SocketAddr = f.next().unwrap().parse().unwrap();
        let flag = f.next().unwrap();
        if flag == "1" {
            assert!(servable(&addr.ip()), "dump marks {addr} good");
        }
    }

    // SIGTERM: flush, exit 0.
    assert_eq!(s.terminate(), Some(0));
    drop(net);

    // The database: what each kind of node told us, and the bans.
    let nodes = seeder::store::Store::open(&db).unwrap().load().unwrap();
    let mut seen = HashMap::new();
    for n in nodes {
        let (addr, services, version, height, ua) =
            (n.addr, n.services, n.version, n.height, n.user_agent);
        let (last_try, last_success, ban_till) = (n.last_try, n.last_success, n.ban_till);
        let Some(b) = layout.get(&addr.ip()) else {
            assert_eq!(last_success, 0, "a fake address {addr} answered");
            continue;
        };
        *seen.entry(*b).or_insert(0) += 1;
        match b {
            Behaviour::Good => {
                assert!(
                    last_success > 0 && version >= 70001 && services & 1 == 1,
                    "{addr}"
                );
                assert_eq!(height, 100);
                assert!(ua.contains("sim-net"), "{ua}");
            }
            Behaviour::OldVersion => assert!(last_try == 0 || version == 60000, "{addr} {version}"),
            Behaviour::NoNetwork => assert!(last_try == 0 || services & 1 == 0, "{addr}"),
            Behaviour::WrongNetwork => {
                assert_eq!(last_success, 0);
                assert!(last_try == 0 || ban_till > last_try, "{addr} not banned");
            }
            Behaviour::Silent | Behaviour::Dead => assert_eq!(last_success, 0, "{addr}"),
            Behaviour::Poisoner => {}
        }
    }
    for b in [
        Behaviour::WrongNetwork,
        Behaviour::OldVersion,
        Behaviour::NoNetwork,
        Behaviour::Dead,
    ] {
        assert!(
            seen.get(&b).copied().unwrap_or(0) > 0,
            "no {b:?} node in the database"
        );
    }

    // Restart: no --seed, the network is gone; the DB alone serves good nodes at once.
    let dns2 = free_port();
    let _s2 = seeder(
        dns2,
        &db,
        &[],
        &["--allow-local-addresses", "--revisit", "5"],
    );
    let again = eventually(10, || {
        udp_query(dns2, "seed.test.", RecordType::A).and_then(|m| {
            let v = ips(&m);
            (!v.is_empty()).then_some(v)
        })
    })
    .expect("no good nodes served after a restart");
    assert!(again.iter().all(|ip| good.contains(ip) || servable(ip)));
    let _ = std::fs::remove_dir_all(&dir);
}
