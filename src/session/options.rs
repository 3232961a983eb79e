//! What a session is built with ([`Options`], [`Backend`]) and what a batch returns
//! ([`Answer`]).

use std::time::Duration;

use crate::gpu::UploadOptions;
use crate::report::Comparison;
use crate::Algorithm;

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
    /// Build and keep the value index for `fast` (not with [`Backend::Both`], which compares
    /// the backends' passes on every batch). A program that answers one batch and exits (the
    /// CLI without `--queries`) does better with one pass; a session that lives answers every
    /// later batch from the index.
    pub keep_index: bool,
    /// The most bytes the index may keep; `None`: no limit. Over it, every batch is a pass.
    pub index_memory: Option<u64>,
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
            keep_index: true,
            index_memory: None,
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
    /// Whether the batch was answered from the session's value index (no pass over the array).
    pub from_index: bool,
}
