//! What a run prints: the `--json` object (a documented, stable struct) and the readable table.

use serde::Serialize;

use crate::gpu::AdapterSummary;

/// The `--json` output: one object per run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One sum per threshold, in the order the thresholds were given. With `--backend both`,
    /// the CPU's.
    pub results: Vec<u64>,
    /// The thresholds as given.
    #[serde(serialize_with = "serialize_thresholds")]
    pub thresholds: Vec<i128>,
    /// `"gpu"`, `"cpu"` or `"both"`: the backend that ran (`auto` resolved).
    pub backend: &'static str,
    /// `"fast"` or `"naive"`.
    pub algorithm: &'static str,
    /// The adapter that ran the GPU part; `null` when only the CPU ran.
    pub adapter: Option<AdapterSummary>,
    /// Elements in the array.
    pub elements: usize,
    /// CPU threads used; `null` when only the GPU ran.
    pub threads: Option<usize>,
    pub timings_ms: Timings,
    /// With `--backend both`: both backends' results and the first disagreement, if any.
    pub comparison: Option<Comparison>,
}

/// Wall-clock milliseconds of each phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Timings {
    /// Reading, mapping or generating the array and reading the thresholds.
    pub load: f64,
    /// Opening the device and uploading the array (0 on the CPU).
    pub upload: f64,
    /// The queries themselves (GPU and CPU added up with `--backend both`).
    pub compute: f64,
    /// Copying the sums back from the GPU (0 on the CPU).
    pub readback: f64,
    /// The GPU's own time for the compute passes, by timestamp queries (part of `compute`);
    /// `null` when only the CPU ran or the adapter has no timestamp queries.
    pub gpu_passes: Option<f64>,
    /// The whole run, start to finish.
    pub total: f64,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub gpu_results: Vec<u64>,
    pub cpu_results: Vec<u64>,
    /// `null` when the backends agree on every threshold.
    pub first_mismatch: Option<Mismatch>,
}

#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub index: usize,
    #[serde(serialize_with = "serialize_threshold")]
    pub threshold: i128,
    pub gpu: u64,
    pub cpu: u64,
}

/// A threshold as a 64-bit integer, signed or not: every threshold is one, and 128-bit
/// formatting is several times slower (a million thresholds are printed in a run).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Int64 {
    Signed(i64),
    Unsigned(u64),
}

impl Int64 {
    fn format(self, buffer: &mut itoa::Buffer) -> &str {
        match self {
            Int64::Signed(v) => buffer.format(v),
            Int64::Unsigned(v) => buffer.format(v),
        }
    }

    fn wide(self) -> i128 {
        match self {
            Int64::Signed(v) => v.into(),
            Int64::Unsigned(v) => v.into(),
        }
    }
}

impl Ord for Int64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.wide().cmp(&other.wide())
    }
}

impl PartialOrd for Int64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl From<i128> for Int64 {
    fn from(v: i128) -> Self {
        match i64::try_from(v) {
            Ok(v) => Int64::Signed(v),
            Err(_) => Int64::Unsigned(v as u64),
        }
    }
}

impl Serialize for Int64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Int64::Signed(v) => s.serialize_i64(v),
            Int64::Unsigned(v) => s.serialize_u64(v),
        }
    }
}

fn serialize_threshold<S: serde::Serializer>(t: &i128, s: S) -> Result<S::Ok, S::Error> {
    Int64::from(*t).serialize(s)
}

fn serialize_thresholds<S: serde::Serializer>(ts: &[i128], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ts.iter().map(|&t| Int64::from(t)))
}

impl Comparison {
    pub fn new(thresholds: &[i128], gpu_results: Vec<u64>, cpu_results: Vec<u64>) -> Self {
        let first_mismatch = gpu_results
            .iter()
            .zip(&cpu_results)
            .position(|(g, c)| g != c)
            .map(|index| Mismatch {
                index,
                threshold: thresholds[index],
                gpu: gpu_results[index],
                cpu: cpu_results[index],
            });
        Comparison {
            gpu_results,
            cpu_results,
            first_mismatch,
        }
    }
}

impl Report {
    /// The readable form: one row per threshold.
    pub fn table(&self) -> String {
        let mut out = Vec::new();
        self.write_table(&mut out)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the table is ASCII")
    }

