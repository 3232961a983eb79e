use super::fast::*;
use super::prefix::*;
use super::*;
use crate::input::DType;
use crate::workload::SplitMix64;
use crate::Quiet;

/// The branch-free path against the definition, on the values it clamps and the
/// thresholds it pads: negatives, 0, 1, i64's extremes, up to 15 distinct thresholds.
#[test]
fn few_buckets_match_the_definition() {
    let mut rng = SplitMix64::new(15);
    let mut values: Vec<i64> = (0..20_000).map(|_| rng.below(6000) as i64 - 1000).collect();
    values.extend([i64::MIN, i64::MAX, 0, 1, 2, -1]);
    let array = Array::from_i64(values.clone());
    for count in [1, 2, 7, 15] {
        let mut thresholds: Vec<i128> = (0..count).map(|_| rng.below(5000) as i128 - 5).collect();
        thresholds.push(thresholds[0]);
        thresholds[0] = thresholds[0].max(2); // a table needs a top of at least 2
        let plan = Plan::new(thresholds.clone());
        let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
        let few = few_buckets(&values, &plan, &table, &Quiet).expect("this shape");
        let expected: Vec<u64> = plan
            .distinct()
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let below = k.checked_sub(1).map(|j| plan.distinct()[j]);
                values
                    .iter()
                    .map(|&x| i128::from(x))
                    .filter(|&x| x <= t && below.is_none_or(|b| x > b))
                    .map(|x| u64::from(divisors::count(x)))
                    .sum()
            })
            .collect();
        assert_eq!(few, expected, "thresholds {thresholds:?}");
    }
    // 16 distinct thresholds do not fit
    let plan = Plan::new((0..16).map(|t| t * 100 + 2).collect::<Vec<i128>>());
    let table = DivisorTable::new(table_limit(array.len(), &plan).unwrap());
    assert!(few_buckets(&values, &plan, &table, &Quiet).is_none());
}

/// Each threshold's sum by the definition, from `divisors::count` on the decoded values.
fn by_definition(values: &[i128], plan: &Plan) -> Vec<u64> {
    plan.given()
        .iter()
        .map(|t| {
            let at_most = values.iter().filter(|&&x| x <= t);
            at_most.map(|&x| u64::from(divisors::count(x))).sum()
        })
        .collect()
}

/// [`running_sums`] in u32s and in u64s against sums one by one: values below 0 (c = 1),
/// elements before the first value, and counts so large that only the u64s hold the sums.
#[test]
fn running_sums_narrow_and_wide_match_a_plain_sum() {
    let mut rng = SplitMix64::new(19);
    let from_0: Vec<u16> = (0..3_000).map(|_| rng.below(500) as u16).collect();
    for (negatives, big) in [(0, false), (7, false), (0, true), (7, true)] {
        let counts: Vec<u32> = (0..negatives + 2_000)
            .map(|_| rng.below(if big { 1 << 31 } else { 100 }) as u32)
            .collect();
        let below = rng.below(1_000);
        let mut sum = below;
        let expected: Vec<u64> = (counts.iter().enumerate())
            .map(|(i, &n)| {
                let c = if i < negatives {
                    1
                } else {
                    from_0[i - negatives]
                };
                sum += u64::from(n) * u64::from(c);
                sum
            })
            .collect();
        let got = |limit| match running_sums(counts.clone(), below, negatives, &from_0, limit) {
            AtMost::Narrow(sums) => (true, sums.into_iter().map(u64::from).collect()),
            AtMost::Wide(sums) => (false, sums),
        };
        assert_eq!(
            got(u32::MAX.into()),
            (!big, expected.clone()),
            "{negatives}"
        );
        assert_eq!(got(0), (false, expected), "{negatives}");
    }
}

/// Every count of the largest table fits a packed entry's count bits, with room to spare:
/// the largest is d(14,414,400) = 504.
#[test]
fn every_table_count_fits_a_packed_entry() {
    let table = DivisorTable::new(DivisorTable::MAX_LIMIT);
    let (at, &most) = (table.counts().iter().enumerate())
        .max_by_key(|&(_, c)| c)
        .unwrap();
    assert_eq!((at, most), (14_414_400, 504));
    assert!(most < 1 << PACKED_COUNT_BITS);
}

/// The packed table over several of its building chunks (2^16 values each), thresholds on
/// both sides of their edges, on 1 to 3 threads, with elements on every threshold and
/// beside it, below 0 and past the top.
#[test]
fn packed_entries_match_the_definition_across_chunks() {
    let mut rng = SplitMix64::new(18);
    let top = 3 << 16;
    let thresholds: Vec<i128> = vec![top, 0, 1, 65_535, 65_536, 65_537, 131_072, 100_000];
    let mut values: Vec<i128> = (0..40_000)
        .map(|_| rng.below(top as u64 + 2_000) as i128 - 1_000)
        .collect();
    values.extend(thresholds.iter().flat_map(|&t| [t - 1, t, t + 1]));
    values.extend([i128::from(i64::MIN), i128::from(i64::MAX)]);
    let array = Array::from_i64(values.iter().map(|&v| v as i64).collect());
    let plan = Plan::new(thresholds);
    for threads in [1, 2, 3] {
        let got = pool(threads, false).unwrap().install(|| {
            let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
            packed(&array, &plan, table, &Quiet)
        });
        let Ok(got) = got else { panic!("not packed") };
        assert_eq!(
            plan.answer(&got),
            by_definition(&values, &plan),
            "{threads} threads"
        );
    }
}

