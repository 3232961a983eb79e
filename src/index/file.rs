//! The index file (`.divi`): a value index saved once and then mapped, not parsed, by any
//! number of processes, which share one copy of it in the page cache.
//!
//! Layout (every integer little-endian, every section aligned to 64 bytes; `docs/index-file.md`
//! is the reference):
//!
//! ```text
//! header    128 bytes: magic "DIVGPUIX", version, the array's dtype, its element count,
//!           the distinct values D, the key width and offset, each section's offset, the file's
//!           length, the total sum, CRC-32s of the fences and the block checks, and a CRC-32
//!           of the header itself
//! keys      D keys (value - offset), ascending, at the key width (4, 8 or 16 bytes)
//! sums      D u64 running sums: sums[i] = the sum of c(x) over the elements <= value i
//! fences    for each block of BLOCK values, its first key (16 bytes) and first sum (8)
//! checks    one CRC-32 per block, over its keys' bytes and then its sums' bytes
//! tail      magic "DIVGPUIX" again: a file cut short ends without it
//! ```
//!
//! What is checked when: the header, the fences and the checks' own CRC on open (a few KB for
//! 10^7 values); each block of keys and sums when a threshold first reads it, by its CRC and by
//! what the block must be (keys and sums strictly ascending, its first key and sum its fence's,
//! below the next fence's, every value inside the dtype, the last sum the header's total), so
//! that every file that loads answers monotonically, as the array it was built from did. A full check of a multi-GB file
//! on every open would cost seconds, and a batch reads one block per threshold. Damage is an
//! error, never a number: a block that fails stays failed.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};
use crate::input::{self, DType};

/// The extension of an index file: `divgpu -i FILE.divi` answers from it.
pub const EXTENSION: &str = "divi";
/// The first 8 bytes of the file, and its last 8.
pub const MAGIC: [u8; 8] = *b"DIVGPUIX";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Header bytes.
const HEADER: usize = 128;
/// Values per checked block: 4 KiB values, 48 to 96 KiB of keys and sums.
pub const BLOCK: usize = 4096;
/// Section alignment.
const ALIGN: usize = 64;
/// Bytes a fence takes: a key of any width, and a sum.
const FENCE: usize = 24;

/// Set to `index-before-rename` (tests only): the process aborts after the file is written and
/// synced, before it is renamed into place, as a crash would.
pub const FAILPOINT_VAR: &str = "DIVGPU_FAILPOINT";

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Where each section starts, from the counts alone: the writer's plan and the reader's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    keys: usize,
    sums: usize,
    fences: usize,
    checks: usize,
    len: usize,
}

impl Layout {
    fn of(distinct: usize, key_width: usize) -> Option<Layout> {
        let blocks = distinct.div_ceil(BLOCK);
        let keys = HEADER;
        let sums = align(keys.checked_add(distinct.checked_mul(key_width)?)?);
        let fences = align(sums.checked_add(distinct.checked_mul(8)?)?);
        let checks = align(fences.checked_add(blocks.checked_mul(FENCE)?)?);
        let len = checks.checked_add(blocks.checked_mul(4)?)? + MAGIC.len();
        Some(Layout {
            keys,
            sums,
            fences,
            checks,
            len,
        })
    }
}

/// How a dtype's values are keyed: the key width and the offset (`key = value - offset`), so
/// that keys are unsigned and compare as the values do.
pub(crate) fn key_layout(dtype: DType) -> (usize, i128) {
    match dtype.width {
        16 => (16, i128::from(i64::MIN)),
        8 if dtype.signed => (8, i128::from(i64::MIN)),
        8 => (8, 0),
        _ if dtype.signed => (4, i128::from(i32::MIN)),
        _ => (4, 0),
    }
}

/// The smallest and largest value of `dtype` (an `i128` array: `[-2^63, 2^64)`).
fn dtype_range(dtype: DType) -> (i128, i128) {
    match (dtype.width, dtype.signed) {
        (16, _) => (input::MIN_VALUE, input::MAX_VALUE),
        (w, true) => (-(1i128 << (8 * w - 1)), (1i128 << (8 * w - 1)) - 1),
        (w, false) => (0, (1i128 << (8 * w)) - 1),
    }
}

/// What a saved index says of itself.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub dtype: DType,
    pub elements: u64,
    pub distinct: u64,
}

