//! The layout file model (`schemas/layouts/*.toml`) and its validation.

use std::sync::Arc;

use serde::Deserialize;

use crate::charset::{Charset, DivergentRule};
use crate::codes::CodeTables;
use crate::era::{EraTable, WarekiStyle};

/// Pad byte when a field names none: a space is what COBOL-era fixed-width files use.
const DEFAULT_PAD: u8 = b' ';
/// Fold full-width digits/letters in digit and code fields: legacy screens key them in full
/// width, and the number is the same.
const DEFAULT_FOLD_WIDTH: bool = true;
/// Check text fields against JIS X 0213: records are bound for the platform, which only
/// carries that repertoire; refusing at the edge names the line and field.
const DEFAULT_PLATFORM_REPERTOIRE: bool = true;

/// How lines are split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// RFC 4180 CSV: comma separated, `"` quoting with `""` escapes.
    Csv,
    /// Fields of fixed byte widths, optionally separated by one ASCII byte.
    FixedWidth,
}

/// Line terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    /// `\r\n`.
    Crlf,
    /// `\n`.
    Lf,
}

impl LineEnding {
    /// The bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Crlf => b"\r\n",
            LineEnding::Lf => b"\n",
        }
    }
}

/// Field kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// ASCII digits.
    Digits,
    /// ASCII letters and digits (codes such as `JT01010000000214`, business numbers).
    Alnum,
    /// Free text.
    Text,
    /// A katakana name (half-width widened, hiragana turned to katakana).
    Kana,
    /// A 和暦 date (see `format`: `kanji`, `letter`, `digits`).
    DateWareki,
    /// A Gregorian date (see `format`: `yyyymmdd`, `yyyy-mm-dd`).
    DateIso,
    /// A code mapped through a code table (`table`).
    Code,
    /// One of a fixed list of values (`values`).
    CodeLiteral,
}

/// The field name that carries the individual number in every layout; it must be `secret`.
pub const INDIVIDUAL_NUMBER_FIELD: &str = "individual_number";

/// Alignment inside a fixed-width field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// Value first, pad after.
    Left,
    /// Pad first, value after.
    Right,
}

/// A layout file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutFile {
    /// Layout name, e.g. `"inquiry-batch"`.
    pub name: String,
    /// Human title, e.g. `"情報照会依頼一括ファイル"`.
    pub title: String,
    /// `"utf-8"`, `"shift_jis"` or `"cp932"`.
    pub encoding: Charset,
    /// `"csv"` or `"fixed-width"`.
    pub framing: Framing,
    /// Fixed-width only: one ASCII separator between fields, e.g. `","`.
    pub separator: Option<String>,
    /// `"crlf"` or `"lf"`.
    pub line_ending: LineEnding,
    /// Rule for Shift_JIS/CP932 divergent characters: `"report"` (default), `"jis"`, `"cp932"`.
    #[serde(default)]
    pub divergent: DivergentRule,
    /// Whether the first line is a header (CSV), e.g. `true`.
    #[serde(default)]
    pub header: bool,
    /// Check text against JIS X 0213 (default true), e.g. `false` for outbound-only layouts.
    pub platform_repertoire: Option<bool>,
    /// The fields, in file order.
    pub fields: Vec<FieldFile>,
}

/// A field as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// ASCII snake-case name, the record key, e.g. `"business_number"`.
    pub name: String,
    /// Name in the source specification, e.g. `"宛名番号"`.
    pub label: Option<String>,
    /// Fixed-width: width in bytes, e.g. `15`.
    pub width: Option<usize>,
    /// CSV: 1-based column, default = position, e.g. `3`.
    pub column: Option<usize>,
    /// Kind, e.g. `"digits"`.
    pub kind: FieldKind,
    /// For `code`: the code table name, e.g. `"sex"`.
    pub table: Option<String>,
    /// For `code-literal`: allowed values, e.g. `["01"]`.
    pub values: Option<Vec<String>>,
    /// Must be non-empty, e.g. `true`.
    #[serde(default)]
    pub required: bool,
    /// Secret (individual number): values never appear in messages or Debug, e.g. `true`.
    #[serde(default)]
    pub secret: bool,
    /// Fixed-width alignment, default `"left"`.
    pub align: Option<Align>,
    /// Fixed-width pad character, one ASCII byte, default `" "`, e.g. `"0"`.
    pub pad: Option<String>,
    /// Date format: `kanji`/`letter`/`digits` (wareki) or `yyyymmdd`/`yyyy-mm-dd` (iso).
    pub format: Option<String>,
    /// Fold full-width digits/letters (digits, alnum, code and date-iso kinds), default true.
    pub fold_width: Option<bool>,
}

