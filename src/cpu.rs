//! The rayon backend: exact for every value, and the reference the GPU is compared against.

use crate::divisors::{self, DivisorTable};
use crate::error::{Error, Result};
use crate::input::{Array, Element, Integers};
use crate::query::{FewBuckets, Plan};
use crate::{Algorithm, Observer};

/// `$body` with `$values` bound to the elements of `$array` read in place at their own width
/// ([`Array::native`] at the array's type), or `None` when the array is not stored so
/// (strided, misaligned, another byte order, or decoded values).
macro_rules! in_place {
    ($array:expr, |$values:ident| $body:expr) => {{
        let array: &Array = $array;
        let dtype = array.dtype();
        match (dtype.signed, dtype.width) {
            (true, 1) => array.native::<i8>().and_then(|$values| $body),
            (true, 2) => array.native::<i16>().and_then(|$values| $body),
            (true, 4) => array.native::<i32>().and_then(|$values| $body),
            (true, 8) => array.native::<i64>().and_then(|$values| $body),
            (false, 1) => array.native::<u8>().and_then(|$values| $body),
            (false, 2) => array.native::<u16>().and_then(|$values| $body),
            (false, 4) => array.native::<u32>().and_then(|$values| $body),
            (false, 8) => array.native::<u64>().and_then(|$values| $body),
            _ => None,
        }
    }};
}

/// Elements decoded and counted per rayon task. Small enough that the naive path, whose work per
/// element grows like sqrt(x), balances across threads by work stealing.
const BLOCK: usize = 8192;

/// Naive's work per element grows like sqrt(x): many small tasks keep both threads busy.
const NAIVE_TASKS_PER_THREAD: usize = 64;
/// Fast's accumulator is one u64 per distinct threshold (8 MB for a million): few tasks.
const FAST_TASKS_PER_THREAD: usize = 4;

/// The most CPU threads a pool may have. Beyond the cores, threads add nothing to this
/// CPU-bound work, and starting them is not free: on 2 cores 1,000 threads cost 0.7 s, 5,000
/// took 15 s and 100,000 never finished. 1,024 is above the hardware threads of today's largest
/// machines (2 x 192 cores with SMT: 768), and the same limit everywhere, so that a script that
/// runs on one machine runs on another.
pub const MAX_THREADS: usize = 1024;

/// The threads `threads` asks for: 0 is one per core.
pub fn thread_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// A rayon pool whose threads have exited when it is dropped. rayon's `ThreadPool` only asks
/// its threads to stop and returns: they finish in the background, freeing their
/// thread-local state, and a process that exits meanwhile runs its libraries' destructors at
/// the same time. On llvmpipe-GL (whose LLVM and Mesa state lives on the thread that ran the
/// GPU work) that race crashed in glibc's `free` about one run in 150, after correct output.
/// Dropping a `Pool` drops the rayon pool, then joins every thread it started: exit runs with
/// none of them left.
pub struct Pool {
    pool: Option<rayon::ThreadPool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// Runs `op` in the pool, as [`rayon::ThreadPool::install`].
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.pool
            .as_ref()
            .expect("a pool until dropped")
            .install(op)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // the threads leave their loop once the pool is gone, and only then
        drop(self.pool.take());
        for thread in self.threads.drain(..) {
            // a worker that panicked has exited too, which is all that is waited for here
            thread.join().ok();
        }
    }
}

