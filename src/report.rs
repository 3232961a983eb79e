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
#[derive(Clone, Copy)]
enum Int64 {
    Signed(i64),
    Unsigned(u64),
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

    /// [`Report::table`], written row by row (no copy of the whole table in memory).
    pub fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut line = String::with_capacity(4 * (WIDTH + 2));
        let mut row = |cells: &[&str], mark: &str| {
            line.clear();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(&SPACES[..WIDTH.saturating_sub(cell.len())]);
                line.push_str(cell);
            }
            line.push_str(mark);
            line.push('\n');
            out.write_all(line.as_bytes())
        };
        let (mut a, mut b, mut c) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        match &self.comparison {
            None => {
                row(&["threshold", "result"], "")?;
                for (&t, &r) in self.thresholds.iter().zip(&self.results) {
                    row(&[format_threshold(&mut a, t), b.format(r)], "")?;
                }
            }
            Some(cmp) => {
                row(&["threshold", "gpu", "cpu"], "")?;
                for ((&t, &g), &r) in self
                    .thresholds
                    .iter()
                    .zip(&cmp.gpu_results)
                    .zip(&cmp.cpu_results)
                {
                    let mark = if g == r { "" } else { "  MISMATCH" };
                    row(
                        &[format_threshold(&mut a, t), b.format(g), c.format(r)],
                        mark,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Width of a table column: the longest value, -9223372036854775808, is 20 characters.
const WIDTH: usize = 22;
/// Padding for right-aligned cells.
const SPACES: &str = "                      ";
const _: () = assert!(SPACES.len() == WIDTH);

/// A threshold in decimal without 128-bit formatting (every threshold fits i64 or u64).
fn format_threshold(buffer: &mut itoa::Buffer, t: i128) -> &str {
    match Int64::from(t) {
        Int64::Signed(v) => buffer.format(v),
        Int64::Unsigned(v) => buffer.format(v),
    }
}
