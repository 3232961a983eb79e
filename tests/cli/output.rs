//! stdout and stderr that fail: full, closed early, unwritable.

use super::*;
use crate::run::BenchReport;

/// The binary with stdout and stderr as given, stdin closed.
pub(crate) fn divgpu_io(
    args: &[&str],
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> Output {
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

pub(crate) fn dev_full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full (Linux)")
        .into()
}

/// The write end of a pipe whose reader is already gone: every write fails with EPIPE.
pub(crate) fn closed_pipe() -> std::process::Stdio {
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
pub(crate) fn assert_ended_quietly(out: &Output, args: &[&str]) {
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
pub(crate) fn read_a_little_and_leave(args: &[&str]) -> std::process::Output {
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
