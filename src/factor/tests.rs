use super::arith::*;
use super::ecm::*;
use super::mont::*;
use super::primality::*;
use super::rho::*;
use super::trial::*;
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
