// Both algorithms, elements of 2^32 and above ("wide"): c(x) by factoring in emulated 64-bit
// arithmetic, the twin of divisor_count_u64 in src/divisors.rs (trial division by the primes
// below TRIAL_BOUND, Miller-Rabin with Sinclair's seven bases, Pollard-Brent rho).
//
// Factoring a 64-bit value can take ~10^5 steps, more than one invocation may loop on Mesa's
// llvmpipe, which silently ends every loop of an invocation once all its loops together reach
// 65,535 counts (see divisors.wgsl). So the work is a state machine whose state lives in
// `wide_states`, one entry per element of the range [base, end): each dispatch runs at most
// `params.steps` loop-free steps per element (one loop in all), and the host dispatches again
// while `pending` counts unfinished elements. A finished element adds its count to its sum
// exactly once.
//
// Loop budget per invocation: bucket_of 33 (fast, on the first dispatch) + the step loop
// params.steps + 1, with params.steps <= WIDE_MAX_STEPS = 8,192 (src/gpu/array.rs) = at most
// 8,226 counts, 12.6% of the cap. wide_step has no loop of its own: a loop inside it would
// cost a count on every step, whichever phase each lane is in.
//
// TRIAL_PRIMES, TRIAL_PRIME_COUNT and TRIAL_BOUND are prepended by src/gpu/pipelines.rs from
// the same table the CPU uses.

struct Wide {
    phase: u32,
    // the bucket (fast) or threshold (naive) the count goes to
    slot: u32,
    // the divisor count of the prime powers found so far
    d: u32,
    // trial: index into TRIAL_PRIMES; setup: doublings; Miller-Rabin: bits left; rho: steps
    i: u32,
    // trial: exponent of the current prime; Miller-Rabin: index of the base
    e: u32,
    // Miller-Rabin: squarings done; rho: length of the batch
    j: u32,
    // Miller-Rabin: n - 1 = odd * 2^s
    s: u32,
    // the phase a gcd returns to
    gcd_then: u32,
    // rho: the increment of x^2 + c, Brent's power of two, steps of it batched so far
    c: u32,
    r: u32,
    k: u32,
    nstack: u32,
    nprimes: u32,
    _pad: u32,
    // trial: what is left to factor
    m: vec2<u32>,
    // Miller-Rabin and rho: the odd number being split, its Montgomery constants
    n: vec2<u32>,
    ninv: vec2<u32>,
    r2: vec2<u32>,
    one: vec2<u32>,
    odd: vec2<u32>,
    a: vec2<u32>,
    acc: vec2<u32>,
    x: vec2<u32>,
    y: vec2<u32>,
    saved: vec2<u32>,
    q: vec2<u32>,
    ga: vec2<u32>,
    gb: vec2<u32>,
    // factors still to split; every one has no prime factor below TRIAL_BOUND, so a 64-bit
    // value has at most six prime factors in all
    stack: array<vec2<u32>, 6>,
    // distinct primes found and their exponents
    primes: array<vec2<u32>, 6>,
    exps: array<u32, 6>,
}

@group(1) @binding(0) var<storage, read_write> wide_states: array<Wide>;
// [0]: elements of this dispatch left unfinished
@group(1) @binding(1) var<storage, read_write> pending: array<atomic<u32>>;

const WIDE_DONE: u32 = 0u;
const WIDE_TRIAL: u32 = 1u;
const WIDE_POP: u32 = 2u;
const WIDE_SETUP: u32 = 3u;
const WIDE_MR_BASE: u32 = 4u;
const WIDE_MR_POW: u32 = 5u;
const WIDE_MR_SQUARE: u32 = 6u;
const WIDE_RHO_START: u32 = 7u;
const WIDE_RHO_WALK: u32 = 8u;
const WIDE_RHO_BATCH_START: u32 = 9u;
const WIDE_RHO_BATCH: u32 = 10u;
const WIDE_RHO_BATCH_GCD: u32 = 11u;
const WIDE_RHO_BACK: u32 = 12u;
const WIDE_RHO_BACK_GCD: u32 = 13u;
const WIDE_GCD: u32 = 14u;

