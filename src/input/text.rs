//! Integers as text, one per line: thresholds files, `.txt`/`.csv` arrays, `--thresholds`.

use std::path::Path;

use super::file::{self, Contents};
use super::{MAX_VALUE, MIN_VALUE};
use crate::error::{Error, Result};

/// Parses one integer in `[-2^63, 2^64)`, the range of every input element and threshold.
pub fn parse_integer(text: &str) -> std::result::Result<i128, String> {
    use std::num::IntErrorKind::{NegOverflow, PosOverflow};
    let text = text.trim();
    // The common case first: 128-bit parsing is several times slower.
    if let Some((v, used)) = short_line(text.as_bytes()) {
        if used == text.len() {
            return Ok(v.into());
        }
    }
    let out_of_range = || format!("{text} is outside [-2^63, 2^64)");
    match text.parse::<i128>() {
        Ok(value) if (MIN_VALUE..=MAX_VALUE).contains(&value) => Ok(value),
        Ok(_) => Err(out_of_range()),
        // an integer, only too long for i128 (40 digits and more); std's parser reports an
        // overflow before it looks at every digit, hence the check of the digits
        Err(e) if matches!(e.kind(), PosOverflow | NegOverflow) && is_integer(text) => {
            Err(out_of_range())
        }
        Err(_) => Err(format!("{text:?} is not an integer")),
    }
}

/// Whether `text` is an optional sign and decimal digits, as `str::parse::<i128>` accepts.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
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
    // A map spares copying the text (a million thresholds are 7 MB); what cannot be mapped (a
    // pipe) is read.
    let contents = file::open(path)?;
    let parsed = parse_integer_lines(contents.bytes());
    // before a parse error too: a file cut inside its last page reads as zeros there
    if let Contents::Mapped(mapped) = &contents {
        mapped.check_unchanged()?;
    }
    parsed.map_err(|(line, e)| Error::Data(format!("{}:{line}: {e}", path.display())))
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
        // integers too long for i128 are out of range, not "not integers"
        for long in [
            "1".repeat(41),
            format!("-{}", "9".repeat(45)),
            "+".to_string() + &"7".repeat(39),
        ] {
            let e = parse_integer(&long).unwrap_err();
            assert!(e.contains("outside [-2^63, 2^64)"), "{e}");
        }
        assert!(parse_integer("1".repeat(41).as_str().trim_end_matches('1'))
            .unwrap_err()
            .contains("not an integer"));
        assert!(parse_integer(&format!("{}x", "1".repeat(41)))
            .unwrap_err()
            .contains("not an integer"));
    }
}
