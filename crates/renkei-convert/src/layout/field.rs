//! Per-kind conversion of one field between file bytes and its canonical value.

use time::Date;

use super::config::{Align, DateFormat, Field, FieldKind, Layout};
use crate::charset::{self, check_jisx0213};
use crate::era::{PartialDate, WarekiStyle};
use crate::width;

/// Why one field was refused; the reader/writer adds the line and field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Stable machine code.
    pub code: &'static str,
    /// Message; never the whole value (and nothing at all from a secret field, see the reader).
    pub message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        code,
        message: message.into(),
    }
}

fn strip_pad<'a>(s: &'a str, field: &Field, fixed: bool) -> &'a str {
    let pad = field.pad as char;
    let s = if fixed {
        match field.align {
            Align::Left => s.trim_end_matches(pad),
            Align::Right => s.trim_start_matches(pad),
        }
    } else {
        s
    };
    if matches!(field.kind, FieldKind::Text | FieldKind::Kana) {
        s.trim_end_matches([' ', '\u{3000}'])
    } else {
        s.trim_matches(' ')
    }
}

/// Decodes and converts one field to its canonical value.
pub fn read_field(
    layout: &Layout,
    field: &Field,
    bytes: &[u8],
    as_of: Date,
    fixed: bool,
) -> Result<String, FieldError> {
    let text = charset::decode(bytes, layout.charset, layout.divergent)
        .map_err(|e| err(e.code(), e.to_string()))?;
    let s = strip_pad(&text, field, fixed);
    let s = if fixed
        && field.align == Align::Right
        && field.pad == b'0'
        && s.is_empty()
        && !text.trim().is_empty()
    {
        "0"
    } else {
        s
    };
    if s.is_empty() {
        if field.required {
            return Err(err("required", "required field is empty"));
        }
        return Ok(String::new());
    }
    let folded;
    let s = if field.fold_width
        && matches!(
            field.kind,
            FieldKind::Digits
                | FieldKind::Alnum
                | FieldKind::Code
                | FieldKind::CodeLiteral
                | FieldKind::DateIso
        )
        && !s.is_ascii()
    {
        folded = width::fullwidth_alnum_to_halfwidth(s);
        folded.as_str()
    } else {
        s
    };
    match field.kind {
        FieldKind::Digits => {
            check_ascii(s, |b| b.is_ascii_digit(), "not_digits", "expected digits")?;
            Ok(s.to_owned())
        }
        FieldKind::Alnum => {
            check_ascii(
                s,
                |b| b.is_ascii_alphanumeric(),
                "not_alnum",
                "expected ASCII letters or digits",
            )?;
            Ok(s.to_owned())
        }
        FieldKind::Text => {
            let t = width::halfwidth_kana_to_fullwidth(s);
            repertoire(layout, &t)?;
            Ok(t)
        }
        FieldKind::Kana => {
            let t = width::hiragana_to_katakana(&width::halfwidth_kana_to_fullwidth(s));
            if let Some((i, c)) = t
                .chars()
                .enumerate()
                .find(|(_, c)| !width::is_katakana_name(c.encode_utf8(&mut [0; 4])))
            {
                return Err(err(
                    "not_kana",
                    format!("character U+{:04X} at index {i} is not katakana", c as u32),
                ));
            }
            repertoire(layout, &t)?;
            Ok(t)
        }
        FieldKind::DateWareki => layout
            .eras
            .parse(s)
            .map(|d| d.to_iso())
            .map_err(|e| err(e.code(), e.to_string())),
        FieldKind::DateIso => {
            let d = match field.date_format {
                DateFormat::Compact if s.len() == 8 && s.is_ascii() => {
                    format!("{}-{}-{}", &s[0..4], &s[4..6], &s[6..8])
                }
                DateFormat::Dashed if s.len() == 10 => s.to_owned(),
                _ => return Err(err("date_syntax", "not a date in the layout's format")),
            };
            match crate::era::parse_ymd(&d) {
                Some(_) => Ok(d),
                None => Err(err("no_such_date", "no such date")),
            }
        }
        FieldKind::Code => {
            let table = layout
                .codes
                .get(field.table.as_deref().unwrap_or_default())
                .map_err(|e| err(e.code(), e.to_string()))?;
            table
                .to_platform(s, as_of)
                .map(str::to_owned)
                .map_err(|e| err(e.code(), e.to_string()))
        }
        FieldKind::CodeLiteral => {
            if field.values.iter().any(|v| v == s) {
                Ok(s.to_owned())
            } else {
                Err(err(
                    "unknown_code",
                    format!("{s:?} is not one of {:?}", field.values),
                ))
            }
        }
    }
}

