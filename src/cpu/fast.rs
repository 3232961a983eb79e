//! c(x) once per element: the few-buckets pass (in place, at the element's width), the histogram
//! of small values, and the per-element path with factoring.

use super::prefix::*;
use super::*;

/// c(x) once per element, into the bucket of its threshold, then one prefix sum.
pub(super) fn fast(array: &Array, plan: &Plan, observer: &dyn Observer) -> Vec<u64> {
    let limit = table_limit(array.len(), plan);
    if let Some(lo) = limit.and_then(|limit| histogram_start(array.len(), plan, limit)) {
        return histogram(array, plan, lo, observer);
    }
    let table = limit.map(|limit| {
        // the file's first pages mapped by another thread meanwhile, rather than one fault at a
        // time in the pass
        let (table, ()) = rayon::join(
            || DivisorTable::new(limit),
            || array.populate(POPULATE_BYTES_PER_ENTRY * (limit as usize + 1)),
        );
        table
    });
    let Some(table) = table else {
        return plan.answer(&per_element(array, plan, None, observer));
    };
    let table = match packed(array, plan, table, observer) {
        Ok(buckets) => return plan.answer(&buckets),
        Err(table) => table,
    };
    if let Some(buckets) = few_buckets_in_place(array, plan, &table, observer) {
        return plan.answer(&buckets);
    }
    plan.answer(&per_element(array, plan, Some(&table), observer))
}

/// [`few_buckets`] on the array read in place at its own width, whatever its integer type, when
/// it is stored contiguous, native-endian and aligned.
pub(super) fn few_buckets_in_place(
    array: &Array,
    plan: &Plan,
    table: &DivisorTable,
    observer: &dyn Observer,
) -> Option<Vec<u64>> {
    in_place!(array, |values| few_buckets(values, plan, table, observer))
}

/// Few thresholds, elements read in place at their own width, every threshold within the table
/// but one below 0 among them: as [`packed`], but each element's bucket by [`FewBuckets::slot`]
/// (elements above every threshold land in a slot that is dropped; `u64`s above `i64::MAX`
/// saturate to it, above the table's top and so above every threshold) and its count by a table
/// lookup (negatives clamp to entry 0, whose count is theirs). No branch per element. `None`
/// when the plan or the table does not fit that shape.
pub(super) fn few_buckets<T: Element>(
    values: &[T],
    plan: &Plan,
    table: &DivisorTable,
    observer: &dyn Observer,
) -> Option<Vec<u64>> {
    let few = plan.few_buckets()?;
    let top = few.top();
    if u64::try_from(top).ok()? != table.limit() {
        return None;
    }
    let counts = table.counts();
    let sums = slot_sums(values, observer, move |x| {
        let x = x.saturating_i64();
        (few.slot(x), u64::from(counts[x.clamp(0, top) as usize]))
    });
    Some(sums[..few.len()].to_vec())
}

/// The slots [`slot_sums`] adds into: [`FewBuckets::MAX`] buckets and the dropped one.
pub(super) const SLOTS: usize = FewBuckets::MAX + 1;

/// For each slot, the sum of the counts of the elements in it, on the pool's threads: `entry`
/// gives an element's slot (below [`SLOTS`]) and its count.
pub(super) fn slot_sums<T: Element>(
    values: &[T],
    observer: &dyn Observer,
    entry: impl Fn(T) -> (usize, u64) + Copy + Send + Sync,
) -> [u64; SLOTS] {
    use rayon::prelude::*;
    // Consecutive elements add into different copies of the sums, so that a run of elements in
    // one slot (the post's: half of them above every threshold) is not a chain of additions to
    // one place in memory, each waiting for the last. 8 copies measured best (1, 4, 8 and 16:
    // docs/performance.md, "Measurements behind the code").
    pub(super) const COPIES: usize = 8;
    let add = move |sums: &mut [u64; SLOTS], x: T| {
        let (slot, count) = entry(x);
        sums[slot] += count;
    };
    let blocks = values.len().div_ceil(BLOCK);
    let tasks = FAST_TASKS_PER_THREAD * rayon::current_num_threads();
    let sums = values
        .par_chunks(BLOCK)
        .with_min_len((blocks / tasks).max(1))
        .fold(
            || [[0u64; SLOTS]; COPIES],
            move |mut sums, xs| {
                if observer.cancelled() {
                    return sums;
                }
                observer.advance(xs.len() as u64);
                let mut groups = xs.chunks_exact(COPIES);
                for group in &mut groups {
                    for (sums, &x) in sums.iter_mut().zip(group) {
                        add(sums, x);
                    }
                }
                for &x in groups.remainder() {
                    add(&mut sums[0], x);
                }
                sums
            },
        )
        .reduce(
            || [[0u64; SLOTS]; COPIES],
            |mut a, b| {
                a.as_flattened_mut()
                    .iter_mut()
                    .zip(b.as_flattened())
                    .for_each(|(x, y)| *x += y);
                a
            },
        );
    std::array::from_fn(|slot| sums.iter().map(|copy| copy[slot]).sum())
}

