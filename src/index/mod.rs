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
//!   parallel sort of the elements and one walk that drops repeats and counts them; then `c`
//!   is computed once per distinct value, on the CPU's threads or on the GPU ([`Counter`]), as
//!   far as the thresholds asked so far reach ([`ValueIndex::cover`]): a batch whose thresholds
//!   are all small factors only the values below them, as a pass would, and a later batch that
//!   reaches further extends the sums from where they stopped.
//!
//! Either answers a batch of `Q` thresholds in `O(Q log D)` without touching the array again,
//! and without a lock: the keys never change, and each running sum is written once, before the
//! count of sums ready is published past it (release and acquire), and never again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

pub mod file;

use std::path::Path;

use crate::cpu::PrefixTable;
use crate::divisors::{self, DivisorTable};
use crate::error::{Error, Result};
use crate::fork::{ForkMutex, Held};
use crate::gpu::GpuContext;
use crate::input::{Array, DType};
use crate::Observer;
use file::IndexFile;

/// Who computes `c` for the distinct values of a sorted index.
#[derive(Clone, Copy)]
pub enum Counter<'a> {
    /// The current rayon pool's threads.
    Cpu,
    /// The GPU's `fast` pipeline ([`crate::gpu::divisor_counts`]).
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
    dtype: DType,
    elements: usize,
    build_time: Duration,
    /// Nanoseconds spent in [`ValueIndex::cover`].
    count_time: AtomicU64,
}

#[derive(Debug)]
enum Shape {
    Dense(PrefixTable),
    Sorted32(Sorted<u32>),
    Sorted64(Sorted<u64>),
    /// [`DType::I128`] arrays (text with both negatives and values above `i64::MAX`): 65-bit
    /// keys, which no narrower type holds.
    Sorted128(Sorted<u128>),
    /// A saved index, mapped ([`file`]): complete, read in place.
    File(Box<IndexFile>),
}

/// The distinct values as order-preserving keys (`value = key + offset`), ascending. For `i`
/// below `ready`, `sums[i]` is the sum of `c(x)` over the elements `x <= value of keys[i]`;
/// from `ready` on, it is still the count of elements equal to that value, which
/// `Sorted::extend` turns into the running sum, in order. One `u64` a value serves both.
#[derive(Debug)]
pub struct Sorted<K> {
    offset: i128,
    keys: Vec<K>,
    sums: Box<[AtomicU64]>,
    ready: AtomicUsize,
    /// Held by the one caller that extends the sums.
    extending: ForkMutex,
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

    /// The answer for `t`; `None` when the sums do not reach it yet.
    #[inline]
    fn at_most(&self, t: i128) -> Option<u64> {
        match self.rank(t) {
            0 => Some(0),
            r if r <= self.ready.load(Ordering::Acquire) => {
                Some(self.sums[r - 1].load(Ordering::Relaxed))
            }
            _ => None,
        }
    }

    fn bytes(&self) -> u64 {
        (self.keys.len() * (std::mem::size_of::<K>() + 8)) as u64
    }

    fn value(&self, i: usize) -> i128 {
        self.keys[i].to_u128() as i128 + self.offset
    }

    /// Makes the running sums reach every value `<= t`, computing `c` for the distinct values
    /// not counted yet with `counter`, a block at a time, each block published as it is done
    /// (cancelled, the blocks done stay, and are right).
    fn extend(&self, t: i128, counter: Counter<'_>, observer: &dyn Observer) -> Result<()> {
        let end = self.rank(t);
        if end <= self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.extending.with(|held| {
            let mut ready = self.ready.load(Ordering::Acquire);
            if end <= ready {
                return Ok(());
            }
            if held == Held::AtFork {
                // another thread of the process this one was forked from was writing sums
                // here at the fork: those past `ready` may be half written
                return Err(Error::Data(
                    "this Index's value index was being counted by another thread when this \
                     process was forked, and the part being counted is incomplete here: count \
                     the largest threshold (or build the whole index) before forking, or start \
                     workers with 'spawn' or 'forkserver'"
                        .into(),
                ));
            }
            observer.start((end - ready) as u64);
            let mut sum = match ready {
                0 => 0,
                r => self.sums[r - 1].load(Ordering::Relaxed),
            };
            while ready < end {
                crate::guard::point("index-count");
                if observer.cancelled() {
                    return Err(Error::Cancelled);
                }
                let block = ready..end.min(ready + EXTEND_BLOCK);
                // values <= 1 (c = 1) come first; every other value is >= 2 and fits 64 bits
                let small = block.clone().take_while(|&i| self.value(i) < 2).count();
                let large: Vec<u64> = (block.start + small..block.end)
                    .map(|i| self.value(i) as u64)
                    .collect();
                let c = match counter {
                    Counter::Cpu => cpu_counts(&large, observer)?,
                    Counter::Gpu(gpu) => {
                        let mut c = Vec::with_capacity(large.len());
                        for part in large.chunks(GPU_BLOCK) {
                            c.extend(crate::gpu::divisor_counts(gpu, part, observer)?);
                            observer.advance(part.len() as u64);
                        }
                        c
                    }
                };
                let ones = std::iter::repeat_n(1, small);
                for (slot, c) in self.sums[block.clone()].iter().zip(ones.chain(c)) {
                    sum += slot.load(Ordering::Relaxed) * u64::from(c);
                    slot.store(sum, Ordering::Relaxed);
                }
                ready = block.end;
                self.ready.store(ready, Ordering::Release);
            }
            Ok(())
        })
    }
}

