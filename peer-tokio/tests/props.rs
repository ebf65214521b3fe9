//! Property: whatever a handle queues reaches the remote complete and in order, and
//! every notification answers `Sent`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_core::{Config, Listener, NonceSet, Peer};
use peer_tokio::{Delivery, NodeBuilder};
use proptest::prelude::*;
use wire_codec::message::Ping;
use wire_codec::{Message, Network};

struct Record(Arc<Mutex<Vec<u64>>>);

impl Listener for Record {
    fn on_ping(&mut self, _peer: &mut Peer, msg: Ping) {
        self.0.lock().unwrap().push(msg.nonce);
    }
}

fn builder() -> NodeBuilder {
    let mut c = Config::new(Network::Regtest);
    c.nonces = Some(Arc::new(NonceSet::new()));
    NodeBuilder::with_config(c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn queued_messages_arrive_complete_and_in_order(nonces in proptest::collection::vec(any::<u64>(), 0..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let ok = rt.block_on(async move {
            let srv = builder().listener_factory(move |_| Box::new(Record(g.clone()))).build().unwrap();
            let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let cli = builder().build().unwrap();
            let p = cli.connect(addr).await.unwrap();
            p.wait_for_handshake().await.unwrap();
            let notes: Vec<_> = nonces.iter().map(|n| p.queue_message(Message::Ping(Ping { nonce: *n }))).collect();
            let mut all_sent = true;
            for n in notes {
                all_sent &= n.await == Delivery::Sent;
            }
            let want = nonces.len();
            let arrived = tokio::time::timeout(Duration::from_secs(30), async {
                while got.lock().unwrap().len() < want {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }).await.is_ok();
            cli.shutdown().await;
            srv.shutdown().await;
            let got = got.lock().unwrap().clone();
            all_sent && arrived && got == nonces
        });
        prop_assert!(ok);
    }
}
