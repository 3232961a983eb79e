//! Each backend and algorithm against answers from outside (OEIS) and against the post's kernel
//! run as an oracle. Written once, run for every runner: CPU on 1 and 2 threads, and the GPU
//! (the adapter `WGPU_BACKEND` picks; a missing adapter fails these tests). The tests run on
//! the test harness's threads at once, through the one device the product shares, and take
//! no turns of their own: the product takes GL's ([`divgpu::gpu::GpuContext::turn`]).

mod common;

use common::{assert_all_runners, gpu, oracle, oracle_count, runners, Runner, A006218};
use divgpu::gpu::{GpuArray, UploadOptions};
use std::sync::Arc;

use divgpu::input::Array;
use divgpu::workload::SplitMix64;
use divgpu::Algorithm;

/// One batch of `thresholds` on `session`.
fn answer(session: &divgpu::Session, thresholds: &[i128]) -> Vec<u64> {
    let thresholds = divgpu::input::Integers::from(thresholds);
    session.query(&thresholds, &divgpu::Quiet).unwrap().results
}

fn array(values: &[i128]) -> Arc<Array> {
    Arc::new(Array::from_i64(values.iter().map(|&v| v as i64).collect()))
}

#[test]
fn a006218_on_every_backend_and_algorithm() {
    // With the array 0..=N, threshold N counts 0 (c = 1) and d(1) + ... + d(N).
    let values: Vec<i128> = (0..=1_000_000).collect();
    let thresholds: Vec<i128> = A006218.iter().map(|&(n, _)| n).collect();
    let expected: Vec<u64> = A006218.iter().map(|&(_, sum)| sum + 1).collect();
    assert_all_runners(&runners(), &values, &array(&values), &thresholds, &expected);
}

/// Divisor counts known from outside (OEIS A000005; 735134400 and 3491888400 are highly
/// composite, A002182; 4294967291 is the largest prime below 2^32; 2^32 - 1 = 3*5*17*257*65537).
const EDGE_VALUES: [(i128, u64); 18] = [
    (i64::MIN as i128, 1),
    (-1_000_000_007, 1),
    (-1, 1),
    (0, 1),
    (1, 1),
    (2, 2),
    (3, 2),
    (4, 3),
    (25, 3),
    (65_521, 2),
    (65_536, 17),
    (4_294_836_225, 81), // 65535^2 = (3*5*17*257)^2
    (720_720, 240),
    (735_134_400, 1344),
    (3_491_888_400, 1920),
    (4_294_967_291, 2),
    (4_294_967_295, 32),
    (4_294_967_296 - 2, 4), // 2 * 2147483647
];

#[test]
fn c_of_edge_values_on_every_backend() {
    let runners = runners();
    for &(x, d) in &EDGE_VALUES {
        assert_all_runners(&runners, &[x], &array(&[x]), &[x], &[d]);
        // and not counted by a threshold just below it
        assert_all_runners(&runners, &[x], &array(&[x]), &[x - 1], &[0]);
    }
}

/// 64-bit values whose divisor counts come from outside: 2^64-1 = 3*5*17*257*641*65537*6700417,
/// 2^63-1 = 7^2*73*127*337*92737*649657, A002182's highly composite numbers, and products of
/// primes just below powers of two (2^k - c, from the tables of such primes), whose count
/// follows from the exponents. Between them they take every path of the factoring: trial
/// division only, Miller-Rabin on a large prime, rho on two 32-bit primes (its longest walk),
/// on prime powers, and on six primes just above the trial bound.
const WIDE_VALUES: [(u64, u64); 21] = [
    (u64::MAX, 128),
    (i64::MAX as u64, 96),
    ((1 << 61) - 1, 2),
    (18_446_744_073_709_551_557, 2), // 2^64 - 59, the largest prime below 2^64
    (4_294_967_291 * 4_294_967_291, 3),
    (963_761_198_400, 6720),
    (897_612_484_786_617_600, 103_680),
    (1 << 40, 41),
    (1 << 32, 33),
    (4_294_967_291 * 4_294_967_279, 4),     // (2^32-5)(2^32-17)
    (2_097_143 * 2_097_143 * 2_097_143, 4), // (2^21-9)^3
    (1_048_573 * 2_097_143 * 4_194_301, 8), // (2^20-3)(2^21-9)(2^22-3)
    (65_521 * 65_521 * 4_294_967_291, 6),   // (2^16-15)^2 (2^32-5)
    (1031 * 1033 * 1039 * 1049 * 1051 * 1061, 64),
    (1031 * 1031 * 1031 * 1031 * 1031 * 1031, 7),
    (281_474_976_710_597 * 65_521, 4), // (2^48-59)(2^16-15)
    (1_099_511_627_689 << 20, 42),     // (2^40-87) 2^20
    ((1 << 32) + 1, 4),                // 641 * 6700417
    // 299210837 divides the GPU's Miller-Rabin base 1795265022 (= 2 * 3 * 299210837): the base
    // is 0 mod it, and skipped; as a cofactor below 2^32, after a split, and squared
    (15 * 299_210_837, 8),
    (1031 * 299_210_837, 4),
    (299_210_837 * 299_210_837, 3),
];

