//! The `.npy` header (format versions 1.0, 2.0 and 3.0), parsed here as numpy's own
//! `numpy.lib.format._read_array_header` does.
//!
//! Why not npyz's header reader: it refuses files numpy reads (a Python 2 header's `(3L,)`, which
//! numpy filters out before `ast.literal_eval`), its errors run over several lines, and its
//! `header.len()` multiplies the shape with wrapping (a shape of 2^32 x 2^32 read as empty).
//! Pre-processing the header before npyz would still leave its messages and its arithmetic; the
//! header is a small Python literal (a dict of `'descr'`, `'fortran_order'`, `'shape'`), so it is
//! read here with a parser of a few dozen lines whose every error is one line, and the shape is
//! multiplied with `checked_mul`. npyz still writes `.npy` files (`divgpu gen`).

use super::DType;

/// What a header says: the element type, the element count (the shape's product, checked), and
/// where the elements start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub dtype: DType,
    pub len: usize,
    pub data_offset: usize,
}

const MAGIC: &[u8] = b"\x93NUMPY";
/// Lists and tuples nest this deep at most (a structured dtype's descr nests, and a header is
/// never deeper than a few levels): deeper is refused rather than recursed into.
const MAX_DEPTH: usize = 32;

/// Parses the header at the start of `bytes`. The error is one line, without the file's name.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    if !bytes.starts_with(MAGIC) {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".to_string());
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err("not a .npy file (it ends inside the header)".to_string()),
    };
    // 1.0: a 2-byte header length, latin-1; 2.0: 4 bytes; 3.0: 4 bytes, UTF-8
    let length_bytes = match (major, minor) {
        (1, 0) => 2,
        (2 | 3, 0) => 4,
        _ => {
            return Err(format!(
                "unsupported .npy format version {major}.{minor} (numpy reads 1.0, 2.0 and 3.0)"
            ))
        }
    };
    let start = 8 + length_bytes;
    let header_len = match bytes.get(8..start) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => return Err("not a .npy file (it ends inside the header)".to_string()),
    };
    let data_offset = start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            format!(
                "truncated: the .npy header is {header_len} bytes but the file ends {} bytes after its start",
                bytes.len().saturating_sub(start)
            )
        })?;
    let text = &bytes[start..data_offset];
    if major == 3 && std::str::from_utf8(text).is_err() {
        return Err("the .npy 3.0 header is not UTF-8".to_string());
    }
    let dict = Parser::new(text, major <= 2)
        .document()
        .map_err(|e| format!("the .npy header is not a Python dict literal: {e}"))?;
    let Value::Dict(entries) = dict else {
        return Err(format!(
            "the .npy header is {}, not a dict",
            dict.kind_name()
        ));
    };
    let (descr, fortran, shape) = fields(entries)?;
    let dtype = dtype(&descr)?;
    let Value::Bool(_) = fortran else {
        return Err(format!(
            "the .npy header's 'fortran_order' is {}, not True or False",
            fortran.kind_name()
        ));
    };
    // Either order holds the same elements, and divgpu's answers do not depend on their order.
    let len = element_count(&shape, dtype.width)?;
    Ok(Header {
        dtype,
        len,
        data_offset,
    })
}

/// The three fields numpy requires, no more and no fewer; a key given twice counts once, its
/// last value, as in Python.
fn fields(entries: Vec<(Value, Value)>) -> Result<(Value, Value, Value), String> {
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let slot = match &key {
            Value::Str(k) if k == b"descr" => &mut descr,
            Value::Str(k) if k == b"fortran_order" => &mut fortran,
            Value::Str(k) if k == b"shape" => &mut shape,
            other => {
                return Err(format!(
                    "the .npy header has the key {}; numpy's keys are 'descr', 'fortran_order' and 'shape'",
                    other.short()
                ))
            }
        };
        *slot = Some(value);
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        (d, f, _) => {
            let missing = if d.is_none() {
                "descr"
            } else if f.is_none() {
                "fortran_order"
            } else {
                "shape"
            };
            Err(format!("the .npy header has no '{missing}'"))
        }
    }
}