/// How a date field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// Not a date field.
    None,
    /// 和暦 in a style.
    Wareki(WarekiStyle),
    /// `YYYYMMDD`.
    Compact,
    /// `YYYY-MM-DD`.
    Dashed,
}

/// A validated field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Record key.
    pub name: String,
    /// Source-spec name.
    pub label: String,
    /// Fixed-width byte width (0 for CSV).
    pub width: usize,
    /// CSV column, 0-based.
    pub column: usize,
    /// Kind.
    pub kind: FieldKind,
    /// Code table name for `code`.
    pub table: Option<String>,
    /// Allowed values for `code-literal`.
    pub values: Vec<String>,
    /// Must be non-empty.
    pub required: bool,
    /// Secret.
    pub secret: bool,
    /// Alignment.
    pub align: Align,
    /// Pad byte.
    pub pad: u8,
    /// Date format.
    pub date_format: DateFormat,
    /// Fold full-width digits/letters.
    pub fold_width: bool,
}

/// A validated layout, with the code tables and eras it uses.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Byte encoding.
    pub charset: Charset,
    /// Framing.
    pub framing: Framing,
    /// Fixed-width separator byte.
    pub separator: Option<u8>,
    /// Line ending.
    pub line_ending: LineEnding,
    /// Divergent-character rule.
    pub divergent: DivergentRule,
    /// First line is a header.
    pub header: bool,
    /// Check text against JIS X 0213.
    pub platform_repertoire: bool,
    /// Fields in file order.
    pub fields: Vec<Field>,
    /// CSV column count.
    pub columns: usize,
    /// Fixed-width line length in bytes (without line ending).
    pub line_len: usize,
    pub(crate) names: Arc<[String]>,
    pub(crate) secret: Arc<[bool]>,
    pub(crate) codes: CodeTables,
    pub(crate) eras: EraTable,
}

