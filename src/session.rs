//! A session: one array and everything its queries need, built once and kept for as long as
//! the program runs. The CLI's one batch, `--queries`' stream, `divgpu bench`, the tests and the
//! Python package all answer through it.
//!
//! What a session holds:
//! - the array, behind an [`Arc`]: owned, memory-mapped, or a caller's buffer (a numpy array)
//!   that the handle keeps alive;
//! - on the GPU: the device, its pipelines and the array's keys, uploaded once (or, for arrays
//!   larger than the resident limit, streamed for every batch);
//! - on the CPU: a thread pool, and for `fast` the prefix table when the array's values span few
//!   enough values (see [`PrefixTable`]): then every batch after the first is one look-up per
//!   threshold, whatever the array's size.
//!
//! [`Session::query`] takes `&self` and may be called from many threads at once: every query
//! has its own GPU buffers (a streamed array lends each query a ring of its own), the CPU pool
//! takes jobs from every caller, and the table is built once, by the first caller that needs
//! it, while the others wait for it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cpu::{self, PrefixTable};
use crate::error::{Error, Result};
use crate::gpu::{context, AdapterSummary, GpuArray, GpuContext, UploadOptions};
use crate::input::{Array, Integers};
use crate::query::Plan;
use crate::report::Comparison;
use crate::{Algorithm, Observer};

/// Where the queries run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A hardware GPU if there is one (or the adapter asked for by name), else the CPU.
    Auto,
    Gpu,
    Cpu,
    /// GPU and CPU, compared on every batch.
    Both,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
            Backend::Both => "both",
        }
    }

    /// `auto`, `gpu`, `cpu` or `both`.
    pub fn parse(name: &str) -> Option<Backend> {
        [Backend::Auto, Backend::Gpu, Backend::Cpu, Backend::Both]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

/// How a session is built.
#[derive(Clone, Debug)]
pub struct Options {
    pub backend: Backend,
    pub algorithm: Algorithm,
    /// CPU threads, 0 for one per core (at most [`cpu::MAX_THREADS`]).
    pub threads: usize,
    /// An adapter whose name contains this (else `WGPU_ADAPTER_NAME`, else the best one).
    pub adapter: Option<String>,
    /// Elements per GPU chunk buffer; `None`: the most the adapter allows.
    pub chunk_elements: Option<usize>,
    /// Keep the array's keys on the GPU up to this many bytes; stream them above.
    pub resident_bytes: u64,
    /// Build and keep the CPU's prefix table for `fast` where the values allow one. A program
    /// that answers one batch and exits (the CLI without `--queries`) does better with one
    /// pass; a session that lives answers every later batch from the table.
    pub keep_table: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Auto,
            algorithm: Algorithm::Fast,
            threads: 0,
            adapter: None,
            chunk_elements: None,
            resident_bytes: UploadOptions::default().resident_bytes,
            keep_table: true,
        }
    }
}

/// One batch's answer.
#[derive(Debug)]
pub struct Answer {
    /// One sum per threshold, in the order given (with [`Backend::Both`], the CPU's).
    pub results: Vec<u64>,
    /// With [`Backend::Both`]: both backends' results and the first disagreement.
    pub comparison: Option<Comparison>,
    pub timings: AnswerTimings,
}

/// Wall-clock times of one batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnswerTimings {
    /// The queries themselves (GPU and CPU added up with [`Backend::Both`]).
    pub compute: Duration,
    /// Copying the GPU's sums back.
    pub readback: Duration,
    /// The GPU's own time for its passes, by timestamp queries, where the adapter has them.
    pub gpu_passes: Option<Duration>,
    /// Whether the CPU answered from the session's prefix table (no pass over the array).
    pub from_table: bool,
}

struct GpuSide {
    context: Arc<GpuContext>,
    array: GpuArray,
    upload: Duration,
}

struct CpuSide {
    threads: usize,
    /// The session's own pool, started by the first query that needs it; never for one
    /// thread, where each query runs on a thread of its own, so that callers on several
    /// threads run side by side (the post's experiment).
    pool: OnceLock<cpu::Pool>,
    table: Mutex<Table>,
}

