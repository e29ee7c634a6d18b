//! What a subscriber keeps per message, without allocating per message: a
//! log-linear latency histogram and, per publisher, a bit per sequence
//! number seen (loss and duplicates).

/// Values below this are counted exactly (nanoseconds).
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above that: about 1.5 % resolution.
const SUB_BITS: u32 = 6;
const BUCKETS: usize = 128 + (64 - 7) * (1 << SUB_BITS);

/// Latencies in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    pub count: u64,
    pub max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            max: 0,
            sum: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= 7
    let m = (v >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    128 + ((e - 7) as usize) * (1 << SUB_BITS) + m as usize
}

/// The largest value of bucket `i`.
fn upper(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let j = i - 128;
    let e = (j >> SUB_BITS) as u32 + 7;
    let m = (j & ((1 << SUB_BITS) - 1)) as u64;
    let lo = ((1u64 << SUB_BITS) + m) << (e - SUB_BITS);
    lo.saturating_add((1u64 << (e - SUB_BITS)) - 1)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.count += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The value at quantile `q` (0..=1): the top of its bucket, at most the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }
}

/// Sequence numbers seen from one publisher, a bit each; grows as they
/// come, up to `limit` (a number beyond it is not from this run).
#[derive(Default, Clone)]
pub struct Seen {
    bits: Vec<u64>,
    pub unique: u64,
    pub duplicates: u64,
}

impl Seen {
    /// Marks `seq`; false when it is beyond `limit`.
    pub fn mark(&mut self, seq: u64, limit: u64) -> bool {
        if seq >= limit {
            return false;
        }
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if w >= self.bits.len() {
            let want = (w + 1).next_power_of_two().max(16);
            let cap = (limit / 64 + 1) as usize;
            self.bits.resize(want.min(cap).max(w + 1), 0);
        }
        let word = &mut self.bits[w];
        if *word & (1 << b) != 0 {
            self.duplicates += 1;
        } else {
            *word |= 1 << b;
            self.unique += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent_and_ordered() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        let p99 = h.quantile(0.99);
        let p999 = h.quantile(0.999);
        assert!(h.quantile(0.5) <= p99 && p99 <= p999 && p999 <= h.max);
        assert_eq!(h.max, 100_000_000);
        assert_eq!(upper(index(5)), 5);
        for v in [128u64, 1000, 123_456_789, u64::MAX / 3] {
            assert!(upper(index(v)) >= v, "{v}");
        }
    }

    #[test]
    fn seen_counts_unique_and_duplicates_and_refuses_strangers() {
        let mut s = Seen::default();
        assert!(s.mark(0, 1000) && s.mark(999, 1000) && s.mark(0, 1000));
        assert!(!s.mark(1000, 1000));
        assert_eq!((s.unique, s.duplicates), (2, 1));
    }
}
