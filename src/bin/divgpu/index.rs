//! `divgpu index`: an array's value index, built and saved to a file.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::BackendArg;
use crate::console::Console;
use crate::failure::Failure;
use crate::output::note;

/// The command's flags, checked: `--backend both` is a usage error (exit 2).
pub fn command(
    input: &Path,
    dtype: Option<divgpu::input::DType>,
    output: &Path,
    backend: BackendArg,
    threads: Option<u32>,
    adapter: Option<String>,
) -> Result<ExitCode, Failure> {
    if matches!(backend, BackendArg::Both) {
        note!("--backend both compares passes; an index is built on one backend (see --help)");
        return Ok(ExitCode::from(2));
    }
    let options = divgpu::session::Options {
        backend: backend.backend(),
        threads: divgpu::cpu::thread_count(threads.map_or(0, |n| n as usize)),
        adapter,
        ..divgpu::session::Options::default()
    };
    save_index(input, dtype, output, &options)
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
        console.finish();
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
