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

    /// [`Report::table`], written row by row (no copy of the whole table in memory). Each
    /// column is as wide as its header or its widest number.
    pub fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut text = itoa::Buffer::new();
        let mut widest = |header: &str, numbers: &mut dyn Iterator<Item = Int64>| {
            numbers
                .map(|v| v.format(&mut text).len())
                .max()
                .unwrap_or(0)
                .max(header.len())
        };
        let thresholds = || self.thresholds.iter().map(|&t| Int64::from(t));
        // the widest threshold is the largest or, negative, the smallest
        let extremes = [thresholds().min(), thresholds().max()];
        let threshold_width = widest("threshold", &mut extremes.into_iter().flatten());
        let mut largest = |header, results: &[u64]| {
            let max = results.iter().max().map(|&r| Int64::Unsigned(r));
            widest(header, &mut max.into_iter())
        };
        let mut table = Table::new(out);
        match &self.comparison {
            None => {
                let widths = [threshold_width, largest("result", &self.results)];
                table.header(&["threshold", "result"], &widths)?;
                for (t, &r) in thresholds().zip(&self.results) {
                    table.row(&[t, Int64::Unsigned(r)], &widths, "")?;
                }
            }
            Some(cmp) => {
                let widths = [
                    threshold_width,
                    largest("gpu", &cmp.gpu_results),
                    largest("cpu", &cmp.cpu_results),
                ];
                table.header(&["threshold", "gpu", "cpu"], &widths)?;
                for ((t, &g), &r) in thresholds().zip(&cmp.gpu_results).zip(&cmp.cpu_results) {
                    let mark = if g == r { "" } else { "  MISMATCH" };
                    table.row(&[t, Int64::Unsigned(g), Int64::Unsigned(r)], &widths, mark)?;
                }
            }
        }
        table.finish()
    }
}

/// Right-aligned columns two spaces apart, built in a buffer of about 64 KiB that is written
/// whenever it fills (a million rows cost one `write` per ~3,000 of them).
struct Table<'a> {
    out: &'a mut dyn std::io::Write,
    buffer: Vec<u8>,
    text: itoa::Buffer,
}

impl<'a> Table<'a> {
    const FLUSH_AT: usize = 1 << 16;

    fn new(out: &'a mut dyn std::io::Write) -> Self {
        Table {
            out,
            buffer: Vec::with_capacity(Self::FLUSH_AT + 256),
            text: itoa::Buffer::new(),
        }
    }

    fn cell(buffer: &mut Vec<u8>, first: bool, width: usize, text: &str) {
        let pad = if first { 0 } else { 2 } + width.saturating_sub(text.len());
        buffer.resize(buffer.len() + pad, b' ');
        buffer.extend_from_slice(text.as_bytes());
    }

    fn header(&mut self, names: &[&str], widths: &[usize]) -> std::io::Result<()> {
        for (i, (name, &width)) in names.iter().zip(widths).enumerate() {
            Self::cell(&mut self.buffer, i == 0, width, name);
        }
        self.end_row("")
    }

    fn row(&mut self, cells: &[Int64], widths: &[usize], mark: &str) -> std::io::Result<()> {
        for (i, (cell, &width)) in cells.iter().zip(widths).enumerate() {
            Self::cell(&mut self.buffer, i == 0, width, cell.format(&mut self.text));
        }
        self.end_row(mark)
    }

    fn end_row(&mut self, mark: &str) -> std::io::Result<()> {
        self.buffer.extend_from_slice(mark.as_bytes());
        self.buffer.push(b'\n');
        if self.buffer.len() >= Self::FLUSH_AT {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        self.out.write_all(&self.buffer)
    }
}


