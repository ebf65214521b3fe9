//! Memory measurement shared by the `hostile` and `soak` tests (and the `idle-memory`
//! example, which includes this file by path): a counting global
//! allocator with its live-heap reader, the resident set size, and the lock that keeps
//! the measuring tests of one binary from running at once.
//!
//! Each test file is its own crate, so `mod support;` compiles this module into each of
//! them, and the `#[global_allocator]` below is declared once per test binary. It lives
//! here rather than in the test files so that [`heap`] can only ever be used together
//! with the allocator that feeds it: a test crate that forgot to install `Counting`
//! would read a counter stuck at zero and pass every heap bound without measuring
//! anything.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The system allocator, counting live bytes.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counter is only arithmetic on the sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap bytes of this process.
pub fn heap() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Resident set size of this process (server and clients), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: the heap counter and the resident set size are process-wide,
/// so a figure must belong to one test's load, not to whatever runs beside it.
/// Poison-tolerant, so one failed test does not fail the others with a `PoisonError`.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
