//! Bulk registration of copies (副本) from a file (`POST /v1/copies:import`, `renkei copies
//! import`): one item's copies, one line per version, in a CSV (UTF-8, a header line) or a
//! fixed-width Shift_JIS (CP932, CRLF) file whose layout is made from the item's copy layout
//! (`schemas/copies/<item>.toml`, the `width` of each field for fixed-width files).
//!
//! Each line holds, in this order: `business_number` (15), `dataset` (16), `effective_from`
//! (8, `YYYYMMDD` in fixed-width files, `YYYY-MM-DD` in CSV), `effective_to` (8, may be
//! blank), `non_disclosure` (1: `0` or `1`, blank is `0`), then the item's fields in layout
//! order. Widths are bytes; a field shorter than its width is padded with spaces.
//!
//! Per line, as the resident-record import: a good line is registered exactly as a single
//! `PUT /v1/copies/{business_number}/{item_code}` is — checked against the item's layout,
//! given the next version, sealed, its linkage record and transfer scheduled in one atomic
//! batch — and a bad line is refused with its line number, stable code and field, and leaves
//! nothing behind; the other lines go on. Replay-safe: every registered line leaves a marker
//! (the copy repository's `import_marker`), so the same file again makes no new version.
//! Lines of different persons are registered concurrently (they share the store's group
//! commits); the lines of one person stay in file order.

use std::collections::HashMap;
use std::sync::Arc;

use renkei_convert::codes::CodeTables;
use renkei_convert::era::EraTable;
use renkei_convert::{Layout, LineError, Record};
use renkei_ids::{BusinessNumber, ItemCode, SystemId};
use serde::{Deserialize, Serialize};

use super::accept::{Copies, CopyRequest, Replay};
use super::layout::{self, CopyLayout, FieldKind};
use crate::error::{Bug, Error};
use crate::registry::import::{RejectedLine, Rejections};

/// Lines handed to the store per round: enough persons at once to share group commits, few
/// enough that a round's work stays small.
pub const DEFAULT_COPY_IMPORT_CHUNK: usize = 256;
/// Width of `business_number` in a fixed-width file (宛名番号, 15 characters).
const BUSINESS_NUMBER_WIDTH: usize = 15;
/// Width of `dataset` in a fixed-width file (データセット番号; the API takes up to 64).
const DATASET_WIDTH: usize = 16;
/// Width of a date in a fixed-width file (`YYYYMMDD`).
const DATE_WIDTH: usize = 8;

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFileFormat {
    /// CSV, UTF-8, LF, a header line of the field names.
    Csv,
    /// Fixed-width, Shift_JIS (CP932), CRLF.
    Fixed,
}

impl CopyFileFormat {
    /// The name used in the query and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyFileFormat::Csv => "csv",
            CopyFileFormat::Fixed => "fixed",
        }
    }
}

/// A layout file as the converter reads it (the subset a copy file needs).
#[derive(Serialize)]
struct LayoutText {
    name: String,
    title: String,
    encoding: &'static str,
    framing: &'static str,
    line_ending: &'static str,
    header: bool,
    fields: Vec<FieldText>,
}

#[derive(Serialize)]
struct FieldText {
    name: String,
    label: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<&'static str>>,
    required: bool,
}

fn bug(what: &'static str) -> Error {
    Error::internal("making a copy file layout", Bug(what))
}

/// The file layout of `item`'s copies in `format`, made from the item's copy layout. The
/// item's own fields are read as written (digits, text, the system's codes) and checked and
/// converted by the copy layout, as a single registration is.
pub fn file_layout(copy: &CopyLayout, format: CopyFileFormat) -> Result<Layout, Error> {
    let fixed = format == CopyFileFormat::Fixed;
    let width = |w: usize| fixed.then_some(w);
    let date = if fixed { "yyyymmdd" } else { "yyyy-mm-dd" };
    let head = |name: &str, label: &str, kind, w, required| FieldText {
        name: name.into(),
        label: label.into(),
        kind,
        width: width(w),
        format: (kind == "date-iso").then_some(date),
        values: (kind == "code-literal").then(|| vec!["0", "1"]),
        required,
    };
    let mut fields = vec![
        head(
            "business_number",
            "宛名番号",
            "alnum",
            BUSINESS_NUMBER_WIDTH,
            true,
        ),
        head("dataset", "データセット番号", "text", DATASET_WIDTH, true),
        head("effective_from", "適用開始日", "date-iso", DATE_WIDTH, true),
        head("effective_to", "適用終了日", "date-iso", DATE_WIDTH, false),
        head("non_disclosure", "不開示", "code-literal", 1, false),
    ];
    for f in &copy.fields {
        let w = match (fixed, f.width) {
            (true, None) => return Err(bug("a copy layout field has no width")),
            (_, w) => w.filter(|_| fixed),
        };
        fields.push(FieldText {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: match f.kind {
                FieldKind::Digits => "digits",
                FieldKind::Text => "text",
                // The system's own code, converted by the copy layout.
                FieldKind::Code => "alnum",
            },
            width: w,
            format: None,
            values: None,
            required: f.required,
        });
    }
    let text = LayoutText {
        name: format!(
            "copy-{}-{}",
            copy.item.as_str().to_ascii_lowercase(),
            format.as_str()
        ),
        title: copy.title.clone(),
        encoding: if fixed { "cp932" } else { "utf-8" },
        framing: if fixed { "fixed-width" } else { "csv" },
        line_ending: if fixed { "crlf" } else { "lf" },
        header: !fixed,
        fields,
    };
    let toml =
        toml::to_string(&text).map_err(|e| Error::internal("making a copy file layout", e))?;
    let codes = CodeTables::builtin().map_err(|e| Error::internal("loading code tables", e))?;
    let eras = EraTable::builtin().map_err(|e| Error::internal("loading the era table", e))?;
    Layout::from_toml(&toml, &codes, eras).map_err(|_| bug("a copy file layout is invalid"))
}

