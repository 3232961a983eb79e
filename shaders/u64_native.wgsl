// 64-bit unsigned arithmetic on vec2<u32> (low word, high word) with the adapter's own 64-bit
// integers (SHADER_INT64): the same functions, with the same results, as shaders/u64.wgsl,
// which adapters without them use. The wide pipeline (shaders/wide.wgsl) keeps its states in
// vec2<u32>, so the two files are interchangeable. No function here loops.

fn to64(a: vec2<u32>) -> u64 {
    return u64(a.x) | (u64(a.y) << 32u);
}

fn from64(v: u64) -> vec2<u32> {
    return vec2<u32>(u32(v & 0xfffffffflu), u32(v >> 32u));
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return from64(to64(a) + to64(b));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return from64(to64(a) - to64(b));
}

fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return to64(a) < to64(b);
}

// a >> s for s in [0, 63]
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> {
    return from64(to64(a) >> s);
}

// a * b as a u64
fn mul32(a: u32, b: u32) -> vec2<u32> {
    return from64(u64(a) * u64(b));
}

// a * b mod 2^64
fn mul64_low(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return from64(to64(a) * to64(b));
}

// a * b as a u128: (low u64, high u64), from the four 32 x 32-bit products
fn mul64_wide(a: vec2<u32>, b: vec2<u32>) -> array<vec2<u32>, 2> {
    let ll = u64(a.x) * u64(b.x);
    let lh = u64(a.x) * u64(b.y);
    let hl = u64(a.y) * u64(b.x);
    let hh = u64(a.y) * u64(b.y);
    // at most 3 (2^32 - 1): no overflow
    let mid = (ll >> 32u) + (lh & 0xfffffffflu) + (hl & 0xfffffffflu);
    let low = (ll & 0xfffffffflu) | (mid << 32u);
    let high = hh + (lh >> 32u) + (hl >> 32u) + (mid >> 32u);
    return array<vec2<u32>, 2>(from64(low), from64(high));
}

// b^-1 mod 2^64 for odd b: Newton's iteration, 3 -> 6 -> 12 -> 24 -> 48 -> 96 correct bits
fn inverse64(b: vec2<u32>) -> vec2<u32> {
    let n = to64(b);
    var x = n;
    x = x * (2lu - n * x);
    x = x * (2lu - n * x);
    x = x * (2lu - n * x);
    x = x * (2lu - n * x);
    x = x * (2lu - n * x);
    return from64(x);
}

// (a + b) mod n for a, b < n
fn add_mod(a: vec2<u32>, b: vec2<u32>, n: vec2<u32>) -> vec2<u32> {
    let s = to64(a) + to64(b);
    if s < to64(a) || s >= to64(n) {
        return from64(s - to64(n));
    }
    return from64(s);
}

fn abs_diff64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let x = to64(a);
    let y = to64(b);
    return from64(select(x - y, y - x, x < y));
}

// m mod p and m / p for 1 < p < 2^16
fn mod_small(m: vec2<u32>, p: u32) -> u32 {
    return u32(to64(m) % u64(p));
}

fn div_small(m: vec2<u32>, p: u32) -> vec2<u32> {
    return from64(to64(m) / u64(p));
}
