//! `--p2p-listen`: the seeder is also a seed node. Inbound peers handshake and get one
//! `addr`/`addrv2` answer per connection, drawn from the good nodes only (never from
//! untried gossip). Further `getaddr`s on the same connection are ignored, as Core does.

use std::sync::Arc;

use peer_core::{Listener, Peer};
use peer_helpers::push_addresses;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::goodset::{current, SharedGood};
use crate::metrics::{self, Metrics};

/// One inbound peer's listener.
pub struct SeedListener {
    good: SharedGood,
    metrics: Arc<Metrics>,
    answered: bool,
    rng: SmallRng,
}

impl SeedListener {
    /// A listener answering from `good`.
    pub fn new(good: SharedGood, metrics: Arc<Metrics>, seed: u64) -> SeedListener {
        SeedListener {
            good,
            metrics,
            answered: false,
            rng: SmallRng::seed_from_u64(seed ^ rand::random::<u64>()),
        }
    }
}

impl Listener for SeedListener {
    fn on_get_addr(&mut self, peer: &mut Peer) {
        if self.answered || !peer.is_inbound() {
            return;
        }
        self.answered = true;
        let set = current(&self.good);
        push_addresses(peer, set.entries(), &mut self.rng);
        metrics::add(&self.metrics.getaddr_answered, 1);
    }
}
