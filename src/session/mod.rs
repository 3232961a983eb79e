//! A session: one array and everything its queries need, built once and kept for as long as
//! the program runs. The CLI's one batch, `--queries`' stream, `divgpu bench`, the tests and the
//! Python package all answer through it.
//!
//! What a session holds:
//! - the array, behind an [`Arc`]: owned, memory-mapped, or a caller's buffer (a numpy array)
//!   that the handle keeps alive;
//! - on the GPU: the device, its pipelines and the array's keys, uploaded once (or, for arrays
//!   larger than the resident limit, streamed for every batch);
//! - on the CPU: a thread pool;
//! - for `fast`, the value index ([`ValueIndex`]), built by the first batch (or by
//!   [`Session::build_index`]) on every backend but `both`, whatever the values' range: then
//!   every later batch is a binary search per threshold, and neither the array nor the GPU is
//!   touched again. A GPU session computes `c` for the index's values on the GPU.
//!
//! [`Session::query`] takes `&self` and may be called from many threads at once: every query
//! has its own GPU buffers (a streamed array lends each query a ring of its own), the CPU pool
//! takes jobs from every caller, and the index is built once, by the first caller that needs
//! it, while the others wait for it; once built it is read without a lock.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::cpu;
use crate::error::{Error, Result};
use crate::fork::{ForkMutex, ProcessLocal};
use crate::gpu::registry::{self, Opened};
use crate::gpu::{context, AdapterSummary, GpuArray, GpuContext, UploadOptions};
use crate::guard;
use crate::index::{self, Counter, IndexStats, Unavailable, ValueIndex};
use crate::input::{Array, Integers};
use crate::query::Plan;
use crate::report::Comparison;
use crate::{Algorithm, Observer};

mod options;
mod threads;

pub use options::{Answer, AnswerTimings, Backend, Options};
use threads::Threads;

struct GpuSide {
    context: Arc<GpuContext>,
    array: GpuArray,
    upload: Duration,
}

/// What became of the value index: set once, then read without a lock.
enum Built {
    Ready(Box<ValueIndex>),
    /// Over the memory limit: every batch is a pass.
    Unavailable(Unavailable),
}

/// Where a session's value index stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexState {
    /// The session never builds one: `naive`, `both`, or an index not asked for.
    Off,
    /// Not built yet: the next `fast` batch (or [`Session::build_index`]) builds it.
    NotBuilt,
    Ready(IndexStats),
    /// It would not fit the memory limit: every batch is a pass.
    Unavailable(Unavailable),
}

impl std::fmt::Display for IndexState {
    /// One line for the user: what answers the next batch.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexState::Off => write!(f, "no value index: every batch is a pass over the array"),
            IndexState::NotBuilt => write!(f, "value index not built yet"),
            IndexState::Ready(stats) => {
                write!(f, "value index: {}", stats.kind)?;
                if let Some(distinct) = stats.distinct {
                    write!(f, ", {distinct} distinct values")?;
                }
                write!(f, ", {} bytes", stats.bytes)?;
                if let Some(counted) = stats.counted {
                    write!(f, ", {counted} counted")?;
                }
                write!(
                    f,
                    ", built in {:.3} s; later batches are look-ups",
                    stats.build_time.as_secs_f64()
                )
            }
            IndexState::Unavailable(why) => write!(f, "no value index: {why}"),
        }
    }
}

