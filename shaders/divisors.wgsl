// Shared by every divgpu pipeline: the bindings, 64-bit keys, c(x) and exact 64-bit sums.
// The Rust twins of seed_kernel and divisor_count are in src/divisors.rs.
//
// LOOP BUDGET. Mesa's llvmpipe (behind lavapipe and llvmpipe-GL) counts loop iterations per
// SIMD vector of invocations (8 lanes on a 256-bit CPU) in ONE counter for the whole
// invocation, and silently ends every loop once it reaches 65,535, carrying on with whatever the
// variables hold. Every loop's exit test counts too, and so does an inner loop on every
// iteration of its outer loop even when it runs no iteration or sits under an `if` no lane
// takes (tests/loop_budget.rs measures all of this on the adapter itself). So each loop below
// and in the pipelines' shaders states its worst case in counts, and each pipeline's total stays
// at or below 8,226 counts, about an eighth of the cap; tests/loop_budget.rs measures every
// pipeline at its worst case.

// Invocations per workgroup, set from Rust (src/gpu/pipelines.rs) from the adapter's limits.
override WG_SIZE: u32 = 64u;

struct Params {
    // this dispatch covers elements [base, end) of the bound chunk
    base: u32,
    end: u32,
    // 1: keys are i64 values with the sign bit flipped; 0: keys are u64 values
    signed_keys: u32,
    // fast: distinct thresholds (buckets); naive: unused
    num_thresholds: u32,
    // naive: the threshold (and sum) this dispatch answers; fast: the largest value the divisor
    // table (binding 6) holds, 0 when there is none
    threshold: u32,
    // wide: 1 when the algorithm is naive (sums per threshold, not per bucket)
    naive: u32,
    // wide: 1 on the first dispatch over a range (states start from the keys)
    init: u32,
    // wide: the most steps each element takes in this dispatch
    steps: u32,
    // bytes per element in `keys`: 1, 2, 4 or 8
    key_width: u32,
    // fast: the elements of value 2 ..= hist_top add to sums slot num_thresholds + value, 0
    // when none do (see fast.wgsl)
    hist_top: u32,
    _pad0: u32,
    _pad1: u32,
}

// The chunk's elements as the array holds them: little-endian two's complement (signed_keys
// 1) or unsigned (0) integers of params.key_width bytes, packed, the last word zero-padded.
// load_key reads one as a 64-bit key. naive.wgsl and fast.wgsl count the elements below 2^32
// (whose value is the key's low word); wide.wgsl the rest.
@group(0) @binding(0) var<storage, read> keys: array<u32>;
// Threshold keys: naive, one per threshold; fast, the distinct thresholds ascending.
@group(0) @binding(1) var<storage, read> thresholds: array<vec2<u32>>;
// One u64 per threshold or bucket as (low, high) words, added to with carries; fast with a
// histogram, then one per value 0 ..= params.hist_top.
@group(0) @binding(2) var<storage, read_write> sums: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> params: Params;
// The odd primes below 2^16, ascending (6,541 of them; the CPU's own table, uploaded once):
// the trial divisors of a 32-bit value.
@group(0) @binding(4) var<storage, read> odd_primes: array<u32>;
// fast: c(n) for n = 0 ..= params.threshold, two u16 counts to a word (the host's sieve,
// src/divisors.rs, uploaded once per session); one unused word when there is no table.
@group(0) @binding(6) var<storage, read> divisor_table: array<u32>;

// c(n) from the table, for n <= params.threshold.
fn table_count(n: u32) -> u32 {
    return (divisor_table[n >> 1u] >> ((n & 1u) * 16u)) & 0xffffu;
}

// Element i of the bound chunk as an order-preserving 64-bit key, (low word, high word): the
// value with its sign bit flipped for signed elements, the value itself for unsigned ones (the
// thresholds' keys, src/gpu/keys.rs). No loop.
fn load_key(i: u32) -> vec2<u32> {
    let signed = params.signed_keys != 0u;
    if params.key_width == 8u {
        let high = keys[2u * i + 1u];
        return vec2<u32>(keys[2u * i], select(high, high ^ 0x80000000u, signed));
    }
    var word: u32;
    if params.key_width == 4u {
        word = keys[i];
    } else {
        // 1 or 2 bytes: 4 or 2 elements to a word, the first in the lowest byte
        let bits = params.key_width * 8u;
        let per_word_log2 = select(1u, 2u, params.key_width == 1u);
        let offset = (i & ((1u << per_word_log2) - 1u)) * bits;
        let packed = keys[i >> per_word_log2];
        word = select(
            extractBits(packed, offset, bits),
            bitcast<u32>(extractBits(bitcast<i32>(packed), offset, bits)),
            signed,
        );
    }
    // the word holds the value sign-extended (signed) or zero-extended to 32 bits
    if signed {
        return vec2<u32>(word, select(0x7fffffffu, 0x80000000u, bitcast<i32>(word) >= 0));
    }
    return vec2<u32>(word, 0u);
}

