//! Check stage: the object-size distribution of one class, in bounded
//! memory. Sizes below [`EXACT_BELOW`] pixels are counted exactly, one
//! bucket per size; larger sizes fall in buckets 1/[`SUB`] of a power of
//! two wide (relative width under 1/128). Smallest and largest sizes are
//! kept exactly. A quantile is the size of the object at rank
//! ceil(q x n) in increasing order (numpy's `inverted_cdf`): exact when
//! that size is below [`EXACT_BELOW`], else the lower edge of its bucket
//! (at most 1/128 below the true size).

use std::collections::BTreeMap;
use std::ops::AddAssign;

/// Sizes counted one bucket per size.
pub const EXACT_BELOW: u64 = 4096;
/// Buckets per power of two above [`EXACT_BELOW`].
const SUB: u64 = 128;
const SUB_BITS: u32 = 7;

/// Object sizes of one class (pixels), merged by addition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SizeHist {
    /// Bucket -> objects.
    buckets: BTreeMap<u64, u64>,
    pub objects: u64,
    pub min: Option<u64>,
    pub max: u64,
}

/// The bucket of `size`.
fn bucket(size: u64) -> u64 {
    if size < EXACT_BELOW {
        return size;
    }
    let e = 63 - size.leading_zeros();
    let sub = (size >> (e - SUB_BITS)) & (SUB - 1);
    EXACT_BELOW + u64::from(e - EXACT_BELOW.trailing_zeros()) * SUB + sub
}

/// The smallest size of bucket `b`.
fn lower_edge(b: u64) -> u64 {
    if b < EXACT_BELOW {
        return b;
    }
    let k = b - EXACT_BELOW;
    let e = k / SUB + u64::from(EXACT_BELOW.trailing_zeros());
    (SUB + k % SUB) << (e - u64::from(SUB_BITS))
}

impl SizeHist {
    pub fn add(&mut self, size: u64) {
        *self.buckets.entry(bucket(size)).or_default() += 1;
        self.objects += 1;
        self.min = Some(self.min.map_or(size, |m| m.min(size)));
        self.max = self.max.max(size);
    }

    /// The size at quantile `q` (see the module notes); `None` without
    /// objects.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.objects == 0 {
            return None;
        }
        let rank = ((q * self.objects as f64).ceil() as u64).clamp(1, self.objects);
        let mut seen = 0;
        for (&b, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let edge = lower_edge(b);
                return Some(edge.clamp(self.min.unwrap_or(edge), self.max));
            }
        }
        Some(self.max)
    }

    /// Objects in each of `edges.len() + 1` size ranges: below `edges[0]`,
    /// `edges[0]..edges[1]`, ..., `edges[last]..` (edges at or below
    /// [`EXACT_BELOW`] count exactly).
    pub fn binned(&self, edges: &[u64]) -> Vec<u64> {
        let mut out = vec![0; edges.len() + 1];
        for (&b, &n) in &self.buckets {
            let s = lower_edge(b);
            out[edges.partition_point(|&e| e <= s)] += n;
        }
        out
    }
}

impl AddAssign for SizeHist {
    fn add_assign(&mut self, rhs: Self) {
        for (b, n) in rhs.buckets {
            *self.buckets.entry(b).or_default() += n;
        }
        self.objects += rhs.objects;
        self.min = match (self.min, rhs.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = self.max.max(rhs.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_4096_and_narrow_above() {
        for s in [0, 1, 4095] {
            assert_eq!(lower_edge(bucket(s)), s);
        }
        for s in [4096u64, 4097, 5000, 65_535, 1 << 20, (1 << 28) - 1] {
            let edge = lower_edge(bucket(s));
            assert!(edge <= s && s - edge <= s / 128, "{s} -> {edge}");
            assert_eq!(bucket(edge), bucket(s));
        }
        assert_eq!(lower_edge(bucket(4096 + 31)), 4096);
        assert_eq!(lower_edge(bucket(4096 + 32)), 4096 + 32);
    }

    /// numpy: `np.quantile([1, 2, 3, 4, 10], q, method="inverted_cdf")`.
    #[test]
    fn quantiles_are_inverted_cdf_ranks() {
        let mut h = SizeHist::default();
        for s in [10, 1, 3, 2, 4] {
            h.add(s);
        }
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(0.2), Some(1));
        assert_eq!(h.quantile(0.25), Some(2));
        assert_eq!(h.quantile(0.5), Some(3));
        assert_eq!(h.quantile(0.9), Some(10));
        assert_eq!(h.quantile(1.0), Some(10));
        assert_eq!((h.min, h.max, h.objects), (Some(1), 10, 5));
        assert_eq!(h.binned(&[2, 4]), vec![1, 2, 2]);
        let mut a = SizeHist::default();
        a.add(7);
        a += h.clone();
        assert_eq!(a.objects, 6);
        assert_eq!(a.quantile(1.0), Some(10));
        assert_eq!(SizeHist::default().quantile(0.5), None);
    }
}
