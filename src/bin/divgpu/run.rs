//! The default command: one batch of thresholds over one array, printed as a table or JSON.

use std::io::Write;
use std::process::ExitCode;

use divgpu::gpu;

use crate::console::Console;
use crate::failure::Failure;
use crate::job;
use crate::output::{note, write_stdout};

pub fn run(job: &job::Job, json: bool) -> Result<ExitCode, Failure> {
    // Reading, counting and printing all run on one pool. With this thread among its workers
    // `fast` is quicker (one thread fewer to start, no hand-over), but `naive`'s long uneven
    // loops are slower, so that one waits outside the pool (docs/performance.md,
    // "Measurements behind the code").
    let with_this_thread = job.algorithm == divgpu::Algorithm::Fast;
    divgpu::cpu::pool(job.threads, with_this_thread)?.install(|| run_in_pool(job, json))
}

fn run_in_pool(job: &job::Job, json: bool) -> Result<ExitCode, Failure> {
    let console = Console::new();
    let outcome = job::execute(job, &console);
    console.finish();
    let outcome = outcome?;
    let report = &outcome.report;
    // Everything is computed by now: stream it out (a million rows need no second copy).
    // How the run went is said after, so that a failure to write is the one line on stderr.
    write_stdout(|out| {
        if json {
            serde_json::to_writer(&mut *out, report)?;
            out.write_all(b"\n")
        } else {
            report.write_table(out)
        }
    })?;
    for note in &outcome.notes {
        note!("{note}");
    }
    note_backend(
        report.backend,
        report.algorithm,
        report.adapter.as_ref(),
        report.threads,
    );
    let mismatch = report
        .comparison
        .as_ref()
        .and_then(|c| c.first_mismatch.as_ref());
    Ok(match mismatch {
        Some(m) => {
            note!("{m}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    })
}

/// The run's summary on stderr: which backend, algorithm and adapter (or CPU threads) ran.
pub fn note_backend(
    backend: &str,
    algorithm: &str,
    adapter: Option<&gpu::AdapterSummary>,
    threads: Option<usize>,
) {
    match adapter {
        Some(a) => note!(
            "{} backend, {algorithm} algorithm, adapter {} ({}, {})",
            if backend == "both" {
                "gpu and cpu"
            } else {
                "gpu"
            },
            a.name,
            a.backend,
            a.device_type
        ),
        None => {
            let threads = threads.unwrap_or(1);
            note!(
                "cpu backend, {algorithm} algorithm, {threads} thread{}",
                if threads == 1 { "" } else { "s" }
            )
        }
    }
}
