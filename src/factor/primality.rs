//! Primality: Miller-Rabin with bases 2, 7, 61 below 2^32, BPSW at and above.

use super::arith::*;
use super::mont::*;
use super::trial::*;

/// Strong probable-prime test to the bases given (Montgomery forms), all
/// bases interleaved in one loop so their independent multiplication chains
/// overlap in the CPU. `n` odd, `n > 3`. At most 64 iterations for the
/// power and 63 for the squarings.
#[inline]
pub(super) fn mr_bases<const K: usize>(m: &Mont, bases: [u64; K]) -> bool {
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
pub(super) fn mr_base2(m: &Mont) -> bool {
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
pub(super) fn strong_lucas(m: &Mont) -> bool {
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
pub(super) fn is_prime_odd(n: u64) -> bool {
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
pub(super) fn is_prime_cofactor(x: u64) -> bool {
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
