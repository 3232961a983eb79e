//! Mesa's llvmpipe (behind lavapipe and llvmpipe-GL) silently ends every loop of an invocation
//! once all its loops together reach 65,535 counts, and carries on with whatever the variables
//! hold. This file measures that cap on the adapter itself, then measures every pipeline's loop
//! use at its worst case with the cap as the meter: each shader runs as written, followed by a
//! loop that counts how much of the cap is left. The budgets asserted here are the ones written
//! beside the loops in `shaders/*.wgsl`.
//!
//! On an adapter without the cap (a real GPU) the meter reads "no cap", the pipelines still run
//! their worst cases, and nothing is asserted about counts.

mod common;

use divgpu::divisors::odd_primes_below_2_16;
use divgpu::gpu::pipelines::{compute_pipeline, shader_sources, PARAMS_BYTES, WIDE_STATE_BYTES};
use divgpu::gpu::wide::WIDE_MAX_STEPS;
use divgpu::gpu::GpuContext;
use wgpu::util::DeviceExt;

/// What the meter loop runs to when nothing stops it.
const METER_END: u32 = 1_000_000;
/// llvmpipe's cap (LP_MAX_TGSI_LOOP_ITERATIONS in Mesa's gallivm).
const CAP: u32 = 65_535;

/// Budgets as written in the shaders (counts: iterations plus each loop's exit test).
const NAIVE_BUDGET: u32 = 8_193; // seed_kernel
                                 // the thresholds' copy + bucket_of + divisor_count + the bucket flush
const FAST_BUDGET_AT_256: u32 = 5 + 33 + 6_562 + 5;
const WIDE_BUDGET: u32 = 33 + WIDE_MAX_STEPS + 1; // bucket_of + the step loop

/// Runs `body` (WGSL statements of an entry point with `lid` and a storage array `out`) in one
/// workgroup of 256 invocations, `out[1000]` reading 0, and returns `out[0..256]`.
fn run_probe(gpu: &GpuContext, body: &str) -> Vec<u32> {
    // on GL, direct use of the device takes the product's turn, as divgpu's own calls do
    let _turn = gpu.turn();
    let device = gpu.device();
    let source = format!(
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size(256)\n\
         fn main(@builtin(local_invocation_index) lid: u32) {{\n{body}\n}}\n"
    );
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("loop probe"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("loop probe"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let out = storage(device, &[0u32; 1024], true);
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: out.as_entire_binding(),
        }],
    });
    dispatch(gpu, &pipeline, &[&bind], 1);
    read(gpu, &out)[..256].to_vec()
}

fn storage<T: bytemuck::Pod>(device: &wgpu::Device, data: &[T], read_back: bool) -> wgpu::Buffer {
    let mut usage = wgpu::BufferUsages::STORAGE;
    if read_back {
        usage |= wgpu::BufferUsages::COPY_SRC;
    }
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(data),
        usage,
    })
}

fn dispatch(
    gpu: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    groups: &[&wgpu::BindGroup],
    workgroups: u32,
) {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        for (i, g) in groups.iter().enumerate() {
            pass.set_bind_group(i as u32, *g, &[]);
        }
        pass.dispatch_workgroups(workgroups, 1, 1);
    }
    gpu.queue().submit([encoder.finish()]);
}

