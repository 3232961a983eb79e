//! A validated run: where the array and thresholds come from, which backend and algorithm. The
//! CLI builds one from its flags; [`execute`] loads, picks the backend at this one edge, runs,
//! and compares when asked.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::gpu::{context, GpuContext, UploadOptions};
use crate::input::{self, Array, DType, Integers};
use crate::query::Plan;
use crate::report::{Comparison, Report, Timings};
use crate::{cpu, workload, Algorithm, Observer};

pub enum Source {
    /// The post's workload: `size` values uniform in `[0, max_value]` from `seed`.
    Generated {
        size: usize,
        max_value: u64,
        seed: u64,
    },
    /// A file; `raw_dtype` reads it as raw little-endian elements.
    File {
        path: PathBuf,
        raw_dtype: Option<DType>,
    },
}

pub enum Thresholds {
    List(Vec<i128>),
    /// One integer per line.
    File(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// A hardware GPU if there is one, else the CPU.
    Auto,
    Gpu,
    Cpu,
    /// GPU and CPU, compared.
    Both,
}

pub struct Job {
    pub source: Source,
    pub thresholds: Thresholds,
    pub backend: BackendChoice,
    pub algorithm: Algorithm,
    /// CPU threads, 0 for one per core.
    pub threads: usize,
    /// Adapter name substring (else `WGPU_ADAPTER_NAME`).
    pub adapter: Option<String>,
    pub chunk_elements: Option<usize>,
}

/// The report, and lines for stderr about how the run went.
pub struct Outcome {
    pub report: Report,
    pub notes: Vec<String>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Reads, maps or generates the array, and reads the thresholds.
pub fn load(source: &Source, thresholds: &Thresholds) -> Result<(Array, Integers)> {
    let array = match source {
        Source::Generated {
            size,
            max_value,
            seed,
        } => Array::from_i64(workload::generate(*size, *max_value, *seed)?),
        Source::File { path, raw_dtype } => Array::open(path, *raw_dtype)?,
    };
    let thresholds = match thresholds {
        Thresholds::List(list) => list.as_slice().into(),
        Thresholds::File(path) => input::read_integer_lines(path)?,
    };
    if thresholds.is_empty() {
        return Err(Error::Data("no thresholds given".to_string()));
    }
    Ok((array, thresholds))
}

pub fn execute(job: &Job, observer: &dyn Observer) -> Result<Outcome> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let (array, thresholds) = load(&job.source, &job.thresholds)?;
    let plan = Plan::new(thresholds);
    let mut timings = Timings {
        load: ms(started),
        ..Timings::default()
    };

    let adapter = match job.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Auto => {
            let instance = context::instance();
            // Only real GPUs (unless one is named): a software rasteriser is slower than rayon.
            let found = context::choose_adapter(&instance, job.adapter.as_deref(), true)?;
            if found.is_none() {
                notes.push("no hardware GPU adapter found; running on the CPU".to_string());
            }
            found
        }
        BackendChoice::Gpu | BackendChoice::Both => Some(
            context::choose_adapter(&context::instance(), job.adapter.as_deref(), false)?
                .ok_or_else(|| Error::NoAdapter(context::no_adapter_message()))?,
        ),
    };
    let run_cpu = adapter.is_none() || job.backend == BackendChoice::Both;

    let mut gpu_run = None;
    if let Some(adapter) = &adapter {
        let start = Instant::now();
        let gpu = GpuContext::new(adapter)?;
        notes.extend(context::software_warning(gpu.adapter_info()));
        let options = UploadOptions {
            chunk_elements: job.chunk_elements,
            ..UploadOptions::default()
        };
        let uploaded = gpu.upload(&array, options)?;
        timings.upload = ms(start);
        let (results, t) = gpu.query(&uploaded, &plan, job.algorithm, observer)?;
        timings.compute += t.compute.as_secs_f64() * 1e3;
        timings.readback = t.readback.as_secs_f64() * 1e3;
        timings.gpu_passes = t.gpu.map(|d| d.as_secs_f64() * 1e3);
        gpu_run = Some((gpu.summary(), results));
    }
    let mut cpu_results = None;
    if run_cpu {
        let start = Instant::now();
        cpu_results = Some(cpu::run(
            &array,
            &plan,
            job.algorithm,
            job.threads,
            observer,
        )?);
        timings.compute += ms(start);
    }
    // A file truncated or rewritten while mapped: the answers may mix two files' elements.
    array.check_unchanged()?;
    let threads = run_cpu.then(|| cpu::thread_count(job.threads));

    let (backend, adapter, results, comparison) = match (gpu_run, cpu_results) {
        (Some((adapter, gpu)), Some(cpu)) => {
            let comparison = Comparison::new(plan.given(), gpu, cpu.clone());
            ("both", Some(adapter), cpu, Some(comparison))
        }
        (Some((adapter, gpu)), None) => ("gpu", Some(adapter), gpu, None),
        (None, Some(cpu)) => ("cpu", None, cpu, None),
        (None, None) => unreachable!("at least one backend runs"),
    };
    timings.total = ms(started);
    Ok(Outcome {
        report: Report {
            results,
            thresholds: plan.into_given(),
            backend,
            algorithm: job.algorithm.name(),
            adapter,
            elements: array.len(),
            threads,
            timings_ms: timings,
            comparison,
        },
        notes,
    })
}
