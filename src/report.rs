//! What a run prints: the `--json` object (a documented, stable struct) and the readable table.

use serde::Serialize;

use crate::gpu::AdapterSummary;
use crate::input::Integers;

/// The `--json` output: one object per run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One sum per threshold, in the order the thresholds were given. With `--backend both`,
    /// the CPU's.
    pub results: Vec<u64>,
    /// The thresholds as given.
    #[serde(serialize_with = "serialize_thresholds")]
    pub thresholds: Integers,
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

/// One line of `--queries`' output: a batch answered.
#[derive(Debug, Serialize)]
pub struct StreamAnswer<'a> {
    /// The batch's thresholds as given.
    #[serde(serialize_with = "serialize_thresholds")]
    pub thresholds: &'a Integers,
    /// One sum per threshold, in order (with `--backend both`, the CPU's, which the GPU's
    /// equal: a disagreement is a [`StreamError`]).
    pub results: &'a [u64],
}

/// One line of `--queries`' output: a line that was not answered.
#[derive(Debug, Serialize)]
pub struct StreamError<'a> {
    /// The line's number in the input, from 1 (blank lines counted).
    pub line: u64,
    pub error: &'a str,
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

impl std::fmt::Display for Mismatch {
    /// `--backend both`'s first disagreement, in words: the CLI's line and Python's error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backends disagree at threshold #{} ({}): gpu {} cpu {}",
            self.index, self.threshold, self.gpu, self.cpu
        )
    }
}

/// A threshold as a 64-bit integer, signed or not: every threshold is one, and 128-bit
/// formatting is several times slower (a million thresholds are printed in a run).
#[derive(Clone, Copy)]
enum Int64 {
    Signed(i64),
    Unsigned(u64),
}

impl Int64 {
    /// The sign and the magnitude.
    fn parts(self) -> (bool, u64) {
        match self {
            Int64::Signed(v) => (v < 0, v.unsigned_abs()),
            Int64::Unsigned(v) => (false, v),
        }
    }

    /// Characters in decimal.
    fn len(self) -> usize {
        let (negative, magnitude) = self.parts();
        usize::from(negative) + magnitude.checked_ilog10().map_or(1, |d| d as usize + 1)
    }

