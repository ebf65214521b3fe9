//! Reliability over exponential windows (sipa's seeder): each window keeps a decayed
//! success fraction, a decayed attempt count and a decayed weight, so old results fade
//! with the window's time constant instead of dropping off a cliff.

/// The five windows' time constants in seconds: 2 hours, 8 hours, 1 day, 1 week, 1 month.
pub const WINDOWS: [f64; 5] = [
    2.0 * 3600.0,
    8.0 * 3600.0,
    86400.0,
    7.0 * 86400.0,
    30.0 * 86400.0,
];

/// One exponential window.
///
/// ```
/// use seeder::stats::Window;
/// let mut w = Window::default();
/// w.update(true, u64::MAX, 7200.0); // first try ever: the past weighs nothing
/// assert_eq!(w.reliability, 1.0);
/// w.update(false, 7200, 7200.0); // a failure one time constant later
/// assert!((w.reliability - (-1.0f32).exp()).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    /// Decayed weight of the observations (1 = fully observed).
    pub weight: f32,
    /// Decayed number of attempts.
    pub count: f32,
    /// Decayed fraction of successes, in [0, 1].
    pub reliability: f32,
}

impl Window {
    /// Adds one attempt `age` seconds after the previous one (`u64::MAX` for the first).
    pub fn update(&mut self, good: bool, age: u64, tau: f64) {
        let f = (-(age as f64) / tau).exp();
        let r = f64::from(self.reliability) * f + if good { 1.0 - f } else { 0.0 };
        self.reliability = r.clamp(0.0, 1.0) as f32;
        self.count = (f64::from(self.count) * f + 1.0) as f32;
        self.weight = (f64::from(self.weight) * f + (1.0 - f)) as f32;
    }

    /// The attempts the window counts, rounded: two tries seconds apart are two, two
    /// tries a window apart weigh 1.37 and count as one.
    pub fn attempts(&self) -> u32 {
        self.count.round().max(0.0) as u32
    }

    /// sipa's badness measure: reliability minus weight plus one (low = failing in
    /// most of what the window has seen).
    pub fn score(&self) -> f32 {
        self.reliability - self.weight + 1.0
    }
}

/// All five windows of a node.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reliability {
    /// 2h, 8h, 1d, 1w, 1m.
    pub windows: [Window; 5],
}

impl Reliability {
    /// Records one attempt in every window.
    pub fn update(&mut self, good: bool, age: u64) {
        for (w, tau) in self.windows.iter_mut().zip(WINDOWS) {
            w.update(good, age, tau);
        }
    }

    /// sipa's good-node clause on the windows (the issue's thresholds): 2h ≥ 85% with ≥ 2
    /// attempts, 8h ≥ 70% with ≥ 4, 1d ≥ 55% with ≥ 8, 1w ≥ 45% with ≥ 16, or 1m ≥ 35%
    /// with ≥ 32.
    pub fn is_reliable(&self) -> bool {
        const RULE: [(f32, u32); 5] = [(0.85, 2), (0.70, 4), (0.55, 8), (0.45, 16), (0.35, 32)];
        self.windows
            .iter()
            .zip(RULE)
            .any(|(w, (r, n))| w.reliability >= r && w.attempts() >= n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_quick_successes_are_reliable_one_is_not() {
        let mut r = Reliability::default();
        r.update(true, u64::MAX);
        assert!(!r.is_reliable());
        r.update(true, 5);
        assert!(r.is_reliable());
    }

    #[test]
    fn reliability_measures_time_up_not_tries() {
        // Down for a day (tries every 10 min), then two quick successes: still unreliable.
        let mut r = Reliability::default();
        r.update(false, u64::MAX);
        for _ in 0..144 {
            r.update(false, 600);
        }
        r.update(true, 600);
        r.update(true, 5);
        assert!(!r.is_reliable());
        // Up for the next 8 hours: the 2h window forgets the bad day.
        for _ in 0..48 {
            r.update(true, 600);
        }
        assert!(r.windows[0].reliability >= 0.85);
        assert!(r.is_reliable());
        // A failure right after a success weighs little; a long outage weighs a lot.
        let mut up = Reliability::default();
        up.update(true, u64::MAX);
        up.update(false, 5);
        assert!(up.windows[0].reliability > 0.99);
        up.update(false, 4 * 3600);
        assert!(up.windows[0].reliability < 0.15);
    }

    proptest! {
        #[test]
        fn windows_stay_in_range(tries in proptest::collection::vec((any::<bool>(), 0u64..10_000_000), 1..60)) {
            let mut r = Reliability::default();
            for (good, age) in tries {
                r.update(good, age);
                for w in r.windows {
                    prop_assert!((0.0..=1.0).contains(&w.reliability));
                    prop_assert!((0.0..=1.0001).contains(&w.weight));
                    prop_assert!(w.count >= 1.0);
                    prop_assert!(w.reliability <= w.weight + 1e-4);
                }
            }
        }

        #[test]
        fn all_failures_never_reliable(n in 1usize..50, age in 0u64..100_000) {
            let mut r = Reliability::default();
            for i in 0..n { r.update(false, if i == 0 { u64::MAX } else { age }); }
            prop_assert!(!r.is_reliable());
        }
    }
}
