//! The `divgpu` command: parse the flags, run the command they name, exit with its code. Each
//! command lives in a file of its own; the library (`divgpu`) does the work.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod chart;
mod cli;
mod console;
mod devices;
mod failure;
mod gen;
mod index;
mod job;
mod output;
mod queries;
mod run;

use cli::{Cli, Command};
use failure::{clap_message, Failure};
use output::note;

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
    failure::exit_code(failure::catch(|| dispatch(cli)))
}

/// Runs the command `cli` asks for.
fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Some(Command::Devices { json }) => devices::command(json),
        Some(Command::Bench {
            data,
            runs,
            json,
            chart,
            adapter,
            no_gpu,
        }) => {
            let options = bench::BenchOptions {
                runs: runs as usize,
                json,
                chart,
                adapter: (!no_gpu).then_some(adapter),
            };
            bench::command(data, &options)
        }
        Some(Command::Index {
            input,
            dtype,
            output,
            backend,
            threads,
            adapter,
        }) => index::command(&input, dtype, &output, backend, threads, adapter),
        Some(Command::Gen { output, workload }) => gen::command(&output, &workload),
        None => {
            // --json changes nothing with --queries: its output is always JSON lines
            let (json, stream) = (cli.run.json, cli.run.queries.clone());
            match (cli.run.job(), stream) {
                (Ok(job), None) => run::run(&job, json),
                (Ok(job), Some(path)) => queries::run(&job, &path),
                (Err(usage), _) => {
                    note!("{usage}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
