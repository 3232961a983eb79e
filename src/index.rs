//! The value index: an array worked once, then answered for as long as it lives.
//!
//! Every threshold's answer depends only on the array's distinct values and how often each
//! occurs, so a session keeps, after its first `fast` batch, one of two shapes of the same
//! thing, the running sum of `c(v) * count(v)` over the values in order:
//!
//! - **dense** ([`PrefixTable`]): one sum per value of the array's whole range, looked up by
//!   subtraction. Built by one counting pass and the divisor table, when the values span at most
//!   [`PrefixTable::MAX_VALUES`] values up to [`DivisorTable::MAX_LIMIT`] (the post's shape).
//! - **sorted** ([`Sorted`]): the distinct values in order, each as a key at the array's own
//!   width (4 bytes for 8- to 32-bit dtypes, 8 for 64-bit ones), beside a `u64` running sum:
//!   at most 16 bytes per distinct value, and a binary search per threshold. Built by a
//!   parallel sort of the elements, one walk that drops repeats and counts them, and `c` for
//!   each distinct value once, on the CPU's threads or on the GPU ([`Counter`]).
//!
//! Either answers a batch of `Q` thresholds in `O(Q log D)` without touching the array again,
//! and without a lock: the index is immutable once built.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cpu::PrefixTable;
use crate::divisors::{self, DivisorTable};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::input::Array;
use crate::Observer;

/// Who computes `c` for the distinct values of a sorted index.
#[derive(Clone, Copy)]
pub enum Counter<'a> {
    /// The current rayon pool's threads.
    Cpu,
    /// The GPU's `fast` pipeline ([`GpuContext::divisor_counts`]).
    Gpu(&'a GpuContext),
}

/// Which shapes an index may take, and how much memory it may keep.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most bytes the index may keep (its keys and sums, or the dense table's sums); `None`
    /// for no limit. The build's own transient copy of the elements is not counted.
    pub memory: Option<u64>,
    /// Whether the dense shape may be chosen (the CPU's; a GPU session computes `c` on the GPU
    /// for the values it has, which is the sorted shape).
    pub dense: bool,
}

/// Why a session has no index: every batch is then a pass over the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The index would take `needed` bytes, more than the `limit` the caller allowed.
    OverMemory { needed: u64, limit: u64 },
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::OverMemory { needed, limit } => write!(
                f,
                "the index would take {needed} bytes, above the index memory limit of {limit}: \
                 every batch is a pass over the array"
            ),
        }
    }
}

/// A built index: see the module's documentation.
#[derive(Debug)]
pub struct ValueIndex {
    shape: Shape,
    elements: usize,
    build_time: Duration,
}

#[derive(Debug)]
enum Shape {
    Dense(PrefixTable),
    Sorted32(Sorted<u32>),
    Sorted64(Sorted<u64>),
    /// [`DType::I128`] arrays (text with both negatives and values above `i64::MAX`): 65-bit
    /// keys, which no narrower type holds.
    Sorted128(Sorted<u128>),
}

/// The distinct values as order-preserving keys (`value = key + offset`), ascending, and
/// `sums[i]`: the sum of `c(x)` over the elements `x <= value of keys[i]`.
#[derive(Debug)]
pub struct Sorted<K> {
    offset: i128,
    keys: Vec<K>,
    sums: Vec<u64>,
}

/// A key type: an unsigned integer wide enough for `value - offset` of every element.
pub trait Key: Copy + Ord + Send + Sync + std::fmt::Debug + 'static {
    const MAX: u128;
    fn from_u128(k: u128) -> Self;
    fn to_u128(self) -> u128;
}

macro_rules! key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            const MAX: u128 = <$t>::MAX as u128;
            #[inline]
            fn from_u128(k: u128) -> Self {
                k as $t
            }
            #[inline]
            fn to_u128(self) -> u128 {
                self as u128
            }
        }
    )*};
}
key!(u32, u64, u128);

impl<K: Key> Sorted<K> {
    /// How many distinct values are `<= t`.
    #[inline]
    fn rank(&self, t: i128) -> usize {
        let Ok(k) = u128::try_from(t - self.offset) else {
            return 0;
        };
        if k >= K::MAX {
            return self.keys.len();
        }
        let k = K::from_u128(k);
        self.keys.partition_point(|&x| x <= k)
    }

    fn at_most(&self, t: i128) -> u64 {
        match self.rank(t) {
            0 => 0,
            r => self.sums[r - 1],
        }
    }

    fn bytes(&self) -> u64 {
        (self.keys.len() * (std::mem::size_of::<K>() + 8)) as u64
    }

