// --algorithm naive: the post's loop. One dispatch answers one threshold over a range of one
// chunk. Loop budget per invocation (see divisors.wgsl): seed_kernel's 8,193 counts and nothing
// else (the barrier costs none), 12.5% of llvmpipe's 65,535.

var<workgroup> group_sum: atomic<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, groups, lid);
    if i < params.end {
        let key = load_key(i);
        // wide.wgsl counts the elements of 2^32 and above
        if key_le(key, thresholds[params.threshold]) && !is_wide(key) {
            var c = 1u;
            if !at_most_one(key) {
                c = seed_kernel(key.x);
            }
            // at most WG_SIZE * 1344 (the most divisors below 2^32): no u32 overflow
            atomicAdd(&group_sum, c);
        }
    }
    workgroupBarrier();
    if lid == 0u {
        add_to_sum(params.threshold, atomicLoad(&group_sum));
    }
}