fn u64_array(values: &[u64]) -> Arc<Array> {
    Arc::new(Array::from_u64(values.to_vec()))
}

#[test]
fn c_of_64_bit_values_on_every_backend() {
    let runners = runners();
    for &(x, d) in &WIDE_VALUES {
        let values = [x as i128];
        assert_all_runners(&runners, &values, &u64_array(&[x]), &[x as i128], &[d]);
        assert_all_runners(&runners, &values, &u64_array(&[x]), &[x as i128 - 1], &[0]);
    }
}

/// Every wide value with the 32-bit edge values, in one array (so wide and 32-bit elements share
/// the GPU's vectors): the non-negative ones as u64, those that fit as i64, with a threshold at
/// each value.
#[test]
fn wide_and_32_bit_values_mixed_match_known_counts() {
    let known: Vec<(i128, u64)> = WIDE_VALUES
        .iter()
        .map(|&(x, d)| (x as i128, d))
        .chain(EDGE_VALUES)
        .collect();
    let thresholds: Vec<i128> = known
        .iter()
        .map(|&(x, _)| x)
        .chain([u64::MAX as i128, i64::MAX as i128, (1 << 32) - 1])
        .collect();
    let runners = runners();
    let unsigned = |&(x, _): &(i128, u64)| x >= 0;
    let signed = |&(x, _): &(i128, u64)| x <= i64::MAX as i128;
    for (keep, as_u64) in [(&unsigned as &dyn Fn(&_) -> bool, true), (&signed, false)] {
        let kept: Vec<(i128, u64)> = known.iter().copied().filter(|k| keep(k)).collect();
        let values: Vec<i128> = kept.iter().map(|&(x, _)| x).collect();
        let expected: Vec<u64> = thresholds
            .iter()
            .map(|&t| kept.iter().filter(|&&(x, _)| x <= t).map(|&(_, d)| d).sum())
            .collect();
        let array = if as_u64 {
            u64_array(&values.iter().map(|&x| x as u64).collect::<Vec<_>>())
        } else {
            array(&values)
        };
        assert_all_runners(&runners, &values, &array, &thresholds, &expected);
    }
}

/// Seeded arrays over several wide blocks with a few 64-bit values among 32-bit ones: the GPU
/// (resident, forced chunks, streamed) gives what the CPU gives.
#[test]
fn random_64_bit_values_on_the_gpu_match_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let mut rng = SplitMix64::new(64);
    let len = 40_000;
    let values: Vec<u64> = (0..len)
        .map(|_| match rng.below(200) {
            0 => rng.next_u64() | 1 << 62,
            1 => rng.below(1 << 40) + (1 << 32),
            _ => rng.below(1 << 32),
        })
        .collect();
    let wide = values.iter().filter(|&&x| x > u32::MAX.into()).count();
    assert!(wide > 300, "{wide} wide values");
    let as_i128: Vec<i128> = values.iter().map(|&x| x as i128).collect();
    let mut thresholds = vec![u64::MAX as i128, 1 << 32, (1 << 62) + (1 << 61)];
    thresholds.extend(as_i128.iter().step_by(997).copied());
    let array = u64_array(&values);
    // naive redoes every wide element per threshold: three thresholds for it
    for (algorithm, thresholds) in [
        (Algorithm::Fast, &thresholds[..]),
        (Algorithm::Naive, &thresholds[..3]),
    ] {
        let expected = Runner::Cpu(algorithm, 2).run(&array, thresholds).unwrap();
        let gpu_runners = [
            Runner::Gpu(algorithm, None),
            Runner::Gpu(algorithm, Some(12_345)),
            Runner::GpuStreamed(algorithm, 17_000),
        ];
        assert_all_runners(&gpu_runners, &as_i128, &array, thresholds, &expected);
    }
}

