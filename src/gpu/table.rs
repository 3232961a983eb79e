//! `fast`'s divisor table, built on the GPU by a bounded parallel sieve (`shaders/sieve.wgsl`)
//! and packed two `u16` counts a word (its entry point `pack`).

use crate::divisors::DivisorTable;
use crate::error::Result;
use crate::gpu::buffers::{entry, zeroed};
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::record_pass;

/// The `k` one work item of the sieve adds: its loop's bound (the loop budget in
/// `shaders/sieve.wgsl`).
pub const SIEVE_BLOCK: u32 = 1024;

/// Work items per submission: at most 8 Mi atomic adds, so that no submission comes near a
/// driver's watchdog (docs/performance.md, "Measurements behind the code").
const ITEMS_PER_SUBMISSION: u32 = 1 << 13;

/// The largest table: `u32::isqrt(2^24) = 4,096` values of d keep the sieve's search within its
/// budget, and every count fits 16 bits.
pub const MAX_TOP: u32 = 1 << 24;

/// Bytes per `SieveParams` in `shaders/sieve.wgsl`.
pub const SIEVE_PARAMS_BYTES: u64 = 32;

mirror! {
    /// `SieveParams` in `shaders/sieve.wgsl`.
    pub(super) struct SieveParams {
        top: u32,
        d_count: u32,
        block: u32,
        base: u32,
        items: u32,
        _pad: [u32; 3],
    }
}

const _: () = assert!(std::mem::size_of::<SieveParams>() as u64 == SIEVE_PARAMS_BYTES);

/// The divisor table on the GPU (binding 6): c(n) for n in 0..=top, two u16 counts a word.
pub(super) struct DivisorTableBuffer {
    pub(super) top: u32,
    pub(super) buffer: wgpu::Buffer,
}

impl DivisorTableBuffer {
    /// The table up to `top`, built by the sieve.
    pub(super) fn build(gpu: &GpuContext, top: u32) -> Result<Self> {
        Ok(DivisorTableBuffer {
            top,
            buffer: sieve_table(gpu, top)?,
        })
    }

    /// The largest top a table may have on `gpu`: the sieve's u32 counts within one binding,
    /// and at most [`MAX_TOP`].
    pub(super) fn limit(gpu: &GpuContext) -> u64 {
        u64::from(MAX_TOP)
            .min(gpu.limits.max_storage_buffer_binding_size / 4 - 2)
            .min(gpu.limits.max_buffer_size / 4 - 2)
    }
}

/// The table's top for a `fast` query over `elements` elements whose largest threshold is
/// `max_threshold`: as far as the thresholds reach (no element above them is counted), at most
/// `limit`, and at most [`DivisorTable::ENTRIES_PER_ELEMENT`] entries per element (a small
/// array is factored for less). `None` when no element needs one.
pub(super) fn table_top(elements: usize, max_threshold: i128, limit: u64) -> Option<u32> {
    let top = u64::try_from(max_threshold)
        .ok()?
        .min(limit)
        .min(DivisorTable::ENTRIES_PER_ELEMENT * elements as u64)
        .min(u64::from(u32::MAX));
    (top >= 2).then_some(top as u32)
}

/// Where each d's work items start, for a table up to `top`: `starts[d - 1]`, then the total.
fn starts(top: u32) -> Vec<u32> {
    let d_count = top.isqrt();
    let mut starts = Vec::with_capacity(d_count as usize + 1);
    let mut total = 0u32;
    for d in 1..=d_count {
        starts.push(total);
        // k from d to top / d
        total += (top / d - d + 1).div_ceil(SIEVE_BLOCK);
    }
    starts.push(total);
    starts
}

