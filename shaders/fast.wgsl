// --algorithm fast: c(x) once per element, added to the bucket of the smallest distinct
// threshold >= x. The host turns bucket sums into answers with one prefix sum.
//
// An element within the divisor table (params.threshold, see divisors.wgsl) is one look-up;
// the others are factored by divisor_count.
//
// Loop budget per invocation (see divisors.wgsl): bucket_of 33 + divisor_count 6,562 + the
// bucket flush LOCAL_BUCKETS / WG_SIZE + 1 (5 at 256 invocations, 1,025 at the very least) =
// at most 7,620 counts, under an eighth of llvmpipe's 65,535. The barrier costs none; the
// table look-up no loop at all.

// Buckets summed in workgroup memory first (4 KiB); with more distinct thresholds than this,
// elements add straight to the global sums.
const LOCAL_BUCKETS: u32 = 1024u;

var<workgroup> local_sums: array<atomic<u32>, LOCAL_BUCKETS>;

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let buckets = params.num_thresholds;
    let i = element_index(wid, groups, lid);
    var bucket = buckets;
    var c = 0u;
    if i < params.end {
        let key = keys[i];
        bucket = bucket_of(key);
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
    if buckets <= LOCAL_BUCKETS {
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
