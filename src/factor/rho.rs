//! Pollard-Brent rho, with batched gcds, and a plain-division fallback.

use super::arith::*;
use super::*;

/// Number of steps whose differences are multiplied together before one gcd.
pub(super) const RHO_BATCH: u64 = 64;

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
pub(super) fn rho_brent(n: u64, c: u64, max_steps: u64) -> u64 {
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
pub(super) fn smallest_factor_slow(n: u64) -> u64 {
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
pub(super) fn factor_rho(n: u64, max_steps: u64) -> u64 {
    // at most 16 polynomials
    for c in 1..=16u64 {
        let g = rho_brent(n, c, max_steps);
        if g != n && g != 1 {
            return g;
        }
    }
    smallest_factor_slow(n)
}