/// A problem in a layout file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layout {layout}: {message}")]
pub struct LayoutError {
    /// Layout name (or `?` when unparsable).
    pub layout: String,
    /// Stable machine code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl LayoutError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

const BUILTIN: [(&str, &str); 4] = [
    (
        "inquiry-batch",
        include_str!("../../../../schemas/layouts/inquiry-batch.toml"),
    ),
    (
        "inquiry-result",
        include_str!("../../../../schemas/layouts/inquiry-result.toml"),
    ),
    (
        "resident-fixed",
        include_str!("../../../../schemas/layouts/resident-fixed.toml"),
    ),
    (
        "resident-csv",
        include_str!("../../../../schemas/layouts/resident-csv.toml"),
    ),
];

impl Layout {
    /// Names of the layouts compiled in from `schemas/layouts/`.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A layout compiled in from `schemas/layouts/`, with the built-in code tables and eras.
    pub fn builtin(name: &str) -> Result<Layout, Vec<LayoutError>> {
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                vec![LayoutError {
                    layout: name.to_owned(),
                    code: "no_layout",
                    message: "no such built-in layout".into(),
                }]
            })?;
        let one = |code, e: String| {
            vec![LayoutError {
                layout: name.to_owned(),
                code,
                message: e,
            }]
        };
        let codes = CodeTables::builtin().map_err(|e| one("invalid_code_table", e.to_string()))?;
        let eras = EraTable::builtin().map_err(|e| one("era_table", e.to_string()))?;
        Layout::from_toml(text, &codes, eras)
    }

    /// Parses and validates a layout; every problem is returned at once.
    pub fn from_toml(
        text: &str,
        codes: &CodeTables,
        eras: &EraTable,
    ) -> Result<Layout, Vec<LayoutError>> {
        let file: LayoutFile = toml::from_str(text).map_err(|e| {
            vec![LayoutError {
                layout: "?".into(),
                code: "layout_syntax",
                message: e.message().to_owned(),
            }]
        })?;
        let mut problems = Vec::new();
        let mut problem = |code: &'static str, message: String| {
            problems.push(LayoutError {
                layout: file.name.clone(),
                code,
                message,
            });
        };
        let separator = match file.separator.as_deref() {
            None => None,
            Some(s) if s.len() == 1 && s.is_ascii() && s != "\"" => Some(s.as_bytes()[0]),
            Some(_) => {
                problem("bad_separator", "separator must be one ASCII byte".into());
                None
            }
        };
        if file.framing == Framing::Csv && separator.is_some() {
            problem(
                "bad_separator",
                "separator is for fixed-width framing (CSV uses ',')".into(),
            );
        }
        if file.fields.is_empty() {
            problem("no_fields", "a layout needs fields".into());
        }
        let mut fields = Vec::with_capacity(file.fields.len());
        let mut seen_columns = Vec::new();
        for (i, f) in file.fields.iter().enumerate() {
            let at = format!("field {} ({})", i + 1, f.name);
            if f.name.is_empty()
                || !f
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                problem(
                    "bad_field_name",
                    format!("{at}: name must be ASCII snake case"),
                );
            }
            if file.fields[..i].iter().any(|g| g.name == f.name) {
                problem("duplicate_field", format!("{at}: duplicate name"));
            }
            if f.name == INDIVIDUAL_NUMBER_FIELD && !f.secret {
                // The one field that carries the individual number must be withheld from every
                // message and Debug output: a layout that forgets it is refused, not trusted.
                problem(
                    "not_secret",
                    format!("{at}: the individual number field must be marked secret = true"),
                );
            }
            let width = match (file.framing, f.width) {
                (Framing::FixedWidth, Some(w)) if w > 0 => w,
                (Framing::FixedWidth, _) => {
                    problem(
                        "bad_width",
                        format!("{at}: fixed-width fields need a width > 0"),
                    );
                    0
                }
                (Framing::Csv, Some(_)) => {
                    problem(
                        "bad_width",
                        format!("{at}: CSV fields take `column`, not `width`"),
                    );
                    0
                }
                (Framing::Csv, None) => 0,
            };
            let column = match (file.framing, f.column) {
                (Framing::Csv, Some(c)) if c > 0 => c - 1,
                (Framing::Csv, Some(_)) => {
                    problem("bad_column", format!("{at}: columns start at 1"));
                    i
                }
                (Framing::Csv, None) => i,
                (Framing::FixedWidth, Some(_)) => {
                    problem(
                        "bad_column",
                        format!("{at}: fixed-width fields take `width`, not `column`"),
                    );
                    i
                }
                (Framing::FixedWidth, None) => i,
            };
            if file.framing == Framing::Csv {
                if seen_columns.contains(&column) {
                    problem(
                        "duplicate_column",
                        format!("{at}: column {} used twice", column + 1),
                    );
                }
                seen_columns.push(column);
            }
            match (f.kind, &f.table) {
                (FieldKind::Code, Some(t)) if codes.get(t).is_err() => problem(
                    "missing_code_table",
                    format!("{at}: code table {t:?} does not exist"),
                ),
                (FieldKind::Code, Some(_)) => {}
                (FieldKind::Code, None) => problem(
                    "missing_code_table",
                    format!("{at}: code fields need `table`"),
                ),
                (_, Some(_)) => problem(
                    "unexpected_key",
                    format!("{at}: `table` is only for code fields"),
                ),
                _ => {}
            }
            let values = match (f.kind, &f.values) {
                (FieldKind::CodeLiteral, Some(v)) if !v.is_empty() => {
                    for value in v {
                        if width > 0 && value.len() > width {
                            problem(
                                "bad_width",
                                format!("{at}: value {value:?} is wider than {width}"),
                            );
                        }
                    }
                    v.clone()
                }
                (FieldKind::CodeLiteral, _) => {
                    problem(
                        "missing_values",
                        format!("{at}: code-literal fields need `values`"),
                    );
                    Vec::new()
                }
                (_, Some(_)) => {
                    problem(
                        "unexpected_key",
                        format!("{at}: `values` is only for code-literal fields"),
                    );
                    Vec::new()
                }
                (_, None) => Vec::new(),
            };
            let pad = match f.pad.as_deref() {
                None => DEFAULT_PAD,
                Some(p) if p.len() == 1 && p.is_ascii() => p.as_bytes()[0],
                Some(_) => {
                    problem("bad_pad", format!("{at}: pad must be one ASCII character"));
                    DEFAULT_PAD
                }
            };
            let date_format = match (f.kind, f.format.as_deref()) {
                (FieldKind::DateWareki, Some("kanji")) => DateFormat::Wareki(WarekiStyle::Kanji),
                (FieldKind::DateWareki, Some("letter")) => DateFormat::Wareki(WarekiStyle::Letter),
                (FieldKind::DateWareki, Some("digits")) => DateFormat::Wareki(WarekiStyle::Digits),
                (FieldKind::DateIso, Some("yyyymmdd")) => DateFormat::Compact,
                (FieldKind::DateIso, Some("yyyy-mm-dd")) => DateFormat::Dashed,
                (FieldKind::DateWareki | FieldKind::DateIso, _) => {
                    problem(
                        "bad_format",
                        format!("{at}: date fields need a valid `format`"),
                    );
                    DateFormat::None
                }
                (_, Some(_)) => {
                    problem(
                        "unexpected_key",
                        format!("{at}: `format` is only for date fields"),
                    );
                    DateFormat::None
                }
                (_, None) => DateFormat::None,
            };
            if let (Framing::FixedWidth, Some(n)) = (file.framing, min_width(date_format)) {
                if width > 0 && width < n {
                    problem(
                        "bad_width",
                        format!("{at}: width {width} is too small for its date format"),
                    );
                }
            }
            fields.push(Field {
                name: f.name.clone(),
                label: f.label.clone().unwrap_or_default(),
                width,
                column,
                kind: f.kind,
                table: f.table.clone(),
                values,
                required: f.required,
                secret: f.secret,
                align: f.align.unwrap_or(Align::Left),
                pad,
                date_format,
                fold_width: f.fold_width.unwrap_or(DEFAULT_FOLD_WIDTH),
            });
        }
        let columns = fields.iter().map(|f| f.column + 1).max().unwrap_or(0);
        if file.framing == Framing::Csv && columns != fields.len() {
            problem(
                "bad_column",
                format!("columns must be 1..={} without gaps", fields.len()),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let line_len = fields.iter().map(|f| f.width).sum::<usize>()
            + separator.map_or(0, |_| fields.len().saturating_sub(1));
        let mut used = CodeTables::default();
        for f in &fields {
            if let Some(t) = f.table.as_deref().and_then(|t| codes.get(t).ok()) {
                used.insert(t.clone());
            }
        }
        Ok(Layout {
            names: fields
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
                .into(),
            secret: fields.iter().map(|f| f.secret).collect::<Vec<_>>().into(),
            name: file.name,
            title: file.title,
            charset: file.encoding,
            framing: file.framing,
            separator,
            line_ending: file.line_ending,
            divergent: file.divergent,
            header: file.header,
            platform_repertoire: file
                .platform_repertoire
                .unwrap_or(DEFAULT_PLATFORM_REPERTOIRE),
            fields,
            columns,
            line_len,
            codes: used,
            eras: eras.clone(),
        })
    }

    /// Loads `schemas_dir/layouts/<name>.toml` with the code tables of `schemas_dir/codes/` and
    /// the eras of `schemas_dir/eras.toml` (for deployments that ship schemas beside the binary).
    pub fn load(schemas_dir: &std::path::Path, name: &str) -> Result<Layout, Vec<LayoutError>> {
        let one = |code, message: String| {
            vec![LayoutError {
                layout: name.to_owned(),
                code,
                message,
            }]
        };
        let codes = CodeTables::load_dir(&schemas_dir.join("codes")).map_err(|errs| {
            errs.into_iter()
                .map(|(p, e)| LayoutError {
                    layout: name.to_owned(),
                    code: e.code(),
                    message: format!("{}: {e}", p.display()),
                })
                .collect::<Vec<_>>()
        })?;
        let era_text = std::fs::read_to_string(schemas_dir.join("eras.toml"))
            .map_err(|e| one("unreadable", e.to_string()))?;
        let eras = EraTable::from_toml(&era_text).map_err(|e| one(e.code(), e.to_string()))?;
        let path = schemas_dir.join("layouts").join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| one("unreadable", format!("{}: {e}", path.display())))?;
        Layout::from_toml(&text, &codes, &eras)
    }

    /// Index of the field named `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

fn min_width(f: DateFormat) -> Option<usize> {
    match f {
        DateFormat::Wareki(WarekiStyle::Digits) => Some(7),
        DateFormat::Wareki(WarekiStyle::Letter) => Some(9),
        DateFormat::Compact => Some(8),
        DateFormat::Dashed => Some(10),
        _ => None,
    }
}