fn key_le(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x <= b.x);
}

// x <= 1, where c(x) = 1 whatever the divisors (0 and negatives included).
fn at_most_one(key: vec2<u32>) -> bool {
    var high = key.y;
    if params.signed_keys != 0u {
        if high < 0x80000000u {
            return true; // negative
        }
        high = high ^ 0x80000000u;
    }
    return high == 0u && key.x <= 1u;
}

// The key's value as a u64, for a key that is not negative.
fn key_value(key: vec2<u32>) -> vec2<u32> {
    if params.signed_keys != 0u {
        return vec2<u32>(key.x, key.y ^ 0x80000000u);
    }
    return key;
}

// x >= 2^32: counted by wide.wgsl, skipped by naive.wgsl and fast.wgsl.
fn is_wide(key: vec2<u32>) -> bool {
    return !at_most_one(key) && key_value(key).y != 0u;
}

// The first distinct threshold >= key, or num_thresholds when there is none (fast).
fn bucket_of(key: vec2<u32>) -> u32 {
    var lo = 0u;
    var hi = params.num_thresholds;
    // budget: at most 33 counts (hi - lo halves from below 2^32, plus the exit test)
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if key_le(key, thresholds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    return lo;
}

// The post's kernel for x >= 2: trial division by every j with j * j <= x. j stops at
// 65535, the last j whose square fits in u32 (65536^2 would wrap to 0). The loop takes eight j
// per iteration (the same divisions as the post's loop, in the same order) so that it stays far
// below llvmpipe's cap: budget at most 8,193 counts (j = 2..65,535 in steps of 8, plus the exit
// test), where one j per iteration would be 65,535 — the cap itself.
fn seed_kernel(x: u32) -> u32 {
    var ret = 2u;
    for (var j = 2u; j < 65536u && j * j <= x; j += 8u) {
        ret += seed_term(x, j) + seed_term(x, j + 1u) + seed_term(x, j + 2u)
            + seed_term(x, j + 3u) + seed_term(x, j + 4u) + seed_term(x, j + 5u)
            + seed_term(x, j + 6u) + seed_term(x, j + 7u);
    }
    return ret;
}

// What trial divisor j adds to the post's count of x: 0 unless j * j <= x and j divides x; then
// 2 (j and x / j), or 1 when j * j == x. `||` stops before j * j can wrap.
fn seed_term(x: u32, j: u32) -> u32 {
    if j >= 65536u || j * j > x || x % j != 0u {
        return 0u;
    }
    return select(1u, 2u, j * j < x);
}

// d(x) for x >= 1 by trial division with the odd primes below 2^16 after the twos (a cofactor
// with no factor below 2^16 is prime, as x < 2^32). One loop, no inner loop (an inner loop
// would cost a count on every outer iteration): each iteration divides out one factor of the
// current prime or moves on to the next. Budget: at most 6,541 primes + 20 factors (an odd
// value below 2^32 has at most 20 prime factors with multiplicity: 3^21 > 2^32) + 1 exit test
// = 6,562 counts.
fn divisor_count(x: u32) -> u32 {
    let twos = countTrailingZeros(x);
    var n = x >> twos;
    var d = twos + 1u;
    // 1 + the exponent of odd_primes[k] divided out so far
    var e = 1u;
    var k = 0u;
    let count = arrayLength(&odd_primes);
    loop {
        let p = odd_primes[k];
        if n % p == 0u {
            n = n / p;
            e += 1u;
            continue;
        }
        d *= e;
        e = 1u;
        k += 1u;
        // p < 2^16, so p * p cannot wrap
        if k == count || odd_primes[k] * odd_primes[k] > n {
            break;
        }
    }
    if n > 1u {
        d *= 2u;
    }
    return d;
}

// sums[slot] += value as a u64: each carry out of the low word is counted exactly once, so the
// total is exact whatever order the additions land in.
fn add_to_sum(slot: u32, value: u32) {
    if value == 0u {
        return;
    }
    let old = atomicAdd(&sums[2u * slot], value);
    if old + value < old {
        atomicAdd(&sums[2u * slot + 1u], 1u);
    }
}

// The element index of this invocation in a 2D grid of workgroups (65,535 per dimension),
// counted from the dispatch's base.
fn element_index(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return params.base + (wid.y * groups.x + wid.x) * WG_SIZE + lid;
}
