//! Shared by the integration tests: the oracle, the GPU context, known answers from outside.
#![allow(dead_code)]

pub mod factor;

use std::sync::{Arc, OnceLock};

use divgpu::gpu::GpuContext;

/// OEIS A006218: sum of d(k) for k = 1..N, at N = 10, 100, ..., 10^6.
pub const A006218: [(i128, u64); 6] = [
    (10, 27),
    (100, 482),
    (1_000, 7_069),
    (10_000, 93_668),
    (100_000, 1_166_750),
    (1_000_000, 13_970_034),
];

/// The post's kernel for one element, transcribed as written (in i128, so `j * j` cannot
/// overflow): the oracle every backend is compared with. Slow on purpose.
pub fn oracle_count(x: i128) -> u64 {
    let mut ret = 1;
    if x > 1 {
        ret += 1;
    }
    let mut j: i128 = 2;
    while j * j <= x {
        if x % j == 0 {
            ret += 1;
            if j * j < x {
                ret += 1;
            }
        }
        j += 1;
    }
    ret
}

/// For every threshold n, the sum of the oracle's count over elements `x <= n`.
pub fn oracle(values: &[i128], thresholds: &[i128]) -> Vec<u64> {
    thresholds
        .iter()
        .map(|&n| {
            values
                .iter()
                .filter(|&&x| x <= n)
                .map(|&x| oracle_count(x))
                .sum()
        })
        .collect()
}

/// Set to 1 to skip the GPU tests on a machine with no adapter at all; without it, a missing
/// adapter fails them.
pub const SKIP_GPU_VAR: &str = "DIVGPU_SKIP_GPU_TESTS";
/// When set (CI: `vulkan`, `gl`), the adapter's backend must be this one.
pub const EXPECT_BACKEND_VAR: &str = "DIVGPU_EXPECT_BACKEND";

/// The GPU of this test binary (adapter from `WGPU_BACKEND`/`WGPU_ADAPTER_NAME`), or `None`
/// only when the person running the tests opted out with `DIVGPU_SKIP_GPU_TESTS=1`: the device
/// the process's registry opened for `Backend::Gpu`, which every GPU session of the binary
/// shares ([`divgpu::session::open_gpu`]).
pub fn gpu() -> Option<&'static Arc<GpuContext>> {
    static CONTEXT: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            if std::env::var(SKIP_GPU_VAR).is_ok_and(|v| v == "1") {
                eprintln!("{SKIP_GPU_VAR}=1: skipping GPU checks");
                return None;
            }
            let gpu = divgpu::session::open_gpu(Backend::Gpu, None).unwrap_or_else(|e| {
                panic!("no GPU adapter: {e}; or set {SKIP_GPU_VAR}=1 to skip GPU tests")
            });
            let gpu = gpu.expect("Backend::Gpu opens an adapter or fails");
            let info = gpu.adapter_info();
            eprintln!("GPU tests on {} ({:?})", info.name, info.backend);
            if let Ok(expected) = std::env::var(EXPECT_BACKEND_VAR) {
                assert_eq!(
                    format!("{:?}", info.backend).to_lowercase(),
                    expected.to_lowercase(),
                    "{EXPECT_BACKEND_VAR} asks for another backend than the adapter found"
                );
            }
            Some(gpu)
        })
        .as_ref()
}

use divgpu::input::{Array, Integers};
use divgpu::session::{Backend, Options, Session};
use divgpu::{Algorithm, Quiet};

/// One way of answering a query: a backend and an algorithm (and for the GPU, a chunk size),
/// each a [`Session`] as every caller of the library has.
#[derive(Clone, Copy, Debug)]
pub enum Runner {
    /// One pass over the array per batch (no value index).
    Cpu(Algorithm, usize),
    /// `fast` in a session that keeps its value index (dense where the values allow one, else
    /// sorted): the first batch builds it, and each batch is answered twice from it.
    CpuSession(usize),
    /// As [`Runner::CpuSession`] on the GPU: a sorted index whose counts the GPU computed.
    GpuSession,
    /// A CPU session's index saved to a file and loaded again: its answers, which must equal
    /// those of the session that saved it.
    Saved,
    /// Resident on the GPU, in chunks of this many elements (default: the adapter's limit).
    Gpu(Algorithm, Option<usize>),
    /// Streamed through two chunk buffers of this many elements.
    GpuStreamed(Algorithm, usize),
}

