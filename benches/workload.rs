//! The post's workload (1M values in [0, 1e6], its 13 thresholds) on every backend and algorithm.
//!
//! Two sizes: a tenth of the post's and the post's (`DIVGPU_BENCH_SIZE` replaces the larger; the
//! smaller stays a tenth of it), so per-element costs and fixed costs can be told apart. State (the
//! array, the device, the uploaded buffers) is built outside the timed closures, and every result
//! is checked before anything is timed, against OEIS A006218 and across backends, so a benchmark
//! never times a wrong answer. Each GPU row names its adapter: a software adapter (llvmpipe,
//! lavapipe) is not a GPU, and its numbers say nothing about one.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use divgpu::gpu::GpuContext;
use divgpu::input::{Array, Integers};
use divgpu::session::{open_gpu, open_gpu_with, Backend, Options, Session};
use divgpu::{workload, Algorithm, Quiet};

fn sizes() -> [usize; 2] {
    let large = std::env::var("DIVGPU_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(workload::DEFAULT_SIZE);
    [(large / 10).max(1), large]
}

/// A session over `array`: on `gpu` when given, else on the CPU with `threads`; a pass over the
/// array per batch unless `keep_index`.
fn session(
    array: &Arc<Array>,
    algorithm: Algorithm,
    threads: usize,
    gpu: Option<&Arc<GpuContext>>,
    keep_index: bool,
) -> Session {
    let options = Options {
        backend: if gpu.is_some() {
            Backend::Gpu
        } else {
            Backend::Cpu
        },
        algorithm,
        threads,
        keep_index,
        ..Options::default()
    };
    match gpu {
        Some(gpu) => Session::with_gpu(array.clone(), gpu.clone(), &options),
        None => Session::new(array.clone(), &options),
    }
    .unwrap()
}

fn answer(session: &Session, thresholds: &Integers) -> Vec<u64> {
    session.query(thresholds, &Quiet).unwrap().results
}

/// A006218(10^5) = 1,166,750, so the array 0..=10^5 at threshold 10^5 gives 1,166,751.
fn assert_known_answer(gpu: Option<&Arc<GpuContext>>) {
    let array = Arc::new(Array::from_i64((0..=100_000).collect()));
    let thresholds = Integers::from(vec![100_000i64]);
    for algorithm in [Algorithm::Fast, Algorithm::Naive] {
        for on in [None, gpu] {
            let session = session(&array, algorithm, 0, on, false);
            assert_eq!(answer(&session, &thresholds), [1_166_751]);
        }
    }
}

fn post_workload(c: &mut Criterion) {
    let gpu = open_gpu(Backend::Gpu, None).ok().flatten();
    assert_known_answer(gpu.as_ref());
    for n in sizes() {
        one_size(c, n, gpu.as_ref());
    }
}

fn one_size(c: &mut Criterion, n: usize, gpu: Option<&Arc<GpuContext>>) {
    let array = Arc::new(Array::from_i64(
        workload::generate(n, workload::DEFAULT_MAX_VALUE, workload::DEFAULT_SEED).unwrap(),
    ));
    let thresholds = Integers::from(workload::default_thresholds());
    let reference = answer(
        &session(&array, Algorithm::Fast, 0, None, false),
        &thresholds,
    );

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
            let cpu = session(&array, algorithm, threads, None, false);
            assert_eq!(answer(&cpu, &thresholds), reference);
            group.bench_function(
                BenchmarkId::new(
                    format!("cpu_{}", algorithm.name()),
                    format!("{label}_threads"),
                ),
                |b| b.iter(|| answer(&cpu, &thresholds)),
            );
        }
        if let Some(gpu) = gpu {
            let on_gpu = session(&array, algorithm, 0, Some(gpu), false);
            assert_eq!(answer(&on_gpu, &thresholds), reference);
            let adapter = gpu.summary();
            let name = format!("{} {}", adapter.name, adapter.backend);
            group.bench_function(
                BenchmarkId::new(format!("gpu_{}", algorithm.name()), name),
                |b| b.iter(|| answer(&on_gpu, &thresholds)),
            );
        }
    }
    // a session's later batches: the value index (dense here), built by the first
    let kept = session(&array, Algorithm::Fast, 0, None, true);
    assert_eq!(answer(&kept, &thresholds), reference);
    assert!(kept.has_index());
    group.bench_function(BenchmarkId::new("cpu_fast", "session_table"), |b| {
        b.iter(|| answer(&kept, &thresholds))
    });
    group.finish();
}