/// What an import answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyImportSummary {
    pub item: String,
    pub format: String,
    pub system: String,
    /// Lines read (good and bad).
    pub lines: u64,
    /// Good lines: registered now, or found registered before.
    pub accepted: u64,
    /// New versions made by this import.
    pub created: u64,
    /// Good lines that made nothing new (a replay, or the latest version's content).
    pub unchanged: u64,
    /// The refused lines, in line order.
    #[serde(flatten)]
    pub rejections: Rejections,
}

impl CopyImportSummary {
    /// An empty summary of `system`'s import of `item` in `format`.
    pub fn new(system: &SystemId, item: &ItemCode, format: CopyFileFormat) -> Self {
        Self {
            item: item.to_string(),
            format: format.as_str().into(),
            system: system.to_string(),
            ..Default::default()
        }
    }
}

/// A line's registration request, from its record.
fn request_of(copy: &CopyLayout, rec: &Record) -> CopyRequest {
    let text = |n: &str| rec.get(n).unwrap_or_default().to_string();
    let data = copy
        .fields
        .iter()
        .filter_map(|f| {
            rec.non_empty(&f.name)
                .map(|v| (f.name.clone(), serde_json::Value::String(v.to_string())))
        })
        .collect();
    CopyRequest {
        dataset: text("dataset"),
        effective_from: text("effective_from"),
        effective_to: rec.non_empty("effective_to").map(str::to_string),
        non_disclosure: rec.get("non_disclosure") == Some("1"),
        data,
    }
}

/// A refusal of one line, or the error that stops the import (the store, a bug).
fn refusal(line: u64, e: Error) -> Result<RejectedLine, Error> {
    // The copy layout names its fields `data.NAME`; in a file they are columns.
    let column = |f: &str| f.strip_prefix("data.").unwrap_or(f).to_string();
    let r = |field: Option<String>, code: &str, message: &str| RejectedLine {
        line,
        field,
        code: code.to_string(),
        message: crate::util::scrub(message.strip_prefix("data.").unwrap_or(message)),
    };
    match e {
        Error::Invalid {
            code,
            field,
            message,
        }
        | Error::Forbidden {
            code,
            field,
            message,
        } => Ok(r(field.as_deref().map(column), code, &message)),
        Error::Conflict { code, message } => Ok(r(None, code, &message)),
        // Another system's business number, like a `PUT`'s 404.
        Error::NotFound => Ok(r(
            Some("business_number".into()),
            "business_number_not_found",
            "business_number: no person linked under this number for this system",
        )),
        other => Err(other),
    }
}

/// How one line ended.
type LineOutcome = (u64, Result<bool, RejectedLine>);

impl Copies {
    /// Checks that `system` may provide `item` at all before a file is read (403
    /// `not_permitted` with a denied-request record, like a single registration).
    pub async fn check_import(&self, system: &SystemId, item: &ItemCode) -> Result<(), Error> {
        self.permitted(system, item).await.map(|_| ())
    }

    /// Registers one line; `Ok(true)` when it made a new version.
    async fn import_line(
        &self,
        system: &SystemId,
        item: &ItemCode,
        copy: &CopyLayout,
        rec: &Record,
    ) -> Result<Result<bool, RejectedLine>, Error> {
        let line = rec.line();
        let bn = match BusinessNumber::parse(rec.get("business_number").unwrap_or_default()) {
            Ok(bn) => bn,
            Err(e) => {
                return Ok(Err(RejectedLine {
                    line,
                    field: Some("business_number".into()),
                    code: e.code().to_string(),
                    message: "business_number: not a valid business number".into(),
                }))
            }
        };
        let req = request_of(copy, rec);
        match self
            .register_as(system, &bn, item, req, Replay::Marker)
            .await
        {
            Ok(a) => Ok(Ok(a.new)),
            Err(e) => refusal(line, e).map(Err),
        }
    }