/// numpy's type string (`'<i8'`, `'|u1'`, `'i4'`, `'=u2'`) of an integer type.
fn dtype(descr: &Value) -> Result<DType, String> {
    let text = match descr {
        Value::Str(s) => s,
        Value::List(_) | Value::Tuple(_) => {
            return Err(format!(
                "dtype {} is a structured or sub-array type; divgpu reads integer arrays",
                descr.short()
            ))
        }
        other => {
            return Err(format!(
                "the .npy header's 'descr' is {}, not a type string",
                other.kind_name()
            ))
        }
    };
    let shown = descr.short();
    let (order, rest) = match text.split_first() {
        Some((&o @ (b'<' | b'>' | b'=' | b'|'), rest)) => (Some(o), rest),
        _ => (None, &text[..]),
    };
    let (kind, size) = match rest.split_first() {
        Some((&kind, size)) => (kind, size),
        None => return Err(format!("dtype {shown} is not a numpy type string")),
    };
    let signed = match kind {
        b'i' => true,
        b'u' => false,
        b'b' | b'f' | b'c' | b'O' | b'S' | b'U' | b'V' | b'M' | b'm' | b'e' | b'd' | b'g' => {
            return Err(format!(
                "dtype {shown} is not an integer type; divgpu reads i1 i2 i4 i8 u1 u2 u4 u8"
            ))
        }
        _ => return Err(format!("dtype {shown} is not a numpy type string")),
    };
    let width = match size {
        b"1" => 1,
        b"2" => 2,
        b"4" => 4,
        b"8" => 8,
        _ if size.is_empty() || !size.iter().all(u8::is_ascii_digit) => {
            return Err(format!(
                "dtype {shown} is not a numpy type string such as '<i8'; divgpu reads i1 i2 i4 i8 u1 u2 u4 u8"
            ))
        }
        _ => {
            return Err(format!(
                "dtype {shown} has an unsupported width; divgpu reads i1 i2 i4 i8 u1 u2 u4 u8"
            ))
        }
    };
    let big_endian = match order {
        Some(b'>') => true,
        Some(b'<') => false,
        // '=' native, '|' not applicable (numpy takes it as native), none native
        _ => cfg!(target_endian = "big"),
    };
    Ok(DType {
        signed,
        width,
        big_endian,
    })
}

/// The shape's product, refused (with the shape named) when it or its byte count does not fit
/// this machine's addresses: numpy refuses such a file as "array is too big".
fn element_count(shape: &Value, width: usize) -> Result<usize, String> {
    let Value::Tuple(dims) = shape else {
        return Err(format!(
            "the .npy header's 'shape' is {}, not a tuple",
            shape.kind_name()
        ));
    };
    let mut len: Option<usize> = Some(1);
    for dim in dims {
        match dim {
            Value::Int {
                negative: false, ..
            } => {}
            Value::Int { negative: true, .. } => {
                return Err(format!("shape {} has a negative dimension", shape.short()))
            }
            other => {
                return Err(format!(
                    "shape {} holds {}, not integers",
                    shape.short(),
                    other.kind_name()
                ))
            }
        }
        let size = dim.as_usize();
        len = match (len, size) {
            // a zero anywhere makes the array empty, however large the other dimensions
            (_, Some(0)) | (Some(0), _) => Some(0),
            (Some(n), Some(d)) => n.checked_mul(d),
            _ => None,
        };
    }
    len.filter(|n| n.checked_mul(width).is_some())
        .ok_or_else(|| {
            format!(
                "shape {} has too many elements: at {width} bytes each they would take 2^64 bytes or more",
                shape.short(),
            )
        })
}

