//! `divgpu gen`: the post's workload written as a `.npy` file.

use std::path::Path;
use std::process::ExitCode;

use divgpu::workload;

use crate::cli::WorkloadArgs;
use crate::failure::Failure;
use crate::output::note;

/// Writes `w`'s values to `output`.
pub fn command(output: &Path, w: &WorkloadArgs) -> Result<ExitCode, Failure> {
    let values = workload::values_iter(w.size, w.max_value, w.seed);
    workload::write_npy(output, w.size, values)?;
    note!("wrote {} int64 values to {}", w.size, output.display());
    Ok(ExitCode::SUCCESS)
}
