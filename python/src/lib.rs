//! `divgpu._divgpu`: the extension module under the Python package `divgpu` (python/divgpu).
//! A `Session` holds a divgpu [`divgpu::Session`] over a numpy array read in place; the
//! package's `Index` wraps it with the argument checks and the array's write lock.
//!
//! PyO3 makes the bindings, rust-numpy (`numpy`) reads the arrays' layout and hands results
//! back as ndarrays. Every count runs with the GIL released (`Python::detach`).

mod arrow;
mod thresholds;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use divgpu::input::{Array, DType, ExternalBytes, Integers, MAX_VALUE, MIN_VALUE};
use divgpu::session::{Backend, IndexState, Options};
use divgpu::{Algorithm, Error, Observer};
use numpy::{
    PyArray1, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

// `divgpu`: where users name it (divgpu.DivgpuError), and where pickle finds it again, as a Dask
// worker's error reaches the client
create_exception!(
    divgpu,
    DivgpuError,
    PyRuntimeError,
    "A GPU or runtime error: no adapter, a lost device, an array changed underneath."
);

/// How often a count on the main thread looks for Ctrl-C (Python's signal handlers run only
/// there, and only when it holds the GIL).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::DType(m) => PyTypeError::new_err(m),
        Error::Threshold(m) => PyValueError::new_err(m),
        e @ Error::Option { .. } => PyValueError::new_err(e.to_string()),
        Error::Cancelled => PyKeyboardInterrupt::new_err("interrupted"),
        e => DivgpuError::new_err(e.to_string()),
    }
}

/// Runs a Python entry point's body: a panic in it (a bug) is `divgpu.DivgpuError` saying what
/// failed, never PyO3's `PanicException`, a `BaseException` that `except Exception` misses.
/// (Sessions catch their own panics, and poison themselves: `divgpu::guard`.)
fn guarded<R>(doing: &'static str, body: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(to_py(Error::Panicked {
            doing,
            message: divgpu::guard::message(payload.as_ref()),
        }))
    })
}

