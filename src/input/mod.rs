//! Reading the array and the thresholds: `.npy` and raw binary through a memory map (the array is
//! never copied whole into host memory), text files parsed into one owned vector.

use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;
use npyz::{DType as NpyDType, Endianness, TypeChar};

use crate::error::{Error, Result};

/// The smallest and largest value an input element or a threshold may have: every `i64` and
/// every `u64`.
pub const MIN_VALUE: i128 = i64::MIN as i128;
pub const MAX_VALUE: i128 = u64::MAX as i128;

/// An integer element type as stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DType {
    pub signed: bool,
    /// Bytes per element: 1, 2, 4 or 8.
    pub width: usize,
    pub big_endian: bool,
}

impl DType {
    pub const I64: DType = DType::native(true, 8);
    pub const U64: DType = DType::native(false, 8);

    const fn native(signed: bool, width: usize) -> DType {
        DType {
            signed,
            width,
            big_endian: cfg!(target_endian = "big"),
        }
    }

    /// A raw-file dtype by its `--dtype` name (`i8` ... `u64`, sizes in bits), little-endian.
    pub fn from_raw_name(name: &str) -> Option<DType> {
        let (signed, bits) = match name.split_at_checked(1)? {
            ("i", bits) => (true, bits),
            ("u", bits) => (false, bits),
            _ => return None,
        };
        let width = match bits {
            "8" => 1,
            "16" => 2,
            "32" => 4,
            "64" => 8,
            _ => return None,
        };
        Some(DType {
            signed,
            width,
            big_endian: false,
        })
    }
}

impl fmt::Display for DType {
    /// numpy's spelling: `<i8`, `>u2`, `|u1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = match (self.width, self.big_endian) {
            (1, _) => '|',
            (_, true) => '>',
            (_, false) => '<',
        };
        let kind = if self.signed { 'i' } else { 'u' };
        write!(f, "{order}{kind}{}", self.width)
    }
}

enum Storage {
    Mapped(Mmap),
    Owned(Vec<u64>),
}

/// A flat integer array, either memory-mapped from a file or owned (generated or parsed text).
pub struct Array {
    storage: Storage,
    /// Where the elements start in the storage's bytes (the `.npy` header length).
    offset: usize,
    len: usize,
    dtype: DType,
}

macro_rules! decode_as {
    ($bytes:expr, $out:expr, $ty:ty, $from:ident) => {
        $out.extend(
            $bytes
                .chunks_exact(std::mem::size_of::<$ty>())
                .map(|c| <$ty>::$from(c.try_into().unwrap()) as i128),
        )
    };
}

impl Array {
    /// Values held in memory as `i64`.
    pub fn from_i64(values: Vec<i64>) -> Array {
        Array::owned(values.into_iter().map(|v| v as u64).collect(), DType::I64)
    }

    /// Values held in memory as `u64`.
    pub fn from_u64(values: Vec<u64>) -> Array {
        Array::owned(values, DType::U64)
    }

    fn owned(words: Vec<u64>, dtype: DType) -> Array {
        Array {
            len: words.len(),
            storage: Storage::Owned(words),
            offset: 0,
            dtype,
        }
    }

    /// Opens `path` by its extension: `.npy`, or `.txt`/`.csv` with one integer per line; any
    /// other file needs `raw_dtype` and is read as raw little-endian elements.
    pub fn open(path: &Path, raw_dtype: Option<DType>) -> Result<Array> {
        if let Some(dtype) = raw_dtype {
            return Array::open_raw(path, dtype);
        }
        match extension(path).as_deref() {
            Some("npy") => Array::open_npy(path),
            Some("txt" | "csv") => Array::open_text(path),
            _ => Err(Error::Data(format!(
                "{}: unknown format: use .npy, .txt or .csv, or give --dtype for raw binary",
                path.display()
            ))),
        }
    }

