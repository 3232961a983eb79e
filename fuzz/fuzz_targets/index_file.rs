//! The index file loader (`ValueIndex::from_bytes`, as `divgpu -i FILE.divi` and
//! `divgpu.Index.load` open one): any bytes are refused with one line or load; a loaded index
//! answers every threshold with a number or a one-line error, and its numbers never go down as
//! the threshold goes up.
#![no_main]

use divgpu::index::ValueIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let index = match ValueIndex::from_bytes(data.to_vec()) {
        Ok(index) => index,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            return;
        }
    };
    // thresholds from the data's last words (a mutated file's own keys, often), and the ends
    // of the range: at most 64, so that large inputs still run thousands of times a second
    let words = data.len() / 8;
    let mut thresholds: Vec<i128> = data[8 * words.saturating_sub(61)..8 * words]
        .chunks_exact(8)
        .map(|w| i128::from(i64::from_le_bytes(w.try_into().unwrap())))
        .chain([i128::from(i64::MIN), -1, 0, 1, 2, i128::from(u64::MAX)])
        .collect();
    thresholds.sort_unstable();
    let mut last = 0u64;
    for t in thresholds {
        match index.at_most(t) {
            Ok(Some(sum)) => {
                assert!(sum >= last, "{sum} < {last} at {t}");
                last = sum;
            }
            Ok(None) => panic!("a loaded index answers every threshold"),
            Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
    }
});
