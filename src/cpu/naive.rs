//! The post's algorithm on the CPU: per threshold, the seed kernel for every element at or below it.

use super::*;

/// The post's algorithm: for every threshold, every element `x <= n` runs the seed kernel.
/// Cancelled, it stops within [`NAIVE_CHECK`] elements per thread, and returns fewer sums than
/// thresholds (which [`run`] never returns: it sees the cancellation).
pub(super) fn naive(array: &Array, plan: &Plan, observer: &dyn Observer) -> Vec<u64> {
    plan.given()
        .iter()
        .map_while(|n| naive_pass(array, n, observer))
        .collect()
}

/// Elements of the naive kernel between two looks at [`Observer::cancelled`]: the kernel's
/// work grows like sqrt(x), up to 2^16 trial divisions for a value below 2^32 (larger ones are
/// factored), so a whole [`BLOCK`] of the slowest is too long to wait for, and 256 are not;
/// one atomic load per 256 elements costs nothing measurable.
pub(super) const NAIVE_CHECK: usize = 256;

/// One threshold's sum, or `None` once cancelled. Not [`Array::par_blocks`]: that decodes
/// every block before its function can look at the observer, and decoding what is left of
/// a large array costs seconds per threshold (Ctrl-C waited for it); `try_fold` stops every
/// thread at its next block.
pub(super) fn naive_pass(array: &Array, n: i128, observer: &dyn Observer) -> Option<u64> {
    use rayon::prelude::*;
    let blocks = array.len().div_ceil(BLOCK);
    let tasks = NAIVE_TASKS_PER_THREAD * rayon::current_num_threads();
    (0..blocks)
        .into_par_iter()
        .with_min_len(blocks.div_ceil(tasks).max(1))
        .try_fold(
            || (0u64, Vec::with_capacity(BLOCK)),
            |(mut sum, mut scratch), b| {
                if observer.cancelled() {
                    return None;
                }
                let start = b * BLOCK;
                scratch.clear();
                array.decode_into(start..(start + BLOCK).min(array.len()), &mut scratch);
                for xs in scratch.chunks(NAIVE_CHECK) {
                    if observer.cancelled() {
                        return None;
                    }
                    sum += xs
                        .iter()
                        .filter(|&&x| x <= n)
                        .map(|&x| u64::from(divisors::seed_kernel(x)))
                        .sum::<u64>();
                }
                observer.advance(scratch.len() as u64);
                Some((sum, scratch))
            },
        )
        .map(|partial| partial.map(|(sum, _)| sum))
        .try_reduce(|| 0, |a, b| Some(a + b))
}
