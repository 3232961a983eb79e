//! Text of one integer per line, against the simplest reading of it: lines split at `\n`,
//! ASCII whitespace around them skipped, blank ones dropped, each parsed by `str::parse` and
//! range-checked. The same values, or an error at the same line.
#![no_main]

use divgpu::input::{parse_integer_lines, Array, Integers, MAX_VALUE, MIN_VALUE};
use libfuzzer_sys::fuzz_target;

/// The values, or the 1-based number of the first bad line.
fn oracle(text: &[u8]) -> Result<Vec<i128>, usize> {
    let mut values = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let value = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
            .filter(|v| (MIN_VALUE..=MAX_VALUE).contains(v))
            .ok_or(i + 1)?;
        values.push(value);
    }
    Ok(values)
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_integer_lines(data);
    match (oracle(data), &parsed) {
        (Ok(expected), Ok(integers)) => {
            assert_eq!(integers.iter().collect::<Vec<_>>(), expected);
            let narrow = expected.iter().all(|&v| i64::try_from(v).is_ok());
            assert_eq!(matches!(integers, Integers::Narrow(_)), narrow);
            let array = Array::from_text_bytes(data).unwrap();
            assert_eq!(array.bytes().unwrap().len(), array.len() * array.dtype().width);
            let mut out = Vec::new();
            array.decode_into(0..array.len(), &mut out);
            assert_eq!(out, expected);
            if let Some((negatives, rest)) = array.split_sign() {
                assert_eq!(negatives.len() + rest.len(), array.len());
            }
        }
        (Err(line), Err((at, message))) => {
            assert_eq!(*at, line, "{message}");
            assert!(!message.contains('\n'), "{message:?}");
        }
        (expected, got) => panic!("oracle {expected:?}, parser {got:?}"),
    }
});
