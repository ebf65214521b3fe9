//! What every executor of a runtime shares ([`RuntimeShared`]) and the part of one
//! executor other threads can see ([`CoreShared`]): its control mailbox, its peers, its
//! memory use.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use peer_core::{Config, DisconnectReason};
use tracing::debug;

use crate::control::{Control, InboundConfigFn, ListenerFactory};
use crate::counters::CoreCounters;
use crate::handle::{Command, PeerHandle};
use crate::limits::Gate;
use crate::mailbox::Mailbox;

/// What every executor of a runtime shares.
pub(crate) struct RuntimeShared {
    pub(crate) config: Arc<Config>,
    pub(crate) factory: ListenerFactory,
    pub(crate) inbound_config: Option<InboundConfigFn>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) cores: Vec<Arc<CoreShared>>,
    pub(crate) shutting_down: AtomicBool,
    seeds: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

impl RuntimeShared {
    pub(crate) fn new(
        config: Arc<Config>,
        factory: ListenerFactory,
        inbound_config: Option<InboundConfigFn>,
        gate: Arc<Gate>,
        cores: Vec<Arc<CoreShared>>,
    ) -> RuntimeShared {
        RuntimeShared {
            config,
            factory,
            inbound_config,
            gate,
            cores,
            shutting_down: AtomicBool::new(false),
            seeds: AtomicU64::new(0),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Bytes all peers of all executors hold in queued output and read buffers.
    pub(crate) fn memory_in_use(&self) -> usize {
        self.cores
            .iter()
            .map(|c| c.memory.load(Ordering::Relaxed))
            .sum()
    }

    /// Disconnects one inbound peer chosen by Core's eviction rules
    /// ([`crate::evict`]); false when every inbound peer is protected.
    pub(crate) fn evict_one(&self) -> bool {
        let now = Instant::now();
        let handles: Vec<PeerHandle> = self
            .cores
            .iter()
            .flat_map(|c| {
                c.peers()
                    .values()
                    .filter(|h| h.is_inbound() && h.connected())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let candidates = handles
            .iter()
            .filter_map(|h| h.shared.standing.candidate(h.id(), now))
            .collect();
        let Some(victim) = crate::evict::select(candidates, &self.hasher) else {
            return false;
        };
        match handles.iter().find(|h| h.id() == victim) {
            Some(h) => {
                debug!(remote = %h.addr(), "evicting an inbound peer to admit a new one");
                h.shared.life.set_closing();
                h.shared
                    .post(Command::DisconnectWith(DisconnectReason::Evicted));
                true
            }
            None => false,
        }
    }

    /// A seed for a peer's random numbers: a keyed hash of a counter (the key is
    /// random per process), so nonces differ between peers and between runs.
    pub(crate) fn next_seed(&self) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u64(self.seeds.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }
}

/// The part of an executor other threads can see.
pub(crate) struct CoreShared {
    pub(crate) index: usize,
    pub(crate) control: Mailbox<Control>,
    pub(crate) counters: Arc<CoreCounters>,
    pub(crate) peers: Mutex<HashMap<u64, PeerHandle>>,
    /// Bytes this executor's peers hold in queued output and read buffers (written by
    /// this executor only; summed against [`Limits::memory_budget`](crate::Limits)).
    pub(crate) memory: AtomicUsize,
}

impl CoreShared {
    pub(crate) fn new(index: usize) -> CoreShared {
        CoreShared {
            index,
            control: Mailbox::new(),
            counters: Arc::new(CoreCounters::default()),
            peers: Mutex::new(HashMap::new()),
            memory: AtomicUsize::new(0),
        }
    }

    pub(crate) fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PeerHandle>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
