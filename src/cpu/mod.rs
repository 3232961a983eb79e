//! The rayon backend: exact for every value, and the reference the GPU is compared against.
//! Here: the pool, the thread limit and [`run`]; `naive` the post's algorithm, `fast` one c(x)
//! per element, `prefix` the table of every value's answer.

use crate::divisors::{self, DivisorTable};
use crate::error::{Error, Result};
use crate::input::{Array, Element, Integers};
use crate::query::{FewBuckets, Plan};
use crate::{Algorithm, Observer};

/// `$body` with `$values` bound to the elements of `$array` read in place at their own width
/// ([`Array::native`] at the array's type), or `None` when the array is not stored so
/// (strided, misaligned, another byte order, or decoded values).
macro_rules! in_place {
    ($array:expr, |$values:ident| $body:expr) => {{
        let array: &Array = $array;
        let dtype = array.dtype();
        match (dtype.signed, dtype.width) {
            (true, 1) => array.native::<i8>().and_then(|$values| $body),
            (true, 2) => array.native::<i16>().and_then(|$values| $body),
            (true, 4) => array.native::<i32>().and_then(|$values| $body),
            (true, 8) => array.native::<i64>().and_then(|$values| $body),
            (false, 1) => array.native::<u8>().and_then(|$values| $body),
            (false, 2) => array.native::<u16>().and_then(|$values| $body),
            (false, 4) => array.native::<u32>().and_then(|$values| $body),
            (false, 8) => array.native::<u64>().and_then(|$values| $body),
            _ => None,
        }
    }};
}

mod fast;
mod naive;
mod prefix;
#[cfg(test)]
mod tests;

use fast::fast;
use naive::naive;
pub use prefix::PrefixTable;

/// Elements decoded and counted per rayon task. Small enough that the naive path, whose work per
/// element grows like sqrt(x), balances across threads by work stealing.
const BLOCK: usize = 8192;

/// Naive's work per element grows like sqrt(x): many small tasks keep both threads busy.
const NAIVE_TASKS_PER_THREAD: usize = 64;
/// Fast's accumulator is one u64 per distinct threshold (8 MB for a million): few tasks.
const FAST_TASKS_PER_THREAD: usize = 4;

/// The most CPU threads a pool may have. Beyond the cores, threads add nothing to this
/// CPU-bound work, and starting them is not free (thousands take seconds: docs/performance.md,
/// "Measurements behind the code"). 1,024 is above the hardware threads of today's largest
/// machines (2 x 192 cores with SMT: 768), and the same limit everywhere, so that a script that
/// runs on one machine runs on another.
pub const MAX_THREADS: usize = 1024;

/// The threads `threads` asks for: 0 is one per core (at most [`MAX_THREADS`]).
pub fn thread_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS)),
        n => n,
    }
}

/// [`thread_count`], checked: more than [`MAX_THREADS`] is an [`Error::Option`] naming
/// `threads`. The one check of the limit: pools, sessions and the Python package (through the
/// extension) all call it; the CLI's flags take their range from the same constant.
pub fn check_threads(threads: usize) -> Result<usize> {
    let threads = thread_count(threads);
    if threads > MAX_THREADS {
        return Err(too_many_threads(threads));
    }
    Ok(threads)
}

/// The error for `threads` threads, more than [`MAX_THREADS`] (a binding may hold a count no
/// `usize` does).
pub fn too_many_threads(threads: impl std::fmt::Display) -> Error {
    Error::Option {
        name: "threads",
        message: format!("{threads} is above the limit of {MAX_THREADS}"),
    }
}

/// A rayon pool whose threads have exited when it is dropped. rayon's `ThreadPool` only asks
/// its threads to stop and returns: they finish in the background, freeing their
/// thread-local state, and a process that exits meanwhile runs its libraries' destructors at
/// the same time. On llvmpipe-GL (whose LLVM and Mesa state lives on the thread that ran the
/// GPU work) that race crashed in glibc's `free` about one run in 150, after correct output.
/// Dropping a `Pool` drops the rayon pool, then joins every thread it started: exit runs with
/// none of them left.
pub struct Pool {
    pool: Option<rayon::ThreadPool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// Runs `op` in the pool, as [`rayon::ThreadPool::install`].
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.pool
            .as_ref()
            .expect("a pool until dropped")
            .install(op)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // the threads leave their loop once the pool is gone, and only then
        drop(self.pool.take());
        for thread in self.threads.drain(..) {
            // a worker that panicked has exited too, which is all that is waited for here
            thread.join().ok();
        }
    }
}

/// A pool of `threads` threads (0: one per core), named for profilers. With `with_this_thread`
/// the calling thread is one of them, and one thread fewer is started. More than
/// [`MAX_THREADS`] is an error. Never drop it on one of its own threads (it joins them).
pub fn pool(threads: usize, with_this_thread: bool) -> Result<Pool> {
    let threads = check_threads(threads)?;
    let mut handles = Vec::with_capacity(threads);
    let builder = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("divgpu-cpu-{i}"))
        .spawn_handler(|thread| {
            let mut spawn = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                spawn = spawn.name(name.to_string());
            }
            if let Some(size) = thread.stack_size() {
                spawn = spawn.stack_size(size);
            }
            handles.push(spawn.spawn(|| thread.run())?);
            Ok(())
        });
    let builder = if with_this_thread {
        builder.use_current_thread()
    } else {
        builder
    };
    match builder.build() {
        Ok(pool) => Ok(Pool {
            pool: Some(pool),
            threads: handles,
        }),
        Err(e) => {
            // rayon has told the threads it started to stop
            drop(Pool {
                pool: None,
                threads: handles,
            });
            Err(Error::Threads {
                threads,
                message: e.to_string(),
            })
        }
    }
}

/// How much of a mapped file [`fast`] maps ahead per entry of the divisor table it builds
/// meanwhile: sized so that the mapping takes about as long as the table (both measured:
/// docs/performance.md, "Measurements behind the code"), and the thread that maps it is free for
/// the table's last parts.
const POPULATE_BYTES_PER_ENTRY: usize = 16;

/// Answers every threshold of `plan` over `array` on `threads` threads (0: one per core): in
/// the current rayon pool when it is one of exactly that many threads, else in a local pool, so
/// divgpu never takes over the global pool of a program that embeds it. `observer` hears of
/// every block done and can stop the run between blocks.
pub fn run(
    array: &Array,
    plan: &Plan,
    algorithm: Algorithm,
    threads: usize,
    observer: &dyn Observer,
) -> Result<Vec<u64>> {
    let passes = match algorithm {
        Algorithm::Naive => plan.given().len(),
        Algorithm::Fast => 1,
    };
    observer.start((array.len() * passes) as u64);
    let work = || {
        crate::guard::point("cpu-pass");
        match algorithm {
            Algorithm::Naive => naive(array, plan, observer),
            Algorithm::Fast => fast(array, plan, observer),
        }
    };
    let in_pool = rayon::current_thread_index().is_some()
        && rayon::current_num_threads() == thread_count(threads);
    let results = if in_pool {
        work()
    } else {
        pool(threads, false)?.install(work)
    };
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(results)
}

/// Whether to do a block: false once the run is cancelled (the remaining blocks are skipped).
fn proceed(observer: &dyn Observer, block: &[i128]) -> bool {
    if observer.cancelled() {
        return false;
    }
    observer.advance(block.len() as u64);
    true
}