    fn value(&self, i: usize) -> i128 {
        self.keys[i].to_u128() as i128 + self.offset
    }
}

/// Distinct values counted per task when computing `c`: enough for work stealing to even out
/// values whose factoring costs differ by 1,000 times, few enough that the observer hears
/// often.
const COUNT_BLOCK: usize = 4096;

/// Distinct values per GPU call: 2 MiB of keys and as much of thresholds and sums, far below
/// every adapter's binding limit (128 MiB on llvmpipe).
const GPU_BLOCK: usize = 1 << 18;

impl ValueIndex {
    /// The index of `array` within `limits`, on the current rayon pool's threads, with `c` from
    /// `counter`. `Ok(Err(why))` when it does not fit; `Err(Cancelled)` when `observer` stopped
    /// it.
    pub fn build(
        array: &Array,
        counter: Counter<'_>,
        limits: Limits,
        observer: &dyn Observer,
    ) -> Result<std::result::Result<ValueIndex, Unavailable>> {
        let start = Instant::now();
        let fits = |needed: u64| match limits.memory {
            Some(limit) if needed > limit => Err(Unavailable::OverMemory { needed, limit }),
            _ => Ok(()),
        };
        if limits.dense {
            if let Some(table) = PrefixTable::of_array(array, observer)? {
                let needed = table.bytes();
                if fits(needed).is_ok() {
                    return Ok(Ok(ValueIndex {
                        shape: Shape::Dense(table),
                        elements: array.len(),
                        build_time: start.elapsed(),
                    }));
                }
            }
        }
        let dtype = array.dtype();
        let shape = match (dtype.width, dtype.signed) {
            (16, _) => sorted::<u128>(array, i128::from(i64::MIN), counter, &fits, observer)?
                .map(Shape::Sorted128),
            (8, signed) => sorted::<u64>(array, key_offset(signed, 64), counter, &fits, observer)?
                .map(Shape::Sorted64),
            (_, signed) => sorted::<u32>(array, key_offset(signed, 32), counter, &fits, observer)?
                .map(Shape::Sorted32),
        };
        Ok(shape.map(|shape| ValueIndex {
            shape,
            elements: array.len(),
            build_time: start.elapsed(),
        }))
    }

    /// The sum of `c(x)` over the elements `x <= t`, for any `t`.
    #[inline]
    pub fn at_most(&self, t: i128) -> u64 {
        match &self.shape {
            Shape::Dense(table) => table
                .at_most(t)
                .expect("a dense index has no element below its range"),
            Shape::Sorted32(s) => s.at_most(t),
            Shape::Sorted64(s) => s.at_most(t),
            Shape::Sorted128(s) => s.at_most(t),
        }
    }

    /// What the index is, for `stats`.
    pub fn stats(&self) -> IndexStats {
        let (kind, distinct, bytes) = match &self.shape {
            Shape::Dense(t) => ("dense", None, t.bytes()),
            Shape::Sorted32(s) => ("sorted", Some(s.keys.len()), s.bytes()),
            Shape::Sorted64(s) => ("sorted", Some(s.keys.len()), s.bytes()),
            Shape::Sorted128(s) => ("sorted", Some(s.keys.len()), s.bytes()),
        };
        IndexStats {
            kind,
            elements: self.elements,
            distinct,
            bytes,
            build_time: self.build_time,
        }
    }

    /// The distinct values and their running sums, ascending (a sorted index only): for tests
    /// and for saving.
    pub fn entries(&self) -> Option<Vec<(i128, u64)>> {
        fn of<K: Key>(s: &Sorted<K>) -> Vec<(i128, u64)> {
            (0..s.keys.len()).map(|i| (s.value(i), s.sums[i])).collect()
        }
        match &self.shape {
            Shape::Dense(_) => None,
            Shape::Sorted32(s) => Some(of(s)),
            Shape::Sorted64(s) => Some(of(s)),
            Shape::Sorted128(s) => Some(of(s)),
        }
    }
}

/// A built index described: its shape, size and cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexStats {
    /// `"dense"` or `"sorted"`.
    pub kind: &'static str,
    /// Elements of the array it answers for.
    pub elements: usize,
    /// Distinct values (a sorted index).
    pub distinct: Option<usize>,
    /// Bytes it keeps.
    pub bytes: u64,
    pub build_time: Duration,
}

/// The key offset of a `bits`-wide dtype: keys are `value - offset`, so the smallest value of a
/// signed type is key 0.
fn key_offset(signed: bool, bits: u32) -> i128 {
    if signed {
        -(1i128 << (bits - 1))
    } else {
        0
    }
}

