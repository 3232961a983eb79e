//! Exact divisor counting and primality testing for `u64`.
//!
//! Public API: [`divisor_count_u64`] and [`is_prime`]. Both are exact for
//! every `u64`; nothing here is probabilistic in its *answer*, only (for the
//! factoring of large composite cofactors) in its running time, and every
//! randomised search has a deterministic fallback that always terminates.
//!
//! # Why this design
//!
//! `d(n)` needs the full factorisation of `n` (only the exponents matter), so
//! the work is factoring. For 64-bit inputs the fastest known approach (used
//! e.g. by the EPR C++ library and yafu's micro-ECM) is a pipeline in which
//! each stage removes what the next one is bad at:
//!
//! 1. **Powers of two** with one `trailing_zeros`.
//! 2. **Trial division** by the odd primes below `TD_BOUND` using
//!    multiplicative inverses instead of `%`: for odd `p`, with
//!    `inv = p^-1 mod 2^64`, `p | n` iff `n * inv (mod 2^64) <= (2^64-1)/p`,
//!    and then `n * inv` *is* `n / p`. That is one multiply and one compare per
//!    prime (Granlund–Montgomery / Warren "Hacker's Delight" 10-17), several
//!    times faster than a hardware divide. Removing small primes makes the
//!    remaining cofactor have few (at most 6) prime factors, all large.
//! 3. **Primality of the cofactor** before trying to split it: most cofactors
//!    of random numbers are prime. Below 2^32 we use Miller–Rabin with bases
//!    2, 7, 61 (Jaeschke 1993: no strong pseudoprime to all three below
//!    4,759,123,141). At or above 2^32 we use **BPSW** (strong base-2
//!    Miller–Rabin + strong Lucas test with Selfridge's method-A parameters):
//!    it has no counterexample below 2^64 (checked against Feitsma–Galway's
//!    complete list of base-2 strong pseudoprimes below 2^64), and needs no
//!    hash table of bases we would have to trust.
//! 4. **Perfect powers** (squares, cubes, 5th and 7th powers) are detected by
//!    floating-point roots checked exactly in integers. Pollard rho and ECM
//!    are slow or degenerate on `p^k` (a 32-bit `p^2` takes ~2^16 rho steps),
//!    and the Lucas test's parameter search would not terminate on a square.
//! 5. **Splitting a composite cofactor** (at least two distinct primes, all
//!    above `TD_BOUND`): below 2^40 (`RHO_BITS`) Pollard–Brent rho (expected
//!    `O(p^1/2)` steps for the smallest factor `p`, with gcds batched so the
//!    cost per step is two lazily reduced Montgomery multiplications); above
//!    that ECM with Montgomery curves (Suyama parametrisation, torsion 12),
//!    a Montgomery ladder for stage 1 and a baby-step/giant-step stage 2,
//!    two curves at a time. For a product of two 32-bit primes rho needs
//!    ~2^16 steps; ECM needs on average under ten curves of ~5000
//!    multiplications each (measured), about an order of magnitude less.
//!
//! All modular arithmetic is Montgomery multiplication with `R = 2^64`, in a
//! form (see `Mont::mul`) that never overflows even for `n` close to
//! `2^64`, so every odd modulus `3 <= n <= 2^64 - 1` is handled. The
//! conditional corrections in it are written as masks (see `Mont::mul`):
//! as plain `if`s LLVM emitted unpredictable branches inside the ECM loops,
//! which cost about 40% on 64-bit semiprimes.
//!
//! Parameters (trial-division bound, rho/ECM threshold at 40 bits, ECM
//! bounds B1 by size with B2 = 25 * B1, a single quick curve at each smaller
//! B1 first) follow the EPR library's and micro-ECM's published tuning.

// ---------------------------------------------------------------------------
// Small-prime table (built at compile time)
// ---------------------------------------------------------------------------

/// Trial division covers every odd prime below this bound.
const TD_BOUND: u64 = 1024;

/// Number of odd primes below [`TD_BOUND`] (pi(1024) - 1 = 171).
const TD_COUNT: usize = count_odd_primes_below(TD_BOUND);

/// Smallest prime above the trial-division range. After trial division every
/// prime factor of the cofactor is `>= TD_NEXT`, so a cofactor below
/// `TD_NEXT^2` is 1 or prime, and one below `TD_NEXT^3` has at most two prime
/// factors.
const TD_NEXT: u64 = 1031;

const TD_NEXT_SQ: u64 = TD_NEXT * TD_NEXT;
const TD_NEXT_CUBE: u64 = TD_NEXT * TD_NEXT * TD_NEXT;

/// Composite cofactors below `2^RHO_BITS` are split with Pollard rho, larger
/// ones with ECM.
const RHO_BITS: u32 = 40;

// A cofactor has all prime factors >= TD_NEXT, so a perfect k-th power needs
// TD_NEXT^k <= 2^64; with TD_NEXT^11 > 2^64 only k in {2, 3, 5, 7} (and their
// products, found by repetition) can occur. Checked at compile time:
const _: () = assert!((TD_NEXT as u128).pow(11) > u64::MAX as u128);
const _: () = assert!(is_prime_const(TD_NEXT) && TD_NEXT > TD_BOUND);
const _: () = assert!(count_odd_primes_below(TD_NEXT) == TD_COUNT);