/// c(n) for every n in 2..=`top` (`top` from 2 to [`MAX_TOP`]), packed two `u16` a word,
/// in a storage buffer: the sieve, one bounded submission at a time, then the packing.
fn sieve_table(gpu: &GpuContext, top: u32) -> Result<wgpu::Buffer> {
    assert!((2..=MAX_TOP).contains(&top), "a table up to {top}");
    let pipelines = gpu.sieve_pipelines();
    gpu.check("building the divisor table", || {
        let starts = starts(top);
        let d_count = starts.len() as u32 - 1;
        let items = starts[d_count as usize];
        let words = top / 2 + 1;
        let buffer = |label, size, usage| zeroed(&gpu.device, label, size, usage);
        // zeroed at creation, as every wgpu buffer is
        let counts = buffer(
            "divgpu sieve counts",
            u64::from(words) * 8,
            wgpu::BufferUsages::STORAGE,
        );
        let packed = buffer(
            "divgpu divisor table",
            u64::from(words) * 4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let starts = gpu.init_buffer("divgpu sieve starts", wgpu::BufferUsages::STORAGE, &starts);
        let params = gpu.init_buffer(
            "divgpu sieve params",
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            &[SieveParams::default()],
        );
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("divgpu sieve bindings"),
            layout: &pipelines.layout,
            entries: &[
                entry(0, counts.as_entire_binding()),
                entry(1, starts.as_entire_binding()),
                entry(2, params.as_entire_binding()),
                entry(3, packed.as_entire_binding()),
            ],
        });
        let wg = u64::from(gpu.workgroup_size());
        let run = |pipeline: &wgpu::ComputePipeline, base: u32, end: u32| -> Result<()> {
            let dispatch = SieveParams {
                top,
                d_count,
                block: SIEVE_BLOCK,
                base,
                items: end,
                _pad: [0; 3],
            };
            gpu.queue
                .write_buffer(&params, 0, bytemuck::bytes_of(&dispatch));
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            let groups = u64::from(end - base).div_ceil(wg);
            record_pass(
                gpu,
                &mut encoder,
                "divgpu sieve",
                pipeline,
                &[&bind],
                groups,
                None,
            );
            gpu.queue.submit([encoder.finish()]);
            gpu.wait()
        };
        for base in (0..items).step_by(ITEMS_PER_SUBMISSION as usize) {
            let end = (base + ITEMS_PER_SUBMISSION).min(items);
            run(&pipelines.sieve, base, end)?;
        }
        run(&pipelines.pack, 0, words)?;
        Ok(packed)
    })
}

/// c(n) for n in 0..=`top` as the GPU's sieve builds them (entries 0 and 1, which the
/// shaders never read, are 0 and 1), read back: for tests.
pub fn sieve_counts(gpu: &GpuContext, top: u32) -> Result<Vec<u16>> {
    let _turn = gpu.turn();
    let table = sieve_table(gpu, top)?;
    let words: Vec<u32> = gpu.read_back(&table, table.size())?;
    Ok(words
        .iter()
        .flat_map(|&w| [w as u16, (w >> 16) as u16])
        .take(top as usize + 1)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work items as the shader walks them (its search for d, its range of k), against
    /// divisor counts by trial of every d: the host's `starts` give each pair exactly once.
    #[test]
    fn work_items_add_up_to_every_divisor_count() {
        for top in [2u32, 3, 4, 15, 16, 17, 1000, 4097, 65_537] {
            let starts = starts(top);
            let d_count = starts.len() - 1;
            let mut counts = vec![0u32; top as usize + 1];
            for item in 0..starts[d_count] {
                let lo = starts.partition_point(|&s| s <= item) - 1;
                let d = lo as u32 + 1;
                let first = d + (item - starts[lo]) * SIEVE_BLOCK;
                let last = (first + SIEVE_BLOCK - 1).min(top / d);
                assert!(first <= last, "top {top}: item {item} is empty");
                for k in first..=last {
                    counts[(d * k) as usize] += if k == d { 1 } else { 2 };
                }
            }
            for (n, &c) in counts.iter().enumerate().skip(1) {
                let by_trial = (1..=n).filter(|d| n % d == 0).count() as u32;
                assert_eq!(c, by_trial, "top {top}, n {n}");
            }
        }
        // the largest table's search stays within its budget: 4,096 values of d
        assert_eq!(MAX_TOP.isqrt(), 4096);
    }
}
