//! The index file: saved and loaded it answers as the pass, the in-memory index and the oracle
//! do, on every dtype and across its blocks; a damaged, truncated, foreign or future-version file,
//! or a crash before the rename, is one error line and never a wrong number.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{factor, gpu};
use divgpu::index::file::{BLOCK, FAILPOINT_VAR, MAGIC, VERSION};
use divgpu::index::ValueIndex;
use divgpu::input::{Array, DType, Integers};
use divgpu::session::{Backend, IndexState, Options, Session};
use divgpu::workload::SplitMix64;
use divgpu::{Error, Quiet};

use common::cpu_options as cpu;
use factor::answers as expected;

fn answers(session: &Session, thresholds: &[i128]) -> divgpu::Result<Vec<u64>> {
    Ok(session.query(&Integers::from(thresholds), &Quiet)?.results)
}

/// Thresholds on, beside and between `values`, and at the ends of the range.
fn thresholds_for(values: &[i128], rng: &mut SplitMix64) -> Vec<i128> {
    let mut out = vec![i64::MIN.into(), -1, 0, 1, 2, u64::MAX.into()];
    for _ in 0..300 {
        if values.is_empty() {
            break;
        }
        let x = values[rng.below(values.len() as u64) as usize];
        out.extend([x - 1, x, x + 1]);
    }
    out.retain(|t| (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(t));
    out
}

/// An array of `dtype` holding `values` (raw little-endian bytes, or i128 storage).
fn array_of(dtype: &str, values: &[i128]) -> Array {
    if dtype == "i128" {
        return Array::from_i128(values.to_vec()).unwrap();
    }
    let d = DType::from_raw_name(dtype).unwrap();
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| v.to_le_bytes()[..d.width].to_vec())
        .collect();
    Array::from_raw_bytes(bytes, d).unwrap()
}

fn values_of(dtype: &str, rng: &mut SplitMix64, n: usize) -> Vec<i128> {
    let (lo, hi): (i128, i128) = match dtype {
        "i8" => (-128, 127),
        "u16" => (0, 65535),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "i64" => (-(1 << 40), 1 << 40),
        "u64" => (0, 1 << 44),
        _ => (i64::MIN.into(), u64::MAX.into()),
    };
    let pool: Vec<i128> = (0..n / 3 + 1)
        .map(|_| lo + (rng.next_u64() as i128 % (hi - lo + 1)))
        .chain(
            [lo, hi, 0, 1, 2]
                .into_iter()
                .filter(|v| (lo..=hi).contains(v)),
        )
        .collect();
    (0..n)
        .map(|_| pool[rng.below(pool.len() as u64) as usize])
        .collect()
}

/// Every dtype (dense indexes included, saved as sorted files), several blocks, an empty array:
/// the loaded file answers as the session that saved it and as the oracle, and so do its bytes
/// held in memory; saving the loaded file again gives the same bytes.
#[test]
fn saved_indexes_of_every_dtype_answer_like_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(2026);
    for (dtype, n) in [
        ("i8", 3000),
        ("u16", 3000),
        ("i32", 5000),
        ("u32", 3 * BLOCK + 7),
        ("i64", 2 * BLOCK),
        ("u64", 1000),
        ("i128", 1500),
        ("i64", 0),
    ] {
        let values = if dtype == "u32" {
            // every value distinct, up to u32::MAX: exactly 3 blocks and 7 values
            (0..n as i128)
                .map(|k| i128::from(u32::MAX) - 997 * k)
                .collect()
        } else {
            values_of(dtype, &mut rng, n)
        };
        let thresholds = thresholds_for(&values, &mut rng);
        let want = expected(&values, &thresholds);
        let session = Session::new(Arc::new(array_of(dtype, &values)), &cpu()).unwrap();
        let path = dir.path().join(format!("{dtype}-{n}.divi"));
        session.save(&path, &Quiet).unwrap();
        assert_eq!(answers(&session, &thresholds).unwrap(), want, "{dtype}");
        let loaded = Session::load(&path, &cpu()).unwrap();
        assert_eq!(loaded.len(), values.len(), "{dtype}");
        assert_eq!(answers(&loaded, &thresholds).unwrap(), want, "{dtype}");
        let IndexState::Ready(stats) = loaded.index_state() else {
            panic!("{dtype}: {:?}", loaded.index_state())
        };
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(stats.kind, "file");
        assert_eq!(stats.distinct, Some(distinct.len()), "{dtype}");
        let bytes = std::fs::read(&path).unwrap();
        let held = ValueIndex::from_bytes(bytes.clone()).unwrap();
        for (&t, &w) in thresholds.iter().zip(&want) {
            assert_eq!(held.at_most(t).unwrap(), Some(w), "{dtype} at {t}");
        }
        let again = dir.path().join(format!("{dtype}-{n}-again.divi"));
        loaded.save(&again, &Quiet).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), bytes, "{dtype}");
    }
}