#[test]
fn every_dtype_is_read_in_place_by_the_few_buckets_passes_and_the_histogram() {
    let mut rng = SplitMix64::new(16);
    for (signed, width) in [1, 2, 4, 8]
        .into_iter()
        .flat_map(|w| [(true, w), (false, w)])
    {
        let dtype = DType::native(signed, width);
        let bits = 8 * width as u32;
        let (min, max) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        // mostly within the table, then the type's extremes and the values around 0
        let mut values: Vec<i128> = (0..5_000)
            .map(|_| (rng.below(3_000) as i128 - 200).clamp(min, max))
            .collect();
        values.extend([min, max, 0, 1, 2, max - 1].map(|v| v.clamp(min, max)));
        let mut bytes = Vec::new();
        for &v in &values {
            // the low `width` bytes, in the machine's order
            let le = (v as u64).to_le_bytes();
            let mut element = le[..width].to_vec();
            if cfg!(target_endian = "big") {
                element.reverse();
            }
            bytes.extend_from_slice(&element);
        }
        let array = Array::from_raw_bytes(bytes.clone(), dtype).unwrap();
        for count in [1, 3, 15] {
            let mut thresholds: Vec<i128> =
                (0..count).map(|_| rng.below(2_900) as i128 - 50).collect();
            thresholds[0] = thresholds.iter().copied().max().unwrap().max(2);
            let plan = Plan::new(thresholds.clone());
            let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
            let got = few_buckets_in_place(&array, &plan, &table, &Quiet)
                .unwrap_or_else(|| panic!("{dtype}: not read in place"));
            assert_eq!(
                plan.answer(&got),
                by_definition(&values, &plan),
                "{dtype} thresholds {thresholds:?}"
            );
            assert_eq!(fast(&array, &plan, &Quiet), by_definition(&values, &plan));
            // none below 0 (0 among them, where count 1 is also every negative's): packed
            let mut at_least_0: Vec<i128> = thresholds.iter().map(|t| t.abs()).collect();
            if count > 1 {
                at_least_0[count - 1] = 0;
            }
            let plan = Plan::new(at_least_0);
            let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
            let Ok(got) = packed(&array, &plan, table, &Quiet) else {
                panic!("{dtype}: not packed")
            };
            assert_eq!(plan.answer(&got), by_definition(&values, &plan), "{dtype}");
            // one below 0: the search instead
            let mut below_0 = thresholds.clone();
            below_0.push(-1);
            let plan = Plan::new(below_0);
            let table = DivisorTable::new(table_limit(array.len(), &plan).expect("a table"));
            assert!(packed(&array, &plan, table, &Quiet).is_err(), "{dtype}");
        }
        // 12 times longer: many elements per value, so `fast` counts a histogram, in place
        let many: Vec<i128> = values
            .iter()
            .cycle()
            .take(12 * values.len())
            .copied()
            .collect();
        let array = Array::from_raw_bytes(bytes.repeat(12), dtype).unwrap();
        let plan = Plan::new(vec![2_900i128, -3, 150, 1, 2_000]);
        let lo = histogram_start(array.len(), &plan, 2_900).expect("a histogram");
        assert!(
            histogram_in_place(&array, lo, 2_900, 2, &Quiet).is_some(),
            "{dtype}"
        );
        assert_eq!(
            fast(&array, &plan, &Quiet),
            by_definition(&many, &plan),
            "{dtype}"
        );
        // and the session's table over every value of the array
        let table = PrefixTable::of_array(&array, &Quiet).unwrap();
        if let Some(table) = table {
            for t in [min, -1, 0, 1, 77, 2_900, max] {
                let expected = by_definition(&many, &Plan::new(vec![t]))[0];
                assert_eq!(table.at_most(t), Some(expected), "{dtype} at {t}");
            }
        }
    }
    // a byte order other than the machine's is decoded instead
    let swapped = DType {
        big_endian: !cfg!(target_endian = "big"),
        ..DType::native(true, 4)
    };
    let array = Array::from_raw_bytes(vec![0; 40], swapped).unwrap();
    let plan = Plan::new(vec![5i128]);
    let table = DivisorTable::new(table_limit(array.len(), &plan).unwrap());
    assert!(few_buckets_in_place(&array, &plan, &table, &Quiet).is_none());
    assert_eq!(fast(&array, &plan, &Quiet), vec![10]);
}