fn check_ascii(
    s: &str,
    ok: impl Fn(u8) -> bool,
    code: &'static str,
    what: &str,
) -> Result<(), FieldError> {
    match s
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii() || !ok(*c as u8))
    {
        None => Ok(()),
        Some((i, c)) => Err(err(
            code,
            format!("{what}; character U+{:04X} at index {i}", c as u32),
        )),
    }
}

fn repertoire(layout: &Layout, s: &str) -> Result<(), FieldError> {
    if layout.platform_repertoire {
        check_jisx0213(s).map_err(|e| err(e.code(), e.to_string()))?;
    }
    Ok(())
}

/// Converts a canonical value to the field's file text (before encoding and padding).
pub fn render_field(
    layout: &Layout,
    field: &Field,
    value: &str,
    as_of: Date,
) -> Result<String, FieldError> {
    if value.is_empty() {
        if field.required {
            return Err(err("required", "required field is empty"));
        }
        return Ok(String::new());
    }
    match field.kind {
        FieldKind::Digits => check_ascii(
            value,
            |b| b.is_ascii_digit(),
            "not_digits",
            "expected digits",
        )
        .map(|_| value.to_owned()),
        FieldKind::Alnum => check_ascii(
            value,
            |b| b.is_ascii_alphanumeric(),
            "not_alnum",
            "expected ASCII letters or digits",
        )
        .map(|_| value.to_owned()),
        FieldKind::Text => Ok(value.to_owned()),
        FieldKind::Kana => {
            if width::is_katakana_name(value) {
                Ok(value.to_owned())
            } else {
                Err(err("not_kana", "expected full-width katakana"))
            }
        }
        FieldKind::DateWareki => {
            let d = PartialDate::parse_iso(value).map_err(|e| err(e.code(), e.to_string()))?;
            let style = match field.date_format {
                DateFormat::Wareki(s) => s,
                _ => WarekiStyle::Kanji,
            };
            layout
                .eras
                .format(&d, style)
                .map_err(|e| err(e.code(), e.to_string()))
        }
        FieldKind::DateIso => {
            if crate::era::parse_ymd(value).is_none() {
                return Err(err("no_such_date", "expected a YYYY-MM-DD date"));
            }
            Ok(match field.date_format {
                DateFormat::Compact => value.replace('-', ""),
                _ => value.to_owned(),
            })
        }
        FieldKind::Code => {
            let table = layout
                .codes
                .get(field.table.as_deref().unwrap_or_default())
                .map_err(|e| err(e.code(), e.to_string()))?;
            table
                .to_internal(value, as_of)
                .map(str::to_owned)
                .map_err(|e| err(e.code(), e.to_string()))
        }
        FieldKind::CodeLiteral => {
            if field.values.iter().any(|v| v == value) {
                Ok(value.to_owned())
            } else {
                Err(err(
                    "unknown_code",
                    format!("{value:?} is not one of {:?}", field.values),
                ))
            }
        }
    }
}

/// Encodes rendered text and pads it to the field width (fixed-width) into `out`.
pub fn encode_field(
    layout: &Layout,
    field: &Field,
    text: &str,
    fixed: bool,
    out: &mut Vec<u8>,
) -> Result<(), FieldError> {
    let bytes = charset::encode(text, layout.charset, layout.divergent)
        .map_err(|e| err(e.code(), e.to_string()))?;
    if !fixed {
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    if bytes.len() > field.width {
        return Err(err(
            "too_long",
            format!("{} bytes do not fit in {}", bytes.len(), field.width),
        ));
    }
    let pad = field.width - bytes.len();
    let pad_byte = if text.is_empty() { b' ' } else { field.pad };
    match field.align {
        Align::Left => {
            out.extend_from_slice(&bytes);
            out.resize(out.len() + pad, pad_byte);
        }
        Align::Right => {
            out.resize(out.len() + pad, pad_byte);
            out.extend_from_slice(&bytes);
        }
    }
    Ok(())
}