    /// The number in decimal at the end of `cell`, which has room for it.
    fn write_right(self, cell: &mut [u8]) {
        let (negative, mut n) = self.parts();
        let mut at = cell.len();
        while n >= 100 {
            let pair = 2 * (n % 100) as usize;
            n /= 100;
            at -= 2;
            cell[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = 2 * n as usize;
            at -= 2;
            cell[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            at -= 1;
            cell[at] = b'0' + n as u8;
        }
        if negative {
            cell[at - 1] = b'-';
        }
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

fn serialize_thresholds<S: serde::Serializer>(ts: &Integers, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Integers::Narrow(ts) => s.collect_seq(ts),
        Integers::Wide(ts) => s.collect_seq(ts.iter().map(|&t| Int64::from(t))),
    }
}

impl Comparison {
    pub fn new(thresholds: &Integers, gpu_results: Vec<u64>, cpu_results: Vec<u64>) -> Self {
        let first_mismatch = gpu_results
            .iter()
            .zip(&cpu_results)
            .position(|(g, c)| g != c)
            .map(|index| Mismatch {
                index,
                threshold: thresholds.get(index),
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
        use rayon::prelude::*;
        let widest = |header: &str, numbers: &[Option<Int64>]| {
            let len = numbers.iter().flatten().map(|&v| v.len()).max();
            len.unwrap_or(0).max(header.len())
        };
        let threshold = |i: usize| match &self.thresholds {
            Integers::Narrow(ts) => Int64::Signed(ts[i]),
            Integers::Wide(ts) => Int64::from(ts[i]),
        };
        // the widest threshold is the largest or, negative, the smallest
        let extremes = match &self.thresholds {
            Integers::Narrow(ts) => {
                [ts.par_iter().min(), ts.par_iter().max()].map(|t| t.map(|&t| Int64::Signed(t)))
            }
            Integers::Wide(ts) => {
                [ts.par_iter().min(), ts.par_iter().max()].map(|t| t.map(|&t| Int64::from(t)))
            }
        };
        let threshold_width = widest("threshold", &extremes);
        let largest = |header, results: &[u64]| {
            widest(
                header,
                &[results.par_iter().max().map(|&r| Int64::Unsigned(r))],
            )
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

/// Blank cells, copied under each row's numbers: room for three columns of the widest numbers
/// (-9223372036854775808 and 18446744073709551615 are 20 characters) two spaces apart.
const BLANK_ROW: &[u8; 64] = &[b' '; 64];

/// Two decimal digits for each of 0..100.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Right-aligned columns two spaces apart.
struct Table<'a> {
    widths: &'a [usize],
    /// Characters in a row before its mark: the cells and the spaces between them.
    row_width: usize,
}

impl Table<'_> {
    /// Rows are formatted this many at a time by one thread (tens of KB of text, which stay in
    /// cache until written).
    const ROWS_PER_PIECE: usize = 1 << 11;

    fn new(widths: &[usize]) -> Table<'_> {
        let row_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        Table { widths, row_width }
    }

    /// One row: blanks copied at once, then each number's digits written from the right end of
    /// its cell (a copy per cell and per pad costs more than the digits themselves).
    fn row(&self, line: &mut Vec<u8>, numbers: &[Int64], mark: &str) {
        let start = line.len();
        // all 64 blanks, then cut to the row's width: a copy of a known length is a few
        // vector stores, where one of the row's width was a call to memcpy for every row
        // (measured: docs/performance.md, "Measurements behind the code")
        line.extend_from_slice(BLANK_ROW);
        line.truncate(start + self.row_width);
        let row = &mut line[start..];
        let mut end = 0;
        for (i, (number, &w)) in numbers.iter().zip(self.widths).enumerate() {
            end += if i == 0 { w } else { w + 2 };
            number.write_right(&mut row[..end]);
        }
        if !mark.is_empty() {
            line.extend_from_slice(mark.as_bytes());
        }
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
        for (i, (name, &width)) in header.iter().zip(self.widths).enumerate() {
            let pad = if i == 0 { 0 } else { 2 } + width - name.len();
            line.extend_from_slice(&BLANK_ROW[..pad]);
            line.extend_from_slice(name.as_bytes());
        }
        line.push(b'\n');
        out.write_all(&line)?;
        let pieces = rows.div_ceil(Self::ROWS_PER_PIECE);
        let mut buffers = vec![Vec::new(); (4 * rayon::current_num_threads()).min(pieces)];
        for first in (0..pieces).step_by(buffers.len().max(1)) {
            buffers.par_iter_mut().enumerate().for_each(|(k, text)| {
                text.clear();
                let start = (first + k) * Self::ROWS_PER_PIECE;
                for i in start..(start + Self::ROWS_PER_PIECE).min(rows) {
                    let (numbers, mark) = row(i);
                    self.row(text, &numbers, mark);
                }
            });
            for text in &buffers {
                out.write_all(text)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digits written into a row against the standard library's formatting.
    #[test]
    fn numbers_are_written_as_std_formats_them() {
        let signed = [
            i64::MIN,
            i64::MIN + 1,
            -100,
            -99,
            -10,
            -9,
            -1,
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            12345,
            i64::MAX,
        ];
        let unsigned = [
            0,
            7,
            10,
            99,
            100,
            999,
            1000,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ];
        let cases = signed
            .iter()
            .map(|&v| (Int64::Signed(v), v.to_string()))
            .chain(
                unsigned
                    .iter()
                    .map(|&v| (Int64::Unsigned(v), v.to_string())),
            );
        for (number, expected) in cases {
            assert_eq!(number.len(), expected.len(), "{expected}");
            let mut cell = vec![b'.'; 24];
            number.write_right(&mut cell);
            let written = String::from_utf8(cell).unwrap();
            assert_eq!(written, format!("{expected:.>24}"));
        }
    }

    fn report(thresholds: Vec<i128>, results: Vec<u64>, comparison: Option<Comparison>) -> Report {
        Report {
            results,
            thresholds: thresholds.into(),
            backend: "cpu",
            algorithm: "fast",
            adapter: None,
            elements: 0,
            threads: None,
            timings_ms: Timings::default(),
            comparison,
        }
    }

    #[test]
    fn columns_fit_their_widest_number_or_header() {
        let table = report(vec![5, -12, u64::MAX as i128], vec![1, 22, 333], None).table();
        let expected = concat!(
            "           threshold  result\n",
            "                   5       1\n",
            "                 -12      22\n",
            "18446744073709551615     333\n",
        );
        assert_eq!(table, expected);
        let table = report(vec![-1234567890], vec![7], None).table();
        assert_eq!(table, "  threshold  result\n-1234567890       7\n");
    }

    #[test]
    fn a_comparison_marks_the_rows_that_differ() {
        let comparison = Comparison::new(&[3, 40].into(), vec![1, 123456], vec![1, 2]);
        let table = report(vec![3, 40], vec![1, 2], Some(comparison)).table();
        assert_eq!(
            table,
            "threshold     gpu  cpu\n        3       1    1\n       40  123456    2  MISMATCH\n"
        );
    }

    /// The widest rows there are, three columns of 20 characters (the whole blank row), and
    /// narrow ones under them, against `format!`'s own padding.
    #[test]
    fn the_widest_rows_fill_the_blank_row() {
        let thresholds = vec![i128::from(i64::MIN), 7, -5];
        let (gpu, cpu) = (vec![u64::MAX, 0, 12], vec![u64::MAX - 1, 0, 12]);
        let comparison = Comparison::new(&thresholds.as_slice().into(), gpu.clone(), cpu.clone());
        let table = report(thresholds.clone(), cpu.clone(), Some(comparison)).table();
        let mut expected = format!("{:>20}  {:>20}  {:>20}\n", "threshold", "gpu", "cpu");
        for ((t, g), c) in thresholds.iter().zip(&gpu).zip(&cpu) {
            let mark = if g == c { "" } else { "  MISMATCH" };
            expected += &format!("{t:>20}  {g:>20}  {c:>20}{mark}\n");
        }
        assert_eq!(table, expected);
        assert_eq!(table.lines().next().unwrap().len(), BLANK_ROW.len());
    }

    /// Rows past one piece of parallel formatting come out complete and in order.
    #[test]
    fn many_rows_stay_in_order() {
        let rows = 3 * Table::ROWS_PER_PIECE + 17;
        let thresholds: Vec<i128> = (0..rows as i128).map(|t| t * 7 - 1000).collect();
        let results: Vec<u64> = (0..rows as u64).map(|r| r * r).collect();
        let table = report(thresholds.clone(), results.clone(), None).table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), rows + 1);
        for (line, (t, r)) in lines[1..].iter().zip(thresholds.iter().zip(&results)) {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells, [t.to_string(), r.to_string()]);
        }
    }
}