/// A GPU session's index (counts from the GPU) saved and loaded: the same answers.
#[test]
fn an_index_built_on_the_gpu_saves_and_loads() {
    let Some(gpu) = gpu() else { return };
    let mut rng = SplitMix64::new(4);
    let values = values_of("i64", &mut rng, 2000);
    let thresholds = thresholds_for(&values, &mut rng);
    let options = Options {
        backend: Backend::Gpu,
        ..Options::default()
    };
    let session =
        Session::with_gpu(Arc::new(array_of("i64", &values)), gpu.clone(), &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpu.divi");
    session.save(&path, &Quiet).unwrap();
    let loaded = Session::load(&path, &cpu()).unwrap();
    assert_eq!(
        answers(&loaded, &thresholds).unwrap(),
        expected(&values, &thresholds)
    );
}

/// A small file of two blocks and the answers it must give.
fn small_file(dir: &Path) -> (Vec<u8>, Vec<i128>, Vec<u64>) {
    let values: Vec<i128> = (0..(BLOCK as i128 + 900)).map(|k| 3 * k - 50).collect();
    let session = Session::new(Arc::new(array_of("i32", &values)), &cpu()).unwrap();
    let path = dir.join("small.divi");
    session.save(&path, &Quiet).unwrap();
    let mut rng = SplitMix64::new(1);
    let thresholds = thresholds_for(&values, &mut rng);
    let want = expected(&values, &thresholds);
    (std::fs::read(&path).unwrap(), thresholds, want)
}

/// Any one byte changed, anywhere: the file is refused when it is opened, or each threshold
/// gives the right number or an error naming the damaged block. Never another number.
#[test]
fn a_damaged_byte_anywhere_is_an_error_and_never_a_wrong_number() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, thresholds, want) = small_file(dir.path());
    let mut refused = 0;
    let mut answered_with_errors = 0;
    let positions: Vec<usize> = (0..256).chain((256..bytes.len()).step_by(13)).collect();
    for &at in &positions {
        for flip in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            let index = match ValueIndex::from_bytes(damaged) {
                Err(Error::Data(message)) => {
                    assert!(!message.contains('\n'), "{message}");
                    refused += 1;
                    continue;
                }
                Err(other) => panic!("byte {at}: {other:?}"),
                Ok(index) => index,
            };
            let mut errors = 0;
            for (&t, &w) in thresholds.iter().zip(&want) {
                match index.at_most(t) {
                    Ok(got) => assert_eq!(got, Some(w), "byte {at} ^ {flip:#x}, threshold {t}"),
                    Err(Error::Data(message)) => {
                        assert!(message.contains("damaged"), "{message}");
                        errors += 1;
                    }
                    Err(other) => panic!("byte {at}: {other:?}"),
                }
            }
            // the damage is in data some threshold reads, or in padding none does
            answered_with_errors += usize::from(errors > 0);
        }
    }
    assert!(
        refused > 0 && answered_with_errors > 0,
        "{refused} {answered_with_errors}"
    );
}

/// Cut short at any length, the file is refused with one line saying so.
#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _, _) = small_file(dir.path());
    for len in (0..bytes.len())
        .step_by(97)
        .chain([bytes.len() - 1, bytes.len() - 8])
    {
        match ValueIndex::from_bytes(bytes[..len].to_vec()) {
            Err(Error::Data(message)) => assert!(
                message.contains("truncated") || message.contains("not a divgpu index"),
                "{len}: {message}"
            ),
            other => panic!("{len} bytes: {other:?}"),
        }
    }
}

/// A foreign file, a future version (with a header whose checksum is right), or a header that
/// was changed: each gets its own one line.
#[test]
fn foreign_and_future_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _, _) = small_file(dir.path());
    let refusal = |b: Vec<u8>| match ValueIndex::from_bytes(b) {
        Err(Error::Data(m)) => m,
        other => panic!("{other:?}"),
    };
    let npy = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }";
    assert!(refusal(npy.to_vec()).contains("not a divgpu index file"));
    assert!(refusal(Vec::new()).contains("not a divgpu index file"));
    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let crc = crc32(&future[..124]);
    future[124..128].copy_from_slice(&crc.to_le_bytes());
    let m = refusal(future);
    assert!(
        m.contains(&format!("version {}", VERSION + 1)) && m.contains("newer"),
        "{m}"
    );
    let mut changed = bytes.clone();
    changed[24] ^= 1; // the element count, checksum not updated
    assert!(refusal(changed).contains("header is damaged"));
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(&bytes[bytes.len() - 8..], &MAGIC);
}

/// CRC-32 (IEEE), bit by bit: the tests' own, to forge a header that checks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A process that dies after writing the file but before renaming it leaves the old index in
/// place, whole, and nothing at the target that loads as something else.
#[test]
fn a_crash_before_the_rename_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let old: Vec<i128> = (0..100).collect();
    let new: Vec<i128> = (0..100).map(|v| v * 7 + 1_000_000).collect();
    let npy = |name: &str, values: &[i128]| {
        let path = dir.path().join(name);
        let data: Vec<u8> = values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect();
        let dict = format!(
            "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
            values.len()
        );
        let header = format!("{dict:<117}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let target = dir.path().join("index.divi");
    let bin = env!("CARGO_BIN_EXE_divgpu");
    let build = |input: &Path, failpoint: bool| {
        let mut command = Command::new(bin);
        command.args(["index", "--backend", "cpu", "-i"]);
        command.arg(input).arg("-o").arg(&target);
        if failpoint {
            command.env(FAILPOINT_VAR, "index-before-rename");
        }
        command.output().unwrap()
    };
    // no file yet: the crash leaves none
    let crashed = build(&npy("new.npy", &new), true);
    assert!(!crashed.status.success());
    assert!(!target.exists());
    let done = build(&npy("old.npy", &old), false);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let before = std::fs::read(&target).unwrap();
    let crashed = build(&npy("new.npy", &new), true);
    assert!(!crashed.status.success());
    assert_eq!(std::fs::read(&target).unwrap(), before);
    let loaded = Session::load(&target, &cpu()).unwrap();
    let thresholds = [50, 1_000_000, 2_000_000];
    assert_eq!(
        answers(&loaded, &thresholds).unwrap(),
        expected(&old, &thresholds)
    );
}