/// Writes the index of `meta.distinct` values, given twice as `(value, running sum)` in
/// ascending order by `entries` (once for the keys, once for the sums), to `path`: a temporary
/// file in the same folder, synced, then renamed over `path`, and the folder synced. A reader
/// sees the old file or the new one, never part of one. Returns the file's
/// [`IndexFile::fingerprint`].
pub fn write<I>(path: &Path, meta: Meta, entries: impl Fn() -> I) -> Result<u32>
where
    I: Iterator<Item = (i128, u64)>,
{
    let io = |e: std::io::Error| Error::io(path, e);
    let distinct = usize::try_from(meta.distinct).map_err(|_| Error::Data("too large".into()))?;
    let (key_width, offset) = key_layout(meta.dtype);
    let layout = Layout::of(distinct, key_width)
        .ok_or_else(|| Error::Data(format!("{}: an index this large", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".divgpu-index-").suffix(".tmp");
    // as any new file (0666 less the umask), not the temporary file's private 0600: other
    // users' processes map the index too
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let temp = builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut body = Body {
        out: BufWriter::with_capacity(1 << 20, temp.as_file()),
        at: 0,
        path,
    };
    body.pad_to(HEADER)?;
    let (total, fences, checks) = body.sections(meta, layout, entries)?;
    let header = Header {
        dtype: meta.dtype,
        key_width,
        elements: meta.elements,
        distinct: meta.distinct,
        offset,
        layout,
        total,
        fences_crc: crc32fast::hash(&fences),
        checks_crc: crc32fast::hash(&checks),
    };
    let encoded = header.encode();
    let mut out = body.into_out();
    out.seek(SeekFrom::Start(0)).map_err(io)?;
    out.write_all(&encoded).map_err(io)?;
    out.flush().map_err(io)?;
    drop(out);
    temp.as_file().sync_all().map_err(io)?;
    if std::env::var(FAILPOINT_VAR).is_ok_and(|v| v == "index-before-rename") {
        std::process::abort();
    }
    temp.persist(path).map_err(|e| io(e.error))?;
    // the rename itself is durable once the folder is synced
    #[cfg(unix)]
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(&dir, e))?;
    Ok(u32_at(&encoded, 124))
}

/// An index file being written after its header, a section at a time, at `at` bytes.
struct Body<'p, W: Write> {
    out: W,
    at: usize,
    path: &'p Path,
}

impl<W: Write> Body<'_, W> {
    fn into_out(self) -> W {
        self.out
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(self.path, e))?;
        self.at += bytes.len();
        Ok(())
    }

    /// Zeros up to the next section, at `to`.
    fn pad_to(&mut self, to: usize) -> Result<()> {
        self.put(&vec![0u8; to - self.at])
    }

    /// Every section after the header: keys, sums, fences, checks, and the tail's magic, at
    /// `layout`'s offsets. Returns the total sum and the fences' and checks' bytes (the
    /// header's CRCs cover them).
    fn sections<I>(
        &mut self,
        meta: Meta,
        layout: Layout,
        entries: impl Fn() -> I,
    ) -> Result<(u64, Vec<u8>, Vec<u8>)>
    where
        I: Iterator<Item = (i128, u64)>,
    {
        let distinct = meta.distinct as usize;
        let mut hashers: Vec<crc32fast::Hasher> =
            vec![crc32fast::Hasher::new(); distinct.div_ceil(BLOCK)];
        let (total, first_keys) = self.keys(meta, entries(), &mut hashers)?;
        self.pad_to(layout.sums)?;
        let mut first_sums = Vec::with_capacity(hashers.len());
        for (i, (_, sum)) in entries().enumerate() {
            let bytes = sum.to_le_bytes();
            self.put(&bytes)?;
            hashers[i / BLOCK].update(&bytes);
            if i % BLOCK == 0 {
                first_sums.push(sum);
            }
        }
        // each fence: its block's first key (16 bytes), then its first sum
        let fences: Vec<u8> = first_keys
            .chunks_exact(16)
            .zip(&first_sums)
            .flat_map(|(key, sum)| key.iter().copied().chain(sum.to_le_bytes()))
            .collect();
        self.pad_to(layout.fences)?;
        self.put(&fences)?;
        self.pad_to(layout.checks)?;
        let checks: Vec<u8> = hashers
            .into_iter()
            .flat_map(|h| h.finalize().to_le_bytes())
            .collect();
        self.put(&checks)?;
        self.put(&MAGIC)?;
        debug_assert_eq!(self.at, layout.len);
        Ok((total, fences, checks))
    }

    /// The keys section: each value's key at the dtype's key width, into its block's hasher.
    /// Returns the last running sum (the total) and each block's first key (16 bytes each).
    fn keys(
        &mut self,
        meta: Meta,
        entries: impl Iterator<Item = (i128, u64)>,
        hashers: &mut [crc32fast::Hasher],
    ) -> Result<(u64, Vec<u8>)> {
        let (key_width, offset) = key_layout(meta.dtype);
        let distinct = meta.distinct as usize;
        let unfit = |what: String| Error::Data(format!("{}: {what}", self.path.display()));
        let mut first_keys = Vec::with_capacity(hashers.len() * 16);
        let (mut count, mut total) = (0usize, 0u64);
        for (i, (value, sum)) in entries.enumerate() {
            let key = u128::try_from(value - offset)
                .ok()
                .filter(|k| key_width == 16 || *k >> (8 * key_width) == 0)
                .ok_or_else(|| unfit(format!("{value} is not a value of {}", meta.dtype)))?;
            let bytes = key.to_le_bytes();
            hashers
                .get_mut(i / BLOCK)
                .ok_or_else(|| unfit(format!("the index gave more than {distinct} values")))?
                .update(&bytes[..key_width]);
            self.put(&bytes[..key_width])?;
            if i % BLOCK == 0 {
                first_keys.extend_from_slice(&bytes);
            }
            count += 1;
            total = sum;
        }
        if count != distinct {
            return Err(unfit(format!(
                "the index gave {count} values, not {distinct}"
            )));
        }
        Ok((total, first_keys))
    }
}

