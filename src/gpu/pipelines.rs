//! The WGSL shaders and their compute pipelines, which share one bind group layout (and the
//! wide pipeline a second one, for its states).

use std::fmt::Write;
use std::sync::OnceLock;

use crate::divisors;
use crate::error::{Error, Result};
use crate::gpu::buffers::{init_buffer, zeroed};

/// Helpers and bindings every pipeline shares; WGSL has no `#include`, so each pipeline's module
/// is this text followed by its own.
const COMMON: &str = include_str!("../../shaders/divisors.wgsl");

/// Each pipeline's WGSL, complete (common part first): `(label, source)`. `wide` is the wide
/// pipeline with emulated 64-bit arithmetic, `wide-int64` the same with the adapter's own
/// (it needs `SHADER_INT64`).
pub fn shader_sources() -> [(&'static str, String); 4] {
    [
        (
            "naive",
            format!("{COMMON}\n{}", include_str!("../../shaders/naive.wgsl")),
        ),
        (
            "fast",
            format!("{COMMON}\n{}", include_str!("../../shaders/fast.wgsl")),
        ),
        ("wide", wide_source(false)),
        ("wide-int64", wide_source(true)),
    ]
}

/// The sieve's shader, whose entry points `main` (the sieve) and `pack` build `fast`'s divisor
/// table: `(label, source)`.
pub fn sieve_source() -> (&'static str, String) {
    (
        "sieve",
        include_str!("../../shaders/sieve.wgsl").to_string(),
    )
}

/// `shaders/wide.wgsl` after the common part and the trial primes it divides by, the CPU's own
/// ([`divisors::trial_primes`]), followed by its 64-bit comparisons (`shaders/u64_bits.wgsl`)
/// and its 64-bit arithmetic: `shaders/u64_native.wgsl`
/// with `native_int64` (the adapter's `SHADER_INT64`), `shaders/u64.wgsl` (emulated on
/// `u32` words) otherwise. The two define the same functions with the same results.
fn wide_source(native_int64: bool) -> String {
    let primes = divisors::trial_primes();
    let mut source = format!(
        "{COMMON}\nconst TRIAL_BOUND: u32 = {}u;\nconst TRIAL_PRIME_COUNT: u32 = {}u;\n\
         var<private> TRIAL_PRIMES: array<u32, {}> = array<u32, {}>(",
        divisors::TRIAL_BOUND,
        primes.len(),
        primes.len(),
        primes.len()
    );
    for (i, p) in primes.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(source, "{sep}{p}u").expect("writing to a String");
    }
    source.push_str(");\n");
    source.push_str(include_str!("../../shaders/wide.wgsl"));
    source.push('\n');
    source.push_str(include_str!("../../shaders/u64_bits.wgsl"));
    source.push('\n');
    source.push_str(if native_int64 {
        include_str!("../../shaders/u64_native.wgsl")
    } else {
        include_str!("../../shaders/u64.wgsl")
    });
    source
}

/// Invocations per workgroup on a device with these limits: `WG_SIZE` in every shader.
pub fn workgroup_size(limits: &wgpu::Limits) -> u32 {
    256.min(limits.max_compute_invocations_per_workgroup)
        .min(limits.max_compute_workgroup_size_x)
}

/// The checks wgpu adds to divgpu's shaders. Of those it would add by default, two are dropped,
/// and these shaders need neither:
/// - integer division guards: every `/` and `%` is unsigned, by a constant (2) or by a trial
///   divisor that is at least 2 (`j` from 2, `odd_primes` and TRIAL_PRIMES from 3), or in the
///   table's sieve by d >= 1;
/// - loop bounding: every loop ends, and each states its worst case beside it (the loop budget
///   in `shaders/divisors.wgsl`, measured by `tests/loop_budget.rs`). Counting loops stop at
///   fixed bounds (j < 65536, k < the prime count, step < params.steps, b < buckets <=
///   LOCAL_BUCKETS, k <= last <= 2^24 in the sieve), `bucket_of` and the sieve's search narrow
///   lo..hi every iteration, and divisor_count either divides n >= 1 by a prime >= 3 or moves
///   to the next prime.
///
/// Bounds checks stay on.
pub fn runtime_checks() -> wgpu::ShaderRuntimeChecks {
    wgpu::ShaderRuntimeChecks {
        int_div_checks: false,
        force_loop_bounding: false,
        ..wgpu::ShaderRuntimeChecks::checked()
    }
}

/// Distinct thresholds whose bucket sums (and thresholds) `fast` keeps in workgroup memory:
/// `LOCAL_BUCKETS` in `shaders/fast.wgsl`.
pub const LOCAL_BUCKETS: usize = 1024;
/// Bytes per `Params` in `shaders/divisors.wgsl`.
pub const PARAMS_BYTES: u64 = 48;
/// Bytes per `Wide` (one element's factoring state) in `shaders/wide.wgsl`.
pub const WIDE_STATE_BYTES: u64 = 288;

