//! Ctrl-C: a run, a naive run, a GPU run and a bench stop with exit 130 and nothing on stdout.

use super::*;

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
pub(crate) fn interrupt(
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

/// A long `naive` run on `backend`: 3,000,000 values below 4e9, each factored by the post's loop.
fn long_naive_run(backend: &str) -> [&str; 11] {
    [
        "--backend",
        backend,
        "--algorithm",
        "naive",
        "--size",
        "3000000",
        "--max-value",
        "4000000000",
        "--thresholds",
        "4000000000",
        "--json",
    ]
}

#[test]
fn ctrl_c_stops_a_long_cpu_run() {
    assert_interrupts(&long_naive_run("cpu"));
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
    assert_interrupts(&long_naive_run("gpu"));
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
