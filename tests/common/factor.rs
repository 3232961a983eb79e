//! An oracle for c(x) on any 64-bit value that shares no code with divgpu: its own prime
//! sieve, Miller-Rabin on `u128` products and Pollard's rho with Floyd's cycle finding, written
//! for plainness rather than speed. `tests/differential.rs` checks it against the post's kernel
//! and against OEIS values before trusting it.

/// The primes below `limit`, by the sieve of Eratosthenes.
pub fn primes_below(limit: u32) -> Vec<u32> {
    let mut composite = vec![false; limit as usize];
    let mut primes = Vec::new();
    for i in 2..limit as usize {
        if !composite[i] {
            primes.push(i as u32);
            let mut j = i * i;
            while j < limit as usize {
                composite[j] = true;
                j += i;
            }
        }
    }
    primes
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    (u128::from(a) * u128::from(b) % u128::from(m)) as u64
}

fn pow_mod(base: u64, exp: u64, m: u64) -> u64 {
    let mut result = 1 % m;
    let mut base = base % m;
    let mut exp = exp;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    result
}

/// Miller-Rabin with the primes up to 37 as bases: exact for every 64-bit `n`.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mut d = n - 1;
    let mut s = 0;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    'bases: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A factor of the odd composite `n` with no factor below 1000, by Pollard's rho (Floyd).
fn rho(n: u64) -> u64 {
    for c in 1u64.. {
        let f = |x: u64| (mul_mod(x, x, n) + c) % n;
        let (mut x, mut y) = (2u64, 2u64);
        loop {
            x = f(x);
            y = f(f(y));
            let g = gcd(x.abs_diff(y), n);
            if g == n {
                break; // try another c
            }
            if g > 1 {
                return g;
            }
        }
    }
    unreachable!()
}

/// The prime factors of `n >= 1`, with multiplicity, in no particular order.
pub fn prime_factors(n: u64) -> Vec<u64> {
    let mut n = n;
    let mut out = Vec::new();
    for p in 2..1000u64 {
        while n.is_multiple_of(p) {
            out.push(p);
            n /= p;
        }
    }
    let mut stack = vec![n];
    while let Some(m) = stack.pop() {
        if m == 1 {
            continue;
        }
        if is_prime(m) {
            out.push(m);
        } else {
            let g = rho(m);
            stack.push(g);
            stack.push(m / g);
        }
    }
    out
}

/// c(x): 1 for every x <= 1, else the number of divisors of x.
pub fn c(x: i128) -> u64 {
    if x <= 1 {
        return 1;
    }
    let mut factors = prime_factors(u64::try_from(x).expect("x below 2^64"));
    factors.sort_unstable();
    let mut count = 1u64;
    let mut i = 0;
    while i < factors.len() {
        let mut j = i;
        while j < factors.len() && factors[j] == factors[i] {
            j += 1;
        }
        count *= (j - i) as u64 + 1;
        i = j;
    }
    count
}

/// For each threshold, the sum of [`c`] over the elements `<= threshold`: the oracle's answers.
pub fn answers(values: &[i128], thresholds: &[i128]) -> Vec<u64> {
    let counts: Vec<u64> = values.iter().map(|&x| c(x)).collect();
    sums(values, &counts, thresholds)
}

/// For each threshold, the sum of `counts[k]` over the elements `values[k] <= threshold`: by
/// sorting and prefix sums, not by any code of divgpu's.
pub fn sums(values: &[i128], counts: &[u64], thresholds: &[i128]) -> Vec<u64> {
    let mut pairs: Vec<(i128, u64)> = values.iter().copied().zip(counts.iter().copied()).collect();
    pairs.sort_unstable();
    let mut prefix = Vec::with_capacity(pairs.len() + 1);
    prefix.push(0u64);
    for &(_, c) in &pairs {
        prefix.push(prefix.last().unwrap() + c);
    }
    thresholds
        .iter()
        .map(|&t| prefix[pairs.partition_point(|&(v, _)| v <= t)])
        .collect()
}