/// A seeded mix: mostly small values, some negatives, some near 2^32, duplicates.
fn random_values(rng: &mut SplitMix64, len: usize) -> Vec<i128> {
    (0..len)
        .map(|_| match rng.below(10) {
            0 => -(rng.below(1 << 40) as i128),
            1 => (1i128 << 32) - 1 - rng.below(1000) as i128,
            2 => 1,
            _ => rng.below(5000) as i128,
        })
        .collect()
}

fn random_thresholds(rng: &mut SplitMix64) -> Vec<i128> {
    let mut t: Vec<i128> = (0..6).map(|_| rng.below(6000) as i128 - 500).collect();
    t.push(t[0]); // duplicate
    t.extend([i64::MIN as i128, -1, 0, 1, u64::MAX as i128, (1 << 32) - 1]);
    t
}

#[test]
fn random_arrays_around_the_workgroup_size_match_the_oracle() {
    let wg = gpu().map_or(256, |g| g.workgroup_size() as usize);
    let runners = runners();
    let mut rng = SplitMix64::new(7);
    for len in [0, 1, 2, wg - 1, wg, wg + 1, 2 * wg + 3, 1000] {
        let values = random_values(&mut rng, len);
        let thresholds = random_thresholds(&mut rng);
        let expected = oracle(&values, &thresholds);
        assert_all_runners(&runners, &values, &array(&values), &thresholds, &expected);
    }
}

#[test]
fn forced_small_chunks_resident_and_streamed_match_the_oracle() {
    if gpu().is_none() {
        return;
    }
    let chunk = 64;
    let mut rng = SplitMix64::new(11);
    for len in [chunk - 1, chunk, chunk + 1, 3 * chunk + 5] {
        let values = random_values(&mut rng, len);
        let thresholds = random_thresholds(&mut rng);
        let expected = oracle(&values, &thresholds);
        let runners = [
            Runner::Gpu(Algorithm::Fast, Some(chunk)),
            Runner::Gpu(Algorithm::Naive, Some(chunk)),
            Runner::GpuStreamed(Algorithm::Fast, chunk),
            Runner::GpuStreamed(Algorithm::Naive, chunk),
        ];
        assert_all_runners(&runners, &values, &array(&values), &thresholds, &expected);
    }
}

#[test]
fn more_thresholds_than_workgroup_buckets_match_the_oracle() {
    // Over 1024 distinct thresholds the fast shader adds to global sums directly.
    let mut rng = SplitMix64::new(5);
    let values = random_values(&mut rng, 3000);
    let thresholds: Vec<i128> = (0..1500).map(|_| rng.below(5200) as i128 - 100).collect();
    let expected = oracle(&values, &thresholds);
    let mut fast: Vec<Runner> = vec![Runner::Cpu(Algorithm::Fast, 2)];
    if gpu().is_some() {
        fast.push(Runner::Gpu(Algorithm::Fast, None));
    }
    assert_all_runners(&fast, &values, &array(&values), &thresholds, &expected);
}

/// Every invocation of a workgroup at the shaders' worst case for their loops (the budget in
/// shaders/divisors.wgsl): primes just below 2^32 and 65521^2 try all 6,541 odd primes below
/// 2^16, 65535^2 runs the post's loop to j = 65,535. With each of them its own bucket, the
/// buckets beyond the first 256 (the second turn of the workgroup flush, where the budget ran
/// out before) and beyond 1,024 (global sums) all hold counts.
fn worst_32_bit_values() -> Vec<i128> {
    let mut values = vec![4_294_836_225, 4_293_001_441, 4_294_967_295];
    let mut x: i128 = (1 << 32) - 1;
    while values.len() < 1200 {
        if common::factor::is_prime(x as u64) {
            values.push(x);
        }
        x -= 2;
    }
    values
}

#[test]
fn fast_at_its_loop_worst_case_with_many_distinct_thresholds_matches_the_oracle() {
    let hard = worst_32_bit_values();
    // 8 workgroups of 256, every invocation a worst case, in an order that mixes buckets
    let values: Vec<i128> = (0..2048).map(|i| hard[(i * 7) % hard.len()]).collect();
    let counts: Vec<u64> = values.iter().map(|&x| common::factor::c(x)).collect();
    let mut sorted = hard.clone();
    sorted.sort_unstable();
    for distinct in [300, 1024, 1100, 5000] {
        // the hard values themselves (each its own bucket), the rest below every element
        let mut thresholds: Vec<i128> = sorted.iter().rev().take(distinct).copied().collect();
        thresholds.extend((0..distinct.saturating_sub(thresholds.len())).map(|i| i as i128));
        thresholds.reverse();
        let expected = common::factor::sums(&values, &counts, &thresholds);
        let mut runners = vec![Runner::Cpu(Algorithm::Fast, 2)];
        if gpu().is_some() {
            runners.push(Runner::Gpu(Algorithm::Fast, None));
            runners.push(Runner::GpuStreamed(Algorithm::Fast, 1000));
        }
        assert_all_runners(&runners, &values, &array(&values), &thresholds, &expected);
    }
}