/// A pool of `threads` threads (0: one per core), named for profilers. With `with_this_thread`
/// the calling thread is one of them, and one thread fewer is started. More than
/// [`MAX_THREADS`] is an error. Never drop it on one of its own threads (it joins them).
pub fn pool(threads: usize, with_this_thread: bool) -> Result<Pool> {
    let threads = thread_count(threads);
    if threads > MAX_THREADS {
        return Err(Error::Threads {
            threads,
            message: format!("at most {MAX_THREADS} are allowed"),
        });
    }
    let mut handles = Vec::with_capacity(threads);
    let builder = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("divgpu-cpu-{i}"))
        .spawn_handler(|thread| {
            let mut spawn = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                spawn = spawn.name(name.to_string());
            }
            if let Some(size) = thread.stack_size() {
                spawn = spawn.stack_size(size);
            }
            handles.push(spawn.spawn(|| thread.run())?);
            Ok(())
        });
    let builder = if with_this_thread {
        builder.use_current_thread()
    } else {
        builder
    };
    match builder.build() {
        Ok(pool) => Ok(Pool {
            pool: Some(pool),
            threads: handles,
        }),
        Err(e) => {
            // rayon has told the threads it started to stop
            drop(Pool {
                pool: None,
                threads: handles,
            });
            Err(Error::Threads {
                threads,
                message: e.to_string(),
            })
        }
    }
}

/// How much of a mapped file [`fast`] maps ahead per entry of the divisor table it builds
/// meanwhile: here, a cached file's first 8 MiB took 0.9-1.1 ms to map (64 MiB: 6.4-6.9 ms), and
/// the post's table of 500,000 entries about 1 ms on 2 threads, so this keeps the mapping
/// within the table's time, and the thread that maps it free for the table's last parts.
const POPULATE_BYTES_PER_ENTRY: usize = 16;

/// Answers every threshold of `plan` over `array` on `threads` threads (0: one per core): in
/// the current rayon pool when it is one of exactly that many threads, else in a local pool, so
/// divgpu never takes over the global pool of a program that embeds it. `observer` hears of
/// every block done and can stop the run between blocks.
pub fn run(
    array: &Array,
    plan: &Plan,
    algorithm: Algorithm,
    threads: usize,
    observer: &dyn Observer,
) -> Result<Vec<u64>> {
    let passes = match algorithm {
        Algorithm::Naive => plan.given().len(),
        Algorithm::Fast => 1,
    };
    observer.start((array.len() * passes) as u64);
    let work = || {
        crate::guard::point("cpu-pass");
        match algorithm {
            Algorithm::Naive => naive(array, plan, observer),
            Algorithm::Fast => fast(array, plan, observer),
        }
    };
    let in_pool = rayon::current_thread_index().is_some()
        && rayon::current_num_threads() == thread_count(threads);
    let results = if in_pool {
        work()
    } else {
        pool(threads, false)?.install(work)
    };
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(results)
}

/// Whether to do a block: false once the run is cancelled (the remaining blocks are skipped).
fn proceed(observer: &dyn Observer, block: &[i128]) -> bool {
    if observer.cancelled() {
        return false;
    }
    observer.advance(block.len() as u64);
    true
}

/// The post's algorithm: for every threshold, every element `x <= n` runs the seed kernel.
/// Cancelled, it stops within [`NAIVE_CHECK`] elements per thread, and returns fewer sums than
/// thresholds (which [`run`] never returns: it sees the cancellation).
fn naive(array: &Array, plan: &Plan, observer: &dyn Observer) -> Vec<u64> {
    plan.given()
        .iter()
        .map_while(|n| naive_pass(array, n, observer))
        .collect()
}

/// Elements of the naive kernel between two looks at [`Observer::cancelled`]: the kernel's
/// work grows like sqrt(x), up to 2^16 trial divisions for a value below 2^32 (larger ones are
/// factored), so 256 of the slowest take some 10 ms on one core, where a block of [`BLOCK`]
/// took 0.3 s. One atomic load per 256 elements costs nothing measurable.
const NAIVE_CHECK: usize = 256;

