//! The wide pipeline's host side: its state buffers and the dispatches that step every wide
//! element (2^32 and above) until none is left unfinished.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::buffers::{entry, zeroed};
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{record_pass, Params, SUBMIT_TARGET};
use crate::gpu::pipelines::WIDE_STATE_BYTES;
use crate::gpu::timer::PassTimer;
use crate::Observer;

/// Elements of 2^32 and above are counted by the wide pipeline over blocks of this many elements
/// (one state each, 4.5 MiB in all), only over blocks that hold one.
pub(super) const WIDE_BLOCK: usize = 1 << 14;

/// Steps per element of the first wide dispatch of a block, and the bounds of later ones (each
/// sized, like the slices, from the rate just measured). Every step is loop-free, so one
/// dispatch loops at most `WIDE_MAX_STEPS` + 34 times: about an eighth of llvmpipe's cap of 65,535
/// loop iterations per invocation (the budget in `shaders/wide.wgsl`).
const WIDE_FIRST_STEPS: u32 = 1 << 10;
const WIDE_MIN_STEPS: u32 = 1 << 6;
pub const WIDE_MAX_STEPS: u32 = 1 << 13;

/// The wide pipeline's group 1, what reads its count of unfinished elements back, and the steps
/// per element of the next dispatch.
pub(super) struct WideState {
    steps: u32,
    bind_group: wgpu::BindGroup,
    pending: wgpu::Buffer,
    staging: wgpu::Buffer,
    _states: wgpu::Buffer,
}

impl WideState {
    /// The wide pipeline's buffers, made when a query first meets a wide element.
    pub(super) fn new(gpu: &GpuContext) -> WideState {
        let buffer = |label, size, usage| zeroed(&gpu.device, label, size, usage);
        let states = buffer(
            "divgpu wide states",
            WIDE_BLOCK as u64 * WIDE_STATE_BYTES,
            wgpu::BufferUsages::STORAGE,
        );
        let pending = buffer(
            "divgpu wide pending",
            4,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        );
        let staging = buffer(
            "divgpu wide pending readback",
            4,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("divgpu wide bindings"),
            layout: &gpu.pipelines.wide_layout,
            entries: &[
                entry(0, states.as_entire_binding()),
                entry(1, pending.as_entire_binding()),
            ],
        });
        WideState {
            steps: WIDE_FIRST_STEPS,
            bind_group,
            pending,
            staging,
            _states: states,
        }
    }

    /// Counts the wide elements of `template.base..template.end` (one block) into the sums:
    /// dispatches of at most `self.steps` steps per element, the first starting every state
    /// from its key, until none is left unfinished. The steps follow the measured rate like the
    /// slices.
    pub(super) fn run(
        &mut self,
        gpu: &GpuContext,
        keys: &wgpu::BindGroup,
        params: &wgpu::Buffer,
        template: Params,
        timer: &mut Option<PassTimer>,
        observer: &dyn Observer,
    ) -> Result<()> {
        let pipeline = gpu.pipelines.wide(&gpu.device);
        let groups = u64::from(template.end - template.base)
            .div_ceil(u64::from(gpu.pipelines.workgroup_size));
        let mut init = 1;
        loop {
            if observer.cancelled() {
                return Err(Error::Cancelled);
            }
            let dispatch = Params {
                init,
                steps: self.steps,
                ..template
            };
            gpu.queue
                .write_buffer(params, 0, bytemuck::bytes_of(&dispatch));
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&self.pending, 0, None);
            let groups_of = [keys, &self.bind_group];
            let pass_timer = timer.as_mut();
            record_pass(
                gpu,
                &mut encoder,
                "divgpu wide",
                pipeline,
                &groups_of,
                groups,
                pass_timer,
            );
            encoder.copy_buffer_to_buffer(&self.pending, 0, &self.staging, 0, 4);
            let submitted = Instant::now();
            gpu.queue.submit([encoder.finish()]);
            let unfinished: Vec<u32> = gpu.map_read(&self.staging)?;
            if let Some(timer) = timer {
                timer.collect_if_full(gpu)?;
            }
            self.steps = next_steps(self.steps, submitted.elapsed());
            init = 0;
            if unfinished[0] == 0 {
                return Ok(());
            }
        }
    }
}

/// The next wide dispatch's steps per element: what `SUBMIT_TARGET` allows at the rate just
/// measured, at most 4 times the last, within `WIDE_MIN_STEPS..=WIDE_MAX_STEPS`.
fn next_steps(steps: u32, took: Duration) -> u32 {
    let wanted = f64::from(steps) * SUBMIT_TARGET.as_secs_f64() / took.as_secs_f64().max(1e-6);
    (wanted as u64)
        .min(u64::from(steps) * 4)
        .clamp(u64::from(WIDE_MIN_STEPS), u64::from(WIDE_MAX_STEPS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_steps_follow_the_measured_rate_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_steps(1000, ms(50)), 2000);
        assert_eq!(next_steps(1000, ms(1)), 4000); // growth capped at 4x
        assert_eq!(next_steps(1000, ms(1000)), 100);
        assert_eq!(next_steps(1000, ms(100_000)), WIDE_MIN_STEPS);
        assert_eq!(next_steps(WIDE_MAX_STEPS, ms(1)), WIDE_MAX_STEPS);
    }
}