#[test]
fn naive_at_its_loop_worst_case_matches_the_oracle() {
    let hard = worst_32_bit_values();
    let values: Vec<i128> = (0..1024).map(|i| hard[i % 40]).collect();
    let counts: Vec<u64> = values.iter().map(|&x| common::factor::c(x)).collect();
    let mut thresholds: Vec<i128> = hard[..40].to_vec();
    thresholds.extend([(1 << 32) - 1, 0, -1]);
    let expected = common::factor::sums(&values, &counts, &thresholds);
    let mut runners = vec![Runner::Cpu(Algorithm::Naive, 2)];
    if gpu().is_some() {
        runners.push(Runner::Gpu(Algorithm::Naive, None));
    }
    assert_all_runners(&runners, &values, &array(&values), &thresholds, &expected);
}

#[test]
fn wide_at_its_loop_worst_case_with_many_distinct_thresholds_matches_the_oracle() {
    // products of two primes just below 2^32 (Pollard-Brent rho's longest walks: every
    // dispatch runs its full steps) in every invocation of a workgroup, each its own bucket
    let primes: Vec<i128> = worst_32_bit_values()[3..11].to_vec();
    let mut products = Vec::new();
    for (i, &p) in primes.iter().enumerate() {
        for &q in &primes[i..] {
            products.push(p * q);
        }
    }
    let wg = gpu().map_or(256, |g| g.workgroup_size() as usize);
    let values: Vec<i128> = (0..wg).map(|i| products[i % products.len()]).collect();
    let counts: Vec<u64> = values.iter().map(|&x| common::factor::c(x)).collect();
    let mut thresholds: Vec<i128> = products.clone();
    thresholds.extend((0..1100).map(|i| i * 1_000_003));
    let expected = common::factor::sums(&values, &counts, &thresholds);
    let mut runners = vec![Runner::Cpu(Algorithm::Fast, 2)];
    if gpu().is_some() {
        runners.push(Runner::Gpu(Algorithm::Fast, None));
    }
    let as_u64: Vec<u64> = values.iter().map(|&x| x as u64).collect();
    assert_all_runners(
        &runners,
        &values,
        &u64_array(&as_u64),
        &thresholds,
        &expected,
    );
}

#[test]
fn arrays_of_negatives_and_values_above_2_63_on_every_backend_match_the_oracle() {
    // no 64-bit type holds both: the CPU decodes i128s, the GPU splits the array by sign
    let mut values: Vec<i128> = vec![-1, u64::MAX as i128, i64::MIN as i128, 0, 1, 2];
    values.extend((0..500).map(|i| (i as i128 - 250) * 7_919));
    values.extend([(1i128 << 63) + 5, (1 << 32) + 15, 4_294_967_291]);
    let counts: Vec<u64> = values.iter().map(|&x| common::factor::c(x)).collect();
    let thresholds = [
        i64::MIN as i128,
        -250 * 7_919,
        -1,
        0,
        1_000_000,
        i64::MAX as i128,
        (1 << 63) + 5,
        u64::MAX as i128,
    ];
    let expected = common::factor::sums(&values, &counts, &thresholds);
    let array = Arc::new(Array::from_i128(values.clone()).unwrap());
    let mut all = runners();
    if gpu().is_some() {
        all.push(Runner::GpuStreamed(Algorithm::Fast, 100));
        all.push(Runner::Gpu(Algorithm::Naive, Some(64)));
    }
    assert_all_runners(&all, &values, &array, &thresholds, &expected);
}

#[test]
fn sums_above_u32_max_are_exact() {
    // 3,300,000 elements with 1344 divisors each: 4,435,200,000 > 2^32 - 1. The naive path
    // shares the shader's 64-bit add (add_to_sum) but would take minutes here.
    let n = 3_300_000usize;
    let x = 735_134_400i64;
    let values = Arc::new(Array::from_i64(vec![x; n]));
    let thresholds = [x as i128, x as i128 - 1, u64::MAX as i128];
    let total = n as u64 * 1344;
    assert!(total > u64::from(u32::MAX));
    let mut fast: Vec<Runner> = vec![Runner::Cpu(Algorithm::Fast, 2)];
    if gpu().is_some() {
        fast.push(Runner::Gpu(Algorithm::Fast, None));
    }
    assert_all_runners(
        &fast,
        &[x as i128],
        &values,
        &thresholds,
        &[total, 0, total],
    );
}