/// One threshold's sum, or `None` once cancelled. Not [`Array::par_blocks`]: that decodes
/// every block before its function can look at the observer, and decoding what is left of
/// a large array costs seconds per threshold (134M elements, 13 thresholds: Ctrl-C took 1.1 to
/// 2.6 s, up to 11 s on a loaded machine); `try_fold` stops every thread at its next block.
fn naive_pass(array: &Array, n: i128, observer: &dyn Observer) -> Option<u64> {
    use rayon::prelude::*;
    let blocks = array.len().div_ceil(BLOCK);
    let tasks = NAIVE_TASKS_PER_THREAD * rayon::current_num_threads();
    (0..blocks)
        .into_par_iter()
        .with_min_len(blocks.div_ceil(tasks).max(1))
        .try_fold(
            || (0u64, Vec::with_capacity(BLOCK)),
            |(mut sum, mut scratch), b| {
                if observer.cancelled() {
                    return None;
                }
                let start = b * BLOCK;
                scratch.clear();
                array.decode_into(start..(start + BLOCK).min(array.len()), &mut scratch);
                for xs in scratch.chunks(NAIVE_CHECK) {
                    if observer.cancelled() {
                        return None;
                    }
                    sum += xs
                        .iter()
                        .filter(|&&x| x <= n)
                        .map(|&x| u64::from(divisors::seed_kernel(x)))
                        .sum::<u64>();
                }
                observer.advance(scratch.len() as u64);
                Some((sum, scratch))
            },
        )
        .map(|partial| partial.map(|(sum, _)| sum))
        .try_reduce(|| 0, |a, b| Some(a + b))
}

