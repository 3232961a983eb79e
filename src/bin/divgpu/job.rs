//! A validated run: where the array and thresholds come from, which backend and algorithm. The
//! CLI builds one from its flags; [`execute`] loads it and answers it through a [`Session`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use divgpu::error::{Error, Result};
use divgpu::input::{self, Array, DType, Integers};
use divgpu::report::{Report, Timings};
use divgpu::session::{Backend, Options, Session};
use divgpu::{workload, Algorithm, Observer};

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

pub struct Job {
    pub source: Source,
    pub thresholds: Thresholds,
    pub backend: Backend,
    pub algorithm: Algorithm,
    /// CPU threads, 0 for one per core.
    pub threads: usize,
    /// Adapter name substring (else `WGPU_ADAPTER_NAME`).
    pub adapter: Option<String>,
    pub chunk_elements: Option<usize>,
    /// The most bytes a `--queries` session's value index may keep; `None`: no limit.
    pub index_memory: Option<u64>,
}

/// The report, and lines for stderr about how the run went.
pub struct Outcome {
    pub report: Report,
    pub notes: Vec<String>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Reads, maps or generates the array.
pub fn load_array(source: &Source) -> Result<Array> {
    match source {
        Source::Generated {
            size,
            max_value,
            seed,
        } => Ok(Array::from_i64(workload::generate(
            *size, *max_value, *seed,
        )?)),
        Source::File { path, raw_dtype } => Array::open(path, *raw_dtype),
    }
}

/// Whether `path` names a saved value index (`.divi`), which runs answer from without an array.
pub fn is_index_file(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(divgpu::index::file::EXTENSION))
}

/// The job's session: over its array (loaded, mapped or generated), or, for a saved index file,
/// over the file, mapped. `keep_index` as [`Options::keep_index`] (an index file always has
/// one).
pub fn open_session(job: &Job, keep_index: bool) -> Result<Session> {
    if let Source::File { path, .. } = &job.source {
        if is_index_file(path) {
            return Session::load(path, &job.options(true));
        }
    }
    Session::new(Arc::new(load_array(&job.source)?), &job.options(keep_index))
}

/// Reads, maps or generates the array, and reads the thresholds.
pub fn load(source: &Source, thresholds: &Thresholds) -> Result<(Array, Integers)> {
    Ok((load_array(source)?, load_thresholds(thresholds)?))
}

/// Reads the thresholds (at least one).
pub fn load_thresholds(thresholds: &Thresholds) -> Result<Integers> {
    let thresholds = match thresholds {
        Thresholds::List(list) => list.as_slice().into(),
        Thresholds::File(path) => input::read_integer_lines(path)?,
    };
    if thresholds.is_empty() {
        return Err(Error::Threshold("no thresholds given".to_string()));
    }
    Ok(thresholds)
}

/// Loads the array, builds a [`Session`] for one batch (no value index: one pass is what a
/// single batch costs; a saved index file is answered from), answers it, and reports.
pub fn execute(job: &Job, observer: &dyn Observer) -> Result<Outcome> {
    let started = Instant::now();
    let thresholds = load_thresholds(&job.thresholds)?;
    let (session, load_ms, upload) = match &job.source {
        Source::File { path, .. } if is_index_file(path) => {
            let session = Session::load(path, &job.options(true))?;
            (session, ms(started), 0.0)
        }
        source => {
            let array = load_array(source)?;
            let load_ms = ms(started);
            let start = Instant::now();
            let session = Session::new(Arc::new(array), &job.options(false))?;
            // opening the device and uploading the array; nothing on the CPU
            let upload = if session.gpu().is_some() {
                ms(start)
            } else {
                0.0
            };
            (session, load_ms, upload)
        }
    };
    let answer = session.query(&thresholds, observer)?;
    let timings = Timings {
        load: load_ms,
        upload,
        compute: millis(answer.timings.compute),
        readback: millis(answer.timings.readback),
        gpu_passes: answer.timings.gpu_passes.map(millis),
        total: ms(started),
    };
    Ok(Outcome {
        report: Report {
            results: answer.results,
            thresholds,
            backend: session.backend(),
            algorithm: job.algorithm.name(),
            adapter: session.adapter(),
            elements: session.len(),
            threads: session.threads(),
            timings_ms: timings,
            comparison: answer.comparison,
        },
        notes: session.notes().to_vec(),
    })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Job {
    /// The session options this job asks for.
    pub fn options(&self, keep_index: bool) -> Options {
        Options {
            backend: self.backend,
            algorithm: self.algorithm,
            threads: self.threads,
            adapter: self.adapter.clone(),
            chunk_elements: self.chunk_elements,
            keep_index,
            index_memory: self.index_memory,
            ..Options::default()
        }
    }
}
