//! `divgpu bench`: the post's experiment on the user's machine. Every backend and algorithm
//! answers the same queries over the same array (built, and uploaded, before any timing); each
//! row is the median of several runs after one warm-up, with its speed-up over the post's
//! algorithm on one CPU thread and whether its results match the exact reference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use divgpu::error::{Error, Result};
use divgpu::gpu::{AdapterSummary, GpuContext};
use divgpu::input::{Array, Integers};
use divgpu::session::{Backend, Options, Session};
use divgpu::{Algorithm, Observer};

use std::io::Write;
use std::process::ExitCode;

use crate::chart;
use crate::cli::DataArgs;
use crate::console::Console;
use crate::failure::Failure;
use crate::job;
use crate::output::{note, write_stdout};

/// What was measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The adapter of the GPU rows; `null` when there were none.
    pub adapter: Option<AdapterSummary>,
    /// Seconds to upload the array to the GPU (keys converted and written, the device already
    /// open), the smaller of the GPU rows' two uploads; `null` without GPU rows. The GPU rows
    /// time batches on the array once it is there.
    pub gpu_upload_s: Option<f64>,
    /// Bytes of GPU memory the uploaded elements take (the array's own width); `null`
    /// without GPU rows.
    pub gpu_array_bytes: Option<u64>,
    /// `gpu_array_bytes` over `gpu_upload_s`, in 10^9 bytes per second.
    pub gpu_upload_gb_per_s: Option<f64>,
    pub workload: Workload,
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Workload {
    pub elements: usize,
    pub thresholds: usize,
    /// Timed runs per row (after one warm-up).
    pub runs: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// `"naive"` or `"fast"`.
    pub algorithm: &'static str,
    /// CPU threads; `null` for the GPU.
    pub threads: Option<usize>,
    /// Median seconds of one query: the GPU's own time for its passes where the adapter has
    /// timestamp queries (`timing` says which), wall clock otherwise.
    pub median_s: f64,
    /// `"timestamps"` or `"wall"`: what `median_s` is.
    pub timing: &'static str,
    /// Median wall-clock seconds of one query, submissions and waits included.
    pub wall_median_s: f64,
    /// The first row's median (CPU naive, one thread) over this one's.
    pub speedup: f64,
    /// Whether every result equals the exact reference (CPU fast).
    pub results_match: bool,
}

/// One way to answer the queries: a session for one backend and algorithm (and thread count).
struct Runner {
    session: Session,
}

impl Runner {
    fn cpu(array: &Arc<Array>, algorithm: Algorithm, threads: usize) -> Result<Runner> {
        let options = Options {
            backend: Backend::Cpu,
            algorithm,
            threads,
            // every timed run is a pass over the array, as the post's were
            keep_index: false,
            ..Options::default()
        };
        Ok(Runner {
            session: Session::new(array.clone(), &options)?,
        })
    }

    fn gpu(array: &Arc<Array>, algorithm: Algorithm, gpu: &Arc<GpuContext>) -> Result<Runner> {
        let options = Options {
            backend: Backend::Gpu,
            algorithm,
            // every timed run is a pass over the uploaded array
            keep_index: false,
            ..Options::default()
        };
        Ok(Runner {
            session: Session::with_gpu(array.clone(), gpu.clone(), &options)?,
        })
    }

    /// The results, and the GPU's time for its passes where it has timestamp queries.
    fn run(&self, thresholds: &Integers, stop: &StopOnly) -> Result<(Vec<u64>, Option<Duration>)> {
        let answer = self.session.query(thresholds, stop)?;
        Ok((answer.results, answer.timings.gpu_passes))
    }

    /// A row from the medians of wall-clock and (where every run had them) timestamp times.
    fn row(&self, wall: Duration, timestamps: Option<Duration>, results_match: bool) -> Row {
        Row {
            backend: self.session.backend(),
            algorithm: self.session.algorithm().name(),
            threads: self.session.threads(),
            median_s: timestamps.unwrap_or(wall).as_secs_f64(),
            timing: if timestamps.is_some() {
                "timestamps"
            } else {
                "wall"
            },
            wall_median_s: wall.as_secs_f64(),
            speedup: 0.0,
            results_match,
        }
    }
}

/// An observer's [`Observer::cancelled`] only: each timed run would restart its progress, and
/// the bench reports its rows instead.
struct StopOnly<'a>(&'a dyn Observer);

impl Observer for StopOnly<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