const fn is_prime_const(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    // at most sqrt(n) iterations; only run at compile time, n < 2^13
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

const fn count_odd_primes_below(b: u64) -> usize {
    let mut c = 0;
    let mut p = 3;
    while p < b {
        if is_prime_const(p) {
            c += 1;
        }
        p += 2;
    }
    c
}

/// `a^-1 mod 2^64` for odd `a` by Newton iteration: `x = 3a ^ 2` is correct
/// to 5 bits, and each step `x *= 2 - a*x` doubles the correct bits
/// (5 -> 10 -> 20 -> 40 -> 80), so 4 steps suffice.
const fn inv_2adic(a: u64) -> u64 {
    let mut x = a.wrapping_mul(3) ^ 2;
    let mut i = 0;
    while i < 4 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// One trial-division entry: the prime, its inverse mod 2^64, and
/// `floor((2^64-1)/p)`; `p | n` iff `n.wrapping_mul(inv) <= lim`.
#[derive(Clone, Copy)]
struct TdEntry {
    p: u64,
    inv: u64,
    lim: u64,
}

const TD: [TdEntry; TD_COUNT] = {
    let mut t = [TdEntry {
        p: 0,
        inv: 0,
        lim: 0,
    }; TD_COUNT];
    let mut i = 0;
    let mut p = 3;
    while p < TD_BOUND {
        if is_prime_const(p) {
            t[i] = TdEntry {
                p,
                inv: inv_2adic(p),
                lim: u64::MAX / p,
            };
            i += 1;
        }
        p += 2;
    }
    t
};

// ---------------------------------------------------------------------------
// Montgomery arithmetic, R = 2^64
// ---------------------------------------------------------------------------

/// Montgomery context for an odd modulus `n >= 3`. Values are kept as
/// residues `a*R mod n` in `[0, n)`.
#[derive(Clone, Copy)]
struct Mont {
    n: u64,
    /// `n^-1 mod 2^64` (the positive inverse, see [`Mont::mul`]).
    ninv: u64,
    /// `R mod n`, the Montgomery form of 1.
    one: u64,
}

impl Mont {
    #[inline]
    fn new(n: u64) -> Self {
        debug_assert!(n & 1 == 1 && n > 1);
        // 2^64 mod n = (2^64 - 1) mod n + 1, which is < n because an odd
        // n > 1 cannot divide 2^64.
        Mont {
            n,
            ninv: inv_2adic(n),
            one: u64::MAX % n + 1,
        }
    }

    /// `a * b * R^-1 mod n`, for `a < 2^64`, `b < n` (so `a*b < n * 2^64`).
    ///
    /// Uses the "subtracting" REDC: with `m = lo * n^-1 mod 2^64`, `m*n` has
    /// the same low word as `T = a*b`, so `(T - m*n) / 2^64 = hi - hi(m*n)`
    /// exactly, a value in `(-n, n)`; one conditional add of `n` fixes the
    /// sign. Unlike the textbook `(T + m*n) / R` it never overflows, so it
    /// is valid for every odd `n < 2^64`.
    #[inline(always)]
    fn mul(&self, a: u64, b: u64) -> u64 {
        let t = a as u128 * b as u128;
        let lo = t as u64;
        let hi = (t >> 64) as u64;
        let m = lo.wrapping_mul(self.ninv);
        let mn_hi = ((m as u128 * self.n as u128) >> 64) as u64;
        // hi - mn_hi, plus n if that borrowed. The borrow is turned into an
        // all-ones/zero mask through the high word of a u128 difference so
        // that LLVM emits sbb/and/add: written as an `if` (or a mask from a
        // bool) it becomes a select, which the x86 backend turns into a
        // branch inside loops, and this borrow is unpredictable.
        let t = (hi as u128).wrapping_sub(mn_hi as u128);
        (t as u64).wrapping_add(((t >> 64) as u64) & self.n)
    }

    #[inline(always)]
    fn sqr(&self, a: u64) -> u64 {
        self.mul(a, a)
    }

    #[inline(always)]
    fn add(&self, a: u64, b: u64) -> u64 {
        // a, b < n. a + b = a - (n - b) mod n, and 0 < n - b <= n, so this is
        // a subtraction, which cannot overflow even when n is close to 2^64.
        self.sub(a, self.n - b)
    }

    #[inline(always)]
    fn sub(&self, a: u64, b: u64) -> u64 {
        // branch-free, as in `mul`
        let t = (a as u128).wrapping_sub(b as u128);
        (t as u64).wrapping_add(((t >> 64) as u64) & self.n)
    }

    /// `a / 2 mod n` (works on Montgomery forms too: halving commutes with
    /// multiplication by R). For odd `a`, `(a + n) / 2 = a/2 + n/2 + 1`
    /// with floor divisions, which avoids the overflow of `a + n`.
    #[inline(always)]
    fn half(&self, a: u64) -> u64 {
        (a >> 1) + (((self.n >> 1) + 1) & (a & 1).wrapping_neg())
    }

    /// Montgomery form of a small integer `k` (for k < 2^32 and any n, the
    /// product fits in u128; one 128-by-64 remainder).
    #[inline]
    fn small_to_mont(&self, k: u64) -> u64 {
        ((k as u128 * self.one as u128) % self.n as u128) as u64
    }

    /// `R^2 mod n`, used to bring arbitrary integers into Montgomery form.
    #[inline]
    fn r2(&self) -> u64 {
        ((self.one as u128 * self.one as u128) % self.n as u128) as u64
    }

    /// `2^e` (Montgomery form), `e >= 1`. Multiplying by the base 2 is a
    /// modular doubling, so this costs only the squarings (at most 63).
    #[inline]
    fn pow2(&self, e: u64) -> u64 {
        let two = self.add(self.one, self.one);
        let mut r = two;
        let mut bit = 63 - e.leading_zeros();
        // at most 63 iterations
        while bit > 0 {
            bit -= 1;
            r = self.sqr(r);
            if (e >> bit) & 1 == 1 {
                r = self.add(r, r);
            }
        }
        r
    }
}

// ---------------------------------------------------------------------------
// Small integer helpers
// ---------------------------------------------------------------------------

/// Binary (Stein) gcd: each loop iteration removes at least one bit from the
/// larger argument, so at most 128 iterations.
#[inline]
fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    b >>= b.trailing_zeros();
    // a, b odd. Branch-free step (min and |difference|): the comparison is
    // unpredictable, so a branch would mispredict half the time.
    while a != b {
        let d = a.abs_diff(b);
        a = a.min(b);
        b = d >> d.trailing_zeros();
    }
    a << shift
}

/// Jacobi symbol `(a/n)` for odd `n`. Each round is one Euclidean step, so
/// at most ~93 rounds (Lamé bound for 64-bit operands); for the small `a`
/// used by the Lucas parameter search, two or three.
fn jacobi(mut a: u64, mut n: u64) -> i32 {
    debug_assert!(n & 1 == 1);
    a %= n;
    let mut t = 1;
    while a != 0 {
        let z = a.trailing_zeros();
        a >>= z;
        if z & 1 == 1 && (n & 7 == 3 || n & 7 == 5) {
            t = -t;
        }
        if a & 3 == 3 && n & 3 == 3 {
            t = -t;
        }
        std::mem::swap(&mut a, &mut n);
        a %= n;
    }
    if n == 1 {
        t
    } else {
        0
    }
}

/// Extended Euclid: `Ok(a^-1 mod n)` if `gcd(a, n) == 1`, else `Err(gcd)`.
/// At most ~93 iterations (Lamé bound for 64-bit operands).
fn inverse_mod(a: u64, n: u64) -> Result<u64, u64> {
    let (mut r0, mut r1) = (n, a % n);
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q as i128 * t1);
    }
    if r0 != 1 {
        return Err(r0);
    }
    Ok(t0.rem_euclid(n as i128) as u64)
}

/// `floor(sqrt(x))`, exact: the f64 estimate is within 1 of the answer
/// (the rounding of `x` to 53 bits moves the root by far less than 1), and
/// the two correction loops run at most once or twice each.
#[inline]
fn isqrt(x: u64) -> u64 {
    let mut r = (x as f64).sqrt() as u64;
    // r <= 2^32; compare in u128 to avoid overflow.
    while (r as u128) * (r as u128) > x as u128 {
        r -= 1;
    }
    while ((r + 1) as u128) * ((r + 1) as u128) <= x as u128 {
        r += 1;
    }
    r
}

/// If `x = r^k` for the prime `k` (2, 3, 5 or 7), returns `r`.
#[inline]
fn exact_root(x: u64, k: u32) -> Option<u64> {
    let r = if k == 2 {
        isqrt(x)
    } else {
        // For k >= 3 the root is < 2^22, and the f64 estimate is within
        // 1e-6 of it, so rounding gives the root if x is a k-th power.
        (x as f64).powf(1.0 / k as f64).round() as u64
    };
    // check r and its neighbours exactly (at most 3 candidates)
    [r, r.wrapping_sub(1), r + 1]
        .into_iter()
        .find(|&c| c >= 2 && (c as u128).checked_pow(k) == Some(x as u128))
}