/// One session queried from several threads at once, every backend: GPU resident and streamed
/// (whose chunk buffers each query must have to itself), CPU passes and the CPU's table (built
/// once by whichever thread comes first): every answer exact.
#[test]
fn concurrent_queries_on_one_session_are_exact() {
    let mut rng = SplitMix64::new(23);
    let values = random_values(&mut rng, 3000);
    let array = array(&values);
    let batches: Vec<Vec<i128>> = (0..8).map(|_| random_thresholds(&mut rng)).collect();
    let expected: Vec<Vec<u64>> = batches.iter().map(|t| oracle(&values, t)).collect();
    let mut sessions = vec![
        Runner::Cpu(Algorithm::Naive, 1),
        Runner::Cpu(Algorithm::Fast, 2),
        Runner::CpuSession(1),
        Runner::CpuSession(2),
    ];
    if gpu().is_some() {
        for algorithm in [Algorithm::Fast, Algorithm::Naive] {
            sessions.push(Runner::Gpu(algorithm, None));
            sessions.push(Runner::GpuStreamed(algorithm, 700));
        }
    }
    for runner in sessions {
        let session = runner.session(&array).unwrap();
        std::thread::scope(|scope| {
            for (thresholds, expected) in batches.iter().zip(&expected) {
                let session = &session;
                scope.spawn(move || {
                    let thresholds = divgpu::input::Integers::from(thresholds.as_slice());
                    for _ in 0..2 {
                        let got = session.query(&thresholds, &divgpu::Quiet).unwrap();
                        assert_eq!(&got.results, expected, "{runner:?}");
                    }
                });
            }
        });
    }
}

#[test]
fn arrays_past_the_adapters_binding_limit_match_the_cpu() {
    // lavapipe and llvmpipe bind 128 MiB (16 Mi elements) at once: one more chunk is needed.
    // On adapters with larger bindings this would take gigabytes, so it runs only where the
    // limit is small; CI's software adapters have it.
    let Some(gpu) = gpu() else { return };
    let limit = gpu.max_chunk_elements(8);
    if limit > 1 << 25 {
        eprintln!("binding limit of {limit} elements is too large to cross in a test");
        return;
    }
    let n = limit + 1000;
    let values = divgpu::workload::generate(n, 1000, 3).unwrap();
    let array = Arc::new(Array::from_i64(values));
    let thresholds = [-1, 0, 1, 500, 999, 1000];
    let expected = Runner::Cpu(Algorithm::Fast, 2)
        .run(&array, &thresholds)
        .unwrap();
    let uploaded = GpuArray::upload(gpu, &array, UploadOptions::default()).unwrap();
    assert_eq!(uploaded.chunk_count(), 2);
    let got = Runner::Gpu(Algorithm::Fast, None)
        .run(&array, &thresholds)
        .unwrap();
    assert_eq!(got, expected);
}

#[test]
fn many_elements_over_a_small_table_match_the_oracle() {
    // 200,000 elements, thresholds up to 10,000: the CPU counts them per value (a histogram
    // over the divisor table) instead of per element; negatives and values above every
    // threshold take the other way.
    let mut rng = SplitMix64::new(13);
    let values: Vec<i128> = (0..200_000)
        .map(|_| rng.below(10_100) as i128 - 60)
        .collect();
    let thresholds = [-61, -1, 0, 1, 97, 5000, 9999, 10_000, 10_000];
    let expected = oracle(&values, &thresholds);
    assert_all_runners(&runners(), &values, &array(&values), &thresholds, &expected);

    // Over 4096 distinct thresholds the histogram is used whatever the array's length.
    let values: Vec<i128> = (0..2000).map(|_| rng.below(3100) as i128 - 60).collect();
    let thresholds: Vec<i128> = (-2000..=3000).rev().collect();
    let expected = oracle(&values, &thresholds);
    let fast = [
        Runner::Cpu(Algorithm::Fast, 1),
        Runner::Cpu(Algorithm::Fast, 2),
    ];
    assert_all_runners(&fast, &values, &array(&values), &thresholds, &expected);
}

