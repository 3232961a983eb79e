// fast's divisor table, built on the GPU: c(n) for every n in 2..=top, as the number of ways
// to write n = d * k with d <= k (2 for each such pair, 1 when d == k), over d <= sqrt(top).
// Work item (d, b) adds the k of block b of d: k from d + b * BLOCK, at most BLOCK of them, up
// to top / d. The host lists where each d's items start (src/gpu/table.rs).
//
// Loop budget per invocation: the search for d, at most 13 counts for up to 4,096 values of d
// (2^24's square root, the largest table) including its exit test, then the k loop, at most
// BLOCK = 1,024 counts plus its exit test: at most 1,038 counts, 1.6% of llvmpipe's 65,535.

override WG_SIZE: u32 = 64u;

struct SieveParams {
    // the table holds c(n) for n <= top
    top: u32,
    // d takes the values 1 ..= d_count
    d_count: u32,
    // the k of one work item
    block: u32,
    // this dispatch covers work items [base, items) (packing: words [base, items))
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

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = params.base + (wid.y * groups.x + wid.x) * WG_SIZE + lid;
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
