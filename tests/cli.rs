//! The real binary, as a user runs it: output, exit codes, and every input format.

mod common;

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

#[test]
fn help_and_version() {
    let out = divgpu(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--backend",
        "--algorithm",
        "--input",
        "--thresholds",
        "--json",
        "--queries",
        "devices",
        "gen",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert_eq!(divgpu(&["--version"]).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    assert_fails(&divgpu(&["--backend", "tpu"]), 2, &["--backend"]);
    assert_fails(&divgpu(&["--algorithm", "clever"]), 2, &["--algorithm"]);
    assert_fails(&divgpu(&["--threads", "0"]), 2, &["--threads"]);
    // thousands of threads took seconds to start and 100,000 never finished: refused at once
    for many in ["1025", "100000", "4294967296"] {
        assert_fails(&divgpu(&["--threads", many]), 2, &["--threads", "1024"]);
    }
    assert_fails(&divgpu(&["--thresholds", "5,x"]), 2, &["--thresholds", "x"]);
    assert_fails(&divgpu(&["--thresholds", ""]), 2, &["--thresholds"]);
    assert_fails(
        &divgpu(&["--thresholds", "18446744073709551616"]),
        2,
        &["--thresholds", "2^64"],
    );
    assert_fails(
        &divgpu(&["--input", "a.bin", "--dtype", "f32"]),
        2,
        &["--dtype"],
    );
    assert_fails(&divgpu(&["--dtype", "i32"]), 2, &["--input"]);
    assert_fails(
        &divgpu(&["--input", "a.npy", "--dtype", "i32"]),
        2,
        &["--dtype"],
    );
    assert_fails(&divgpu(&["--no-such-flag"]), 2, &["--no-such-flag"]);
    assert_fails(
        &divgpu(&["--thresholds", "1", "--thresholds-file", "t.txt"]),
        2,
        &["--thresholds"],
    );
}

#[test]
fn data_errors_exit_1_with_one_line() {
    let dir = temp_dir();
    let d = dir.path();
    // (file, extra flags, what the message must name)
    let unreadable = d.join("a-directory.txt");
    std::fs::create_dir(&unreadable).unwrap();
    let mut cases: Vec<(PathBuf, Vec<&str>, Vec<&str>)> = vec![
        (d.join("missing.npy"), vec![], vec!["missing.npy"]),
        (
            write(d, "garbage.npy", b"hello, this is not numpy"),
            vec![],
            vec!["not a .npy file"],
        ),
        (
            write(d, "short.npy", &npy("<i8", "(4,)", false, &[0; 20])),
            vec![],
            vec!["truncated"],
        ),
        (
            write(d, "odd.bin", &[0; 7]),
            vec!["--dtype", "i16"],
            vec!["truncated"],
        ),
        (write(d, "data.dat", &[0; 8]), vec![], vec!["--dtype"]),
        (
            write(d, "bad.txt", b"1\n2\nthree\n"),
            vec![],
            vec!["bad.txt:3", "three"],
        ),
        (unreadable, vec![], vec!["a-directory.txt"]),
    ];
    for descr in ["<f8", "|b1", "<c16", "|O"] {
        let name = format!("{}.npy", descr.trim_start_matches(['<', '|']));
        let file = write(d, &name, &npy(descr, "(2,)", false, &[0; 32]));
        cases.push((file, vec![], vec!["not an integer type"]));
    }
    for (file, extra, needles) in &cases {
        let mut args = vec!["-i", file.to_str().unwrap(), "--backend", "cpu"];
        args.extend(extra);
        assert_fails(&divgpu(&args), 1, needles);
    }

    // thresholds files: none at all, and a line that is not an integer
    let empty = write(d, "empty.txt", b"\n\n");
    let bad = write(d, "t.txt", b"10\n1e5\n");
    for (file, needle) in [(&empty, "no thresholds"), (&bad, "t.txt:2")] {
        let args = [
            "--thresholds-file",
            file.to_str().unwrap(),
            "--backend",
            "cpu",
        ];
        assert_fails(&divgpu(&args), 1, &[needle]);
    }
}

#[test]
fn gpu_without_an_adapter_says_how_to_get_one() {
    // DX12 exists on no Linux machine: wgpu sees no adapter at all.
    let out = divgpu_env(
        &["--backend", "gpu", "--size", "10"],
        "WGPU_BACKEND",
        "dx12",
    );
    assert_fails(&out, 1, &["no GPU adapter", "lavapipe", "--backend cpu"]);
    // auto falls back to the CPU and says so
    let out = divgpu_env(&["--size", "10", "--json"], "WGPU_BACKEND", "dx12");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("running on the CPU"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_report_of_the_default_workload() {
    let report = json_run(&["--backend", "cpu", "--size", "2000", "--max-value", "3000"]);
    assert_eq!(report.backend, "cpu");
    assert_eq!(report.algorithm, "fast");
    assert!(report.adapter.is_none());
    assert_eq!(report.elements, 2000);
    assert!(report.threads.is_some_and(|t| t >= 1));
    assert!(report.comparison.is_none());
    // the post's 13 queries, in the post's order
    let post: Vec<i128> = [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]
        .iter()
        .map(|k| k * 100_000)
        .collect();
    assert_eq!(report.thresholds, post);
    assert_eq!(report.results.len(), 13);
    let t = &report.timings_ms;
    assert!(t.total >= t.load && t.total >= t.compute && t.upload == 0.0 && t.readback == 0.0);
    assert_eq!(t.gpu_passes, None, "no GPU ran");
}

#[test]
fn gen_writes_the_array_the_default_run_uses() {
    let dir = temp_dir();
    let file = dir.path().join("w.npy");
    let out = divgpu(&[
        "gen",
        "-o",
        file.to_str().unwrap(),
        "--size",
        "5000",
        "--max-value",
        "70000",
        "--seed",
        "9",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let from_file = json_run(&[
        "--backend",
        "cpu",
        "-i",
        file.to_str().unwrap(),
        "--thresholds",
        "100,50000,70000",
    ]);
    let generated = json_run(&[
        "--backend",
        "cpu",
        "--size",
        "5000",
        "--max-value",
        "70000",
        "--seed",
        "9",
        "--thresholds",
        "100,50000,70000",
    ]);
    assert_eq!(from_file.results, generated.results);
    assert_eq!(from_file.elements, 5000);
    // and the file is what the format says: a little-endian int64 header, 8 bytes a value
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY"));
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'<i8'"));
    let values: Vec<i128> = bytes[bytes.len() - 5000 * 8..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()).into())
        .collect();
    assert!(values.iter().all(|v| (0..=70000).contains(v)));
    assert_eq!(from_file.results, oracle(&values, &[100, 50000, 70000]));
}

/// Values every dtype holds (negatives only for signed ones) and thresholds that split them.
fn dtype_values(signed: bool) -> Vec<i128> {
    let mut v: Vec<i128> = (0..=120).chain([1, 1, 64, 97, 120]).collect();
    if signed {
        v.extend([-1, -128, -7, -7]);
    }
    v
}

const DTYPE_THRESHOLDS: [i128; 8] = [-200, -7, -1, 0, 1, 60, 120, 18446744073709551615];

/// Every integer dtype, both byte orders, as .npy (also 2-D and Fortran order) and as raw
/// binary, on the CPU, and with `both` the GPU too, against the oracle.
#[test]
fn every_dtype_and_byte_order_gives_the_oracle_answer() {
    let dir = temp_dir();
    let d = dir.path();
    let thresholds = joined(&DTYPE_THRESHOLDS);
    let backend = if gpu_tests_enabled() { "both" } else { "cpu" };
    for signed in [true, false] {
        let values = dtype_values(signed);
        let expected = oracle(&values, &DTYPE_THRESHOLDS);
        for width in [1usize, 2, 4, 8] {
            let kind = if signed { 'i' } else { 'u' };
            for big in [false, true] {
                if width == 1 && big {
                    continue;
                }
                let order = if width == 1 {
                    '|'
                } else if big {
                    '>'
                } else {
                    '<'
                };
                let descr = format!("{order}{kind}{width}");
                let data = encode(&values, width, big);
                let shape = format!("({},)", values.len());
                let file = write(d, "a.npy", &npy(&descr, &shape, false, &data));
                let report = json_run(&[
                    "--backend",
                    backend,
                    "-i",
                    file.to_str().unwrap(),
                    "--thresholds",
                    &thresholds,
                ]);
                assert_eq!(report.results, expected, "{descr}");
                if let Some(c) = &report.comparison {
                    assert!(c.first_mismatch.is_none(), "{descr}: {c:?}");
                    assert_eq!(c.gpu_results, c.cpu_results);
                }
                if !big {
                    let raw_name = format!("{kind}{}", width * 8);
                    let file = write(d, "a.bin", &data);
                    let report = json_run(&[
                        "--backend",
                        "cpu",
                        "-i",
                        file.to_str().unwrap(),
                        "--dtype",
                        &raw_name,
                        "--thresholds",
                        &thresholds,
                    ]);
                    assert_eq!(report.results, expected, "raw {raw_name}");
                }
            }
        }
        // any shape, either order, is read as the flat array it stores
        let n = values.len();
        let data = encode(&values, 8, false);
        let descr = if signed { "<i8" } else { "<u8" };
        for (shape, fortran) in [(format!("({}, 1)", n), false), (format!("(1, {n})"), true)] {
            let file = write(d, "b.npy", &npy(descr, &shape, fortran, &data));
            let report = json_run(&[
                "--backend",
                "cpu",
                "-i",
                file.to_str().unwrap(),
                "--thresholds",
                &thresholds,
            ]);
            assert_eq!(report.results, expected, "{descr} {shape}");
        }
    }
}

#[test]
fn text_input_and_thresholds_file() {
    let dir = temp_dir();
    let values: Vec<i128> = vec![-3, 0, 1, 2, 12, 12, 36, 97, 18446744073709551615];
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    let unsigned: Vec<i128> = values.iter().copied().filter(|&v| v >= 0).collect();
    let input = write(
        dir.path(),
        "values.csv",
        text.replace("-3\n", "").as_bytes(),
    );
    let thresholds: [i128; 5] = [36, -1, 12, 18446744073709551615, 36];
    let tfile = write(
        dir.path(),
        "t.txt",
        format!("{}\n", joined(&thresholds).replace(',', "\n")).as_bytes(),
    );
    // a negative and a value above 2^63 - 1 fit no single 64-bit type: read as i128s
    let mixed = write(dir.path(), "mixed.txt", text.as_bytes());
    for (file, elements) in [(input, unsigned), (mixed, values)] {
        let report = json_run(&[
            "--backend",
            "cpu",
            "-i",
            file.to_str().unwrap(),
            "--thresholds-file",
            tfile.to_str().unwrap(),
        ]);
        assert_eq!(report.thresholds, thresholds);
        assert_eq!(report.results, oracle(&elements, &thresholds), "{file:?}");
    }
}

#[test]
fn both_backends_agree_and_report_it() {
    if !gpu_tests_enabled() {
        return;
    }
    for algorithm in ["fast", "naive"] {
        let report = json_run(&[
            "--backend",
            "both",
            "--algorithm",
            algorithm,
            "--size",
            "3000",
            "--max-value",
            "100000",
            "--thresholds",
            "-5,0,1,50000,100000,50000",
        ]);
        assert_eq!(report.backend, "both");
        assert!(report.adapter.is_some());
        // CI's software adapters have timestamp queries; the passes are part of the compute
        let t = &report.timings_ms;
        if let Some(passes) = t.gpu_passes {
            assert!(passes > 0.0 && passes <= t.compute, "{t:?}");
        } else {
            assert!(std::env::var_os(EXPECT_BACKEND_VAR).is_none(), "{t:?}");
        }
        let c = report.comparison.expect("both compares");
        assert!(c.first_mismatch.is_none());
        assert_eq!(c.gpu_results, c.cpu_results);
        assert_eq!(report.results, c.cpu_results);
        assert_eq!(&report.results[..3], &[0, 0, 0]);
    }
    // the table names both columns
    let out = divgpu(&["--backend", "both", "--size", "100"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().unwrap().contains("gpu"), "{table}");
    assert_eq!(table.lines().count(), 14);
}

#[test]
fn gpu_counts_64_bit_values_and_refuses_oversized_chunks() {
    if !gpu_tests_enabled() {
        return;
    }
    let dir = temp_dir();
    // c(3) = 2; 5000000000 = 2^9 * 5^10: 110; 2^64-1 = 3*5*17*257*641*65537*6700417: 128
    let input = write(
        dir.path(),
        "big.txt",
        b"3\n5000000000\n18446744073709551615\n",
    );
    for algorithm in ["fast", "naive"] {
        let report = json_run(&[
            "--backend",
            "gpu",
            "--algorithm",
            algorithm,
            "-i",
            input.to_str().unwrap(),
            "--thresholds=4,5000000000,18446744073709551615",
        ]);
        assert_eq!(report.results, [2, 112, 240], "{algorithm}");
    }
    let forced = divgpu(&[
        "--backend",
        "gpu",
        "--size",
        "10",
        "--chunk-elements",
        "4000000000",
    ]);
    assert_fails(&forced, 1, &["--chunk-elements", "limit"]);
}

/// Issue 9's first finding, as a user met it: arange(20000) and 256 copies of 4294967291 (the
/// largest prime below 2^32) with 565 distinct thresholds. The invocations holding the primes
/// used up llvmpipe's loop cap on trial division, and the workgroup flush of buckets past the
/// 256th was cut: `--backend gpu` printed too small numbers with exit 0.
#[test]
fn gpu_fast_with_hundreds_of_distinct_thresholds_over_large_primes_is_exact() {
    if !gpu_tests_enabled() {
        return;
    }
    let dir = temp_dir();
    let mut values: Vec<i128> = (0..20_000).collect();
    values.extend([4_294_967_291; 256]);
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    let input = write(dir.path(), "primes.txt", text.as_bytes());
    let mut thresholds: Vec<i128> = (0..564).map(|i| i * 35 + 3).collect();
    thresholds.push(4_294_967_291);
    let list: String = thresholds.iter().map(|t| format!("{t}\n")).collect();
    let list = write(dir.path(), "thresholds.txt", list.as_bytes());
    let counts: Vec<u64> = values.iter().map(|&x| common::factor::c(x)).collect();
    let expected = common::factor::sums(&values, &counts, &thresholds);
    let args = [
        "-i",
        input.to_str().unwrap(),
        "--thresholds-file",
        list.to_str().unwrap(),
    ];
    let report = json_run(&[&args[..], &["--backend", "gpu"]].concat());
    assert_eq!(report.results, expected);
    let both = divgpu(&[&args[..], &["--backend", "both"]].concat());
    assert_eq!(both.status.code(), Some(0), "{}", stderr(&both));
}

#[test]
fn devices_lists_adapters_as_json() {
    let out = divgpu(&["devices", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let devices: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    if gpu_tests_enabled() {
        assert!(!devices.is_empty(), "no adapter listed");
        for key in [
            "index",
            "pci_bus_id",
            "name",
            "backend",
            "device_type",
            "driver",
            "max_storage_binding_bytes",
            "max_buffer_bytes",
            "shader_int64",
            "timestamp_query",
        ] {
            assert!(devices[0].get(key).is_some(), "{key} missing");
        }
    }
}

/// `--adapter` by number (from 0, as `divgpu devices` numbers them) and by PCI bus id (where
/// an adapter has one: real GPUs on Vulkan; Mesa's software adapters report none) runs on that
/// very adapter; a number or bus id that names none is one `divgpu:` line listing the adapters.
#[test]
fn adapter_by_number_and_by_bus_id() {
    if !gpu_tests_enabled() {
        return;
    }
    let out = divgpu(&["devices", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let devices: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!devices.is_empty(), "no adapter listed");
    let workload = [
        "--size",
        "3000",
        "--max-value",
        "3000",
        "--thresholds",
        "10,2999",
    ];
    let expected = json_run(&[&workload[..], &["--backend", "cpu"]].concat()).results;
    let values = [&workload[..], &["--backend", "gpu"]].concat();
    let mut by_bus = 0;
    for (k, device) in devices.iter().enumerate() {
        assert_eq!(device["index"], k, "numbered from 0 in order: {device}");
        let mut selectors = vec![k.to_string()];
        if let Some(bus) = device["pci_bus_id"].as_str() {
            selectors.push(bus.to_string());
            by_bus += 1;
        }
        for selector in selectors {
            let report = json_run(&[&values[..], &["--adapter", &selector]].concat());
            let adapter = report.adapter.expect("a GPU run names its adapter");
            assert_eq!(
                (adapter.name.as_str(), adapter.backend.as_str()),
                (
                    device["name"].as_str().unwrap(),
                    device["backend"].as_str().unwrap()
                ),
                "--adapter {selector}"
            );
            assert_eq!(report.results, expected);
        }
    }
    eprintln!(
        "--adapter checked on {} adapters by number, {by_bus} by PCI bus id",
        devices.len()
    );
    let missing = devices.len().to_string();
    for selector in [missing.as_str(), "0000:ff:1f.7"] {
        let out = divgpu(&[&values[..], &["--adapter", selector]].concat());
        assert_fails(&out, 1, &["no adapter is", selector, "0: "]);
    }
}

/// With `XDG_RUNTIME_DIR` unset, as in containers, cron jobs and CI, Mesa's Vulkan drivers
/// printed `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice per run:
/// divgpu points the variable at a private folder first, so stderr holds only divgpu's lines.
/// Every backend is enumerated (`WGPU_BACKEND` unset), Vulkan's probe included.
#[test]
fn without_xdg_runtime_dir_stderr_holds_only_divgpus_lines() {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let tmp = temp_dir();
    let mut runs = vec![vec!["devices"], vec!["--size", "2000", "--backend", "auto"]];
    if gpu_tests_enabled() {
        runs.push(vec!["--size", "2000", "--backend", "gpu"]);
    }
    // SAFETY: getuid cannot fail
    let folder = tmp
        .path()
        .join(format!("divgpu-runtime-{}", unsafe { libc::getuid() }));
    // first the folder divgpu makes; then one that is there already but not private, which
    // divgpu must not use
    for shared in [false, true] {
        if shared {
            std::fs::remove_dir(&folder).unwrap();
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&folder)
                .unwrap();
        }
        for args in &runs {
            let out = Command::new(env!("CARGO_BIN_EXE_divgpu"))
                .args(args)
                .env_remove("XDG_RUNTIME_DIR")
                .env_remove("WGPU_BACKEND")
                .env("TMPDIR", tmp.path())
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
            for line in err.lines() {
                assert!(
                    line.starts_with("divgpu: "),
                    "{args:?}: a line not divgpu's: {line}"
                );
            }
        }
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), if shared { 0o755 } else { 0o700 });
        if shared {
            // the next name instead, private, and the same one for every run
            let next = PathBuf::from(format!("{}-1", folder.display()));
            assert_eq!(mode(&next), 0o700);
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
        }
    }
}

/// Ctrl-C (SIGINT) stops a run that would take minutes: exit 130, nothing on stdout.
fn assert_interrupts(args: &[&str]) {
    assert_interrupts_within(args, std::time::Duration::from_secs(10));
}

/// [`assert_interrupts`], with the run gone within `bound` of the signal.
fn assert_interrupts_within(args: &[&str], bound: std::time::Duration) {
    use std::time::Duration;
    let mut child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{args:?} ended before the signal"
    );
    let out = interrupt(child, bound, &format!("{args:?}"));
    assert!(out.stdout.is_empty());
}

/// SIGINT to `child`, which must then exit within `bound` with 130 and `divgpu: interrupted`.
fn interrupt(
    mut child: std::process::Child,
    bound: std::time::Duration,
    what: &str,
) -> std::process::Output {
    use std::time::{Duration, Instant};
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    while child.try_wait().unwrap().is_none() {
        if sent.elapsed() > bound {
            let _ = child.kill();
            panic!("{what} still running {bound:?} after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{what}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("divgpu: interrupted"),
        "{what}: {}",
        stderr(&out)
    );
    out
}

#[test]
fn ctrl_c_stops_a_long_cpu_run() {
    assert_interrupts(&[
        "--backend",
        "cpu",
        "--algorithm",
        "naive",
        "--size",
        "3000000",
        "--max-value",
        "4000000000",
        "--thresholds",
        "4000000000",
        "--json",
    ]);
}

/// Naive over a large array and many thresholds: each threshold is a pass over every
/// element. Stopping used to wait for every remaining pass to decode the array (2.3 s here); the
/// README promises well under a second (measured: some 25 ms).
#[test]
fn ctrl_c_stops_a_naive_run_within_a_second() {
    let thresholds: Vec<String> = (100..300).map(|t| t.to_string()).collect();
    assert_interrupts_within(
        &[
            "--backend",
            "cpu",
            "--algorithm",
            "naive",
            "--size",
            "20000000",
            "--max-value",
            "100",
            "--thresholds",
            &thresholds.join(","),
            "--json",
        ],
        std::time::Duration::from_secs(1),
    );
}

#[test]
fn ctrl_c_stops_a_long_gpu_run() {
    if !gpu_tests_enabled() {
        return;
    }
    assert_interrupts(&[
        "--backend",
        "gpu",
        "--algorithm",
        "naive",
        "--size",
        "3000000",
        "--max-value",
        "4000000000",
        "--thresholds",
        "4000000000",
        "--json",
    ]);
}

#[test]
fn ctrl_c_stops_a_bench() {
    assert_interrupts(&[
        "bench",
        "--no-gpu",
        "--size",
        "3000000",
        "--max-value",
        "4000000000",
        "--thresholds",
        "4000000000",
        "--runs",
        "1",
        "--json",
    ]);
}

/// `divgpu bench --json`, read strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchReport {
    adapter: Option<Adapter>,
    gpu_upload_s: Option<f64>,
    gpu_array_bytes: Option<u64>,
    gpu_upload_gb_per_s: Option<f64>,
    workload: BenchWorkload,
    rows: Vec<BenchRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchWorkload {
    elements: usize,
    thresholds: usize,
    runs: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchRow {
    backend: String,
    algorithm: String,
    threads: Option<usize>,
    median_s: f64,
    timing: String,
    wall_median_s: f64,
    speedup: f64,
    results_match: bool,
}

#[test]
fn bench_reports_every_row_and_draws_a_chart() {
    let dir = temp_dir();
    let chart = dir.path().join("speedups.svg");
    let mut args = vec![
        "bench",
        "--size",
        "3000",
        "--runs",
        "2",
        "--json",
        "--chart",
        chart.to_str().unwrap(),
    ];
    if !gpu_tests_enabled() {
        args.push("--no-gpu");
    }
    let out = divgpu(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: BenchReport = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report.workload.elements, 3000);
    assert_eq!(report.workload.thresholds, 13);
    assert_eq!(report.workload.runs, 2);
    let kinds: Vec<(&str, &str)> = report
        .rows
        .iter()
        .map(|r| (r.backend.as_str(), r.algorithm.as_str()))
        .collect();
    assert_eq!(kinds[0], ("cpu", "naive"));
    assert!(kinds.contains(&("cpu", "fast")));
    if gpu_tests_enabled() {
        assert!(report.adapter.is_some());
        assert!(kinds.contains(&("gpu", "naive")) && kinds.contains(&("gpu", "fast")));
    }
    // an upload time exactly when there are GPU rows
    assert_eq!(report.gpu_upload_s.is_some(), report.adapter.is_some());
    assert!(report.gpu_upload_s.is_none_or(|s| s > 0.0));
    // the generated int64 elements at their own width, and the rate they went at
    let bytes = report.adapter.as_ref().map(|_| 3000 * 8);
    assert_eq!(report.gpu_array_bytes, bytes);
    let rate = report
        .gpu_upload_s
        .zip(report.gpu_array_bytes)
        .map(|(s, b)| b as f64 / s / 1e9);
    assert!(
        (report.gpu_upload_gb_per_s.unwrap_or(0.0) - rate.unwrap_or(0.0)).abs()
            <= 1e-9 * rate.unwrap_or(1.0),
        "{report:?}"
    );
    assert_eq!(report.rows[0].threads, Some(1));
    assert_eq!(report.rows[0].speedup, 1.0);
    for row in &report.rows {
        assert!(row.results_match, "{row:?}");
        assert!(row.median_s > 0.0 && row.speedup > 0.0, "{row:?}");
        assert_eq!(row.threads.is_none(), row.backend == "gpu");
        // the CPU is timed by the wall clock; the GPU by timestamps where it has them (CI's
        // software adapters do), which time passes inside the wall-clock time
        if row.backend == "cpu" {
            assert_eq!(
                (row.timing.as_str(), row.median_s),
                ("wall", row.wall_median_s)
            );
        } else if row.timing == "timestamps" {
            assert!(row.median_s <= row.wall_median_s * 1.01, "{row:?}");
        } else {
            assert_eq!(row.timing, "wall", "{row:?}");
            assert!(std::env::var_os(EXPECT_BACKEND_VAR).is_none(), "{row:?}");
        }
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("cpu fast"), "the chart labels its bars");
}

// ---------------------------------------------------------------------------------------------
// Inputs: `.npy` headers as numpy reads them, files that are not regular, integers out of range,
// arrays of both signs beyond 64 bits, files that change while they are read.
// ---------------------------------------------------------------------------------------------

/// An `.npy` file of any format version with `header` as written (padding included).
fn npy_version(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_shapes_whose_product_overflows_are_refused() {
    let dir = temp_dir();
    // (shape, its product wrapped in 64 bits: the elements that follow the header)
    for (shape, wrapped) in [
        ("(4294967297, 18446744043644780551)", 7),
        ("(1099511627776, 1099511627776)", 0),
        ("(4294967296, 4294967296)", 0),
        ("(18446744073709551616,)", 0),
        ("(3, 6148914691236517206)", 2),
    ] {
        let file = write(
            dir.path(),
            "huge.npy",
            &npy("<i8", shape, false, &encode(&vec![5; wrapped], 8, false)),
        );
        let out = divgpu(&["-i", file.to_str().unwrap(), "--backend", "cpu"]);
        assert_fails(&out, 1, &["huge.npy", shape, "too many elements"]);
    }
    // a zero dimension empties any shape, as in numpy
    let file = write(
        dir.path(),
        "empty.npy",
        &npy("<i8", "(0, 18446744073709551616)", false, &[]),
    );
    let report = json_run(&["-i", file.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(report.elements, 0);
}

#[test]
fn npy_headers_numpy_reads_are_read_and_others_refused_in_one_line() {
    let dir = temp_dir();
    let values: Vec<i128> = vec![-7, 0, 1, 6, 12, 36, 97];
    let data = encode(&values, 4, false);
    let thresholds = "-8,0,12,100";
    let expected = oracle(&values, &[-8, 0, 12, 100]);
    for (name, bytes) in [
        // Python 2's numpy: longs, which numpy filters out
        (
            "py2.npy",
            npy_version(
                1,
                "{'descr': '<i4', 'fortran_order': False, 'shape': (7L,), }          \n",
                &data,
            ),
        ),
        (
            "py2-2d.npy",
            npy_version(
                1,
                "{'descr': '<i4', 'fortran_order': True, 'shape': (1L, 7L), }\n",
                &data,
            ),
        ),
        (
            "v2.npy",
            npy_version(
                2,
                "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }\n",
                &data,
            ),
        ),
        (
            "v3.npy",
            npy_version(
                3,
                "{\"shape\": (7,), \"descr\": \"<i4\", \"fortran_order\": False}\n",
                &data,
            ),
        ),
    ] {
        let file = write(dir.path(), name, &bytes);
        let report = json_run(&[
            "-i",
            file.to_str().unwrap(),
            "--backend",
            "cpu",
            "--thresholds",
            thresholds,
        ]);
        assert_eq!(report.results, expected, "{name}");
    }
    for (header, needles) in [
        (
            "import os\n",
            &["not a Python dict literal", "'import'"][..],
        ),
        ("[1, 2]\n", &["a list, not a dict"]),
        (
            "{'descr': '<i4', 'fortran_order': False}\n",
            &["no 'shape'"],
        ),
        (
            "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), 'extra': 1}\n",
            &["'extra'"],
        ),
        (
            "{'descr': '<i4', 'fortran_order': False, 'shape': (7.0,)}\n",
            &["not a decimal integer"],
        ),
        (
            "{'descr': '<i4', 'fortran_order': False, 'shape': (-7,)}\n",
            &["negative"],
        ),
        (
            "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (7,)}\n",
            &["structured"],
        ),
    ] {
        let file = write(dir.path(), "bad.npy", &npy_version(1, header, &data));
        let out = divgpu(&["-i", file.to_str().unwrap(), "--backend", "cpu"]);
        assert_fails(&out, 1, &[&["bad.npy"][..], needles].concat());
    }
    // format version 4.0 does not exist
    let file = write(
        dir.path(),
        "v4.npy",
        &npy_version(
            4,
            "{'descr': '<i4', 'fortran_order': False, 'shape': (7,)}\n",
            &data,
        ),
    );
    let out = divgpu(&["-i", file.to_str().unwrap(), "--backend", "cpu"]);
    assert_fails(&out, 1, &["v4.npy", "version 4.0"]);
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
}

/// Inputs that are not regular files: a directory is refused as one; a FIFO is read to its
/// end; `/dev/null` is an empty input (0 elements; as thresholds, none given).
#[cfg(unix)]
#[test]
fn inputs_that_are_not_regular_files_say_what_they_are() {
    let dir = temp_dir();
    for name in ["dir.npy", "dir.txt", "dir.bin"] {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        let mut args = vec!["-i", path.to_str().unwrap(), "--backend", "cpu"];
        if name.ends_with(".bin") {
            args.extend(["--dtype", "u8"]);
        }
        let out = divgpu(&args);
        assert_fails(&out, 1, &[name, "is a directory"]);
        assert!(!stderr(&out).contains("os error 19"));
    }
    let tdir = dir.path().join("tdir");
    std::fs::create_dir(&tdir).unwrap();
    let out = divgpu(&[
        "--thresholds-file",
        tdir.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_fails(&out, 1, &["tdir", "is a directory"]);

    // FIFOs, read as they come
    let values: Vec<i128> = vec![3, 4, -5, 12];
    for (name, bytes, extra) in [
        (
            "fifo.npy",
            npy("<i8", "(4,)", false, &encode(&values, 8, false)),
            vec![],
        ),
        ("fifo.txt", b"3\n4\n-5\n12\n".to_vec(), vec![]),
        ("fifo", encode(&values, 2, false), vec!["--dtype", "i16"]),
    ] {
        let path = dir.path().join(name);
        mkfifo(&path);
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || std::fs::write(path, bytes).unwrap())
        };
        let mut args = vec![
            "-i",
            path.to_str().unwrap(),
            "--backend",
            "cpu",
            "--thresholds",
            "4,100",
        ];
        args.extend(extra);
        let report = json_run(&args);
        writer.join().unwrap();
        assert_eq!(report.results, oracle(&values, &[4, 100]), "{name}");
    }

    // /dev/null: an empty array; no thresholds
    let report = json_run(&["-i", "/dev/null", "--dtype", "i64", "--backend", "cpu"]);
    assert_eq!(report.elements, 0);
    assert!(report.results.iter().all(|&r| r == 0));
    let out = divgpu(&["--thresholds-file", "/dev/null", "--backend", "cpu"]);
    assert_fails(&out, 1, &["no thresholds"]);
}

#[test]
fn integers_too_long_for_i128_are_out_of_range() {
    let dir = temp_dir();
    let long = "1".repeat(41);
    let out = divgpu(&["--thresholds", &format!("5,{long}"), "--backend", "cpu"]);
    assert_fails(&out, 2, &["--thresholds", &long, "outside [-2^63, 2^64)"]);
    let negative = format!("-{}", "9".repeat(50));
    let out = divgpu(&["--thresholds", &negative, "--backend", "cpu"]);
    assert_fails(&out, 2, &["outside [-2^63, 2^64)"]);
    let tfile = write(dir.path(), "t.txt", format!("7\n{long}\n").as_bytes());
    let out = divgpu(&[
        "--thresholds-file",
        tfile.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_fails(&out, 1, &["t.txt:2", "outside [-2^63, 2^64)"]);
    let input = write(dir.path(), "a.txt", format!("{long}\n").as_bytes());
    let out = divgpu(&["-i", input.to_str().unwrap(), "--backend", "cpu"]);
    assert_fails(&out, 1, &["a.txt:1", "outside [-2^63, 2^64)"]);
    // and what is not an integer still says so
    let out = divgpu(&["--thresholds", &format!("{long}x"), "--backend", "cpu"]);
    assert_fails(&out, 2, &["is not an integer"]);
}

/// Values above 2^63 built from known factorizations, with their divisor counts: an oracle that
/// shares nothing with the code under test (trial division to 2^32 per value would take
/// minutes).
fn factored_above_2_63(rng: &mut u64, count: usize) -> Vec<(i128, u64)> {
    const PRIMES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    let mut next = || {
        // SplitMix64
        *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::new();
    while out.len() < count {
        let (mut value, mut exponents) = (1u64, [0u64; PRIMES.len()]);
        loop {
            let i = (next() % PRIMES.len() as u64) as usize;
            match value.checked_mul(PRIMES[i]) {
                Some(v) => {
                    value = v;
                    exponents[i] += 1;
                }
                None => break,
            }
        }
        if value > i64::MAX as u64 {
            out.push((value.into(), exponents.iter().map(|e| e + 1).product()));
        }
    }
    out
}

/// Text arrays holding both negatives and values above 2^63-1 (no 64-bit type holds both): on
/// the CPU, every algorithm, 1 and 2 threads, and on the GPU, against an oracle of known
/// factorizations.
#[test]
fn text_arrays_of_both_signs_beyond_64_bits() {
    let dir = temp_dir();
    let mut rng = 42u64;
    let mut values: Vec<(i128, u64)> = factored_above_2_63(&mut rng, 300);
    values.extend([
        (-1, 1),
        (i64::MIN.into(), 1),
        (-123_456_789, 1),
        (0, 1),
        (1, 1),
        (36, 9),
        (97, 2),
        // 2^64 - 1 = 3 * 5 * 17 * 257 * 641 * 65537 * 6700417; 2^63
        (u64::MAX.into(), 128),
        (1 << 63, 64),
        (i64::MAX.into(), 96), // 7^2 * 73 * 127 * 337 * 92737 * 649657
    ]);
    for i in 0..2000i128 {
        values.push((i - 1000, common::oracle_count(i - 1000)));
    }
    // interleaved, so that blocks hold both kinds
    let mut state = 7u64;
    for i in (1..values.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        values.swap(i, (state >> 33) as usize % (i + 1));
    }
    let text: String = values.iter().map(|(v, _)| format!("{v}\n")).collect();
    let input = write(dir.path(), "mixed.txt", text.as_bytes());
    let mut thresholds: Vec<i128> = vec![
        i64::MIN.into(),
        -1001,
        -1,
        0,
        36,
        999,
        i64::MAX.into(),
        1 << 63,
        u64::MAX.into(),
        u64::MAX as i128 - 1,
    ];
    thresholds.extend(values.iter().step_by(97).map(|&(v, _)| v));
    // and a few small ones, which `fast` answers with a histogram of the values up to 100
    let small: Vec<i128> = vec![-5, 0, 1, 50, 100];
    for thresholds in [thresholds, small] {
        let expected: Vec<u64> = thresholds
            .iter()
            .map(|&t| {
                values
                    .iter()
                    .filter(|&&(v, _)| v <= t)
                    .map(|&(_, c)| c)
                    .sum()
            })
            .collect();
        let list = joined(&thresholds);
        for algorithm in ["fast", "naive"] {
            for threads in ["1", "2"] {
                let report = json_run(&[
                    "-i",
                    input.to_str().unwrap(),
                    "--backend",
                    "cpu",
                    "--algorithm",
                    algorithm,
                    "--threads",
                    threads,
                    "--thresholds",
                    &list,
                ]);
                assert_eq!(report.elements, values.len());
                assert_eq!(report.results, expected, "{algorithm}, {threads} threads");
            }
        }
        // The GPU splits such an array by sign (negatives with signed keys, the rest unsigned).
        if gpu_tests_enabled() {
            for algorithm in ["fast", "naive"] {
                let report = json_run(&[
                    "-i",
                    input.to_str().unwrap(),
                    "--backend",
                    "gpu",
                    "--algorithm",
                    algorithm,
                    "--thresholds",
                    &list,
                ]);
                assert_eq!(report.results, expected, "gpu {algorithm}");
            }
        }
    }
}

/// Starts the binary, truncates `path` to `len` bytes after `delay_ms`, and waits for the run.
fn truncated_while_running(args: &[&str], path: &Path, delay_ms: u64, len: u64) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A file truncated while divgpu reads it (through a map: a SIGBUS at the next page past the
/// new end) ends the run with one line naming it, exit 1, nothing on stdout. The truncation
/// comes while a run of several seconds is under way; a run that ends first or a truncation
/// that comes before the file is opened is tried again with other timings.
fn assert_truncation_is_reported(backend: &str, thresholds: &str, delays_ms: &[u64]) {
    let dir = temp_dir();
    let path = dir.path().join("big.npy");
    // 4M elements of 1,000,003 (prime): naive's trial division runs 1000 steps for each
    let elements = 4 << 20;
    let data: Vec<u8> = (0..elements)
        .flat_map(|_| 1_000_003i64.to_le_bytes())
        .collect();
    let file = npy("<i8", &format!("({elements},)"), false, &data);
    let mut last = String::new();
    for &delay_ms in delays_ms {
        std::fs::write(&path, &file).unwrap();
        let args = [
            "-i",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--algorithm",
            "naive",
            "--thresholds",
            thresholds,
        ];
        let out = truncated_while_running(&args, &path, delay_ms, 4096 + 100);
        let err = stderr(&out);
        assert_ne!(
            out.status.code(),
            None,
            "killed by a signal (SIGBUS?) after {delay_ms} ms: {err}"
        );
        if err.contains("changed while being read") {
            assert_fails(&out, 1, &["big.npy", "changed while being read"]);
            return;
        }
        // truncated before divgpu opened it, or done before the truncation: try again
        last = format!("after {delay_ms} ms: exit {:?}: {err}", out.status.code());
    }
    panic!("no truncation caught while the run was under way; last: {last}");
}

/// Text is mapped too: a thresholds file or a `.txt` array truncated while it is parsed gives
/// the same line. The parse takes a fraction of a second: some tries end before the truncation
/// (or start after it) and succeed; one of them must catch it, and none may die by a signal.
#[cfg(unix)]
#[test]
fn a_text_file_truncated_while_parsed_is_one_line() {
    let dir = temp_dir();
    let text = "1000003\n".repeat(12_000_000);
    for (name, flag) in [("t.txt", "--thresholds-file"), ("a.txt", "-i")] {
        let path = dir.path().join(name);
        let mut outcomes = Vec::new();
        let caught = [100u64, 50, 200, 20, 300, 150, 75, 400]
            .iter()
            .any(|&delay_ms| {
                std::fs::write(&path, &text).unwrap();
                let args = [flag, path.to_str().unwrap(), "--backend", "cpu"];
                let out = truncated_while_running(&args, &path, delay_ms, 5000);
                assert_ne!(
                    out.status.code(),
                    None,
                    "killed by a signal: {}",
                    stderr(&out)
                );
                outcomes.push(format!("{delay_ms} ms: {:?}", out.status.code()));
                let caught = stderr(&out).contains("changed while being read");
                if caught {
                    assert_fails(&out, 1, &[name, "changed while being read"]);
                }
                caught
            });
        assert!(caught, "{name}: no truncation caught: {outcomes:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_file_truncated_while_read_on_the_cpu_is_one_line() {
    // eight passes of seconds each: the truncation comes during one
    let thresholds = "1000002,1000003,1000004,1000005,1000006,1000007,1000008,1000009";
    assert_truncation_is_reported("cpu", thresholds, &[300, 150, 600, 1200]);
}

#[cfg(unix)]
#[test]
fn a_file_truncated_while_read_on_the_gpu_is_one_line() {
    if !gpu_tests_enabled() {
        return;
    }
    // Caught by the SIGBUS handler while the array is uploaded, or by the check after the run
    // (the array is on the GPU by then): one pass, so that the check comes soon.
    assert_truncation_is_reported("gpu", "1000003", &[100, 300, 50, 600]);
}

/// The binary with stdout and stderr as given, stdin closed.
fn divgpu_io(args: &[&str], stdout: std::process::Stdio, stderr: std::process::Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("the binary runs")
        .wait_with_output()
        .unwrap()
}

fn dev_full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full (Linux)")
        .into()
}

/// The write end of a pipe whose reader is already gone: every write fails with EPIPE.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Every command whose output goes to stdout, small and CPU-only.
fn stdout_commands() -> Vec<Vec<&'static str>> {
    let run = ["--backend", "cpu", "--size", "100", "--thresholds", "10,50"];
    let mut commands = vec![
        run.to_vec(),
        [&run[..], &["--json"]].concat(),
        vec!["devices", "--json"],
        vec!["bench", "--no-gpu", "--size", "200", "--runs", "1"],
        vec![
            "bench", "--no-gpu", "--size", "200", "--runs", "1", "--json",
        ],
        vec!["--help"],
        vec!["--version"],
    ];
    if gpu_tests_enabled() {
        commands.push(vec!["devices"]); // a table only when there is an adapter
    }
    commands
}

#[test]
fn a_full_stdout_is_an_error() {
    use std::process::Stdio;
    for args in stdout_commands() {
        let out = divgpu_io(&args, dev_full(), Stdio::piped());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        // bench says which row it runs first; the error is the last line, and the only one
        // that is not progress
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("divgpu: ") && last.contains("stdout") && last.contains("space"),
            "{args:?}: {err}"
        );
        if args[0] != "bench" {
            assert_fails(&out, 1, &["stdout"]);
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    use std::process::Stdio;
    for args in stdout_commands() {
        let out = divgpu_io(&args, closed_pipe(), Stdio::piped());
        assert_ended_quietly(&out, &args);
    }
}

/// A run whose reader left: exit 0, no word of stdout on stderr, no panic.
fn assert_ended_quietly(out: &Output, args: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    assert!(
        !err.contains("stdout") && !err.contains("panicked"),
        "{args:?}: {err}"
    );
}

/// `divgpu ... | head -c 100`: the reader leaves in the middle of a long table.
#[test]
fn a_pipe_closed_early_ends_the_run_quietly() {
    let dir = temp_dir();
    // some 2 MB of table: more than any pipe buffers, so the run is still writing
    let thresholds: String = (0..100_000).map(|t| format!("{}\n", t * 10)).collect();
    let file = write(dir.path(), "t.txt", thresholds.as_bytes());
    for json in [false, true] {
        let mut args = vec![
            "--backend",
            "cpu",
            "--size",
            "1000",
            "--thresholds-file",
            file.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        let out = read_a_little_and_leave(&args);
        assert_ended_quietly(&out, &args);
    }
}

/// Runs divgpu, reads the first 100 bytes of its stdout and closes the pipe (as `head` does).
fn read_a_little_and_leave(args: &[&str]) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 100];
    stdout.read_exact(&mut start).unwrap();
    drop(stdout);
    child.wait_with_output().unwrap()
}

#[test]
fn an_unwritable_stderr_loses_diagnostics_not_results() {
    use std::process::Stdio;
    let args = ["--backend", "cpu", "--size", "2000", "--max-value", "3000"];
    let expected = json_run(&args).results;
    for (name, stderr_to) in [
        ("2>/dev/full", dev_full as fn() -> Stdio),
        ("a closed pipe", closed_pipe),
    ] {
        let out = divgpu_io(
            &[&args[..], &["--json"]].concat(),
            Stdio::piped(),
            stderr_to(),
        );
        assert_eq!(out.status.code(), Some(0), "{name}");
        let report: Report = serde_json::from_slice(&out.stdout).expect("the whole report");
        assert_eq!(report.results, expected, "{name}");
        // bench (progress lines), devices and gen (a line saying what was written)
        let bench = divgpu_io(
            &[
                "bench", "--no-gpu", "--size", "200", "--runs", "1", "--json",
            ],
            Stdio::piped(),
            stderr_to(),
        );
        assert_eq!(bench.status.code(), Some(0), "{name}");
        serde_json::from_slice::<BenchReport>(&bench.stdout).expect("the whole bench report");
        let dir = temp_dir();
        let file = dir.path().join("g.npy");
        let gen = divgpu_io(
            &["gen", "-o", file.to_str().unwrap(), "--size", "10"],
            Stdio::piped(),
            stderr_to(),
        );
        assert_eq!(gen.status.code(), Some(0), "{name}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 128 + 80);
        // errors keep their exit codes, and still print nothing on stdout
        for (args, code) in [
            (vec!["--backend", "cpu", "-i", "/no/such/file.npy"], 1),
            (vec!["--backend", "tpu"], 2),
            (vec!["bench", "--no-gpu", "-i", "/no/such/file.npy"], 1),
        ] {
            let out = divgpu_io(&args, Stdio::piped(), stderr_to());
            assert_eq!(out.status.code(), Some(code), "{name}: {args:?}");
            assert!(out.stdout.is_empty(), "{name}: {args:?}");
        }
    }
}

#[test]
fn gen_reports_a_file_it_cannot_write() {
    let dir = temp_dir();
    let missing = dir.path().join("no-such-dir").join("a.npy");
    for target in [
        "/dev/full".to_string(),
        missing.to_str().unwrap().to_string(),
        dir.path().to_str().unwrap().to_string(),
    ] {
        let out = divgpu(&["gen", "-o", &target, "--size", "1000"]);
        assert_fails(&out, 1, &[&target]);
    }
}

// --- `--queries`: a stream of batches over one array ---

/// A line of `--queries`' output, read strictly: an answer or an error.
#[derive(Debug, PartialEq)]
enum StreamLine {
    Answer(StreamAnswer),
    Error(StreamError),
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct StreamAnswer {
    thresholds: Vec<i128>,
    results: Vec<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct StreamError {
    line: u64,
    error: String,
}

/// The binary with `input` on its stdin (written by a thread of its own, then closed).
fn divgpu_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // a reader that left early makes this write fail: that is the test's business, not this one's
    let writer = std::thread::spawn(move || drop(stdin.write_all(&input)));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Every stdout line of a stream, each one JSON object.
fn stream_lines(out: &Output) -> Vec<StreamLine> {
    let text = std::str::from_utf8(&out.stdout).expect("UTF-8 output");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line is complete: {text:?}"
    );
    // (serde's untagged enums cannot hold 128-bit integers: each form is tried in turn)
    text.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(answer) => StreamLine::Answer(answer),
            Err(_) => StreamLine::Error(
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{line:?} is no stream line: {e}")),
            ),
        })
        .collect()
}

/// Random batches: 1 to 12 thresholds each, around the array's values, with duplicates,
/// negatives and the ends of the range (u64::MAX needs 128-bit thresholds, printed exactly).
fn random_batches(rng: &mut divgpu::workload::SplitMix64, count: usize) -> Vec<Vec<i128>> {
    (0..count)
        .map(|_| {
            let len = 1 + rng.below(12) as usize;
            let mut batch: Vec<i128> = (0..len)
                .map(|_| match rng.below(12) {
                    0 => i64::MIN as i128,
                    1 => u64::MAX as i128,
                    2 => -(rng.below(100) as i128),
                    _ => rng.below(1_100_000) as i128 - 1_000,
                })
                .collect();
            if rng.below(3) == 0 {
                batch.push(batch[0]);
            }
            batch
        })
        .collect()
}

/// One batch as a line: comma-separated, with some whitespace around the numbers.
fn batch_line(batch: &[i128], spaced: bool) -> String {
    let sep = if spaced { " ,\t" } else { "," };
    let items: Vec<String> = batch.iter().map(|t| t.to_string()).collect();
    format!("{}{}\n", if spaced { "  " } else { "" }, items.join(sep))
}

/// Each line of a stream against a separate run of the same batch and against the oracle, on
/// every backend and algorithm: the session the stream keeps (its table, its upload) answers as
/// a fresh run does.
#[test]
fn queries_answer_each_batch_as_a_separate_run_and_the_oracle() {
    let mut rng = divgpu::workload::SplitMix64::new(2024);
    let values: Vec<i128> = (0..3000)
        .map(|_| match rng.below(10) {
            0 => -(rng.below(1 << 40) as i128),
            1 => rng.below(2) as i128,
            _ => rng.below(1_000_001) as i128,
        })
        .collect();
    let dir = temp_dir();
    let array = write(
        dir.path(),
        "a.npy",
        &npy("<i8", "(3000,)", false, &encode(&values, 8, false)),
    );
    let batches = random_batches(&mut rng, 7);
    let text: String = batches
        .iter()
        .enumerate()
        .map(|(i, b)| batch_line(b, i % 2 == 1))
        .collect();
    let queries = write(dir.path(), "q.txt", text.as_bytes());
    let expected: Vec<Vec<u64>> = batches.iter().map(|b| oracle(&values, b)).collect();

    let mut configs = vec![("cpu", "fast"), ("cpu", "naive")];
    if gpu_tests_enabled() {
        configs.extend([("gpu", "fast"), ("gpu", "naive"), ("both", "fast")]);
    }
    for (backend, algorithm) in configs {
        let common = [
            "-i",
            array.to_str().unwrap(),
            "--backend",
            backend,
            "--algorithm",
            algorithm,
        ];
        let out = divgpu(&[&common[..], &["--queries", queries.to_str().unwrap()]].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{backend} {algorithm}: {err}");
        let lines = stream_lines(&out);
        assert_eq!(lines.len(), batches.len(), "{backend} {algorithm}");
        for (i, (line, batch)) in lines.iter().zip(&batches).enumerate() {
            let StreamLine::Answer(answer) = line else {
                panic!("{backend} {algorithm}: line {} failed: {line:?}", i + 1)
            };
            assert_eq!(&answer.thresholds, batch, "{backend} {algorithm}");
            assert_eq!(
                answer.results, expected[i],
                "{backend} {algorithm}: {batch:?}"
            );
            let thresholds = format!("--thresholds={}", joined(batch));
            let single = json_run(&[&common[..], &[thresholds.as_str()]].concat());
            assert_eq!(
                single.results, answer.results,
                "{backend} {algorithm}: {batch:?}"
            );
        }
        let summary = match backend {
            "cpu" => format!("cpu backend, {algorithm} algorithm"),
            "gpu" => format!("gpu backend, {algorithm} algorithm, adapter"),
            _ => format!("gpu and cpu backend, {algorithm} algorithm, adapter"),
        };
        assert!(err.contains(&summary), "{err}");
        assert!(err.contains("7 batches answered, 0 lines failed"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A stream says on stderr which value index answers it; `--index-memory` caps it, and over
/// the cap every batch is a pass with the same answers.
#[test]
fn queries_name_their_index_and_index_memory_caps_it() {
    let mut rng = divgpu::workload::SplitMix64::new(23);
    // 400 distinct values over 2^41 (a sorted index of 6,400 bytes), each 5 times
    let distinct: Vec<i128> = (0..400)
        .map(|_| rng.below(1 << 41) as i128 - (1 << 40))
        .collect();
    let values: Vec<i128> = distinct.repeat(5);
    let dir = temp_dir();
    let array = write(
        dir.path(),
        "a.npy",
        &npy("<i8", "(2000,)", false, &encode(&values, 8, false)),
    );
    let batches = random_batches(&mut rng, 4);
    let text: String = batches.iter().map(|b| batch_line(b, false)).collect();
    let queries = write(dir.path(), "q.txt", text.as_bytes());
    let expected: Vec<Vec<u64>> = batches.iter().map(|b| oracle(&values, b)).collect();
    let mut backends = vec!["cpu"];
    if gpu_tests_enabled() {
        backends.push("gpu");
    }
    for backend in backends {
        for (memory, note) in [
            (None, "value index: sorted, 400 distinct values, 6400 bytes"),
            (
                Some("6400"),
                "value index: sorted, 400 distinct values, 6400 bytes",
            ),
            (
                Some("6399"),
                "no value index: the index would take 6400 bytes, above the index memory \
                 limit of 6399: every batch is a pass over the array",
            ),
            (
                Some("0K"),
                "no value index: the index would take 6400 bytes",
            ),
        ] {
            let mut args = vec![
                "-i",
                array.to_str().unwrap(),
                "--backend",
                backend,
                "--queries",
                queries.to_str().unwrap(),
            ];
            if let Some(memory) = memory {
                args.extend(["--index-memory", memory]);
            }
            let out = divgpu(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{backend} {memory:?}: {err}");
            assert!(err.contains(note), "{backend} {memory:?}: {err}");
            let lines = stream_lines(&out);
            for (line, want) in lines.iter().zip(&expected) {
                let StreamLine::Answer(answer) = line else {
                    panic!("{backend} {memory:?}: {line:?}")
                };
                assert_eq!(&answer.results, want, "{backend} {memory:?}");
            }
            assert_eq!(lines.len(), expected.len());
        }
    }
    for bad in ["1.5G", "G", "-1", "4X", "16777216T"] {
        let flag = format!("--index-memory={bad}");
        let out = divgpu(&[
            "--backend",
            "cpu",
            "--queries",
            queries.to_str().unwrap(),
            &flag,
        ]);
        assert_fails(&out, 2, &["--index-memory"]);
    }
}

/// Lines that are not batches are answered with their line number and why; the lines after
/// them are still answered, blank lines are skipped but counted, and the exit code is 1.
#[test]
fn queries_answer_bad_lines_with_errors_and_go_on() {
    let input: &[u8] = b"10,20\n\n1,,2\n5,x\n18446744073709551616\n 30 \n\xff\xfe\n1,2,\n\
        -9223372036854775809\n\r\n  7  ,18446744073709551615";
    let values: Vec<i128> = (0..200).collect();
    let dir = temp_dir();
    let array = write(
        dir.path(),
        "a.txt",
        joined(&values).replace(',', "\n").as_bytes(),
    );
    let file = write(dir.path(), "q.txt", input);
    let mut configs = vec![("cpu", "fast"), ("cpu", "naive")];
    if gpu_tests_enabled() {
        configs.push(("gpu", "fast"));
    }
    for (backend, algorithm) in configs {
        for (source, json) in [("-", false), (file.to_str().unwrap(), true)] {
            let mut args = vec![
                "-i",
                array.to_str().unwrap(),
                "--backend",
                backend,
                "--algorithm",
                algorithm,
                "--queries",
                source,
            ];
            if json {
                // accepted, and changes nothing
                args.push("--json");
            }
            let out = divgpu_stdin(&args, input);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            let lines = stream_lines(&out);
            let answer = |thresholds: Vec<i128>| {
                let results = oracle(&values, &thresholds);
                StreamLine::Answer(StreamAnswer {
                    thresholds,
                    results,
                })
            };
            let numbers: Vec<Option<u64>> = lines
                .iter()
                .map(|l| match l {
                    StreamLine::Error(e) => Some(e.line),
                    StreamLine::Answer(_) => None,
                })
                .collect();
            assert_eq!(
                numbers,
                [
                    None,
                    Some(3),
                    Some(4),
                    Some(5),
                    None,
                    Some(7),
                    Some(8),
                    Some(9),
                    None
                ],
                "{args:?}: {lines:?}"
            );
            assert_eq!(lines[0], answer(vec![10, 20]));
            assert_eq!(lines[4], answer(vec![30]));
            assert_eq!(lines[8], answer(vec![7, u64::MAX as i128]));
            let why = |i: usize| match &lines[i] {
                StreamLine::Error(e) => e.error.clone(),
                StreamLine::Answer(_) => unreachable!(),
            };
            for (i, needles) in [
                (1, &["threshold 2", "empty"][..]),
                (2, &["threshold 2", "\"x\"", "not an integer"]),
                (3, &["18446744073709551616", "2^64"]),
                (5, &["UTF-8"]),
                (6, &["threshold 3", "empty"]),
                (7, &["-9223372036854775809", "2^63"]),
            ] {
                for needle in needles {
                    assert!(
                        why(i).contains(needle),
                        "line {}: {needle:?} not in {:?}",
                        i + 1,
                        why(i)
                    );
                }
            }
            assert!(err.contains("3 batches answered, 6 lines failed"), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// Reads a child's stdout lines on a thread, so that a test can wait for one with a bound.
fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// `--queries -` through a pipe, as a program talks to it: one line written, its answer read
/// while stdin stays open, then the next.
#[test]
fn queries_answer_line_by_line_through_a_pipe() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    let mut backends = vec!["cpu"];
    if gpu_tests_enabled() {
        backends.push("gpu");
    }
    for backend in backends {
        let args = [
            "--backend",
            backend,
            "--size",
            "5000",
            "--max-value",
            "100000",
            "--queries",
            "-",
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let lines = line_reader(child.stdout.take().unwrap());
        let batches: [&[i128]; 4] = [&[100000], &[-1, 50000, 0], &[7], &[100000, 1, 100000]];
        for (i, batch) in batches.iter().enumerate() {
            stdin
                .write_all(batch_line(batch, false).as_bytes())
                .unwrap();
            stdin.flush().unwrap();
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{backend}: no answer to line {}", i + 1));
            let answer: StreamAnswer = serde_json::from_str(&line).unwrap();
            assert_eq!(answer.thresholds, *batch);
            let single = json_run(&[
                "--backend",
                "cpu",
                "--size",
                "5000",
                "--max-value",
                "100000",
                &format!("--thresholds={}", joined(batch)),
            ]);
            assert_eq!(answer.results, single.results, "{backend}: {batch:?}");
            // the stream waits for the next line, its stdin still open
            assert!(child.try_wait().unwrap().is_none(), "{backend} ended early");
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            lines.recv_timeout(Duration::from_secs(5)).is_err(),
            "no more lines"
        );
        assert!(stderr(&out).contains("4 batches answered, 0 lines failed"));
    }
}

#[test]
fn queries_usage_and_input_errors() {
    let dir = temp_dir();
    let t = write(dir.path(), "t.txt", b"5\n");
    let q = write(dir.path(), "q.txt", b"5\n");
    let q = q.to_str().unwrap();
    for extra in [
        vec!["--thresholds", "5"],
        vec!["--thresholds=1,2"],
        vec!["--thresholds-file", t.to_str().unwrap()],
    ] {
        for source in ["-", q] {
            let args = [&["--backend", "cpu", "--queries", source][..], &extra].concat();
            assert_fails(
                &divgpu_stdin(&args, b"5\n"),
                2,
                &["--queries", "cannot be used"],
            );
        }
    }
    // the queries file is opened before the array is loaded: one line, nothing on stdout
    let missing = dir.path().join("missing-queries.txt");
    let missing = missing.to_str().unwrap();
    assert_fails(
        &divgpu(&["--backend", "cpu", "--queries", missing]),
        1,
        &["missing-queries.txt"],
    );
    assert_fails(
        &divgpu(&[
            "--backend",
            "cpu",
            "--queries",
            dir.path().to_str().unwrap(),
        ]),
        1,
        &["is a directory"],
    );
    // and so is the array
    let no_array = dir.path().join("missing-array.npy");
    assert_fails(
        &divgpu(&[
            "--backend",
            "cpu",
            "-i",
            no_array.to_str().unwrap(),
            "--queries",
            q,
        ]),
        1,
        &["missing-array.npy"],
    );
    // an empty stream: no lines, exit 0, the summary on stderr
    for input in [&b""[..], b"\n\n   \n"] {
        let out = divgpu_stdin(
            &["--backend", "cpu", "--size", "10", "--queries", "-"],
            input,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
        assert!(
            stderr(&out).contains("0 batches answered, 0 lines failed"),
            "{}",
            stderr(&out)
        );
    }
    // a FIFO is read as it comes
    #[cfg(unix)]
    {
        let fifo = dir.path().join("q.fifo");
        mkfifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"3,4\n").unwrap())
        };
        let out = divgpu(&[
            "--backend",
            "cpu",
            "-i",
            t.to_str().unwrap(),
            "--queries",
            fifo.to_str().unwrap(),
        ]);
        writer.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stream_lines(&out),
            [StreamLine::Answer(StreamAnswer {
                thresholds: vec![3, 4],
                results: vec![0, 0]
            })]
        );
    }
}

/// Ctrl-C stops a stream, waiting for its next line or in the middle of a batch: exit 130,
/// the lines already answered stay on stdout.
#[test]
fn ctrl_c_stops_a_stream_and_keeps_its_answers() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    // (the first line, answered at once; a second line, or none, while the signal comes)
    let long = b"4000000000\n".as_slice();
    for second in [None, Some(long)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_divgpu"))
            .args([
                "--backend",
                "cpu",
                "--algorithm",
                "naive",
                "--size",
                "3000000",
                "--max-value",
                "4000000000",
                "--queries",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let lines = line_reader(child.stdout.take().unwrap());
        stdin.write_all(b"-1,1\n").unwrap();
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the first answer");
        if let Some(second) = second {
            stdin.write_all(second).unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before the signal"
        );
        interrupt(child, Duration::from_secs(10), "the stream");
        let answer: StreamAnswer = serde_json::from_str(&first).unwrap();
        assert_eq!(answer.thresholds, [-1, 1]);
        assert!(
            lines.recv_timeout(Duration::from_secs(5)).is_err(),
            "no second answer"
        );
        drop(stdin);
    }
}

/// Stdout errors as for a run: a full disk is one line and exit 1; a reader that left ends
/// the stream quietly.
#[test]
fn a_stream_to_a_full_or_closed_stdout() {
    use std::process::Stdio;
    let dir = temp_dir();
    let q = write(dir.path(), "q.txt", b"10,50\n20\n");
    let args = [
        "--backend",
        "cpu",
        "--size",
        "100",
        "--queries",
        q.to_str().unwrap(),
    ];
    assert_fails(
        &divgpu_io(&args, dev_full(), Stdio::piped()),
        1,
        &["stdout", "space"],
    );
    assert_ended_quietly(&divgpu_io(&args, closed_pipe(), Stdio::piped()), &args);
    // the reader leaves in the middle of a long stream
    let many: String = (0..20_000).map(|t| format!("{t},{}\n", t * 3)).collect();
    let q = write(dir.path(), "many.txt", many.as_bytes());
    let args = [
        "--backend",
        "cpu",
        "--size",
        "100",
        "--queries",
        q.to_str().unwrap(),
    ];
    let out = read_a_little_and_leave(&args);
    assert_ended_quietly(&out, &args);
}