/// See the module's documentation.
pub struct Session {
    array: Arc<Array>,
    /// Elements: the array's, or a saved index's.
    len: usize,
    algorithm: Algorithm,
    keep_index: bool,
    index_memory: Option<u64>,
    /// Never used, nor freed, by a process forked from the one that opened it.
    gpu: Option<ProcessLocal<GpuSide>>,
    /// Whether the CPU backend answers batches (alone, or with [`Backend::Both`]).
    run_cpu: bool,
    threads: Threads,
    index: OnceLock<Built>,
    /// Held by the one caller that builds the index; the others wait on it.
    building: ForkMutex,
    /// Held by the one caller that extends the index's counted values ([`Session::cover`]).
    extending: ForkMutex,
    /// What panicked, once something did ([`Session::guarded`]): every later call is that error.
    poisoned: OnceLock<(&'static str, String)>,
    notes: Vec<String>,
    /// What the user should know about the adapter chosen (also among `notes`).
    choice_note: Option<String>,
}

/// The GPU for `backend`: the one place divgpu chooses an adapter, opened once per process and
/// shared ([`crate::gpu::registry`]). `Ok(None)` for [`Backend::Cpu`], and for
/// [`Backend::Auto`] when no hardware GPU (nor the adapter named) is there; an error for
/// [`Backend::Gpu`] and [`Backend::Both`] without one.
pub fn open_gpu(backend: Backend, adapter: Option<&str>) -> Result<Option<Arc<GpuContext>>> {
    open_gpu_with(backend, adapter, true)
}

/// [`open_gpu`], with the adapter's 64-bit shader integers for values of 2^32 and above only
/// when `shader_int64` (and the adapter has them; see [`GpuContext::with_shader_int64`]).
pub fn open_gpu_with(
    backend: Backend,
    adapter: Option<&str>,
    shader_int64: bool,
) -> Result<Option<Arc<GpuContext>>> {
    choose_gpu(backend, adapter, shader_int64).map(|opened| opened.gpu)
}

/// [`open_gpu_with`], with the note the choice carries (a `CUDA_VISIBLE_DEVICES` that could not
/// be honoured), which every session on it shows.
fn choose_gpu(backend: Backend, adapter: Option<&str>, shader_int64: bool) -> Result<Opened> {
    let none = Opened {
        gpu: None,
        note: None,
    };
    let hardware_only = match backend {
        Backend::Cpu => return Ok(none),
        // a software rasteriser is slower than rayon: only real GPUs, unless one is named
        Backend::Auto => true,
        Backend::Gpu | Backend::Both => false,
    };
    match registry::open(adapter, hardware_only, shader_int64) {
        // no GPU opens in this process: `auto` runs on the CPU and says why
        Err(Error::Forked { .. }) if backend == Backend::Auto => Ok(none),
        Err(e) => Err(e),
        Ok(opened) if opened.gpu.is_some() || backend == Backend::Auto => Ok(opened),
        Ok(_) => Err(Error::NoAdapter(context::no_adapter_message())),
    }
}

impl Session {
    /// Opens the backend `options` asks for and readies `array` on it: uploaded once to the GPU,
    /// a pool started on the CPU.
    pub fn new(array: Arc<Array>, options: &Options) -> Result<Session> {
        let opened = choose_gpu(options.backend, options.adapter.as_deref(), true)?;
        let mut session = Session::opened(array, opened.gpu, options)?;
        session.notes.extend(opened.note.clone());
        session.choice_note = opened.note;
        Ok(session)
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
            (Backend::Auto, None) => notes.push(match context::forked_from() {
                Some(owner) => format!(
                    "no GPU in a process forked from one that had opened a GPU (process \
                     {owner}); running on the CPU"
                ),
                None => match context::nvidia_hint() {
                    Some(hint) => {
                        format!("no hardware GPU adapter found; running on the CPU. {hint}")
                    }
                    None => "no hardware GPU adapter found; running on the CPU".to_string(),
                },
            }),
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
        let threads = cpu::check_threads(options.threads)?;
        let run_cpu = gpu.is_none() || options.backend == Backend::Both;
        // a context opened before this process was forked from its opener
        if let (Some(_), Some(owner)) = (&gpu, context::forked_from()) {
            return Err(Error::Forked { owner });
        }
        let gpu = match gpu {
            Some(context) => {
                notes.extend(context::software_warning(context.adapter_info()));
                let start = Instant::now();
                let upload = UploadOptions {
                    chunk_elements: options.chunk_elements,
                    resident_bytes: options.resident_bytes,
                };
                let uploaded = GpuArray::upload(&context, &array, upload)?;
                Some(ProcessLocal::new(GpuSide {
                    context,
                    array: uploaded,
                    upload: start.elapsed(),
                }))
            }
            None => None,
        };
        Ok(Session {
            len: array.len(),
            array,
            algorithm: options.algorithm,
            keep_index: options.keep_index,
            index_memory: options.index_memory,
            gpu,
            run_cpu,
            threads: Threads::new(threads),
            index: OnceLock::new(),
            building: ForkMutex::default(),
            extending: ForkMutex::default(),
            poisoned: OnceLock::new(),
            notes,
            choice_note: None,
        })
    }

