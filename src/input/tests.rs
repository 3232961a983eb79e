//! Unit tests of the input types: dtype names, decoding, `Integers`.

use super::*;

#[test]
fn raw_names_are_bit_sizes() {
    assert_eq!(DType::from_raw_name("i8").unwrap().width, 1);
    assert_eq!(DType::from_raw_name("u64").unwrap().width, 8);
    assert!(!DType::from_raw_name("u16").unwrap().signed);
    assert_eq!(DType::from_raw_name("i12"), None);
    assert_eq!(DType::from_raw_name("f32"), None);
    assert_eq!(DType::from_raw_name(""), None);
}

fn decoded(array: &Array) -> Vec<i128> {
    let mut out = Vec::new();
    array.decode_into(0..array.len(), &mut out);
    out
}

#[test]
fn text_with_both_signs_beyond_64_bits_is_i128() {
    let text = b"-1\n18446744073709551615\n5\n-9223372036854775808\n";
    let array = Array::from_text_bytes(text).unwrap();
    assert_eq!(array.dtype(), DType::I128);
    assert_eq!(array.dtype().to_string(), "i128");
    assert_eq!(array.bytes().unwrap().len(), 4 * 16);
    assert_eq!(array.native_i64(), None);
    let values = [-1, MAX_VALUE, 5, MIN_VALUE];
    assert_eq!(decoded(&array), values);
    let mut middle = Vec::new();
    array.decode_into(1..3, &mut middle);
    assert_eq!(middle, [MAX_VALUE, 5]);
    let (negatives, rest) = array.split_sign().unwrap();
    assert_eq!(negatives.dtype(), DType::I64);
    assert_eq!(rest.dtype(), DType::U64);
    assert_eq!(decoded(&negatives), [-1, MIN_VALUE]);
    assert_eq!(decoded(&rest), [MAX_VALUE, 5]);
    // the narrowest type otherwise, and no split
    let unsigned = Array::from_text_bytes(b"18446744073709551615\n0\n").unwrap();
    assert_eq!(unsigned.dtype(), DType::U64);
    assert!(unsigned.split_sign().is_none());
    let signed = Array::from_text_bytes(b"-5\n7\n").unwrap();
    assert_eq!(signed.dtype(), DType::I64);
    assert!(signed.split_sign().is_none());
    assert!(Array::from_i128(vec![MAX_VALUE + 1]).is_err());
    assert!(Array::from_i128(vec![MIN_VALUE - 1]).is_err());
}

#[test]
fn chunks_read_as_the_array_of_their_elements() {
    // seeded splits of one array into parts (empty ones too), each range decoded across
    // them against the same range of the whole
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..200 {
        let len = next(40);
        let values: Vec<i64> = (0..len).map(|_| next(1000) as i64 - 500).collect();
        let mut parts = Vec::new();
        let mut at = 0;
        while at < len || next(3) == 0 {
            let take = next(len - at + 1);
            parts.push(Array::from_i64(values[at..at + take].to_vec()));
            at += take;
            if parts.len() > 50 {
                break;
            }
        }
        if at < len {
            parts.push(Array::from_i64(values[at..].to_vec()));
        }
        let whole = Array::from_chunks(DType::I64, parts).unwrap();
        assert_eq!(whole.len(), len);
        assert!(whole.bytes().is_none() && whole.native_i64().is_none());
        let a = next(len + 1);
        let b = a + next(len - a + 1);
        let mut got = Vec::new();
        whole.decode_into(a..b, &mut got);
        let want: Vec<i128> = values[a..b].iter().map(|&v| v.into()).collect();
        assert_eq!(got, want, "{a}..{b} of {len}");
    }
    assert_eq!(Array::from_chunks(DType::I64, Vec::new()).unwrap().len(), 0);
    let mixed = vec![Array::from_i64(vec![1]), Array::from_u64(vec![2])];
    assert!(Array::from_chunks(DType::I64, mixed).is_err());
}

#[test]
fn bytes_in_memory_read_as_files_do() {
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = b"{'descr': '>i2', 'fortran_order': False, 'shape': (2L,), }\n";
    npy.extend((header.len() as u16).to_le_bytes());
    npy.extend(header);
    npy.extend([0xff, 0xfe, 0x01, 0x00]);
    let array = Array::from_npy_bytes(npy.clone()).unwrap();
    assert_eq!(decoded(&array), [-2, 256]);
    npy.push(0);
    let e = Array::from_npy_bytes(npy).err().unwrap().to_string();
    assert!(e.contains("trailing bytes"), "{e}");
    let raw = Array::from_raw_bytes(
        vec![1, 0, 0, 0, 2, 0, 0, 0],
        DType::from_raw_name("u32").unwrap(),
    );
    assert_eq!(decoded(&raw.unwrap()), [1, 2]);
    assert!(Array::from_raw_bytes(vec![0; 3], DType::from_raw_name("u16").unwrap()).is_err());
    assert!(Array::from_raw_bytes(vec![0; 16], DType::I128).is_err());
}
