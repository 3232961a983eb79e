//! The prefix table (every value's answer, for arrays of few distinct values), the values' range,
//! and how far a divisor table should reach.

use super::fast::*;
use super::*;

/// For every value `v` of `lo..=top`, the answer to threshold `v`: the sum of c(x) over the
/// elements `x <= v`. Built by `histogram` for one batch, and kept by a
/// [`crate::session::Session`] for all of them when the array's values span few enough values
/// ([`PrefixTable::MAX_VALUES`]): then every later threshold is one look-up.
#[derive(Debug)]
pub struct PrefixTable {
    pub(super) lo: i128,
    pub(super) top: i128,
    /// Elements below `lo`, counted (their c is 1: they are all below 0).
    pub(super) below: u64,
    pub(super) at_most: AtMost,
}

#[derive(Debug)]
pub(super) enum AtMost {
    /// Every sum fits 32 bits (the usual case: half the memory, and the histogram's own array).
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl PrefixTable {
    /// The most values a session's table spans: 32 MiB of u64 sums, 16 MiB of counts per task.
    pub const MAX_VALUES: u64 = HISTOGRAM_LIMIT;

    /// The table for `array` over `lo..=top` (`top` at most [`DivisorTable::MAX_LIMIT`], and
    /// `top - lo` below [`PrefixTable::MAX_VALUES`]; fewer than `u32::MAX` elements). Elements
    /// below `lo` must be negative. Cancelled, the sums are incomplete: the caller checks
    /// the observer before using them.
    pub(super) fn count(
        array: &Array,
        lo: i128,
        top: i128,
        observer: &dyn Observer,
    ) -> PrefixTable {
        debug_assert!(lo <= 0 || array.is_empty() || lo <= top);
        let values = (top - lo + 1) as usize;
        // a private histogram per task pays only over many elements per entry
        let tasks = (array.len() / (HISTOGRAM_ELEMENTS_PER_ENTRY as usize * values))
            .clamp(1, rayon::current_num_threads());
        let (table, (counts, below)) = rayon::join(
            || DivisorTable::new(top.max(2) as u64),
            || match histogram_in_place(array, lo, top, tasks, observer) {
                Some(counted) => counted,
                None => array.par_blocks(
                    BLOCK,
                    tasks,
                    || (vec![0u32; values], 0u64),
                    |(counts, below), _, xs| {
                        if !proceed(observer, xs) {
                            return;
                        }
                        for &x in xs {
                            if x < lo {
                                *below += 1;
                            } else if x <= top {
                                counts[(x - lo) as usize] += 1;
                            }
                        }
                    },
                    |(mut ca, ba), (cb, bb)| {
                        ca.iter_mut().zip(cb).for_each(|(x, y)| *x += y);
                        (ca, ba + bb)
                    },
                ),
            },
        );
        // c(v) for each value from `lo`: 1 for those below 0, then the table's
        let negatives = usize::try_from(-lo).unwrap_or(0).min(counts.len());
        let from_0 = &table.counts()[usize::try_from(lo).unwrap_or(0)..];
        let at_most = running_sums(counts, below, negatives, from_0, u32::MAX.into());
        PrefixTable {
            lo,
            top,
            below,
            at_most,
        }
    }

    /// The table for every element of `array`, when its values span at most
    /// [`PrefixTable::MAX_VALUES`] values up to [`DivisorTable::MAX_LIMIT`]: one pass for the
    /// smallest and largest element (none for 8- and 16-bit dtypes, whose range is the
    /// dtype's), one to count. `Ok(None)` when the values do not fit a table (then every batch
    /// is a pass), `Err(Cancelled)` when `observer` stopped it.
    pub fn of_array(array: &Array, observer: &dyn Observer) -> Result<Option<PrefixTable>> {
        if array.len() >= u32::MAX as usize {
            // a value's count could pass u32
            return Ok(None);
        }
        let Some((lo, hi)) = value_range(array, observer) else {
            return Ok(Some(PrefixTable {
                lo: 0,
                top: 0,
                below: 0,
                at_most: AtMost::Narrow(vec![0]),
            }));
        };
        if observer.cancelled() {
            return Err(Error::Cancelled);
        }
        let top = hi.max(lo);
        let fits = top <= i128::from(DivisorTable::MAX_LIMIT)
            && u64::try_from(top - lo + 1).is_ok_and(|n| n <= PrefixTable::MAX_VALUES);
        if !fits {
            return Ok(None);
        }
        let table = PrefixTable::count(array, lo, top, observer);
        if observer.cancelled() {
            return Err(Error::Cancelled);
        }
        debug_assert_eq!(table.below, 0);
        Ok(Some(table))
    }

    /// The sum of c(x) over the elements `x <= t`. Exact for every `t` when no element is below
    /// the table's range (a table [`PrefixTable::of_array`] built); `None` for `t` below the
    /// range when some are.
    pub fn at_most(&self, t: i128) -> Option<u64> {
        if t < self.lo {
            return (self.below == 0).then_some(0);
        }
        let i = (t.min(self.top) - self.lo) as usize;
        Some(match &self.at_most {
            AtMost::Narrow(sums) => u64::from(sums[i]),
            AtMost::Wide(sums) => sums[i],
        })
    }

    /// The values present in the array (those where the running sum steps up: every element
    /// adds at least 1) with their running sums, ascending: a dense table as a sorted index's
    /// entries, for saving. For a table with no element below its range.
    pub fn entries(&self) -> impl Iterator<Item = (i128, u64)> + '_ {
        let sums: Box<dyn Iterator<Item = u64> + '_> = match &self.at_most {
            AtMost::Narrow(sums) => Box::new(sums.iter().map(|&s| u64::from(s))),
            AtMost::Wide(sums) => Box::new(sums.iter().copied()),
        };
        let mut before = self.below;
        sums.enumerate().filter_map(move |(i, sum)| {
            let step = sum > before;
            before = sum;
            step.then_some((self.lo + i as i128, sum))
        })
    }

    /// Bytes the table's sums take.
    pub fn bytes(&self) -> u64 {
        match &self.at_most {
            AtMost::Narrow(sums) => 4 * sums.len() as u64,
            AtMost::Wide(sums) => 8 * sums.len() as u64,
        }
    }

    /// Values the table spans.
    pub fn span(&self) -> usize {
        match &self.at_most {
            AtMost::Narrow(sums) => sums.len(),
            AtMost::Wide(sums) => sums.len(),
        }
    }
}

