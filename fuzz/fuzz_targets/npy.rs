//! `.npy` bytes: never a panic; an error is one line; an array read has the header's element
//! count, its bytes are `len * width`, and every element decodes into its dtype's range.
#![no_main]

use divgpu::input::Array;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Array::from_npy_bytes(data.to_vec()) {
        Ok(array) => {
            let dtype = array.dtype();
            assert!(matches!(dtype.width, 1 | 2 | 4 | 8), "{dtype}");
            assert_eq!(array.bytes().unwrap().len(), array.len() * dtype.width);
            // the elements are the file's last bytes
            assert!(data.ends_with(array.bytes().unwrap()));
            let mut out = Vec::new();
            array.decode_into(0..array.len(), &mut out);
            assert_eq!(out.len(), array.len());
            let bits = 8 * dtype.width as u32;
            let (lo, hi) = if dtype.signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            assert!(out.iter().all(|v| (lo..=hi).contains(v)));
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "{message:?}");
        }
    }
});
