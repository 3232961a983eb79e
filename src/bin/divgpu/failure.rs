//! Why a command failed, as its one `divgpu:` line on stderr.

use divgpu::Error;

use crate::output::StdoutError;

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
