//! Our recent version nonces, for self-connection detection.
//!
//! btcd keeps a package-global MRU of the last 50 nonces it put in version messages; an
//! inbound version carrying one of them means we dialled ourselves. [`NonceSet`] is that
//! structure behind a mutex. [`NonceSet::global`] is the process-wide instance every
//! peer uses by default; a [`Config`](crate::Config) may point to another one, which keeps
//! tests (or several independent nodes in one process) from seeing each other's nonces.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::mru::MruSet;

/// How many of our nonces are remembered (btcd `sentNonces` size).
pub const SENT_NONCES_CAPACITY: usize = 50;

/// A thread-safe MRU set of version nonces.
///
/// ```
/// use peer_core::NonceSet;
/// let set = NonceSet::new();
/// set.insert(7);
/// assert!(set.contains(7));
/// assert!(!set.contains(8));
/// ```
#[derive(Debug)]
pub struct NonceSet {
    inner: Mutex<MruSet<u64>>,
}

impl Default for NonceSet {
    fn default() -> NonceSet {
        NonceSet::new()
    }
}

impl NonceSet {
    /// An empty set holding the last [`SENT_NONCES_CAPACITY`] nonces.
    pub fn new() -> NonceSet {
        NonceSet::with_capacity(SENT_NONCES_CAPACITY)
    }

    /// An empty set holding the last `capacity` nonces.
    pub fn with_capacity(capacity: usize) -> NonceSet {
        NonceSet {
            inner: Mutex::new(MruSet::new(capacity)),
        }
    }

    /// The process-wide set shared by every peer whose config names none.
    pub fn global() -> Arc<NonceSet> {
        static GLOBAL: OnceLock<Arc<NonceSet>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(NonceSet::new())).clone()
    }

    /// Remembers a nonce we sent.
    pub fn insert(&self, nonce: u64) {
        // A panic while holding the lock cannot leave the set inconsistent in a way
        // that matters (worst case a nonce is missing), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(nonce);
    }

    /// Whether `nonce` is one of our recent nonces.
    pub fn contains(&self, nonce: u64) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_fifty() {
        let set = NonceSet::new();
        for n in 0..60u64 {
            set.insert(n);
        }
        assert!(!set.contains(9));
        assert!(set.contains(10));
        assert!(set.contains(59));
    }

    #[test]
    fn shared_between_threads() {
        let set = Arc::new(NonceSet::new());
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let s = set.clone();
                std::thread::spawn(move || s.insert(1000 + t))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for t in 0..4u64 {
            assert!(set.contains(1000 + t));
        }
        assert!(Arc::ptr_eq(&NonceSet::global(), &NonceSet::global()));
    }
}
