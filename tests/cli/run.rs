//! The default run and the small commands: help, usage and data errors, JSON, gen, every dtype, both
//! backends, devices and --adapter, stderr without XDG_RUNTIME_DIR, bench.

use super::*;

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

/// Usage errors: the arguments, and what the one line must name (the flag, and the limit or the
/// value where there is one).
const USAGE_ERRORS: &[(&[&str], &[&str])] = &[
    (&["--backend", "tpu"], &["--backend"]),
    (&["--algorithm", "clever"], &["--algorithm"]),
    (&["--threads", "0"], &["--threads"]),
    // thousands of threads took seconds to start and 100,000 never finished: refused at once
    (&["--threads", "1025"], &["--threads", "1024"]),
    (&["--threads", "100000"], &["--threads", "1024"]),
    (&["--threads", "4294967296"], &["--threads", "1024"]),
    (&["--thresholds", "5,x"], &["--thresholds", "x"]),
    (&["--thresholds", ""], &["--thresholds"]),
    (
        &["--thresholds", "18446744073709551616"],
        &["--thresholds", "2^64"],
    ),
    (&["--input", "a.bin", "--dtype", "f32"], &["--dtype"]),
    (&["--dtype", "i32"], &["--input"]),
    (&["--input", "a.npy", "--dtype", "i32"], &["--dtype"]),
    (&["--no-such-flag"], &["--no-such-flag"]),
    (
        &["--thresholds", "1", "--thresholds-file", "t.txt"],
        &["--thresholds"],
    ),
];

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    for &(args, needles) in USAGE_ERRORS {
        assert_fails(&divgpu(args), 2, needles);
    }
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

/// `divgpu bench --json`, read strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BenchReport {
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
