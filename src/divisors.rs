//! The one definition of c(x), and the fast ways to compute it.
//!
//! The post's kernel, for one element `x`:
//!
//! ```c
//! ++ret;                    // 1
//! if (x > 1) ++ret;         // x itself
//! for (int j = 2; j * j <= x; ++j)
//!     if (x % j == 0) { ++ret; if (j * j < x) ++ret; }
//! ```
//!
//! so `c(x) = 1` for every `x <= 1` (0 and negatives included) and `c(x) = d(x)`, the number of
//! positive divisors, otherwise. [`count`] is that definition; [`seed_kernel`] is the kernel as
//! written for 32-bit values (the `--algorithm naive` path); everything else here is a faster
//! way to the same number.
//!
//! The WGSL twins of [`seed_kernel_u32`] and [`divisor_count_u32`] live in `shaders/divisors.wgsl`;
//! `shaders/wide.wgsl` factors 64-bit values on the GPU its own way (trial division, Miller-Rabin
//! and Pollard-Brent rho within its loop budget). The CPU factors them with [`crate::factor`]
//! (Montgomery arithmetic, BPSW, rho and ECM); the GPU tests check each against the other, and
//! both against the oracle, on the same values.

use std::sync::OnceLock;

use crate::factor;

/// c(x) for any value an input can hold (the whole `i64` and `u64` ranges).
#[inline]
pub fn count(x: i128) -> u32 {
    if x <= 1 {
        1
    } else {
        divisor_count(x as u64)
    }
}

/// `--algorithm naive`'s c(x): the post's kernel as written (trial division by every `j` with
/// `j * j <= x`) for every value the post's 32-bit `int` holds, its work growing like `sqrt(x)`.
/// Values of 2^32 and above are factored as by [`count`]: the kernel's loop would run up to 2^32
/// times for each, and the GPU's naive path (`shaders/wide.wgsl`) does the same.
#[inline]
pub fn seed_kernel(x: i128) -> u32 {
    if x <= 1 {
        1
    } else if let Ok(small) = u32::try_from(x) {
        seed_kernel_u32(small)
    } else {
        factor::divisor_count_u64(x as u64)
    }
}

/// [`seed_kernel`] for `x >= 2` that fits 32 bits. The loop is the post's; the test `x % j == 0`
/// is computed without a division (Lemire, Kaser and Kurz, "Faster remainder by direct
/// computation", 2019): with `M = floor((2^64 - 1) / j) + 1`, a 32-bit `x` is a multiple of `j`
/// exactly when `x * M mod 2^64 < M`. `j * j` is taken in 64 bits, where it cannot overflow.
#[inline]
pub fn seed_kernel_u32(x: u32) -> u32 {
    let inverses = divisibility_inverses();
    let x64 = u64::from(x);
    let mut ret = 2;
    let mut j: u32 = 2;
    while u64::from(j) * u64::from(j) <= x64 {
        let m = inverses[j as usize];
        if x64.wrapping_mul(m) < m {
            ret += 1;
            if u64::from(j) * u64::from(j) < x64 {
                ret += 1;
            }
        }
        j += 1;
    }
    ret
}

/// `M(j) = floor((2^64 - 1) / j) + 1` for every trial divisor `j < 2^16` of a 32-bit value
/// (512 KiB, read in order by the loop above); entries 0 and 1 are unused.
fn divisibility_inverses() -> &'static [u64] {
    static INVERSES: OnceLock<Vec<u64>> = OnceLock::new();
    INVERSES.get_or_init(|| {
        (0..1u64 << 16)
            .map(|j| if j < 2 { 0 } else { u64::MAX / j + 1 })
            .collect()
    })
}

/// d(n) for `n >= 1`: the number of positive divisors, by the factoring engine
/// ([`crate::factor`]), for every 64-bit value (below 2^32 too: faster than trial division by
/// the primes below 2^16, docs/performance.md, "Measurements behind the code").
#[inline]
pub fn divisor_count(n: u64) -> u32 {
    factor::divisor_count_u64(n)
}

