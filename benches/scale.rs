//! A multi-GB int64 `.npy` on the CPU path, against the memory-bandwidth floor.
//!
//! Not a criterion bench: each sample is a whole `divgpu` process over gigabytes, and what is
//! reported is a ratio and a peak. `DIVGPU_SCALE_BYTES` sets the file size (default 2 GiB);
//! the file is written once under `target/` and reused.
//!
//! - floor: one thread summing the file's int64 values through a memory map (reading the array
//!   once is the least any answer can cost);
//! - divgpu: `divgpu -i FILE --backend cpu` (fast algorithm, the post's 13 thresholds), whole
//!   process, and its peak resident memory, which must stay within 5% + 100 MB of the file.
//!
//! Each is run once to warm the page cache, then 3 times; medians are reported.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use divgpu::workload;

fn file_bytes() -> u64 {
    std::env::var("DIVGPU_SCALE_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 30)
}

fn data_file(bytes: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let path = dir.join(format!("divgpu-scale-{bytes}.npy"));
    if !path.exists() {
        let n = (bytes / 8) as usize;
        eprintln!("writing {} ({n} int64 values)", path.display());
        let values = workload::values_iter(n, workload::DEFAULT_MAX_VALUE, workload::DEFAULT_SEED);
        let partial = path.with_extension("partial");
        workload::write_npy(&partial, n, values).unwrap();
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

/// The floor: a sequential sum of every value, through a memory map.
fn floor(path: &Path) -> Duration {
    let start = Instant::now();
    let array = divgpu::input::Array::open_npy(path).unwrap();
    let data = array.bytes().unwrap();
    let sum = data.chunks_exact(8).fold(0i64, |acc, c| {
        acc.wrapping_add(i64::from_le_bytes(c.try_into().unwrap()))
    });
    std::hint::black_box(sum);
    start.elapsed()
}

/// One `divgpu` process: its wall time and peak resident set (KiB).
fn divgpu(path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(["-i", path.to_str().unwrap(), "--backend", "cpu", "--json"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let took = start.elapsed();
    assert!(status.success());
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    (took, usage.ru_maxrss as u64)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; nothing to list
    }
    let bytes = file_bytes();
    let path = data_file(bytes);
    let size = std::fs::metadata(&path).unwrap().len();
    let elements = divgpu::input::Array::open_npy(&path).unwrap().len();
    floor(&path);
    divgpu(&path);
    let floors = median((0..3).map(|_| floor(&path)).collect());
    let runs: Vec<(Duration, u64)> = (0..3).map(|_| divgpu(&path)).collect();
    let peak_kib = runs.iter().map(|r| r.1).max().unwrap();
    let whole = median(runs.into_iter().map(|r| r.0).collect());
    let mb = |b: u64| b as f64 / 1e6;
    let limit = size as f64 * 1.05 + 100e6;
    println!("file: {:.0} MB int64 .npy, {elements} values", mb(size));
    println!(
        "floor (sequential sum over the map, 1 thread): {:.3} s",
        floors.as_secs_f64()
    );
    println!(
        "divgpu --backend cpu (whole process):          {:.3} s",
        whole.as_secs_f64()
    );
    println!(
        "ratio to the floor: {:.2}",
        whole.as_secs_f64() / floors.as_secs_f64()
    );
    println!(
        "peak resident memory: {:.0} MB (limit {:.0} MB: file + 5% + 100 MB)",
        peak_kib as f64 * 1024.0 / 1e6,
        limit / 1e6
    );
    assert!(
        (peak_kib * 1024) as f64 <= limit,
        "peak resident memory over the limit"
    );
}