/// The post's array with 100,000 random distinct thresholds in its range: more than the GPU's
/// 1,024 workgroup buckets, so `fast` on the GPU counts the elements in a per-value histogram.
/// Checked against the CPU before anything is timed.
fn many_thresholds(c: &mut Criterion) {
    let gpu = open_gpu(Backend::Gpu, None).ok().flatten();
    let n = sizes()[1];
    let array = Arc::new(Array::from_i64(
        workload::generate(n, workload::DEFAULT_MAX_VALUE, workload::DEFAULT_SEED).unwrap(),
    ));
    let mut rng = workload::SplitMix64::new(7);
    let max = workload::DEFAULT_MAX_VALUE;
    let thresholds = Integers::from(
        (0..100_000)
            .map(|_| rng.below(max + 1) as i64)
            .collect::<Vec<_>>(),
    );
    let cpu = session(&array, Algorithm::Fast, 0, None, false);
    let reference = answer(&cpu, &thresholds);
    let mut group = c.benchmark_group(format!("many_thresholds_{n}"));
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("cpu_fast", "all_threads"), |b| {
        b.iter(|| answer(&cpu, &thresholds))
    });
    if let Some(gpu) = gpu.as_ref() {
        let on_gpu = session(&array, Algorithm::Fast, 0, Some(gpu), false);
        assert_eq!(answer(&on_gpu, &thresholds), reference);
        let adapter = gpu.summary();
        let name = format!("{} {}", adapter.name, adapter.backend);
        group.bench_function(BenchmarkId::new("gpu_fast", name), |b| {
            b.iter(|| answer(&on_gpu, &thresholds))
        });
    }
    group.finish();
}

/// 20,000 values, one in ten of 2^32 and above, on the adapter's own 64-bit integers (where it
/// has `SHADER_INT64`) and on the emulated arithmetic, side by side on one adapter. Checked
/// against the CPU before anything is timed.
fn wide_values(c: &mut Criterion) {
    let mut rng = workload::SplitMix64::new(64);
    let values: Vec<i64> = (0..20_000)
        .map(|_| match rng.below(10) {
            0 => (rng.next_u64() >> 1) as i64,
            _ => rng.below(1 << 32) as i64,
        })
        .collect();
    let array = Arc::new(Array::from_i64(values));
    let thresholds = Integers::from(vec![1i64 << 32, 1 << 40, 1 << 50, i64::MAX]);
    let reference = answer(
        &session(&array, Algorithm::Fast, 0, None, false),
        &thresholds,
    );
    let mut group = c.benchmark_group("wide_values_20000");
    group.sample_size(10);
    for use_int64 in [true, false] {
        let Some(gpu) = open_gpu_with(Backend::Gpu, None, use_int64).ok().flatten() else {
            return;
        };
        if use_int64 && !gpu.native_int64() {
            continue; // the adapter has no 64-bit integers: only the emulated row
        }
        let on_gpu = session(&array, Algorithm::Fast, 0, Some(&gpu), false);
        assert_eq!(answer(&on_gpu, &thresholds), reference);
        let label = if gpu.native_int64() {
            "native_int64"
        } else {
            "emulated_int64"
        };
        let adapter = gpu.summary();
        group.bench_function(
            BenchmarkId::new(
                format!("gpu_fast_{label}"),
                format!("{} {}", adapter.name, adapter.backend),
            ),
            |b| b.iter(|| answer(&on_gpu, &thresholds)),
        );
    }
    group.finish();
}

criterion_group!(benches, post_workload, many_thresholds, wide_values);
criterion_main!(benches);
