//! Unit tests of the `.npy` reader: headers as numpy writes them, and what numpy refuses.

use super::*;

fn file(version: u8, header: &str) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out
}

fn parse(version: u8, header: &str) -> Result<Header, String> {
    parse_header(&file(version, header))
}

#[test]
fn headers_numpy_writes_and_reads() {
    let native = cfg!(target_endian = "big");
    for (version, header, dtype, len) in [
        (
            1,
            "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }    \n",
            DType::from_raw_name("i64").unwrap(),
            3,
        ),
        // Python 2's numpy: longs in the shape, filtered out as numpy does
        (
            1,
            "{'descr': '>u2', 'fortran_order': False, 'shape': (3L, 2L), }\n",
            DType {
                signed: false,
                width: 2,
                big_endian: true,
            },
            6,
        ),
        (
            2,
            "{\"shape\": (), \"fortran_order\": True, \"descr\": \"|u1\"}",
            DType {
                signed: false,
                width: 1,
                big_endian: native,
            },
            1,
        ),
        (
            3,
            "{'descr': u'i4', # a comment\n 'fortran_order': False, 'shape': (2, 0, 99999999999999999999999)}",
            DType {
                signed: true,
                width: 4,
                big_endian: native,
            },
            0,
        ),
        (
            1,
            "{'descr': '<i8', 'fortran_order': False, 'shape': ((4)), 'shape': (1_0,)}",
            DType::from_raw_name("i64").unwrap(),
            10,
        ),
    ] {
        let bytes = file(version, header);
        let parsed = parse_header(&bytes).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(
            parsed,
            Header {
                dtype,
                len,
                data_offset: bytes.len()
            },
            "{header}"
        );
    }
}

/// Headers numpy would refuse, by the `.npy` version that carries them, and a part of the one-line
/// error each must get.
const REFUSED: &[(u8, &str, &str)] = &[
    (1, "import os", "not a literal"),
    (1, "[1, 2]", "a list, not a dict"),
    (1, "{'descr': '<i8', 'fortran_order': False}", "no 'shape'"),
    (
        1,
        "{'descr': '<i8', 'fortran_order': 0, 'shape': (3,)}",
        "fortran_order",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
        "'x'",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': [3]}",
        "a list",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': 3}",
        "an integer",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (-3,)}",
        "negative",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (--3,)}",
        "a number",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3.0,)}",
        "decimal",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (03,)}",
        "leading zero",
    ),
    // Python 3 headers have no longs
    (
        3,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3L,)}",
        "'L'",
    ),
    (
        1,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
        "not an integer",
    ),
    (
        1,
        "{'descr': '<i16', 'fortran_order': False, 'shape': (3,)}",
        "width",
    ),
    (
        1,
        "{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (3,)}",
        "structured",
    ),
    (
        1,
        "{'descr': 'int', 'fortran_order': False, 'shape': (3,)}",
        "type string",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967297, 18446744043644780551)}",
        "(4294967297, 18446744043644780551)",
    ),
    (
        1,
        "{'descr': '<i1', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
        "too many elements",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)} x",
        "end of the header",
    ),
    (
        1,
        "{'descr': '<i8\n', 'fortran_order': False, 'shape': (3,)}",
        "does not end",
    ),
    (
        1,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}\0",
        "0x00",
    ),
];

#[test]
fn what_numpy_refuses_is_refused_in_one_line() {
    let ok = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}";
    assert!(parse(1, ok).is_ok());
    let deep = "(".repeat(100);
    let refused = REFUSED.iter().copied();
    for (version, header, needle) in refused.chain([(1, deep.as_str(), "nests deeper")]) {
        let e = parse(version, header).expect_err(header);
        assert!(e.contains(needle), "{header}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    for (bytes, needle) in [
        (&b"\x93NUMPY\x04\x00\x00\x00"[..], "version 4.0"),
        (b"\x93NUMPY\x01\x01\x00\x00", "version 1.1"),
        (b"\x93NUMPY\x01", "ends inside"),
        (b"\x93NUMPY\x01\x00\xff\x00{}", "truncated"),
        (b"PK\x03\x04", "not a .npy file"),
        (b"\x93NUMPY\x03\x00\x02\x00\x00\x00\xff\xfe", "UTF-8"),
    ] {
        let e = parse_header(bytes).unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
}
