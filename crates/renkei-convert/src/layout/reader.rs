//! [`LayoutReader`]: streams records from any `BufRead`, one `Result` per line; a bad line
//! never stops the lines after it.

use std::io::BufRead;

use time::Date;
use zeroize::Zeroize;

use super::config::{Field, Framing, Layout, LineEnding};
use super::field::{read_field, FieldError};
use super::record::Record;

/// Why a line (or one of its fields) was refused.
///
/// `message` names bad characters by code point and byte offset but never carries a field's
/// whole value; for a `secret` field (individual number) it carries nothing from the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {code}: {message}", field.as_deref().map(|f| format!(" field {f}")).unwrap_or_default())]
pub struct LineError {
    /// 1-based physical line number where the record starts (0 for errors before any line).
    pub line: u64,
    /// Field name, when the problem is in one field.
    pub field: Option<String>,
    /// Stable machine code, e.g. `unmappable_char`, `required`, `line_length`.
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

impl LineError {
    pub(crate) fn line(line: u64, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            line,
            field: None,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn field(line: u64, field: &Field, e: FieldError) -> Self {
        let message = if field.secret {
            format!("{} (value withheld: secret field)", e.code)
        } else {
            e.message
        };
        Self {
            line,
            field: Some(field.name.clone()),
            code: e.code,
            message,
        }
    }
}

/// Longest physical line accepted, in bytes. The longest built-in layout line is a few hundred
/// bytes; 64 KiB leaves room for long CSV text while a file without line breaks cannot make the
/// reader buffer all of it.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Today in Japan (JST, UTC+9), the default date for code-table versions: files are read as of
/// the day they arrive.
pub fn today_jst() -> Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date()
}

/// Streaming reader: `LayoutReader::new(&layout, reader)` is an iterator of
/// `Result<Record, LineError>`.
pub struct LayoutReader<'a, R> {
    layout: &'a Layout,
    reader: R,
    as_of: Date,
    line: u64,
    buf: Vec<u8>,
    header_pending: bool,
    done: bool,
}

impl<'a, R: BufRead> LayoutReader<'a, R> {
    /// A reader mapping codes with the table versions in effect today (JST).
    pub fn new(layout: &'a Layout, reader: R) -> Self {
        Self::with_as_of(layout, reader, today_jst())
    }

    /// A reader mapping codes with the table versions in effect on `as_of`.
    pub fn with_as_of(layout: &'a Layout, reader: R, as_of: Date) -> Self {
        Self {
            layout,
            reader,
            as_of,
            line: 0,
            buf: Vec::with_capacity(512),
            header_pending: layout.header,
            done: false,
        }
    }

    /// Reads one physical line into `buf` (appending); returns bytes read. A line longer than
    /// [`DEFAULT_MAX_LINE_BYTES`] is consumed to its end and reported.
    fn read_physical(&mut self) -> Result<usize, LineError> {
        let mut total = 0usize;
        let mut too_long = false;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::line(self.line + 1, "io", e.to_string())),
            };
            if avail.is_empty() {
                break;
            }
            let (chunk, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..=i], true),
                None => (avail, false),
            };
            let n = chunk.len();
            if self.buf.len() + n > DEFAULT_MAX_LINE_BYTES {
                too_long = true;
            } else {
                self.buf.extend_from_slice(chunk);
            }
            total += n;
            self.reader.consume(n);
            if found {
                break;
            }
        }
        if total > 0 {
            self.line += 1;
        }
        if too_long {
            self.buf.zeroize();
            return Err(LineError::line(
                self.line,
                "line_too_long",
                format!("line longer than {DEFAULT_MAX_LINE_BYTES} bytes"),
            ));
        }
        Ok(total)
    }

    fn next_line(&mut self) -> Option<Result<(u64, usize), LineError>> {
        self.buf.clear();
        match self.read_physical() {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        let start = self.line;
        if self.layout.framing == Framing::Csv {
            // A quoted CSV field may hold line breaks: keep reading while a quote is open.
            while ends_inside_quotes(&self.buf) {
                match self.read_physical() {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        let (content_len, ending_ok) =
            match (self.buf.strip_suffix(b"\r\n"), self.buf.strip_suffix(b"\n")) {
                (Some(c), _) => (c.len(), self.layout.line_ending == LineEnding::Crlf),
                (None, Some(c)) => (c.len(), self.layout.line_ending == LineEnding::Lf),
                // The last line may lack its terminator.
                (None, None) => (self.buf.len(), true),
            };
        if !ending_ok {
            let want = match self.layout.line_ending {
                LineEnding::Crlf => "CRLF",
                LineEnding::Lf => "LF",
            };
            return Some(Err(LineError::line(
                start,
                "line_ending",
                format!("expected {want} line endings"),
            )));
        }
        Some(Ok((start, content_len)))
    }

    fn parse(&self, line: u64, content: &[u8]) -> Result<Record, LineError> {
        if content.is_empty() {
            return Err(LineError::line(line, "empty_line", "empty line"));
        }
        match self.layout.framing {
            Framing::FixedWidth => parse_fixed(self.layout, line, content, self.as_of),
            Framing::Csv => parse_csv(self.layout, line, content, self.as_of),
        }
    }
}

impl<R: BufRead> Iterator for LayoutReader<'_, R> {
    type Item = Result<Record, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let (line, len) = match self.next_line() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    if e.code == "io" {
                        self.done = true;
                    }
                    self.header_pending = false;
                    return Some(Err(e));
                }
                Some(Ok(v)) => v,
            };
            if self.header_pending {
                self.header_pending = false;
                match check_header(self.layout, line, &self.buf[..len]) {
                    Ok(()) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(self.parse(line, &self.buf[..len]));
        }
    }
}