/// The smallest and largest element, `None` for an empty array: from the dtype alone for 8-
/// and 16-bit elements (at most 65,536 values: a table over the whole range costs less than
/// a pass), else one pass (stopped early when `observer` is cancelled).
pub(super) fn value_range(array: &Array, observer: &dyn Observer) -> Option<(i128, i128)> {
    use rayon::prelude::*;
    if array.is_empty() {
        return None;
    }
    let dtype = array.dtype();
    if dtype.width <= 2 {
        let bits = 8 * dtype.width as u32;
        return Some(if dtype.signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        });
    }
    let merge = |(a, b): (i128, i128), (c, d): (i128, i128)| (a.min(c), b.max(d));
    let empty = (i128::MAX, i128::MIN);
    if let Some(values) = array.native_i64() {
        // read in place: the common case, at memory speed
        return Some(
            values
                .par_chunks(BLOCK)
                .map(|xs| {
                    if observer.cancelled() {
                        return empty;
                    }
                    let lo = xs.iter().copied().min().unwrap_or(i64::MAX);
                    let hi = xs.iter().copied().max().unwrap_or(i64::MIN);
                    (i128::from(lo), i128::from(hi))
                })
                .reduce(|| empty, merge),
        );
    }
    Some(array.par_blocks(
        BLOCK,
        rayon::current_num_threads(),
        || empty,
        |range, _, xs| {
            if observer.cancelled() {
                return;
            }
            for &x in xs {
                *range = merge(*range, (x, x));
            }
        },
        merge,
    ))
}

/// Each threshold's entry of `at_most` (indexed by value from `lo`), on every thread.
pub(super) fn look_up<T: Copy + Into<u64> + Sync>(
    plan: &Plan,
    lo: i128,
    at_most: &[T],
) -> Vec<u64> {
    use rayon::prelude::*;
    match plan.given() {
        Integers::Narrow(given) => given
            .par_iter()
            .map(|&t| at_most[(i128::from(t) - lo) as usize].into())
            .collect(),
        Integers::Wide(given) => given
            .par_iter()
            .map(|&t| at_most[(t - lo) as usize].into())
            .collect(),
    }
}

/// How far a divisor table should reach: to the largest threshold (or as far as a table may),
/// when that is small enough to be worth building for this many elements (its cost is a few
/// ns per entry; factoring costs more per element).
pub(super) fn table_limit(elements: usize, plan: &Plan) -> Option<u64> {
    let limit = u64::try_from(plan.max()).ok()?.min(DivisorTable::MAX_LIMIT);
    (limit >= 2 && limit <= DivisorTable::ENTRIES_PER_ELEMENT * elements as u64).then_some(limit)
}
