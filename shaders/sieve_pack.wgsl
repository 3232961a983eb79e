// fast's divisor table, packed: word i holds c(2i) in its low half and c(2i + 1) in its high
// half (every c(n) for n <= 2^24 is below 2^16), as divisors.wgsl's table_count reads it.
// Bindings and SieveParams as in sieve.wgsl. No loop.

override WG_SIZE: u32 = 64u;

struct SieveParams {
    top: u32,
    d_count: u32,
    block: u32,
    base: u32,
    items: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: SieveParams;
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = params.base + (wid.y * groups.x + wid.x) * WG_SIZE + lid;
    if i >= params.items {
        return;
    }
    let low = atomicLoad(&counts[2u * i]) & 0xffffu;
    let high = atomicLoad(&counts[2u * i + 1u]) & 0xffffu;
    packed[i] = low | (high << 16u);
}