impl<R> Drop for LayoutReader<'_, R> {
    fn drop(&mut self) {
        // The last line may hold a secret field's bytes.
        self.buf.zeroize();
    }
}

/// A CSV header must name every column, by field name or by label, in column order.
fn check_header(layout: &Layout, line: u64, content: &[u8]) -> Result<(), LineError> {
    let mismatch = |m: String| LineError::line(line, "header_mismatch", m);
    let cells = match layout.framing {
        Framing::Csv => split_csv(content).map_err(mismatch)?,
        Framing::FixedWidth => return Ok(()),
    };
    let mut fields: Vec<&Field> = layout.fields.iter().collect();
    fields.sort_by_key(|f| f.column);
    if cells.len() != fields.len() {
        return Err(mismatch(format!(
            "expected {} columns, got {}",
            fields.len(),
            cells.len()
        )));
    }
    for (i, (cell, f)) in cells.iter().zip(fields).enumerate() {
        let text = crate::charset::decode(cell, layout.charset, layout.divergent)
            .map_err(|e| mismatch(format!("column {}: {e}", i + 1)))?;
        if text != f.name && text != f.label {
            return Err(mismatch(format!(
                "column {} should be {} ({})",
                i + 1,
                f.name,
                f.label
            )));
        }
    }
    Ok(())
}

fn parse_fixed(
    layout: &Layout,
    line: u64,
    content: &[u8],
    as_of: Date,
) -> Result<Record, LineError> {
    if content.len() != layout.line_len {
        return Err(LineError::line(
            line,
            "line_length",
            format!("expected {} bytes, got {}", layout.line_len, content.len()),
        ));
    }
    let mut values = Vec::with_capacity(layout.fields.len());
    let mut pos = 0usize;
    for (i, field) in layout.fields.iter().enumerate() {
        if i > 0 {
            if let Some(sep) = layout.separator {
                if content[pos] != sep {
                    return Err(LineError::line(
                        line,
                        "separator",
                        format!(
                            "expected separator before field {} at byte offset {pos}",
                            field.name
                        ),
                    ));
                }
                pos += 1;
            }
        }
        let bytes = &content[pos..pos + field.width];
        pos += field.width;
        values.push(
            read_field(layout, field, bytes, as_of, true)
                .map_err(|e| LineError::field(line, field, e))?,
        );
    }
    Ok(Record::from_values(layout, values, line))
}

/// Whether `bytes` end inside a quoted CSV field (a quote opens a field only at its start;
/// a stray quote elsewhere is left for [`split_csv`] to report, so it cannot swallow lines).
fn ends_inside_quotes(bytes: &[u8]) -> bool {
    let mut in_quotes = false;
    let mut at_cell_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if b == b'"' && at_cell_start {
            in_quotes = true;
        }
        at_cell_start = !in_quotes && (b == b',' || b == b'\n');
        i += 1;
    }
    in_quotes
}

/// Splits one CSV record (RFC 4180) into cells.
pub(crate) fn split_csv(content: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut cells = Vec::new();
    let mut i = 0usize;
    loop {
        let mut cell = Vec::new();
        if content.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match content.get(i) {
                    None => {
                        return Err(format!("unterminated quote in column {}", cells.len() + 1))
                    }
                    Some(b'"') if content.get(i + 1) == Some(&b'"') => {
                        cell.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        cell.push(b);
                        i += 1;
                    }
                }
            }
            match content.get(i) {
                None | Some(b',') => {}
                Some(_) => {
                    return Err(format!(
                        "text after closing quote in column {}",
                        cells.len() + 1
                    ))
                }
            }
        } else {
            while let Some(&b) = content.get(i) {
                if b == b',' {
                    break;
                }
                if b == b'"' || b == b'\r' || b == b'\n' {
                    return Err(format!(
                        "quote or line break in unquoted column {}",
                        cells.len() + 1
                    ));
                }
                cell.push(b);
                i += 1;
            }
        }
        cells.push(cell);
        if i >= content.len() {
            return Ok(cells);
        }
        i += 1; // the comma
    }
}

fn parse_csv(layout: &Layout, line: u64, content: &[u8], as_of: Date) -> Result<Record, LineError> {
    let cells = split_csv(content).map_err(|m| LineError::line(line, "csv_syntax", m))?;
    if cells.len() != layout.columns {
        return Err(LineError::line(
            line,
            "column_count",
            format!("expected {} columns, got {}", layout.columns, cells.len()),
        ));
    }
    let mut values = Vec::with_capacity(layout.fields.len());
    for field in &layout.fields {
        values.push(
            read_field(layout, field, &cells[field.column], as_of, false)
                .map_err(|e| LineError::field(line, field, e))?,
        );
    }
    Ok(Record::from_values(layout, values, line))
}
