//! The command line: clap types stay here, and become a validated [`Job`] before any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::job::{self, Job, Source, Thresholds};
use divgpu::input::{self, DType};
use divgpu::Backend;
use divgpu::{workload, Algorithm};

/// Sum the divisor counts of every array element <= each threshold, on the GPU (wgpu) or the
/// CPU (rayon). c(x) is the number of divisors of x, and 1 for every x <= 1.
#[derive(Parser, Debug)]
#[command(name = "divgpu", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every GPU adapter wgpu can see, with the limits divgpu cares about.
    Devices {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reproduce the post's experiment: every backend and algorithm on the same queries, timed.
    Bench {
        #[command(flatten)]
        data: DataArgs,
        /// Timed runs per row, after one warm-up; the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Also draw the speed-ups as a bar chart in this SVG file.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Use this adapter: its number or PCI bus id in `divgpu devices`, or part of its name;
        /// without it, any adapter (software ones too).
        #[arg(long)]
        adapter: Option<String>,
        /// Leave the GPU rows out.
        #[arg(long)]
        no_gpu: bool,
    },
    /// Build an array's value index and save it to a file (.divi): `divgpu -i FILE.divi`
    /// (with --thresholds or --queries) and Python's `divgpu.Index.load` answer from it, mapped.
    Index {
        /// The array: .npy (any integer dtype), .txt/.csv (one integer per line), or raw with
        /// --dtype.
        #[arg(long, short)]
        input: PathBuf,
        /// Read --input as raw little-endian elements of this type.
        #[arg(long, value_parser = parse_dtype)]
        dtype: Option<DType>,
        /// Where to write the index file (written beside it, then renamed into place).
        #[arg(long, short)]
        output: PathBuf,
        /// Where c(x) is computed: a hardware GPU if there is one (auto), the GPU, or the CPU.
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// CPU threads, at most 1024 [default: one per core].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=divgpu::cpu::MAX_THREADS as i64))]
        threads: Option<u32>,
        /// Use this adapter: its number or PCI bus id in `divgpu devices`, or part of its name
        /// (case-insensitive).
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Write the default run's generated array as an int64 .npy file.
    Gen {
        /// Where to write the .npy file.
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
}

#[derive(Args, Debug)]
pub struct WorkloadArgs {
    /// Elements to generate (without --input).
    #[arg(long, default_value_t = workload::DEFAULT_SIZE)]
    pub size: usize,
    /// Generated values are uniform in [0, MAX_VALUE].
    #[arg(long, default_value_t = workload::DEFAULT_MAX_VALUE,
          value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub max_value: u64,
    /// Seed of the generator (SplitMix64): the same array on every platform.
    #[arg(long, default_value_t = workload::DEFAULT_SEED)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Where to run: a hardware GPU if there is one (auto), the GPU, the CPU, or both compared.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// fast: c(x) once per element, all thresholds in one pass. naive: the post's algorithm.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Fast)]
    pub algorithm: AlgorithmArg,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Answer a stream of batches over one loaded array: each line of FILE (`-`: stdin) is
    /// comma-separated thresholds, answered by one JSON line as soon as it is read.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["thresholds", "thresholds_file"])]
    pub queries: Option<PathBuf>,
    /// CPU threads, at most 1024 [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=divgpu::cpu::MAX_THREADS as i64))]
    pub threads: Option<u32>,
    /// Use this adapter: its number or PCI bus id in `divgpu devices`, or part of its name
    /// (case-insensitive).
    #[arg(long)]
    pub adapter: Option<String>,
    /// Elements per GPU buffer [default: the most the adapter's limits allow].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_elements: Option<u64>,
    /// With --queries: the most memory the value index may keep, in bytes, or with a suffix
    /// K, M, G or T (powers of 1024); over it every batch is a pass [default: no limit].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub index_memory: Option<u64>,
}

/// The array and the thresholds, for a run and for `bench`.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// The array: .npy (any integer dtype), .txt/.csv (one integer per line), or raw with --dtype.
    /// Without it, the post's workload is generated (--size, --max-value, --seed).
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Read --input as raw little-endian elements of this type.
    #[arg(long, value_parser = parse_dtype, requires = "input")]
    pub dtype: Option<DType>,
    /// Comma-separated thresholds [default: the post's 13 queries].
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_parser = parse_threshold,
          conflicts_with = "thresholds_file")]
    pub thresholds: Option<Vec<i128>>,
    /// A file of thresholds, one integer per line.
    #[arg(long)]
    pub thresholds_file: Option<PathBuf>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    Auto,
    Gpu,
    Cpu,
    Both,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AlgorithmArg {
    Fast,
    Naive,
}