/// For `x` whose prime factors are all `>= TD_NEXT`: if `x = r^k` for a
/// prime `k`, returns `(r, k)`. Only `k` in {2, 3, 5, 7} is possible (see
/// the compile-time assertion on `TD_NEXT`); 4 root attempts at most.
fn perfect_power(x: u64) -> Option<(u64, u32)> {
    for k in [2u32, 3, 5, 7] {
        if (x as u128) < (TD_NEXT as u128).pow(k) {
            return None;
        }
        if let Some(r) = exact_root(x, k) {
            return Some((r, k));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Primality
// ---------------------------------------------------------------------------

/// Strong probable-prime test to the bases given (Montgomery forms), all
/// bases interleaved in one loop so their independent multiplication chains
/// overlap in the CPU. `n` odd, `n > 3`. At most 64 iterations for the
/// power and 63 for the squarings.
#[inline]
fn mr_bases<const K: usize>(m: &Mont, bases: [u64; K]) -> bool {
    let n = m.n;
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    let minus_one = n - m.one;
    let mut x = bases;
    let mut bit = 63 - d.leading_zeros();
    // left-to-right powering, all bases at once: at most 63 iterations
    while bit > 0 {
        bit -= 1;
        for v in x.iter_mut() {
            *v = m.sqr(*v);
        }
        if (d >> bit) & 1 == 1 {
            for (v, b) in x.iter_mut().zip(bases.iter()) {
                *v = m.mul(*v, *b);
            }
        }
    }
    let mut ok = [false; K];
    for (o, v) in ok.iter_mut().zip(x.iter()) {
        *o = *v == m.one || *v == minus_one;
    }
    // at most s - 1 <= 62 squarings
    for _ in 1..s {
        if ok.iter().all(|&o| o) {
            return true;
        }
        for (o, v) in ok.iter_mut().zip(x.iter_mut()) {
            if !*o {
                *v = m.sqr(*v);
                *o = *v == minus_one;
            }
        }
    }
    ok.iter().all(|&o| o)
}

/// Strong probable-prime test to base 2, `n` odd, `n > 3`. Uses
/// [`Mont::pow2`] (doublings instead of multiplications by the base).
/// At most 63 + 62 squarings.
#[inline]
fn mr_base2(m: &Mont) -> bool {
    let n = m.n;
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    let minus_one = n - m.one;
    let mut x = m.pow2(d);
    if x == m.one || x == minus_one {
        return true;
    }
    // at most s - 1 <= 62 iterations
    for _ in 1..s {
        x = m.sqr(x);
        if x == minus_one {
            return true;
        }
        if x == m.one {
            return false;
        }
    }
    false
}

/// Strong Lucas probable-prime test with Selfridge's method A parameters
/// (`D` = first of 5, -7, 9, -11, ... with Jacobi `(D/n) = -1`, `P = 1`,
/// `Q = (1 - D)/4`), as in Baillie–Wagstaff 1980 and the BPSW test.
/// `n` odd, `n > 3`, with no prime factor below 53 (so `n != |D|` for the
/// `D` values that can occur before the square check).
///
/// Loops: the `D` search stops after a few candidates in practice; if `n`
/// is a perfect square no `D` works, so after 8 candidates we test for a
/// square (squares are composite) — after that the expected number of
/// further candidates is tiny, and it cannot exceed about 2*ln(n)^2 (Burgess
/// style bounds on the least quadratic non-residue are far below that).
/// The Lucas chain is at most 64 steps, plus at most 63 doublings.
fn strong_lucas(m: &Mont) -> bool {
    let n = m.n;
    // Parameter search.
    let mut dabs: u64 = 5;
    let mut negative = false;
    let mut tries = 0;
    loop {
        let mut j = jacobi(dabs, n);
        if negative && n & 3 == 3 {
            j = -j; // (-1/n) = -1 when n = 3 mod 4
        }
        if j == -1 {
            break;
        }
        if j == 0 && dabs != n {
            return false; // gcd(|D|, n) > 1
        }
        tries += 1;
        if tries == 8 {
            let r = isqrt(n);
            if r * r == n {
                return false;
            }
        }
        dabs += 2;
        negative = !negative;
    }
    // D = +-dabs; Q = (1 - D) / 4.
    let dm = if negative {
        m.sub(0, m.small_to_mont(dabs))
    } else {
        m.small_to_mont(dabs)
    };
    let q = if negative {
        // D = -dabs: Q = (1 + dabs)/4 > 0
        m.small_to_mont((1 + dabs) / 4)
    } else {
        // D = dabs: Q = (1 - dabs)/4 = -((dabs - 1)/4)
        m.sub(0, m.small_to_mont((dabs - 1) / 4))
    };
    // n + 1 = d * 2^s, d odd (u128 so that n = 2^64 - 1 is fine too).
    let np1 = n as u128 + 1;
    let s = np1.trailing_zeros();
    let d = (np1 >> s) as u64;
    // U_1 = 1, V_1 = P = 1, Q^1.
    let mut u = m.one;
    let mut v = m.one;
    let mut qk = q;
    let mut bit = 63 - d.leading_zeros();
    // binary Lucas chain over the bits of d: at most 63 iterations
    while bit > 0 {
        bit -= 1;
        // k -> 2k: U_2k = U_k V_k, V_2k = V_k^2 - 2 Q^k, Q^2k = (Q^k)^2
        u = m.mul(u, v);
        v = m.sub(m.sqr(v), m.add(qk, qk));
        qk = m.sqr(qk);
        if (d >> bit) & 1 == 1 {
            // k -> k+1 with P = 1: U' = (U + V)/2, V' = (D U + V)/2
            let u1 = m.half(m.add(u, v));
            let v1 = m.half(m.add(m.mul(dm, u), v));
            u = u1;
            v = v1;
            qk = m.mul(qk, q);
        }
    }
    if u == 0 || v == 0 {
        return true;
    }
    // V_{d 2^r} for r = 1 .. s-1: at most 63 iterations
    for _ in 1..s {
        v = m.sub(m.sqr(v), m.add(qk, qk));
        if v == 0 {
            return true;
        }
        qk = m.sqr(qk);
    }
    false
}

/// Primality of an odd `n` with no prime factor below 53 (the caller checks
/// that), `n > 53`.
#[inline]
fn is_prime_odd(n: u64) -> bool {
    let m = Mont::new(n);
    if n < 1 << 32 {
        // Jaeschke: bases 2, 7, 61 are exact below 4,759,123,141.
        let one = m.one;
        let two = m.add(one, one);
        mr_bases(&m, [two, m.small_to_mont(7), m.small_to_mont(61)])
    } else {
        // BPSW: no counterexample below 2^64.
        mr_base2(&m) && strong_lucas(&m)
    }
}

/// Primality of a cofactor: odd, all prime factors `>= TD_NEXT`.
#[inline]
fn is_prime_cofactor(x: u64) -> bool {
    x < TD_NEXT_SQ || is_prime_odd(x)
}

/// `true` iff `n` is prime. Exact for every `u64`.
///
/// Small primes (up to 53) by multiplicative-inverse divisibility tests
/// (15 iterations), then Miller–Rabin bases {2, 7, 61} below 2^32 and BPSW
/// above (see the module documentation for why these are exact).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n & 1 == 0 {
        return n == 2;
    }
    // odd primes 3..=53 are the first 15 table entries: 15 iterations
    for e in TD.iter().take(15) {
        if n.wrapping_mul(e.inv) <= e.lim {
            return n == e.p;
        }
    }
    if n < 59 * 59 {
        return true;
    }
    is_prime_odd(n)
}

// ---------------------------------------------------------------------------
// Pollard-Brent rho
// ---------------------------------------------------------------------------

/// Number of steps whose differences are multiplied together before one gcd.
const RHO_BATCH: u64 = 64;

/// Brent's variant of Pollard rho for odd `n < 2^RHO_BITS`, with gcds
/// batched over [`RHO_BATCH`] steps and backtracking when a batch overshoots
/// to `gcd = n`. Returns a divisor of `n`, which is trivial (`1` or `n`) if
/// this `c` fails or `max_steps` is exceeded. Worst case about
/// `2 * max_steps + RHO_BATCH` steps; expected `O(p^1/2)` for the smallest
/// prime factor `p`.
///
/// The map is `f(y) = y^2 / R + c (mod n)` (Montgomery reduction, R = 2^64),
/// which modulo `p` is conjugate to a quadratic polynomial. Because `n` is
/// small, the reduction is left *lazy*: `redc(t) = (t + m n) / R` with
/// `m = -t / n mod R` is `< t/R + n`, so for inputs below `8n` (and
/// `n < 2^58`) it stays below `2n` without the final conditional
/// subtraction, which takes that step off the sequential critical path.
/// Values: `y < 3n`, differences `x + 3n - y < 6n`, products `< 2n`; the
/// sums stay far below 2^128 and 2^64.
fn rho_brent(n: u64, c: u64, max_steps: u64) -> u64 {
    debug_assert!(n < 1 << RHO_BITS && c < n);
    let nneg_inv = inv_2adic(n).wrapping_neg();
    let redc = |t: u128| -> u64 {
        let m = (t as u64).wrapping_mul(nneg_inv);
        ((t + m as u128 * n as u128) >> 64) as u64
    };
    let f = |y: u64| redc(y as u128 * y as u128) + c;
    let n3 = 3 * n;
    let mut y = c;
    let mut x;
    let mut ys;
    let mut q: u64 = 1;
    let mut r: u64 = 1;
    let mut g;
    // outer loop: r doubles each round, so at most log2(max_steps) + 1 rounds
    loop {
        x = y;
        for _ in 0..r {
            y = f(y);
        }
        let mut k = 0;
        // inner batches: at most r / RHO_BATCH + 1 per round
        loop {
            ys = y;
            let lim = RHO_BATCH.min(r - k);
            for _ in 0..lim {
                y = f(y);
                // x + 3n - y is congruent to x - y and positive
                q = redc(q as u128 * (x + n3 - y) as u128);
            }
            g = gcd(q, n);
            k += lim;
            if k >= r || g != 1 {
                break;
            }
        }
        if g != 1 {
            break;
        }
        r *= 2;
        if r > max_steps {
            return n;
        }
    }
    if g == n {
        // The batch overshot (or q hit 0 mod n); redo it one step at a time
        // (at most RHO_BATCH steps).
        for _ in 0..RHO_BATCH {
            ys = f(ys);
            g = gcd(x + n3 - ys, n);
            if g != 1 {
                break;
            }
        }
    }
    g
}

/// Last-resort factor finder: smallest odd divisor `>= TD_NEXT` by plain
/// division. Worst case `sqrt(n)/2` iterations (2^31 for n near 2^64);
/// never reached in testing — it exists only so that termination and
/// exactness do not depend on the randomised methods succeeding.
#[cold]
fn smallest_factor_slow(n: u64) -> u64 {
    let r = isqrt(n);
    let mut d = TD_NEXT;
    while d <= r {
        if n.is_multiple_of(d) {
            return d;
        }
        d += 2;
    }
    n
}

/// A nontrivial factor of `n < 2^RHO_BITS` using rho with `c = 1, 2, ...`
/// (at most 16 tries, each capped), then the slow fallback.
fn factor_rho(n: u64, max_steps: u64) -> u64 {
    // at most 16 polynomials
    for c in 1..=16u64 {
        let g = rho_brent(n, c, max_steps);
        if g != n && g != 1 {
            return g;
        }
    }
    smallest_factor_slow(n)
}

// ---------------------------------------------------------------------------
// ECM (elliptic curve method), Montgomery curves
// ---------------------------------------------------------------------------

/// Stage-1 multiplier: product of the largest powers `p^e <= b1` of all
/// primes `p <= b1`, as a little-endian multi-limb integer.
const fn stage1_scalar(b1: u64) -> [u64; 6] {
    let mut k = [0u64; 6];
    k[0] = 1;
    let mut p = 2;
    // b1 iterations (compile time only)
    while p <= b1 {
        if is_prime_const(p) {
            let mut q = p;
            while q * p <= b1 {
                q *= p;
            }
            let mut carry: u128 = 0;
            let mut i = 0;
            while i < 6 {
                let t = k[i] as u128 * q as u128 + carry;
                k[i] = t as u64;
                carry = t >> 64;
                i += 1;
            }
            assert!(carry == 0);
        }
        p += 1;
    }
    k
}

/// ECM parameters by the bit length of the number being split: stage-1
/// bound B1 (stage 2 covers primes up to 25 * B1) and the precomputed
/// stage-1 multiplier. The bounds follow micro-ECM's tuning for 64-bit
/// inputs, where the target factor has about half the bits.
struct EcmLevel {
    max_bits: u32,
    b1: u64,
    k: [u64; 6],
}

const ECM_LEVELS: [EcmLevel; 6] = [
    EcmLevel {
        max_bits: 42,
        b1: 35,
        k: stage1_scalar(35),
    },
    EcmLevel {
        max_bits: 49,
        b1: 70,
        k: stage1_scalar(70),
    },
    EcmLevel {
        max_bits: 52,
        b1: 85,
        k: stage1_scalar(85),
    },
    EcmLevel {
        max_bits: 58,
        b1: 125,
        k: stage1_scalar(125),
    },
    EcmLevel {
        max_bits: 62,
        b1: 165,
        k: stage1_scalar(165),
    },
    EcmLevel {
        max_bits: 64,
        b1: 205,
        k: stage1_scalar(205),
    },
];

/// A point in X:Z coordinates on `B y^2 = x^3 + A x^2 + x`.
#[derive(Clone, Copy)]
struct Pt {
    x: u64,
    z: u64,
}

/// Doubling, 5 multiplications: `X2 = (X+Z)^2 (X-Z)^2`,
/// `Z2 = 4XZ ((X-Z)^2 + a24 * 4XZ)` with `a24 = (A+2)/4`.
#[inline(always)]
fn xdbl(m: &Mont, a24: u64, p: Pt) -> Pt {
    let s = m.sqr(m.add(p.x, p.z));
    let d = m.sqr(m.sub(p.x, p.z));
    let t = m.sub(s, d);
    Pt {
        x: m.mul(s, d),
        z: m.mul(t, m.add(d, m.mul(a24, t))),
    }
}

/// Differential addition `P + Q` given `P - Q = diff`, 6 multiplications.
#[inline(always)]
fn xadd(m: &Mont, p: Pt, q: Pt, diff: Pt) -> Pt {
    let u = m.mul(m.sub(p.x, p.z), m.add(q.x, q.z));
    let v = m.mul(m.add(p.x, p.z), m.sub(q.x, q.z));
    Pt {
        x: m.mul(diff.z, m.sqr(m.add(u, v))),
        z: m.mul(diff.x, m.sqr(m.sub(u, v))),
    }
}

/// Differential addition with a normalised difference (`Z = 1`), 5 mults.
#[inline(always)]
fn xadd_norm(m: &Mont, p: Pt, q: Pt, diff_x: u64) -> Pt {
    let u = m.mul(m.sub(p.x, p.z), m.add(q.x, q.z));
    let v = m.mul(m.add(p.x, p.z), m.sub(q.x, q.z));
    Pt {
        x: m.sqr(m.add(u, v)),
        z: m.mul(diff_x, m.sqr(m.sub(u, v))),
    }
}

/// Montgomery ladder `[k] P` for a small scalar `k >= 2` and a general
/// point: at most 63 steps of one addition and one doubling.
fn ladder_small(m: &Mont, a24: u64, p: Pt, k: u64) -> Pt {
    let mut r0 = p;
    let mut r1 = xdbl(m, a24, p);
    let mut bit = 63 - k.leading_zeros();
    while bit > 0 {
        bit -= 1;
        if (k >> bit) & 1 == 1 {
            r0 = xadd(m, r1, r0, p);
            r1 = xdbl(m, a24, r1);
        } else {
            r1 = xadd(m, r1, r0, p);
            r0 = xdbl(m, a24, r0);
        }
    }
    r0
}

/// Outcome of one ECM curve.
enum Curve {
    Factor(u64),
    Fail,
}

/// Classify a gcd candidate.
#[inline]
fn check(g: u64, n: u64) -> Option<Curve> {
    if g != 1 && g != n {
        Some(Curve::Factor(g))
    } else if g == n {
        Some(Curve::Fail)
    } else {
        None
    }
}

/// Runs `L` ECM curves in lockstep (`L` = 1 or 2), with Suyama parameters
/// `sigma` (arbitrary residues taken as Montgomery forms).
///
/// Why lockstep: one curve's ladder is a chain of dependent Montgomery
/// multiplications, so it is bound by multiplier latency; two independent
/// curves interleaved fill the pipeline (and share one modular inversion).
///
/// Suyama's curves (`u = s^2 - 5`, `v = 4s`, start `x = u^3/v^3`,
/// `a24 = (v-u)^3 (3u+v) / (16 u^3 v)`) have a point of order 12 built in,
/// which makes the group order more likely to be smooth. One modular
/// inversion (Montgomery's simultaneous-inversion trick across the lanes)
/// normalises both `x` (saving one multiplication per ladder addition) and
/// `a24`; if it fails, its gcd may itself be a factor.
///
/// Stage 1: Montgomery ladder over the bits of the precomputed multiplier
/// `k` (about 1.44 * B1 bits, at most 6 * 64 = 384 iterations of 10 mults
/// per lane).
/// Stage 2: baby-step giant-step over `i*D +- j` with `D = 210` (or 60 for
/// small bounds), `j` odd and coprime to `D`, up to `B2 = 25 * B1` (the
/// micro-ECM ratio; 15 and 40 measured no better): for each giant step
/// (`B2 / D + 2` of them, at most 26) two multiplications per baby (at most
/// 24 babies).
fn ecm_curves<const L: usize>(m: &Mont, r2: u64, level: &EcmLevel, sigma: [u64; L]) -> Curve {
    let n = m.n;
    let one = m.one;
    let two = m.add(one, one);
    let three = m.add(two, one);
    let four = m.add(two, two);
    let five = m.add(four, one);
    let sixteen = {
        let eight = m.add(four, four);
        m.add(eight, eight)
    };
    let zero_pt = Pt { x: 0, z: 0 };

    // ---- curve construction, per lane
    let mut x_num = [0u64; L];
    let mut a24_num = [0u64; L];
    let mut den = [0u64; L];
    for l in 0..L {
        // u = s^2 - 5, v = 4s
        let u = m.sub(m.sqr(sigma[l]), five);
        let v = m.mul(four, sigma[l]);
        let u3 = m.mul(m.sqr(u), u);
        let v3 = m.mul(m.sqr(v), v);
        // common denominator 16 u^3 v^4 = (16 u^3 v) * v^3
        let a24den = m.mul(m.mul(sixteen, u3), v);
        den[l] = m.mul(a24den, v3);
        // x = u^3 / v^3 = (u^3 * 16 u^3 v) / den
        x_num[l] = m.mul(u3, a24den);
        // a24 = (v-u)^3 (3u+v) / (16 u^3 v) = (v-u)^3 (3u+v) v^3 / den
        let vmu = m.sub(v, u);
        let t = m.mul(m.mul(m.sqr(vmu), vmu), m.add(m.mul(three, u), v));
        a24_num[l] = m.mul(t, v3);
    }
    // simultaneous inversion: prefix products, one inverse, walk back
    let mut prefix = [one; L];
    let mut acc = one;
    for l in 0..L {
        prefix[l] = acc;
        acc = m.mul(acc, den[l]);
    }
    // take the product out of Montgomery form, invert the plain integer,
    // and bring the inverse back in with one multiplication by R^2
    let mut inv = match inverse_mod(m.mul(acc, 1), n) {
        Ok(i) => m.mul(i, r2),
        Err(g) => {
            return if g != n && g != 1 {
                Curve::Factor(g)
            } else {
                Curve::Fail
            };
        }
    };
    let mut x0 = [0u64; L];
    let mut a24 = [0u64; L];
    for l in (0..L).rev() {
        let inv_l = m.mul(inv, prefix[l]);
        inv = m.mul(inv, den[l]);
        x0[l] = m.mul(x_num[l], inv_l);
        a24[l] = m.mul(a24_num[l], inv_l);
    }

    // ---- stage 1: ladder over the bits of k (most significant first),
    // invariant R1 - R0 = P. (The branch on the bit is cheap: the same
    // scalar is used for every curve, so the predictor learns its pattern;
    // a branch-free conditional-swap ladder measured about 7% slower.)
    let k = &level.k;
    let mut top = k.len() - 1;
    while k[top] == 0 {
        top -= 1;
    }
    let mut r0 = [zero_pt; L];
    let mut r1 = [zero_pt; L];
    for l in 0..L {
        r0[l] = Pt { x: x0[l], z: one };
        r1[l] = xdbl(m, a24[l], r0[l]);
    }
    let mut first = true;
    // at most 6 * 64 bits
    for &w in k[..=top].iter().rev() {
        let start = if first { 63 - w.leading_zeros() } else { 64 };
        first = false;
        for bit in (0..start).rev() {
            if (w >> bit) & 1 == 1 {
                for l in 0..L {
                    r0[l] = xadd_norm(m, r1[l], r0[l], x0[l]);
                    r1[l] = xdbl(m, a24[l], r1[l]);
                }
            } else {
                for l in 0..L {
                    r1[l] = xadd_norm(m, r1[l], r0[l], x0[l]);
                    r0[l] = xdbl(m, a24[l], r0[l]);
                }
            }
        }
    }
    let q = r0;
    for ql in &q {
        if let Some(Curve::Factor(f)) = check(gcd(m.mul(ql.z, 1), n), n) {
            return Curve::Factor(f);
        }
    }

    // ---- stage 2
    let b2 = 25 * level.b1;
    // D must stay below 2 * B1 so that G_1 = D Q (which covers D +- j, i.e.
    // everything from D/2 up) leaves no gap above B1.
    let dd: u64 = if level.b1 > 105 { 210 } else { 60 };
    // babies: odd j < D/2 coprime to D; jQ for all odd j via jQ + 2Q
    let mut q2 = [zero_pt; L];
    for l in 0..L {
        q2[l] = xdbl(m, a24[l], q[l]);
    }
    let mut baby = [[zero_pt; 24]; L];
    let mut baby_xz = [[0u64; 24]; L];
    let mut nb = 0;
    let mut prev = q; // (j-2)Q
    let mut cur = q; // jQ
    let mut j = 1;
    // at most D/4 = 52 iterations
    while j < dd / 2 {
        let keep = gcd(j, dd) == 1;
        for l in 0..L {
            if keep {
                baby[l][nb] = cur[l];
                baby_xz[l][nb] = m.mul(cur[l].x, cur[l].z);
            }
            let next = if j == 1 {
                xadd(m, q2[l], q[l], q[l]) // 3Q = 2Q + Q, diff Q
            } else {
                xadd(m, cur[l], q2[l], prev[l]) // (j+2)Q = jQ + 2Q, diff (j-2)Q
            };
            prev[l] = cur[l];
            cur[l] = next;
        }
        if keep {
            nb += 1;
        }
        j += 2;
    }
    // giants: G_i = i * D * Q; G_1 = D Q covers D +- j, i.e. from D/2 >= B1
    let mut gd = [zero_pt; L];
    for l in 0..L {
        gd[l] = ladder_small(m, a24[l], q[l], dd);
    }
    let giants = b2 / dd + 2;
    let mut accs = [[one; 4]; L];
    let mut gi = gd;
    let mut g_prev = gd; // G_{i-1}; unused while i == 1
                         // at most 26 giant steps
    for i in 1..=giants {
        for l in 0..L {
            let g = gi[l];
            let gxz = m.mul(g.x, g.z);
            // at most 24 babies, 4 independent accumulators per lane
            for (b, (bp, bxz)) in baby[l][..nb].iter().zip(&baby_xz[l][..nb]).enumerate() {
                // Xg Zj - Xj Zg = (Xg - Xj)(Zg + Zj) - Xg Zg + Xj Zj
                let t = m.mul(m.sub(g.x, bp.x), m.add(g.z, bp.z));
                let t = m.add(m.sub(t, gxz), *bxz);
                accs[l][b & 3] = m.mul(accs[l][b & 3], t);
            }
            // G_{i+1} = G_i + G_1 (difference G_{i-1}); G_2 = 2 G_1
            let next = if i == 1 {
                xdbl(m, a24[l], gd[l])
            } else {
                xadd(m, g, gd[l], g_prev[l])
            };
            g_prev[l] = g;
            gi[l] = next;
        }
    }
    for a in &accs {
        let total = m.mul(m.mul(a[0], a[1]), m.mul(a[2], a[3]));
        if let Some(Curve::Factor(f)) = check(gcd(m.mul(total, 1), n), n) {
            return Curve::Factor(f);
        }
    }
    Curve::Fail
}

/// A nontrivial factor of `n` (odd, composite, not a prime power, all prime
/// factors `>= TD_NEXT`, `n >= 2^RHO_BITS`) by ECM.
///
/// First one curve at each of the smaller levels (cheap attempts at a small
/// factor, which random inputs often have), then up to `16 * bits` curves
/// at the level for `n`'s size, then plain division (never reached in
/// testing: a curve succeeds with probability around 1/5, so 1000 failures
/// in a row have probability far below 1e-40), so the answer never depends
/// on luck, only the time.
fn factor_ecm(m: &Mont) -> u64 {
    let n = m.n;
    let bits = 64 - n.leading_zeros();
    let r2 = m.r2();
    // deterministic xorshift sequence for the curve parameters
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ n;
    let mut next_sigma = || loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let s = state % n;
        if s > 5 {
            return s;
        }
    };
    let level_idx = ECM_LEVELS
        .iter()
        .position(|l| bits <= l.max_bits)
        .unwrap_or(ECM_LEVELS.len() - 1);
    // quick single curves at the smaller levels (B1 <= 125, as EPR does):
    // at most 4
    for level in ECM_LEVELS[..level_idx].iter().filter(|l| l.b1 <= 125) {
        if let Curve::Factor(f) = ecm_curves(m, r2, level, [next_sigma()]) {
            return f;
        }
    }
    let level = &ECM_LEVELS[level_idx];
    // at most 8 * 64 pairs = 1024 curves (expected: a few)
    for _ in 0..8 * bits {
        if let Curve::Factor(f) = ecm_curves(m, r2, level, [next_sigma(), next_sigma()]) {
            return f;
        }
    }
    smallest_factor_slow(n)
}

