use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod chart;
mod cli;
mod output;
mod queries;

use cli::{Cli, Command};
use divgpu::{gpu, job, workload, Backend, Error, Observer};
use output::{note, write_stdout, StdoutError};

/// The exit code after Ctrl-C, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

/// Progress on stderr for runs longer than about a second (never when stderr is not a
/// terminal), and Ctrl-C as a request to stop.
struct Console {
    bar: ProgressBar,
    created: Instant,
    /// When the work shown began, in nanoseconds after `created`: the run's start, or the
    /// current batch's in a `--queries` stream.
    started_ns: AtomicU64,
    shown: AtomicBool,
    interrupted: Arc<AtomicBool>,
}

impl Console {
    fn new() -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        // The first Ctrl-C asks the run to stop at its next check (well under a second); a
        // second one leaves at once.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(INTERRUPTED));
            }
        });
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Console {
            bar,
            created: Instant::now(),
            started_ns: AtomicU64::new(0),
            shown: AtomicBool::new(false),
            interrupted,
        }
    }

    /// A new piece of work (a batch of a stream): the bar, if shown, is cleared, and shows
    /// again only once this work has taken a second.
    fn restart(&self) {
        if self.shown.swap(false, Ordering::Relaxed) {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        self.bar.reset();
        self.started_ns.store(self.elapsed_ns(), Ordering::Relaxed);
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Observer for Console {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
        let started = self.started_ns.load(Ordering::Relaxed);
        if self.elapsed_ns().saturating_sub(started) > Duration::from_secs(1).as_nanos() as u64
            && std::io::stderr().is_terminal()
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// Exit codes: 0 success, 1 data or runtime error (and `--backend both` disagreeing), 2 usage.
fn main() -> ExitCode {
    divgpu::input::install_sigbus_handler();
    // while this is the only thread (it may set XDG_RUNTIME_DIR)
    divgpu::gpu::context::quiet_runtime_dir();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            return match output::print_clap_output(&e) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    note!("{e}");
                    ExitCode::from(1)
                }
            };
        }
        Err(e) => {
            note!("{} (see --help)", clap_message(&e));
            return ExitCode::from(2);
        }
    };
    // a panic (a bug) is one `divgpu:` line and exit 1, like any other error
    divgpu::guard::quiet_hook();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli)))
        .unwrap_or_else(|payload| {
            Err(Failure::Run(Error::Panicked {
                doing: "running",
                message: divgpu::guard::message(payload.as_ref()),
            }))
        });
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