#[test]
fn the_histogram_split_over_tasks_with_elements_on_every_side_matches_the_oracle() {
    // 40,000 elements over the 1,001 values -100..=900 that the thresholds span: enough per
    // value for one histogram per thread. Elements below every threshold (counted, c = 1),
    // inside, and above (skipped).
    let mut rng = SplitMix64::new(17);
    let values: Vec<i128> = (0..40_000).map(|_| rng.below(1300) as i128 - 200).collect();
    let thresholds: Vec<i128> = vec![900, -100, -1, 0, 1, 2, 450, 899, 900, 13];
    let expected = oracle(&values, &thresholds);
    assert_all_runners(&runners(), &values, &array(&values), &thresholds, &expected);
}

#[test]
fn histogram_sums_above_u32_max_are_exact() {
    // CPU runners only: no turn at the GPU
    // 12,000,000 copies of 3603600 (360 divisors, A002182): 4,320,000,000 > 2^32 - 1, under
    // more than 4096 thresholds, so the CPU answers from a histogram whose running sums need
    // 64 bits; the same thresholds over 0 elements in between check the rest.
    let n = 12_000_000usize;
    let x = 3_603_600i64;
    let values = Arc::new(Array::from_i64(vec![x; n]));
    let mut thresholds: Vec<i128> = (0..5000).collect();
    thresholds.extend([x as i128, x as i128 - 1, x as i128 + 1]);
    let total = n as u64 * 360;
    assert!(total > u64::from(u32::MAX));
    let mut expected = vec![0; 5000];
    expected.extend([total, 0, total]);
    for threads in [1, 2] {
        let got = Runner::Cpu(Algorithm::Fast, threads)
            .run(&values, &thresholds)
            .unwrap();
        assert_eq!(got, expected, "{threads} threads");
    }
}

/// GPU `fast` answers the elements within its divisor table by one look-up (the table reaches
/// the largest threshold, at most 8 entries per element) and factors the rest: batches whose
/// table grows, one that reuses it, and elements above it (below and above 2^32) in every batch.
#[test]
fn the_gpus_divisor_table_matches_the_oracle_within_and_beyond_its_top() {
    if gpu().is_none() {
        return;
    }
    let mut rng = SplitMix64::new(41);
    let mut values: Vec<i128> = (0..20_000)
        .map(|_| rng.below(200_000) as i128 - 20)
        .collect();
    // above any table here: a prime above 2^24, 65521^2, primes near 2^32, and wide values
    values.extend([
        16_777_259,
        65_521 * 65_521,
        4_294_967_291,
        (1 << 32) + 15,
        1 << 40,
    ]);
    let array = array(&values);
    let session = Runner::Gpu(Algorithm::Fast, None).session(&array).unwrap();
    let most = 8 * values.len() as i128;
    let batches: [Vec<i128>; 4] = [
        vec![-5, 10, 1_000, 50_000],
        vec![150_000, 100_000, 199_980],
        vec![3, 1 << 40, 4_294_967_291, 160_001],
        vec![16_777_259, 1, 40_000],
    ];
    let mut top = 0;
    for thresholds in &batches {
        let got = session
            .query(
                &divgpu::input::Integers::from(thresholds.as_slice()),
                &divgpu::Quiet,
            )
            .unwrap()
            .results;
        assert_eq!(
            got,
            oracle(&values, thresholds),
            "thresholds {thresholds:?}"
        );
        // the table reaches the largest threshold, within 8 entries an element; never shrinks
        let max = *thresholds.iter().max().unwrap();
        top = top.max(max.min(most));
        assert_eq!(
            session.gpu_divisor_table(),
            Some(top as u32),
            "{thresholds:?}"
        );
    }
}

/// The GPU's sieve against divisor counts by a sieve written here (every d adds one to each
/// of its multiples): small tables, one past a power of two, and the largest (2^24), whose
/// 4,096 values of d are the search's worst case; every table over 1,024 has work items that
/// run their loop's whole budget of 1,024 steps.
#[test]
fn the_gpus_sieve_matches_divisor_counts() {
    let Some(gpu) = gpu() else { return };
    for top in [2u32, 3, 17, 1_000, 65_537, divgpu::gpu::table::MAX_TOP] {
        let got = divgpu::gpu::sieve_counts(gpu, top).unwrap();
        let mut expected = vec![0u16; top as usize + 1];
        for d in 1..=top as usize {
            for m in (d..=top as usize).step_by(d) {
                expected[m] += 1;
            }
        }
        let first_wrong = (2..=top as usize).find(|&n| got[n] != expected[n]);
        assert_eq!(
            first_wrong.map(|n| (n, got[n], expected[n])),
            None,
            "table up to {top}: (n, gpu, expected)"
        );
    }
}