/// A numpy array's bytes, from its lowest element's byte to past its highest, kept alive (and
/// unmoved: numpy never moves a live array's data) by the reference held here.
struct Buffer {
    _owner: Py<PyAny>,
    start: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read; the reference keeps them alive, and `Py` may be dropped on
// any thread (PyO3 defers the decref until a thread holds the GIL).
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl ExternalBytes for Buffer {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: [start, start + len) is the array's extent, computed from its own shape and
        // strides, alive while `_owner` is.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

/// The array read in place: any integer dtype, either byte order, any shape and strides.
fn array_of(values: &Bound<'_, PyUntypedArray>) -> PyResult<Array> {
    let descr = values.dtype();
    let kind = descr.kind();
    let width = descr.itemsize();
    if !matches!(kind, b'i' | b'u') || !matches!(width, 1 | 2 | 4 | 8) {
        return Err(PyTypeError::new_err(format!(
            "divgpu counts arrays of integers (int8 ... uint64); this one is {}",
            descr.str()?
        )));
    }
    let big_endian = match descr.is_native_byteorder() {
        Some(true) => cfg!(target_endian = "big"),
        Some(false) => cfg!(target_endian = "little"),
        None => false,
    };
    let dtype = DType {
        signed: kind == b'i',
        width,
        big_endian,
    };
    let shape = values.shape().to_vec();
    let strides = values.strides().to_vec();
    // SAFETY: a live ndarray's data pointer
    let data = unsafe { (*values.as_array_ptr()).data } as *const u8;
    let empty = shape.contains(&0);
    // the extent of the elements' bytes around `data`
    let (mut below, mut above) = (0isize, width as isize);
    if !empty {
        for (&d, &s) in shape.iter().zip(&strides) {
            let reach = (d as isize - 1) * s;
            if reach < 0 {
                below += reach;
            } else {
                above += reach;
            }
        }
    }
    let buffer = Buffer {
        _owner: values.clone().into_any().unbind(),
        start: if empty {
            data
        } else {
            data.wrapping_offset(below)
        },
        len: if empty { 0 } else { (above - below) as usize },
    };
    Array::from_external(
        Box::new(buffer),
        dtype,
        &shape,
        &strides,
        if empty { 0 } else { (-below) as usize },
    )
    .map_err(to_py)
}

/// Watches a count for the thread that waits on it: stops it when set (Ctrl-C on the main
/// thread, or a progress callback that raised), and keeps its progress for the callback.
#[derive(Default)]
struct Watch {
    cancel: AtomicBool,
    /// Each [`Observer::start`] begins a stage (a pass, the index's counting) of `total` units.
    stage: AtomicU64,
    total: AtomicU64,
    done: AtomicU64,
}

impl Observer for Watch {
    fn start(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.stage.fetch_add(1, Ordering::Release);
    }

    fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::Relaxed);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Watch {
    /// `(stage, done, total)`, or `None` before the first stage.
    fn progress(&self) -> Option<(u64, u64, u64)> {
        let stage = self.stage.load(Ordering::Acquire);
        (stage > 0).then(|| {
            let total = self.total.load(Ordering::Relaxed);
            (stage, self.done.load(Ordering::Relaxed).min(total), total)
        })
    }
}

/// The CPU threads `threads` (a non-negative int) asks for (0: one per core), checked against
/// divgpu's limit (`divgpu::cpu::check_threads`, the one check): `ValueError` above it, however
/// large the int.
#[pyfunction]
fn check_threads(threads: &Bound<'_, PyAny>) -> PyResult<usize> {
    match threads.extract::<usize>() {
        Ok(n) => divgpu::cpu::check_threads(n).map_err(to_py),
        Err(_) => Err(to_py(divgpu::cpu::too_many_threads(threads.str()?))),
    }
}

/// A divgpu session over one numpy array.
#[pyclass(frozen, module = "divgpu._divgpu")]
struct Session {
    inner: Arc<divgpu::Session>,
}

/// Runs `work` with the GIL released. `interruptible` (the caller is Python's main thread):
/// the work runs on a thread of its own while this one looks for Ctrl-C, and KeyboardInterrupt
/// stops it within about [`SIGNAL_POLL`] plus the backend's own check. `progress`: the same,
/// and this thread calls `progress(done, total)` (with the GIL) about every [`SIGNAL_POLL`]
/// while the work advances, and once more when it is done; an exception the callback raises
/// stops the work and is raised here.
fn detached<R: Send>(
    py: Python<'_>,
    interruptible: bool,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(&Watch) -> divgpu::Result<R> + Send,
) -> PyResult<R> {
    guarded("counting", || watched(py, interruptible, progress, work))
}

/// [`detached`]'s work.
fn watched<R: Send>(
    py: Python<'_>,
    interruptible: bool,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(&Watch) -> divgpu::Result<R> + Send,
) -> PyResult<R> {
    let watch = Watch::default();
    if !interruptible && progress.is_none() {
        return py.detach(|| work(&watch)).map_err(to_py);
    }
    let mut stop: Option<PyErr> = None;
    let mut shown = None;
    // tells the callback of the progress not told yet (all of it at the end)
    let mut report = |py: Python<'_>, finished: bool| -> PyResult<()> {
        let (Some(callback), Some((stage, done, total))) = (&progress, watch.progress()) else {
            return Ok(());
        };
        let done = if finished { total } else { done };
        if shown != Some((stage, done)) {
            shown = Some((stage, done));
            callback.bind(py).call1((done, total))?;
        }
        Ok(())
    };
    let outcome = py.detach(|| {
        std::thread::scope(|scope| {
            let (finished_tx, finished) = mpsc::channel();
            let watch = &watch;
            scope.spawn(move || {
                finished_tx.send(work(watch)).ok();
            });
            loop {
                match finished.recv_timeout(SIGNAL_POLL) {
                    Ok(outcome) => return outcome,
                    Err(mpsc::RecvTimeoutError::Timeout) if stop.is_none() => {
                        let checked = Python::attach(|py| {
                            if interruptible {
                                py.check_signals()?;
                            }
                            report(py, false)
                        });
                        if let Err(e) = checked {
                            stop = Some(e);
                            watch.cancel.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(Error::Panicked {
                            doing: "counting",
                            message: "the counting thread ended without an answer".into(),
                        })
                    }
                }
            }
        })
    });
    match (stop, outcome) {
        // the handler's exception (KeyboardInterrupt, or whatever a custom handler or the
        // progress callback raised)
        (Some(e), _) => Err(e),
        (None, Ok(value)) => {
            report(py, true)?;
            Ok(value)
        }
        (None, Err(e)) => Err(to_py(e)),
    }
}

impl Session {
    /// Answers `thresholds` with the GIL released (see [`detached`]).
    fn answer(
        &self,
        py: Python<'_>,
        thresholds: Integers,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Vec<u64>> {
        let session = &*self.inner;
        // look-ups answer in microseconds: nothing to interrupt or show (a threshold beyond
        // what the index has counted computes c(x) first, which may take long, and can be
        // stopped)
        let (interruptible, progress) = match session.answers_by_look_up(&thresholds) {
            true => (false, None),
            false => (interruptible, progress),
        };
        detached(py, interruptible, progress, |watch| {
            session.query(&thresholds, watch)
        })
        .and_then(results)
    }
}

impl Session {
    fn answer_array<'py>(
        &self,
        py: Python<'py>,
        thresholds: Integers,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let results = self.answer(py, thresholds, interruptible, progress)?;
        Ok(PyArray1::from_vec(py, results))
    }
}

/// The results, or with `backend="both"` an error when the backends disagree.
fn results(answer: divgpu::session::Answer) -> PyResult<Vec<u64>> {
    match answer.comparison.and_then(|c| c.first_mismatch) {
        Some(m) => Err(DivgpuError::new_err(m.to_string())),
        None => Ok(answer.results),
    }
}

fn backend_of(name: &str) -> PyResult<Backend> {
    Backend::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "backend must be 'auto', 'gpu', 'cpu' or 'both', not {name:?}"
        ))
    })
}

