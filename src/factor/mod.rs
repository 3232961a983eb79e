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

mod arith;
mod ecm;
mod mont;
mod primality;
mod rho;
#[cfg(test)]
mod tests;
mod trial;

use arith::*;
use ecm::*;
use primality::*;
use trial::*;

pub use primality::is_prime;

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
