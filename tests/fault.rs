//! A panic inside divgpu, injected (`fault-injection` feature, `DIVGPU_FAULT=<point>`), never
//! crosses the API: a session answers `Error::Panicked` and is poisoned (every later call is
//! that error, never a number), and the binary prints one `divgpu:` line and exits 1.
//!
//! One test function: the fault is chosen by an environment variable, which every thread of
//! this binary reads.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{cpu_options, gpu, oracle};
use divgpu::input::{Array, Integers};
use divgpu::session::{Backend, Options, Session};
use divgpu::{Algorithm, Error, Quiet};

const FAULT: &str = "DIVGPU_FAULT";

fn count(session: &Session, thresholds: &[i128]) -> divgpu::Result<Vec<u64>> {
    let ts = Integers::from(thresholds.to_vec());
    session.query(&ts, &Quiet).map(|a| a.results)
}

fn assert_panicked(outcome: divgpu::Result<Vec<u64>>, point: &str) {
    match outcome {
        Err(Error::Panicked { message, .. }) => {
            assert!(
                message.contains(&format!("fault injected at {point}")),
                "{message}"
            )
        }
        other => panic!("{point}: not the panic's error: {other:?}"),
    }
}

#[test]
fn an_injected_panic_is_an_error_and_poisons_its_session() {
    // wide values: the CPU's fast session keeps a sorted index, whose counting is a point
    let values: Vec<i64> = (0..500)
        .map(|i| (1i64 << 33) + 7 * i)
        .chain(0..100)
        .collect();
    let wide: Vec<i128> = values.iter().map(|&v| v.into()).collect();
    let thresholds = [5, 99, 1 << 34];
    let want = oracle(&wide, &thresholds);
    let array = Arc::new(Array::from_i64(values));
    let mut cases = vec![
        ("cpu-pass", cpu_options(), Algorithm::Naive),
        ("index-count", cpu_options(), Algorithm::Fast),
    ];
    if gpu().is_some() {
        let options = Options {
            backend: Backend::Gpu,
            ..Options::default()
        };
        cases.push(("gpu-query", options.clone(), Algorithm::Naive));
        cases.push(("gpu-query", options, Algorithm::Fast));
    }
    for (point, options, algorithm) in cases {
        let options = Options {
            algorithm,
            ..options
        };
        let session = Session::new(array.clone(), &options).unwrap();
        std::env::set_var(FAULT, point);
        assert_panicked(count(&session, &thresholds), point);
        std::env::remove_var(FAULT);
        // poisoned: the same error for every later call, the fault gone or not
        assert_panicked(count(&session, &thresholds), point);
        assert_panicked(count(&session, &[1]), point);
        // a new session answers
        let fresh = Session::new(array.clone(), &options).unwrap();
        assert_eq!(count(&fresh, &thresholds).unwrap(), want, "{point}");
    }

    // the binary: one line, exit 1, nothing on stdout
    let mut runs = vec![("cpu-pass", vec!["--backend", "cpu", "--algorithm", "naive"])];
    if gpu().is_some() {
        runs.push(("gpu-query", vec!["--backend", "gpu"]));
    }
    for (point, args) in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_divgpu"))
            .args(["--size", "1000"])
            .args(&args)
            .env(FAULT, point)
            // which keeps Rust's own panic message, for whoever debugs divgpu
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{point}: {err}");
        assert!(out.stdout.is_empty(), "{point}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("internal error"))
            .collect();
        assert_eq!(lines.len(), 1, "{point}: {err}");
        assert!(lines[0].starts_with("divgpu: internal error while counting: fault injected at"));
        assert!(
            !err.contains("panicked at"),
            "{point}: Rust's panic message: {err}"
        );
    }
}