const NO_SLOT: u32 = 0xffffffffu;
const RHO_BATCH: u32 = 128u;
const MR_BASE_COUNT: u32 = 7u;

// Jim Sinclair's seven bases (2011): no composite below 2^64 is a strong pseudoprime to all of
// them, each taken mod n and a base of 0 mod n skipped. Five fewer than the first twelve primes,
// which took 12 base powerings for every prime cofactor.
var<private> MR_BASES: array<u32, 7> = array<u32, 7>(2u, 325u, 9375u, 28178u, 450775u, 9780504u, 1795265022u);

var<private> st: Wide;

// The 64-bit arithmetic on vec2<u32> it uses is shaders/u64.wgsl (appended by
// src/gpu/pipelines.rs); the Montgomery product below needs the state's modulus.

// Montgomery product a * b / 2^64 mod st.n for a, b < st.n (odd), with
// st.ninv = -st.n^-1 mod 2^64
fn mont_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let t = mul64_wide(a, b);
    let m = mul64_low(t[0], st.ninv);
    let mn = mul64_wide(m, st.n);
    // t + mn is a multiple of 2^64: its low half carries exactly when t's low half is not 0
    let carry = select(0u, 1u, !is_zero64(t[0]));
    let s1 = add64(t[1], mn[1]);
    let s = add64(s1, vec2<u32>(carry, 0u));
    // (t + mn) / 2^64 < 2n may take 65 bits
    let overflow = lt64(s1, t[1]) || lt64(s, s1);
    if overflow || !lt64(s, st.n) {
        return sub64(s, st.n);
    }
    return s;
}

// rho's map y -> y^2 + c (in Montgomery form, any fixed polynomial will do)
fn rho_next(y: vec2<u32>) -> vec2<u32> {
    return add_mod(mont_mul(y, y), vec2<u32>(st.c, 0u), st.n);
}

// ---- the state machine ----

// The state of element `key` before any step: done at once unless it is wide and counted.
fn wide_start(key: vec2<u32>) {
    st = Wide();
    st.phase = WIDE_DONE;
    st.slot = NO_SLOT;
    if !is_wide(key) {
        return;
    }
    if params.naive != 0u {
        if key_le(key, thresholds[params.threshold]) {
            st.slot = params.threshold;
        }
    } else {
        let b = bucket_of(key);
        if b < params.num_thresholds {
            st.slot = b;
        }
    }
    if st.slot == NO_SLOT {
        return;
    }
    let value = key_value(key);
    let twos = ctz64(value);
    st.m = shr64(value, twos);
    st.d = twos + 1u;
    st.i = 0u;
    st.e = 0u;
    st.phase = WIDE_TRIAL;
}

// Loop-free (see the budget above): the slot that already holds p, else a new one.
fn record_prime(p: vec2<u32>) {
    var k = st.nprimes;
    if st.nprimes > 5u && eq64(st.primes[5], p) { k = 5u; }
    if st.nprimes > 4u && eq64(st.primes[4], p) { k = 4u; }
    if st.nprimes > 3u && eq64(st.primes[3], p) { k = 3u; }
    if st.nprimes > 2u && eq64(st.primes[2], p) { k = 2u; }
    if st.nprimes > 1u && eq64(st.primes[1], p) { k = 1u; }
    if st.nprimes > 0u && eq64(st.primes[0], p) { k = 0u; }
    if k == st.nprimes {
        st.primes[k] = p;
        st.exps[k] = 1u;
        st.nprimes += 1u;
    } else {
        st.exps[k] += 1u;
    }
}

fn start_gcd(a: vec2<u32>, then: u32) {
    st.ga = a;
    st.gb = st.n;
    st.gcd_then = then;
    st.phase = WIDE_GCD;
}

