//! The odd primes below `TD_BOUND` and their inverses mod 2^64, built at compile time, for trial
//! division by multiplication.

/// Trial division covers every odd prime below this bound.
pub(super) const TD_BOUND: u64 = 1024;

/// Number of odd primes below [`TD_BOUND`] (pi(1024) - 1 = 171).
pub(super) const TD_COUNT: usize = count_odd_primes_below(TD_BOUND);

/// Smallest prime above the trial-division range. After trial division every
/// prime factor of the cofactor is `>= TD_NEXT`, so a cofactor below
/// `TD_NEXT^2` is 1 or prime, and one below `TD_NEXT^3` has at most two prime
/// factors.
pub(super) const TD_NEXT: u64 = 1031;

pub(super) const TD_NEXT_SQ: u64 = TD_NEXT * TD_NEXT;
pub(super) const TD_NEXT_CUBE: u64 = TD_NEXT * TD_NEXT * TD_NEXT;

/// Composite cofactors below `2^RHO_BITS` are split with Pollard rho, larger
/// ones with ECM.
pub(super) const RHO_BITS: u32 = 40;

// A cofactor has all prime factors >= TD_NEXT, so a perfect k-th power needs
// TD_NEXT^k <= 2^64; with TD_NEXT^11 > 2^64 only k in {2, 3, 5, 7} (and their
// products, found by repetition) can occur. Checked at compile time:
const _: () = assert!((TD_NEXT as u128).pow(11) > u64::MAX as u128);
const _: () = assert!(is_prime_const(TD_NEXT) && TD_NEXT > TD_BOUND);
const _: () = assert!(count_odd_primes_below(TD_NEXT) == TD_COUNT);

pub(super) const fn is_prime_const(n: u64) -> bool {
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

pub(super) const fn count_odd_primes_below(b: u64) -> usize {
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
pub(super) const fn inv_2adic(a: u64) -> u64 {
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
pub(super) struct TdEntry {
    pub(super) p: u64,
    pub(super) inv: u64,
    pub(super) lim: u64,
}

pub(super) const TD: [TdEntry; TD_COUNT] = {
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