#[test]
fn elements_take_their_own_width_on_the_gpu() {
    // Issue 11: GPU memory at most 1.1 times the array's bytes (plus tables). The buffers hold
    // the elements as the array does, so it is their bytes rounded up to a word per chunk.
    if gpu().is_none() {
        return;
    }
    let mut rng = SplitMix64::new(29);
    let len = 4_001;
    for width in [1usize, 2, 4, 8] {
        for signed in [true, false] {
            let bits = 8 * width as u32;
            let (lo, hi) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            // within 16 bits of zero (trial division of many 32-bit values would hold the GL
            // adapter's context for seconds, and other tests' threads give up waiting for it),
            // and the type's extremes; the differential suite draws from the whole range
            let (a, b) = (lo.max(-(1 << 15)), hi.min(1 << 16));
            let mut values: Vec<i128> = (0..len)
                .map(|_| a + (rng.next_u64() as i128).rem_euclid(b - a + 1))
                .collect();
            // (the oracle's trial division of 2^64 - 1 would take a minute: 2^33 + 1 for it)
            let top = hi.min((1 << 33) + 1);
            values[17] = lo;
            values[len / 2] = top;
            values[len - 1] = top;
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|x| x.to_le_bytes()[..width].to_vec())
                .collect();
            let dtype = divgpu::input::DType {
                signed,
                width,
                big_endian: false,
            };
            let array = Arc::new(Array::from_raw_bytes(bytes, dtype).unwrap());
            let array_bytes = (len * width) as u64;
            let word = |n: usize| ((n * width).div_ceil(4) * 4) as u64;
            let thresholds = [lo, -1, 0, 1, 2, 100, 40_000, hi];
            let counts: Vec<u64> = values.iter().map(|&x| oracle_count(x)).collect();
            let expected: Vec<u64> = thresholds
                .iter()
                .map(|&t| {
                    (0..len)
                        .filter(|&i| values[i] <= t)
                        .map(|i| counts[i])
                        .sum()
                })
                .collect();
            // naive's trial division of random 32- and 64-bit values would take minutes on
            // a software adapter; fast reads the same buffers
            let chunked = if width <= 2 {
                Algorithm::Naive
            } else {
                Algorithm::Fast
            };
            for (runner, gpu_bytes) in [
                (Runner::Gpu(Algorithm::Fast, None), word(len)),
                (Runner::Gpu(chunked, Some(1001)), 3 * word(1001) + word(998)),
                (Runner::GpuStreamed(Algorithm::Fast, 1001), 2 * word(1001)),
            ] {
                let session = runner.session(&array).unwrap();
                assert_eq!(
                    session.gpu_buffer_bytes(),
                    Some(gpu_bytes),
                    "{dtype:?} {runner:?}"
                );
                if !session.is_streamed() {
                    assert!(gpu_bytes as f64 <= 1.1 * array_bytes as f64, "{dtype:?}");
                }
                let got = answer(&session, &thresholds);
                assert_eq!(got, expected, "{dtype:?} {runner:?}");
            }
        }
    }
}

/// Values of 2^32 and above on the adapter's own 64-bit integers (`shaders/u64_native.wgsl`,
/// where it has `SHADER_INT64`: lavapipe) and on the emulated arithmetic (`shaders/u64.wgsl`)
/// of a second device on the same adapter: both give the CPU's answers.
#[test]
fn wide_values_match_with_native_and_emulated_64_bit_integers() {
    let Some(default) = gpu() else { return };
    let emulated = divgpu::session::open_gpu_with(divgpu::Backend::Gpu, None, false)
        .unwrap()
        .expect("an adapter");
    assert!(!emulated.native_int64());
    eprintln!(
        "native 64-bit integers on the default device: {}",
        default.native_int64()
    );
    let mut rng = SplitMix64::new(0x64);
    let len = 6_000;
    let values: Vec<u64> = (0..len)
        .map(|_| match rng.below(30) {
            0 => rng.next_u64() | 1 << 63,
            1 => rng.below(1 << 40) + (1 << 32),
            2 => (rng.below(1 << 20) + 3) * (rng.below(1 << 31) + (1 << 31)),
            _ => rng.below(1 << 32),
        })
        .collect();
    let as_i128: Vec<i128> = values.iter().map(|&x| x as i128).collect();
    let mut thresholds = vec![u64::MAX as i128, 1 << 32, (1 << 62) + (1 << 61)];
    thresholds.extend(as_i128.iter().step_by(211).copied());
    let array = u64_array(&values);
    let expected = Runner::Cpu(Algorithm::Fast, 2)
        .run(&array, &thresholds)
        .unwrap();
    let options = divgpu::Options {
        backend: divgpu::Backend::Gpu,
        ..divgpu::Options::default()
    };
    for context in [default.clone(), emulated] {
        let session = divgpu::Session::with_gpu(array.clone(), context.clone(), &options).unwrap();
        let got = answer(&session, &thresholds);
        assert_eq!(got, expected, "native 64-bit: {}", context.native_int64());
    }
}