/// The low bits of a [`pack`]ed entry: the value's count. Every count of a table up to
/// [`DivisorTable::MAX_LIMIT`] is below 2^12 (the largest is 504).
pub(super) const PACKED_COUNT_BITS: u32 = 12;

/// The post's shape at full speed: few enough distinct thresholds for [`FewBuckets`], none
/// below 0, the largest the table's top, and the array stored so that it is read in place. Then
/// one table lookup gives each element both its count and its bucket (see [`pack`]): no search
/// and no branch per element. Negatives clamp to entry 0, whose count is theirs and whose bucket
/// (below every threshold) too; elements above the top clamp to the entry past it, which adds 0
/// to the dropped slot, and `u64`s above `i64::MAX` saturate to it. `Err(table)`, untouched,
/// when the plan or the array does not fit that shape.
pub(super) fn packed(
    array: &Array,
    plan: &Plan,
    table: DivisorTable,
    observer: &dyn Observer,
) -> Result<Vec<u64>, DivisorTable> {
    let Some(few) = plan.few_buckets() else {
        return Err(table);
    };
    let fits = few.thresholds().first().is_some_and(|&t| t >= 0)
        && u64::try_from(few.top()).is_ok_and(|top| top == table.limit())
        && in_place!(array, |_values| Some(())).is_some();
    if !fits {
        return Err(table);
    }
    let entries = pack(table, &few);
    let last = entries.len() as i64 - 1;
    let entries = entries.as_slice();
    let sums = in_place!(array, |values| Some(slot_sums(
        values,
        observer,
        move |x| {
            let e = entries[x.saturating_i64().clamp(0, last) as usize];
            (
                usize::from(e >> PACKED_COUNT_BITS),
                u64::from(e & ((1 << PACKED_COUNT_BITS) - 1)),
            )
        }
    )))
    .expect("read in place, as checked");
    Ok(sums[..few.len()].to_vec())
}

/// The divisor table with each value's bucket in it: entry `v` of `0..=top` is c(v) in the low
/// [`PACKED_COUNT_BITS`] bits and, above them, the number of thresholds below `v`; one more entry
/// past `top` has count 0 and the slot past every threshold's, which [`packed`] drops. Built in
/// the table's own memory, on the pool's threads.
pub(super) fn pack(table: DivisorTable, few: &FewBuckets) -> Vec<u16> {
    use rayon::prelude::*;
    let mut entries = table.into_counts();
    entries.push(0);
    entries
        .par_chunks_mut(1 << 16)
        .enumerate()
        .for_each(|(chunk, entries)| {
            for (e, slot) in entries.iter_mut().zip(few.slots_from((chunk << 16) as i64)) {
                debug_assert!(*e < 1 << PACKED_COUNT_BITS);
                *e |= (slot as u16) << PACKED_COUNT_BITS;
            }
        });
    entries
}

/// Histograms up to this many values: 16 MiB of u32 counts per task at most.
pub(super) const HISTOGRAM_LIMIT: u64 = 1 << 22;
/// A histogram (allocated, zeroed, merged and walked per task) pays off only over many more
/// elements than entries (measured on the post's values: docs/performance.md, "Measurements
/// behind the code").
pub(super) const HISTOGRAM_ELEMENTS_PER_ENTRY: u64 = 16;
/// With this many thresholds a per-element search costs cache misses of its own, and the
/// histogram, which never sorts them, wins whatever the array's length.
pub(super) const HISTOGRAM_THRESHOLDS: usize = 4096;

/// Where [`histogram`] starts counting values, when it is the way to answer `plan`: the table
/// (up to `limit`) must reach the largest threshold, and the values from the smallest
/// threshold (or 0) to there must be few enough to count one by one.
pub(super) fn histogram_start(elements: usize, plan: &Plan, limit: u64) -> Option<i128> {
    let lo = plan.min().min(0);
    let values = u64::try_from(plan.max() - lo + 1).ok()?;
    let pays = elements as u64 >= HISTOGRAM_ELEMENTS_PER_ENTRY * values
        || plan.given().len() > HISTOGRAM_THRESHOLDS;
    (plan.max() == i128::from(limit)
        && values <= HISTOGRAM_LIMIT
        && pays
        // no count can wrap
        && elements < u32::MAX as usize)
        .then_some(lo)
}

pub(super) fn add_into(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    a
}

/// Every element's bucket found by binary search, its count from the table or by factoring.
pub(super) fn per_element(
    array: &Array,
    plan: &Plan,
    table: Option<&DivisorTable>,
    observer: &dyn Observer,
) -> Vec<u64> {
    array.par_blocks(
        BLOCK,
        FAST_TASKS_PER_THREAD * rayon::current_num_threads(),
        || vec![0u64; plan.distinct().len()],
        |sums, _, xs| {
            if !proceed(observer, xs) {
                return;
            }
            for &x in xs {
                if let Some(k) = plan.bucket(x) {
                    let c = match table {
                        Some(t) => t.count(x),
                        None => divisors::count(x),
                    };
                    sums[k] += u64::from(c);
                }
            }
        },
        add_into,
    )
}

