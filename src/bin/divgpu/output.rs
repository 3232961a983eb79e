//! The binary's two streams. Results go to stdout, and a failure to write them is an error
//! (a closed pipe excepted: `divgpu ... | head` is the reader saying it has seen enough, and
//! ends the run quietly, as ripgrep does). Diagnostics go to stderr and never panic: a stderr
//! that cannot be written (`2>/dev/full`, a closed pipe) loses the line, not the run, whose
//! results and exit code stay what they would have been.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

/// One `divgpu: ` line on stderr, with `format!`'s arguments. Never panics, unlike `eprintln!`.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::write_note(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// [`note!`]'s writer. The line is formatted first and written in one call, so that it is
/// not interleaved with other output; a write error drops it, on purpose (see the module).
pub fn write_note(args: fmt::Arguments) {
    let line = format!("divgpu: {args}\n");
    let dropped_if_unwritable = io::stderr().lock().write_all(line.as_bytes());
    drop(dropped_if_unwritable);
}

/// Stdout could not take the results (`>/dev/full`, a disk full, an I/O error): exit 1.
#[derive(Debug)]
pub struct StdoutError(pub io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write the output to stdout: {}", self.0)
    }
}

/// Whether an error writing stdout means the reader went away: the end of the run, not an
/// error (nothing more would be read anyway).
fn is_closed_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Writes to stdout through a buffer, a concrete type so that serde_json's many small writes
/// (two million numbers for a million thresholds) are inlined copies, not dynamic calls, and
/// flushes it: every byte is out when this returns `Ok`. A closed pipe is `Ok` too.
pub fn write_stdout(
    write: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> io::Result<()>,
) -> Result<(), StdoutError> {
    write_stdout_to_reader(write).map(drop)
}

/// Whether stdout's reader was still there for [`write_stdout_to_reader`]'s bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Every byte is out.
    Read,
    /// The pipe is closed: nothing more will be read, and a stream ends here (quietly).
    Left,
}

/// [`write_stdout`], saying whether the reader is still there: for `--queries`, which writes
/// (and flushes) one line at a time and stops once nobody reads.
pub fn write_stdout_to_reader(
    write: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> io::Result<()>,
) -> Result<Reader, StdoutError> {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let written = write(&mut out).and_then(|()| out.flush());
    // What is still buffered after an error could not be written: dropped here, not tried
    // again when the writer is dropped.
    let (_, _unwritten) = out.into_parts();
    match written {
        Ok(()) => Ok(Reader::Read),
        Err(e) if is_closed_pipe(&e) => Ok(Reader::Left),
        Err(e) => Err(StdoutError(e)),
    }
}

/// clap's `--help` and `--version`, which go to stdout: written and flushed, with the same
/// rules as the results.
pub fn print_clap_output(e: &clap::Error) -> Result<(), StdoutError> {
    match e.print().and_then(|()| io::stdout().lock().flush()) {
        Err(e) if !is_closed_pipe(&e) => Err(StdoutError(e)),
        _ => Ok(()),
    }
}