fn read(gpu: &GpuContext, buffer: &wgpu::Buffer) -> Vec<u32> {
    let device = gpu.device();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    gpu.queue().submit([encoder.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |r| r.expect("mapping"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("waiting for the GPU");
    let data = bytemuck::pod_collect_to_vec(&staging.get_mapped_range(..).expect("mapped"));
    staging.unmap();
    data
}

/// How many counts of the cap a loop after everything else can still use: `None` without a cap.
fn capped(left: u32) -> Option<u32> {
    (left < METER_END).then_some(left)
}

#[test]
fn llvmpipe_cap_is_what_the_loop_budget_assumes() {
    let Some(gpu) = common::gpu() else { return };
    // Bounds read from the buffer (`z` is 0) and results written out, so that no loop is
    // unrolled or removed by the compiler.
    let single = run_probe(
        gpu,
        "let z = out[1000]; var c = 0u; for (var i = z; i < 100000u; i++) { c++; } out[lid] = c;",
    );
    if single.iter().all(|&c| c == 100_000) {
        eprintln!("{}: no loop cap", gpu.adapter_info().name);
        return;
    }
    // One loop stops at the cap, in every invocation.
    assert!(single.iter().all(|&c| c == CAP), "{single:?}");
    // An inner loop costs a count on every outer iteration even when it runs no iteration, and
    // even under an `if` that no invocation takes.
    let empty_inner = run_probe(
        gpu,
        "var c = 0u; var n = out[1000]; for (var i = 0u; i < 100000u; i++) { c++; \
         while n > 5u { n--; } } out[lid] = c;",
    );
    assert!(empty_inner.iter().all(|&c| c == 32_768), "{empty_inner:?}");
    let untaken_inner = run_probe(
        gpu,
        "var c = 0u; var n = out[1000]; for (var i = 0u; i < 100000u; i++) { c++; \
         if n == 7u { while n > 5u { n--; } } } out[lid] = c;",
    );
    assert!(
        untaken_inner.iter().all(|&c| c == 32_768),
        "{untaken_inner:?}"
    );
    // Loops one after the other share the cap (each exit test counts), and a barrier costs
    // nothing: 65,000 iterations and their exit test leave 534.
    let after_barrier = run_probe(
        gpu,
        "let z = out[1000]; var c = 0u; for (var i = z; i < 65000u; i++) { c++; } \
         workgroupBarrier(); var d = 0u; for (var i = z; i < 1000u; i++) { d++; } \
         out[lid] = d + select(0u, 1u, c == 7u);",
    );
    assert!(after_barrier.iter().all(|&d| d == 534), "{after_barrier:?}");
    // The count is shared by the invocations that run together (8 on a 256-bit CPU): one long
    // loop in invocation 0 cuts the next loop short in its neighbours, not in the others.
    let neighbours = run_probe(
        gpu,
        "let z = out[1000]; var k = 10u; if lid == 0u { k = 65530u; } var c = 0u; \
         for (var i = z; i < k; i++) { c++; } var d = 0u; for (var i = z; i < 20u; i++) { d++; } \
         out[lid] = d + select(0u, 1u, c == 7u);",
    );
    let cut = neighbours.iter().take_while(|&&d| d < 20).count();
    assert!((1..256).contains(&cut), "{neighbours:?}");
    assert!(neighbours[cut..].iter().all(|&d| d == 20), "{neighbours:?}");
}

/// One pipeline's worst case: its keys, its threshold keys and its parameters.
struct Case {
    label: &'static str,
    keys: Vec<u64>,
    thresholds: Vec<u64>,
    /// `Params` in shaders/divisors.wgsl: base, end, signed_keys, num_thresholds, threshold,
    /// naive, init, steps, key_width, hist_top and padding. The keys are stored at key_width
    /// bytes.
    params: [u32; 12],
}

/// The pipeline's shader with its entry point renamed and called from a new entry point that
/// then runs the meter: the least count left over all invocations goes to `meter[0]`.
fn metered(label: &str) -> String {
    let (_, source) = shader_sources()
        .into_iter()
        .find(|(l, _)| *l == label)
        .expect("a pipeline of that name");
    let entry = "@compute @workgroup_size(WG_SIZE)\nfn main(";
    let at = source.find(entry).expect("the entry point");
    let rest = &source[at + entry.len()..];
    let close = rest.find(") {").expect("the entry point's parameters");
    let params: String = rest[..close]
        .split(',')
        .filter_map(|p| {
            let p = p.trim();
            (!p.is_empty()).then(|| p.rsplit(") ").next().unwrap_or(p).to_string())
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}fn metered_main({params}{}\n\
         @group(0) @binding(5) var<storage, read_write> meter: array<atomic<u32>>;\n\
         @compute @workgroup_size(WG_SIZE)\n\
         fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,\n\
                 @builtin(local_invocation_index) lid: u32) {{\n\
             metered_main(wid, groups, lid);\n\
             var left = 0u;\n\
             for (var i = atomicLoad(&meter[1]); i < {METER_END}u; i++) {{ left++; }}\n\
             atomicMin(&meter[0], left);\n\
         }}\n",
        &source[..at],
        &rest[close..],
    )
}

/// The metered pipelines' two bind group layouts: the bindings every pipeline shares, with the
/// meter at 5; the wide pipeline's states and count of unfinished elements.
fn metered_layouts(device: &wgpu::Device) -> [wgpu::BindGroupLayout; 2] {
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    };
    let storage_ty = |read_only| wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Storage { read_only },
        has_dynamic_offset: false,
        min_binding_size: None,
    };
    let uniform_ty = wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: false,
        min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
    };
    let shared = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            entry(0, storage_ty(true)),
            entry(1, storage_ty(true)),
            entry(2, storage_ty(false)),
            entry(3, uniform_ty),
            entry(4, storage_ty(true)),
            entry(5, storage_ty(false)),
            entry(6, storage_ty(true)),
        ],
    });
    let wide = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[entry(0, storage_ty(false)), entry(1, storage_ty(false))],
    });
    [shared, wide]
}