/// A nontrivial factor of `x` (odd, composite, not a perfect power, all
/// prime factors `>= TD_NEXT`).
fn find_factor(x: u64) -> u64 {
    if x < 1 << RHO_BITS {
        // smallest factor < 2^20: expected at most ~1.3 * 2^10 steps
        factor_rho(x, 1 << 24)
    } else {
        factor_ecm(&Mont::new(x))
    }
}

// ---------------------------------------------------------------------------
// Divisor count
// ---------------------------------------------------------------------------

/// `d(x)` for a cofactor `x > 1`: odd, all prime factors `>= TD_NEXT`, so
/// it has at most 6 prime factors (TD_NEXT^7 > 2^64).
fn cofactor_divisors(x: u64) -> u32 {
    if is_prime_cofactor(x) {
        return 2;
    }
    if x < TD_NEXT_CUBE {
        // composite with exactly two prime factors: p^2 or p*q
        let r = isqrt(x);
        return if r * r == x { 3 } else { 4 };
    }
    // General case: a stack of (value, multiplicity) still to factor, and
    // the distinct primes found with their exponents. At most 6 primes with
    // multiplicity, so 8 slots suffice for both.
    let mut primes = [(0u64, 0u32); 8];
    let mut np = 0;
    let mut stack = [(0u64, 0u32); 8];
    stack[0] = (x, 1);
    let mut ns = 1;
    // each iteration either records a prime, takes a root (reducing the
    // number of prime factors counted with multiplicity in the stack
    // entry) or splits an entry in two; with at most 6 prime factors that
    // is at most 6 + 5 + 6 = 17 iterations
    while ns > 0 {
        ns -= 1;
        let (y, e) = stack[ns];
        if is_prime_cofactor(y) {
            match primes[..np].iter_mut().find(|(p, _)| *p == y) {
                Some(entry) => entry.1 += e,
                None => {
                    primes[np] = (y, e);
                    np += 1;
                }
            }
        } else if let Some((r, k)) = perfect_power(y) {
            stack[ns] = (r, e * k);
            ns += 1;
        } else {
            let f = find_factor(y);
            stack[ns] = (f, e);
            stack[ns + 1] = (y / f, e);
            ns += 2;
        }
    }
    primes[..np].iter().map(|&(_, e)| e + 1).product()
}