/// d(n) for `n >= 1` below 2^32 by trial division with the primes below 2^16: the CPU twin of
/// `shaders/divisors.wgsl`'s `divisor_count`, checked against [`divisor_count`] by the tests.
pub fn divisor_count_u32(n: u32) -> u32 {
    let mut n = n;
    let twos = n.trailing_zeros();
    n >>= twos;
    let mut d = twos + 1;
    for &p in &small_primes()[1..] {
        if u64::from(p) * u64::from(p) > u64::from(n) {
            break;
        }
        d *= strip_power(&mut n, p) + 1;
    }
    if n > 1 {
        d *= 2;
    }
    d
}

/// Divides every factor `p` out of `n` and returns how many there were.
#[inline]
fn strip_power<T>(n: &mut T, p: T) -> u32
where
    T: Copy + PartialEq + std::ops::Rem<Output = T> + std::ops::DivAssign + From<u8>,
{
    let mut e = 0;
    while *n % p == T::from(0) {
        *n /= p;
        e += 1;
    }
    e
}

/// Primes below this are divided out before Miller-Rabin and Pollard's rho take over in
/// `shaders/wide.wgsl`, which gets them from [`trial_primes`].
pub const TRIAL_BOUND: u64 = 1 << 10;

/// The odd primes below [`TRIAL_BOUND`]: the trial divisors of a 64-bit value after its twos.
pub fn trial_primes() -> &'static [u32] {
    let primes = small_primes();
    let end = primes.partition_point(|&p| u64::from(p) < TRIAL_BOUND);
    &primes[1..end]
}

/// The odd primes below 2^16 (6,541 of them): the GPU's trial divisors of a 32-bit value after
/// its twos, uploaded once (`shaders/divisors.wgsl`'s `odd_primes`).
pub fn odd_primes_below_2_16() -> &'static [u32] {
    &small_primes()[1..]
}

/// The primes below 2^16, enough to factor any 32-bit value by trial division.
fn small_primes() -> &'static [u32] {
    static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();
    PRIMES.get_or_init(|| {
        const LIMIT: usize = 1 << 16;
        let mut composite = vec![false; LIMIT];
        let mut primes = Vec::new();
        for i in 2..LIMIT {
            if !composite[i] {
                primes.push(i as u32);
                for j in (i * i..LIMIT).step_by(i) {
                    composite[j] = true;
                }
            }
        }
        primes
    })
}

/// d(n) for every `n <= limit`: the fast path's lookup table when the values that matter are
/// small enough that building it beats factoring element by element.
pub struct DivisorTable {
    counts: Vec<u16>,
}

/// Table entries built at a time: 32 KiB of counts, a core's L1 data cache. Measured on the
/// post's table (up to 500,000) on 2 threads: 8,192 and 32,768 were slower.
const TABLE_BLOCK: usize = 1 << 14;
/// Divisors `i` up to this are laid down as one repeating pattern instead of one by one.
const WHEEL_DIVISORS: usize = 10;
/// The pattern's period: lcm(1, ..., [`WHEEL_DIVISORS`]).
const WHEEL: usize = 2520;
/// For each residue `r` mod [`WHEEL`], 2 for each `i <= WHEEL_DIVISORS` that divides it: what
/// those divisors add to every `n >= (WHEEL_DIVISORS + 1)^2` with `n % WHEEL == r`.
static WHEEL_PATTERN: [u16; WHEEL] = {
    let mut pattern = [0u16; WHEEL];
    let mut r = 0;
    while r < WHEEL {
        let mut i = 1;
        while i <= WHEEL_DIVISORS {
            if r % i == 0 {
                pattern[r] += 2;
            }
            i += 1;
        }
        r += 1;
    }
    pattern
};