#[derive(Clone, Copy, Debug)]
struct Header {
    dtype: DType,
    key_width: usize,
    elements: u64,
    distinct: u64,
    offset: i128,
    layout: Layout,
    total: u64,
    fences_crc: u32,
    checks_crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER as u32).to_le_bytes());
        h[16] = u8::from(self.dtype.signed);
        h[17] = self.dtype.width as u8;
        h[18] = self.key_width as u8;
        h[20..24].copy_from_slice(&(BLOCK as u32).to_le_bytes());
        h[24..32].copy_from_slice(&self.elements.to_le_bytes());
        h[32..40].copy_from_slice(&self.distinct.to_le_bytes());
        h[40..56].copy_from_slice(&self.offset.to_le_bytes());
        let l = self.layout;
        for (at, v) in [
            (56, l.keys),
            (64, l.sums),
            (72, l.fences),
            (80, l.checks),
            (88, l.len),
        ] {
            h[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
        }
        h[96..104].copy_from_slice(&self.total.to_le_bytes());
        h[104..108].copy_from_slice(&self.fences_crc.to_le_bytes());
        h[108..112].copy_from_slice(&self.checks_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..124]);
        h[124..128].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The header at the start of `b`, checked: the magic, the version, its own CRC, and that
    /// its fields agree with each other and with the layout its counts give. `Err` says what
    /// is wrong.
    fn decode(b: &[u8]) -> std::result::Result<Header, String> {
        if b.len() < MAGIC.len() || b[..MAGIC.len()] != MAGIC {
            return Err("not a divgpu index file (it does not start with DIVGPUIX)".into());
        }
        if b.len() < HEADER {
            let len = b.len();
            return Err(format!("truncated: {len} bytes, shorter than the header"));
        }
        let version = u32_at(b, 8);
        if version > VERSION {
            return Err(format!(
                "index format version {version} is newer than this divgpu reads (version \
                 {VERSION}): use a newer divgpu, or save the index again with this one"
            ));
        }
        if crc32fast::hash(&b[..124]) != u32_at(b, 124) {
            return Err("the header is damaged (its checksum does not match)".into());
        }
        if version != VERSION || u32_at(b, 12) as usize != HEADER {
            return Err(format!(
                "index format version {version} is not one this divgpu reads"
            ));
        }
        let width = usize::from(b[17]);
        let dtype = DType {
            signed: b[16] != 0,
            width,
            big_endian: false,
        };
        let (key_width, elements, distinct) = (usize::from(b[18]), u64_at(b, 24), u64_at(b, 32));
        let offset = i128::from_le_bytes(b[40..56].try_into().expect("16 bytes"));
        let total = u64_at(b, 96);
        let consistent = b[16] <= 1
            && matches!(width, 1 | 2 | 4 | 8 | 16)
            && (dtype.signed || width != 16)
            && key_layout(dtype) == (key_width, offset)
            && u32_at(b, 20) as usize == BLOCK
            && distinct <= elements
            && (distinct == 0) == (elements == 0 && total == 0);
        let layout = usize::try_from(distinct)
            .ok()
            .and_then(|d| Layout::of(d, key_width))
            .filter(|_| consistent)
            .ok_or("the header is inconsistent")?;
        let recorded = [56, 64, 72, 80, 88].map(|at| u64_at(b, at));
        let l = layout;
        if recorded != [l.keys, l.sums, l.fences, l.checks, l.len].map(|v| v as u64) {
            return Err("the header is inconsistent".into());
        }
        Ok(Header {
            dtype,
            key_width,
            elements,
            distinct,
            offset,
            layout,
            total,
            fences_crc: u32_at(b, 104),
            checks_crc: u32_at(b, 108),
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Each block's fence (its first key and sum), and each block's CRC.
type BlockIndex = (Vec<(u128, u64)>, Vec<u32>);

/// The fences (each block's first key and sum) and the blocks' CRCs of a file whose header and
/// length were checked: both sections checked by the header's CRCs, the fences ascending.
fn block_index(b: &[u8], header: &Header) -> std::result::Result<BlockIndex, String> {
    let layout = header.layout;
    let blocks = (header.distinct as usize).div_ceil(BLOCK);
    let fence_bytes = &b[layout.fences..layout.fences + blocks * FENCE];
    let check_bytes = &b[layout.checks..layout.checks + blocks * 4];
    if crc32fast::hash(fence_bytes) != header.fences_crc
        || crc32fast::hash(check_bytes) != header.checks_crc
    {
        return Err("the block index is damaged (its checksum does not match)".into());
    }
    let fences: Vec<(u128, u64)> = fence_bytes
        .chunks_exact(FENCE)
        .map(|f| {
            let key = u128::from_le_bytes(f[..16].try_into().expect("16 bytes"));
            (key, u64_at(f, 16))
        })
        .collect();
    if fences
        .windows(2)
        .any(|w| w[0].0 >= w[1].0 || w[0].1 >= w[1].1)
    {
        return Err("the block index is out of order".into());
    }
    let checks = check_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Ok((fences, checks))
}

/// A block not looked at yet, checked good, or found damaged.
const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const DAMAGED: u8 = 2;

/// The file's bytes: mapped (registered for the SIGBUS message), or held (tests, fuzzing).
enum Bytes {
    File(input::FileContents),
    Held(Vec<u8>),
}

/// A saved index, mapped: see the module's documentation.
pub struct IndexFile {
    bytes: Bytes,
    name: String,
    header: Header,
    fences: Vec<(u128, u64)>,
    checks: Vec<u32>,
    state: Box<[AtomicU8]>,
}

impl std::fmt::Debug for IndexFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexFile")
            .field("name", &self.name)
            .field("header", &self.header)
            .finish()
    }
}

impl IndexFile {
    /// Maps and checks the file at `path` (see the module's documentation for what is checked
    /// now and what later).
    pub fn open(path: &Path) -> Result<IndexFile> {
        let contents = input::open_file(path)?;
        IndexFile::parse(Bytes::File(contents), path.display().to_string())
    }

    /// An index file's bytes, held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<IndexFile> {
        IndexFile::parse(Bytes::Held(bytes), "index file".to_string())
    }

    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::File(c) => c.bytes(),
            Bytes::Held(b) => b,
        }
    }

    fn parse(bytes: Bytes, name: String) -> Result<IndexFile> {
        let b: &[u8] = match &bytes {
            Bytes::File(c) => c.bytes(),
            Bytes::Held(b) => b,
        };
        let bad = |why: String| Error::Data(format!("{name}: {why}"));
        let header = Header::decode(b).map_err(bad)?;
        let len = header.layout.len;
        if b.len() < len {
            return Err(bad(format!("truncated: {} bytes of {len}", b.len())));
        }
        if b.len() != len || b[len - MAGIC.len()..] != MAGIC {
            return Err(bad(format!(
                "{} bytes where the header says {len}: not the file that was saved",
                b.len(),
            )));
        }
        let (fences, checks) = block_index(b, &header).map_err(bad)?;
        Ok(IndexFile {
            state: (0..fences.len())
                .map(|_| AtomicU8::new(UNCHECKED))
                .collect(),
            bytes,
            name,
            header,
            fences,
            checks,
        })
    }

    /// The header's CRC-32. It covers the CRCs of the fences and of every block's check, so
    /// two files that differ anywhere differ in it, but for a chance of 1 in 2^32: a process
    /// handed a file's path and fingerprint (a pickled `divgpu.Index`) knows whether the file
    /// it opens is the one meant.
    pub fn fingerprint(&self) -> u32 {
        u32_at(self.bytes(), 124)
    }

    /// The saved array's dtype, element count and distinct values.
    pub fn meta(&self) -> Meta {
        Meta {
            dtype: self.header.dtype,
            elements: self.header.elements,
            distinct: self.header.distinct,
        }
    }

    /// Bytes the file takes (mapped: shared with every process that maps it).
    pub fn bytes_len(&self) -> u64 {
        self.header.layout.len as u64
    }

    fn key(&self, i: usize) -> u128 {
        let w = self.header.key_width;
        let at = self.header.layout.keys + i * w;
        let mut bytes = [0u8; 16];
        bytes[..w].copy_from_slice(&self.bytes()[at..at + w]);
        u128::from_le_bytes(bytes)
    }

    fn sum(&self, i: usize) -> u64 {
        u64_at(self.bytes(), self.header.layout.sums + i * 8)
    }

    /// Checks block `b` once (by its checksum and its order); an error, every time, for a
    /// damaged one.
    fn check(&self, b: usize) -> Result<()> {
        match self.state[b].load(Ordering::Acquire) {
            GOOD => return Ok(()),
            DAMAGED => return Err(self.damaged(b)),
            _ => {}
        }
        let h = &self.header;
        let start = b * BLOCK;
        let end = (start + BLOCK).min(h.distinct as usize);
        let bytes = self.bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[h.layout.keys + start * h.key_width..h.layout.keys + end * h.key_width]);
        crc.update(&bytes[h.layout.sums + start * 8..h.layout.sums + end * 8]);
        let (lo, hi) = dtype_range(h.dtype);
        let in_range = |k: u128| {
            let v = k as i128 + h.offset;
            (lo..=hi).contains(&v)
        };
        let good = crc.finalize() == self.checks[b]
            && (self.key(start), self.sum(start)) == self.fences[b]
            && self
                .fences
                .get(b + 1)
                .is_none_or(|&(key, sum)| self.key(end - 1) < key && self.sum(end - 1) < sum)
            && (start..end).all(|i| in_range(self.key(i)))
            && (start + 1..end)
                .all(|i| self.key(i - 1) < self.key(i) && self.sum(i - 1) < self.sum(i))
            && self.sum(start) >= 1
            && (end != h.distinct as usize || self.sum(end - 1) == h.total);
        self.state[b].store(if good { GOOD } else { DAMAGED }, Ordering::Release);
        if good {
            Ok(())
        } else {
            Err(self.damaged(b))
        }
    }

    fn damaged(&self, b: usize) -> Error {
        Error::Data(format!(
            "{}: block {b} of the index is damaged (its checksum or order does not match); \
             save the index again",
            self.name
        ))
    }

    /// The sum of `c(x)` over the saved array's elements `x <= t`.
    pub fn at_most(&self, t: i128) -> Result<u64> {
        let Ok(k) = u128::try_from(t - self.header.offset) else {
            return Ok(0);
        };
        let blocks = self.fences.partition_point(|&(f, _)| f <= k);
        let Some(b) = blocks.checked_sub(1) else {
            return Ok(0);
        };
        self.check(b)?;
        let start = b * BLOCK;
        let end = (start + BLOCK).min(self.header.distinct as usize);
        // the block's first key is <= k, so at least one of its values is counted
        let (mut lo, mut hi) = (start + 1, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) <= k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(self.sum(lo - 1))
    }

    /// Every `(value, running sum)`, ascending, each block checked first: for saving a copy.
    pub fn entries(&self) -> Result<Vec<(i128, u64)>> {
        (0..self.state.len()).try_for_each(|b| self.check(b))?;
        Ok((0..self.header.distinct as usize)
            .map(|i| (self.key(i) as i128 + self.header.offset, self.sum(i)))
            .collect())
    }
}