/// Runs the command `cli` asks for.
fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Some(Command::Devices { json }) => devices(json),
        Some(Command::Bench {
            data,
            runs,
            json,
            chart,
            adapter,
            no_gpu,
        }) => match data.sources() {
            Ok((source, thresholds)) => {
                let options = BenchOptions {
                    runs: runs as usize,
                    json,
                    chart,
                    adapter: (!no_gpu).then_some(adapter),
                };
                bench(&source, &thresholds, &options)
            }
            Err(usage) => {
                note!("{usage}");
                Ok(ExitCode::from(2))
            }
        },
        Some(Command::Index {
            input,
            dtype,
            output,
            backend,
            threads,
            adapter,
        }) => {
            if matches!(backend, cli::BackendArg::Both) {
                note!(
                    "--backend both compares passes; an index is built on one backend (see --help)"
                );
                return Ok(ExitCode::from(2));
            }
            let options = divgpu::session::Options {
                backend: backend.backend(),
                threads: divgpu::cpu::thread_count(threads.map_or(0, |n| n as usize)),
                adapter,
                ..divgpu::session::Options::default()
            };
            save_index(&input, dtype, &output, &options)
        }
        Some(Command::Gen {
            output,
            workload: w,
        }) => {
            let values = workload::values_iter(w.size, w.max_value, w.seed);
            workload::write_npy(&output, w.size, values)
                .map(|()| {
                    note!("wrote {} int64 values to {}", w.size, output.display());
                    ExitCode::SUCCESS
                })
                .map_err(Failure::from)
        }
        None => {
            // --json changes nothing with --queries: its output is always JSON lines
            let (json, stream) = (cli.run.json, cli.run.queries.clone());
            match (cli.run.job(), stream) {
                (Ok(job), None) => run(&job, json),
                (Ok(job), Some(path)) => queries::run(&job, &path),
                (Err(usage), _) => {
                    note!("{usage}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

/// Why a command failed (exit 1, or 130 when interrupted).
enum Failure {
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
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or("invalid arguments");
    let joined = first.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}

fn run(job: &job::Job, json: bool) -> Result<ExitCode, Failure> {
    // Reading, counting and printing all run on one pool. With this thread among its workers
    // the post's workload took 10.4-11.1 ms instead of 11.0-12.2 (one thread fewer to start,
    // no hand-over), but `naive`'s long uneven loops took 0.42 s instead of 0.29 s on 300,000
    // elements: that one waits outside the pool.
    let with_this_thread = job.algorithm == divgpu::Algorithm::Fast;
    divgpu::cpu::pool(job.threads, with_this_thread)?.install(|| run_in_pool(job, json))
}

fn run_in_pool(job: &job::Job, json: bool) -> Result<ExitCode, Failure> {
    let console = Console::new();
    let outcome = job::execute(job, &console);
    console.bar.finish_and_clear();
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
            note!("{}", disagreement(m));
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    })
}

/// `divgpu index`: the array's value index, every value counted, saved to `output`, with a
/// progress bar while `c` is computed.
fn save_index(
    input: &std::path::Path,
    dtype: Option<divgpu::input::DType>,
    output: &std::path::Path,
    options: &divgpu::session::Options,
) -> Result<ExitCode, Failure> {
    divgpu::cpu::pool(options.threads, true)?.install(|| {
        let console = Console::new();
        let array = divgpu::input::Array::open(input, dtype)?;
        let session = divgpu::Session::new(Arc::new(array), options)?;
        let saved = session.save(output, &console);
        console.bar.finish_and_clear();
        saved?;
        for note in session.notes() {
            note!("{note}");
        }
        // what a reader of the file will see
        let saved = divgpu::index::ValueIndex::open(output)?.stats();
        note!(
            "wrote the index of {} elements ({} distinct values, {} bytes) to {}",
            saved.elements,
            saved.distinct.unwrap_or(0),
            saved.bytes,
            output.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The run's summary on stderr: which backend, algorithm and adapter (or CPU threads) ran.
fn note_backend(
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

/// `--backend both`'s first disagreement, in words.
fn disagreement(m: &divgpu::report::Mismatch) -> String {
    format!(
        "backends disagree at threshold #{} ({}): gpu {} cpu {}",
        m.index, m.threshold, m.gpu, m.cpu
    )
}

struct BenchOptions {
    runs: usize,
    json: bool,
    chart: Option<std::path::PathBuf>,
    /// `None`: no GPU rows; `Some(name)`: the adapter named, or any.
    adapter: Option<Option<String>>,
}

fn bench(
    source: &job::Source,
    thresholds: &job::Thresholds,
    options: &BenchOptions,
) -> Result<ExitCode, Failure> {
    // Ctrl-C stops the bench as it stops a run: exit 130, nothing on stdout
    let console = &Console::new();
    let (array, thresholds) = job::load(source, thresholds)?;
    let gpu = match &options.adapter {
        None => None,
        Some(name) => match divgpu::session::open_gpu(Backend::Gpu, name.as_deref()) {
            Ok(gpu) => gpu,
            Err(Error::NoAdapter(_)) if name.is_none() => {
                note!("no GPU adapter found; the bench has CPU rows only");
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(warning) = gpu
        .as_ref()
        .and_then(|g| gpu::context::software_warning(g.adapter_info()))
    {
        note!("{warning}");
    }
    let report = divgpu::bench::run(
        &Arc::new(array),
        &thresholds,
        options.runs,
        gpu.as_ref(),
        console,
        &mut |row| note!("bench: {row} ..."),
    )?;
    if let Some(path) = &options.chart {
        chart::write(&report, path)?;
        note!("wrote {}", path.display());
    }
    write_stdout(|out| {
        if options.json {
            serde_json::to_writer(&mut *out, &report)?;
            out.write_all(b"\n")
        } else {
            out.write_all(report.table().as_bytes())
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn devices(json: bool) -> Result<ExitCode, Failure> {
    let devices = gpu::devices()?;
    if json {
        write_stdout(|out| {
            serde_json::to_writer(&mut *out, &devices)?;
            out.write_all(b"\n")
        })?;
    } else if devices.is_empty() {
        note!("{}", gpu::context::no_adapter_message());
    } else {
        let mut out = String::new();
        for d in &devices {
            out += &format!(
                "{}: {}\n  backend {}, type {}, PCI bus id {}, driver {}\n  max storage binding {} bytes, max buffer {} bytes, 64-bit shader integers: {}, timestamp queries: {}\n",
                d.index,
                d.adapter.name,
                d.adapter.backend,
                d.adapter.device_type,
                d.pci_bus_id.as_deref().unwrap_or("-"),
                if d.adapter.driver.is_empty() { "-" } else { &d.adapter.driver },
                d.max_storage_binding_bytes,
                d.max_buffer_bytes,
                yes_no(d.shader_int64),
                yes_no(d.timestamp_query),
            );
        }
        write_stdout(|stdout| stdout.write_all(out.as_bytes()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
