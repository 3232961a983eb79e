//! `divgpu bench`: the post's experiment on the user's machine. Every backend and algorithm
//! answers the same queries over the same array (built, and uploaded, before any timing); each
//! row is the median of several runs after one warm-up, with its speed-up over the post's
//! algorithm on one CPU thread and whether its results match the exact reference.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::{AdapterSummary, GpuArray, GpuContext};
use crate::input::{Array, Integers};
use crate::query::Plan;
use crate::{cpu, Algorithm, Observer};

/// What was measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The adapter of the GPU rows; `null` when there were none.
    pub adapter: Option<AdapterSummary>,
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

/// One way to answer the queries.
enum Runner<'a> {
    Cpu(Algorithm, usize),
    Gpu(Algorithm, &'a GpuContext, &'a GpuArray<'a>),
}

impl Runner<'_> {
    /// The results, and the GPU's time for its passes where it has timestamp queries.
    fn run(
        &self,
        array: &Array,
        plan: &Plan,
        stop: &StopOnly,
    ) -> Result<(Vec<u64>, Option<Duration>)> {
        match self {
            Runner::Cpu(algorithm, threads) => {
                cpu::run(array, plan, *algorithm, *threads, stop).map(|r| (r, None))
            }
            Runner::Gpu(algorithm, gpu, uploaded) => gpu
                .query(uploaded, plan, *algorithm, stop)
                .map(|(r, t)| (r, t.gpu)),
        }
    }

    /// A row from the medians of wall-clock and (where every run had them) timestamp times.
    fn row(&self, wall: Duration, timestamps: Option<Duration>, results_match: bool) -> Row {
        let (backend, algorithm, threads) = match self {
            Runner::Cpu(a, t) => ("cpu", a.name(), Some(*t)),
            Runner::Gpu(a, _, _) => ("gpu", a.name(), None),
        };
        Row {
            backend,
            algorithm,
            threads,
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
    array: &Array,
    thresholds: &Integers,
    runs: usize,
    gpu: Option<&GpuContext>,
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
    let plan = Plan::new(thresholds.clone());
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let reference = cpu::run(array, &plan, Algorithm::Fast, 0, &stop)?;
    checked()?;
    let uploaded = gpu
        .map(|g| g.upload(array, Default::default()))
        .transpose()?;
    let mut runners = Vec::new();
    for algorithm in [Algorithm::Naive, Algorithm::Fast] {
        runners.push(Runner::Cpu(algorithm, 1));
        if all > 1 {
            runners.push(Runner::Cpu(algorithm, all));
        }
    }
    if let (Some(g), Some(u)) = (gpu, &uploaded) {
        runners.push(Runner::Gpu(Algorithm::Naive, g, u));
        runners.push(Runner::Gpu(Algorithm::Fast, g, u));
    }
    let mut rows: Vec<Row> = Vec::new();
    for runner in &runners {
        checked()?;
        progress(&runner.row(Duration::ZERO, None, true).label());
        let mut results_match = runner.run(array, &plan, &stop)?.0 == reference; // warm-up
        let mut walls = Vec::with_capacity(runs);
        let mut timestamps = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            checked()?;
            let start = Instant::now();
            let (results, gpu_time) = runner.run(array, &plan, &stop)?;
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
    Ok(BenchReport {
        adapter: gpu.map(GpuContext::summary),
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
        out
    }

    /// The speed-ups as a bar chart (log scale), written as SVG.
    pub fn chart(&self, path: &Path) -> Result<()> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let fail = |e: &dyn std::fmt::Display| Error::Data(format!("{}: {e}", path.display()));
        let top = self.rows.iter().map(|r| r.speedup).fold(1.0, f64::max) * 3.0;
        let floor = self.rows.iter().map(|r| r.speedup).fold(1.0, f64::min) / 3.0;
        let title = match &self.adapter {
            Some(a) => format!(
                "divgpu bench: speed-up over CPU naive, 1 thread (GPU: {})",
                a.name
            ),
            None => "divgpu bench: speed-up over CPU naive, 1 thread".to_string(),
        };
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let n = self.rows.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (0..n.saturating_sub(1)).into_segmented(),
                (floor..top).log_scale(),
            )
            .map_err(|e| fail(&e))?;
        let labels: Vec<String> = self.rows.iter().map(Row::label).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("speed-up (log scale)")
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(self.rows.iter().enumerate().map(|(i, r)| {
                let color = if r.backend == "gpu" { RED } else { BLUE };
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), floor),
                        (SegmentValue::Exact(i + 1), r.speedup),
                    ],
                    color.mix(0.7).filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(self.rows.iter().enumerate().map(|(i, r)| {
                let style = ("sans-serif", 14)
                    .into_text_style(&root)
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                Text::new(
                    format!("{:.1}x", r.speedup),
                    (SegmentValue::CenterOf(i), r.speedup * 1.05),
                    style,
                )
            }))
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))
    }
}
