//! divgpu: for an integer array `A` and thresholds `T`, `result[t] = sum of c(x) over x in A with
//! x <= T[t]`, where c(x) is the number of divisors of x, and 1 for every x <= 1.
//!
//! The array is uploaded once to GPU storage buffers and answered by WGSL compute shaders
//! ([`gpu`]), or by rayon on the CPU ([`cpu`]); both give the same exact u64 results.

pub mod cpu;
pub mod divisors;
pub mod error;
pub mod gpu;
pub mod input;
pub mod job;
pub mod query;
pub mod report;
pub mod workload;

pub use error::{Error, Result};

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
}