/// Runs every row: CPU naive on 1 and all threads, CPU fast likewise, then GPU naive and fast
/// when `gpu` is given. `progress` hears of each row as it starts. `observer` can stop the
/// bench, between runs and inside each (as it stops any run); its progress is not used.
pub fn run(
    array: &Arc<Array>,
    thresholds: &Integers,
    runs: usize,
    gpu: Option<&Arc<GpuContext>>,
    observer: &dyn Observer,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport> {
    let stop = StopOnly(observer);
    let checked = || {
        if observer.cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    };
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let reference = Runner::cpu(array, Algorithm::Fast, 0)?
        .run(thresholds, &stop)?
        .0;
    checked()?;
    let mut runners = Vec::new();
    for algorithm in [Algorithm::Naive, Algorithm::Fast] {
        runners.push(Runner::cpu(array, algorithm, 1)?);
        if all > 1 {
            runners.push(Runner::cpu(array, algorithm, all)?);
        }
    }
    if let Some(g) = gpu {
        for algorithm in [Algorithm::Naive, Algorithm::Fast] {
            runners.push(Runner::gpu(array, algorithm, g)?);
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    for runner in &runners {
        checked()?;
        progress(&runner.row(Duration::ZERO, None, true).label());
        let mut results_match = runner.run(thresholds, &stop)?.0 == reference; // warm-up
        let mut walls = Vec::with_capacity(runs);
        let mut timestamps = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            checked()?;
            let start = Instant::now();
            let (results, gpu_time) = runner.run(thresholds, &stop)?;
            walls.push(start.elapsed());
            timestamps.extend(gpu_time);
            results_match &= results == reference;
        }
        let timestamps = (timestamps.len() == walls.len()).then(|| median(&mut timestamps));
        rows.push(runner.row(median(&mut walls), timestamps, results_match));
    }
    let baseline = rows.first().map_or(1.0, |r| r.median_s);
    for row in &mut rows {
        row.speedup = baseline / row.median_s.max(1e-12);
    }
    let gpu_upload_s = runners
        .iter()
        .filter(|r| r.session.gpu().is_some())
        .map(|r| r.session.upload_time().as_secs_f64())
        .reduce(f64::min);
    let gpu_array_bytes = runners.iter().find_map(|r| r.session.gpu_buffer_bytes());
    let gpu_upload_gb_per_s = gpu_upload_s
        .zip(gpu_array_bytes)
        .map(|(s, bytes)| bytes as f64 / s.max(1e-9) / 1e9);
    Ok(BenchReport {
        adapter: gpu.map(|g| g.summary()),
        gpu_upload_s,
        gpu_array_bytes,
        gpu_upload_gb_per_s,
        workload: Workload {
            elements: array.len(),
            thresholds: thresholds.len(),
            runs: runs.max(1),
        },
        rows,
    })
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

impl Row {
    pub fn label(&self) -> String {
        match self.threads {
            Some(1) => format!("{} {}, 1 thread", self.backend, self.algorithm),
            Some(t) => format!("{} {}, {t} threads", self.backend, self.algorithm),
            None => format!("{} {}", self.backend, self.algorithm),
        }
    }
}

impl BenchReport {
    /// The readable table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<26} {:>12} {:>10}  {:<8} {:>12}\n",
            "", "median", "speed-up", "results", "wall median"
        );
        for row in &self.rows {
            out += &format!(
                "{:<26} {:>10.4} s {:>9.1}x  {:<8} {:>10.4} s{}\n",
                row.label(),
                row.median_s,
                row.speedup,
                if row.results_match { "match" } else { "DIFFER" },
                row.wall_median_s,
                if row.timing == "timestamps" {
                    "  (median: GPU timestamps)"
                } else {
                    ""
                }
            );
        }
        if let Some(upload) = self.gpu_upload_s {
            out += &format!("{:<26} {upload:>10.4} s", "gpu upload (once)");
            if let (Some(bytes), Some(rate)) = (self.gpu_array_bytes, self.gpu_upload_gb_per_s) {
                out += &format!(
                    "  ({:.1} MB on the GPU, {rate:.2} GB/s)",
                    bytes as f64 / 1e6
                );
            }
            out.push('\n');
        }
        out
    }
}

/// `divgpu bench`'s flags.
pub struct BenchOptions {
    pub runs: usize,
    pub json: bool,
    pub chart: Option<std::path::PathBuf>,
    /// `None`: no GPU rows; `Some(name)`: the adapter named, or any.
    pub adapter: Option<Option<String>>,
}

/// `divgpu bench`: the array and thresholds its data flags give (a usage error is exit 2), then
/// [`bench`].
pub fn command(data: DataArgs, options: &BenchOptions) -> std::result::Result<ExitCode, Failure> {
    match data.sources() {
        Ok((source, thresholds)) => bench(&source, &thresholds, options),
        Err(usage) => {
            note!("{usage}");
            Ok(ExitCode::from(2))
        }
    }
}

fn bench(
    source: &job::Source,
    thresholds: &job::Thresholds,
    options: &BenchOptions,
) -> std::result::Result<ExitCode, Failure> {
    // Ctrl-C stops the bench as it stops a run: exit 130, nothing on stdout
    let console = &Console::new();
    let (array, thresholds) = job::load(source, thresholds)?;
    let gpu = match &options.adapter {
        None => None,
        Some(name) => match divgpu::session::open_gpu(Backend::Gpu, name.as_deref()) {
            Ok(gpu) => gpu,
            Err(Error::NoAdapter(_)) if name.is_none() => {
                note!("no GPU adapter found; the bench has CPU rows only");
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(warning) = gpu
        .as_ref()
        .and_then(|g| divgpu::gpu::context::software_warning(g.adapter_info()))
    {
        note!("{warning}");
    }
    let report = run(
        &Arc::new(array),
        &thresholds,
        options.runs,
        gpu.as_ref(),
        console,
        &mut |row| note!("bench: {row} ..."),
    )?;
    if let Some(path) = &options.chart {
        chart::write(&report, path)?;
        note!("wrote {}", path.display());
    }
    write_stdout(|out| {
        if options.json {
            serde_json::to_writer(&mut *out, &report)?;
            out.write_all(b"\n")
        } else {
            out.write_all(report.table().as_bytes())
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