fn parse_dtype(name: &str) -> Result<DType, String> {
    DType::from_raw_name(name)
        .ok_or_else(|| "expected one of i8 i16 i32 i64 u8 u16 u32 u64".to_string())
}

/// A byte count: digits, with an optional suffix K, M, G or T (powers of 1024, either case,
/// an optional trailing B or iB).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "{text:?} is not a size: use digits and K, M, G or T"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: use digits and K, M, G or T"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is more than 2^64 bytes"))
}

fn parse_threshold(text: &str) -> Result<i128, String> {
    input::parse_integer(text)
}

impl DataArgs {
    /// Where the array and the thresholds come from. Errors are usage errors (exit 2).
    pub fn sources(self) -> Result<(Source, Thresholds), String> {
        let source = match self.input {
            Some(path) => {
                let is_npy = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
                if self.dtype.is_some() && is_npy {
                    return Err(
                        "--dtype is for raw binary files; a .npy file names its own dtype"
                            .to_string(),
                    );
                }
                Source::File {
                    path,
                    raw_dtype: self.dtype,
                }
            }
            None => Source::Generated {
                size: self.workload.size,
                max_value: self.workload.max_value,
                seed: self.workload.seed,
            },
        };
        let thresholds = match (self.thresholds, self.thresholds_file) {
            (Some(list), _) => Thresholds::List(list),
            (None, Some(path)) => Thresholds::File(path),
            (None, None) => Thresholds::List(workload::default_thresholds()),
        };
        Ok((source, thresholds))
    }
}

impl BackendArg {
    pub fn backend(self) -> Backend {
        match self {
            BackendArg::Auto => Backend::Auto,
            BackendArg::Gpu => Backend::Gpu,
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Both => Backend::Both,
        }
    }
}

impl RunArgs {
    /// The validated job. Errors here are usage errors (exit 2).
    pub fn job(self) -> Result<Job, String> {
        if let Some(path) = self.data.input.as_deref().filter(|p| job::is_index_file(p)) {
            if self.data.dtype.is_some() {
                return Err(
                    "--dtype is for raw binary files; an index file names its own dtype"
                        .to_string(),
                );
            }
            if matches!(self.backend, BackendArg::Gpu | BackendArg::Both)
                || matches!(self.algorithm, AlgorithmArg::Naive)
            {
                return Err(format!(
                    "{} is a saved index, answered by look-ups on the CPU: --backend gpu or both \
                     and --algorithm naive need the array",
                    path.display()
                ));
            }
        }
        let (source, thresholds) = self.data.sources()?;
        Ok(Job {
            source,
            thresholds,
            backend: self.backend.backend(),
            algorithm: match self.algorithm {
                AlgorithmArg::Fast => Algorithm::Fast,
                AlgorithmArg::Naive => Algorithm::Naive,
            },
            // resolved once here: the core count is read from the system (cgroup files
            // included) each time it is asked for
            threads: divgpu::cpu::thread_count(self.threads.map_or(0, |n| n as usize)),
            adapter: self.adapter,
            chunk_elements: self.chunk_elements.map(|n| n as usize),
            index_memory: self.index_memory,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        use super::parse_bytes;
        for (text, bytes) in [
            ("0", 0),
            ("1000", 1000),
            ("4K", 4096),
            ("4kib", 4096),
            ("16M", 16 << 20),
            ("2G", 2 << 30),
            ("2GB", 2 << 30),
            ("1T", 1 << 40),
            ("16777215T", 16777215 << 40),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "G",
            "1.5G",
            "-1",
            "4X",
            "16777216T",
            "99999999999999999999",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