/// A bind group of `buffers` at bindings 0, 1, ... in order.
fn bind(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect::<Vec<_>>(),
    })
}

/// `case`'s elements at its width, little-endian, in whole words (`load_key`'s layout).
fn key_words(case: &Case) -> Vec<u32> {
    let width = case.params[8] as usize;
    let mut bytes: Vec<u8> = case
        .keys
        .iter()
        .flat_map(|k| k.to_le_bytes()[..width].to_vec())
        .collect();
    bytes.resize(bytes.len().div_ceil(4) * 4, 0);
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
        .collect()
}

/// Runs `case` on its pipeline as the shaders are built for divgpu (same checks, same workgroup
/// size) and returns the counts it used, or `None` on an adapter without a cap.
fn counts_used(gpu: &GpuContext, case: &Case) -> Option<u32> {
    let _turn = gpu.turn();
    let device = gpu.device();
    let wide = case.label.starts_with("wide");
    let [layout0, layout1] = metered_layouts(device);
    let mut layouts = vec![Some(&layout0)];
    if wide {
        layouts.push(Some(&layout1));
    }
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &layouts,
        immediate_size: 0,
    });
    let wg = gpu.workgroup_size();
    let pipeline = compute_pipeline(
        device,
        &pipeline_layout,
        (case.label, metered(case.label)),
        wg,
    );
    let words = |keys: &[u64]| -> Vec<u32> {
        keys.iter()
            .flat_map(|&k| [k as u32, (k >> 32) as u32])
            .collect()
    };
    let keys = storage(device, &key_words(case), false);
    let thresholds = storage(device, &words(&case.thresholds), false);
    let sums = storage(device, &vec![0u32; 2 * case.thresholds.len()], false);
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&case.params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let primes = storage(device, odd_primes_below_2_16(), false);
    let meter = storage(device, &[u32::MAX, 0], true);
    // no divisor table: fast factors every element, its worst case
    let no_table = storage(device, &[0u32], false);
    let group0 = bind(
        device,
        &layout0,
        &[
            &keys,
            &thresholds,
            &sums,
            &params,
            &primes,
            &meter,
            &no_table,
        ],
    );
    let states = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: case.keys.len() as u64 * WIDE_STATE_BYTES,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let pending = storage(device, &[0u32], false);
    let group1 = bind(device, &layout1, &[&states, &pending]);
    let groups: Vec<&wgpu::BindGroup> = if wide {
        vec![&group0, &group1]
    } else {
        vec![&group0]
    };
    let workgroups = (case.keys.len() as u32).div_ceil(wg);
    dispatch(gpu, &pipeline, &groups, workgroups);
    capped(read(gpu, &meter)[0]).map(|left| CAP - left)
}

/// Thresholds that give `count` distinct buckets, the last one above every element.
fn thresholds(count: u64) -> Vec<u64> {
    (0..count - 1).map(|i| i * 1000).chain([u64::MAX]).collect()
}

fn params(
    end: usize,
    num_thresholds: usize,
    naive: u32,
    init: u32,
    steps: u32,
    key_width: u32,
) -> [u32; 12] {
    [
        0,
        end as u32,
        0,
        num_thresholds as u32,
        0,
        naive,
        init,
        steps,
        key_width,
        0,
        0,
        0,
    ]
}