/// Distinct values counted per task when computing `c`: enough for work stealing to even out
/// values whose factoring costs differ by 1,000 times, few enough that the observer hears
/// often.
const COUNT_BLOCK: usize = 4096;

/// Distinct values per GPU call: 2 MiB of keys and as much of thresholds and sums, far below
/// every adapter's binding limit (128 MiB on llvmpipe).
const GPU_BLOCK: usize = 1 << 18;

/// Distinct values whose sums are published at once by [`Sorted::extend`]: what a cancelled
/// extension at most loses.
const EXTEND_BLOCK: usize = 1 << 20;

impl ValueIndex {
    /// The index of `array` within `limits`, on the current rayon pool's threads: a dense table
    /// complete, a sorted index with no value counted yet (see [`ValueIndex::cover`]).
    /// `Ok(Err(why))` when it does not fit; `Err(Cancelled)` when `observer` stopped it.
    pub fn build(
        array: &Array,
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
                        dtype: array.dtype(),
                        elements: array.len(),
                        build_time: start.elapsed(),
                        count_time: AtomicU64::new(0),
                    }));
                }
            }
        }
        let dtype = array.dtype();
        let shape = match file::key_layout(dtype) {
            (16, offset) => sorted::<u128>(array, offset, &fits, observer)?.map(Shape::Sorted128),
            (8, offset) => sorted::<u64>(array, offset, &fits, observer)?.map(Shape::Sorted64),
            (_, offset) => sorted::<u32>(array, offset, &fits, observer)?.map(Shape::Sorted32),
        };
        Ok(shape.map(|shape| ValueIndex {
            shape,
            dtype,
            elements: array.len(),
            build_time: start.elapsed(),
            count_time: AtomicU64::new(0),
        }))
    }

    /// Makes the index answer every threshold `<= t`: a sorted index computes `c` for the
    /// distinct values up to `t` not counted yet, on the current rayon pool. The build time
    /// grows by what it took.
    ///
    /// Callers take turns before they enter the pool (as [`crate::Session`] does): the index
    /// also takes a lock of its own, so that two callers can never write the same sums, but a
    /// caller waiting for it inside the pool holds a worker the one computing may need.
    pub fn cover(&self, t: i128, counter: Counter<'_>, observer: &dyn Observer) -> Result<()> {
        let start = Instant::now();
        let done = match &self.shape {
            Shape::Dense(_) | Shape::File(_) => return Ok(()),
            Shape::Sorted32(s) => s.extend(t, counter, observer),
            Shape::Sorted64(s) => s.extend(t, counter, observer),
            Shape::Sorted128(s) => s.extend(t, counter, observer),
        };
        self.count_time
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        done
    }

    /// Whether every threshold `<= t` is answered without computing anything.
    pub fn covers(&self, t: i128) -> bool {
        fn of<K: Key>(s: &Sorted<K>, t: i128) -> bool {
            s.rank(t) <= s.ready.load(Ordering::Acquire)
        }
        match &self.shape {
            Shape::Dense(_) | Shape::File(_) => true,
            Shape::Sorted32(s) => of(s, t),
            Shape::Sorted64(s) => of(s, t),
            Shape::Sorted128(s) => of(s, t),
        }
    }

    /// The sum of `c(x)` over the elements `x <= t`; `None` when `t` is beyond what
    /// [`ValueIndex::cover`] has reached. An error for a damaged block of a saved index.
    #[inline]
    pub fn at_most(&self, t: i128) -> Result<Option<u64>> {
        Ok(match &self.shape {
            Shape::Dense(table) => table.at_most(t),
            Shape::Sorted32(s) => s.at_most(t),
            Shape::Sorted64(s) => s.at_most(t),
            Shape::Sorted128(s) => s.at_most(t),
            Shape::File(f) => Some(f.at_most(t)?),
        })
    }

    /// A saved index, mapped and checked ([`mod@file`]).
    pub fn open(path: &Path) -> Result<ValueIndex> {
        ValueIndex::of_file(IndexFile::open(path)?)
    }

    /// A saved index's [`IndexFile::fingerprint`]; `None` for one built in memory.
    pub fn fingerprint(&self) -> Option<u32> {
        match &self.shape {
            Shape::File(f) => Some(f.fingerprint()),
            _ => None,
        }
    }

    /// A saved index's bytes, held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ValueIndex> {
        ValueIndex::of_file(IndexFile::from_bytes(bytes)?)
    }

    fn of_file(file: IndexFile) -> Result<ValueIndex> {
        let meta = file.meta();
        let elements = usize::try_from(meta.elements).map_err(|_| {
            Error::Data("an index of more elements than this machine can address".into())
        })?;
        Ok(ValueIndex {
            dtype: meta.dtype,
            elements,
            shape: Shape::File(Box::new(file)),
            build_time: Duration::ZERO,
            count_time: AtomicU64::new(0),
        })
    }

    /// Saves the index to `path` ([`file::write`]: atomically) and returns the file's
    /// [`IndexFile::fingerprint`]. Every value must be counted ([`ValueIndex::cover`] up to the
    /// largest).
    pub fn save(&self, path: &Path) -> Result<u32> {
        fn sorted<K: Key>(s: &Sorted<K>) -> Result<Vec<(i128, u64)>> {
            if s.ready.load(Ordering::Acquire) != s.keys.len() {
                return Err(Error::Data(
                    "the index is not complete: count every value before saving it".into(),
                ));
            }
            Ok((0..s.keys.len())
                .map(|i| (s.value(i), s.sums[i].load(Ordering::Relaxed)))
                .collect())
        }
        let entries: Vec<(i128, u64)> = match &self.shape {
            Shape::Dense(table) => table.entries().collect(),
            Shape::Sorted32(s) => sorted(s)?,
            Shape::Sorted64(s) => sorted(s)?,
            Shape::Sorted128(s) => sorted(s)?,
            Shape::File(f) => f.entries()?,
        };
        let meta = file::Meta {
            dtype: DType {
                big_endian: false,
                ..self.dtype
            },
            elements: self.elements as u64,
            distinct: entries.len() as u64,
        };
        file::write(path, meta, || entries.iter().copied())
    }

    /// What the index is, for `stats`.
    pub fn stats(&self) -> IndexStats {
        fn of<K: Key>(s: &Sorted<K>) -> (Option<usize>, Option<usize>, u64) {
            let ready = s.ready.load(Ordering::Acquire);
            (Some(s.keys.len()), Some(ready), s.bytes())
        }
        let (kind, (distinct, counted, bytes)) = match &self.shape {
            Shape::Dense(t) => ("dense", (None, None, t.bytes())),
            Shape::File(f) => {
                let distinct = f.meta().distinct as usize;
                ("file", (Some(distinct), Some(distinct), f.bytes_len()))
            }
            Shape::Sorted32(s) => ("sorted", of(s)),
            Shape::Sorted64(s) => ("sorted", of(s)),
            Shape::Sorted128(s) => ("sorted", of(s)),
        };
        IndexStats {
            kind,
            elements: self.elements,
            distinct,
            counted,
            bytes,
            build_time: self.build_time
                + Duration::from_nanos(self.count_time.load(Ordering::Relaxed)),
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
    /// Distinct values whose `c` is computed so far, from the smallest (a sorted index):
    /// thresholds below the next one are look-ups, a threshold beyond it extends the sums.
    pub counted: Option<usize>,
    /// Bytes it keeps.
    pub bytes: u64,
    /// The sort (or the dense table) and every `c` computed for it so far.
    pub build_time: Duration,
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

/// The sorted index of `array` (see [`Sorted`]) with no value counted yet, or why it does not
/// fit.
fn sorted<K: Key>(
    array: &Array,
    offset: i128,
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
    let mut counts: Vec<AtomicU64> = Vec::new();
    let mut distinct = 0;
    for i in 0..keys.len() {
        if distinct > 0 && keys[distinct - 1] == keys[i] {
            *counts
                .last_mut()
                .expect("one count per distinct key")
                .get_mut() += 1;
        } else {
            keys[distinct] = keys[i];
            distinct += 1;
            counts.push(AtomicU64::new(1));
        }
    }
    keys.truncate(distinct);
    keys.shrink_to_fit();
    let needed = (distinct * (std::mem::size_of::<K>() + 8)) as u64;
    if let Err(why) = fits(needed) {
        return Ok(Err(why));
    }
    Ok(Ok(Sorted {
        offset,
        keys,
        sums: counts.into_boxed_slice(),
        ready: AtomicUsize::new(0),
        extending: ForkMutex::default(),
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