enum Table {
    /// Not looked for yet (or the last try was cancelled).
    Unknown,
    /// The values span too many values: every batch is a pass.
    None,
    Ready(Arc<PrefixTable>),
}

/// See the module's documentation.
pub struct Session {
    array: Arc<Array>,
    algorithm: Algorithm,
    keep_table: bool,
    gpu: Option<GpuSide>,
    cpu: Option<CpuSide>,
    notes: Vec<String>,
}

/// Runs `work` on `side`'s threads: on the caller's own pool when it is one of that many
/// threads (the CLI's), else on the session's, else (one thread) on a pool of one made for this
/// call, so that callers on several threads each have their own.
fn in_pool<R: Send>(side: &CpuSide, work: impl FnOnce() -> R + Send) -> Result<R> {
    if rayon::current_thread_index().is_some() && rayon::current_num_threads() == side.threads {
        return Ok(work());
    }
    if side.threads == 1 {
        return Ok(cpu::pool(1, false)?.install(work));
    }
    let pool = match side.pool.get() {
        Some(pool) => pool,
        None => {
            // two first callers may both start one; one is kept, the other joined at once
            let started = cpu::pool(side.threads, false)?;
            match side.pool.set(started) {
                Ok(()) => side.pool.get().expect("just set"),
                Err(spare) => {
                    drop(spare);
                    side.pool.get().expect("set by the other caller")
                }
            }
        }
    };
    Ok(pool.install(work))
}

/// Opens the GPU for `backend`: the one place divgpu chooses and opens an adapter. `Ok(None)`
/// for [`Backend::Cpu`], and for [`Backend::Auto`] when no hardware GPU (nor the adapter named)
/// is there; an error for [`Backend::Gpu`] and [`Backend::Both`] without one.
pub fn open_gpu(backend: Backend, adapter: Option<&str>) -> Result<Option<GpuContext>> {
    open_gpu_with(backend, adapter, true)
}

/// [`open_gpu`], with the adapter's 64-bit shader integers for values of 2^32 and above only
/// when `shader_int64` (and the adapter has them; see [`GpuContext::with_shader_int64`]).
pub fn open_gpu_with(
    backend: Backend,
    adapter: Option<&str>,
    shader_int64: bool,
) -> Result<Option<GpuContext>> {
    let hardware_only = match backend {
        Backend::Cpu => return Ok(None),
        // a software rasteriser is slower than rayon: only real GPUs, unless one is named
        Backend::Auto => true,
        Backend::Gpu | Backend::Both => false,
    };
    let instance = context::instance();
    match context::choose_adapter(&instance, adapter, hardware_only)? {
        Some(found) => GpuContext::with_shader_int64(&found, shader_int64).map(Some),
        None if backend == Backend::Auto => Ok(None),
        None => Err(Error::NoAdapter(context::no_adapter_message())),
    }
}

impl Session {
    /// Opens the backend `options` asks for and readies `array` on it: uploaded once to the GPU,
    /// a pool started on the CPU.
    pub fn new(array: Arc<Array>, options: &Options) -> Result<Session> {
        let gpu = open_gpu(options.backend, options.adapter.as_deref())?;
        Session::opened(array, gpu.map(Arc::new), options)
    }

    /// A session on what [`open_gpu`] gave for `options.backend` and `options.adapter`, opened
    /// once and shared by many sessions (the Python package's Dask workers make one per
    /// process). `None` runs on the CPU, and is an error for [`Backend::Gpu`] and
    /// [`Backend::Both`]: never a silent fallback.
    pub fn opened(
        array: Arc<Array>,
        gpu: Option<Arc<GpuContext>>,
        options: &Options,
    ) -> Result<Session> {
        let mut notes = Vec::new();
        match (options.backend, &gpu) {
            (Backend::Gpu | Backend::Both, None) => {
                return Err(Error::NoAdapter(context::no_adapter_message()))
            }
            (Backend::Cpu, Some(_)) => {
                return Err(Error::Option {
                    name: "backend",
                    message: "is 'cpu', but a GPU was given".into(),
                })
            }
            (Backend::Auto, None) => {
                notes.push("no hardware GPU adapter found; running on the CPU".to_string())
            }
            _ => {}
        }
        Session::build(array, gpu, options, notes)
    }