/// c(x) once per element, into the bucket of its threshold, then one prefix sum.
fn fast(array: &Array, plan: &Plan, observer: &dyn Observer) -> Vec<u64> {
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
fn few_buckets_in_place(
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
fn few_buckets<T: Element>(
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
const SLOTS: usize = FewBuckets::MAX + 1;

/// For each slot, the sum of the counts of the elements in it, on the pool's threads: `entry`
/// gives an element's slot (below [`SLOTS`]) and its count.
fn slot_sums<T: Element>(
    values: &[T],
    observer: &dyn Observer,
    entry: impl Fn(T) -> (usize, u64) + Copy + Send + Sync,
) -> [u64; SLOTS] {
    use rayon::prelude::*;
    // Consecutive elements add into different copies of the sums, so that a run of elements in
    // one slot (the post's: half of them above every threshold) is not a chain of additions to
    // one place in memory, each waiting for the last. 8 took 1.14 ms for the post's 1M
    // elements on one thread, 4 took 1.30 ms, 16 took 1.26 ms and 1 took 1.59 ms (best of 30).
    const COPIES: usize = 8;
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
const PACKED_COUNT_BITS: u32 = 12;

/// The post's shape at full speed: few enough distinct thresholds for [`FewBuckets`], none
/// below 0, the largest the table's top, and the array stored so that it is read in place. Then
/// one table lookup gives each element both its count and its bucket (see [`pack`]): no search
/// and no branch per element. Negatives clamp to entry 0, whose count is theirs and whose bucket
/// (below every threshold) too; elements above the top clamp to the entry past it, which adds 0
/// to the dropped slot, and `u64`s above `i64::MAX` saturate to it. `Err(table)`, untouched,
/// when the plan or the array does not fit that shape.
fn packed(
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
fn pack(table: DivisorTable, few: &FewBuckets) -> Vec<u16> {
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
const HISTOGRAM_LIMIT: u64 = 1 << 22;
/// A histogram (allocated, zeroed, merged and walked per task) pays off only over many more
/// elements than entries: measured on the post's values with an earlier version, 1M elements
/// over 500K entries ran faster per element (14 ms against 20 ms on 2 cores) and 25M faster as a
/// histogram (0.20 s against 0.24 s); this version, made to count them, took 12–21 ms for the
/// 1M against 9.4–11.2 ms for the few-thresholds pass.
const HISTOGRAM_ELEMENTS_PER_ENTRY: u64 = 16;
/// With this many thresholds a per-element search costs cache misses of its own, and the
/// histogram, which never sorts them, wins whatever the array's length.
const HISTOGRAM_THRESHOLDS: usize = 4096;

/// Where [`histogram`] starts counting values, when it is the way to answer `plan`: the table
/// (up to `limit`) must reach the largest threshold, and the values from the smallest
/// threshold (or 0) to there must be few enough to count one by one.
fn histogram_start(elements: usize, plan: &Plan, limit: u64) -> Option<i128> {
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

fn add_into(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    a
}

/// Every element's bucket found by binary search, its count from the table or by factoring.
fn per_element(
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
fn histogram(array: &Array, plan: &Plan, lo: i128, observer: &dyn Observer) -> Vec<u64> {
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
fn histogram_in_place(
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

fn histogram_of<T: Element>(
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
    // through references, both were loaded and compared again for every element (0.28 s
    // against 0.25 s on the 1 GB int32 file)
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
/// (at most `u32::MAX`; lower only in tests). Slices, not a chained iterator, which the
/// compiler turns into tight loops (a chain took 1.7 ms over the post's 10^6 values).
fn running_sums(
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

/// For every value `v` of `lo..=top`, the answer to threshold `v`: the sum of c(x) over the
/// elements `x <= v`. Built by [`histogram`] for one batch, and kept by a
/// [`crate::session::Session`] for all of them when the array's values span few enough values
/// ([`PrefixTable::MAX_VALUES`]): then every later threshold is one look-up.
#[derive(Debug)]
pub struct PrefixTable {
    lo: i128,
    top: i128,
    /// Elements below `lo`, counted (their c is 1: they are all below 0).
    below: u64,
    at_most: AtMost,
}

#[derive(Debug)]
enum AtMost {
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
    fn count(array: &Array, lo: i128, top: i128, observer: &dyn Observer) -> PrefixTable {
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
fn value_range(array: &Array, observer: &dyn Observer) -> Option<(i128, i128)> {
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
fn look_up<T: Copy + Into<u64> + Sync>(plan: &Plan, lo: i128, at_most: &[T]) -> Vec<u64> {
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
fn table_limit(elements: usize, plan: &Plan) -> Option<u64> {
    let limit = u64::try_from(plan.max()).ok()?.min(DivisorTable::MAX_LIMIT);
    (limit >= 2 && limit <= DivisorTable::ENTRIES_PER_ELEMENT * elements as u64).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::DType;
    use crate::workload::SplitMix64;
    use crate::Quiet;

    /// The branch-free path against the definition, on the values it clamps and the
    /// thresholds it pads: negatives, 0, 1, i64's extremes, up to 15 distinct thresholds.
    #[test]
    fn few_buckets_match_the_definition() {
        let mut rng = SplitMix64::new(15);
        let mut values: Vec<i64> = (0..20_000).map(|_| rng.below(6000) as i64 - 1000).collect();
        values.extend([i64::MIN, i64::MAX, 0, 1, 2, -1]);
        let array = Array::from_i64(values.clone());
        for count in [1, 2, 7, 15] {
            let mut thresholds: Vec<i128> =
                (0..count).map(|_| rng.below(5000) as i128 - 5).collect();
            thresholds.push(thresholds[0]);
            thresholds[0] = thresholds[0].max(2); // a table needs a top of at least 2
            let plan = Plan::new(thresholds.clone());
            let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
            let few = few_buckets(&values, &plan, &table, &Quiet).expect("this shape");
            let expected: Vec<u64> = plan
                .distinct()
                .iter()
                .enumerate()
                .map(|(k, &t)| {
                    let below = k.checked_sub(1).map(|j| plan.distinct()[j]);
                    values
                        .iter()
                        .map(|&x| i128::from(x))
                        .filter(|&x| x <= t && below.is_none_or(|b| x > b))
                        .map(|x| u64::from(divisors::count(x)))
                        .sum()
                })
                .collect();
            assert_eq!(few, expected, "thresholds {thresholds:?}");
        }
        // 16 distinct thresholds do not fit
        let plan = Plan::new((0..16).map(|t| t * 100 + 2).collect::<Vec<i128>>());
        let table = DivisorTable::new(table_limit(array.len(), &plan).unwrap());
        assert!(few_buckets(&values, &plan, &table, &Quiet).is_none());
    }

    /// Each threshold's sum by the definition, from `divisors::count` on the decoded values.
    fn by_definition(values: &[i128], plan: &Plan) -> Vec<u64> {
        plan.given()
            .iter()
            .map(|t| {
                let at_most = values.iter().filter(|&&x| x <= t);
                at_most.map(|&x| u64::from(divisors::count(x))).sum()
            })
            .collect()
    }

    /// [`running_sums`] in u32s and in u64s against sums one by one: values below 0 (c = 1),
    /// elements before the first value, and counts so large that only the u64s hold the sums.
    #[test]
    fn running_sums_narrow_and_wide_match_a_plain_sum() {
        let mut rng = SplitMix64::new(19);
        let from_0: Vec<u16> = (0..3_000).map(|_| rng.below(500) as u16).collect();
        for (negatives, big) in [(0, false), (7, false), (0, true), (7, true)] {
            let counts: Vec<u32> = (0..negatives + 2_000)
                .map(|_| rng.below(if big { 1 << 31 } else { 100 }) as u32)
                .collect();
            let below = rng.below(1_000);
            let mut sum = below;
            let expected: Vec<u64> = (counts.iter().enumerate())
                .map(|(i, &n)| {
                    let c = if i < negatives {
                        1
                    } else {
                        from_0[i - negatives]
                    };
                    sum += u64::from(n) * u64::from(c);
                    sum
                })
                .collect();
            let got = |limit| match running_sums(counts.clone(), below, negatives, &from_0, limit) {
                AtMost::Narrow(sums) => (true, sums.into_iter().map(u64::from).collect()),
                AtMost::Wide(sums) => (false, sums),
            };
            assert_eq!(
                got(u32::MAX.into()),
                (!big, expected.clone()),
                "{negatives}"
            );
            assert_eq!(got(0), (false, expected), "{negatives}");
        }
    }

    /// Every count of the largest table fits a packed entry's count bits, with room to spare:
    /// the largest is d(14,414,400) = 504.
    #[test]
    fn every_table_count_fits_a_packed_entry() {
        let table = DivisorTable::new(DivisorTable::MAX_LIMIT);
        let (at, &most) = (table.counts().iter().enumerate())
            .max_by_key(|&(_, c)| c)
            .unwrap();
        assert_eq!((at, most), (14_414_400, 504));
        assert!(most < 1 << PACKED_COUNT_BITS);
    }

    /// The packed table over several of its building chunks (2^16 values each), thresholds on
    /// both sides of their edges, on 1 to 3 threads, with elements on every threshold and
    /// beside it, below 0 and past the top.
    #[test]
    fn packed_entries_match_the_definition_across_chunks() {
        let mut rng = SplitMix64::new(18);
        let top = 3 << 16;
        let thresholds: Vec<i128> = vec![top, 0, 1, 65_535, 65_536, 65_537, 131_072, 100_000];
        let mut values: Vec<i128> = (0..40_000)
            .map(|_| rng.below(top as u64 + 2_000) as i128 - 1_000)
            .collect();
        values.extend(thresholds.iter().flat_map(|&t| [t - 1, t, t + 1]));
        values.extend([i128::from(i64::MIN), i128::from(i64::MAX)]);
        let array = Array::from_i64(values.iter().map(|&v| v as i64).collect());
        let plan = Plan::new(thresholds);
        for threads in [1, 2, 3] {
            let got = pool(threads, false).unwrap().install(|| {
                let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
                packed(&array, &plan, table, &Quiet)
            });
            let Ok(got) = got else { panic!("not packed") };
            assert_eq!(
                plan.answer(&got),
                by_definition(&values, &plan),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn every_dtype_is_read_in_place_by_the_few_buckets_passes_and_the_histogram() {
        let mut rng = SplitMix64::new(16);
        for (signed, width) in [1, 2, 4, 8]
            .into_iter()
            .flat_map(|w| [(true, w), (false, w)])
        {
            let dtype = DType::native(signed, width);
            let bits = 8 * width as u32;
            let (min, max) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            // mostly within the table, then the type's extremes and the values around 0
            let mut values: Vec<i128> = (0..5_000)
                .map(|_| (rng.below(3_000) as i128 - 200).clamp(min, max))
                .collect();
            values.extend([min, max, 0, 1, 2, max - 1].map(|v| v.clamp(min, max)));
            let mut bytes = Vec::new();
            for &v in &values {
                // the low `width` bytes, in the machine's order
                let le = (v as u64).to_le_bytes();
                let mut element = le[..width].to_vec();
                if cfg!(target_endian = "big") {
                    element.reverse();
                }
                bytes.extend_from_slice(&element);
            }
            let array = Array::from_raw_bytes(bytes.clone(), dtype).unwrap();
            for count in [1, 3, 15] {
                let mut thresholds: Vec<i128> =
                    (0..count).map(|_| rng.below(2_900) as i128 - 50).collect();
                thresholds[0] = thresholds.iter().copied().max().unwrap().max(2);
                let plan = Plan::new(thresholds.clone());
                let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
                let got = few_buckets_in_place(&array, &plan, &table, &Quiet)
                    .unwrap_or_else(|| panic!("{dtype}: not read in place"));
                assert_eq!(
                    plan.answer(&got),
                    by_definition(&values, &plan),
                    "{dtype} thresholds {thresholds:?}"
                );
                assert_eq!(fast(&array, &plan, &Quiet), by_definition(&values, &plan));
                // none below 0 (0 among them, where count 1 is also every negative's): packed
                let mut at_least_0: Vec<i128> = thresholds.iter().map(|t| t.abs()).collect();
                if count > 1 {
                    at_least_0[count - 1] = 0;
                }
                let plan = Plan::new(at_least_0);
                let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
                let Ok(got) = packed(&array, &plan, table, &Quiet) else {
                    panic!("{dtype}: not packed")
                };
                assert_eq!(plan.answer(&got), by_definition(&values, &plan), "{dtype}");
                // one below 0: the search instead
                let mut below_0 = thresholds.clone();
                below_0.push(-1);
                let plan = Plan::new(below_0);
                let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
                assert!(packed(&array, &plan, table, &Quiet).is_err(), "{dtype}");
            }
            // 12 times longer: many elements per value, so `fast` counts a histogram, in place
            let many: Vec<i128> = values
                .iter()
                .cycle()
                .take(12 * values.len())
                .copied()
                .collect();
            let array = Array::from_raw_bytes(bytes.repeat(12), dtype).unwrap();
            let plan = Plan::new(vec![2_900i128, -3, 150, 1, 2_000]);
            let lo = histogram_start(array.len(), &plan, 2_900).expect("a histogram");
            assert!(
                histogram_in_place(&array, lo, 2_900, 2, &Quiet).is_some(),
                "{dtype}"
            );
            assert_eq!(
                fast(&array, &plan, &Quiet),
                by_definition(&many, &plan),
                "{dtype}"
            );
            // and the session's table over every value of the array
            let table = PrefixTable::of_array(&array, &Quiet).unwrap();
            if let Some(table) = table {
                for t in [min, -1, 0, 1, 77, 2_900, max] {
                    let expected = by_definition(&many, &Plan::new(vec![t]))[0];
                    assert_eq!(table.at_most(t), Some(expected), "{dtype} at {t}");
                }
            }
        }
        // a byte order other than the machine's is decoded instead
        let swapped = DType {
            big_endian: !cfg!(target_endian = "big"),
            ..DType::native(true, 4)
        };
        let array = Array::from_raw_bytes(vec![0; 40], swapped).unwrap();
        let plan = Plan::new(vec![5i128]);
        let table = DivisorTable::new(table_limit(array.len(), &plan).unwrap());
        assert!(few_buckets_in_place(&array, &plan, &table, &Quiet).is_none());
        assert_eq!(fast(&array, &plan, &Quiet), vec![10]);
    }
}
