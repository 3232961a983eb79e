//! divgpu: for an integer array `A` and thresholds `T`, `result[t] = sum of c(x) over x in A with
//! x <= T[t]`, where c(x) is the number of divisors of x, and 1 for every x <= 1.
//!
//! The array is uploaded once to GPU storage buffers and answered by WGSL compute shaders
//! ([`gpu`]), or by rayon on the CPU ([`cpu`]); both give the same exact u64 results.

pub mod cpu;
pub mod divisors;
pub mod error;
pub mod factor;
pub mod fork;
pub mod gpu;
pub mod guard;
pub mod index;
pub mod input;
pub mod query;
pub mod report;
pub mod session;
pub mod workload;

pub use error::{Error, GpuError, Result};
pub use session::{Backend, Options, Session};

/// How each threshold is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// c(x) once per element, bucketed by threshold, one prefix sum: all thresholds in one pass.
    Fast,
    /// The post's algorithm as written: per threshold, trial division for every `x <= n`.
    Naive,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Fast => "fast",
            Algorithm::Naive => "naive",
        }
    }

    /// `fast` or `naive`.
    pub fn parse(name: &str) -> Option<Algorithm> {
        [Algorithm::Fast, Algorithm::Naive]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// Watches a long run: progress as it goes, and whether to stop. Both backends report work in
/// "element passes" (an element compared with one threshold batch) and ask [`Observer::cancelled`]
/// at least every few hundred milliseconds.
pub trait Observer: Sync {
    /// The run will do `total` units of work.
    fn start(&self, _total: u64) {}
    /// `units` more are done.
    fn advance(&self, _units: u64) {}
    /// True once the user asked to stop (Ctrl-C): the run returns [`Error::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// Watches nothing: for library callers, tests and benches.
pub struct Quiet;

impl Observer for Quiet {}