    /// [`Report::table`], written in pieces (no copy of the whole table in memory), formatted
    /// on every thread of the current rayon pool. Each column is as wide as its header or its
    /// widest number.
    pub fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut text = itoa::Buffer::new();
        let mut widest = |header: &str, numbers: &mut dyn Iterator<Item = Int64>| {
            numbers
                .map(|v| v.format(&mut text).len())
                .max()
                .unwrap_or(0)
                .max(header.len())
        };
        let threshold = |i: usize| Int64::from(self.thresholds[i]);
        let thresholds = || self.thresholds.iter().map(|&t| Int64::from(t));
        // the widest threshold is the largest or, negative, the smallest
        let extremes = [thresholds().min(), thresholds().max()];
        let threshold_width = widest("threshold", &mut extremes.into_iter().flatten());
        let mut largest = |header, results: &[u64]| {
            let max = results.iter().max().map(|&r| Int64::Unsigned(r));
            widest(header, &mut max.into_iter())
        };
        let rows = self.thresholds.len();
        match &self.comparison {
            None => {
                let widths = [threshold_width, largest("result", &self.results)];
                let table = Table::new(&widths);
                table.write(out, &["threshold", "result"], rows, |i| {
                    ([threshold(i), Int64::Unsigned(self.results[i])], "")
                })
            }
            Some(cmp) => {
                let widths = [
                    threshold_width,
                    largest("gpu", &cmp.gpu_results),
                    largest("cpu", &cmp.cpu_results),
                ];
                let table = Table::new(&widths);
                table.write(out, &["threshold", "gpu", "cpu"], rows, |i| {
                    let (g, c) = (cmp.gpu_results[i], cmp.cpu_results[i]);
                    let mark = if g == c { "" } else { "  MISMATCH" };
                    ([threshold(i), Int64::Unsigned(g), Int64::Unsigned(c)], mark)
                })
            }
        }
    }
}

/// Padding for right-aligned cells: a column is at most 20 characters wide (the widest numbers,
/// -9223372036854775808 and 18446744073709551615) or its header, plus 2 between columns.
const SPACES: &[u8; 24] = b"                        ";

/// Right-aligned columns two spaces apart.
struct Table<'a> {
    widths: &'a [usize],
}

impl Table<'_> {
    /// Rows are formatted this many at a time by one thread (about 300 KB of text).
    const ROWS_PER_PIECE: usize = 1 << 14;

    fn new(widths: &[usize]) -> Table<'_> {
        Table { widths }
    }

    fn cells<'t>(&self, line: &mut Vec<u8>, cells: impl Iterator<Item = &'t str>, mark: &str) {
        for (i, (text, &width)) in cells.zip(self.widths).enumerate() {
            let pad = if i == 0 { 0 } else { 2 } + width.saturating_sub(text.len());
            line.extend_from_slice(&SPACES[..pad]);
            line.extend_from_slice(text.as_bytes());
        }
        line.extend_from_slice(mark.as_bytes());
        line.push(b'\n');
    }

    /// The header, then rows `0..rows` as `row` gives their numbers and end mark: pieces of
    /// rows formatted in parallel, written in order, each batch's buffers reused by the next.
    fn write<const N: usize>(
        &self,
        out: &mut dyn std::io::Write,
        header: &[&str; N],
        rows: usize,
        row: impl Fn(usize) -> ([Int64; N], &'static str) + Sync,
    ) -> std::io::Result<()> {
        use rayon::prelude::*;
        let mut line = Vec::new();
        self.cells(&mut line, header.iter().copied(), "");
        out.write_all(&line)?;
        let pieces = rows.div_ceil(Self::ROWS_PER_PIECE);
        let mut buffers = vec![Vec::new(); (4 * rayon::current_num_threads()).min(pieces)];
        for first in (0..pieces).step_by(buffers.len().max(1)) {
            buffers.par_iter_mut().enumerate().for_each(|(k, text)| {
                text.clear();
                let start = (first + k) * Self::ROWS_PER_PIECE;
                let mut digits: [itoa::Buffer; N] = std::array::from_fn(|_| itoa::Buffer::new());
                for i in start..(start + Self::ROWS_PER_PIECE).min(rows) {
                    let (numbers, mark) = row(i);
                    let cells = numbers.iter().zip(&mut digits).map(|(v, d)| v.format(d));
                    self.cells(text, cells, mark);
                }
            });
            for text in &buffers {
                out.write_all(text)?;
            }
        }
        Ok(())
    }
}
