//! The randomized differential suite: fresh random arrays and thresholds on every run, every
//! backend and algorithm (and on the GPU, forced chunk sizes, resident and streamed), every
//! reader, all compared with an oracle that shares no code with divgpu (`common::factor`).
//!
//! Knobs (environment variables):
//! - `DIVGPU_DIFF_CASES=N`: how many cases (default 48).
//! - `DIVGPU_DIFF_SECONDS=S`: instead, keep making cases for S seconds (3600: an hour).
//! - `DIVGPU_DIFF_SEED=S`: the run's base seed (default: from the clock, printed).
//! - `DIVGPU_DIFF_CASE=S`: replay the one case with this seed (printed on every failure).

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{factor, gpu, Runner};
use divgpu::input::{Array, DType, ExternalBytes};
use divgpu::Algorithm;

/// SplitMix64, written here so that the cases do not depend on divgpu's own generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (near enough: the bias of one modulo is irrelevant here).
    fn range(&mut self, lo: i128, hi: i128) -> i128 {
        let span = (hi - lo) as u128 + 1;
        let r = (u128::from(self.next()) << 64 | u128::from(self.next())) % span;
        lo + r as i128
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, Debug)]
struct Dtype {
    signed: bool,
    width: usize,
    big_endian: bool,
}