/// Every element counted per value (one increment each: no search, no lookup) over the values
/// `lo..=max threshold`, while another thread builds the divisor table; one walk over the
/// values then gives the sum up to each of them, and each threshold's answer is one lookup. No
/// sort of the thresholds at all. Elements below `lo` (negative: c = 1) are below every
/// threshold and only counted; elements above every threshold are skipped.
pub(super) fn histogram(array: &Array, plan: &Plan, lo: i128, observer: &dyn Observer) -> Vec<u64> {
    let table = PrefixTable::count(array, lo, plan.max(), observer);
    match &table.at_most {
        AtMost::Narrow(at_most) => look_up(plan, lo, at_most),
        AtMost::Wide(at_most) => look_up(plan, lo, at_most),
    }
}

/// [`PrefixTable::count`]'s counting on the array read in place at its own width, when it is
/// stored contiguous, native-endian and aligned: one increment per element and no branch (the
/// elements below `lo` go to a slot of their own, those above `top` to another that is
/// dropped). `None` for other arrays, which are decoded instead.
pub(super) fn histogram_in_place(
    array: &Array,
    lo: i128,
    top: i128,
    tasks: usize,
    observer: &dyn Observer,
) -> Option<(Vec<u32>, u64)> {
    in_place!(array, |values| histogram_of(
        values, lo, top, tasks, observer
    ))
}

pub(super) fn histogram_of<T: Element>(
    values: &[T],
    lo: i128,
    top: i128,
    tasks: usize,
    observer: &dyn Observer,
) -> Option<(Vec<u32>, u64)> {
    use rayon::prelude::*;
    // `top` is within the divisor table and `top - lo` within HISTOGRAM_LIMIT, so both ends,
    // one past each included, are i64s; `u64`s above i64::MAX saturate to it, above `top`
    let below = i64::try_from(lo - 1).ok()?;
    let above = i64::try_from(top + 1).ok()?;
    let slots = usize::try_from(above - below + 1).ok()?;
    let per_task = values.len().div_ceil(tasks.max(1)).max(1);
    // `move`: the task holds its own `below` and `above`, which then stay in registers; read
    // through references, both were loaded and compared again for every element
    let mut counts = values
        .par_chunks(per_task)
        .map(move |part| {
            // slot 0: below lo; slot slots - 1: above top
            let mut counts = vec![0u32; slots];
            for xs in part.chunks(BLOCK) {
                if observer.cancelled() {
                    break;
                }
                observer.advance(xs.len() as u64);
                for &x in xs {
                    counts[(x.saturating_i64().clamp(below, above) - below) as usize] += 1;
                }
            }
            counts
        })
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            a
        })
        .unwrap_or_else(|| vec![0u32; slots]);
    counts.pop();
    let under = counts.remove(0);
    Some((counts, u64::from(under)))
}

/// The sum of c up to each value, from the histogram `counts` (of the values from some `lo`):
/// `below` elements before the first value, c = 1 for the first `negatives` values (those below
/// 0) and `from_0` for the rest. In place as u32s when the whole sum is at most `narrow_up_to`
/// (at most `u32::MAX`; lower only in tests). Slices, not a chained iterator: the compiler
/// turns slices into tight loops, and a chain was slower.
pub(super) fn running_sums(
    mut counts: Vec<u32>,
    below: u64,
    negatives: usize,
    from_0: &[u16],
    narrow_up_to: u64,
) -> AtMost {
    debug_assert!(narrow_up_to <= u32::MAX.into());
    let total = below
        + counts[..negatives]
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>()
        + counts[negatives..]
            .iter()
            .zip(from_0)
            .map(|(&n, &c)| u64::from(n) * u64::from(c))
            .sum::<u64>();
    if total <= narrow_up_to {
        let mut sum = below as u32;
        let (below_0, rest) = counts.split_at_mut(negatives);
        for n in below_0 {
            sum += *n;
            *n = sum;
        }
        for (n, &c) in rest.iter_mut().zip(from_0) {
            sum += *n * u32::from(c);
            *n = sum;
        }
        debug_assert_eq!(u64::from(sum), total);
        AtMost::Narrow(counts)
    } else {
        let weights = std::iter::repeat_n(1, negatives).chain(from_0.iter().map(|&c| c.into()));
        let mut sum = below;
        AtMost::Wide(
            counts
                .iter()
                .zip(weights)
                .map(|(&n, c): (&u32, u64)| {
                    sum += u64::from(n) * c;
                    sum
                })
                .collect(),
        )
    }
}
