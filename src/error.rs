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
    /// The GPU failed while divgpu was `doing` something: wgpu's own error (validation, out of
    /// memory, device lost, mapping, a wait), or an answer that cannot be right.
    #[error("GPU error: {doing}: {source}")]
    Gpu { doing: String, source: GpuError },
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

/// What failed on the GPU ([`Error::Gpu`]): wgpu's error, kept whole (its causes are its
/// [`source`](std::error::Error::source)), or what divgpu found wrong in a GPU's answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// A validation, out-of-memory or internal error, caught by an error scope or reported as
    /// uncaptured. Shown on one line: wgpu's span several ("Caused by: ...").
    #[error("{}", one_line(&.0.to_string()))]
    Wgpu(#[source] wgpu::Error),
    #[error(transparent)]
    RequestDevice(#[from] wgpu::RequestDeviceError),
    #[error(transparent)]
    Poll(#[from] wgpu::PollError),
    #[error(transparent)]
    Map(#[from] wgpu::BufferAsyncError),
    #[error(transparent)]
    MapRange(#[from] wgpu::MapRangeError),
    /// A mapping whose callback never ran.
    #[error("its callback never ran")]
    NeverMapped,
    /// A GPU's answer that cannot be right: an error, never a number.
    #[error("{0}")]
    Wrong(String),
}

/// A message on one line: its lines trimmed and joined by spaces.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Error {
    /// [`Error::Gpu`]: `source` while `doing`.
    pub(crate) fn gpu(doing: impl Into<String>, source: impl Into<GpuError>) -> Self {
        Error::Gpu {
            doing: doing.into(),
            source: source.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A GPU error keeps wgpu's error whole as its source, and its message stays one line.
    #[test]
    fn gpu_errors_keep_wgpus_error_and_say_it_on_one_line() {
        let wgpu_error = wgpu::Error::Validation {
            source: "the cause".into(),
            description: "Validation Error\n\nCaused by:\n    In a set_bind_group command\n"
                .to_string(),
        };
        let e = Error::gpu("running the query", GpuError::Wgpu(wgpu_error));
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("GPU error: running the query: Validation Error"),
            "{text}"
        );
        assert!(
            text.contains("Caused by: In a set_bind_group command"),
            "{text}"
        );
        let source = e.source().expect("the GPU error is the source");
        let gpu = source.downcast_ref::<GpuError>().expect("a GpuError");
        assert!(matches!(
            gpu,
            GpuError::Wgpu(wgpu::Error::Validation { .. })
        ));
        // and wgpu's own error below it, with its chain
        let wgpu = gpu.source().expect("wgpu's error");
        assert!(wgpu.downcast_ref::<wgpu::Error>().is_some());
        assert_eq!(
            wgpu.source().expect("wgpu's cause").to_string(),
            "the cause"
        );

        let waited = Error::gpu("waiting for the GPU (600 s)", wgpu::PollError::Timeout);
        assert_eq!(
            waited.to_string(),
            format!(
                "GPU error: waiting for the GPU (600 s): {}",
                wgpu::PollError::Timeout
            )
        );
        assert!(matches!(
            waited,
            Error::Gpu {
                source: GpuError::Poll(wgpu::PollError::Timeout),
                ..
            }
        ));
    }
}
