// fast's divisor table, built on the GPU: c(n) for every n in 2..=top, as the number of ways
// to write n = d * k with d <= k (2 for each such pair, 1 when d == k), over d <= sqrt(top).
// Work item (d, b) adds the k of block b of d: k from d + b * BLOCK, at most BLOCK of them, up
// to top / d. The host lists where each d's items start (src/gpu/table.rs).
//
// Entry point `pack` then packs the counts two u16 a word: word i holds c(2i) in its low half and
// c(2i + 1) in its high half (every c(n) for n <= 2^24 is below 2^16), as divisors.wgsl's
// table_count reads it.
//
// Loop budget per invocation: `main`: the search for d, at most 13 counts for up to 4,096
// values of d (2^24's square root, the largest table) including its exit test, then the k loop,
// at most BLOCK = 1,024 counts plus its exit test: at most 1,038 counts, 1.6% of llvmpipe's
// 65,535. `pack`: no loop.

override WG_SIZE: u32 = 64u;

struct SieveParams {
    // the table holds c(n) for n <= top
    top: u32,
    // d takes the values 1 ..= d_count
    d_count: u32,
    // the k of one work item
    block: u32,
    // this dispatch covers work items [base, items) (pack: words [base, items))
    base: u32,
    items: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// One u32 count per n, from zero; atomics, because work items of several d meet at one n.
@group(0) @binding(0) var<storage, read_write> counts: array<atomic<u32>>;
// starts[j]: the first work item of d = j + 1; starts[d_count]: every work item.
@group(0) @binding(1) var<storage, read> starts: array<u32>;
@group(0) @binding(2) var<uniform> params: SieveParams;
// pack: the table as divisors.wgsl binds it.
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;

fn item_index(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return params.base + (wid.y * groups.x + wid.x) * WG_SIZE + lid;
}

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = item_index(wid, groups, lid);
    if item >= params.items {
        return;
    }
    // the d of this item: the last j with starts[j] <= item (starts[0] = 0 <= item <
    // starts[d_count]); budget: at most 12 halvings of 4,096 plus the exit test
    var lo = 0u;
    var hi = params.d_count;
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if starts[mid] <= item {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let d = lo + 1u;
    let first = d + (item - starts[lo]) * params.block;
    let last = min(first + params.block - 1u, params.top / d);
    // budget: at most params.block = 1,024 counts plus the exit test
    for (var k = first; k <= last; k++) {
        atomicAdd(&counts[d * k], select(2u, 1u, k == d));
    }
}

@compute @workgroup_size(WG_SIZE)
fn pack(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = item_index(wid, groups, lid);
    if i >= params.items {
        return;
    }
    let low = atomicLoad(&counts[2u * i]) & 0xffffu;
    let high = atomicLoad(&counts[2u * i + 1u]) & 0xffffu;
    packed[i] = low | (high << 16u);
}