/// Unsigned keys are the values themselves.
fn repeated(values: &[u64], len: usize) -> Vec<u64> {
    values.iter().copied().cycle().take(len).collect()
}

/// Each pipeline's worst case on `gpu`, with its budget: every invocation at its longest loop.
fn worst_cases(gpu: &GpuContext) -> Vec<(Case, u32)> {
    let wg = gpu.workgroup_size() as usize;
    let len = 4 * wg;
    // naive and the first fast case read 4-byte elements (u32 arrays), the others 8-byte ones.
    // Every invocation at its worst: seed_kernel runs j up to 65,535 for x >= 65535^2, and
    // divisor_count tries all 6,541 odd primes for a prime just below 2^32, or for 65521^2 (the
    // largest prime below 2^16, squared: the most primes tried plus two divisions).
    let naive_worst = repeated(&[4_294_836_225, 4_294_967_291], len);
    let fast_worst = repeated(&[4_294_967_291, 4_293_001_441, 4_294_967_279], len);
    // Products of two primes just below 2^32: Pollard-Brent rho's longest walks, far more
    // steps than one dispatch runs.
    let wide_worst = repeated(
        &[
            4_294_967_291 * 4_294_967_279,
            4_294_967_279 * 4_294_967_231,
            4_294_967_291 * 4_294_967_231,
        ],
        len,
    );
    let fast_flush_budget = 2 * ((1024 / wg as u32) + 1) + 33 + 6_562;
    let mut cases = [
        (
            Case {
                label: "naive",
                keys: naive_worst,
                thresholds: vec![u64::from(u32::MAX)],
                params: params(len, 1, 0, 0, 0, 4),
            },
            NAIVE_BUDGET,
        ),
        // 1,024 buckets: the most the workgroup sums hold, so the flush loop runs longest.
        (
            Case {
                label: "fast",
                keys: fast_worst.clone(),
                thresholds: thresholds(1024),
                params: params(len, 1024, 0, 0, 0, 4),
            },
            fast_flush_budget,
        ),
        // 5,000 buckets: added straight to the global sums, a longer search.
        (
            Case {
                label: "fast",
                keys: fast_worst,
                thresholds: thresholds(5000),
                params: params(len, 5000, 0, 0, 0, 8),
            },
            fast_flush_budget,
        ),
        (
            Case {
                label: "wide",
                keys: wide_worst.clone(),
                thresholds: thresholds(5000),
                params: params(len, 5000, 0, 1, WIDE_MAX_STEPS, 8),
            },
            WIDE_BUDGET,
        ),
    ]
    .into_iter()
    .collect::<Vec<_>>();
    // the native 64-bit wide pipeline too, where the device has 64-bit integers (lavapipe)
    if gpu.native_int64() {
        cases.push((
            Case {
                label: "wide-int64",
                keys: wide_worst,
                thresholds: thresholds(5000),
                params: params(len, 5000, 0, 1, WIDE_MAX_STEPS, 8),
            },
            WIDE_BUDGET,
        ));
    }
    if wg == 256 {
        assert_eq!(fast_flush_budget, FAST_BUDGET_AT_256);
    }
    cases
}

#[test]
fn every_pipeline_stays_within_its_loop_budget_at_its_worst_case() {
    let Some(gpu) = common::gpu() else { return };
    let cases = worst_cases(gpu);
    let mut measured = Vec::new();
    for (case, budget) in &cases {
        let used = counts_used(gpu, case);
        eprintln!(
            "{} with {} thresholds: {} counts (budget {budget})",
            case.label,
            case.thresholds.len(),
            used.map_or("no cap".to_string(), |u| u.to_string())
        );
        measured.push(used);
        if let Some(used) = used {
            assert!(
                used <= *budget,
                "{} used {used} counts, over its budget of {budget}",
                case.label
            );
            // and the budget really is far from the cap
            assert!(*budget <= CAP / 7, "{}: budget {budget}", case.label);
        }
    }
    // the meter itself works: the worst cases are not trivially cheap
    for (used, (case, _)) in measured.iter().zip(&cases) {
        if let Some(used) = used {
            assert!(*used > 1000, "{}: only {used} counts", case.label);
        }
    }
}
