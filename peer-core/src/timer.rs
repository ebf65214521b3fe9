//! Periodic ticks without a ticker: the instants of a period anchored at one instant.
//!
//! btcd runs `time.Ticker`s for trickling and stall checks. A sans-IO peer instead
//! computes the tick it next needs and reports it through `poll_timeout`, so an idle
//! peer is never woken for a tick that has nothing to do.

use std::time::{Duration, Instant};

/// The smallest `anchor + k * period` (k ≥ 1) that is at or after `t`.
pub(crate) fn tick_at_or_after(anchor: Instant, period: Duration, t: Instant) -> Instant {
    let period = period.max(Duration::from_millis(1));
    let since = t.saturating_duration_since(anchor);
    let p = period.as_nanos();
    let k = since.as_nanos().div_ceil(p).max(1);
    add_periods(anchor, period, k)
}

/// The smallest `anchor + k * period` (k ≥ 1) that is strictly after `t`.
pub(crate) fn tick_after(anchor: Instant, period: Duration, t: Instant) -> Instant {
    let period = period.max(Duration::from_millis(1));
    let since = t.saturating_duration_since(anchor);
    let k = since.as_nanos() / period.as_nanos() + 1;
    add_periods(anchor, period, k)
}

fn add_periods(anchor: Instant, period: Duration, k: u128) -> Instant {
    let nanos = period.as_nanos().saturating_mul(k);
    let secs = (nanos / 1_000_000_000).min(u128::from(u64::MAX / 2)) as u64;
    let sub = (nanos % 1_000_000_000) as u32;
    anchor
        .checked_add(Duration::new(secs, sub))
        .unwrap_or(anchor + Duration::from_secs(86_400 * 365 * 100))
}

#[cfg(test)]
// Tests take an arbitrary origin instant from the clock; the code under test never does.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_aligned_to_the_anchor() {
        let a = Instant::now();
        let p = Duration::from_secs(15);
        assert_eq!(tick_at_or_after(a, p, a), a + p);
        assert_eq!(
            tick_at_or_after(a, p, a + Duration::from_secs(30)),
            a + 2 * p
        );
        assert_eq!(
            tick_at_or_after(a, p, a + Duration::from_secs(31)),
            a + 3 * p
        );
        assert_eq!(tick_after(a, p, a + Duration::from_secs(30)), a + 3 * p);
        assert_eq!(tick_after(a, p, a + Duration::from_secs(29)), a + 2 * p);
        // Zero periods do not divide by zero.
        assert!(tick_after(a, Duration::ZERO, a) > a);
    }
}
