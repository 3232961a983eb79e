//! Elements and thresholds as the shaders compare them: order-preserving 64-bit keys.

pub(super) const SIGN: u64 = 1 << 63;

/// An element or threshold as the shaders compare it: an order-preserving 64-bit key, the
/// value with its sign bit flipped for signed arrays, the value itself for unsigned ones.
pub(super) fn key(value: i128, signed: bool) -> u64 {
    if signed {
        (value as i64 as u64) ^ SIGN
    } else {
        value as u64
    }
}

/// The key of a threshold, saturated into the array's range; `None` for a threshold below
/// every value the array's type holds (a negative one over an unsigned array), which no
/// element can be at or below.
pub(super) fn threshold_key(t: i128, signed: bool) -> Option<u64> {
    let (lowest, highest) = if signed {
        (i128::from(i64::MIN), i128::from(i64::MAX))
    } else {
        (0, i128::from(u64::MAX))
    };
    (t >= lowest).then(|| key(t.min(highest), signed))
}

pub(super) fn split(key: u64) -> [u32; 2] {
    [key as u32, (key >> 32) as u32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let signed = [i64::MIN as i128, -5, -1, 0, 1, 2, 1 << 40, i64::MAX as i128];
        for w in signed.windows(2) {
            assert!(key(w[0], true) < key(w[1], true), "{w:?}");
        }
        let unsigned = [0, 1, 2, 1 << 40, u64::MAX as i128];
        for w in unsigned.windows(2) {
            assert!(key(w[0], false) < key(w[1], false), "{w:?}");
        }
    }

    #[test]
    fn thresholds_saturate_into_the_arrays_range() {
        assert_eq!(threshold_key(-1, false), None);
        assert_eq!(threshold_key(0, false), Some(0));
        assert_eq!(threshold_key(u64::MAX as i128, true), Some(u64::MAX));
        assert_eq!(threshold_key(-1, true), Some(SIGN - 1));
        assert_eq!(threshold_key(i128::from(i64::MIN) - 1, true), None);
        assert_eq!(
            threshold_key(i128::from(u64::MAX) + 1, false),
            Some(u64::MAX)
        );
    }
}