#[test]
fn a_session_on_an_opened_gpu_never_falls_back() {
    use divgpu::session::{Backend, Options};
    use divgpu::{Error, Session};
    let values: Vec<i128> = (-3..5_000).collect();
    let thresholds = [-1, 10, 4_999];
    let expected = oracle(&values, &thresholds);
    let with = |backend| Options {
        backend,
        keep_index: false,
        ..Options::default()
    };
    // no GPU: an error for gpu and both, the CPU (with a note) for auto
    for backend in [Backend::Gpu, Backend::Both] {
        let refused = Session::opened(array(&values), None, &with(backend));
        assert!(matches!(refused, Err(Error::NoAdapter(_))), "{backend:?}");
    }
    let cpu = Session::opened(array(&values), None, &with(Backend::Auto)).unwrap();
    assert_eq!(cpu.backend(), "cpu");
    assert!(!cpu.notes().is_empty());
    assert_eq!(answer(&cpu, &thresholds), expected);
    let Some(context) = gpu() else { return };
    let refused = Session::opened(array(&values), Some(context.clone()), &with(Backend::Cpu));
    assert!(matches!(refused, Err(Error::Option { .. })));
    // one device, many sessions: each counts on it, and `both` compares
    for backend in [Backend::Auto, Backend::Gpu, Backend::Both] {
        let session =
            Session::opened(array(&values), Some(context.clone()), &with(backend)).unwrap();
        assert!(session.gpu().is_some_and(|g| Arc::ptr_eq(g, context)));
        assert_eq!(answer(&session, &thresholds), expected, "{backend:?}");
    }
}

/// The process's registry opens the adapter once: every session that asks for the same adapter
/// (by `Session::new`, as the CLI and Python do) gets the device the first one opened, and
/// sessions on it count at once from many threads, each on its own array (values up to 2^33,
/// so that the wide pipeline runs too).
#[test]
fn sessions_share_the_process_device_and_count_at_once() {
    use divgpu::session::{Backend, Options, Session};
    let Some(context) = gpu() else { return };
    let again = divgpu::session::open_gpu(Backend::Gpu, None)
        .unwrap()
        .expect("an adapter");
    assert!(Arc::ptr_eq(context, &again), "a second device was opened");
    let opened = divgpu::gpu::registry::opened().len();
    let cases: Vec<(Vec<i64>, Vec<i128>, Vec<u64>)> = (0..4)
        .map(|k| {
            let mut rng = SplitMix64::new(0x5eed + k);
            let values: Vec<i64> = (0..5_000)
                .map(|_| match rng.below(50) {
                    0 => (rng.below(1 << 33)) as i64,
                    _ => rng.below(1 << 20) as i64,
                })
                .collect();
            let thresholds: Vec<i128> = (0..40).map(|_| rng.below(1 << 33) as i128).collect();
            let wide: Vec<i128> = values.iter().map(|&x| x.into()).collect();
            let expected = common::factor::answers(&wide, &thresholds);
            (values, thresholds, expected)
        })
        .collect();
    let options = Options {
        backend: Backend::Gpu,
        keep_index: false,
        ..Options::default()
    };
    let sessions: Vec<Session> = cases
        .iter()
        .map(|(values, _, _)| {
            Session::new(Arc::new(Array::from_i64(values.clone())), &options).unwrap()
        })
        .collect();
    assert_eq!(divgpu::gpu::registry::opened().len(), opened);
    for session in &sessions {
        assert!(session.gpu().is_some_and(|g| Arc::ptr_eq(g, context)));
    }
    std::thread::scope(|s| {
        for (k, (session, (_, thresholds, expected))) in sessions.iter().zip(&cases).enumerate() {
            for _ in 0..2 {
                s.spawn(move || {
                    let thresholds = divgpu::input::Integers::from(thresholds.as_slice());
                    let got = session.query(&thresholds, &divgpu::Quiet).unwrap();
                    assert_eq!(&got.results, expected, "session {k}");
                });
            }
        }
    });
}
