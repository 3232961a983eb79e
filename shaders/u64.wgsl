// 64-bit unsigned arithmetic on vec2<u32> (low word, high word), for adapters without
// SHADER_INT64 (llvmpipe-GL has none): the wide pipeline's (shaders/wide.wgsl) arithmetic, kept
// apart from its state machine. No function here loops.

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

// a >> s for s in [0, 63]
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> {
    if s == 0u {
        return a;
    }
    if s < 32u {
        return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
    }
    return vec2<u32>(a.y >> (s - 32u), 0u);
}

// a * b as a u64
fn mul32(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // at most (2^16 - 1)^2 + 2 (2^16 - 1) = 2^32 - 1: no overflow
    let mid = p01 + (p00 >> 16u) + (p10 & 0xffffu);
    return vec2<u32>((mid << 16u) | (p00 & 0xffffu), p11 + (mid >> 16u) + (p10 >> 16u));
}

// a * b mod 2^64
fn mul64_low(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let ll = mul32(a.x, b.x);
    return vec2<u32>(ll.x, ll.y + a.x * b.y + a.y * b.x);
}

// a * b as a u128: (low u64, high u64)
fn mul64_wide(a: vec2<u32>, b: vec2<u32>) -> array<vec2<u32>, 2> {
    let ll = mul32(a.x, b.x);
    let lh = mul32(a.x, b.y);
    let hl = mul32(a.y, b.x);
    let hh = mul32(a.y, b.y);
    // the middle products, 65 bits
    let mid = add64(lh, hl);
    let mid_carry = select(0u, 1u, lt64(mid, lh));
    let w1 = ll.y + mid.x;
    let c1 = select(0u, 1u, w1 < ll.y);
    let high = add64(hh, vec2<u32>(mid.y, mid_carry));
    // high < 2^64 - 1 here (the full product is below 2^128 - 2^65), so the carry fits
    return array<vec2<u32>, 2>(vec2<u32>(ll.x, w1), add64(high, vec2<u32>(c1, 0u)));
}

// b^-1 mod 2^64 for odd b: Newton's iteration, 3 -> 6 -> 12 -> 24 -> 48 -> 96 correct bits
fn inverse64(b: vec2<u32>) -> vec2<u32> {
    let two = vec2<u32>(2u, 0u);
    var x = b;
    x = mul64_low(x, sub64(two, mul64_low(b, x)));
    x = mul64_low(x, sub64(two, mul64_low(b, x)));
    x = mul64_low(x, sub64(two, mul64_low(b, x)));
    x = mul64_low(x, sub64(two, mul64_low(b, x)));
    x = mul64_low(x, sub64(two, mul64_low(b, x)));
    return x;
}

// (a + b) mod n for a, b < n
fn add_mod(a: vec2<u32>, b: vec2<u32>, n: vec2<u32>) -> vec2<u32> {
    let s = add64(a, b);
    if lt64(s, a) || !lt64(s, n) {
        return sub64(s, n);
    }
    return s;
}

fn abs_diff64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if lt64(a, b) {
        return sub64(b, a);
    }
    return sub64(a, b);
}

// m mod p and m / p for 1 < p < 2^16, 16 bits at a time so nothing overflows
fn mod_small(m: vec2<u32>, p: u32) -> u32 {
    var r = m.y % p;
    r = ((r << 16u) | (m.x >> 16u)) % p;
    return ((r << 16u) | (m.x & 0xffffu)) % p;
}

fn div_small(m: vec2<u32>, p: u32) -> vec2<u32> {
    let hi = m.y / p;
    let r = m.y % p;
    let t1 = (r << 16u) | (m.x >> 16u);
    let t0 = ((t1 % p) << 16u) | (m.x & 0xffffu);
    return vec2<u32>(((t1 / p) << 16u) | (t0 / p), hi);
}