// A factor g of st.n with 1 < g < n: both parts go on the stack (n / g is exact, and g is odd,
// so it is n times g's inverse mod 2^64).
fn found_factor(g: vec2<u32>) {
    st.stack[st.nstack] = g;
    st.stack[st.nstack + 1u] = mul64_low(st.n, inverse64(g));
    st.nstack += 2u;
    st.phase = WIDE_POP;
}

fn next_base() {
    st.e += 1u;
    st.phase = WIDE_MR_BASE;
}

fn wide_step() {
    switch st.phase {
        case WIDE_TRIAL: {
            let p = TRIAL_PRIMES[st.i];
            if mod_small(st.m, p) == 0u {
                st.m = div_small(st.m, p);
                st.e += 1u;
            } else {
                st.d *= st.e + 1u;
                st.e = 0u;
                st.i += 1u;
                // no prime factor up to p is left in m
                if st.m.y == 0u && st.m.x < p * p {
                    // so 1 or a prime
                    if st.m.x > 1u {
                        st.d *= 2u;
                    }
                    st.phase = WIDE_POP;
                } else if st.i == TRIAL_PRIME_COUNT {
                    // every prime factor left is >= TRIAL_BOUND: what is below its square is prime
                    if st.m.y == 0u && st.m.x < TRIAL_BOUND * TRIAL_BOUND {
                        st.d *= 2u;
                    } else {
                        st.stack[0] = st.m;
                        st.nstack = 1u;
                    }
                    st.phase = WIDE_POP;
                }
            }
        }
        case WIDE_POP: {
            if st.nstack == 0u {
                // loop-free: the slots not in use hold exponent 0 (wide_start zeroes st)
                st.d *= (st.exps[0] + 1u) * (st.exps[1] + 1u) * (st.exps[2] + 1u)
                    * (st.exps[3] + 1u) * (st.exps[4] + 1u) * (st.exps[5] + 1u);
                st.phase = WIDE_DONE;
            } else {
                st.nstack -= 1u;
                st.n = st.stack[st.nstack];
                if st.n.y == 0u && st.n.x < TRIAL_BOUND * TRIAL_BOUND {
                    // no prime factor below TRIAL_BOUND and below its square: prime
                    record_prime(st.n);
                } else {
                    st.ninv = sub64(vec2<u32>(0u, 0u), inverse64(st.n));
                    st.r2 = vec2<u32>(1u, 0u);
                    st.i = 0u;
                    st.phase = WIDE_SETUP;
                }
            }
        }
        case WIDE_SETUP: {
            // 2^128 mod n by doubling, once per step
            st.r2 = add_mod(st.r2, st.r2, st.n);
            st.i += 1u;
            if st.i == 128u {
                st.one = mont_mul(vec2<u32>(1u, 0u), st.r2);
                let n1 = sub64(st.n, vec2<u32>(1u, 0u));
                st.s = ctz64(n1);
                st.odd = shr64(n1, st.s);
                st.e = 0u;
                st.phase = WIDE_MR_BASE;
            }
        }
        case WIDE_MR_BASE: {
            if st.e == MR_BASE_COUNT {
                record_prime(st.n);
                st.phase = WIDE_POP;
            } else {
                // the base mod n: a 32-bit base is below every n of 2^32 and above
                var base = MR_BASES[st.e];
                if st.n.y == 0u {
                    base = base % st.n.x;
                }
                if base == 0u {
                    // n divides the base (n = 299210837 divides 1795265022): no witness here
                    next_base();
                } else {
                    st.a = mont_mul(vec2<u32>(base, 0u), st.r2);
                    st.acc = st.a;
                    st.i = top_bit64(st.odd);
                    st.phase = WIDE_MR_POW;
                }
            }
        }
        case WIDE_MR_POW: {
            // a^odd, high bit first
            if st.i == 0u {
                if eq64(st.acc, st.one) || eq64(st.acc, sub64(st.n, st.one)) {
                    next_base();
                } else {
                    st.j = 1u;
                    st.phase = WIDE_MR_SQUARE;
                }
            } else {
                st.i -= 1u;
                st.acc = mont_mul(st.acc, st.acc);
                if bit64(st.odd, st.i) {
                    st.acc = mont_mul(st.acc, st.a);
                }
            }
        }
        case WIDE_MR_SQUARE: {
            if st.j >= st.s {
                // a witness: n is composite
                st.c = 1u;
                st.phase = WIDE_RHO_START;
            } else {
                st.acc = mont_mul(st.acc, st.acc);
                st.j += 1u;
                if eq64(st.acc, sub64(st.n, st.one)) {
                    next_base();
                }
            }
        }
        case WIDE_RHO_START: {
            st.y = vec2<u32>(2u, 0u);
            st.q = st.one;
            st.r = 1u;
            st.x = st.y;
            st.i = 0u;
            st.phase = WIDE_RHO_WALK;
        }
        case WIDE_RHO_WALK: {
            // y advances r steps past x
            if st.i == st.r {
                st.k = 0u;
                st.phase = WIDE_RHO_BATCH_START;
            } else {
                st.y = rho_next(st.y);
                st.i += 1u;
            }
        }
        case WIDE_RHO_BATCH_START: {
            if st.k < st.r {
                st.saved = st.y;
                st.j = min(RHO_BATCH, st.r - st.k);
                st.i = 0u;
                st.phase = WIDE_RHO_BATCH;
            } else {
                st.r *= 2u;
                st.x = st.y;
                st.i = 0u;
                st.phase = WIDE_RHO_WALK;
            }
        }
        case WIDE_RHO_BATCH: {
            if st.i == st.j {
                start_gcd(st.q, WIDE_RHO_BATCH_GCD);
            } else {
                st.y = rho_next(st.y);
                st.q = mont_mul(st.q, abs_diff64(st.x, st.y));
                st.i += 1u;
            }
        }
        case WIDE_RHO_BATCH_GCD: {
            if eq64(st.gb, vec2<u32>(1u, 0u)) {
                st.k += RHO_BATCH;
                st.phase = WIDE_RHO_BATCH_START;
            } else if eq64(st.gb, st.n) {
                // the batch overshot: step back one product at a time
                st.phase = WIDE_RHO_BACK;
            } else {
                found_factor(st.gb);
            }
        }
        case WIDE_RHO_BACK: {
            st.saved = rho_next(st.saved);
            start_gcd(abs_diff64(st.x, st.saved), WIDE_RHO_BACK_GCD);
        }
        case WIDE_RHO_BACK_GCD: {
            if eq64(st.gb, vec2<u32>(1u, 0u)) {
                st.phase = WIDE_RHO_BACK;
            } else if eq64(st.gb, st.n) {
                // this increment failed; try the next
                st.c += 1u;
                st.phase = WIDE_RHO_START;
            } else {
                found_factor(st.gb);
            }
        }
        case WIDE_GCD: {
            // binary gcd with st.gb odd: one subtraction per step, the result in st.gb
            if is_zero64(st.ga) {
                st.phase = st.gcd_then;
            } else {
                var a = shr64(st.ga, ctz64(st.ga));
                var b = st.gb;
                if lt64(a, b) {
                    let t = a;
                    a = b;
                    b = t;
                }
                st.ga = sub64(a, b);
                st.gb = b;
            }
        }
        default: {}
    }
}

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, groups, lid);
    if i >= params.end {
        return;
    }
    let k = i - params.base;
    if params.init != 0u {
        wide_start(load_key(i));
    } else {
        st = wide_states[k];
        if st.phase == WIDE_DONE {
            return;
        }
    }
    // the only loop: budget params.steps + 1 counts (params.steps <= WIDE_MAX_STEPS)
    for (var step = 0u; step < params.steps && st.phase != WIDE_DONE; step++) {
        wide_step();
    }
    if st.phase == WIDE_DONE {
        if st.slot != NO_SLOT {
            add_to_sum(st.slot, st.d);
        }
    } else {
        atomicAdd(&pending[0], 1u);
    }
    wide_states[k] = st;
}
