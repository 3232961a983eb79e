//! `--queries`: streams of batches, answered line by line.

use super::*;
use crate::inputs::mkfifo;
use crate::output::{
    assert_ended_quietly, closed_pipe, dev_full, divgpu_io, read_a_little_and_leave,
};
use crate::signals::interrupt;

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
    let array = write_i64_npy(dir.path(), "a.npy", &values);
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
    let array = write_i64_npy(dir.path(), "a.npy", &values);
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
    // the queries file is opened before the array is loaded, and so is the array: one line,
    // nothing on stdout. (the arguments after `--backend cpu`, what the line must name)
    let missing = dir.path().join("missing-queries.txt");
    let no_array = dir.path().join("missing-array.npy");
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec!["--queries", missing.to_str().unwrap()],
            "missing-queries.txt",
        ),
        (
            vec!["--queries", dir.path().to_str().unwrap()],
            "is a directory",
        ),
        (
            vec!["-i", no_array.to_str().unwrap(), "--queries", q],
            "missing-array.npy",
        ),
    ];
    for (args, needle) in cases {
        let args = [&["--backend", "cpu"][..], &args].concat();
        assert_fails(&divgpu(&args), 1, &[needle]);
    }
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