    /// Registers one chunk of a file's lines, adding to `summary`. Lines of different
    /// business numbers run at once; a store failure stops the import (the lines registered
    /// stay, and replaying the file is harmless).
    pub async fn import_chunk(
        self: &Arc<Self>,
        system: &SystemId,
        item: &ItemCode,
        lines: Vec<Result<Record, LineError>>,
        summary: &mut CopyImportSummary,
    ) -> Result<(), Error> {
        let copy = layout::layout(item)?.ok_or_else(|| bug("no copy layout for the item"))?;
        let mut outcomes: Vec<LineOutcome> = Vec::with_capacity(lines.len());
        // One group per business number, in file order within each.
        let mut groups: Vec<Vec<Record>> = Vec::new();
        let mut by_number: HashMap<String, usize> = HashMap::new();
        for l in lines {
            match l {
                Err(e) => outcomes.push((e.line, Err(e.into()))),
                Ok(rec) => {
                    let key = rec.get("business_number").unwrap_or_default().to_string();
                    let g = *by_number.entry(key).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[g].push(rec);
                }
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for group in groups {
            let (me, system, item, copy) =
                (self.clone(), system.clone(), item.clone(), copy.clone());
            tasks.spawn(async move {
                let mut out = Vec::with_capacity(group.len());
                for rec in &group {
                    let r = me.import_line(&system, &item, &copy, rec).await?;
                    out.push((rec.line(), r));
                }
                Ok::<_, Error>(out)
            });
        }
        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(out)) => outcomes.extend(out),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => {
                    failure = failure.or(Some(Error::internal("importing copies", e)));
                }
            }
        }
        outcomes.sort_by_key(|(line, _)| *line);
        for (_, o) in outcomes {
            summary.lines += 1;
            match o {
                Ok(created) => {
                    summary.accepted += 1;
                    if created {
                        summary.created += 1;
                    } else {
                        summary.unchanged += 1;
                    }
                }
                Err(r) => summary.rejections.push(r),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(s: &str) -> ItemCode {
        ItemCode::parse(s).unwrap()
    }

    #[test]
    fn file_layouts_are_made_from_the_copy_layouts() {
        for code in ["TM00000000000002", "TM00000000000089"] {
            let copy = layout::layout(&item(code)).unwrap().unwrap();
            let csv = file_layout(&copy, CopyFileFormat::Csv).unwrap();
            assert_eq!(csv.fields.len(), 5 + copy.fields.len());
            assert!(csv.header);
            let fixed = file_layout(&copy, CopyFileFormat::Fixed).unwrap();
            let widths: usize = copy.fields.iter().map(|f| f.width.unwrap()).sum();
            assert_eq!(fixed.line_len, 15 + 16 + 8 + 8 + 1 + widths);
        }
    }

    #[test]
    fn a_fixed_width_shift_jis_line_reads_as_a_registration() {
        let copy = layout::layout(&item("TM00000000000089")).unwrap().unwrap();
        let l = file_layout(&copy, CopyFileFormat::Fixed).unwrap();
        let kana = encoding_rs::SHIFT_JIS.encode("ﾔﾏﾀﾞ ﾀﾛｳ").0.into_owned();
        let mut line = format!(
            "{:<15}{:<16}{}{:<8}{}{:<4}{:<3}{}{:<7}",
            "000000000012345", "D2026", "20260401", "", "1", "0001", "123", "9", "1234567"
        )
        .into_bytes();
        line.extend_from_slice(&kana);
        line.resize(l.line_len, b' ');
        line.extend_from_slice(b"\r\n");
        let rec = renkei_convert::LayoutReader::new(&l, &line[..])
            .next()
            .unwrap()
            .unwrap();
        let req = request_of(&copy, &rec);
        assert_eq!(req.dataset, "D2026");
        assert_eq!(req.effective_from, "2026-04-01");
        assert_eq!(req.effective_to, None);
        assert!(req.non_disclosure);
        assert_eq!(req.data["account_kind"], "9");
        assert_eq!(req.data["holder_kana"], "ヤマダ タロウ");
    }

    #[test]
    fn line_refusals_name_the_column_and_stop_on_store_failures() {
        let e = Error::invalid(
            "missing_field",
            "data.income_levy",
            "data.income_levy: required",
        );
        let r = refusal(7, e).unwrap();
        assert_eq!(
            (
                r.line,
                r.field.as_deref(),
                r.code.as_str(),
                r.message.as_str()
            ),
            (
                7,
                Some("income_levy"),
                "missing_field",
                "income_levy: required"
            )
        );
        let r = refusal(3, Error::NotFound).unwrap();
        assert_eq!(r.field.as_deref(), Some("business_number"));
        assert!(refusal(1, Error::internal("x", Bug("y"))).is_err());
    }
}