/// `d(n)`, the number of positive divisors of `n`. Exact for every `n >= 1`
/// (`d(1) = 1`); returns 0 for `n = 0`, which has no finite divisor count.
///
/// Powers of 2 by `trailing_zeros`; the odd primes below `TD_BOUND` (1024) by
/// inverse-multiplication trial division (171 primes at most, stopping
/// early once `p^2` exceeds what is left); the remaining cofactor by the
/// primality test, perfect-power test, rho or ECM (see the module docs).
pub fn divisor_count_u64(n: u64) -> u32 {
    if n == 0 {
        return 0;
    }
    let tz = n.trailing_zeros();
    let mut x = n >> tz;
    let mut d = tz + 1;
    let mut i = 0;
    // at most TD_COUNT = 171 iterations over primes; the inner exponent loop
    // runs at most 40 times in total (3^41 > 2^64)
    while i < TD_COUNT {
        let e = TD[i];
        if e.p * e.p > x {
            // what is left is 1 or a prime
            return if x == 1 { d } else { 2 * d };
        }
        let mut q = x.wrapping_mul(e.inv);
        if q <= e.lim {
            let mut k = 0;
            while q <= e.lim {
                x = q;
                k += 1;
                q = x.wrapping_mul(e.inv);
            }
            d *= k + 1;
        }
        i += 1;
    }
    if x == 1 {
        return d;
    }
    d * cofactor_divisors(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ------------------------------------------------------------------
    // Oracle: deliberately simple and independent of the code above.
    // ------------------------------------------------------------------

    fn mulmod(a: u64, b: u64, n: u64) -> u64 {
        (a as u128 * b as u128 % n as u128) as u64
    }

    fn powmod(mut b: u64, mut e: u64, n: u64) -> u64 {
        let mut r = 1 % n;
        b %= n;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, b, n);
            }
            b = mulmod(b, b, n);
            e >>= 1;
        }
        r
    }

    /// Miller-Rabin with the 12 primes up to 37 as bases: exact below
    /// 3.18e23 (Sorenson & Webster), hence for every u64.
    fn oracle_is_prime(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
        for p in BASES {
            if n.is_multiple_of(p) {
                return n == p;
            }
        }
        let s = (n - 1).trailing_zeros();
        let d = (n - 1) >> s;
        'b: for a in BASES {
            let mut x = powmod(a, d, n);
            if x == 1 || x == n - 1 {
                continue;
            }
            for _ in 1..s {
                x = mulmod(x, x, n);
                if x == n - 1 {
                    continue 'b;
                }
            }
            return false;
        }
        true
    }

    fn oracle_gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            oracle_gcd(b, a % b)
        }
    }

    /// Pollard rho, Floyd cycle finding, plain u128 `%` arithmetic.
    fn oracle_rho(n: u64) -> u64 {
        for c in 1u64.. {
            let f = |x: u64| (mulmod(x, x, n) + c) % n;
            let (mut x, mut y) = (2u64, 2u64);
            loop {
                x = f(x);
                y = f(f(y));
                let g = oracle_gcd(x.abs_diff(y), n);
                if g == n {
                    break;
                }
                if g != 1 {
                    return g;
                }
            }
        }
        unreachable!()
    }

    fn oracle_factor(n: u64, out: &mut Vec<u64>) {
        if n == 1 {
            return;
        }
        if oracle_is_prime(n) {
            out.push(n);
            return;
        }
        for p in 2..1000u64 {
            if n.is_multiple_of(p) {
                out.push(p);
                oracle_factor(n / p, out);
                return;
            }
        }
        let f = oracle_rho(n);
        oracle_factor(f, out);
        oracle_factor(n / f, out);
    }

    fn oracle_d(n: u64) -> u32 {
        let mut f = Vec::new();
        oracle_factor(n, &mut f);
        f.sort_unstable();
        let mut d = 1;
        let mut i = 0;
        while i < f.len() {
            let mut j = i;
            while j < f.len() && f[j] == f[i] {
                j += 1;
            }
            d *= (j - i) as u32 + 1;
            i = j;
        }
        d
    }

    struct SplitMix64(u64);
    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, lo: u64, hi: u64) -> u64 {
            lo + self.next() % (hi - lo)
        }
        fn prime_in(&mut self, lo: u64, hi: u64) -> u64 {
            loop {
                let p = self.below(lo, hi);
                if oracle_is_prime(p) {
                    return p;
                }
            }
        }
    }

    fn check_d(n: u64) {
        assert_eq!(divisor_count_u64(n), oracle_d(n), "d({n})");
    }

    fn check_p(n: u64) {
        assert_eq!(is_prime(n), oracle_is_prime(n), "is_prime({n})");
    }

    // ------------------------------------------------------------------
    // Exhaustive small range
    // ------------------------------------------------------------------

    #[test]
    fn exhaustive_below_2_pow_20() {
        const N: usize = 1 << 20;
        let mut d = vec![0u32; N];
        for i in 1..N {
            let mut j = i;
            while j < N {
                d[j] += 1;
                j += i;
            }
        }
        let mut composite = vec![false; N];
        for i in 2..N {
            if !composite[i] {
                let mut j = 2 * i;
                while j < N {
                    composite[j] = true;
                    j += i;
                }
            }
        }
        assert_eq!(divisor_count_u64(0), 0);
        assert!(!is_prime(0));
        for n in 1..N {
            assert_eq!(divisor_count_u64(n as u64), d[n], "d({n})");
            assert_eq!(is_prime(n as u64), n >= 2 && !composite[n], "{n}");
        }
    }

    // ------------------------------------------------------------------
    // Building blocks at their edges
    // ------------------------------------------------------------------

    #[test]
    fn montgomery_matches_u128() {
        let mut rng = SplitMix64(1);
        let moduli = [
            3u64,
            5,
            1031,
            (1 << 32) - 5,
            (1 << 32) + 1,
            (1 << 63) + 1,
            (1 << 63) - 25,
            u64::MAX,
            u64::MAX - 2,
            18446744073709551557,
        ];
        for &n in &moduli {
            let m = Mont::new(n);
            let r2 = m.r2();
            let to = |a: u64| m.mul(a % n, r2);
            let from = |a: u64| m.mul(a, 1);
            assert_eq!(from(m.one), 1 % n);
            for _ in 0..2000 {
                let a = rng.next() % n;
                let b = rng.next() % n;
                let (am, bm) = (to(a), to(b));
                assert_eq!(from(am), a);
                assert_eq!(from(m.mul(am, bm)), mulmod(a, b, n));
                assert_eq!(
                    from(m.add(am, bm)),
                    ((a as u128 + b as u128) % n as u128) as u64
                );
                assert_eq!(
                    from(m.sub(am, bm)),
                    ((a as u128 + n as u128 - b as u128) % n as u128) as u64
                );
                assert_eq!(mulmod(from(m.half(am)), 2, n), a);
                let e = rng.next();
                if e > 0 {
                    assert_eq!(from(m.pow2(e)), powmod(2, e, n));
                }
            }
            // extremes
            for a in [0, 1, n - 1] {
                for b in [0, 1, n - 1] {
                    assert_eq!(from(m.mul(to(a), to(b))), mulmod(a, b, n));
                }
            }
        }
    }

    #[test]
    fn helpers() {
        let mut rng = SplitMix64(2);
        for _ in 0..20000 {
            let a = rng.next() >> (rng.next() % 64);
            let b = rng.next() >> (rng.next() % 64);
            assert_eq!(gcd(a, b), oracle_gcd(a, b));
            let n = rng.next() | 1;
            if n > 1 {
                match inverse_mod(a, n) {
                    Ok(i) => assert_eq!(mulmod(a % n, i, n), 1),
                    Err(g) => assert_eq!(g, oracle_gcd(a % n, n)),
                }
            }
            let x = rng.next() >> (rng.next() % 64);
            let r = isqrt(x) as u128;
            assert!(r * r <= x as u128 && (r + 1) * (r + 1) > x as u128);
        }
        for x in [
            0u64,
            1,
            2,
            3,
            4,
            u64::MAX,
            u64::MAX - 1,
            (u32::MAX as u64).pow(2),
            (u32::MAX as u64).pow(2) - 1,
        ] {
            let r = isqrt(x) as u128;
            assert!(r * r <= x as u128 && (r + 1) * (r + 1) > x as u128, "{x}");
        }
        // Jacobi against Euler's criterion for primes
        for &p in &[1031u64, 65537, 4294967291, 18446744073709551557] {
            for a in 1..200u64 {
                let e = powmod(a, (p - 1) / 2, p);
                let want = if e == 1 { 1 } else { -1 };
                assert_eq!(jacobi(a, p), want);
            }
        }
        assert_eq!(jacobi(5, 15), 0);
    }

    #[test]
    fn perfect_powers() {
        let primes = [1031u64, 2039, 65521, 2097143, 4294967291];
        for &p in &primes {
            for k in 2..=9u32 {
                if let Some(x) = p.checked_pow(k) {
                    let mut y = x;
                    let mut e = 1;
                    while let Some((r, j)) = perfect_power(y) {
                        y = r;
                        e *= j;
                    }
                    assert_eq!((y, e), (p, k), "{p}^{k}");
                    // neighbours are not powers of the same root
                    if let Some((r, _)) = perfect_power(x - 2) {
                        assert_ne!(r, p);
                    }
                }
            }
            assert!(perfect_power(p).is_none());
        }
        assert!(perfect_power(1031 * 1033).is_none());
        assert!(perfect_power(u64::MAX).is_none());
    }

    #[test]
    fn strong_pseudoprimes_of_each_component() {
        // Strong base-2 pseudoprimes (OEIS A001262): mr_base2 must pass them.
        for n in [
            2047u64,
            3277,
            4033,
            4681,
            8321,
            15841,
            29341,
            42799,
            49141,
            52633,
            4294967297,
            3825123056546413051,
        ] {
            assert!(mr_base2(&Mont::new(n)), "{n}");
            assert!(!is_prime(n));
        }
        // Strong Lucas pseudoprimes, Selfridge parameters (OEIS A217255):
        // strong_lucas must pass them.
        for n in [
            5459u64, 5777, 10877, 16109, 18971, 22499, 24569, 25199, 40309, 58519, 75077, 97439,
        ] {
            assert!(strong_lucas(&Mont::new(n)), "{n}");
            assert!(!is_prime(n));
        }
        // and reject many odd composites, accept primes
        let mut rng = SplitMix64(3);
        for _ in 0..20000 {
            let n = (rng.next() >> (rng.next() % 40)) | 1;
            if n < 100 || n.is_multiple_of(3) || n.is_multiple_of(5) || n.is_multiple_of(7) {
                continue;
            }
            let r = isqrt(n);
            if r * r == n {
                continue;
            }
            let m = Mont::new(n);
            if oracle_is_prime(n) {
                assert!(strong_lucas(&m) && mr_base2(&m), "{n}");
            }
        }
        // Carmichael numbers and the strong pseudoprimes to several bases
        for n in [
            561u64,
            1105,
            1729,
            2465,
            2821,
            6601,
            8911,
            3215031751,
            2152302898747,
            3474749660383,
            341550071728321,
            3825123056546413051,
        ] {
            assert!(!is_prime(n), "{n}");
            check_d(n);
        }
    }

    // ------------------------------------------------------------------
    // Edge cases named in the brief
    // ------------------------------------------------------------------

    #[test]
    fn edge_cases() {
        let p32 = 4294967291u64; // largest prime < 2^32
        let p64 = 18446744073709551557u64; // largest prime < 2^64
        let cases: Vec<u64> = vec![
            1,
            2,
            3,
            4,
            1 << 63,
            u64::MAX,
            u64::MAX - 1,
            p64,
            p64 - 2,
            p32,
            (1 << 32) + 15, // prime just above 2^32
            (1 << 32) + 1,
            3u64.pow(40),
            p32 * p32,
            4294967279 * 4294967279,
            4294967291 * 4294967279,
            4294967279 * 4294967231,
            2097143u64.pow(3),
            2097143 * 2097133 * 2097131,
            65521u64.pow(4),
            65521u64.pow(3) * 65519,
            65521u64.pow(2) * 65519 * 65537,
            1031 * 1031,
            1031 * 1033,
            1031u64.pow(6),
            1021 * 1021,
            1021 * 1031,
            1021 * 1031 * 1033,
            2u64.pow(30) * 3u64.pow(19),
            3215031751,
            3825123056546413051,
            (1 << 40) - 87,
            1 << 40,
            ((1 << 40) - 87) * 16383,
            1093 * 1093,
            3511 * 3511,
            1093 * 1093 * 3511 * 3511,
        ];
        for &n in &cases {
            check_d(n);
            check_p(n);
        }
        assert!(is_prime(p64));
        assert!(is_prime(p32));
        assert_eq!(divisor_count_u64(1), 1);
        assert_eq!(divisor_count_u64(2), 2);
        assert_eq!(divisor_count_u64(1 << 63), 64);
        assert_eq!(divisor_count_u64(3u64.pow(40)), 41);
        assert_eq!(divisor_count_u64(p32 * p32), 3);
        assert_eq!(divisor_count_u64(u64::MAX), 128); // 3*5*17*257*641*65537*6700417
        assert_eq!(divisor_count_u64(p64), 2);
        assert_eq!(divisor_count_u64(2097143u64.pow(3)), 4);
    }

    #[test]
    fn splitting_paths_directly() {
        let mut rng = SplitMix64(21);
        // rho below 2^RHO_BITS, including its top end and the smallest
        // possible factors
        for _ in 0..300 {
            let p = rng.prime_in(TD_NEXT, 1 << 20);
            let hi = ((1u64 << RHO_BITS) - 1) / p;
            let q = rng.prime_in(p.max(TD_NEXT), hi.max(p + 2));
            let n = p * q;
            if n >= 1 << RHO_BITS || p == q {
                continue;
            }
            let f = factor_rho(n, 1 << 24);
            assert!(f > 1 && f < n && n.is_multiple_of(f), "{n}");
        }
        let n = 1048573 * 1048571; // just below 2^40
        assert!(n < 1 << RHO_BITS);
        let f = factor_rho(n, 1 << 24);
        assert!(f == 1048573 || f == 1048571);
        // ECM from 2^40 up to 2^64, balanced and unbalanced
        for bits in [41u32, 44, 48, 52, 56, 60, 62, 63, 64] {
            for _ in 0..30 {
                let a = rng.below(11, bits as u64 / 2 + 1) as u32;
                let p = rng.prime_in(1 << (a - 1), 1 << a);
                let lo = ((1u128 << (bits - 1)) / p as u128 + 1) as u64;
                let hi = (((1u128 << bits) - 1) / p as u128) as u64;
                let q = rng.prime_in(lo.max(p + 2), hi);
                let n = p * q;
                let m = Mont::new(n);
                let f = factor_ecm(&m);
                assert!(f > 1 && f < n && n.is_multiple_of(f), "{n}");
                // each curve routine on its own (lanes 1 and 2)
                let r2 = m.r2();
                let lvl = ECM_LEVELS.iter().position(|l| bits <= l.max_bits).unwrap();
                let mut found = false;
                for s in 6..400u64 {
                    let c1 = ecm_curves(&m, r2, &ECM_LEVELS[lvl], [m.small_to_mont(s)]);
                    let c2 = ecm_curves(
                        &m,
                        r2,
                        &ECM_LEVELS[lvl],
                        [m.small_to_mont(s), m.small_to_mont(s + 1000)],
                    );
                    for c in [c1, c2] {
                        if let Curve::Factor(f) = c {
                            assert!(f > 1 && f < n && n.is_multiple_of(f), "{n}");
                            found = true;
                        }
                    }
                    if found {
                        break;
                    }
                }
                assert!(found, "{n}");
            }
        }
        // the last-resort fallback
        for n in [1031 * 1033u64, 1031 * 4294967291, 65521 * 65537 * 1031] {
            let f = smallest_factor_slow(n);
            assert_eq!(f, 1031);
        }
        // degenerate curve parameters must not produce wrong factors
        let n = 4294967291u64 * 4294967279;
        let m = Mont::new(n);
        for s in [
            0u64,
            1,
            n - 1,
            m.one,
            n - m.one,
            m.small_to_mont(5),
            m.small_to_mont(3),
        ] {
            let c = ecm_curves(&m, m.r2(), &ECM_LEVELS[5], [s]);
            if let Curve::Factor(f) = c {
                assert!(f > 1 && f < n && n.is_multiple_of(f));
            }
        }
    }

    #[test]
    fn ranges_near_powers_of_two() {
        for base in [1u64 << 32, 1 << 40, 1 << 52, 1 << 62, 1 << 63] {
            for n in base - 300..base + 300 {
                check_d(n);
                check_p(n);
            }
        }
        for n in u64::MAX - 600..=u64::MAX {
            check_d(n);
            check_p(n);
        }
    }

    // ------------------------------------------------------------------
    // Seeded random inputs of every class
    // ------------------------------------------------------------------

    #[test]
    fn random_uniform_u64() {
        let mut rng = SplitMix64(11);
        for _ in 0..3000 {
            let n = rng.next().max(1);
            check_d(n);
            check_p(n);
        }
    }

    #[test]
    fn random_semiprimes_32bit() {
        let mut rng = SplitMix64(12);
        for _ in 0..300 {
            let p = rng.prime_in(1 << 31, 1 << 32);
            let q = rng.prime_in(1 << 31, 1 << 32);
            let n = p * q;
            let want = if p == q { 3 } else { 4 };
            assert_eq!(divisor_count_u64(n), want, "{p}*{q}");
            assert!(!is_prime(n));
        }
    }

    #[test]
    fn random_semiprimes_various_sizes() {
        // products of two primes of every split of sizes, including the
        // rho/ECM threshold and unbalanced factors
        let mut rng = SplitMix64(13);
        for _ in 0..1500 {
            let a = rng.below(10, 33) as u32;
            let b = rng.below(10, 65 - a as u64) as u32;
            let p = rng.prime_in(1 << (a - 1), 1 << a);
            let q = rng.prime_in(1 << (b - 1), 1u64 << b);
            if let Some(n) = p.checked_mul(q) {
                check_d(n);
            }
        }
    }

    #[test]
    fn random_three_and_more_primes() {
        let mut rng = SplitMix64(14);
        for _ in 0..500 {
            let p = rng.prime_in(1 << 20, 1 << 21);
            let q = rng.prime_in(1 << 20, 1 << 21);
            let r = rng.prime_in(1 << 20, 1 << 21);
            check_d(p * q * r);
        }
        for _ in 0..500 {
            // squares and cubes times another prime, and prime powers
            let p = rng.prime_in(1031, 1 << 16);
            let q = rng.prime_in(1031, 1 << 20);
            check_d(p * p * q);
            check_d(p * q * q);
            if let Some(n) = (p * p * p).checked_mul(q) {
                check_d(n);
            }
            let p32 = rng.prime_in(1 << 31, 1 << 32);
            check_d(p32 * p32);
            let p21 = rng.prime_in(1 << 20, 1 << 21);
            check_d(p21 * p21 * p21);
        }
    }

    #[test]
    fn random_2_32_to_2_40() {
        let mut rng = SplitMix64(15);
        for _ in 0..20000 {
            let n = rng.below(1 << 32, 1 << 40);
            check_d(n);
        }
    }

    #[test]
    fn random_u32() {
        let mut rng = SplitMix64(16);
        for _ in 0..50000 {
            let n = (rng.next() >> 32).max(1);
            check_d(n);
            check_p(n);
        }
    }

    #[test]
    fn random_primes_and_products_by_bit_length() {
        let mut rng = SplitMix64(17);
        for bits in 2..=64u32 {
            for _ in 0..40 {
                let lo = 1u64 << (bits - 1);
                let hi = if bits == 64 { u64::MAX } else { 1 << bits };
                let n = rng.below(lo, hi);
                check_d(n);
                check_p(n);
                let p = rng.prime_in(lo, hi);
                assert!(is_prime(p), "{p}");
                assert_eq!(divisor_count_u64(p), 2);
            }
        }
    }
}
