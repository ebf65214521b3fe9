//! A mergeable latency histogram.
//!
//! Workers record every latency (connect, round trip) into a [`Histogram`] and ship it to
//! the coordinator as JSON; merging histograms, unlike merging percentiles, keeps the
//! percentiles of the whole run exact to the bucket width (≈ 3 %).

use serde_json::{json, Value};

/// Sub-buckets per power of two, as a shift: 2^5 = 32, so a bucket is ≤ 1/32 of its value.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUB;

/// Counts of values (microseconds) in log-linear buckets.
///
/// ```
/// use benches::histogram::Histogram;
/// let mut h = Histogram::default();
/// for v in 1..=100 {
///     h.record(v);
/// }
/// assert_eq!(h.count(), 100);
/// let p50 = h.percentile(50.0);
/// assert!((49..=51).contains(&p50));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

/// The bucket a value falls in.
fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // e >= SUB_BITS + 1
    let shift = e - SUB_BITS;
    let mantissa = (v >> shift) & (SUB - 1);
    (shift as u64 * SUB + mantissa + SUB) as usize
}

/// The smallest value of bucket `i`.
fn lower(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let mantissa = (i - SUB) % SUB;
    (SUB + mantissa) << shift
}

/// The width of bucket `i`.
fn width(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        1
    } else {
        1 << ((i - SUB) / SUB)
    }
}

impl Histogram {
    /// Adds one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the values (exact), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value below which `p` percent of the values fall (the middle of its bucket,
    /// never above the maximum), 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let mid = lower(i) + (width(i) - 1) / 2;
                return mid.min(self.max);
            }
        }
        self.max
    }

    /// The histogram as JSON (sparse buckets), for the worker → coordinator channel.
    pub fn to_json(&self) -> Value {
        let buckets: Vec<Value> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| json!([i, c]))
            .collect();
        json!({ "buckets": buckets, "max": self.max, "sum": self.sum.to_string() })
    }

    /// Reads what [`Histogram::to_json`] wrote; `None` if it is malformed. Bucket indexes
    /// are bounded (no allocation sized by the input beyond the 64-bit value range).
    pub fn from_json(v: &Value) -> Option<Histogram> {
        let mut h = Histogram::default();
        let max_index = index(u64::MAX);
        for b in v.get("buckets")?.as_array()? {
            let pair = b.as_array()?;
            let i = usize::try_from(pair.first()?.as_u64()?).ok()?;
            let c = pair.get(1)?.as_u64()?;
            if i > max_index {
                return None;
            }
            if h.counts.len() <= i {
                h.counts.resize(i + 1, 0);
            }
            h.counts[i] += c;
            h.total += c;
        }
        h.max = v.get("max")?.as_u64()?;
        h.sum = v.get("sum")?.as_str()?.parse().ok()?;
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut prev = 0;
        for v in 0..100_000u64 {
            let i = index(v);
            assert!(i == prev || i == prev + 1, "gap at {v}");
            assert!(
                lower(i) <= v && v < lower(i) + width(i),
                "{v} not in bucket {i}"
            );
            prev = i;
        }
        assert!(index(u64::MAX) < 2048);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for v in 0..1000u64 {
            h.record(v * 10);
        }
        let p99 = h.percentile(99.0);
        assert!((9_600..=10_200).contains(&p99), "p99 {p99}");
        assert_eq!(h.max(), 9_990);
        assert_eq!(h.percentile(100.0), 9_990);
        assert!((h.mean() - 4_995.0).abs() < 1e-9);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn malformed_json_is_refused() {
        assert!(Histogram::from_json(&json!({"buckets": [[1]], "max": 1, "sum": "1"})).is_none());
        assert!(
            Histogram::from_json(&json!({"buckets": [[1_000_000, 1]], "max": 1, "sum": "1"}))
                .is_none()
        );
        assert!(Histogram::from_json(&json!({"buckets": [], "max": 1})).is_none());
    }

    proptest! {
        #[test]
        fn merge_equals_recording_everything(a in proptest::collection::vec(0u64..10_000_000, 0..200),
                                             b in proptest::collection::vec(0u64..10_000_000, 0..200)) {
            let mut ha = Histogram::default();
            a.iter().for_each(|&v| ha.record(v));
            let mut hb = Histogram::default();
            b.iter().for_each(|&v| hb.record(v));
            let mut all = Histogram::default();
            a.iter().chain(&b).for_each(|&v| all.record(v));
            ha.merge(&hb);
            prop_assert_eq!(ha.count(), all.count());
            prop_assert_eq!(ha.percentile(50.0), all.percentile(50.0));
            prop_assert_eq!(ha.percentile(99.0), all.percentile(99.0));
        }

        #[test]
        fn json_round_trip(a in proptest::collection::vec(any::<u64>(), 0..100)) {
            let mut h = Histogram::default();
            a.iter().for_each(|&v| h.record(v));
            prop_assert_eq!(Histogram::from_json(&h.to_json()), Some(h));
        }

        #[test]
        fn percentile_is_within_bucket_precision(a in proptest::collection::vec(1u64..1_000_000_000, 1..300), p in 1.0f64..100.0) {
            let mut h = Histogram::default();
            a.iter().for_each(|&v| h.record(v));
            let mut sorted = a.clone();
            sorted.sort_unstable();
            let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
            let exact = sorted[rank - 1];
            let got = h.percentile(p);
            let tolerance = exact / 32 + 1;
            prop_assert!(got.abs_diff(exact) <= tolerance, "p{} exact {} got {}", p, exact, got);
        }
    }
}