impl Runner {
    /// The session this runner answers with.
    pub fn session(&self, array: &Arc<Array>) -> divgpu::Result<Session> {
        let mut options = Options {
            keep_index: false,
            ..Options::default()
        };
        match *self {
            Runner::Cpu(algorithm, threads) => {
                options.backend = Backend::Cpu;
                options.algorithm = algorithm;
                options.threads = threads;
            }
            Runner::CpuSession(threads) => {
                options.backend = Backend::Cpu;
                options.threads = threads;
                options.keep_index = true;
            }
            Runner::Saved => {
                options.backend = Backend::Cpu;
                options.keep_index = true;
            }
            Runner::GpuSession => {
                options.backend = Backend::Gpu;
                options.keep_index = true;
            }
            Runner::Gpu(algorithm, chunk_elements) => {
                options.backend = Backend::Gpu;
                options.algorithm = algorithm;
                options.chunk_elements = chunk_elements;
            }
            Runner::GpuStreamed(algorithm, chunk) => {
                options.backend = Backend::Gpu;
                options.algorithm = algorithm;
                options.chunk_elements = Some(chunk);
                options.resident_bytes = 0;
            }
        }
        if options.backend == Backend::Gpu {
            let gpu = gpu().expect("GPU runners exist only with a GPU");
            Session::with_gpu(array.clone(), gpu.clone(), &options)
        } else {
            Session::new(array.clone(), &options)
        }
    }

    pub fn run(&self, array: &Arc<Array>, thresholds: &[i128]) -> divgpu::Result<Vec<u64>> {
        let session = self.session(array)?;
        let streamed = matches!(self, Runner::GpuStreamed(..));
        assert_eq!(session.is_streamed(), streamed && !array.is_empty());
        let thresholds = Integers::from(thresholds);
        if let Runner::Saved = self {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let path = dir.path().join("index.divi");
            session.save(&path, &Quiet)?;
            let options = Options {
                backend: Backend::Cpu,
                ..Options::default()
            };
            let loaded = Session::load(&path, &options)?;
            assert_eq!(loaded.len(), session.len());
            let answer = loaded.query(&thresholds, &Quiet)?;
            assert!(answer.timings.from_index);
            let saved_by = session.query(&thresholds, &Quiet)?.results;
            assert_eq!(
                answer.results, saved_by,
                "the loaded index and the one that saved it"
            );
            return Ok(answer.results);
        }
        let first = session.query(&thresholds, &Quiet)?;
        if let Runner::CpuSession(_) | Runner::GpuSession = self {
            // no memory limit: the index is always built, and answers every batch
            assert!(session.has_index(), "{self:?} built no index");
            let again = session.query(&thresholds, &Quiet)?;
            assert!(
                first.timings.from_index && again.timings.from_index,
                "{self:?} answered without its index"
            );
            assert_eq!(
                again.results, first.results,
                "the second batch of a session"
            );
        }
        Ok(first.results)
    }
}

/// A CPU session on 2 threads, keeping its value index.
pub fn cpu_options() -> Options {
    Options {
        backend: Backend::Cpu,
        threads: 2,
        ..Options::default()
    }
}

/// Every backend and algorithm: CPU on 1 and 2 threads, and the GPU unless opted out.
pub fn runners() -> Vec<Runner> {
    let mut all = Vec::new();
    for algorithm in [Algorithm::Fast, Algorithm::Naive] {
        all.push(Runner::Cpu(algorithm, 1));
        all.push(Runner::Cpu(algorithm, 2));
        if algorithm == Algorithm::Fast {
            all.push(Runner::CpuSession(1));
            all.push(Runner::CpuSession(2));
        }
        if gpu().is_some() {
            all.push(Runner::Gpu(algorithm, None));
            if algorithm == Algorithm::Fast {
                all.push(Runner::GpuSession);
            }
        }
    }
    all
}

/// Runs `thresholds` over `values` on every runner and checks each against `expected`.
pub fn assert_all_runners(
    runners: &[Runner],
    values: &[i128],
    array: &Arc<Array>,
    thresholds: &[i128],
    expected: &[u64],
) {
    for runner in runners {
        let got = runner
            .run(array, thresholds)
            .unwrap_or_else(|e| panic!("{runner:?} failed: {e}"));
        assert_eq!(
            got,
            expected,
            "{runner:?} on {} elements ({:?}...), thresholds {thresholds:?}",
            values.len(),
            &values[..values.len().min(8)]
        );
    }
}