    pub fn open_npy(path: &Path) -> Result<Array> {
        let map = map_file(path)?;
        let mut rest: &[u8] = &map;
        let header = npyz::NpyHeader::from_reader(&mut rest)
            .map_err(|e| Error::Data(format!("{}: not a .npy file ({e})", path.display())))?;
        let offset = map.len() - rest.len();
        let dtype = npy_dtype(&header.dtype())
            .map_err(|descr| Error::Data(format!("{}: {descr}", path.display())))?;
        let len = usize::try_from(header.len())
            .ok()
            .filter(|n| n.checked_mul(dtype.width).is_some())
            .ok_or_else(|| Error::Data(format!("{}: shape too large", path.display())))?;
        let expected = len * dtype.width;
        if rest.len() != expected {
            let what = if rest.len() < expected {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(Error::Data(format!(
                "{}: {what}: the header says {len} elements of {dtype} ({expected} bytes) but {} bytes follow it",
                path.display(),
                rest.len()
            )));
        }
        Ok(Array {
            storage: Storage::Mapped(map),
            offset,
            len,
            dtype,
        })
    }

    pub fn open_raw(path: &Path, dtype: DType) -> Result<Array> {
        let map = map_file(path)?;
        if map.len() % dtype.width != 0 {
            return Err(Error::Data(format!(
                "{}: truncated: {} bytes is not a whole number of {}-byte elements",
                path.display(),
                map.len(),
                dtype.width
            )));
        }
        Ok(Array {
            len: map.len() / dtype.width,
            storage: Storage::Mapped(map),
            offset: 0,
            dtype,
        })
    }

    pub fn open_text(path: &Path) -> Result<Array> {
        match read_integer_lines(path)? {
            Integers::Narrow(values) => Ok(Array::from_i64(values)),
            // some value is above 2^63 - 1
            Integers::Wide(values) => match values.iter().find(|&&v| v < 0) {
                Some(negative) => Err(Error::Data(format!(
                    "{}: holds both {negative} and values above 2^63-1; no 64-bit integer type holds both",
                    path.display()
                ))),
                None => Ok(Array::from_u64(
                    values.into_iter().map(|v| v as u64).collect(),
                )),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The elements' bytes as stored.
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Mapped(map) => map,
            Storage::Owned(words) => bytemuck::cast_slice(words),
        };
        &all[self.offset..self.offset + self.len * self.dtype.width]
    }

    /// The elements as `i64`s, without decoding, when that is how they are stored (a
    /// native-endian, aligned `i64` array: what numpy writes by default).
    pub fn native_i64(&self) -> Option<&[i64]> {
        let native = DType {
            signed: true,
            width: 8,
            big_endian: cfg!(target_endian = "big"),
        };
        if self.dtype != native {
            return None;
        }
        bytemuck::try_cast_slice(self.bytes()).ok()
    }

    /// Appends the elements in `range`, widened to `i128`, to `out`.
    pub fn decode_into(&self, range: Range<usize>, out: &mut Vec<i128>) {
        let w = self.dtype.width;
        let bytes = &self.bytes()[range.start * w..range.end * w];
        match (self.dtype.signed, w, self.dtype.big_endian) {
            (true, 1, _) => decode_as!(bytes, out, i8, from_le_bytes),
            (false, 1, _) => decode_as!(bytes, out, u8, from_le_bytes),
            (true, 2, false) => decode_as!(bytes, out, i16, from_le_bytes),
            (true, 2, true) => decode_as!(bytes, out, i16, from_be_bytes),
            (false, 2, false) => decode_as!(bytes, out, u16, from_le_bytes),
            (false, 2, true) => decode_as!(bytes, out, u16, from_be_bytes),
            (true, 4, false) => decode_as!(bytes, out, i32, from_le_bytes),
            (true, 4, true) => decode_as!(bytes, out, i32, from_be_bytes),
            (false, 4, false) => decode_as!(bytes, out, u32, from_le_bytes),
            (false, 4, true) => decode_as!(bytes, out, u32, from_be_bytes),
            (true, 8, false) => decode_as!(bytes, out, i64, from_le_bytes),
            (true, 8, true) => decode_as!(bytes, out, i64, from_be_bytes),
            (false, 8, false) => decode_as!(bytes, out, u64, from_le_bytes),
            (false, 8, true) => decode_as!(bytes, out, u64, from_be_bytes),
            _ => unreachable!("DType widths are 1, 2, 4 or 8"),
        }
    }

    /// Calls `f` on consecutive blocks of at most `block` decoded elements, with each block's
    /// start index; in parallel on the current rayon pool, in at most about `tasks` pieces,
    /// each with its own accumulator from `identity`: few for large accumulators, many for
    /// uneven work.
    pub fn par_blocks<T, F, R>(
        &self,
        block: usize,
        tasks: usize,
        identity: impl Fn() -> T + Sync + Send,
        f: F,
        reduce: R,
    ) -> T
    where
        T: Send,
        F: Fn(&mut T, usize, &[i128]) + Sync + Send,
        R: Fn(T, T) -> T + Sync + Send,
    {
        use rayon::prelude::*;
        let blocks = self.len.div_ceil(block);
        (0..blocks)
            .into_par_iter()
            .with_min_len(blocks.div_ceil(tasks.max(1)).max(1))
            .fold(
                || (identity(), Vec::with_capacity(block)),
                |(mut acc, mut scratch), b| {
                    let start = b * block;
                    scratch.clear();
                    self.decode_into(start..(start + block).min(self.len), &mut scratch);
                    f(&mut acc, start, &scratch);
                    (acc, scratch)
                },
            )
            .map(|(acc, _)| acc)
            // not `reduce`, which would start each merge from a fresh accumulator
            .reduce_with(reduce)
            .unwrap_or_else(identity)
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; like every memory-mapping reader we rely on nobody
    // truncating the file while divgpu runs (that would be a SIGBUS, not a wrong answer).
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// The integer dtype of an `.npy` header, or a description of why it is not one.
fn npy_dtype(dtype: &NpyDType) -> std::result::Result<DType, String> {
    let NpyDType::Plain(ts) = dtype else {
        return Err(format!(
            "dtype {} is a structured or sub-array type; divgpu reads integer arrays",
            dtype.descr()
        ));
    };
    let signed = match ts.type_char() {
        TypeChar::Int => true,
        TypeChar::Uint => false,
        _ => {
            return Err(format!(
                "dtype {ts} is not an integer type; divgpu reads i1 i2 i4 i8 u1 u2 u4 u8"
            ))
        }
    };
    let width = match ts.num_bytes() {
        Some(w @ (1 | 2 | 4 | 8)) => w,
        _ => return Err(format!("dtype {ts} has an unsupported width")),
    };
    Ok(DType {
        signed,
        width,
        big_endian: ts.endianness() == Endianness::Big,
    })
}

/// Parses one integer in `[-2^63, 2^64)`, the range of every input element and threshold.
pub fn parse_integer(text: &str) -> std::result::Result<i128, String> {
    let text = text.trim();
    // The common case first: 128-bit parsing is several times slower.
    if let Some((v, used)) = short_line(text.as_bytes()) {
        if used == text.len() {
            return Ok(v.into());
        }
    }
    let value: i128 = text
        .parse()
        .map_err(|_| format!("{text:?} is not an integer"))?;
    if (MIN_VALUE..=MAX_VALUE).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is outside [-2^63, 2^64)"))
    }
}

/// Integers read from text, in order: `i64`s when every one fits (the usual case: half the
/// memory of `i128`s, and a million thresholds are read, kept, looked up and printed), else
/// `i128`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integers {
    Narrow(Vec<i64>),
    Wide(Vec<i128>),
}

impl Integers {
    pub fn len(&self) -> usize {
        match self {
            Integers::Narrow(v) => v.len(),
            Integers::Wide(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th integer.
    pub fn get(&self, i: usize) -> i128 {
        match self {
            Integers::Narrow(v) => v[i].into(),
            Integers::Wide(v) => v[i],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = i128> + Clone + '_ {
        let (narrow, wide): (&[i64], &[i128]) = match self {
            Integers::Narrow(v) => (v, &[]),
            Integers::Wide(v) => (&[], v),
        };
        narrow
            .iter()
            .map(|&v| i128::from(v))
            .chain(wide.iter().copied())
    }
}

impl From<Vec<i128>> for Integers {
    /// Narrow when every value fits `i64`.
    fn from(values: Vec<i128>) -> Self {
        match values.iter().map(|&v| i64::try_from(v)).collect() {
            Ok(narrow) => Integers::Narrow(narrow),
            Err(_) => Integers::Wide(values),
        }
    }
}

impl From<&[i128]> for Integers {
    fn from(values: &[i128]) -> Self {
        values.to_vec().into()
    }
}

impl<const N: usize> From<[i128; N]> for Integers {
    fn from(values: [i128; N]) -> Self {
        values.to_vec().into()
    }
}

impl From<Vec<i64>> for Integers {
    fn from(values: Vec<i64>) -> Self {
        Integers::Narrow(values)
    }
}

/// Reads a text file of one integer per line; blank lines and whitespace around a number are
/// skipped. Parsed on every thread of the current rayon pool.
pub fn read_integer_lines(path: &Path) -> Result<Integers> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
    // SAFETY: as in `map_file`. A map spares copying the text (a million thresholds are 7 MB);
    // what cannot be mapped (a pipe) is read.
    let text = match (empty, unsafe { Mmap::map(&file) }) {
        (false, Ok(map)) => Text::Mapped(map),
        _ => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(|e| Error::io(path, e))?;
            Text::Read(bytes)
        }
    };
    parse_integer_lines(text.bytes())
        .map_err(|(line, e)| Error::Data(format!("{}:{line}: {e}", path.display())))
}

enum Text {
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl Text {
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Mapped(map) => map,
            Text::Read(bytes) => bytes,
        }
    }
}

/// Text is parsed in pieces of about this many bytes, each ending at a line's end.
const TEXT_PIECE: usize = 1 << 18;

/// Why a line was not parsed: its offset in the piece and why, or that it holds a value
/// outside `i64` when parsing into `i64`s.
enum LineError {
    Bad(usize, String),
    Wide,
}

/// [`read_integer_lines`] on text in memory; the error is the (1-based) line and why. Text
/// with a value outside `i64` is parsed a second time, into `i128`s.
pub fn parse_integer_lines(text: &[u8]) -> std::result::Result<Integers, (usize, String)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = match text[(start + TEXT_PIECE).min(text.len())..]
            .iter()
            .position(|&b| b == b'\n')
        {
            Some(at) => start + TEXT_PIECE + at + 1,
            None => text.len(),
        };
        pieces.push(&text[start..end]);
        start = end;
    }
    match parse_pieces::<i64>(&pieces) {
        Ok(narrow) => Ok(Integers::Narrow(narrow)),
        Err(None) => parse_pieces::<i128>(&pieces)
            .map(Integers::Wide)
            .map_err(|e| e.expect("every value fits i128")),
        Err(Some(bad)) => Err(bad),
    }
}

/// The values of every piece's lines as `T`s: `Err(None)` when one does not fit `T`.
fn parse_pieces<T>(pieces: &[&[u8]]) -> std::result::Result<Vec<T>, Option<(usize, String)>>
where
    T: Copy + Default + Send + Sync + From<i64> + TryFrom<i128>,
{
    use rayon::prelude::*;
    // At most one value per line: each piece writes its values into its own part of `values`
    // (in parallel), and the parts are closed up afterwards if blank lines left gaps.
    let room: Vec<usize> = pieces
        .par_iter()
        .map(|p| p.iter().filter(|&&b| b == b'\n').count() + usize::from(!p.ends_with(b"\n")))
        .collect();
    let mut values = vec![T::default(); room.iter().sum()];
    let mut parts = Vec::with_capacity(pieces.len());
    let mut rest = values.as_mut_slice();
    for &n in &room {
        let (part, tail) = rest.split_at_mut(n);
        parts.push(part);
        rest = tail;
    }
    let parsed: Vec<_> = pieces
        .par_iter()
        .zip(parts)
        .map(|(piece, part)| parse_piece(piece, part))
        .collect();
    let (mut len, mut at, mut line) = (0, 0, 1);
    for ((piece, &n), result) in pieces.iter().zip(&room).zip(parsed) {
        match result {
            Ok(count) => {
                values.copy_within(at..at + count, len);
                len += count;
            }
            Err(LineError::Bad(offset, e)) => {
                let before = piece[..offset].iter().filter(|&&b| b == b'\n').count();
                return Err(Some((line + before, e)));
            }
            Err(LineError::Wide) => return Err(None),
        }
        at += n;
        // every piece but the last ends with a newline: `n` of them
        line += n;
    }
    values.truncate(len);
    Ok(values)
}

/// The values of `piece`'s lines into `out` (room for one per line); the count.
fn parse_piece<T>(piece: &[u8], out: &mut [T]) -> std::result::Result<usize, LineError>
where
    T: From<i64> + TryFrom<i128>,
{
    let (mut at, mut count) = (0, 0);
    while at < piece.len() {
        let rest = &piece[at..];
        if let Some((value, used)) = short_line(rest) {
            out[count] = value.into();
            count += 1;
            at += used;
            continue;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest[..end].trim_ascii();
        if !line.is_empty() {
            let value = std::str::from_utf8(line)
                .map_err(|_| format!("{:?} is not an integer", String::from_utf8_lossy(line)))
                .and_then(parse_integer)
                .map_err(|e| LineError::Bad(at, e))?;
            out[count] = T::try_from(value).map_err(|_| LineError::Wide)?;
            count += 1;
        }
        at += end + 1;
    }
    Ok(count)
}

/// The common line, without a search for its end: an optional `-`, 1 to 18 digits (no `i64`
/// overflows) and the line's end (`\n`, `\r\n` or the end of the text); the value and the bytes
/// used. `None` for anything else, which the caller parses the slow way.
#[inline]
fn short_line(bytes: &[u8]) -> Option<(i64, usize)> {
    let first = usize::from(bytes.first() == Some(&b'-'));
    let mut value: i64 = 0;
    let mut at = first;
    while at < bytes.len() && at - first < 18 {
        let digit = bytes[at].wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value * 10 + i64::from(digit);
        at += 1;
    }
    if at == first {
        return None;
    }
    let used = match &bytes[at..] {
        [] => at,
        [b'\n', ..] => at + 1,
        [b'\r', b'\n', ..] => at + 2,
        _ => return None,
    };
    Some((if first == 1 { -value } else { value }, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines across several parallel pieces, against the standard library's own parsing.
    #[test]
    fn integer_lines_parse_as_std_parses_them() {
        let mut rng = crate::workload::SplitMix64::new(21);
        let mut text = String::new();
        while text.len() < 3 * TEXT_PIECE + 1000 {
            let v = rng.below(u64::MAX) as i128 - rng.below(1 << 63) as i128;
            match rng.below(8) {
                0 => text += "\n",
                1 => text += &format!("  {v}\t\r\n"),
                2 => text += &format!("{v}\r\n"),
                3 => text += &format!("+{}\n", v.unsigned_abs() % 1000),
                4 => text += &format!("{}\n", rng.below(1 << 20)),
                _ => text += &format!("{v}\n"),
            }
        }
        let expected: Vec<i128> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.parse().unwrap())
            .collect();
        // values above i64::MAX: parsed again as i128s
        assert!(expected.iter().any(|&v| v > i128::from(i64::MAX)));
        let wide = parse_integer_lines(text.as_bytes()).unwrap();
        assert_eq!(wide, Integers::Wide(expected.clone()));
        // no newline at the end
        let trimmed = text.trim_end();
        assert_eq!(parse_integer_lines(trimmed.as_bytes()), Ok(wide));
        // the same lines without the values beyond i64
        let narrow_text: String = text
            .lines()
            .filter(|l| l.trim().parse::<i64>().is_ok() || l.trim().is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        let narrow: Vec<i64> = expected.iter().filter_map(|&v| v.try_into().ok()).collect();
        assert_eq!(
            parse_integer_lines(narrow_text.as_bytes()),
            Ok(Integers::Narrow(narrow))
        );
        // blank lines only
        assert_eq!(
            parse_integer_lines(b"\n \n\r\n"),
            Ok(Integers::Narrow(vec![]))
        );
        assert_eq!(parse_integer_lines(b""), Ok(Integers::Narrow(vec![])));
        // a bad line in a later piece is reported by its number
        let lines = text.lines().count();
        for bad in ["12a", "-", "1.5", "18446744073709551616", "\u{e9}"] {
            let with_bad = format!("{text}{bad}\n7\n");
            let (line, message) = parse_integer_lines(with_bad.as_bytes()).unwrap_err();
            assert_eq!(line, lines + 1, "{bad}");
            assert!(message.contains(bad), "{message}");
        }
    }

    #[test]
    fn raw_names_are_bit_sizes() {
        assert_eq!(DType::from_raw_name("i8").unwrap().width, 1);
        assert_eq!(DType::from_raw_name("u64").unwrap().width, 8);
        assert!(!DType::from_raw_name("u16").unwrap().signed);
        assert_eq!(DType::from_raw_name("i12"), None);
        assert_eq!(DType::from_raw_name("f32"), None);
        assert_eq!(DType::from_raw_name(""), None);
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(parse_integer(" -9223372036854775808 "), Ok(MIN_VALUE));
        assert_eq!(parse_integer("18446744073709551615"), Ok(MAX_VALUE));
        assert!(parse_integer("18446744073709551616").is_err());
        assert!(parse_integer("-9223372036854775809").is_err());
        assert!(parse_integer("1.5").is_err());
        assert!(parse_integer("").is_err());
        // the short path and the long one agree at their border
        assert_eq!(
            parse_integer("-999999999999999999"),
            Ok(-999_999_999_999_999_999)
        );
        assert_eq!(parse_integer("+17"), Ok(17));
        assert_eq!(
            parse_integer("1234567890123456789"),
            Ok(1_234_567_890_123_456_789)
        );
        assert!(parse_integer("12a").is_err());
        assert!(parse_integer("-").is_err());
    }
}
