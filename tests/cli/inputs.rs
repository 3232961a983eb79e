//! Input files: .npy versions, shapes and headers, FIFOs and devices, integers beyond 64 bits, and
//! files truncated while read.

use super::*;

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
pub(crate) fn mkfifo(path: &Path) {
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
    let negative = format!("-{}", "9".repeat(50));
    let tfile = write(dir.path(), "t.txt", format!("7\n{long}\n").as_bytes());
    let input = write(dir.path(), "a.txt", format!("{long}\n").as_bytes());
    let (five_long, long_x) = (format!("5,{long}"), format!("{long}x"));
    let range = "outside [-2^63, 2^64)";
    // (the arguments before `--backend cpu`, the exit code, what the one line must name)
    let cases: [(Vec<&str>, i32, Vec<&str>); 5] = [
        (
            vec!["--thresholds", &five_long],
            2,
            vec!["--thresholds", &long, range],
        ),
        (vec!["--thresholds", &negative], 2, vec![range]),
        (
            vec!["--thresholds-file", tfile.to_str().unwrap()],
            1,
            vec!["t.txt:2", range],
        ),
        (
            vec!["-i", input.to_str().unwrap()],
            1,
            vec!["a.txt:1", range],
        ),
        // and what is not an integer still says so
        (vec!["--thresholds", &long_x], 2, vec!["is not an integer"]),
    ];
    for (mut args, code, needles) in cases {
        args.extend(["--backend", "cpu"]);
        assert_fails(&divgpu(&args), code, &needles);
    }
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