impl Dtype {
    fn range(self) -> (i128, i128) {
        if self.width == 16 {
            // both negatives and values above 2^63 - 1: only text and memory hold these
            return (i128::from(i64::MIN), i128::from(u64::MAX));
        }
        let bits = 8 * self.width as u32;
        if self.signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        }
    }

    /// numpy's name for it.
    fn descr(self) -> String {
        if self.width == 16 {
            return "i128 (mixed)".to_string();
        }
        let order = if self.width == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        let kind = if self.signed { 'i' } else { 'u' };
        format!("{order}{kind}{}", self.width)
    }

    fn bytes(self, x: i128) -> Vec<u8> {
        let le = (x as u128).to_le_bytes();
        let mut b = le[..self.width].to_vec();
        if self.big_endian {
            b.reverse();
        }
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reader {
    Npy,
    /// little-endian raw with a dtype, as `--dtype` reads
    Raw,
    Text,
    /// `Array::from_i64` / `Array::from_u64` / `Array::from_i128`
    Owned,
    /// `Array::from_external`, as the Python package reads a numpy array in place: a buffer
    /// with the elements at a random stride (gaps, reversed, misaligned, 1-D or 2-D)
    External,
    /// `Array::from_chunks` of contiguous buffers, as the Python package reads an Arrow chunked
    /// array in place: cut at random places (empty chunks too), each chunk misaligned at random
    Chunks,
}

/// A caller's buffer, as a numpy array's is to the Python package.
struct Buffer(Vec<u8>);

impl ExternalBytes for Buffer {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct Case {
    seed: u64,
    dtype: Dtype,
    reader: Reader,
    /// Every runner at once, each on a thread of its own: the GPU runners' sessions share the
    /// process's one device (as many Python Indexes do) and query it side by side.
    concurrent: bool,
    values: Vec<i128>,
    counts: Vec<u64>,
    thresholds: Vec<i128>,
    runners: Vec<Runner>,
}

/// d(n) for n < SMALL by a divisor sieve: every element below it is looked up here.
const SMALL: usize = 1 << 20;

struct Pools {
    small: Vec<u32>,
    /// primes below 2^16, for random primes and prime squares below 2^32
    primes16: Vec<u32>,
}

impl Pools {
    fn new() -> Pools {
        let mut small = vec![0u32; SMALL];
        for i in 1..SMALL {
            for j in (i..SMALL).step_by(i) {
                small[j] += 1;
            }
        }
        Pools {
            small,
            primes16: factor::primes_below(1 << 16),
        }
    }

    fn c(&self, x: i128) -> u64 {
        if x <= 1 {
            1
        } else if (x as u128) < SMALL as u128 {
            u64::from(self.small[x as usize])
        } else {
            factor::c(x)
        }
    }
}

/// The first prime at or above `from` (within `hi`), or `None`.
fn prime_from(from: i128, hi: i128) -> Option<i128> {
    let mut x = from.max(2);
    while x <= hi && x <= u64::MAX as i128 {
        if factor::is_prime(x as u64) {
            return Some(x);
        }
        x += 1;
    }
    None
}

/// Elements of 2^32 and above cost the GPU thousands of emulated 64-bit steps each; a case
/// holds at most this many of them (and at most `HARD` hard semiprimes among them).
const MAX_WIDE: usize = 48;
const HARD: usize = 3;

/// A value of one of the kinds that find bugs, within `lo..=hi`.
fn pool_value(rng: &mut Rng, pools: &Pools, lo: i128, hi: i128, hard_left: &mut usize) -> i128 {
    let clamp = |x: i128| x.clamp(lo, hi);
    loop {
        let x = match rng.below(10) {
            0 => rng.range(lo, hi),
            1 => {
                // near a power of two that matters
                let edge = rng.pick(&[1i128 << 31, 1 << 32, 1 << 63, 1 << 64, 1 << 16, 1 << 8]);
                clamp(edge + rng.range(-300, 300))
            }
            2 => {
                let target = rng.range(lo.max(2), hi);
                match prime_from(target, hi) {
                    Some(p) => p,
                    None => continue,
                }
            }
            3 => {
                let p = i128::from(rng.pick(&pools.primes16));
                clamp(p * p)
            }
            4 => {
                // the 32-bit worst cases of the shaders' loops
                clamp(rng.pick(&[
                    4_294_836_225,
                    4_294_967_291,
                    4_293_001_441,
                    4_294_967_279,
                    4_294_967_295,
                    65_536,
                ]))
            }
            5 if *hard_left > 0 && hi >= 1 << 63 => {
                // a product of two primes near 2^32: rho's longest walks
                *hard_left -= 1;
                let p = prime_from(rng.range(3 << 30, (1 << 32) - 1), 1 << 33).unwrap();
                let q = prime_from(rng.range(3 << 30, (1 << 32) - 1), 1 << 33).unwrap();
                clamp(p * q)
            }
            6 => clamp(rng.pick(&[lo, hi, 0, 1, 2, hi - 1, lo + 1])),
            7 => {
                // a small number times a large prime
                let k = rng.range(2, 5000);
                match prime_from(rng.range(2, (hi / k).max(2)), hi / k) {
                    Some(p) => clamp(k * p),
                    None => continue,
                }
            }
            8 => rng.range(lo.max(0), hi.min(1 << 32)),
            _ => rng.range(lo, hi.min(1 << 24)),
        };
        return x;
    }
}

fn length(rng: &mut Rng, wg: usize) -> usize {
    let boundaries = [
        0,
        1,
        2,
        wg - 1,
        wg,
        wg + 1,
        (1 << 14) - 1,
        1 << 14,
        (1 << 14) + 1,
        (1 << 16) - 1,
        1 << 16,
        (1 << 16) + 1,
    ];
    match rng.below(10) {
        0..=4 => rng.pick(&boundaries),
        5..=7 => rng.below(3000),
        8 => rng.below(60_000),
        _ => rng.below(300_000),
    }
}

fn thresholds(rng: &mut Rng, values: &[i128], lo: i128, hi: i128) -> Vec<i128> {
    if rng.chance(20) {
        return post_shaped(rng, values, hi);
    }
    let count = if rng.chance(20) {
        rng.range(1000, 5000) as usize
    } else {
        rng.range(1, 50) as usize
    };
    let min = i128::from(i64::MIN);
    let max = i128::from(u64::MAX);
    let mut out: Vec<i128> = Vec::with_capacity(count);
    while out.len() < count {
        let t = match rng.below(8) {
            0 | 1 if !values.is_empty() => rng.pick(values),
            2 if !values.is_empty() => (rng.pick(values) + rng.pick(&[-1, 1])).clamp(min, max),
            3 if !out.is_empty() => rng.pick(&out), // a duplicate
            4 => rng.range(min, -1),
            5 => rng
                .pick(&[min, max, lo - 1, hi + 1, -1, 0, 1])
                .clamp(min, max),
            _ => rng.range(lo, hi),
        };
        out.push(t);
    }
    out
}

/// The post's shape, which the CPU answers by one packed lookup per element: 1 to 15 distinct
/// thresholds, none below 0, up to a top within a divisor table for this many elements (8 entries
/// per element, at most 2^24), some of them on elements and beside them, duplicates among them.
fn post_shaped(rng: &mut Rng, values: &[i128], hi: i128) -> Vec<i128> {
    let top = (8 * values.len() as i128).clamp(2, 1 << 24).min(hi.max(2));
    let mut out: Vec<i128> = Vec::new();
    for _ in 0..rng.range(1, 15) {
        let t = match rng.below(5) {
            0 if !values.is_empty() => rng.pick(values),
            1 if !values.is_empty() => rng.pick(values) + 1,
            2 if !out.is_empty() => rng.pick(&out),
            3 => rng.pick(&[0, 1, 2, top]),
            _ => rng.range(0, top),
        };
        out.push(t.clamp(0, top));
    }
    out
}

fn make_case(seed: u64, pools: &Pools, wg: usize, with_gpu: bool) -> Case {
    let mut rng = Rng(seed);
    let mut dtype = Dtype {
        signed: rng.chance(50),
        width: rng.pick(&[1, 2, 4, 8, 8, 16]),
        big_endian: rng.chance(30),
    };
    if dtype.width == 16 {
        dtype.signed = true;
        dtype.big_endian = false;
    }
    let (lo, hi) = dtype.range();
    let reader = if dtype.width == 16 {
        rng.pick(&[Reader::Text, Reader::Owned])
    } else if rng.chance(25) {
        Reader::External
    } else if rng.chance(15) {
        Reader::Chunks
    } else if dtype.width == 8 && !dtype.big_endian {
        rng.pick(&[Reader::Npy, Reader::Raw, Reader::Text, Reader::Owned])
    } else if dtype.big_endian {
        Reader::Npy
    } else {
        rng.pick(&[Reader::Npy, Reader::Raw])
    };
    let len = length(&mut rng, wg);
    let mut hard_left = HARD;
    let pool: Vec<i128> = (0..rng.range(1, 300))
        .map(|_| pool_value(&mut rng, pools, lo, hi, &mut hard_left))
        .collect();
    let pool_counts: Vec<u64> = pool.iter().map(|&x| pools.c(x)).collect();
    let small_share = rng.below(101) as u64;
    let negative_share = if dtype.signed {
        rng.below(30) as u64
    } else {
        0
    };
    let mut wide = 0;
    let mut values = Vec::with_capacity(len);
    let mut counts = Vec::with_capacity(len);
    for _ in 0..len {
        let roll = rng.below(100) as u64;
        let (x, c) = if roll < negative_share {
            (rng.range(lo, -1), 1)
        } else if roll < negative_share + small_share {
            let x = rng.range(lo.max(0), hi.min(SMALL as i128 - 1));
            (x, pools.c(x))
        } else {
            let k = rng.below(pool.len());
            let x = pool[k];
            if x > u32::MAX as i128 && wide == MAX_WIDE {
                (0, 1)
            } else {
                wide += usize::from(x > u32::MAX as i128);
                (x, pool_counts[k])
            }
        };
        values.push(x);
        counts.push(c);
    }
    if rng.chance(15) {
        // every value distinct: an index as large as the array
        let mut seen = std::collections::HashSet::new();
        let keep: Vec<bool> = values.iter().map(|&x| seen.insert(x)).collect();
        let mut k = keep.iter();
        values.retain(|_| *k.next().unwrap());
        let mut k = keep.iter();
        counts.retain(|_| *k.next().unwrap());
    }
    let thresholds = thresholds(&mut rng, &values, lo, hi);
    let runners = runners(&mut rng, &values, &thresholds, wg, with_gpu);
    // drawn last, so that the draws above (and every older seed's case) stay as they were
    let concurrent = with_gpu && rng.chance(35);
    Case {
        seed,
        dtype,
        reader,
        concurrent,
        values,
        counts,
        thresholds,
        runners,
    }
}

/// What a naive query costs, in trial divisions: every threshold redoes every element at or
/// below it (an element of 2^32 and above is factored again, at some 10^5 steps).
fn naive_cost(values: &[i128], thresholds: &[i128]) -> u64 {
    let weights: Vec<u64> = values
        .iter()
        .map(|&x| match x {
            ..=1 => 1,
            2..=0xffff_ffff => (x as f64).sqrt() as u64 + 1,
            _ => 100_000,
        })
        .collect();
    factor::sums(values, &weights, thresholds).iter().sum()
}

/// Trial divisions one case's naive runners may take together (a few seconds on lavapipe).
const NAIVE_BUDGET: u64 = 300_000_000;

fn runners(
    rng: &mut Rng,
    values: &[i128],
    thresholds: &[i128],
    wg: usize,
    with_gpu: bool,
) -> Vec<Runner> {
    let len = values.len();
    let chunk = |rng: &mut Rng| -> usize {
        let choices = [
            1,
            wg - 1,
            wg,
            wg + 1,
            (1 << 14) - 1,
            1 << 14,
            (1 << 16) + 1,
            len.div_ceil(3),
            // the array one element past or short of a chunk
            len.saturating_sub(1),
            len + 1,
        ];
        // at most 64 chunks: each one is a dispatch per query
        rng.pick(&choices).max(len.div_ceil(64)).max(1)
    };
    let mut out = vec![
        Runner::Cpu(Algorithm::Fast, 1),
        Runner::Cpu(Algorithm::Fast, 2),
        // a session's value index, dense where the values allow one, else sorted
        Runner::CpuSession(2),
        // the same index saved to a file and loaded again
        Runner::Saved,
    ];
    if with_gpu {
        // a sorted index whose counts the GPU computed
        out.push(Runner::GpuSession);
        out.push(Runner::Gpu(Algorithm::Fast, None));
        out.push(Runner::Gpu(Algorithm::Fast, Some(chunk(rng))));
        out.push(Runner::GpuStreamed(Algorithm::Fast, chunk(rng)));
    }
    let cost = naive_cost(values, thresholds);
    if cost <= NAIVE_BUDGET {
        out.push(Runner::Cpu(Algorithm::Naive, 2));
        if with_gpu {
            let pick = rng.below(3);
            out.push(match pick {
                0 => Runner::Gpu(Algorithm::Naive, None),
                1 => Runner::Gpu(Algorithm::Naive, Some(chunk(rng))),
                _ => Runner::GpuStreamed(Algorithm::Naive, chunk(rng)),
            });
        }
    }
    out
}

fn open(case: &Case, dir: &std::path::Path) -> Array {
    let d = case.dtype;
    let path = dir.join(format!("case-{:016x}", case.seed));
    let data: Vec<u8> = case.values.iter().flat_map(|&x| d.bytes(x)).collect();
    match case.reader {
        Reader::Npy => {
            let path = path.with_extension("npy");
            let dict = format!(
                "{{'descr': '{}', 'fortran_order': False, 'shape': ({},), }}",
                d.descr(),
                case.values.len()
            );
            let pad = 64 - (10 + dict.len() + 1) % 64;
            let header = format!("{dict}{}\n", " ".repeat(pad % 64));
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(b"\x93NUMPY\x01\x00").unwrap();
            f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
            f.write_all(header.as_bytes()).unwrap();
            f.write_all(&data).unwrap();
            drop(f);
            Array::open_npy(&path).unwrap()
        }
        Reader::Raw => {
            std::fs::write(&path, &data).unwrap();
            let name = format!("{}{}", if d.signed { 'i' } else { 'u' }, 8 * d.width);
            Array::open_raw(&path, DType::from_raw_name(&name).unwrap()).unwrap()
        }
        Reader::Text => {
            let path = path.with_extension("txt");
            let mut text = String::new();
            for x in &case.values {
                text += &format!("{x}\n");
            }
            std::fs::write(&path, text).unwrap();
            Array::open_text(&path).unwrap()
        }
        Reader::Owned if d.width == 16 => Array::from_i128(case.values.clone()).unwrap(),
        Reader::Owned if d.signed => {
            Array::from_i64(case.values.iter().map(|&x| x as i64).collect())
        }
        Reader::Owned => Array::from_u64(case.values.iter().map(|&x| x as u64).collect()),
        Reader::External => external(case),
        Reader::Chunks => chunked(case),
    }
}

/// The case's values in contiguous chunks, each in a buffer of its own, read in place.
fn chunked(case: &Case) -> Array {
    let d = case.dtype;
    let w = d.width;
    let n = case.values.len();
    let mut rng = Rng(case.seed ^ 0x5851_f42d_4c95_7f2d);
    let dtype = DType {
        signed: d.signed,
        width: w,
        big_endian: d.big_endian,
    };
    let mut parts = Vec::new();
    let mut at = 0;
    loop {
        let take = rng.below((n - at).min(n / 3 + 2) + 1);
        let lead = rng.below(w + 3);
        let mut buffer = vec![0xA5u8; lead + take * w + rng.below(9)];
        for (i, &x) in case.values[at..at + take].iter().enumerate() {
            buffer[lead + i * w..lead + (i + 1) * w].copy_from_slice(&d.bytes(x));
        }
        let part = Array::from_external(
            Box::new(Buffer(buffer)),
            dtype,
            &[take],
            &[w as isize],
            lead,
        );
        parts.push(part.unwrap());
        at += take;
        // now and then an empty chunk after the last
        if at == n && !rng.chance(20) {
            break;
        }
    }
    Array::from_chunks(dtype, parts).unwrap()
}

/// The case's values in a buffer at a random layout, read in place.
fn external(case: &Case) -> Array {
    let d = case.dtype;
    let w = d.width;
    let n = case.values.len();
    let mut rng = Rng(case.seed ^ 0x9e37_79b9_7f4a_7c15);
    let step = w * (1 + rng.below(3)); // 0 to 2 elements' worth of gap
    let lead = rng.below(w + 3); // misaligned for most widths
    let reversed = rng.chance(30);
    let mut buffer = vec![0xA5u8; lead + n * step + w];
    for (i, &x) in case.values.iter().enumerate() {
        let at = lead + if reversed { n - 1 - i } else { i } * step;
        buffer[at..at + w].copy_from_slice(&d.bytes(x));
    }
    let (first, stride) = if reversed {
        (lead + n.saturating_sub(1) * step, -(step as isize))
    } else {
        (lead, step as isize)
    };
    let dtype = DType {
        signed: d.signed,
        width: w,
        big_endian: d.big_endian,
    };
    let (shape, strides) = if n.is_multiple_of(2) && n > 0 && rng.chance(50) {
        (vec![n / 2, 2], vec![2 * stride, stride])
    } else {
        (vec![n], vec![stride])
    };
    Array::from_external(Box::new(Buffer(buffer)), dtype, &shape, &strides, first).unwrap()
}

fn describe(case: &Case) -> String {
    format!(
        "case {:#018x}: {} {:?}{}, {} elements ({} of 2^32 and above), {} thresholds",
        case.seed,
        case.dtype.descr(),
        case.reader,
        if case.concurrent {
            ", runners at once"
        } else {
            ""
        },
        case.values.len(),
        case.values
            .iter()
            .filter(|&&x| x > u32::MAX as i128)
            .count(),
        case.thresholds.len()
    )
}

/// Runs one case on every runner; `Err` says what differed and how to replay it.
fn check(case: &Case, dir: &std::path::Path) -> Result<(), String> {
    let expected = factor::sums(&case.values, &case.counts, &case.thresholds);
    let array = Arc::new(open(case, dir));
    assert_eq!(array.len(), case.values.len(), "{}", describe(case));
    let answers: Vec<divgpu::Result<Vec<u64>>> = if case.concurrent {
        std::thread::scope(|s| {
            let running: Vec<_> = case
                .runners
                .iter()
                .map(|runner| s.spawn(|| runner.run(&array, &case.thresholds)))
                .collect();
            running
                .into_iter()
                .map(|r| r.join().expect("a runner's thread panicked"))
                .collect()
        })
    } else {
        case.runners
            .iter()
            .map(|runner| runner.run(&array, &case.thresholds))
            .collect()
    };
    for (runner, answer) in case.runners.iter().zip(answers) {
        let got = answer.map_err(|e| format!("{}: {runner:?} failed: {e}", describe(case)))?;
        if got != expected {
            let i = (0..expected.len())
                .find(|&i| got[i] != expected[i])
                .unwrap();
            return Err(format!(
                "{}: {runner:?} differs from the oracle at threshold #{i} ({}): got {}, expected {}; \
                 replay with DIVGPU_DIFF_CASE={:#x}",
                describe(case),
                case.thresholds[i],
                got[i],
                expected[i],
                case.seed
            ));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[test]
fn the_oracle_agrees_with_the_posts_kernel_and_with_known_counts() {
    let pools = Pools::new();
    let mut rng = Rng(7);
    for _ in 0..300 {
        let x = rng.range(-5, 1 << 26);
        assert_eq!(pools.c(x), common::oracle_count(x), "{x}");
        assert_eq!(factor::c(x), common::oracle_count(x), "{x}");
    }
    // OEIS A000005 and factorizations known from outside
    for (x, d) in [
        (735_134_400i128, 1344),
        (4_294_967_291, 2),
        (4_294_967_295, 32),
        (u64::MAX as i128, 128),
        (i64::MAX as i128, 96),
        (18_446_744_073_709_551_557, 2),
        (897_612_484_786_617_600, 103_680),
        (4_294_967_291 * 4_294_967_279, 4),
    ] {
        assert_eq!(factor::c(x), d, "{x}");
    }
    let values: Vec<i128> = (0..=100_000).collect();
    let counts: Vec<u64> = values.iter().map(|&x| pools.c(x)).collect();
    // A006218(10^5) + 1 for the 0
    assert_eq!(
        factor::sums(&values, &counts, &[100_000, -1]),
        [1_166_751, 0]
    );
}

#[test]
fn random_cases_on_every_path_match_the_oracle() {
    let pools = Pools::new();
    let gpu = gpu();
    let wg = gpu.map_or(256, |g| g.workgroup_size() as usize);
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: u64| {
        let case = make_case(seed, &pools, wg, gpu.is_some());
        if let Err(e) = check(&case, dir.path()) {
            panic!("{e}");
        }
        case
    };
    if let Some(seed) = env_u64("DIVGPU_DIFF_CASE") {
        let case = run(seed);
        eprintln!(
            "{} passed on {} runners",
            describe(&case),
            case.runners.len()
        );
        return;
    }
    let base = env_u64("DIVGPU_DIFF_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let seconds = env_u64("DIVGPU_DIFF_SECONDS");
    let cases = env_u64("DIVGPU_DIFF_CASES").unwrap_or(48);
    eprintln!("differential suite: base seed {base:#x} (DIVGPU_DIFF_SEED replays this run)");
    let start = Instant::now();
    let mut seeds = Rng(base);
    let (mut done, mut runs, mut elements, mut at_once) = (0u64, 0usize, 0usize, 0usize);
    let mut readers = std::collections::BTreeMap::<String, usize>::new();
    loop {
        let more = match seconds {
            Some(s) => start.elapsed() < Duration::from_secs(s),
            None => done < cases,
        };
        if !more {
            break;
        }
        let case = run(seeds.next());
        done += 1;
        runs += case.runners.len();
        at_once += usize::from(case.concurrent);
        elements += case.values.len();
        *readers.entry(format!("{:?}", case.reader)).or_default() += 1;
    }
    eprintln!(
        "differential suite: {done} cases ({readers:?}; {at_once} with their runners at once), \
         {runs} runs, {elements} elements, {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
