//! `fast`'s divisor table, built on the GPU by a bounded parallel sieve (`shaders/sieve.wgsl`)
//! and packed two `u16` counts a word (its entry point `pack`).

use std::sync::OnceLock;

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::{compute_pipelines, storage};
use crate::gpu::query::entry;

/// The `k` one work item of the sieve adds: its loop's bound (the loop budget in
/// `shaders/sieve.wgsl`).
pub const SIEVE_BLOCK: u32 = 1024;

/// Work items per submission: at most 8 Mi atomic adds, so that no submission comes near a
/// driver's watchdog (about 40 ms each on lavapipe).
const ITEMS_PER_SUBMISSION: u32 = 1 << 13;

/// The largest table: `u32::isqrt(2^24) = 4,096` values of d keep the sieve's search within its
/// budget, and every count fits 16 bits.
pub const MAX_TOP: u32 = 1 << 24;

/// The sieve's shader, whose entry points `main` (the sieve) and `pack` build the table:
/// `(label, source)`.
pub fn sieve_source() -> (&'static str, String) {
    (
        "sieve",
        include_str!("../../shaders/sieve.wgsl").to_string(),
    )
}

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

/// The sieve's two pipelines and their bindings, built on first use.
pub(crate) struct SievePipelines {
    layout: wgpu::BindGroupLayout,
    sieve: wgpu::ComputePipeline,
    pack: wgpu::ComputePipeline,
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

impl GpuContext {
    fn sieve_pipelines(&self) -> &SievePipelines {
        self.sieve.get_or_init(|| {
            let device = &self.device;
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("divgpu sieve bindings"),
                entries: &[
                    storage(0, false),
                    storage(1, true),
                    wgpu::BindGroupLayoutEntry {
                        binding: 2,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    },
                    storage(3, false),
                ],
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("divgpu sieve pipeline layout"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let wg = self.pipelines.workgroup_size;
            let [sieve, pack]: [wgpu::ComputePipeline; 2] = compute_pipelines(
                device,
                &pipeline_layout,
                sieve_source(),
                &["main", "pack"],
                wg,
            )
            .try_into()
            .expect("two entry points");
            SievePipelines {
                layout,
                sieve,
                pack,
            }
        })
    }

    /// c(n) for every n in 2..=`top` (`top` from 2 to [`MAX_TOP`]), packed two `u16` a word,
    /// in a storage buffer: the sieve, one bounded submission at a time, then the packing.
    pub(crate) fn sieve_table(&self, top: u32) -> Result<wgpu::Buffer> {
        assert!((2..=MAX_TOP).contains(&top), "a table up to {top}");
        let pipelines = self.sieve_pipelines();
        self.check("building the divisor table", || {
            let starts = starts(top);
            let d_count = starts.len() as u32 - 1;
            let items = starts[d_count as usize];
            let words = top / 2 + 1;
            // zeroed at creation, as every wgpu buffer is
            let counts = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("divgpu sieve counts"),
                size: u64::from(words) * 8,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let packed = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("divgpu divisor table"),
                size: u64::from(words) * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let starts =
                self.init_buffer("divgpu sieve starts", wgpu::BufferUsages::STORAGE, &starts);
            let params = self.init_buffer(
                "divgpu sieve params",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                &[SieveParams::default()],
            );
            let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("divgpu sieve bindings"),
                layout: &pipelines.layout,
                entries: &[
                    entry(0, counts.as_entire_binding()),
                    entry(1, starts.as_entire_binding()),
                    entry(2, params.as_entire_binding()),
                    entry(3, packed.as_entire_binding()),
                ],
            });
            let wg = self.pipelines.workgroup_size;
            let run = |pipeline: &wgpu::ComputePipeline, base: u32, end: u32| -> Result<()> {
                let dispatch = SieveParams {
                    top,
                    d_count,
                    block: SIEVE_BLOCK,
                    base,
                    items: end,
                    _pad: [0; 3],
                };
                self.queue
                    .write_buffer(&params, 0, bytemuck::bytes_of(&dispatch));
                let mut encoder = self.device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, &bind, &[]);
                    let (x, y) = self.grid(u64::from(end - base).div_ceil(u64::from(wg)));
                    pass.dispatch_workgroups(x, y, 1);
                }
                self.queue.submit([encoder.finish()]);
                self.wait()
            };
            for base in (0..items).step_by(ITEMS_PER_SUBMISSION as usize) {
                run(
                    &pipelines.sieve,
                    base,
                    (base + ITEMS_PER_SUBMISSION).min(items),
                )?;
            }
            run(&pipelines.pack, 0, words)?;
            Ok(packed)
        })
    }

    /// c(n) for n in 0..=`top` as the GPU's sieve builds them (entries 0 and 1, which the
    /// shaders never read, are 0 and 1), read back: for tests.
    pub fn sieve_counts(&self, top: u32) -> Result<Vec<u16>> {
        let _turn = self.turn();
        let table = self.sieve_table(top)?;
        let words: Vec<u32> = self.read_back(&table, table.size())?;
        Ok(words
            .iter()
            .flat_map(|&w| [w as u16, (w >> 16) as u16])
            .take(top as usize + 1)
            .collect())
    }
}

const _: () = assert!(std::mem::size_of::<SieveParams>() as u64 == SIEVE_PARAMS_BYTES);

/// The sieve's pipelines, once per device.
pub(crate) type SieveCell = OnceLock<SievePipelines>;

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
