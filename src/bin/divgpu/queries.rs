//! `--queries FILE`: one array loaded, one [`Session`] built, and every line of FILE (`-`:
//! stdin) answered as a batch, one JSON line each, written and flushed as soon as it is
//! computed, so that a program can talk to divgpu through a pipe line by line.
//!
//! A line that cannot be answered (not integers, an empty item, a query error, `--backend
//! both` disagreeing) is answered with `{"line": N, "error": "..."}` and the stream goes on;
//! the exit code is 1 at the end if any line failed. Blank lines are skipped but counted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::job::{self, Job};
use divgpu::input::{parse_integer, Integers};
use divgpu::report::{StreamAnswer, StreamError};
use divgpu::session::Answer;
use divgpu::{Algorithm, Error, Observer};

use crate::console::Console;
use crate::failure::Failure;
use crate::output::{note, write_stdout_to_reader, Reader};
use crate::run::note_backend;

/// Where the lines come from.
enum Input {
    Stdin,
    File(PathBuf, File),
}

impl Input {
    /// `-` is stdin; a file is opened now, before the array is loaded, so that a missing one
    /// costs no upload.
    fn open(path: &Path) -> Result<Input, Error> {
        if path == Path::new("-") {
            return Ok(Input::Stdin);
        }
        let io_error = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        if file.metadata().map_err(io_error)?.is_dir() {
            return Err(Error::Data(format!(
                "{}: is a directory, not a file",
                path.display()
            )));
        }
        Ok(Input::File(path.to_path_buf(), file))
    }

    /// The name in messages.
    fn name(&self) -> PathBuf {
        match self {
            Input::Stdin => PathBuf::from("stdin"),
            Input::File(path, _) => path.clone(),
        }
    }
}