    /// Runs `work`, a call on this session: a panic in it (a bug) is [`Error::Panicked`], and
    /// poisons the session, which answers every later call with that error rather than a
    /// number that half-done work might have left wrong.
    fn guarded<R>(&self, doing: &'static str, work: impl FnOnce() -> Result<R>) -> Result<R> {
        let poisoned = |(doing, message): &(&'static str, String)| Error::Panicked {
            doing,
            message: message.clone(),
        };
        if let Some(p) = self.poisoned.get() {
            return Err(poisoned(p));
        }
        match guard::catch(doing, work) {
            Err(Error::Panicked { doing, message }) => {
                Err(poisoned(self.poisoned.get_or_init(|| (doing, message))))
            }
            outcome => outcome,
        }
    }

    /// Answers one batch of thresholds (at least one). `observer` hears of the work and can
    /// stop it ([`Error::Cancelled`]).
    pub fn query(&self, thresholds: &Integers, observer: &dyn Observer) -> Result<Answer> {
        self.guarded("counting", || self.answer(thresholds, observer))
    }

    fn answer(&self, thresholds: &Integers, observer: &dyn Observer) -> Result<Answer> {
        if thresholds.is_empty() {
            return Err(Error::Threshold("no thresholds given".to_string()));
        }
        if let Some(index) = self.index(observer)? {
            let start = Instant::now();
            let top = thresholds.iter().max().expect("at least one threshold");
            self.cover(index, top, observer)?;
            let results = self.look_up(index, thresholds)?;
            return Ok(Answer {
                results,
                comparison: None,
                timings: AnswerTimings {
                    compute: start.elapsed(),
                    from_index: true,
                    ..AnswerTimings::default()
                },
            });
        }
        let plan = Plan::of(thresholds);
        let mut timings = AnswerTimings::default();
        let gpu_results = match self.gpu_side()? {
            Some(gpu) => {
                let start = Instant::now();
                let (results, t) =
                    crate::gpu::query(&gpu.context, &gpu.array, &plan, self.algorithm, observer)?;
                timings.compute += start.elapsed().saturating_sub(t.readback);
                timings.readback = t.readback;
                timings.gpu_passes = t.gpu;
                Some(results)
            }
            None => None,
        };
        let cpu_results = if self.run_cpu {
            let start = Instant::now();
            let results = self.threads.run(|| {
                cpu::run(
                    &self.array,
                    &plan,
                    self.algorithm,
                    self.threads.threads,
                    observer,
                )
            })??;
            timings.compute += start.elapsed();
            Some(results)
        } else {
            None
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

    /// Whether this session answers from a value index.
    fn uses_index(&self) -> bool {
        self.algorithm == Algorithm::Fast
            && self.keep_index
            && !(self.gpu.is_some() && self.run_cpu)
    }

    /// The value index, built once: the first caller builds it, the others wait for it; once
    /// built, read without a lock. `None` when the session does not use one or it did not fit.
    fn index(&self, observer: &dyn Observer) -> Result<Option<&ValueIndex>> {
        fn ready(built: &Built) -> Option<&ValueIndex> {
            match built {
                Built::Ready(index) => Some(index),
                Built::Unavailable(_) => None,
            }
        }
        if !self.uses_index() {
            return Ok(None);
        }
        if let Some(built) = self.index.get() {
            return Ok(ready(built));
        }
        // a build cut off by a fork left nothing in `index`: a forked child builds its own
        self.building.with(|_| {
            if let Some(built) = self.index.get() {
                return Ok(ready(built));
            }
            let limits = index::Limits {
                memory: self.index_memory,
                dense: self.gpu.is_none(),
            };
            // cancelled, nothing is kept and the next batch tries again
            let built = self
                .threads
                .run(|| ValueIndex::build(&self.array, limits, observer))??;
            // A file truncated or rewritten while it was read: the index would mix two files.
            self.array.check_unchanged()?;
            let built = match built {
                Ok(index) => Built::Ready(Box::new(index)),
                Err(why) => Built::Unavailable(why),
            };
            Ok(ready(self.index.get_or_init(|| built)))
        })
    }

    /// Makes `index` answer every threshold up to `top` ([`ValueIndex::cover`]), on the
    /// session's threads. One caller at a time, and the others wait here, outside the pool:
    /// a caller that waited inside it would hold a worker that the one computing needs, and on
    /// a pool of two that deadlocked.
    fn cover(&self, index: &ValueIndex, top: i128, observer: &dyn Observer) -> Result<()> {
        if index.covers(top) {
            return Ok(());
        }
        // (an extension cut off by a fork is the value index's to refuse: `ValueIndex::cover`)
        self.extending.with(|_| {
            if index.covers(top) {
                return Ok(());
            }
            let counter = self.counter()?;
            self.threads.run(|| index.cover(top, counter, observer))?
        })
    }

    /// Who computes `c` for the value index: the GPU where the session has one.
    fn counter(&self) -> Result<Counter<'_>> {
        Ok(match self.gpu_side()? {
            Some(gpu) => Counter::Gpu(&gpu.context),
            None => Counter::Cpu,
        })
    }

    /// The session's GPU; an error in a process forked from the one that opened it.
    fn gpu_side(&self) -> Result<Option<&GpuSide>> {
        match &self.gpu {
            None => Ok(None),
            Some(local) => local.here().map(Some),
        }
    }

    /// Each threshold's answer from `index` (which covers them all), on the session's threads
    /// for a large batch.
    fn look_up(&self, index: &ValueIndex, thresholds: &Integers) -> Result<Vec<u64>> {
        use rayon::prelude::*;
        /// Below this many thresholds one thread answers in microseconds; handing the work to
        /// the pool would cost more.
        const PARALLEL: usize = 1 << 14;
        let at_most = |t: i128| {
            index
                .at_most(t)?
                .ok_or_else(|| Error::Data(format!("the value index does not reach threshold {t}")))
        };
        if thresholds.len() < PARALLEL {
            return thresholds.iter().map(at_most).collect();
        }
        self.threads.run(|| match thresholds {
            Integers::Narrow(ts) => ts.par_iter().map(|&t| at_most(t.into())).collect(),
            Integers::Wide(ts) => ts.par_iter().map(|&t| at_most(t)).collect(),
        })?
    }

    /// Builds the value index now rather than on the first batch (`divgpu.Index(...,
    /// build_index=True)`), `c` of every distinct value included, and says what became of it.
    /// An error for a session that never uses one.
    pub fn build_index(&self, observer: &dyn Observer) -> Result<IndexState> {
        self.guarded("building the value index", || self.build_all(observer))
    }

    fn build_all(&self, observer: &dyn Observer) -> Result<IndexState> {
        if !self.uses_index() {
            return Err(Error::Option {
                name: "build_index",
                message: "needs algorithm 'fast', a backend other than 'both', and the index \
                          kept"
                    .into(),
            });
        }
        if let Some(index) = self.index(observer)? {
            self.cover(index, crate::input::MAX_VALUE, observer)?;
        }
        Ok(self.index_state())
    }

    /// A session that answers from a saved index file ([`crate::index::file`]), mapped, with
    /// no array: every batch is look-ups, on the CPU. `options.backend` must be `auto` or
    /// `cpu`, and the algorithm `fast` (the file holds no elements to pass over).
    pub fn load(path: &Path, options: &Options) -> Result<Session> {
        if matches!(options.backend, Backend::Gpu | Backend::Both) {
            return Err(Error::Option {
                name: "backend",
                message: format!(
                    "is '{}', but an index file is answered by look-ups on the CPU",
                    options.backend.name()
                ),
            });
        }
        if options.algorithm != Algorithm::Fast || !options.keep_index {
            return Err(Error::Option {
                name: "algorithm",
                message: "must be 'fast' for an index file, which holds no elements to pass over"
                    .into(),
            });
        }
        let index = ValueIndex::open(path)?;
        let mut session = Session::build(
            Arc::new(Array::from_i64(Vec::new())),
            None,
            &Options {
                backend: Backend::Cpu,
                ..options.clone()
            },
            Vec::new(),
        )?;
        session.len = index.stats().elements;
        session.index = OnceLock::from(Built::Ready(Box::new(index)));
        Ok(session)
    }

    /// Saves the session's value index to `path` (atomically: see [`crate::index::file`]),
    /// building it first, every value counted, where it is not, and returns the file's
    /// [`crate::index::file::IndexFile::fingerprint`]. An error for a session with no index
    /// (`naive`, `both`) or one over the memory limit.
    pub fn save(&self, path: &Path, observer: &dyn Observer) -> Result<u32> {
        self.guarded("saving the value index", || self.save_index(path, observer))
    }

    fn save_index(&self, path: &Path, observer: &dyn Observer) -> Result<u32> {
        if !self.uses_index() {
            return Err(Error::Option {
                name: "save",
                message: "needs an index: algorithm 'fast' and a backend other than 'both'".into(),
            });
        }
        match self.build_all(observer)? {
            IndexState::Unavailable(why) => {
                Err(Error::Data(format!("there is no index to save: {why}")))
            }
            _ => match self.index.get() {
                Some(Built::Ready(index)) => index.save(path),
                _ => Err(Error::Data("there is no index to save".into())),
            },
        }
    }

    /// The fingerprint of the index file a session [`Session::load`]ed answers from.
    pub fn file_fingerprint(&self) -> Option<u32> {
        match self.index.get() {
            Some(Built::Ready(index)) => index.fingerprint(),
            _ => None,
        }
    }

    /// Where the value index stands.
    pub fn index_state(&self) -> IndexState {
        if !self.uses_index() {
            return IndexState::Off;
        }
        match self.index.get() {
            None => IndexState::NotBuilt,
            Some(Built::Ready(index)) => IndexState::Ready(index.stats()),
            Some(Built::Unavailable(why)) => IndexState::Unavailable(why.clone()),
        }
    }

    /// The index memory limit the session was given.
    pub fn index_memory(&self) -> Option<u64> {
        self.index_memory
    }

    /// The array the session answers for.
    pub fn array(&self) -> &Arc<Array> {
        &self.array
    }

    /// Elements in the array (for a saved index, in the array it was built from).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `"gpu"`, `"cpu"` or `"both"`: where the queries run (`auto` resolved).
    pub fn backend(&self) -> &'static str {
        match (&self.gpu, self.run_cpu) {
            (Some(_), true) => "both",
            (Some(_), false) => "gpu",
            _ => "cpu",
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The adapter the GPU part runs on; `None` when only the CPU runs.
    pub fn adapter(&self) -> Option<AdapterSummary> {
        self.gpu.as_ref().map(|g| g.data().context.summary())
    }

    /// The GPU context, shared with whoever else holds it; `None` in a process forked from the
    /// one that opened it.
    pub fn gpu(&self) -> Option<&Arc<GpuContext>> {
        self.gpu.as_ref()?.get().map(|g| &g.context)
    }

    /// Whether the GPU streams the array for every batch (it is above the resident limit).
    pub fn is_streamed(&self) -> bool {
        self.gpu
            .as_ref()
            .is_some_and(|g| g.data().array.is_streamed())
    }

    /// The top of the divisor table the GPU keeps for `fast` (c(n) for n up to it), once a
    /// batch has built one.
    pub fn gpu_divisor_table(&self) -> Option<u32> {
        let gpu = self.gpu.as_ref()?.get()?;
        gpu.array.divisor_table_top()
    }

    /// CPU threads; `None` when only the GPU runs.
    pub fn threads(&self) -> Option<usize> {
        self.run_cpu.then_some(self.threads.threads)
    }

    /// Why the adapter was chosen as it was, where the user should know: a
    /// `CUDA_VISIBLE_DEVICES` that could not be honoured (the Python package warns with it).
    pub fn choice_note(&self) -> Option<&str> {
        self.choice_note.as_deref()
    }

    /// How long opening the device's buffers and uploading the array took (zero on the CPU).
    pub fn upload_time(&self) -> Duration {
        self.gpu
            .as_ref()
            .map_or(Duration::ZERO, |g| g.data().upload)
    }

    /// Bytes of GPU memory the array's elements take (resident chunks, or a streamed array's
    /// spare rings); `None` without a GPU. Tables and per-batch buffers are not counted.
    pub fn gpu_buffer_bytes(&self) -> Option<u64> {
        self.gpu.as_ref().map(|g| g.data().array.buffer_bytes())
    }

    /// Whether `thresholds` would be answered by look-ups alone: the index is built and has
    /// counted every value up to the largest of them (nothing to compute, nothing to stop).
    pub fn answers_by_look_up(&self, thresholds: &Integers) -> bool {
        match self.index.get() {
            Some(Built::Ready(index)) => thresholds.iter().max().is_some_and(|t| index.covers(t)),
            _ => false,
        }
    }

    /// Whether every batch is answered from the value index (known once it is built).
    pub fn has_index(&self) -> bool {
        matches!(self.index.get(), Some(Built::Ready(_)))
    }

    /// Lines for the user about how the session was set up (no hardware GPU, a software
    /// adapter).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}
