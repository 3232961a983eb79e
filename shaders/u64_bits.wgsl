// 64-bit comparisons and bit queries on vec2<u32> (low word, high word), for the wide pipeline
// with either arithmetic (shaders/u64.wgsl, emulated; shaders/u64_native.wgsl, SHADER_INT64):
// word operations that 64-bit integers would not make cheaper. No function here loops.

fn eq64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x == b.x && a.y == b.y;
}

fn is_zero64(a: vec2<u32>) -> bool {
    return (a.x | a.y) == 0u;
}

// trailing zeros of a != 0
fn ctz64(a: vec2<u32>) -> u32 {
    if a.x != 0u {
        return countTrailingZeros(a.x);
    }
    return 32u + countTrailingZeros(a.y);
}

// the index of the highest set bit of a != 0
fn top_bit64(a: vec2<u32>) -> u32 {
    if a.y != 0u {
        return 63u - countLeadingZeros(a.y);
    }
    return 31u - countLeadingZeros(a.x);
}

fn bit64(a: vec2<u32>, i: u32) -> bool {
    if i >= 32u {
        return ((a.y >> (i - 32u)) & 1u) != 0u;
    }
    return ((a.x >> i) & 1u) != 0u;
}
