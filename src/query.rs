//! The threshold rule, decided once: an element `x` counts toward threshold `t` when `x <= t`.
//!
//! Both fast paths (CPU and GPU) put each element into one bucket, the smallest distinct
//! threshold `>= x`, then a prefix sum over the buckets answers every threshold at once: the cost
//! is one binary search per element instead of one comparison per element per threshold.

/// The thresholds as given, and the same values sorted and deduplicated.
#[derive(Clone, Debug)]
pub struct Plan {
    given: Vec<i128>,
    distinct: Vec<i128>,
}

impl Plan {
    pub fn new(thresholds: &[i128]) -> Plan {
        let mut distinct = thresholds.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Plan {
            given: thresholds.to_vec(),
            distinct,
        }
    }

    /// The thresholds in the order they were given.
    pub fn given(&self) -> &[i128] {
        &self.given
    }

    /// The distinct thresholds in ascending order: bucket `k` belongs to `distinct()[k]`.
    pub fn distinct(&self) -> &[i128] {
        &self.distinct
    }

    /// The bucket of `x`: the index of the smallest distinct threshold `>= x`, or `None` when `x`
    /// is above every threshold.
    #[inline]
    pub fn bucket(&self, x: i128) -> Option<usize> {
        let k = self.distinct.partition_point(|&t| t < x);
        (k < self.distinct.len()).then_some(k)
    }

    /// Results in the given order from per-bucket sums (one per distinct threshold).
    pub fn answer(&self, bucket_sums: &[u64]) -> Vec<u64> {
        assert_eq!(bucket_sums.len(), self.distinct.len());
        let prefix: Vec<u64> = bucket_sums
            .iter()
            .scan(0u64, |acc, &s| {
                *acc += s;
                Some(*acc)
            })
            .collect();
        self.given
            .iter()
            .map(|t| {
                prefix[self
                    .distinct
                    .binary_search(t)
                    .expect("every given threshold is distinct")]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_the_smallest_threshold_at_or_above() {
        let plan = Plan::new(&[10, -3, 10, 4]);
        assert_eq!(plan.distinct(), &[-3, 4, 10]);
        assert_eq!(plan.bucket(-100), Some(0));
        assert_eq!(plan.bucket(-3), Some(0));
        assert_eq!(plan.bucket(-2), Some(1));
        assert_eq!(plan.bucket(4), Some(1));
        assert_eq!(plan.bucket(10), Some(2));
        assert_eq!(plan.bucket(11), None);
        // buckets -3:5, 4:7, 10:11 -> prefix 5, 12, 23, in the given order
        assert_eq!(plan.answer(&[5, 7, 11]), vec![23, 5, 23, 12]);
    }
}
