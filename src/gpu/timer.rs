//! GPU time of compute passes from timestamp queries, on devices that have them
//! (`wgpu::Features::TIMESTAMP_QUERY`): what the passes took on the GPU itself, without the
//! submissions, waits and readbacks around them that wall-clock time also counts.

use std::time::Duration;

use crate::error::Result;
use crate::gpu::buffers::zeroed;
use crate::gpu::context::GpuContext;

/// Passes timed before their timestamps are read back (two queries each; a query set holds
/// at most 4,096).
const CAPACITY: u32 = 2048;

pub(crate) struct PassTimer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Passes given a pair of queries since the last readback.
    used: u32,
    total: Duration,
}

impl PassTimer {
    /// `None` when the device has no timestamp queries.
    pub fn new(gpu: &GpuContext) -> Option<Self> {
        if !gpu
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return None;
        }
        let bytes = u64::from(2 * CAPACITY) * 8;
        let buffer = |label, usage| zeroed(&gpu.device, label, bytes, usage);
        Some(PassTimer {
            set: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("divgpu pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * CAPACITY,
            }),
            resolve: buffer(
                "divgpu timestamps",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            staging: buffer(
                "divgpu timestamps readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            used: 0,
            total: Duration::ZERO,
        })
    }

    /// The timestamp writes of the next pass. Call [`PassTimer::collect_if_full`] after its
    /// submission.
    pub fn next_pass(&mut self) -> wgpu::ComputePassTimestampWrites<'_> {
        let first = 2 * self.used;
        self.used += 1;
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(first),
            end_of_pass_write_index: Some(first + 1),
        }
    }

    pub fn collect_if_full(&mut self, gpu: &GpuContext) -> Result<()> {
        if self.used == CAPACITY {
            self.collect(gpu)?;
        }
        Ok(())
    }

    /// Reads back the timestamps of the passes so far and adds up their durations.
    pub fn collect(&mut self, gpu: &GpuContext) -> Result<()> {
        if self.used == 0 {
            return Ok(());
        }
        let queries = 2 * self.used;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.resolve_query_set(&self.set, 0..queries, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, u64::from(queries) * 8);
        gpu.queue.submit([encoder.finish()]);
        let ticks: Vec<u64> = gpu.map_read(&self.staging)?;
        let period_ns = f64::from(gpu.queue.get_timestamp_period());
        let elapsed: u64 = ticks[..queries as usize]
            .chunks_exact(2)
            .map(|pair| pair[1].saturating_sub(pair[0]))
            .sum();
        self.total += Duration::from_secs_f64(elapsed as f64 * period_ns * 1e-9);
        self.used = 0;
        Ok(())
    }

    /// The GPU time of every pass timed, once [`PassTimer::collect`] has read the last ones.
    pub fn total(&self) -> Duration {
        self.total
    }
}
