//! The WGSL shaders and their compute pipelines, which share one bind group layout.

use crate::error::{Error, Result};

/// Helpers and bindings every pipeline shares; WGSL has no `#include`, so each pipeline's module
/// is this text followed by its own.
const COMMON: &str = include_str!("../../shaders/divisors.wgsl");

/// Each pipeline's WGSL, complete (common part first): `(label, source)`.
pub fn shader_sources() -> [(&'static str, String); 2] {
    [
        (
            "naive",
            format!("{COMMON}\n{}", include_str!("../../shaders/naive.wgsl")),
        ),
        (
            "fast",
            format!("{COMMON}\n{}", include_str!("../../shaders/fast.wgsl")),
        ),
    ]
}

/// Bytes per element in a keys buffer: one `vec2<u32>`.
pub const KEY_BYTES: u64 = 8;
/// Bytes per `Params` in `shaders/divisors.wgsl`.
pub const PARAMS_BYTES: u64 = 32;

pub struct Pipelines {
    pub layout: wgpu::BindGroupLayout,
    pub naive: wgpu::ComputePipeline,
    pub fast: wgpu::ComputePipeline,
    /// Invocations per workgroup (`WG_SIZE` in the shaders, set here).
    pub workgroup_size: u32,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device, limits: &wgpu::Limits) -> Result<Self> {
        let workgroup_size = 256
            .min(limits.max_compute_invocations_per_workgroup)
            .min(limits.max_compute_workgroup_size_x);
        if workgroup_size == 0 {
            return Err(Error::Unsupported(
                "the adapter does not support compute shaders".to_string(),
            ));
        }
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("divgpu bindings"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("divgpu pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let [naive, fast] = shader_sources().map(|(label, source)| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[("WG_SIZE", f64::from(workgroup_size))],
                    ..Default::default()
                },
                cache: None,
            })
        });
        Ok(Pipelines {
            layout,
            naive,
            fast,
            workgroup_size,
        })
    }
}
