//! The value index: its shapes, its memory limit, its build (once, by one caller, cancellable),
//! and the GPU's counts for it, each against the oracle (`common::factor`, which shares no code
//! with divgpu). The randomized differential suite reaches the index on every dtype too.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{cpu_options, factor, gpu};
use divgpu::index::Unavailable;
use divgpu::input::{Array, DType, Integers};
use divgpu::session::{Backend, IndexState, Options, Session};
use divgpu::workload::SplitMix64;
use divgpu::{Error, Observer, Quiet};

use factor::answers as expected;

fn query(session: &Session, thresholds: &[i128]) -> divgpu::Result<divgpu::session::Answer> {
    session.query(&Integers::from(thresholds), &Quiet)
}

/// Thresholds at every edge of `values`: each value, one either side, and the ends of the
/// range a threshold may take.
fn edge_thresholds(values: &[i128]) -> Vec<i128> {
    let mut out = vec![i64::MIN.into(), -1, 0, 1, 2, u64::MAX.into()];
    for &x in values.iter().take(200) {
        for t in [x - 1, x, x + 1] {
            if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Arrays of every stored dtype whose values span far more than a dense table: each a sorted
/// index, with keys at the dtype's own width, equal to the oracle at every edge.
#[test]
fn sorted_indexes_of_every_dtype_match_the_oracle() {
    let mut rng = SplitMix64::new(23);
    let cases: [(&str, Vec<i128>); 5] = [
        (
            "i32",
            (0..3000)
                .map(|_| rng.below(1 << 32) as i128 - (1 << 31))
                .chain([i32::MIN.into(), i32::MAX.into(), 0, 1, -1])
                .collect(),
        ),
        (
            "u32",
            (0..3000)
                .map(|_| rng.below(1 << 32) as i128)
                .chain([0, 1, 2, u32::MAX.into()])
                .collect(),
        ),
        (
            "i64",
            (0..3000)
                .map(|_| rng.next_u64() as i64 as i128 / (1 << 20))
                .chain([i64::MIN.into(), i64::MAX.into(), 0, 1, -1])
                .collect(),
        ),
        (
            "u64",
            (0..1500)
                .map(|_| (rng.next_u64() >> 24) as i128)
                .chain([0, 1, 2, u64::MAX.into(), (u64::MAX - 1).into()])
                .collect(),
        ),
        (
            // text with negatives and values above i64::MAX: 65-bit keys
            "i128",
            (0..1500)
                .map(|_| (rng.next_u64() >> 24) as i128 - (1 << 39))
                .chain([i64::MIN.into(), u64::MAX.into(), 0, 1])
                .collect(),
        ),
    ];
    for (name, mut values) in cases {
        // duplicates, many of some values
        let repeats: Vec<i128> = values.iter().step_by(7).copied().collect();
        values.extend(repeats.iter().chain(&repeats));
        let array = match name {
            "i128" => Array::from_i128(values.clone()).unwrap(),
            "u64" => Array::from_u64(values.iter().map(|&v| v as u64).collect()),
            "i64" => Array::from_i64(values.iter().map(|&v| v as i64).collect()),
            _ => {
                let dtype = DType::from_raw_name(name).unwrap();
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|&v| (v as u32).to_le_bytes())
                    .collect();
                Array::from_raw_bytes(bytes, dtype).unwrap()
            }
        };
        let session = Session::new(Arc::new(array), &cpu_options()).unwrap();
        let thresholds = edge_thresholds(&values);
        let first = query(&session, &thresholds).unwrap();
        assert!(first.timings.from_index, "{name}");
        assert_eq!(first.results, expected(&values, &thresholds), "{name}");
        let IndexState::Ready(stats) = session.index_state() else {
            panic!("{name}: {:?}", session.index_state());
        };
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(stats.kind, "sorted", "{name}");
        assert_eq!(stats.distinct, Some(distinct.len()), "{name}");
        let key = match name {
            "i32" | "u32" => 4,
            "i128" => 16,
            _ => 8,
        };
        assert_eq!(stats.bytes, (distinct.len() * (key + 8)) as u64, "{name}");
        assert_eq!(stats.elements, values.len());
    }
}

/// Narrow ranges keep the dense table on the CPU; a GPU session takes the sorted shape, with
/// the counts computed on the GPU.
#[test]
fn narrow_ranges_are_dense_on_the_cpu_and_sorted_on_the_gpu() {
    let mut rng = SplitMix64::new(5);
    let values: Vec<i128> = (0..20_000)
        .map(|_| rng.below(300_001) as i128 - 100)
        .collect();
    let thresholds = edge_thresholds(&values);
    let want = expected(&values, &thresholds);
    let array = Arc::new(Array::from_i64(values.iter().map(|&v| v as i64).collect()));
    let cpu = Session::new(array.clone(), &cpu_options()).unwrap();
    assert_eq!(query(&cpu, &thresholds).unwrap().results, want);
    assert!(matches!(cpu.index_state(), IndexState::Ready(s) if s.kind == "dense"));
    let Some(gpu) = gpu() else { return };
    let options = Options {
        backend: Backend::Gpu,
        ..Options::default()
    };
    let on_gpu = Session::with_gpu(array, gpu.clone(), &options).unwrap();
    let answer = query(&on_gpu, &thresholds).unwrap();
    assert!(answer.timings.from_index);
    assert_eq!(answer.results, want);
    assert!(matches!(on_gpu.index_state(), IndexState::Ready(s) if s.kind == "sorted"));
}

/// The GPU's counts for an index, against the oracle: values across 2^32 (the wide pipeline),
/// squares, primes, and more values than one GPU call takes (its blocks' seams).
#[test]
fn the_gpus_counts_for_an_index_match_the_oracle() {
    let Some(gpu) = gpu() else { return };
    let mut rng = SplitMix64::new(77);
    let mut values: Vec<u64> = (0..300)
        .map(|_| {
            let shift = rng.below(40);
            rng.next_u64() >> shift
        })
        .chain([2, 3, 4, 65_536, 4_294_967_291, 4_294_967_296, 4_294_836_225])
        .chain([(1 << 32) + 15, 18_446_744_073_709_551_557, u64::MAX])
        .filter(|&v| v >= 2)
        .collect();
    // past one call's block of values (2^18): small ones, which the GPU's table answers
    values.extend((2..(1u64 << 18) + 600).map(|v| v * 3));
    values.sort_unstable();
    values.dedup();
    let counts = divgpu::gpu::divisor_counts(gpu, &values, &Quiet).unwrap();
    let mut blocks = 0;
    for block in values.chunks(1 << 18) {
        blocks += 1;
        let c = divgpu::gpu::divisor_counts(gpu, block, &Quiet).unwrap();
        for (&v, &c) in block.iter().zip(&c) {
            assert_eq!(u64::from(c), factor::c(v.into()), "c({v})");
        }
    }
    assert!(blocks > 1);
    assert_eq!(counts.len(), values.len());
    for (&v, &c) in values.iter().zip(&counts) {
        assert_eq!(u64::from(c), factor::c(v.into()), "c({v})");
    }
}

/// Over the memory limit the index is refused, says how much it needed, and every batch is a
/// pass with the same answers; at exactly its size it is built.
#[test]
fn the_memory_limit_refuses_an_index_that_does_not_fit_and_answers_by_passes() {
    let mut rng = SplitMix64::new(9);
    let values: Vec<i128> = (0..4000).map(|_| (rng.next_u64() >> 20) as i128).collect();
    let thresholds = edge_thresholds(&values);
    let want = expected(&values, &thresholds);
    let array = Arc::new(Array::from_u64(values.iter().map(|&v| v as u64).collect()));
    let needed = 4000 * 16;
    for limit in [0, needed - 1] {
        let session = Session::new(
            array.clone(),
            &Options {
                index_memory: Some(limit),
                ..cpu_options()
            },
        )
        .unwrap();
        for _ in 0..2 {
            let answer = query(&session, &thresholds).unwrap();
            assert!(!answer.timings.from_index);
            assert_eq!(answer.results, want);
        }
        assert_eq!(
            session.index_state(),
            IndexState::Unavailable(Unavailable::OverMemory { needed, limit })
        );
        assert!(session.index_state().to_string().contains("pass"));
    }
    let session = Session::new(
        array,
        &Options {
            index_memory: Some(needed),
            ..cpu_options()
        },
    )
    .unwrap();
    assert_eq!(query(&session, &thresholds).unwrap().results, want);
    assert!(session.has_index());
}

/// A dense table over the limit gives way to a sorted index that fits.
#[test]
fn a_dense_table_over_the_limit_gives_way_to_a_sorted_index() {
    // 3 distinct values spanning 2^22: a dense table of 16 MiB, a sorted index of 48 bytes
    let values: Vec<i128> = [5, 4_000_000, 4_194_303].repeat(100);
    let thresholds = edge_thresholds(&values);
    let array = Arc::new(Array::from_i64(values.iter().map(|&v| v as i64).collect()));
    let session = Session::new(
        array,
        &Options {
            index_memory: Some(1 << 10),
            ..cpu_options()
        },
    )
    .unwrap();
    assert_eq!(
        query(&session, &thresholds).unwrap().results,
        expected(&values, &thresholds)
    );
    assert!(
        matches!(session.index_state(), IndexState::Ready(s) if s.kind == "sorted" && s.bytes == 48)
    );
}

/// Counts how often the build asks whether to stop, and stops it when told.
struct Watch {
    stop: AtomicBool,
    started: AtomicU64,
}

impl Observer for Watch {
    fn start(&self, _total: u64) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }
    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Many threads ask a fresh session at once: the index is built once, every answer is exact,
/// and a cancelled build leaves nothing behind for the next batch to trust.
#[test]
fn the_index_is_built_once_for_many_threads_and_a_cancelled_build_is_not_kept() {
    let mut rng = SplitMix64::new(31);
    let values: Vec<i128> = (0..20_000)
        .map(|_| (rng.next_u64() >> 28) as i128)
        .collect();
    let array = Arc::new(Array::from_u64(values.iter().map(|&v| v as u64).collect()));
    let session = Session::new(array.clone(), &cpu_options()).unwrap();
    let cancelled = Watch {
        stop: AtomicBool::new(true),
        started: AtomicU64::new(0),
    };
    assert!(matches!(
        session.build_index(&cancelled),
        Err(Error::Cancelled)
    ));
    assert_eq!(session.index_state(), IndexState::NotBuilt);
    let watch = Watch {
        stop: AtomicBool::new(false),
        started: AtomicU64::new(0),
    };
    let mut rng = SplitMix64::new(8);
    let mut thresholds: Vec<i128> = (0..50).map(|_| (rng.next_u64() >> 28) as i128).collect();
    thresholds.push(u64::MAX.into());
    let want = expected(&values, &thresholds);
    std::thread::scope(|scope| {
        for k in 0..8 {
            let (session, watch) = (&session, &watch);
            let mut mine = thresholds.clone();
            mine.rotate_left(k);
            let mut want = want.clone();
            want.rotate_left(k);
            scope.spawn(move || {
                let answer = session
                    .query(&Integers::from(mine.as_slice()), watch)
                    .unwrap();
                assert_eq!(answer.results, want);
            });
        }
    });
    // one build, which counted every value once
    assert_eq!(watch.started.load(Ordering::Relaxed), 1);
    assert!(session.has_index());
}

/// Sessions that never keep an index say so, and refuse to build one.
#[test]
fn naive_and_passes_only_sessions_have_no_index() {
    let array = Arc::new(Array::from_i64(vec![1, 2, 3]));
    for options in [
        Options {
            algorithm: divgpu::Algorithm::Naive,
            ..cpu_options()
        },
        Options {
            keep_index: false,
            ..cpu_options()
        },
    ] {
        let session = Session::new(array.clone(), &options).unwrap();
        assert!(matches!(
            session.build_index(&Quiet),
            Err(Error::Option {
                name: "build_index",
                ..
            })
        ));
        assert_eq!(query(&session, &[3]).unwrap().results, vec![5]);
        assert_eq!(session.index_state(), IndexState::Off);
    }
}

/// A sorted index counts values only as far as the thresholds reach, extends from there when a
/// later batch reaches further (across the blocks it publishes, 2^20 values each), and answers
/// like the oracle at every step; `build_index` counts them all.
#[test]
fn a_sorted_index_counts_only_as_far_as_the_thresholds_reach() {
    // 1,050,000 distinct values 4 apart (beyond a dense table's span), some twice
    let n = 1_050_000i128;
    let mut values: Vec<i128> = (0..n).map(|k| 4 * k - 8).collect();
    values.extend((0..n).step_by(97).map(|k| 4 * k - 8));
    let array = Arc::new(Array::from_i64(values.iter().map(|&v| v as i64).collect()));
    let session = Session::new(array.clone(), &cpu_options()).unwrap();
    let counted = |session: &Session| match session.index_state() {
        IndexState::Ready(stats) => {
            assert_eq!(stats.distinct, Some(n as usize));
            stats.counted.unwrap()
        }
        other => panic!("{other:?}"),
    };
    let steps: [&[i128]; 5] = [
        &[-100, -9, -8, 0, 1, 2],
        &[1000, 3, 40],
        &[17],
        &[4 * (1 << 20) - 13, 4 * (1 << 20) - 12, 4 * (1 << 20) - 8],
        &[4 * n, 5 * n, -3],
    ];
    let (mut before, mut reached) = (0, i128::MIN);
    for thresholds in steps {
        let answer = query(&session, thresholds).unwrap();
        assert!(answer.timings.from_index);
        assert_eq!(
            answer.results,
            expected(&values, thresholds),
            "{thresholds:?}"
        );
        reached = reached.max(*thresholds.iter().max().unwrap());
        let now = counted(&session);
        // exactly the distinct values up to the largest threshold so far
        assert_eq!(now, values[..n as usize].partition_point(|&v| v <= reached));
        assert!(now >= before);
        before = now;
    }
    assert_eq!(before, n as usize);
    let eager = Session::new(array, &cpu_options()).unwrap();
    eager.build_index(&Quiet).unwrap();
    assert_eq!(counted(&eager), n as usize);
}