/// Every element's key, in no particular order: read in place where the array is stored at
/// its own width, decoded a block at a time otherwise.
fn keys_of<K: Key>(array: &Array, offset: i128) -> Vec<K> {
    macro_rules! in_place {
        ($($t:ty),*) => {$(
            if let Some(values) = array.native::<$t>() {
                return values
                    .par_iter()
                    .map(|&x| K::from_u128((x as i128 - offset) as u128))
                    .collect();
            }
        )*};
    }
    in_place!(i8, i16, i32, i64, u8, u16, u32, u64);
    let blocks = array.par_blocks(
        1 << 16,
        4 * rayon::current_num_threads(),
        Vec::new,
        |keys: &mut Vec<K>, _, xs| {
            keys.extend(xs.iter().map(|&x| K::from_u128((x - offset) as u128)));
        },
        |mut a, mut b| {
            a.append(&mut b);
            a
        },
    );
    debug_assert_eq!(blocks.len(), array.len());
    blocks
}

/// The sorted index of `array` (see [`Sorted`]), or why it does not fit.
fn sorted<K: Key>(
    array: &Array,
    offset: i128,
    counter: Counter<'_>,
    fits: &dyn Fn(u64) -> std::result::Result<(), Unavailable>,
    observer: &dyn Observer,
) -> Result<std::result::Result<Sorted<K>, Unavailable>> {
    let mut keys: Vec<K> = keys_of(array, offset);
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    keys.par_sort_unstable();
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    // repeats dropped in place, each distinct key's count beside it
    let mut counts: Vec<u64> = Vec::new();
    let mut distinct = 0;
    for i in 0..keys.len() {
        if distinct > 0 && keys[distinct - 1] == keys[i] {
            *counts.last_mut().expect("one count per distinct key") += 1;
        } else {
            keys[distinct] = keys[i];
            distinct += 1;
            counts.push(1);
        }
    }
    keys.truncate(distinct);
    keys.shrink_to_fit();
    let needed = (distinct * (std::mem::size_of::<K>() + 8)) as u64;
    if let Err(why) = fits(needed) {
        return Ok(Err(why));
    }
    let value = |k: K| k.to_u128() as i128 + offset;
    // values <= 1 first (c = 1), then those >= 2, ascending
    let first = keys.partition_point(|&k| value(k) < 2);
    observer.start((distinct - first) as u64);
    let large: Vec<u64> = keys[first..].iter().map(|&k| value(k) as u64).collect();
    let c = match counter {
        Counter::Cpu => cpu_counts(&large, observer)?,
        Counter::Gpu(gpu) => {
            let mut c = Vec::with_capacity(large.len());
            for block in large.chunks(GPU_BLOCK) {
                c.extend(gpu.divisor_counts(block, observer)?);
                observer.advance(block.len() as u64);
            }
            c
        }
    };
    drop(large);
    // counts become the running sums in place
    let mut sum = 0u64;
    for (i, n) in counts.iter_mut().enumerate() {
        let c = if i < first {
            1
        } else {
            u64::from(c[i - first])
        };
        sum += *n * c;
        *n = sum;
    }
    Ok(Ok(Sorted {
        offset,
        keys,
        sums: counts,
    }))
}

/// `c(v)` for each of `values` (ascending, each `>= 2`) on the current pool's threads: by the
/// divisor table for those within it when it pays ([`DivisorTable::ENTRIES_PER_ELEMENT`]
/// entries per value at most), by factoring otherwise.
fn cpu_counts(values: &[u64], observer: &dyn Observer) -> Result<Vec<u32>> {
    let small = values.partition_point(|&v| v <= DivisorTable::MAX_LIMIT);
    let table = values[..small]
        .last()
        .filter(|&&top| top <= DivisorTable::ENTRIES_PER_ELEMENT * small as u64)
        .map(|&top| DivisorTable::new(top));
    let mut out = vec![0u32; values.len()];
    out.par_chunks_mut(COUNT_BLOCK)
        .zip(values.par_chunks(COUNT_BLOCK))
        .for_each(|(out, values)| {
            if observer.cancelled() {
                return;
            }
            for (c, &v) in out.iter_mut().zip(values) {
                *c = match &table {
                    Some(t) if v <= t.limit() => u32::from(t.counts()[v as usize]),
                    _ => divisors::divisor_count(v),
                };
            }
            observer.advance(values.len() as u64);
        });
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(out)
}
