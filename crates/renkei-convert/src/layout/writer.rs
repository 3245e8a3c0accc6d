//! [`LayoutWriter`]: writes records in a layout (fixed-width padding, RFC 4180 quoting, encoding).

use std::io::Write;

use time::Date;
use zeroize::Zeroize;

use super::config::{Framing, Layout};
use super::field::{encode_field, render_field};
use super::reader::{today_jst, LineError};
use super::record::Record;

/// Writes records as lines of `layout`. Errors name the output line and field; a refused
/// record writes nothing.
pub struct LayoutWriter<'a, W> {
    layout: &'a Layout,
    out: W,
    as_of: Date,
    line: u64,
    buf: Vec<u8>,
    header_written: bool,
}

impl<'a, W: Write> LayoutWriter<'a, W> {
    /// A writer mapping codes with the table versions in effect today (JST).
    pub fn new(layout: &'a Layout, out: W) -> Self {
        Self::with_as_of(layout, out, today_jst())
    }

    /// A writer mapping codes with the table versions in effect on `as_of`.
    pub fn with_as_of(layout: &'a Layout, out: W, as_of: Date) -> Self {
        Self {
            layout,
            out,
            as_of,
            line: 0,
            buf: Vec::with_capacity(512),
            header_written: !layout.header,
        }
    }

    /// Renders one record into bytes, line ending included.
    pub fn render(&self, record: &Record, line: u64, buf: &mut Vec<u8>) -> Result<(), LineError> {
        let layout = self.layout;
        let fixed = layout.framing == Framing::FixedWidth;
        if record.len() != layout.fields.len() {
            return Err(LineError::line(
                line,
                "wrong_layout",
                "record was made for another layout",
            ));
        }
        let mut order: Vec<usize> = (0..layout.fields.len()).collect();
        if !fixed {
            order.sort_by_key(|&i| layout.fields[i].column);
        }
        for (n, &i) in order.iter().enumerate() {
            let field = &layout.fields[i];
            if n > 0 {
                match (fixed, layout.separator) {
                    (true, Some(sep)) => buf.push(sep),
                    (true, None) => {}
                    (false, _) => buf.push(b','),
                }
            }
            let value = record.value(i).unwrap_or_default();
            let text = render_field(layout, field, value, self.as_of)
                .map_err(|e| LineError::field(line, field, e))?;
            if !fixed && text.contains([',', '"', '\r', '\n']) {
                let start = buf.len();
                buf.push(b'"');
                let quoted = text.replace('"', "\"\"");
                encode_field(layout, field, &quoted, false, buf)
                    .map_err(|e| LineError::field(line, field, e))?;
                buf.push(b'"');
                debug_assert!(buf.len() > start);
            } else {
                encode_field(layout, field, &text, fixed, buf)
                    .map_err(|e| LineError::field(line, field, e))?;
            }
        }
        buf.extend_from_slice(layout.line_ending.bytes());
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), LineError> {
        let layout = self.layout;
        let mut names: Vec<&super::config::Field> = layout.fields.iter().collect();
        names.sort_by_key(|f| f.column);
        let header = names
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        self.line += 1;
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(layout.line_ending.bytes());
        self.out
            .write_all(&bytes)
            .map_err(|e| LineError::line(self.line, "io", e.to_string()))
    }

    /// Writes one record.
    pub fn write(&mut self, record: &Record) -> Result<(), LineError> {
        if !self.header_written {
            self.header_written = true;
            self.write_header()?;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let line = self.line + 1;
        let result = self.render(record, line, &mut buf);
        let written = match result {
            Ok(()) => self
                .out
                .write_all(&buf)
                .map_err(|e| LineError::line(line, "io", e.to_string())),
            Err(e) => Err(e),
        };
        if written.is_ok() {
            self.line = line;
        }
        // The rendered line may hold a secret field's bytes.
        buf.zeroize();
        self.buf = buf;
        written
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> Result<(), LineError> {
        self.out
            .flush()
            .map_err(|e| LineError::line(self.line, "io", e.to_string()))
    }

    /// Lines written so far (header included).
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// The output.
    pub fn into_inner(self) -> W {
        self.out
    }
}
