//! Decoded values an application keeps cost about their own size: 10,000 addrv2
//! entries and 10,000 small transactions received over a live connection and kept by
//! the listener grow the heap by at most ~2× their bytes (before the ownership rules,
//! each kept addrv2 entry held its whole receive buffer: ~91 KiB each).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peer_core::{Config, Listener, NonceSet, Peer};
use peer_runtime::RuntimeBuilder;
use wire_codec::message::{
    AddrV2, AddrV2Entry, NetworkId, OutPoint, ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{Hash256, Message, Network};

mod support;
use support::{heap, rss_kib, serial};
#[path = "support/raw.rs"]
mod raw;
use raw::{frame, Raw};

#[derive(Default)]
struct Kept {
    addrs: Vec<AddrV2Entry>,
    txs: Vec<Transaction>,
}

struct Keeper(Arc<Mutex<Kept>>);

impl Listener for Keeper {
    fn on_addr_v2(&mut self, _peer: &mut Peer, msg: AddrV2) {
        self.0.lock().unwrap().addrs.extend(msg.addresses);
    }
    fn on_tx(&mut self, _peer: &mut Peer, msg: Transaction) {
        self.0.lock().unwrap().txs.push(msg);
    }
}

fn tx(i: u32) -> Transaction {
    let input = TxIn {
        prevout: OutPoint {
            txid: Hash256([(i % 251) as u8; 32]),
            vout: i,
        },
        script_sig: Bytes::from(vec![0x51; 100]),
        sequence: 0xffff_fffd,
        witness: vec![],
    };
    let output = TxOut {
        value: i64::from(i),
        script_pubkey: Bytes::from_static(&[0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    };
    Transaction::build(2, &[input], &[output], 0)
}

#[test]
fn kept_addrv2_entries_and_small_transactions_cost_about_their_size() {
    let _g = serial();
    const N: usize = 10_000;
    let kept = Arc::new(Mutex::new(Kept::default()));
    // Room for what is kept, reserved before the baseline: the vectors' own growth is
    // not what is measured.
    {
        let mut k = kept.lock().unwrap();
        k.addrs.reserve(N);
        k.txs.reserve(N);
    }
    let k = kept.clone();
    let mut cfg = Config::new(Network::Regtest);
    cfg.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    let rt = RuntimeBuilder::with_config(cfg)
        .executors(1)
        .pin(false)
        .io_memory(128 * 1024)
        .listen("127.0.0.1:0".parse().unwrap())
        .listener_factory(move |_| Box::new(Keeper(k.clone())) as Box<dyn Listener>)
        .start()
        .expect("server starts");
    let mut c = Raw::connect(rt.local_addr().unwrap());
    // The frames, built before the baseline.
    // Each kept value travels between 4 KiB frames nobody keeps, so every read buffer
    // holds a few kept values and much else: a value pinning its buffer would cost
    // ~40x its size.
    let junk = frame(&Message::Unknown {
        command: wire_codec::Command::from_static("junk"),
        payload: Bytes::from(vec![0u8; 4096]),
    });
    let mut wire: Vec<u8> = Vec::new();
    for i in 0..N as u32 {
        let addr = AddrV2Entry {
            time: 1_700_000_000,
            services: ServiceFlags::NETWORK,
            network: NetworkId::IPV6,
            addr: Bytes::from(
                [
                    0x20,
                    0x01,
                    (i >> 8) as u8,
                    i as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                ]
                .to_vec(),
            ),
            port: 8333,
        };
        wire.extend_from_slice(&frame(&Message::AddrV2(AddrV2 {
            addresses: vec![addr],
        })));
        wire.extend_from_slice(&junk);
        wire.extend_from_slice(&frame(&Message::Tx(tx(i))));
        wire.extend_from_slice(&junk);
    }
    std::thread::sleep(Duration::from_millis(200));
    let (heap0, rss0) = (heap(), rss_kib());
    c.send_raw(&wire);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let k = kept.lock().unwrap();
            k.addrs.len() == N && k.txs.len() == N
        };
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "not everything arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (heap1, rss1) = (heap(), rss_kib());
    let own: usize = {
        let k = kept.lock().unwrap();
        k.addrs.iter().map(|e| e.addr.len()).sum::<usize>()
            + k.txs.iter().map(|t| t.raw().len()).sum::<usize>()
            + N * (std::mem::size_of::<AddrV2Entry>() + std::mem::size_of::<Transaction>())
    };
    let grown = heap1.saturating_sub(heap0);
    let rss_grown = (rss1.saturating_sub(rss0)) as usize * 1024;
    println!(
        "kept {N} addrv2 entries + {N} transactions: their bytes {own}; live heap +{grown} ({:.2}x); RSS +{rss_grown} ({:.2}x)",
        grown as f64 / own as f64,
        rss_grown as f64 / own as f64
    );
    assert!(
        grown <= 2 * own + (256 << 10),
        "heap grew {grown} for {own} bytes kept"
    );
    assert!(
        rss_grown <= 2 * own + (4 << 20),
        "RSS grew {rss_grown} for {own} bytes kept"
    );
    drop(c);
    rt.shutdown();
}