fn adapter_json_of(summary: Option<divgpu::gpu::AdapterSummary>) -> PyResult<Option<String>> {
    summary
        .map(|a| serde_json::to_string(&a))
        .transpose()
        .map_err(|e| DivgpuError::new_err(e.to_string()))
}

/// The adapter of the GPU `backend` and `adapter` choose, as JSON, opened once per process by
/// the registry every session shares ([`divgpu::gpu::registry`]); None where `auto` found no
/// hardware GPU, and for `cpu`.
#[pyfunction]
#[pyo3(signature = (backend, adapter))]
fn gpu_json(py: Python<'_>, backend: &str, adapter: Option<String>) -> PyResult<Option<String>> {
    guarded("opening the GPU", || {
        let backend = backend_of(backend)?;
        let gpu = py
            .detach(|| divgpu::session::open_gpu(backend, adapter.as_deref()))
            .map_err(to_py)?;
        adapter_json_of(gpu.map(|g| g.summary()))
    })
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (values, backend, algorithm, threads, adapter, chunk_elements, keep_index=true, index_memory=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        backend: &str,
        algorithm: &str,
        threads: usize,
        adapter: Option<String>,
        chunk_elements: Option<usize>,
        keep_index: bool,
        index_memory: Option<u64>,
    ) -> PyResult<Self> {
        guarded("opening the Index", || {
            divgpu::guard::point("python-open");
            let backend = backend_of(backend)?;
            let algorithm = Algorithm::parse(algorithm).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "algorithm must be 'fast' or 'naive', not {algorithm:?}"
                ))
            })?;
            let array = Arc::new(match values.cast::<PyUntypedArray>() {
                Ok(values) => array_of(values)?,
                Err(_) if arrow::is_arrow(values)? => arrow::array_of(values)?,
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "divgpu reads numpy arrays and Arrow arrays, not {}",
                        values.get_type().name()?
                    )))
                }
            });
            let options = Options {
                backend,
                algorithm,
                threads,
                adapter,
                chunk_elements,
                keep_index,
                index_memory,
                ..Options::default()
            };
            let session = py
                .detach(|| divgpu::Session::new(array, &options))
                .map_err(to_py)?;
            Ok(Session {
                inner: Arc::new(session),
            })
        })
    }

    /// One threshold (any int in [-2**63, 2**64)).
    #[pyo3(signature = (threshold, interruptible, progress=None))]
    fn count_one(
        &self,
        py: Python<'_>,
        threshold: &Bound<'_, PyAny>,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let t = thresholds::threshold(threshold)?;
        Ok(self.answer(py, Integers::from(vec![t]), interruptible, progress)?[0])
    }

    /// A sequence of ints.
    #[pyo3(signature = (thresholds, interruptible, progress=None))]
    fn count_seq<'py>(
        &self,
        py: Python<'py>,
        thresholds: &Bound<'py, PyAny>,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let values = thresholds::threshold_values(thresholds)?;
        self.answer_array(py, Integers::from(values), interruptible, progress)
    }

    /// A one-dimensional int64 or uint64 array (the package makes every integer array one).
    #[pyo3(signature = (thresholds, interruptible, progress=None))]
    fn count_array<'py>(
        &self,
        py: Python<'py>,
        thresholds: &Bound<'py, PyAny>,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let values = match thresholds.extract::<PyReadonlyArray1<'py, i64>>() {
            Ok(signed) => Integers::from(signed.as_slice()?.to_vec()),
            Err(_) => {
                let unsigned = thresholds.extract::<PyReadonlyArray1<'py, u64>>()?;
                let wide: Vec<i128> = unsigned.as_slice()?.iter().map(|&t| t.into()).collect();
                Integers::from(wide)
            }
        };
        self.answer_array(py, values, interruptible, progress)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().name()
    }

    #[getter]
    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    /// The adapter as JSON (`divgpu devices --json`'s `adapter` object), or None.
    #[getter]
    fn adapter_json(&self) -> PyResult<Option<String>> {
        adapter_json_of(self.inner.adapter())
    }

    /// Whether counts are answered from the session's value index.
    #[getter]
    fn has_index(&self) -> bool {
        self.inner.has_index()
    }

    /// Builds the value index now (interruptible on the main thread).
    #[pyo3(signature = (interruptible, progress=None))]
    fn build_index(
        &self,
        py: Python<'_>,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let session = &*self.inner;
        detached(py, interruptible, progress, |watch| {
            session.build_index(watch)
        })
        .map(|_| ())
    }

    /// A session over a saved index file, mapped.
    #[staticmethod]
    #[pyo3(signature = (path, threads))]
    fn load(py: Python<'_>, path: std::path::PathBuf, threads: usize) -> PyResult<Self> {
        guarded("loading the index file", || {
            let options = Options {
                backend: Backend::Cpu,
                threads,
                ..Options::default()
            };
            let session = py
                .detach(|| divgpu::Session::load(&path, &options))
                .map_err(to_py)?;
            Ok(Session {
                inner: Arc::new(session),
            })
        })
    }

    /// Saves the value index (built and counted first where it is not) to `path`; returns the
    /// file's fingerprint.
    #[pyo3(signature = (path, interruptible, progress=None))]
    fn save(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        interruptible: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<u32> {
        let session = &*self.inner;
        detached(py, interruptible, progress, |watch| {
            session.save(&path, watch)
        })
    }

    /// The fingerprint of the index file a loaded session answers from, or None.
    #[getter]
    fn file_fingerprint(&self) -> Option<u32> {
        self.inner.file_fingerprint()
    }

    /// Where the value index stands: a dict (see `divgpu.Index.stats`).
    fn index_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.inner.index_state();
        let stats = PyDict::new(py);
        let (name, ready) = match &state {
            IndexState::Off => ("off", None),
            IndexState::NotBuilt => ("not built", None),
            IndexState::Ready(ready) => ("ready", Some(ready)),
            IndexState::Unavailable(_) => ("over memory", None),
        };
        stats.set_item("index", name)?;
        stats.set_item("kind", ready.map(|r| r.kind))?;
        stats.set_item("elements", self.inner.len())?;
        stats.set_item("distinct", ready.and_then(|r| r.distinct))?;
        stats.set_item("counted", ready.and_then(|r| r.counted))?;
        stats.set_item("bytes", ready.map(|r| r.bytes))?;
        stats.set_item("build_seconds", ready.map(|r| r.build_time.as_secs_f64()))?;
        stats.set_item("index_memory", self.inner.index_memory())?;
        stats.set_item("message", state.to_string())?;
        Ok(stats)
    }

    /// The session's notes (no hardware GPU, a software adapter).
    /// Why the adapter was chosen as it was, where the user should know (the package warns).
    #[getter]
    fn choice_note(&self) -> Option<String> {
        self.inner.choice_note().map(str::to_string)
    }

    /// Seconds the array's upload to the GPU took (0 on the CPU): benches compare it with the
    /// whole Index's making.
    #[getter]
    fn upload_seconds(&self) -> f64 {
        self.inner.upload_time().as_secs_f64()
    }

    #[getter]
    fn notes(&self) -> Vec<String> {
        self.inner.notes().to_vec()
    }
}

