//! ECM with Montgomery curves: stage 1 by a ladder, a baby-step/giant-step stage 2, two curves
//! at a time.

use super::arith::*;
use super::mont::*;
use super::rho::*;
use super::trial::*;

/// Stage-1 multiplier: product of the largest powers `p^e <= b1` of all
/// primes `p <= b1`, as a little-endian multi-limb integer.
pub(super) const fn stage1_scalar(b1: u64) -> [u64; 6] {
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
pub(super) struct EcmLevel {
    pub(super) max_bits: u32,
    pub(super) b1: u64,
    pub(super) k: [u64; 6],
}

pub(super) const ECM_LEVELS: [EcmLevel; 6] = [
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
pub(super) struct Pt {
    pub(super) x: u64,
    pub(super) z: u64,
}

/// Doubling, 5 multiplications: `X2 = (X+Z)^2 (X-Z)^2`,
/// `Z2 = 4XZ ((X-Z)^2 + a24 * 4XZ)` with `a24 = (A+2)/4`.
#[inline(always)]
pub(super) fn xdbl(m: &Mont, a24: u64, p: Pt) -> Pt {
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
pub(super) fn xadd(m: &Mont, p: Pt, q: Pt, diff: Pt) -> Pt {
    let u = m.mul(m.sub(p.x, p.z), m.add(q.x, q.z));
    let v = m.mul(m.add(p.x, p.z), m.sub(q.x, q.z));
    Pt {
        x: m.mul(diff.z, m.sqr(m.add(u, v))),
        z: m.mul(diff.x, m.sqr(m.sub(u, v))),
    }
}

/// Differential addition with a normalised difference (`Z = 1`), 5 mults.
#[inline(always)]
pub(super) fn xadd_norm(m: &Mont, p: Pt, q: Pt, diff_x: u64) -> Pt {
    let u = m.mul(m.sub(p.x, p.z), m.add(q.x, q.z));
    let v = m.mul(m.add(p.x, p.z), m.sub(q.x, q.z));
    Pt {
        x: m.sqr(m.add(u, v)),
        z: m.mul(diff_x, m.sqr(m.sub(u, v))),
    }
}

/// Montgomery ladder `[k] P` for a small scalar `k >= 2` and a general
/// point: at most 63 steps of one addition and one doubling.
pub(super) fn ladder_small(m: &Mont, a24: u64, p: Pt, k: u64) -> Pt {
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
pub(super) enum Curve {
    Factor(u64),
    Fail,
}

/// Classify a gcd candidate.
#[inline]
pub(super) fn check(g: u64, n: u64) -> Option<Curve> {
    if g != 1 && g != n {
        Some(Curve::Factor(g))
    } else if g == n {
        Some(Curve::Fail)
    } else {
        None
    }
}

/// Runs `L` ECM curves in lockstep (`L` = 1 or 2), with Suyama parameters
/// `sigma` (arbitrary residues taken as Montgomery forms): the curves
/// ([`suyama_curves`]), stage 1 ([`stage1`]), then stage 2 ([`stage2`]), each
/// stage's point or product checked for a factor by a gcd with `n`.
///
/// Why lockstep: one curve's ladder is a chain of dependent Montgomery
/// multiplications, so it is bound by multiplier latency; two independent
/// curves interleaved fill the pipeline (and share one modular inversion).
pub(super) fn ecm_curves<const L: usize>(
    m: &Mont,
    r2: u64,
    level: &EcmLevel,
    sigma: [u64; L],
) -> Curve {
    let n = m.n;
    let (x0, a24) = match suyama_curves(m, r2, sigma) {
        Ok(curves) => curves,
        Err(found) => return found,
    };
    let q = stage1(m, &level.k, x0, a24);
    for ql in &q {
        if let Some(Curve::Factor(f)) = check(gcd(m.mul(ql.z, 1), n), n) {
            return Curve::Factor(f);
        }
    }
    for total in stage2(m, level.b1, a24, q) {
        if let Some(Curve::Factor(f)) = check(gcd(m.mul(total, 1), n), n) {
            return Curve::Factor(f);
        }
    }
    Curve::Fail
}

/// Each lane's starting `x` and `a24`, normalised (`z = 1`), from its Suyama
/// parameter. Suyama's curves (`u = s^2 - 5`, `v = 4s`, start `x = u^3/v^3`,
/// `a24 = (v-u)^3 (3u+v) / (16 u^3 v)`) have a point of order 12 built in,
/// which makes the group order more likely to be smooth. One modular
/// inversion (Montgomery's simultaneous-inversion trick across the lanes)
/// normalises both `x` (saving one multiplication per ladder addition) and
/// `a24`; if it fails, its gcd may itself be a factor (the `Err`).
#[inline]
fn suyama_curves<const L: usize>(
    m: &Mont,
    r2: u64,
    sigma: [u64; L],
) -> Result<([u64; L], [u64; L]), Curve> {
    let one = m.one;
    let two = m.add(one, one);
    let three = m.add(two, one);
    let four = m.add(two, two);
    let five = m.add(four, one);
    let sixteen = {
        let eight = m.add(four, four);
        m.add(eight, eight)
    };
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
    let mut inv = match inverse_mod(m.mul(acc, 1), m.n) {
        Ok(i) => m.mul(i, r2),
        Err(g) if g != m.n && g != 1 => return Err(Curve::Factor(g)),
        Err(_) => return Err(Curve::Fail),
    };
    let mut x0 = [0u64; L];
    let mut a24 = [0u64; L];
    for l in (0..L).rev() {
        let inv_l = m.mul(inv, prefix[l]);
        inv = m.mul(inv, den[l]);
        x0[l] = m.mul(x_num[l], inv_l);
        a24[l] = m.mul(a24_num[l], inv_l);
    }
    Ok((x0, a24))
}

/// Stage 1: `kP` on each lane, by a Montgomery ladder over the bits of the
/// precomputed multiplier `k` (about 1.44 * B1 bits, at most 6 * 64 = 384
/// iterations of 10 mults per lane), most significant first, with the
/// invariant R1 - R0 = P. (The branch on the bit is cheap: the same scalar is
/// used for every curve, so the predictor learns its pattern; a branch-free
/// conditional-swap ladder measured slower: docs/performance.md.)
#[inline]
fn stage1<const L: usize>(m: &Mont, k: &[u64; 6], x0: [u64; L], a24: [u64; L]) -> [Pt; L] {
    let mut top = k.len() - 1;
    while k[top] == 0 {
        top -= 1;
    }
    let mut r0 = [Pt { x: 0, z: 0 }; L];
    let mut r1 = r0;
    for l in 0..L {
        r0[l] = Pt { x: x0[l], z: m.one };
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
    r0
}

/// The baby steps of stage 2 on each lane: `jQ` for odd `j < D/2` coprime to
/// `D` (at most 24 of them), with `X_j Z_j`, and how many there are. Every odd
/// `jQ` is walked by `jQ + 2Q`.
type Babies<const L: usize> = ([[Pt; 24]; L], [[u64; 24]; L], usize);

#[inline]
fn babies<const L: usize>(m: &Mont, a24: [u64; L], q: [Pt; L], dd: u64) -> Babies<L> {
    let zero_pt = Pt { x: 0, z: 0 };
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
    (baby, baby_xz, nb)
}

/// Stage 2 from each lane's stage-1 point `q`: baby-step giant-step over
/// `i*D +- j` with `D = 210` (or 60 for small bounds), `j` odd and coprime to
/// `D` ([`babies`]), up to `B2 = 25 * B1` (the micro-ECM ratio, which measured
/// best: docs/performance.md): for each giant step (`B2 / D + 2` of them, at most 26)
/// two multiplications per baby (at most 24 babies). Returns each lane's
/// product of every `X_g Z_j - X_j Z_g`, which shares a factor with `n` when
/// the group order of the curve modulo it is smooth enough.
#[inline]
fn stage2<const L: usize>(m: &Mont, b1: u64, a24: [u64; L], q: [Pt; L]) -> [u64; L] {
    let b2 = 25 * b1;
    // D must stay below 2 * B1 so that G_1 = D Q (which covers D +- j, i.e.
    // everything from D/2 up) leaves no gap above B1.
    let dd: u64 = if b1 > 105 { 210 } else { 60 };
    let (baby, baby_xz, nb) = babies(m, a24, q, dd);
    // giants: G_i = i * D * Q; G_1 = D Q covers D +- j, i.e. from D/2 >= B1
    let mut gd = [Pt { x: 0, z: 0 }; L];
    for l in 0..L {
        gd[l] = ladder_small(m, a24[l], q[l], dd);
    }
    let giants = b2 / dd + 2;
    let mut accs = [[m.one; 4]; L];
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
    accs.map(|a| m.mul(m.mul(a[0], a[1]), m.mul(a[2], a[3])))
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
pub(super) fn factor_ecm(m: &Mont) -> u64 {
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
pub(super) fn find_factor(x: u64) -> u64 {
    if x < 1 << RHO_BITS {
        // smallest factor < 2^20: expected at most ~1.3 * 2^10 steps
        factor_rho(x, 1 << 24)
    } else {
        factor_ecm(&Mont::new(x))
    }
}