/// A Python literal, as much of one as a `.npy` header holds.
#[derive(Debug)]
enum Value {
    Str(Vec<u8>),
    /// The digits as written (no sign, no `_`), arbitrary length.
    Int {
        negative: bool,
        digits: Vec<u8>,
    },
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    fn kind_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int { .. } => "an integer",
            Value::Bool(_) => "a bool",
            Value::None => "None",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
        }
    }

    /// The value's magnitude when it fits `usize`.
    fn as_usize(&self) -> Option<usize> {
        let Value::Int { digits, .. } = self else {
            return None;
        };
        digits.iter().try_fold(0usize, |n, &d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })
    }

    /// Python's repr, cut short: for messages, which stay one line.
    fn short(&self) -> String {
        let mut out = String::new();
        self.repr(&mut out);
        if out.chars().count() > 80 {
            out = out.chars().take(77).collect::<String>() + "...";
        }
        out
    }

    fn repr(&self, out: &mut String) {
        if out.len() > 100 {
            return;
        }
        match self {
            Value::Str(s) => {
                out.push('\'');
                // latin-1 as numpy decodes versions 1.0 and 2.0; control characters escaped so
                // that a message stays one line
                for &b in s {
                    match b {
                        b'\'' | b'\\' => {
                            out.push('\\');
                            out.push(char::from(b));
                        }
                        0x20..=0x7e => out.push(char::from(b)),
                        _ => out.push_str(&format!("\\x{b:02x}")),
                    }
                }
                out.push('\'');
            }
            Value::Int { negative, digits } => {
                if *negative {
                    out.push('-');
                }
                out.push_str(&String::from_utf8_lossy(digits));
            }
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::None => out.push_str("None"),
            Value::Tuple(items) | Value::List(items) => {
                let tuple = matches!(self, Value::Tuple(_));
                out.push(if tuple { '(' } else { '[' });
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.repr(out);
                }
                if tuple && items.len() == 1 {
                    out.push(',');
                }
                out.push(if tuple { ')' } else { ']' });
            }
            Value::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.repr(out);
                    out.push_str(": ");
                    v.repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// A recursive-descent reader of the Python literals `ast.literal_eval` accepts in a header:
/// strings (`'...'`, `"..."`, `u'...'`), decimal integers (with a Python 2 `L` suffix in
/// format versions 1.0 and 2.0, which numpy filters out), `True`, `False`, `None`, tuples,
/// lists and dicts, with whitespace and `#` comments between tokens.
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    /// Format versions 1.0 and 2.0 may come from Python 2: `3L` is the integer 3.
    python2_longs: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a [u8], python2_longs: bool) -> Self {
        Parser {
            text,
            at: 0,
            python2_longs,
        }
    }

    /// One value and nothing after it but whitespace (numpy pads with spaces and a newline).
    fn document(mut self) -> Result<Value, String> {
        let value = self.value(0)?;
        self.skip_space();
        match self.peek() {
            None => Ok(value),
            Some(_) => Err(self.unexpected("the end of the header")),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.at += 1,
                b'#' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            None => format!("it ends where {wanted} should be"),
            Some(b) if b.is_ascii_graphic() => {
                format!(
                    "'{}' at byte {} where {wanted} should be",
                    char::from(b),
                    self.at
                )
            }
            Some(b) => format!(
                "byte 0x{b:02x} at byte {} where {wanted} should be",
                self.at
            ),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("it nests deeper than {MAX_DEPTH} levels"));
        }
        self.skip_space();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'u' | b'U') if matches!(self.text.get(self.at + 1), Some(b'\'' | b'"')) => {
                self.at += 1;
                let q = self.text[self.at];
                self.string(q)
            }
            Some(b'0'..=b'9' | b'-' | b'+') => self.int(),
            Some(b'(') => self.sequence(depth, b')'),
            Some(b'[') => self.sequence(depth, b']'),
            Some(b'{') => self.dict(depth),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'_') => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    self.at += 1;
                }
                match &self.text[start..self.at] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    name => Err(format!(
                        "the name '{}' at byte {start} is not a literal",
                        String::from_utf8_lossy(name)
                    )),
                }
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    fn string(&mut self, quote: u8) -> Result<Value, String> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(format!("the string at byte {start} does not end"))
                }
                Some(b) if b == quote => {
                    self.at += 1;
                    return Ok(Value::Str(out));
                }
                Some(b'\\') => {
                    // the escapes a type string or a key could hold; others are kept as written
                    let escaped = self.text.get(self.at + 1).copied();
                    match escaped {
                        Some(c @ (b'\\' | b'\'' | b'"')) => out.push(c),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'0') => out.push(0),
                        Some(c) => out.extend([b'\\', c]),
                        None => return Err(format!("the string at byte {start} does not end")),
                    }
                    self.at += 2;
                }
                Some(b) => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Value, String> {
        let start = self.at;
        // one sign at most: `ast.literal_eval` takes a unary minus or plus on a number, not two
        let mut negative = false;
        if let Some(sign @ (b'-' | b'+')) = self.peek() {
            negative = sign == b'-';
            self.at += 1;
            self.skip_space();
        }
        let mut digits = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' => digits.push(b),
                // `1_000`, one underscore between digits
                b'_' if !digits.is_empty()
                    && self.text.get(self.at + 1).is_some_and(u8::is_ascii_digit) => {}
                _ => break,
            }
            self.at += 1;
        }
        if digits.is_empty() {
            return Err(self.unexpected("a number"));
        }
        if digits.len() > 1 && digits[0] == b'0' && digits.iter().any(|&d| d != b'0') {
            return Err(format!(
                "the number at byte {start} has a leading zero, which Python 3 refuses"
            ));
        }
        if let Some(b'.' | b'e' | b'E' | b'j' | b'J' | b'x' | b'o' | b'b' | b'X' | b'O' | b'B') =
            self.peek()
        {
            return Err(format!(
                "the number at byte {start} is not a decimal integer"
            ));
        }
        // numpy's `_filter_header`: a NAME token `L` right after a NUMBER token is dropped
        if self.python2_longs {
            let after = self.at;
            self.skip_space();
            let is_long = self.peek() == Some(b'L')
                && !self
                    .text
                    .get(self.at + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
            if is_long {
                self.at += 1;
            } else {
                self.at = after;
            }
        }
        while digits.len() > 1 && digits[0] == b'0' {
            digits.remove(0);
        }
        let negative = negative && digits != b"0";
        Ok(Value::Int { negative, digits })
    }

    /// A tuple or a list; `(x)` without a comma is `x` itself, as in Python.
    fn sequence(&mut self, depth: usize, close: u8) -> Result<Value, String> {
        self.at += 1;
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.at += 1;
                break;
            }
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    comma = true;
                }
                Some(b) if b == close => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.unexpected(&format!("',' or '{}'", char::from(close)))),
            }
        }
        Ok(match close {
            b']' => Value::List(items),
            _ if items.len() == 1 && !comma => items.pop().expect("one item"),
            _ => Value::Tuple(items),
        })
    }

    fn dict(&mut self, depth: usize) -> Result<Value, String> {
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(Value::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':'"));
            }
            self.at += 1;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Dict(entries));
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
