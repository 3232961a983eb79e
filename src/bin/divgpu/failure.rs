//! Why a command failed, as its one `divgpu:` line on stderr.

use std::process::ExitCode;

use divgpu::Error;

use crate::console::INTERRUPTED;
use crate::output::{note, StdoutError};

/// Why a command failed (exit 1, or 130 when interrupted).
pub enum Failure {
    Run(Error),
    Stdout(StdoutError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Run(e)
    }
}

impl From<StdoutError> for Failure {
    fn from(e: StdoutError) -> Self {
        Failure::Stdout(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // the library names its options as the Python keywords do; here they are flags
            Failure::Run(Error::Option { name, message }) => {
                write!(f, "--{} {message}", name.replace('_', "-"))
            }
            Failure::Run(e) => e.fmt(f),
            Failure::Stdout(e) => e.fmt(f),
        }
    }
}

/// Runs `command` with its panics (bugs) caught: one is a failure like any other, one
/// `divgpu:` line and exit 1, not Rust's panic message and exit 101.
pub fn catch(command: impl FnOnce() -> Result<ExitCode, Failure>) -> Result<ExitCode, Failure> {
    divgpu::guard::quiet_hook();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)).unwrap_or_else(|payload| {
        Err(Failure::Run(Error::Panicked {
            doing: "running",
            message: divgpu::guard::message(payload.as_ref()),
        }))
    })
}

/// The exit code of a command's outcome, its failure written as one line on stderr: 1, or 130
/// when interrupted.
pub fn exit_code(outcome: Result<ExitCode, Failure>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(Failure::Run(Error::Cancelled)) => {
            note!("interrupted");
            ExitCode::from(INTERRUPTED)
        }
        Err(e) => {
            note!("{e}");
            ExitCode::from(1)
        }
    }
}

/// clap's error as one line: its first paragraph (without the tips and the usage that follow),
/// lines joined, without the `error: ` prefix.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or("invalid arguments");
    let joined = first.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}
