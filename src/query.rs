//! The threshold rule, decided once: an element `x` counts toward threshold `t` when `x <= t`.
//!
//! Both fast paths (CPU and GPU) put each element into one bucket, the smallest distinct
//! threshold `>= x`, then a prefix sum over the buckets answers every threshold at once: the cost
//! is one binary search per element instead of one comparison per element per threshold.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::input::Integers;

/// Distinct thresholds up to which the bucket search is branch-free (64 KiB of them).
const BRANCH_FREE_MAX: usize = 4096;

/// The thresholds as given and, built on first use, the same values sorted and deduplicated
/// with where each given one sits among the distinct ones. Paths that answer from the given
/// values alone (the CPU's histogram: a million thresholds) never sort. It owns the thresholds
/// ([`Plan::new`]) or borrows them ([`Plan::of`]: a session's query, which need not copy a
/// million of them).
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    given: Cow<'a, Integers>,
    min: i128,
    max: i128,
    sorted: OnceLock<Sorted>,
}

#[derive(Clone, Debug)]
struct Sorted {
    distinct: Vec<i128>,
    rank: Vec<u32>,
}

impl Plan<'static> {
    /// # Panics
    /// When `thresholds` is empty (the CLI refuses that as a data error first).
    pub fn new(thresholds: impl Into<Integers>) -> Plan<'static> {
        Plan::from_cow(Cow::Owned(thresholds.into()))
    }
}

