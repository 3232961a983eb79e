//! The post's workload, reproducible on every platform: SplitMix64 (a fixed, published generator)
//! and Lemire's unbiased bounded integers, so `--seed S` means the same array everywhere and
//! with every version of divgpu's dependencies.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// The post's queries: 100,000 x [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2].
pub fn default_thresholds() -> Vec<i128> {
    [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]
        .iter()
        .map(|k| k * 100_000)
        .collect()
}

pub const DEFAULT_SIZE: usize = 1_000_000;
pub const DEFAULT_MAX_VALUE: u64 = 1_000_000;
pub const DEFAULT_SEED: u64 = 2013;

/// SplitMix64 (Steele, Lea, Flood 2014), as in Vigna's reference `splitmix64.c`.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` for `bound > 0` (Lemire 2019, rejection keeps it unbiased).
    pub fn below(&mut self, bound: u64) -> u64 {
        let reject_under = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            if (m as u64) >= reject_under {
                return (m >> 64) as u64;
            }
        }
    }
}

/// `size` values uniform in `[0, max_value]` (at most `i64::MAX`: they are int64), as the
/// post's `randint(0, 10*HT)`.
pub fn generate(size: usize, max_value: u64, seed: u64) -> Result<Vec<i64>> {
    let mut values = Vec::new();
    values
        .try_reserve_exact(size)
        .map_err(|_| Error::Data(format!("cannot hold {size} generated values in memory")))?;
    values.extend(values_iter(size, max_value, seed));
    Ok(values)
}

/// The values of [`generate`], one at a time (for files larger than memory).
pub fn values_iter(size: usize, max_value: u64, seed: u64) -> impl Iterator<Item = i64> {
    let bound = max_value.min(i64::MAX as u64) + 1;
    let mut rng = SplitMix64::new(seed);
    (0..size).map(move |_| rng.below(bound) as i64)
}

/// Writes `len` values as a one-dimensional little-endian int64 `.npy` file, streaming. Every
/// write error is returned, the last buffer's flush included (a `BufWriter` dropped unflushed
/// would swallow it: `-o /dev/full` would succeed), and a regular file left half written is
/// removed: a file is either complete or absent.
pub fn write_npy(path: &Path, len: usize, values: impl IntoIterator<Item = i64>) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let written = write_npy_to(BufWriter::new(file), len, values);
    if written.is_err() && std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        // the error being reported says more than a failure to clean up would
        std::fs::remove_file(path).ok();
    }
    written.map_err(|e| Error::io(path, e))
}

fn write_npy_to(
    mut out: BufWriter<File>,
    len: usize,
    values: impl IntoIterator<Item = i64>,
) -> std::io::Result<()> {
    use npyz::WriterBuilder;
    let mut writer = npyz::WriteOptions::new()
        .dtype(npyz::DType::new_scalar(
            "<i8".parse().expect("a valid type string"),
        ))
        .shape(&[len as u64])
        .writer(&mut out)
        .begin_nd()?;
    writer.extend(values)?;
    writer.finish()?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference splitmix64.c seeded with 1234567.
        let mut rng = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431,
                16408922859458223821
            ]
        );
    }

    #[test]
    fn generated_values_stay_in_range_and_cover_it() {
        let values = generate(10_000, 9, 1).unwrap();
        assert!(values.iter().all(|v| (0..=9).contains(v)));
        for k in 0..=9 {
            assert!(values.contains(&k), "{k} never drawn");
        }
        assert_eq!(generate(100, 5, 7).unwrap(), generate(100, 5, 7).unwrap());
        assert_ne!(
            generate(100, 1000, 7).unwrap(),
            generate(100, 1000, 8).unwrap()
        );
    }
}
