//! Reading the array and the thresholds: `.npy` and raw binary through a memory map (the array is
//! never copied whole into host memory), text files parsed into one owned vector. Every reader
//! also takes bytes in memory (`Array::from_npy_bytes`, ...), which the fuzz targets drive.

mod file;
mod npy;
mod sigbus;
mod text;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
use file::Contents;

pub(crate) use file::{open as open_file, Contents as FileContents};
pub use sigbus::install_sigbus_handler;
pub use text::{parse_integer, parse_integer_lines, read_integer_lines, Integers};

/// The smallest and largest value an input element or a threshold may have: every `i64` and
/// every `u64`.
pub const MIN_VALUE: i128 = i64::MIN as i128;
pub const MAX_VALUE: i128 = u64::MAX as i128;

/// A 64-bit-or-narrower integer type that arrays hold and the CPU reads in place
/// ([`Array::native`]).
pub trait Element: bytemuck::Pod + Send + Sync {
    const DTYPE: DType;
    /// The value as an `i64`, where it is one; `u64` values above `i64::MAX` saturate to it,
    /// which is above every threshold that a caller of this uses (see each caller).
    fn saturating_i64(self) -> i64;
}

macro_rules! element {
    ($($t:ty: $signed:expr),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::native($signed, std::mem::size_of::<$t>());
            #[inline]
            fn saturating_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
element!(i8: true, i16: true, i32: true, i64: true, u8: false, u16: false, u32: false, u64: false);

/// An integer element type as stored in a file, or in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DType {
    pub signed: bool,
    /// Bytes per element: 1, 2, 4 or 8 in files; 16 for [`DType::I128`], held in memory only.
    pub width: usize,
    pub big_endian: bool,
}

impl DType {
    pub const I64: DType = DType::native(true, 8);
    pub const U64: DType = DType::native(false, 8);
    /// Values in `[-2^63, 2^64)` that no 64-bit type holds all of (both negatives and values
    /// above 2^63-1), as native-endian `i128`s. Never read from a file: numpy has no 128-bit
    /// integers, and text is parsed into it.
    pub const I128: DType = DType::native(true, 16);

    /// The machine's byte order.
    pub const fn native(signed: bool, width: usize) -> DType {
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
    /// numpy's spelling: `<i8`, `>u2`, `|u1`; `i128` for the in-memory type numpy lacks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.width == 16 {
            return f.write_str("i128");
        }
        let order = match (self.width, self.big_endian) {
            (1, _) => '|',
            (_, true) => '>',
            (_, false) => '<',
        };
        let kind = if self.signed { 'i' } else { 'u' };
        write!(f, "{order}{kind}{}", self.width)
    }
}

/// Bytes that their owner keeps alive and unchanged for as long as it lives: a numpy array's
/// buffer, held by the Python package.
pub trait ExternalBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

/// Where each element of a strided array sits in its owner's bytes.
struct Strides {
    shape: Vec<usize>,
    /// Bytes from one element to the next along each axis (negative: backwards).
    strides: Vec<isize>,
    /// The first element's byte (the others may lie before it).
    first: usize,
}

