//! Montgomery arithmetic with R = 2^64, its corrections written as masks.

use super::*;

/// Montgomery context for an odd modulus `n >= 3`. Values are kept as
/// residues `a*R mod n` in `[0, n)`.
#[derive(Clone, Copy)]
pub(super) struct Mont {
    pub(super) n: u64,
    /// `n^-1 mod 2^64` (the positive inverse, see [`Mont::mul`]).
    pub(super) ninv: u64,
    /// `R mod n`, the Montgomery form of 1.
    pub(super) one: u64,
}

impl Mont {
    #[inline]
    pub(super) fn new(n: u64) -> Self {
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
    pub(super) fn mul(&self, a: u64, b: u64) -> u64 {
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
    pub(super) fn sqr(&self, a: u64) -> u64 {
        self.mul(a, a)
    }

    #[inline(always)]
    pub(super) fn add(&self, a: u64, b: u64) -> u64 {
        // a, b < n. a + b = a - (n - b) mod n, and 0 < n - b <= n, so this is
        // a subtraction, which cannot overflow even when n is close to 2^64.
        self.sub(a, self.n - b)
    }

    #[inline(always)]
    pub(super) fn sub(&self, a: u64, b: u64) -> u64 {
        // branch-free, as in `mul`
        let t = (a as u128).wrapping_sub(b as u128);
        (t as u64).wrapping_add(((t >> 64) as u64) & self.n)
    }

    /// `a / 2 mod n` (works on Montgomery forms too: halving commutes with
    /// multiplication by R). For odd `a`, `(a + n) / 2 = a/2 + n/2 + 1`
    /// with floor divisions, which avoids the overflow of `a + n`.
    #[inline(always)]
    pub(super) fn half(&self, a: u64) -> u64 {
        (a >> 1) + (((self.n >> 1) + 1) & (a & 1).wrapping_neg())
    }

    /// Montgomery form of a small integer `k` (for k < 2^32 and any n, the
    /// product fits in u128; one 128-by-64 remainder).
    #[inline]
    pub(super) fn small_to_mont(&self, k: u64) -> u64 {
        ((k as u128 * self.one as u128) % self.n as u128) as u64
    }

    /// `R^2 mod n`, used to bring arbitrary integers into Montgomery form.
    #[inline]
    pub(super) fn r2(&self) -> u64 {
        ((self.one as u128 * self.one as u128) % self.n as u128) as u64
    }

    /// `2^e` (Montgomery form), `e >= 1`. Multiplying by the base 2 is a
    /// modular doubling, so this costs only the squarings (at most 63).
    #[inline]
    pub(super) fn pow2(&self, e: u64) -> u64 {
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