/// Every adapter wgpu sees, as `divgpu devices --json` prints them.
#[pyfunction]
fn devices_json(py: Python<'_>) -> PyResult<String> {
    guarded("listing the adapters", || {
        let devices = py.detach(divgpu::gpu::devices).map_err(to_py)?;
        serde_json::to_string(&devices).map_err(|e| DivgpuError::new_err(e.to_string()))
    })
}

/// The devices this process has opened (each shared by every Index on its adapter), as JSON.
#[pyfunction]
fn opened_json() -> PyResult<String> {
    serde_json::to_string(&divgpu::gpu::registry::opened())
        .map_err(|e| DivgpuError::new_err(e.to_string()))
}

/// The process this one was forked from, where that one had opened a GPU before the fork (no
/// GPU opens here), or None.
#[pyfunction]
fn forked_from() -> Option<u32> {
    divgpu::gpu::context::forked_from()
}

#[pymodule]
fn _divgpu(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // a panic is reported by the DivgpuError it becomes, not also by Rust's hook on stderr
    divgpu::guard::quiet_hook();
    // with the GIL, before any GPU work releases it (it may set XDG_RUNTIME_DIR)
    divgpu::gpu::context::quiet_runtime_dir();
    m.add_class::<Session>()?;
    m.add_function(wrap_pyfunction!(devices_json, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_json, m)?)?;
    m.add_function(wrap_pyfunction!(forked_from, m)?)?;
    m.add_function(wrap_pyfunction!(opened_json, m)?)?;
    m.add_function(wrap_pyfunction!(arrow::nulls_message, m)?)?;
    m.add_function(wrap_pyfunction!(thresholds::thresholds_of, m)?)?;
    m.add_function(wrap_pyfunction!(check_threads, m)?)?;
    m.add("DivgpuError", m.py().get_type::<DivgpuError>())?;
    m.add("MAX_THREADS", divgpu::cpu::MAX_THREADS)?;
    // the range of a threshold (and of an element): every i64 and every u64
    m.add("MIN_THRESHOLD", MIN_VALUE)?;
    m.add("MAX_THRESHOLD", MAX_VALUE)?;
    Ok(())
}