    /// A session on a GPU already open (tests and benchmarks share one device among many
    /// sessions). `options.backend` must be [`Backend::Gpu`] or [`Backend::Both`].
    pub fn with_gpu(array: Arc<Array>, gpu: Arc<GpuContext>, options: &Options) -> Result<Session> {
        assert!(
            matches!(options.backend, Backend::Gpu | Backend::Both),
            "a session on a given GPU runs on it"
        );
        Session::build(array, Some(gpu), options, Vec::new())
    }

    fn build(
        array: Arc<Array>,
        gpu: Option<Arc<GpuContext>>,
        options: &Options,
        mut notes: Vec<String>,
    ) -> Result<Session> {
        if let Some(0) = options.chunk_elements {
            return Err(Error::Option {
                name: "chunk_elements",
                message: "must be at least 1".into(),
            });
        }
        let threads = cpu::thread_count(options.threads);
        if threads > cpu::MAX_THREADS {
            return Err(Error::Option {
                name: "threads",
                message: format!("{threads} is above the limit of {}", cpu::MAX_THREADS),
            });
        }
        let run_cpu = gpu.is_none() || options.backend == Backend::Both;
        let gpu = match gpu {
            Some(context) => {
                notes.extend(context::software_warning(context.adapter_info()));
                let start = Instant::now();
                let upload = UploadOptions {
                    chunk_elements: options.chunk_elements,
                    resident_bytes: options.resident_bytes,
                };
                let uploaded = context.upload(&array, upload)?;
                Some(GpuSide {
                    context,
                    array: uploaded,
                    upload: start.elapsed(),
                })
            }
            None => None,
        };
        let cpu = if run_cpu {
            Some(CpuSide {
                threads,
                pool: OnceLock::new(),
                table: Mutex::new(Table::Unknown),
            })
        } else {
            None
        };
        Ok(Session {
            array,
            algorithm: options.algorithm,
            keep_table: options.keep_table,
            gpu,
            cpu,
            notes,
        })
    }

    /// Answers one batch of thresholds (at least one). `observer` hears of the work and can
    /// stop it ([`Error::Cancelled`]).
    pub fn query(&self, thresholds: &Integers, observer: &dyn Observer) -> Result<Answer> {
        if thresholds.is_empty() {
            return Err(Error::Threshold("no thresholds given".to_string()));
        }
        let plan = Plan::of(thresholds);
        let mut timings = AnswerTimings::default();
        let gpu_results = match &self.gpu {
            Some(gpu) => {
                let start = Instant::now();
                let (results, t) =
                    gpu.context
                        .query(&gpu.array, &plan, self.algorithm, observer)?;
                timings.compute += start.elapsed().saturating_sub(t.readback);
                timings.readback = t.readback;
                timings.gpu_passes = t.gpu;
                Some(results)
            }
            None => None,
        };
        let cpu_results = match &self.cpu {
            Some(side) => {
                let start = Instant::now();
                let (results, from_table) = self.cpu_query(side, &plan, observer)?;
                timings.compute += start.elapsed();
                timings.from_table = from_table;
                Some(results)
            }
            None => None,
        };
        // A file truncated or rewritten while mapped: the answers may mix two files' elements.
        self.array.check_unchanged()?;
        let (results, comparison) = match (gpu_results, cpu_results) {
            (Some(gpu), Some(cpu)) => {
                let comparison = Comparison::new(plan.given(), gpu, cpu.clone());
                (cpu, Some(comparison))
            }
            (Some(results), None) | (None, Some(results)) => (results, None),
            (None, None) => unreachable!("a session runs at least one backend"),
        };
        Ok(Answer {
            results,
            comparison,
            timings,
        })
    }