enum Storage {
    /// A file's bytes, mapped or read (a FIFO, bytes given in memory).
    File(Contents),
    /// A caller's buffer, read in place: contiguous, or elements at `Strides`.
    External(Box<dyn ExternalBytes>, Option<Strides>),
    /// `i64`s or `u64`s (generated or parsed text).
    Words(Vec<u64>),
    /// [`DType::I128`]'s values.
    Wide(Vec<i128>),
    /// Arrays of one dtype, one after another (an Arrow chunked array, read in place): the
    /// elements of part `k` start at element `starts[k]`.
    Chunks {
        parts: Vec<Array>,
        starts: Vec<usize>,
    },
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

/// `name: message` for a file, the message alone for bytes in memory.
fn data_error(name: Option<&Path>, message: impl fmt::Display) -> Error {
    match name {
        Some(path) => Error::Data(format!("{}: {message}", path.display())),
        None => Error::Data(message.to_string()),
    }
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

    /// Values held in memory as [`DType::I128`] (whatever they are: see [`Array::from_integers`]
    /// for the narrowest type); an error names the first outside `[-2^63, 2^64)`.
    pub fn from_i128(values: Vec<i128>) -> Result<Array> {
        if let Some(bad) = values.iter().find(|v| !(MIN_VALUE..=MAX_VALUE).contains(v)) {
            return Err(Error::Data(format!("{bad} is outside [-2^63, 2^64)")));
        }
        Ok(Array {
            len: values.len(),
            storage: Storage::Wide(values),
            offset: 0,
            dtype: DType::I128,
        })
    }

    /// Integers in the narrowest storage that holds them all: `i64`, else `u64` (none
    /// negative), else `i128`.
    pub fn from_integers(values: Integers) -> Result<Array> {
        match values {
            Integers::Narrow(values) => Ok(Array::from_i64(values)),
            Integers::Wide(values) if values.iter().all(|&v| v >= 0) => {
                match values.iter().map(|&v| u64::try_from(v)).collect() {
                    Ok(words) => Ok(Array::from_u64(words)),
                    Err(_) => Array::from_i128(values),
                }
            }
            Integers::Wide(values) => Array::from_i128(values),
        }
    }

    fn owned(words: Vec<u64>, dtype: DType) -> Array {
        Array {
            len: words.len(),
            storage: Storage::Words(words),
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
            Some(crate::index::file::EXTENSION) => Err(Error::Data(format!(
                "{}: is a saved value index, not an array: runs (-i) and --queries answer from \
                 it, and Python's divgpu.Index.load",
                path.display()
            ))),
            _ => Err(Error::Data(format!(
                "{}: unknown format: use .npy, .txt or .csv, or give --dtype for raw binary",
                path.display()
            ))),
        }
    }

    pub fn open_npy(path: &Path) -> Result<Array> {
        Array::npy(file::open(path)?, Some(path))
    }

    /// An `.npy` file's bytes, in memory.
    pub fn from_npy_bytes(bytes: Vec<u8>) -> Result<Array> {
        Array::npy(Contents::Read(bytes), None)
    }

    fn npy(contents: Contents, name: Option<&Path>) -> Result<Array> {
        let bytes = contents.bytes();
        let header = npy::parse_header(bytes).map_err(|e| data_error(name, e))?;
        let (len, dtype) = (header.len, header.dtype);
        let rest = bytes.len() - header.data_offset;
        // `parse_header` checked that this does not overflow
        let expected = len * dtype.width;
        if rest != expected {
            let what = if rest < expected {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(data_error(
                name,
                format_args!(
                    "{what}: the header says {len} elements of {dtype} ({expected} bytes) but {rest} bytes follow it"
                ),
            ));
        }
        Ok(Array {
            storage: Storage::File(contents),
            offset: header.data_offset,
            len,
            dtype,
        })
    }

    pub fn open_raw(path: &Path, dtype: DType) -> Result<Array> {
        Array::raw(file::open(path)?, dtype, Some(path))
    }

    /// Raw elements of `dtype` (a file dtype: width 1, 2, 4 or 8), in memory.
    pub fn from_raw_bytes(bytes: Vec<u8>, dtype: DType) -> Result<Array> {
        Array::raw(Contents::Read(bytes), dtype, None)
    }

    fn raw(contents: Contents, dtype: DType, name: Option<&Path>) -> Result<Array> {
        if !matches!(dtype.width, 1 | 2 | 4 | 8) {
            return Err(data_error(
                name,
                format_args!("raw elements of {dtype} are not read; use i8 ... u64"),
            ));
        }
        let bytes = contents.bytes().len();
        if !bytes.is_multiple_of(dtype.width) {
            return Err(data_error(
                name,
                format_args!(
                    "truncated: {bytes} bytes is not a whole number of {}-byte elements",
                    dtype.width
                ),
            ));
        }
        Ok(Array {
            len: bytes / dtype.width,
            storage: Storage::File(contents),
            offset: 0,
            dtype,
        })
    }

    pub fn open_text(path: &Path) -> Result<Array> {
        Array::from_integers(read_integer_lines(path)?)
    }

    /// Text of one integer per line, in memory; an error names the (1-based) line.
    pub fn from_text_bytes(text: &[u8]) -> Result<Array> {
        let values = parse_integer_lines(text)
            .map_err(|(line, e)| Error::Data(format!("line {line}: {e}")))?;
        Array::from_integers(values)
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

    /// The elements' bytes as stored; `None` for a strided array, whose elements are not
    /// one run of bytes.
    pub fn bytes(&self) -> Option<&[u8]> {
        let all: &[u8] = match &self.storage {
            Storage::File(contents) => contents.bytes(),
            Storage::Words(words) => bytemuck::cast_slice(words),
            Storage::Wide(values) => bytemuck::cast_slice(values),
            Storage::External(owner, None) => owner.bytes(),
            Storage::External(_, Some(_)) | Storage::Chunks { .. } => return None,
        };
        Some(&all[self.offset..self.offset + self.len * self.dtype.width])
    }

    /// An array over a caller's buffer, read in place (never copied whole): `shape` elements
    /// of `dtype` (width 1, 2, 4 or 8) in C order, `strides` bytes apart along each axis, the
    /// first at byte `first` of `owner`'s bytes. Any alignment; negative strides too. An error
    /// when an element would lie outside the bytes.
    pub fn from_external(
        owner: Box<dyn ExternalBytes>,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
        first: usize,
    ) -> Result<Array> {
        let w = dtype.width;
        let layout = || Error::Data("the buffer's shape and strides leave its bytes".to_string());
        if !matches!(w, 1 | 2 | 4 | 8) || shape.len() != strides.len() {
            return Err(Error::DType(format!("cannot read elements of {w} bytes")));
        }
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(layout)?;
        let size = owner.bytes().len();
        // C-contiguous: each axis's stride is the product of the later axes' lengths (any
        // stride for an axis of length 1); an empty array is contiguous whatever its strides
        let mut step = w as isize;
        let mut contiguous = true;
        for (&d, &s) in shape.iter().zip(strides).rev() {
            contiguous &= d == 1 || s == step;
            step = step.saturating_mul(d as isize);
        }
        if len == 0 || contiguous {
            let end = first.checked_add(len * w).ok_or_else(layout)?;
            if end > size {
                return Err(layout());
            }
            return Ok(Array {
                storage: Storage::External(owner, None),
                offset: first,
                len,
                dtype,
            });
        }
        // the lowest and highest byte any element takes
        let (mut lo, mut hi) = (first as i128, first as i128 + w as i128);
        for (&d, &s) in shape.iter().zip(strides) {
            let reach = (d as i128 - 1) * s as i128;
            if reach < 0 {
                lo += reach;
            } else {
                hi += reach;
            }
        }
        if lo < 0 || hi > size as i128 {
            return Err(layout());
        }
        Ok(Array {
            storage: Storage::External(
                owner,
                Some(Strides {
                    shape: shape.to_vec(),
                    strides: strides.to_vec(),
                    first,
                }),
            ),
            offset: 0,
            len,
            dtype,
        })
    }

    /// The arrays `parts`, all of `dtype`, as one array of their elements in order, read where
    /// they are (an Arrow chunked array's chunks). An error when a part is of another dtype.
    pub fn from_chunks(dtype: DType, parts: Vec<Array>) -> Result<Array> {
        if let Some(other) = parts.iter().find(|p| p.dtype != dtype) {
            return Err(Error::DType(format!(
                "the chunks of an array must share one dtype: {} and {}",
                dtype, other.dtype
            )));
        }
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0usize;
        for part in &parts {
            starts.push(len);
            len = len
                .checked_add(part.len)
                .ok_or_else(|| Error::Data("more elements than this machine can address".into()))?;
        }
        Ok(Array {
            storage: Storage::Chunks { parts, starts },
            offset: 0,
            len,
            dtype,
        })
    }

    /// An error when the file the array is mapped from changed since it was opened (see
    /// `MappedFile::check_unchanged`): then the answers may mix two files' elements. Call it
    /// after the answers are computed, before they are given; `Ok` for arrays not mapped.
    pub fn check_unchanged(&self) -> Result<()> {
        match &self.storage {
            Storage::File(Contents::Mapped(mapped)) => mapped.check_unchanged(),
            Storage::Chunks { parts, .. } => parts.iter().try_for_each(Array::check_unchanged),
            _ => Ok(()),
        }
    }

    /// Maps the first `bytes` of a memory-mapped array's file into the process now (see
    /// `MappedFile::populate`): a pass after it takes no page faults there. For a thread that
    /// would otherwise wait, as one does while another builds the divisor table. Nothing for
    /// arrays in memory.
    pub fn populate(&self, bytes: usize) {
        if let Storage::File(Contents::Mapped(mapped)) = &self.storage {
            mapped.populate(self.offset.saturating_add(bytes));
        }
    }

    /// For a [`DType::I128`] array, its negatives as an owned `i64` array and the rest as an
    /// owned `u64` array (each in the original order; a backend that takes 64-bit elements
    /// answers each part and adds the sums). `None` for every other dtype.
    pub fn split_sign(&self) -> Option<(Array, Array)> {
        let Storage::Wide(values) = &self.storage else {
            return None;
        };
        let negatives = values.iter().filter(|&&v| v < 0).map(|&v| v as i64);
        let rest = values.iter().filter(|&&v| v >= 0).map(|&v| v as u64);
        Some((
            Array::from_i64(negatives.collect()),
            Array::from_u64(rest.collect()),
        ))
    }

    /// The elements as `i64`s, without decoding, when that is how they are stored (a
    /// native-endian, aligned `i64` array: what numpy writes by default).
    pub fn native_i64(&self) -> Option<&[i64]> {
        self.native::<i64>()
    }

    /// The elements as `T`s, without decoding, when that is how they are stored: a contiguous,
    /// native-endian array of `T`, aligned for it.
    pub fn native<T: Element>(&self) -> Option<&[T]> {
        if self.dtype != T::DTYPE {
            return None;
        }
        bytemuck::try_cast_slice(self.bytes()?).ok()
    }

    /// Appends the elements in `range`, widened to `i128`, to `out`.
    pub fn decode_into(&self, range: Range<usize>, out: &mut Vec<i128>) {
        if let Storage::Wide(values) = &self.storage {
            out.extend_from_slice(&values[range]);
            return;
        }
        if let Storage::Chunks { parts, starts } = &self.storage {
            if range.is_empty() {
                return;
            }
            // the part that holds the range's first element, then each one after it
            let mut k = starts.partition_point(|&s| s <= range.start) - 1;
            let mut at = range.start;
            while at < range.end {
                let (part, start) = (&parts[k], starts[k]);
                let end = range.end.min(start + part.len);
                part.decode_into(at - start..end - start, out);
                at = end;
                k += 1;
            }
            return;
        }
        let w = self.dtype.width;
        if let Storage::External(owner, Some(strides)) = &self.storage {
            // gathered a block at a time into contiguous bytes, then decoded as those are
            let all = owner.bytes();
            let mut gathered = Vec::with_capacity(range.len() * w);
            strides.for_each_offset(range, |at| gathered.extend_from_slice(&all[at..at + w]));
            return decode_bytes(self.dtype, &gathered, out);
        }
        let bytes = &self.bytes().expect("not strided")[range.start * w..range.end * w];
        decode_bytes(self.dtype, bytes, out);
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

/// Appends `bytes`, elements of `dtype` one after another, widened to `i128`, to `out`.
fn decode_bytes(dtype: DType, bytes: &[u8], out: &mut Vec<i128>) {
    match (dtype.signed, dtype.width, dtype.big_endian) {
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
        _ => unreachable!("file dtypes are 1, 2, 4 or 8 bytes wide; i128s are Storage::Wide"),
    }
}

impl Strides {
    /// Calls `f` with the byte of each element in `range` (elements counted in C order).
    fn for_each_offset(&self, range: Range<usize>, mut f: impl FnMut(usize)) {
        let axes = self.shape.len();
        let mut index = vec![0usize; axes];
        let mut rest = range.start;
        let mut at = self.first as isize;
        for k in (0..axes).rev() {
            index[k] = rest % self.shape[k];
            rest /= self.shape[k];
            at += index[k] as isize * self.strides[k];
        }
        for _ in range {
            f(at as usize);
            // the next index, last axis fastest
            for k in (0..axes).rev() {
                index[k] += 1;
                at += self.strides[k];
                if index[k] < self.shape[k] {
                    break;
                }
                at -= self.strides[k] * self.shape[k] as isize;
                index[k] = 0;
            }
        }
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests;