/// [`DivisorTable::new`]'s entries for `start..start + part.len()` (out of `0..=limit`), one
/// L1-sized block at a time. Every divisor `i < sqrt(n)` of `n` pairs with `n / i > sqrt(n)`, so
/// d(n) = 2 #{i | n : i < sqrt(n)} + [n is a square]: for each `i <= sqrt(limit)`, 2 at every
/// multiple of `i` above `i^2` and 1 at `i^2`. The small `i` come as one pattern; no division
/// per entry and no branch that data decides.
fn divisor_counts(part: &mut [u16], start: usize) {
    let end = start + part.len();
    let first = WHEEL_DIVISORS + 1;
    let root = (end - 1).isqrt();
    // next[i - first]: the next multiple of `i` at or after the block, counting from i^2
    let mut next: Vec<usize> = (first..=root.max(first))
        .map(|i| (i * i).max(start.div_ceil(i) * i))
        .collect();
    for (b, block) in part.chunks_mut(TABLE_BLOCK).enumerate() {
        let lo = start + b * TABLE_BLOCK;
        let len = block.len();
        let mut r = lo % WHEEL;
        let mut k = 0;
        while k < len {
            let n = (WHEEL - r).min(len - k);
            block[k..k + n].copy_from_slice(&WHEEL_PATTERN[r..r + n]);
            k += n;
            r = 0;
        }
        for (i, next) in (first..=root).zip(&mut next) {
            let square = i * i;
            if square >= lo + len {
                break;
            }
            let Some(mut k) = next.checked_sub(lo).filter(|&k| k < len) else {
                continue;
            };
            if *next == square {
                block[k] += 1;
                k += i;
            }
            while k < len {
                block[k] += 2;
                k += i;
            }
            *next = lo + k;
        }
        // below first^2 the pattern also counts divisors i >= sqrt(n): those by the definition
        for n in lo..(lo + len).min(first * first) {
            block[n - lo] = count(n as i128) as u16;
        }
    }
}

impl DivisorTable {
    /// A table pays for itself, on the CPU and on the GPU, up to this many entries per element
    /// counted: building it costs a few ns an entry, factoring an element more.
    pub const ENTRIES_PER_ELEMENT: u64 = 8;

    /// Largest table the fast path builds (2^24 entries, 32 MiB); d(n) < 2^16 for every such n.
    pub const MAX_LIMIT: u64 = 1 << 24;

    /// The table up to `limit`, built on every thread of the current rayon pool (on this
    /// thread alone outside one: divgpu never uses the global pool).
    pub fn new(limit: u64) -> Self {
        use rayon::prelude::*;
        assert!(
            limit <= Self::MAX_LIMIT,
            "divisor table limit {limit} too large"
        );
        let len = limit as usize + 1;
        let mut counts = vec![0u16; len];
        let threads = match rayon::current_thread_index() {
            Some(_) => rayon::current_num_threads(),
            None => 1,
        };
        // a few parts per thread, whole blocks each, for work stealing to even out
        let part = len
            .div_ceil(4 * threads)
            .next_multiple_of(TABLE_BLOCK)
            .max(TABLE_BLOCK);
        if threads == 1 {
            for (p, chunk) in counts.chunks_mut(part).enumerate() {
                divisor_counts(chunk, p * part);
            }
        } else {
            counts
                .par_chunks_mut(part)
                .enumerate()
                .for_each(|(p, chunk)| divisor_counts(chunk, p * part));
        }
        DivisorTable { counts }
    }

    /// c(n) for every `n` from 0 to [`DivisorTable::limit`].
    pub fn counts(&self) -> &[u16] {
        &self.counts
    }

    /// [`DivisorTable::counts`], owned: for a caller that builds on them in place.
    pub fn into_counts(self) -> Vec<u16> {
        self.counts
    }

    /// The largest `n` the table answers.
    pub fn limit(&self) -> u64 {
        self.counts.len() as u64 - 1
    }