/// The lines of the input, read on a thread of their own as they come, so that the stream can
/// stop on Ctrl-C while it waits for the next line.
struct Lines {
    lines: Receiver<io::Result<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Lines {
    /// How often Ctrl-C is looked for while no line comes.
    const POLL: Duration = Duration::from_millis(50);

    fn spawn(input: Input) -> io::Result<Lines> {
        // a few lines read ahead, no more: the input may be far larger than memory
        let (send, lines) = mpsc::sync_channel(16);
        let read = move || {
            let mut source: Box<dyn BufRead> = match input {
                Input::Stdin => Box::new(io::stdin().lock()),
                Input::File(_, file) => Box::new(BufReader::with_capacity(1 << 16, file)),
            };
            loop {
                let mut line = Vec::new();
                let read = match source.read_until(b'\n', &mut line) {
                    // the end: the sender goes with this thread, which the stream joins
                    Ok(0) => return,
                    Ok(_) => Ok(line),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = read.is_err();
                if send.send(read).is_err() || failed {
                    // The stream stops without waiting for this thread (Ctrl-C, a closed
                    // stdout, this read error). It never exits, so that it is not freeing its
                    // thread-local state while the process runs its exit handlers (see
                    // docs/design.md, Teardown); the exit ends it.
                    loop {
                        std::thread::park();
                    }
                }
            }
        };
        let reader = std::thread::Builder::new()
            .name("divgpu-queries".to_string())
            .spawn(read)?;
        Ok(Lines {
            lines,
            reader: Some(reader),
        })
    }

    /// The next line, `None` at the end of the input, or `Err(Cancelled)` after Ctrl-C.
    fn next(&mut self, observer: &dyn Observer) -> Result<Option<io::Result<Vec<u8>>>, Error> {
        loop {
            if observer.cancelled() {
                return Err(Error::Cancelled);
            }
            match self.lines.recv_timeout(Self::POLL) {
                Ok(line) => return Ok(Some(line)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    // the reader has returned: joined, so that it is gone before the exit;
                    // one that panicked (a bug) did not reach the end of the input
                    if let Some(reader) = self.reader.take() {
                        if let Err(payload) = reader.join() {
                            return Err(Error::Panicked {
                                doing: "reading the queries",
                                message: divgpu::guard::message(payload.as_ref()),
                            });
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }
}

/// One line's thresholds: `None` for a blank line, else the batch or why the line is not one.
fn parse_line(bytes: &[u8]) -> Option<Result<Integers, String>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim(),
        Err(e) => {
            return Some(Err(format!(
                "not valid UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            )))
        }
    };
    if text.is_empty() {
        return None;
    }
    let mut thresholds = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        if item.trim().is_empty() {
            return Some(Err(format!("threshold {} is empty", i + 1)));
        }
        match parse_integer(item) {
            Ok(t) => thresholds.push(t),
            Err(e) => return Some(Err(format!("threshold {}: {e}", i + 1))),
        }
    }
    Some(Ok(thresholds.into()))
}

/// What one answered line prints: the results, or why there are none (`--backend both`
/// disagreeing).
fn answer_line(thresholds: &Integers, answer: &Answer) -> Result<Vec<u8>, String> {
    let mismatch = answer
        .comparison
        .as_ref()
        .and_then(|c| c.first_mismatch.as_ref());
    if let Some(m) = mismatch {
        return Err(m.to_string());
    }
    let line = StreamAnswer {
        thresholds,
        results: &answer.results,
    };
    let mut out = serde_json::to_vec(&line).expect("numbers serialize");
    out.push(b'\n');
    Ok(out)
}

fn error_line(line: u64, error: &str) -> Vec<u8> {
    let mut out = serde_json::to_vec(&StreamError { line, error }).expect("strings serialize");
    out.push(b'\n');
    out
}

/// `divgpu --queries FILE`: see the module's documentation.
pub fn run(job: &Job, path: &Path) -> Result<ExitCode, Failure> {
    let input = Input::open(path)?;
    // as a run: fast with this thread among the pool's workers, naive waiting outside it
    let with_this_thread = job.algorithm == Algorithm::Fast;
    divgpu::cpu::pool(job.threads, with_this_thread)?.install(|| stream(job, input))
}

fn stream(job: &Job, input: Input) -> Result<ExitCode, Failure> {
    let console = Console::new();
    let name = input.name();
    // one session for every batch: the array uploaded once, and for fast the value index
    // kept, so that batches after the first are look-ups (or a saved index, mapped)
    let session = job::open_session(job, true)?;
    let mut lines = Lines::spawn(input).map_err(|e| {
        Error::Data(format!(
            "could not start the thread that reads {}: {e}",
            name.display()
        ))
    })?;
    let (mut number, mut answered, mut failed) = (0u64, 0u64, 0u64);
    while let Some(read) = lines.next(&console)? {
        number += 1;
        let bytes = read.map_err(|source| Error::Io {
            path: name.clone(),
            source,
        })?;
        let out = match parse_line(&bytes) {
            None => continue,
            Some(Err(why)) => Err(why),
            Some(Ok(thresholds)) => {
                console.restart();
                let answer = session.query(&thresholds, &console);
                console.finish();
                match answer {
                    Err(Error::Cancelled) => return Err(Error::Cancelled.into()),
                    Err(e) => Err(e.to_string()),
                    Ok(answer) => answer_line(&thresholds, &answer),
                }
            }
        };
        let out = match out {
            Ok(out) => {
                answered += 1;
                out
            }
            Err(why) => {
                failed += 1;
                error_line(number, &why)
            }
        };
        if write_stdout_to_reader(|stdout| stdout.write_all(&out))? == Reader::Left {
            break;
        }
    }
    for note in session.notes() {
        note!("{note}");
    }
    if session.algorithm() == Algorithm::Fast {
        note!("{}", session.index_state());
    }
    note_backend(
        session.backend(),
        session.algorithm().name(),
        session.adapter().as_ref(),
        session.threads(),
    );
    note!(
        "{answered} batch{} answered, {failed} line{} failed",
        if answered == 1 { "" } else { "es" },
        if failed == 1 { "" } else { "s" }
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use divgpu::report::Comparison;
    use divgpu::session::AnswerTimings;

    fn parsed(line: &str) -> Option<Result<Vec<i128>, String>> {
        parse_line(line.as_bytes()).map(|r| r.map(|ts| ts.iter().collect()))
    }

    #[test]
    fn lines_are_comma_separated_integers() {
        assert_eq!(parsed("1,2,3\n"), Some(Ok(vec![1, 2, 3])));
        assert_eq!(parsed(" -5 ,\t7 , 18446744073709551615\r\n"), {
            Some(Ok(vec![-5, 7, u64::MAX as i128]))
        });
        assert_eq!(
            parsed("-9223372036854775808"),
            Some(Ok(vec![i64::MIN as i128]))
        );
        for blank in ["", "\n", "  \t\r\n"] {
            assert_eq!(parsed(blank), None, "{blank:?}");
        }
        for (line, needle) in [
            ("1,,2", "threshold 2 is empty"),
            ("1,2,", "threshold 3 is empty"),
            (",", "threshold 1 is empty"),
            ("5,x", "threshold 2: \"x\" is not an integer"),
            ("18446744073709551616", "outside [-2^63, 2^64)"),
            ("1 2", "not an integer"),
        ] {
            let why = parsed(line).unwrap().unwrap_err();
            assert!(why.contains(needle), "{line:?}: {why}");
        }
        let why = parse_line(b"1,\xff2\n").unwrap().unwrap_err();
        assert!(why.contains("UTF-8") && why.contains("byte 3"), "{why}");
    }

    #[test]
    fn a_disagreement_is_an_error_naming_the_first_mismatch() {
        let thresholds: Integers = [3, 40, 50].into();
        let answer = |gpu: Vec<u64>| Answer {
            results: vec![1, 2, 3],
            comparison: Some(Comparison::new(&thresholds, gpu, vec![1, 2, 3])),
            timings: AnswerTimings::default(),
        };
        let agreed = answer_line(&thresholds, &answer(vec![1, 2, 3])).unwrap();
        assert_eq!(agreed, b"{\"thresholds\":[3,40,50],\"results\":[1,2,3]}\n");
        let why = answer_line(&thresholds, &answer(vec![1, 7, 9])).unwrap_err();
        assert_eq!(why, "backends disagree at threshold #1 (40): gpu 7 cpu 2");
        assert_eq!(
            error_line(4, &why),
            b"{\"line\":4,\"error\":\"backends disagree at threshold #1 (40): gpu 7 cpu 2\"}\n"
        );
    }
}
