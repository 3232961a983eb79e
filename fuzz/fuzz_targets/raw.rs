//! Raw bytes of a dtype chosen by the first byte: an error exactly when the bytes are not a
//! whole number of elements, and each element as decoded by hand here.
#![no_main]

use divgpu::input::{Array, DType};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let mut dtype = DType::from_raw_name(NAMES[usize::from(pick) % 8]).unwrap();
    // the in-memory reader takes either byte order
    dtype.big_endian = pick & 0x80 != 0;
    let width = dtype.width;
    match Array::from_raw_bytes(bytes.to_vec(), dtype) {
        Ok(array) => {
            assert_eq!(bytes.len() % width, 0);
            assert_eq!(array.len() * width, bytes.len());
            assert_eq!(array.bytes().unwrap(), bytes);
            let mut out = Vec::new();
            array.decode_into(0..array.len(), &mut out);
            let expected: Vec<i128> = bytes
                .chunks_exact(width)
                .map(|chunk| {
                    let mut le = chunk.to_vec();
                    if dtype.big_endian {
                        le.reverse();
                    }
                    let unsigned = le
                        .iter()
                        .rev()
                        .fold(0u128, |v, &b| (v << 8) | u128::from(b));
                    let bits = 8 * width as u32;
                    if dtype.signed && unsigned >> (bits - 1) == 1 {
                        unsigned as i128 - (1i128 << bits)
                    } else {
                        unsigned as i128
                    }
                })
                .collect();
            assert_eq!(out, expected);
        }
        Err(e) => {
            assert_ne!(bytes.len() % width, 0, "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }
});
