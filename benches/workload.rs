//! The post's workload (1M values in [0, 1e6], its 13 thresholds) on every backend and algorithm.
//!
//! Two sizes: a tenth of the post's and the post's (`DIVGPU_BENCH_SIZE` replaces the larger; the
//! smaller stays a tenth of it), so per-element costs and fixed costs can be told apart. State (the
//! array, the device, the uploaded buffers) is built outside the timed closures, and every result
//! is checked before anything is timed, against OEIS A006218 and across backends, so a benchmark
//! never times a wrong answer. Each GPU row names its adapter: a software adapter (llvmpipe,
//! lavapipe) is not a GPU, and its numbers say nothing about one.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use divgpu::gpu::{context, GpuContext, UploadOptions};
use divgpu::input::Array;
use divgpu::query::Plan;
use divgpu::{cpu, workload, Algorithm, Quiet};

fn sizes() -> [usize; 2] {
    let large = std::env::var("DIVGPU_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(workload::DEFAULT_SIZE);
    [(large / 10).max(1), large]
}

fn gpu() -> Option<GpuContext> {
    let instance = context::instance();
    let adapter = context::choose_adapter(&instance, None, false).ok()??;
    GpuContext::new(&adapter).ok()
}

/// A006218(10^5) = 1,166,750, so the array 0..=10^5 at threshold 10^5 gives 1,166,751.
fn assert_known_answer(gpu: Option<&GpuContext>) {
    let array = Array::from_i64((0..=100_000).collect());
    let plan = Plan::new([100_000]);
    for algorithm in [Algorithm::Fast, Algorithm::Naive] {
        assert_eq!(
            cpu::run(&array, &plan, algorithm, 0, &Quiet).unwrap(),
            [1_166_751]
        );
        if let Some(gpu) = gpu {
            let uploaded = gpu.upload(&array, UploadOptions::default()).unwrap();
            assert_eq!(
                gpu.query(&uploaded, &plan, algorithm, &Quiet).unwrap().0,
                [1_166_751]
            );
        }
    }
}

fn post_workload(c: &mut Criterion) {
    let gpu = gpu();
    assert_known_answer(gpu.as_ref());
    for n in sizes() {
        one_size(c, n, gpu.as_ref());
    }
}

fn one_size(c: &mut Criterion, n: usize, gpu: Option<&GpuContext>) {
    let array = Array::from_i64(
        workload::generate(n, workload::DEFAULT_MAX_VALUE, workload::DEFAULT_SEED).unwrap(),
    );
    let plan = Plan::new(workload::default_thresholds());
    let reference = cpu::run(&array, &plan, Algorithm::Fast, 0, &Quiet).unwrap();

    let mut group = c.benchmark_group(format!("post_workload_{n}"));
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    for algorithm in [Algorithm::Fast, Algorithm::Naive] {
        for threads in [1, 0] {
            let label = if threads == 0 {
                "all".to_string()
            } else {
                threads.to_string()
            };
            assert_eq!(
                cpu::run(&array, &plan, algorithm, threads, &Quiet).unwrap(),
                reference
            );
            group.bench_function(
                BenchmarkId::new(
                    format!("cpu_{}", algorithm.name()),
                    format!("{label}_threads"),
                ),
                |b| b.iter(|| cpu::run(&array, &plan, algorithm, threads, &Quiet).unwrap()),
            );
        }
        if let Some(gpu) = gpu {
            let uploaded = gpu.upload(&array, UploadOptions::default()).unwrap();
            assert_eq!(
                gpu.query(&uploaded, &plan, algorithm, &Quiet).unwrap().0,
                reference
            );
            let adapter = gpu.summary();
            let name = format!("{} {}", adapter.name, adapter.backend);
            group.bench_function(
                BenchmarkId::new(format!("gpu_{}", algorithm.name()), name),
                |b| b.iter(|| gpu.query(&uploaded, &plan, algorithm, &Quiet).unwrap()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, post_workload);
criterion_main!(benches);
