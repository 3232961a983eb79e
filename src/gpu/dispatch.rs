//! What every dispatch shares: the `Params` the shaders read, one compute pass over a grid within
//! the device's limits, and the pacing that sizes each submission from the one before.

use std::time::Duration;

use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::PARAMS_BYTES;
use crate::gpu::timer::PassTimer;

mirror! {
    /// `Params` in `shaders/divisors.wgsl`.
    pub(super) struct Params {
        pub(super) base: u32,
        pub(super) end: u32,
        pub(super) signed_keys: u32,
        pub(super) num_thresholds: u32,
        pub(super) threshold: u32,
        pub(super) naive: u32,
        pub(super) init: u32,
        pub(super) steps: u32,
        pub(super) key_width: u32,
        pub(super) hist_top: u32,
        pub(super) _pad: [u32; 2],
    }
}

const _: () = assert!(std::mem::size_of::<Params>() as u64 == PARAMS_BYTES);

/// What one submission aims to take. Each submission is measured and the next one sized from
/// it, so none comes near a driver watchdog (Windows resets a GPU after 2 s), and Ctrl-C and the
/// progress bar are served between submissions.
pub const SUBMIT_TARGET: Duration = Duration::from_millis(100);

/// Elements in the first submission of a query, before anything has been measured.
pub(super) const FIRST_SLICE: u64 = 1 << 14;

/// Records into `encoder` one compute pass of `pipeline` over at least `workgroups` workgroups
/// (a 2D grid within the per-dimension limit), with `bind_groups` as groups 0, 1, ..., timed
/// by `timer` where there is one.
pub(super) fn record_pass(
    gpu: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    bind_groups: &[&wgpu::BindGroup],
    workgroups: u64,
    timer: Option<&mut PassTimer>,
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: timer.map(PassTimer::next_pass),
    });
    pass.set_pipeline(pipeline);
    for (index, group) in bind_groups.iter().enumerate() {
        pass.set_bind_group(index as u32, *group, &[]);
    }
    let per_dim = u64::from(gpu.limits.max_compute_workgroups_per_dimension);
    let x = workgroups.min(per_dim).max(1);
    pass.dispatch_workgroups(x as u32, workgroups.div_ceil(x) as u32, 1);
}

/// The next submission's element count: what `SUBMIT_TARGET` allows at the rate just measured,
/// at most 4 times the last (work per element varies), at least one workgroup, within the grid.
pub(super) fn next_slice(slice: u64, done: u64, took: Duration, wg: u64, max_slice: u64) -> u64 {
    if done < slice {
        return slice; // a chunk's tail says little about the rate
    }
    let rate = done as f64 / took.as_secs_f64().max(1e-6);
    let wanted = (rate * SUBMIT_TARGET.as_secs_f64()) as u64;
    wanted.min(slice * 4).clamp(wg, max_slice) / wg * wg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_measured_rate_within_bounds() {
        let ms = Duration::from_millis;
        // 1 Mi elements in 10 ms: 100 ms would allow 10 Mi, but growth is capped at 4x
        assert_eq!(next_slice(1 << 20, 1 << 20, ms(10), 256, 1 << 40), 4 << 20);
        // 1 Mi elements in 1 s: a tenth of that
        assert_eq!(
            next_slice(1 << 20, 1 << 20, ms(1000), 256, 1 << 40),
            104_704
        );
        // never below one workgroup, never above the grid
        assert_eq!(next_slice(256, 256, ms(100_000), 256, 1 << 40), 256);
        assert_eq!(next_slice(1 << 20, 1 << 20, ms(1), 256, 1 << 21), 1 << 21);
        // a short tail keeps the slice
        assert_eq!(next_slice(1 << 20, 5, ms(1), 256, 1 << 40), 1 << 20);
    }
}
