//! The real binary, as a user runs it: output, exit codes, and every input format. Shared
//! helpers here, the tests by topic in the modules.

#[path = "../common/mod.rs"]
mod common;

mod inputs;
mod output;
mod queries;
mod run;
mod signals;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{oracle, EXPECT_BACKEND_VAR, SKIP_GPU_VAR};
use serde::Deserialize;

fn divgpu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn divgpu_env(args: &[&str], key: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .env(key, value)
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed run: the expected exit code, nothing on stdout, one `divgpu: ` line on stderr that
/// contains every one of `needles`.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        out.stdout.is_empty(),
        "stdout must be empty on error: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error: {err}");
    assert!(lines[0].starts_with("divgpu: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// `--json` as documented, read strictly: a field added or renamed fails here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    results: Vec<u64>,
    thresholds: Vec<i128>,
    backend: String,
    algorithm: String,
    adapter: Option<Adapter>,
    elements: usize,
    threads: Option<usize>,
    timings_ms: Timings,
    comparison: Option<Comparison>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Adapter {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Timings {
    load: f64,
    upload: f64,
    compute: f64,
    readback: f64,
    gpu_passes: Option<f64>,
    total: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comparison {
    gpu_results: Vec<u64>,
    cpu_results: Vec<u64>,
    first_mismatch: Option<serde_json::Value>,
}

fn json_run(args: &[&str]) -> Report {
    let mut all = args.to_vec();
    all.push("--json");
    let out = divgpu(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON report")
}

fn gpu_tests_enabled() -> bool {
    std::env::var(SKIP_GPU_VAR).map_or(true, |v| v != "1")
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// An `.npy` file built by hand from the format's specification (version 1.0), not by the
/// crate divgpu reads with.
fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")
            .into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend(data);
    out
}

/// `values` as `width`-byte two's-complement integers.
/// `values` as a little-endian int64 `.npy` file `name` in `dir`.
fn write_i64_npy(dir: &Path, name: &str, values: &[i128]) -> PathBuf {
    let shape = format!("({},)", values.len());
    write(
        dir,
        name,
        &npy("<i8", &shape, false, &encode(values, 8, false)),
    )
}

fn encode(values: &[i128], width: usize, big_endian: bool) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| {
            let mut bytes = v.to_le_bytes()[..width].to_vec();
            if big_endian {
                bytes.reverse();
            }
            bytes
        })
        .collect()
}

fn joined(values: &[i128]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
