// --algorithm fast: c(x) once per element, added to the bucket of the smallest distinct
// threshold >= x. The host turns bucket sums into answers with one prefix sum.
//
// An element within the divisor table (params.threshold, see divisors.wgsl) is one look-up;
// the others are factored by divisor_count.
//
// Loop budget per invocation (see divisors.wgsl): the thresholds' copy LOCAL_BUCKETS /
// WG_SIZE + 1 + bucket_of 33 (local_bucket_of's 12 is less) + divisor_count 6,562 + the
// bucket flush LOCAL_BUCKETS / WG_SIZE + 1. At 256 invocations (divgpu's workgroup, which
// WebGPU guarantees every adapter runs) the copy and the flush take 5 each: 6,605 counts, a
// tenth of llvmpipe's 65,535; even at 1 invocation, 8,645. The barriers cost none; the table
// look-up no loop at all.

// Buckets summed in workgroup memory first (4 KiB), their thresholds searched there (8 KiB);
// with more distinct thresholds than this, an element within the histogram (params.hist_top)
// adds its count to its value's slot, and the others search the storage buffer and add
// straight to the global sums. 12 KiB in all, within WebGPU's 16 KiB. LOCAL_BUCKETS in
// src/gpu/pipelines.rs is this.
const LOCAL_BUCKETS: u32 = 1024u;

var<workgroup> local_sums: array<atomic<u32>, LOCAL_BUCKETS>;
var<workgroup> local_thresholds: array<vec2<u32>, LOCAL_BUCKETS>;

// bucket_of (divisors.wgsl) over the copy in workgroup memory: budget at most 12 counts (hi -
// lo halves from at most 1,024, plus the exit test).
fn local_bucket_of(key: vec2<u32>) -> u32 {
    var lo = 0u;
    var hi = params.num_thresholds;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if key_le(key, local_thresholds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    return lo;
}

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let buckets = params.num_thresholds;
    let local = buckets <= LOCAL_BUCKETS;
    if local {
        // budget: at most LOCAL_BUCKETS / WG_SIZE + 1 counts
        for (var b = lid; b < buckets; b += WG_SIZE) {
            local_thresholds[b] = thresholds[b];
        }
    }
    // params is uniform: every invocation of the workgroup reaches this barrier
    workgroupBarrier();
    let i = element_index(wid, groups, lid);
    var bucket = buckets;
    var c = 0u;
    if i < params.end {
        let key = load_key(i);
        // below 2^32 and not at most 1: the value is the low word
        let counted = !is_wide(key) && !at_most_one(key);
        if !local && counted && key.x <= params.hist_top {
            // many thresholds: the value's histogram slot, no search (hist_top is at most the
            // table's top; the host adds the slot to the value's bucket)
            add_to_sum(buckets + key.x, table_count(key.x));
        } else {
            if local {
                bucket = local_bucket_of(key);
            } else {
                bucket = bucket_of(key);
            }
        }
        if bucket < buckets {
            c = 1u;
            if is_wide(key) {
                c = 0u; // wide.wgsl counts it
            } else if !at_most_one(key) {
                // below 2^32: the value is the low word
                if key.x <= params.threshold {
                    c = table_count(key.x);
                } else {
                    c = divisor_count(key.x);
                }
            }
        }
    }
    if local {
        if c != 0u {
            // at most WG_SIZE * 1344 per bucket: no u32 overflow
            atomicAdd(&local_sums[bucket], c);
        }
        workgroupBarrier();
        // budget: at most LOCAL_BUCKETS / WG_SIZE + 1 counts
        for (var b = lid; b < buckets; b += WG_SIZE) {
            add_to_sum(b, atomicLoad(&local_sums[b]));
        }
    } else if c != 0u {
        add_to_sum(bucket, c);
    }
}
