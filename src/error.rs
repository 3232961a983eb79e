use std::path::PathBuf;

/// Everything that can go wrong after the flags were accepted. Each one is a data or runtime
/// error (exit 1); usage errors are the CLI's and never reach the library. The variants are
/// what a binding tells apart (the Python package raises `TypeError` for [`Error::DType`],
/// `ValueError` for [`Error::Threshold`] and [`Error::Option`], `KeyboardInterrupt` for
/// [`Error::Cancelled`] and `divgpu.DivgpuError` for the rest); no message names a CLI flag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The input is not what divgpu can read.
    #[error("{0}")]
    Data(String),
    /// The elements are not of an integer type divgpu reads (floats, say).
    #[error("{0}")]
    DType(String),
    /// A threshold divgpu cannot answer (outside `[-2^63, 2^64)`, not an integer), or none.
    #[error("{0}")]
    Threshold(String),
    /// An option out of its range; `name` is the library's (and the Python keyword's) name,
    /// which the CLI shows as its flag.
    #[error("{name} {message}")]
    Option { name: &'static str, message: String },
    /// No adapter could serve `--backend gpu`.
    #[error("{0}")]
    NoAdapter(String),
    /// The adapter cannot do this job (a limit, a value outside what the shaders handle).
    #[error("{0}")]
    Unsupported(String),
    /// wgpu reported an error (validation, out of memory, device lost, mapping).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The [`crate::Observer`] asked to stop.
    #[error("interrupted")]
    Cancelled,
    #[error("could not start {threads} CPU threads: {message}")]
    Threads { threads: usize, message: String },
    /// A panic inside divgpu (a bug): caught at the API boundary ([`crate::guard`]). A session
    /// that panicked answers every later call with it.
    #[error("internal error while {doing}: {message} (a bug in divgpu: please report it)")]
    Panicked {
        doing: &'static str,
        message: String,
    },
    /// A GPU opened by another process before it forked this one: neither that GPU nor a new
    /// one can be used here (see [`crate::fork`]).
    #[error(
        "process {owner} had opened the GPU before this process was forked from it, and GPU \
         drivers do not survive a fork: start worker processes with 'spawn' or 'forkserver', \
         count on the CPU, or save the index to a file and load that in the worker"
    )]
    Forked { owner: u32 },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
