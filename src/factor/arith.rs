//! Small integer helpers: gcd, Jacobi symbol, modular inverse, integer roots, perfect powers.

use super::*;

/// Binary (Stein) gcd: each loop iteration removes at least one bit from the
/// larger argument, so at most 128 iterations.
#[inline]
pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
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
pub(super) fn jacobi(mut a: u64, mut n: u64) -> i32 {
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
pub(super) fn inverse_mod(a: u64, n: u64) -> Result<u64, u64> {
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
pub(super) fn isqrt(x: u64) -> u64 {
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
pub(super) fn exact_root(x: u64, k: u32) -> Option<u64> {
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
pub(super) fn perfect_power(x: u64) -> Option<(u64, u32)> {
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