impl<'a> Plan<'a> {
    /// [`Plan::new`] on borrowed thresholds.
    pub fn of(thresholds: &'a Integers) -> Plan<'a> {
        Plan::from_cow(Cow::Borrowed(thresholds))
    }

    fn from_cow(given: Cow<'a, Integers>) -> Plan<'a> {
        let (min, max) = given
            .iter()
            .fold((i128::MAX, i128::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        assert!(!given.is_empty(), "a plan needs at least one threshold");
        Plan {
            given,
            min,
            max,
            sorted: OnceLock::new(),
        }
    }

    /// One sort of (threshold, index) pairs, `O(Q log Q)`, or for thresholds packed into a
    /// span of at most a few values each, one count over the span, `O(Q)`; every answer after
    /// that is `O(Q)`.
    fn sorted(&self) -> &Sorted {
        self.sorted.get_or_init(|| {
            let given: &Integers = &self.given;
            let (distinct, rank) = rank_dense(given, self.min, self.max).unwrap_or_else(|| {
                match given {
                    // 64-bit pairs sort several times faster than 128-bit ones
                    Integers::Narrow(narrow) => {
                        let (distinct, rank) = rank_sorted(narrow);
                        (distinct.into_iter().map(i128::from).collect(), rank)
                    }
                    Integers::Wide(wide) => rank_sorted(wide),
                }
            });
            Sorted { distinct, rank }
        })
    }

    /// The thresholds in the order they were given.
    pub fn given(&self) -> &Integers {
        &self.given
    }

    /// The smallest threshold.
    pub fn min(&self) -> i128 {
        self.min
    }

    /// The largest threshold.
    pub fn max(&self) -> i128 {
        self.max
    }

    /// The distinct thresholds in ascending order: bucket `k` belongs to `distinct()[k]`.
    pub fn distinct(&self) -> &[i128] {
        &self.sorted().distinct
    }

    /// The bucket of `x`: the index of the smallest distinct threshold `>= x`, or `None` when `x`
    /// is above every threshold.
    ///
    /// Branch-free: with random elements every comparison of a branching search is a coin
    /// toss for the predictor, which cost more than the comparisons themselves.
    #[inline]
    pub fn bucket(&self, x: i128) -> Option<usize> {
        let d = self.distinct();
        if d.last().is_none_or(|&top| x > top) {
            return None;
        }
        if d.len() > BRANCH_FREE_MAX {
            // Past the caches a predicted branch lets the next load start early; that wins.
            return Some(d.partition_point(|&t| t < x));
        }
        let mut base = 0;
        let mut size = d.len();
        while size > 1 {
            let half = size / 2;
            // a select, not a branch
            base = if d[base + half - 1] < x {
                base + half
            } else {
                base
            };
            size -= half;
        }
        Some(base)
    }

    /// Results in the given order from per-bucket sums (one per distinct threshold).
    pub fn answer(&self, bucket_sums: &[u64]) -> Vec<u64> {
        let Sorted { distinct, rank } = self.sorted();
        assert_eq!(bucket_sums.len(), distinct.len());
        let prefix: Vec<u64> = bucket_sums
            .iter()
            .scan(0u64, |acc, &s| {
                *acc += s;
                Some(*acc)
            })
            .collect();
        rank.iter().map(|&r| prefix[r as usize]).collect()
    }
}

/// [`Plan::bucket`] for `i64` elements when there are at most [`FewBuckets::MAX`] distinct
/// thresholds, all `i64`s: a fixed four-step search over the thresholds padded to 16, with no
/// branch at all.
#[derive(Clone, Copy, Debug)]
pub struct FewBuckets {
    padded: [i64; 16],
    len: usize,
}

impl FewBuckets {
    /// One of the 16 slots stays free for elements above every threshold.
    pub const MAX: usize = 15;

    /// The bucket of `x` as [`Plan::bucket`] gives it, or [`FewBuckets::len`] (a slot past the
    /// real ones) when `x` is above every threshold.
    #[inline]
    pub fn slot(&self, x: i64) -> usize {
        // the number of padded thresholds below x: the first one >= x (the last pad,
        // i64::MAX, never is)
        let mut b = 0;
        for step in [8, 4, 2, 1] {
            b += if self.padded[b + step - 1] < x {
                step
            } else {
                0
            };
        }
        b
    }

    /// [`FewBuckets::slot`] of `start`, `start + 1`, ... in turn, by the same comparison: each
    /// threshold is passed once, so a run of values costs one step per value.
    pub fn slots_from(&self, start: i64) -> impl Iterator<Item = usize> + '_ {
        let mut slot = self.slot(start);
        (start..).map(move |x| {
            // the last pad, i64::MAX, is never below x
            while self.padded[slot] < x {
                slot += 1;
            }
            slot
        })
    }

    /// The number of distinct thresholds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The distinct thresholds, ascending.
    pub fn thresholds(&self) -> &[i64] {
        &self.padded[..self.len]
    }

    /// The largest threshold.
    pub fn top(&self) -> i64 {
        self.padded[self.len - 1]
    }
}

impl Plan<'_> {
    /// The plan as [`FewBuckets`], when it has 1 to [`FewBuckets::MAX`] distinct thresholds and
    /// they all fit `i64`.
    pub fn few_buckets(&self) -> Option<FewBuckets> {
        let distinct = self.distinct();
        if distinct.len() > FewBuckets::MAX {
            return None;
        }
        let mut padded = [i64::MAX; 16];
        for (slot, &t) in padded.iter_mut().zip(distinct) {
            *slot = i64::try_from(t).ok()?;
        }
        Some(FewBuckets {
            padded,
            len: distinct.len(),
        })
    }
}

/// Thresholds spanning at most this many values per threshold are ranked by counting.
const DENSE_SPAN_PER_VALUE: u128 = 4;
/// ... and at most this many values in all (a 64 MiB table).
const DENSE_SPAN_MAX: u128 = 1 << 24;

/// [`rank_sorted`] by counting, for values packed into a small span (a million thresholds
/// within 0..=10^6, say): one table entry per value of the span, no sort. `None` when the span
/// is too wide for that to pay.
fn rank_dense(values: &Integers, min: i128, max: i128) -> Option<(Vec<i128>, Vec<u32>)> {
    let span = (max - min) as u128 + 1;
    if span > DENSE_SPAN_MAX || span > DENSE_SPAN_PER_VALUE * values.len() as u128 {
        return None;
    }
    // 1 where a value is present, then each present value's rank
    let mut slots = vec![0u32; span as usize];
    let mut count = 0;
    for v in values.iter() {
        let slot = &mut slots[(v - min) as usize];
        count += 1 - *slot as usize;
        *slot = 1;
    }
    let mut distinct = Vec::with_capacity(count);
    for (offset, slot) in slots.iter_mut().enumerate() {
        if *slot != 0 {
            *slot = distinct.len() as u32;
            distinct.push(min + offset as i128);
        }
    }
    let rank = values.iter().map(|v| slots[(v - min) as usize]).collect();
    Some((distinct, rank))
}

/// The distinct values ascending, and each value's index among them.
fn rank_sorted<T: Ord + Copy + Send>(values: &[T]) -> (Vec<T>, Vec<u32>) {
    use rayon::slice::ParallelSliceMut;
    let mut order: Vec<(T, u32)> = values.iter().copied().zip(0..).collect();
    order.par_sort_unstable();
    let mut distinct: Vec<T> = Vec::new();
    let mut rank = vec![0u32; values.len()];
    for (t, i) in order {
        if distinct.last() != Some(&t) {
            distinct.push(t);
        }
        rank[i as usize] = distinct.len() as u32 - 1;
    }
    (distinct, rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_the_smallest_threshold_at_or_above() {
        let plan = Plan::new([10, -3, 10, 4]);
        assert_eq!(plan.distinct(), &[-3, 4, 10]);
        assert_eq!(plan.bucket(-100), Some(0));
        assert_eq!(plan.bucket(-3), Some(0));
        assert_eq!(plan.bucket(-2), Some(1));
        assert_eq!(plan.bucket(4), Some(1));
        assert_eq!(plan.bucket(10), Some(2));
        assert_eq!(plan.bucket(11), None);
        // buckets -3:5, 4:7, 10:11 -> prefix 5, 12, 23, in the given order
        assert_eq!(plan.answer(&[5, 7, 11]), vec![23, 5, 23, 12]);
        // beyond i64, the 128-bit path gives the same shape
        let wide = Plan::new([u64::MAX as i128, -3, u64::MAX as i128, 4]);
        assert_eq!(wide.distinct(), &[-3, 4, u64::MAX as i128]);
        assert_eq!(wide.answer(&[1, 2, 3]), vec![6, 1, 6, 3]);
    }

    #[test]
    fn few_buckets_agree_with_the_search() {
        let plan = Plan::new([10, -3, 10, 4, i64::MAX as i128 - 1]);
        let few = plan.few_buckets().expect("five i64 thresholds");
        assert_eq!((few.len(), few.top()), (4, i64::MAX - 1));
        for x in [
            i64::MIN,
            -100,
            -4,
            -3,
            -2,
            3,
            4,
            5,
            9,
            10,
            11,
            i64::MAX - 1,
            i64::MAX,
        ] {
            let expected = plan.bucket(x.into()).unwrap_or(few.len());
            assert_eq!(few.slot(x), expected, "x = {x}");
        }
        let fifteen = Plan::new((0..15).map(|t| t * 7).collect::<Vec<i128>>());
        let few = fifteen.few_buckets().expect("fifteen fit");
        for x in -3..110 {
            assert_eq!(
                few.slot(x),
                fifteen.bucket(x.into()).unwrap_or(15),
                "x = {x}"
            );
        }
        // the run of slots from any start is the slot of each value in turn
        for start in [-3, 0, 6, 7, 8, 97, 98] {
            let run: Vec<usize> = few.slots_from(start).take(120).collect();
            let each: Vec<usize> = (start..start + 120).map(|x| few.slot(x)).collect();
            assert_eq!(run, each, "from {start}");
        }
        assert!(Plan::new((0..16).collect::<Vec<i128>>())
            .few_buckets()
            .is_none());
        assert!(Plan::new([u64::MAX as i128]).few_buckets().is_none());
    }

    #[test]
    fn dense_and_sorted_ranking_agree() {
        let mut rng = crate::workload::SplitMix64::new(3);
        for (len, span) in [
            (1, 1),
            (10, 5),
            (1000, 3000),
            (1000, 5000),
            (200, 4000),
            (5000, 100),
        ] {
            let values: Vec<i128> = (0..len)
                .map(|_| rng.below(span) as i128 - 7)
                .chain(
                    [i64::MIN as i128, u64::MAX as i128]
                        .into_iter()
                        .filter(|_| span == 5000),
                )
                .collect();
            let (min, max) = (values.iter().min().unwrap(), values.iter().max().unwrap());
            let dense = rank_dense(&values.clone().into(), *min, *max);
            // dense exactly when the span is at most 4 values per threshold
            assert_eq!(dense.is_some(), span <= 4 * len, "{len} {span}");
            if let Some(dense) = dense {
                assert_eq!(dense, rank_sorted(&values), "{len} {span}");
            }
        }
    }
}