pub struct Pipelines {
    pub layout: wgpu::BindGroupLayout,
    /// Binding 4 of every pipeline: the odd primes below 2^16, uploaded once.
    pub odd_primes: wgpu::Buffer,
    /// Binding 6 for the queries that have no divisor table (one unused word).
    pub no_table: wgpu::Buffer,
    pub naive: wgpu::ComputePipeline,
    pub fast: wgpu::ComputePipeline,
    /// Group 1 of the wide pipeline: its states and its count of unfinished elements.
    pub wide_layout: wgpu::BindGroupLayout,
    wide_pipeline_layout: wgpu::PipelineLayout,
    /// Built on first use: only arrays with values of 2^32 and above need it.
    wide: OnceLock<wgpu::ComputePipeline>,
    /// Invocations per workgroup (`WG_SIZE` in the shaders, set here).
    pub workgroup_size: u32,
    /// Whether the wide pipeline uses the adapter's 64-bit integers (`SHADER_INT64`).
    pub native_int64: bool,
}

impl Pipelines {
    /// The pipelines for `device`; the wide one with native 64-bit integers when
    /// `native_int64` (the device must have been opened with `SHADER_INT64`).
    pub fn new(device: &wgpu::Device, limits: &wgpu::Limits, native_int64: bool) -> Result<Self> {
        let workgroup_size = workgroup_size(limits);
        if workgroup_size == 0 {
            return Err(Error::Unsupported(
                "the adapter does not support compute shaders".to_string(),
            ));
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("divgpu bindings"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(4, true),
                storage(6, true),
                uniform(3, wgpu::BufferSize::new(PARAMS_BYTES)),
            ],
        });
        let wide_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("divgpu wide bindings"),
            entries: &[storage(0, false), storage(1, false)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("divgpu pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let wide_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("divgpu wide pipeline layout"),
            bind_group_layouts: &[Some(&layout), Some(&wide_layout)],
            immediate_size: 0,
        });
        let odd_primes = init_buffer(
            device,
            "divgpu odd primes",
            wgpu::BufferUsages::STORAGE,
            divisors::odd_primes_below_2_16(),
        );
        let no_table = zeroed(
            device,
            "divgpu no divisor table",
            4,
            wgpu::BufferUsages::STORAGE,
        );
        let [naive, fast, _, _] = shader_sources();
        let naive = compute_pipeline(device, &pipeline_layout, naive, workgroup_size);
        let fast = compute_pipeline(device, &pipeline_layout, fast, workgroup_size);
        Ok(Pipelines {
            layout,
            odd_primes,
            no_table,
            naive,
            fast,
            wide_layout,
            wide_pipeline_layout,
            wide: OnceLock::new(),
            workgroup_size,
            native_int64,
        })
    }

    /// The wide pipeline, built the first time an array needs it.
    pub fn wide(&self, device: &wgpu::Device) -> &wgpu::ComputePipeline {
        self.wide.get_or_init(|| {
            compute_pipeline(
                device,
                &self.wide_pipeline_layout,
                ("wide", wide_source(self.native_int64)),
                self.workgroup_size,
            )
        })
    }
}

/// The sieve's two pipelines and their bindings: counts (0), the work items' starts (1), its
/// `SieveParams` (2) and the packed table (3). Built on a device's first table
/// ([`crate::gpu::GpuContext::sieve_pipelines`]).
pub(crate) struct SievePipelines {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) sieve: wgpu::ComputePipeline,
    pub(crate) pack: wgpu::ComputePipeline,
}

impl SievePipelines {
    pub(crate) fn new(device: &wgpu::Device, workgroup_size: u32) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("divgpu sieve bindings"),
            entries: &[
                storage(0, false),
                storage(1, true),
                uniform(2, None),
                storage(3, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("divgpu sieve pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let [sieve, pack]: [wgpu::ComputePipeline; 2] = compute_pipelines(
            device,
            &pipeline_layout,
            sieve_source(),
            &["main", "pack"],
            workgroup_size,
        )
        .try_into()
        .expect("two entry points");
        SievePipelines {
            layout,
            sieve,
            pack,
        }
    }
}

/// A compute shader's uniform buffer at `binding` in a bind group layout.
fn uniform(binding: u32, min_binding_size: Option<wgpu::BufferSize>) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size,
        },
        count: None,
    }
}

/// A compute shader's storage buffer at `binding` in a bind group layout.
fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A pipeline of divgpu's: `source` compiled with [`runtime_checks`] and `WG_SIZE` set to
/// `workgroup_size`. Public so that tests can build variants of the shaders exactly as divgpu
/// builds its own.
pub fn compute_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    shader: (&str, String),
    workgroup_size: u32,
) -> wgpu::ComputePipeline {
    compute_pipelines(device, layout, shader, &["main"], workgroup_size)
        .pop()
        .expect("one pipeline")
}

/// [`compute_pipeline`] for each of `entry_points` of one module.
pub fn compute_pipelines(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    (label, source): (&str, String),
    entry_points: &[&str],
    workgroup_size: u32,
) -> Vec<wgpu::ComputePipeline> {
    let descriptor = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    // SAFETY: see `runtime_checks`.
    let checks = runtime_checks();
    let module = unsafe { device.create_shader_module_trusted(descriptor, checks) };
    entry_points
        .iter()
        .map(|&entry| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[("WG_SIZE", f64::from(workgroup_size))],
                    ..Default::default()
                },
                cache: None,
            })
        })
        .collect()
}