    fn cpu_query(
        &self,
        side: &CpuSide,
        plan: &Plan,
        observer: &dyn Observer,
    ) -> Result<(Vec<u64>, bool)> {
        if self.algorithm == Algorithm::Fast && self.keep_table {
            if let Some(table) = self.table(side, observer)? {
                // O(Q): no pool, no pass
                let results = plan
                    .given()
                    .iter()
                    .map(|t| {
                        table
                            .at_most(t)
                            .expect("a session's table has no element below it")
                    })
                    .collect();
                return Ok((results, true));
            }
        }
        let results = in_pool(side, || {
            cpu::run(&self.array, plan, self.algorithm, side.threads, observer)
        })??;
        Ok((results, false))
    }

    /// The prefix table, built once: the first caller builds it, the others wait for it.
    fn table(&self, side: &CpuSide, observer: &dyn Observer) -> Result<Option<Arc<PrefixTable>>> {
        let mut table = side.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Table::Unknown = *table {
            // cancelled, it stays unknown and the next batch tries again
            *table = match in_pool(side, || PrefixTable::of_array(&self.array, observer))?? {
                Some(built) => Table::Ready(Arc::new(built)),
                None => Table::None,
            };
        }
        Ok(match &*table {
            Table::Ready(table) => Some(table.clone()),
            Table::Unknown | Table::None => None,
        })
    }

    /// The array the session answers for.
    pub fn array(&self) -> &Arc<Array> {
        &self.array
    }

    /// Elements in the array.
    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// `"gpu"`, `"cpu"` or `"both"`: where the queries run (`auto` resolved).
    pub fn backend(&self) -> &'static str {
        match (&self.gpu, &self.cpu) {
            (Some(_), Some(_)) => "both",
            (Some(_), None) => "gpu",
            _ => "cpu",
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The adapter the GPU part runs on; `None` when only the CPU runs.
    pub fn adapter(&self) -> Option<AdapterSummary> {
        self.gpu.as_ref().map(|g| g.context.summary())
    }

    /// The GPU context, shared with whoever else holds it.
    pub fn gpu(&self) -> Option<&Arc<GpuContext>> {
        self.gpu.as_ref().map(|g| &g.context)
    }

    /// Whether the GPU streams the array for every batch (it is above the resident limit).
    pub fn is_streamed(&self) -> bool {
        self.gpu.as_ref().is_some_and(|g| g.array.is_streamed())
    }

    /// The top of the divisor table the GPU keeps for `fast` (c(n) for n up to it), once a
    /// batch has built one.
    pub fn gpu_divisor_table(&self) -> Option<u32> {
        let gpu = self.gpu.as_ref()?;
        gpu.context.divisor_table_top(&gpu.array)
    }

    /// CPU threads; `None` when only the GPU runs.
    pub fn threads(&self) -> Option<usize> {
        self.cpu.as_ref().map(|c| c.threads)
    }

    /// How long opening the device's buffers and uploading the array took (zero on the CPU).
    pub fn upload_time(&self) -> Duration {
        self.gpu.as_ref().map_or(Duration::ZERO, |g| g.upload)
    }

    /// Bytes of GPU memory the array's elements take (resident chunks, or a streamed array's
    /// spare rings); `None` without a GPU. Tables and per-batch buffers are not counted.
    pub fn gpu_buffer_bytes(&self) -> Option<u64> {
        self.gpu.as_ref().map(|g| g.array.buffer_bytes())
    }

    /// Whether the CPU answers every batch from its prefix table (known once a `fast` batch
    /// ran on the CPU).
    pub fn has_table(&self) -> bool {
        self.cpu.as_ref().is_some_and(|c| {
            matches!(
                *c.table.lock().unwrap_or_else(|p| p.into_inner()),
                Table::Ready(_)
            )
        })
    }

    /// Lines for the user about how the session was set up (no hardware GPU, a software
    /// adapter).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}