    /// c(x) for `x <= limit`, falling back to [`count`] above it.
    #[inline]
    pub fn count(&self, x: i128) -> u32 {
        if x <= 1 {
            1
        } else if let Some(&d) = usize::try_from(x).ok().and_then(|i| self.counts.get(i)) {
            u32::from(d)
        } else {
            count(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_is_one_at_and_below_one() {
        for x in [i64::MIN as i128, -5, -1, 0, 1] {
            assert_eq!(count(x), 1, "c({x})");
            assert_eq!(seed_kernel(x), 1, "seed({x})");
        }
    }

    #[test]
    fn factoring_agrees_with_the_seed_kernel() {
        for x in (2..20_000).chain((1u64 << 32) - 4000..1 << 32) {
            assert_eq!(divisor_count(x), seed_kernel(x.into()), "x = {x}");
        }
    }

    #[test]
    fn divisibility_by_multiplication_is_exact() {
        let inverses = divisibility_inverses();
        let xs = [
            0u32,
            1,
            2,
            3,
            65535,
            65536,
            4294836225,
            4294967291,
            4294967295,
            u32::MAX - 1,
        ];
        for j in (2..1000u32).chain(65000..65536) {
            let m = inverses[j as usize];
            for x in xs
                .iter()
                .copied()
                .chain((0..50).map(|k| j * k))
                .chain((0..50).map(|k| (j * k).wrapping_add(1)))
            {
                assert_eq!(
                    u64::from(x).wrapping_mul(m) < m,
                    x % j == 0,
                    "x = {x}, j = {j}"
                );
            }
        }
    }

    #[test]
    fn table_agrees_with_factoring() {
        let table = DivisorTable::new(200_000);
        assert_eq!(table.limit(), 200_000);
        for x in -3..=200_010i128 {
            assert_eq!(table.count(x), count(x), "x = {x}");
        }
    }

    /// [`DivisorTable::new`] on 1 to 3 threads at the sizes where its parts change: the
    /// pattern's end (121), a pattern period, a block and a part, each against [`count`].
    #[test]
    fn table_agrees_with_factoring_on_every_thread_count_and_edge() {
        let b = TABLE_BLOCK as u64;
        let limits = [
            0,
            1,
            2,
            3,
            119,
            120,
            121,
            122,
            WHEEL as u64 - 1,
            WHEEL as u64,
            b - 1,
            b,
            b + 1,
            3 * b + 7,
            // 4 parts per thread of 2^20 / 12 entries: not whole blocks, so rounded up
            1 << 20,
        ];
        for threads in [1, 2, 3] {
            let pool = crate::cpu::pool(threads, false).unwrap();
            for limit in limits {
                let table = pool.install(|| DivisorTable::new(limit));
                assert_eq!(table.limit(), limit);
                for (x, &c) in table.counts().iter().enumerate() {
                    assert_eq!(
                        u32::from(c),
                        count(x as i128),
                        "x = {x}, limit {limit}, {threads} threads"
                    );
                }
            }
        }
    }

    /// The largest table, on 2 threads and on 1: the same, each square (the one entry with an
    /// odd count of divisors below its root), every block's edges and 100,000 seeded random
    /// entries by factoring, and OEIS A006218(10^7) = 162,725,364 (the sum of d(n), n <= 10^7).
    #[test]
    fn largest_table_agrees_with_factoring_and_oeis() {
        let limit = DivisorTable::MAX_LIMIT;
        let table = crate::cpu::pool(2, false)
            .unwrap()
            .install(|| DivisorTable::new(limit));
        assert_eq!(table.counts(), DivisorTable::new(limit).counts());
        let counts = table.counts();
        let sum: u64 = counts[1..=10_000_000].iter().map(|&c| u64::from(c)).sum();
        assert_eq!(sum, 162_725_364);
        let squares = (1..=limit.isqrt()).map(|r| r * r);
        let edges = (0..=limit)
            .step_by(TABLE_BLOCK)
            .flat_map(|e| e.saturating_sub(2)..=(e + 2).min(limit));
        let mut rng = crate::workload::SplitMix64::new(17);
        let random = std::iter::repeat_with(move || rng.below(limit + 1)).take(100_000);
        for x in squares.chain(edges).chain(random) {
            assert_eq!(u32::from(counts[x as usize]), count(x.into()), "x = {x}");
        }
    }

    /// The GPU's trial-division twin against the engine, on every kind of 32-bit value.
    #[test]
    fn trial_division_agrees_with_the_engine_below_2_32() {
        let mut rng = crate::workload::SplitMix64::new(32);
        let random = std::iter::repeat_with(move || rng.below(1 << 32) as u32).take(20_000);
        let edges = (1..5000).chain((u32::MAX - 5000)..=u32::MAX);
        let squares = (1..=65535u32).step_by(97).map(|r| r * r);
        for n in random.chain(edges).chain(squares).filter(|&n| n >= 1) {
            assert_eq!(divisor_count_u32(n), divisor_count(n.into()), "n = {n}");
        }
    }

    #[test]
    fn primality_on_known_primes_and_composites() {
        use crate::factor::is_prime;
        // Known primes (largest below 2^32 and 2^64, the Mersenne primes 2^31-1 and 2^61-1)
        // and strong pseudoprimes to small bases (3215031751 fools bases 2, 3, 5 and 7).
        for p in [
            2,
            3,
            4294967291,
            2147483647,
            (1 << 61) - 1,
            18446744073709551557,
        ] {
            assert!(is_prime(p), "{p} is prime");
        }
        for c in [1, 4, 3215031751, 4294967297, 3825123056546413051, u64::MAX] {
            assert!(!is_prime(c), "{c} is composite");
        }
    }
}
