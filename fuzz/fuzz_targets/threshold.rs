//! One threshold as `--thresholds` and thresholds files parse it (`parse_integer`): in range,
//! round-trips through `to_string`, agrees with `str::parse`; an error is one line.
#![no_main]

use divgpu::input::{parse_integer, MAX_VALUE, MIN_VALUE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let std = text
        .trim()
        .parse::<i128>()
        .ok()
        .filter(|v| (MIN_VALUE..=MAX_VALUE).contains(v));
    match parse_integer(text) {
        Ok(value) => {
            assert_eq!(Some(value), std);
            assert_eq!(parse_integer(&value.to_string()), Ok(value));
        }
        Err(message) => {
            assert_eq!(std, None, "{message}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }
});
