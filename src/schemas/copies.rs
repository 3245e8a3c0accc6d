//! Copy (副本) layouts as data: `copies/<item code>.toml` in the schemas folder (or the copy of
//! the repository's `schemas/copies/` built into the binary). Parsed strictly and checked
//! against the folder's code tables; every problem names the file, the line and the field,
//! and all of them are reported at once. The set in force is swapped whole with the settings
//! (start and reload, see `settings`); [`in_force`] answers lookups between swaps.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use renkei_convert::codes::{CodeTable, CodeTables};
use renkei_ids::ItemCode;
use serde::Deserialize;
use toml::Spanned;

/// The copy built into the binary (the repository's `schemas/copies/`).
const BUILTIN: &[(&str, &str)] = &[
    (
        "TM00000000000002.toml",
        include_str!("../../schemas/copies/TM00000000000002.toml"),
    ),
    (
        "TM00000000000089.toml",
        include_str!("../../schemas/copies/TM00000000000089.toml"),
    ),
];

/// How one field is checked and converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// ASCII digits (full-width digits are accepted and converted), at most `max`.
    Digits,
    /// Text without control characters, half-width kana made full-width, at most `max`.
    Text,
    /// A business-system code converted through the code table `table`.
    Code,
}

/// One field of a copy layout.
#[derive(Debug, Clone)]
pub struct CopyField {
    /// The key in the business system's `data`.
    pub name: String,
    /// The name the field is sent under (the platform's field name).
    pub label: String,
    pub kind: FieldKind,
    pub max: Option<usize>,
    /// The field's width in bytes in a fixed-width bulk file (`copies::import`).
    pub width: Option<usize>,
    /// The code table's name (`kind = "code"`).
    pub table: Option<String>,
    pub required: bool,
    /// The code table itself, resolved when the layout was loaded (`kind = "code"`).
    pub codes: Option<CodeTable>,
}

/// The layout of one item's copy.
#[derive(Debug, Clone)]
pub struct CopyLayout {
    pub item: ItemCode,
    pub title: String,
    pub fields: Vec<CopyField>,
}

/// Every item's copy layout, by item.
#[derive(Debug, Clone, Default)]
pub struct CopyLayouts {
    by_item: BTreeMap<ItemCode, Arc<CopyLayout>>,
}

/// One problem in a copy layout file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyLayoutProblem {
    /// The file (its path, or its name for the built-in copy).
    pub file: String,
    /// 1-based line, when the problem is at a place in the file.
    pub line: Option<usize>,
    /// The field, e.g. `fields[2].table` or `item`, when the problem is in one.
    pub field: Option<String>,
    /// Stable machine code, e.g. `unknown_code_table`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CopyLayoutProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Why the built-in copy layouts could not be used (a build defect, caught by the unit tests).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the built-in copy layouts are invalid: {}", problems.join("; "))]
pub struct BuiltinCopyLayoutsError {
    /// Every problem, as text.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    item: Spanned<String>,
    title: String,
    #[serde(default)]
    fields: Vec<Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    label: Spanned<String>,
    kind: FieldKind,
    #[serde(default)]
    max: Option<Spanned<usize>>,
    #[serde(default)]
    width: Option<Spanned<usize>>,
    #[serde(default)]
    table: Option<Spanned<String>>,
    #[serde(default)]
    required: bool,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Collects the problems of one file.
struct FileCheck<'a> {
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<CopyLayoutProblem>,
}

impl FileCheck<'_> {
    fn push(
        &mut self,
        at: Option<usize>,
        field: Option<String>,
        code: &'static str,
        message: &str,
    ) {
        self.problems.push(CopyLayoutProblem {
            file: self.file.to_string(),
            line: at.map(|o| line_of(self.text, o)),
            field,
            code,
            message: message.to_string(),
        });
    }

    /// Parses and checks one file; `None` when it has a problem.
    fn layout(&mut self, codes: &CodeTables) -> Option<CopyLayout> {
        let raw: RawLayout = match toml::from_str(self.text) {
            Ok(r) => r,
            Err(e) => {
                let at = e.span().map(|s| s.start);
                self.push(at, None, "copy_layout_syntax", e.message());
                return None;
            }
        };
        let before = self.problems.len();
        let item_at = Some(raw.item.span().start);
        let item = match ItemCode::parse(raw.item.get_ref()) {
            Ok(i) => Some(i),
            Err(_) => {
                self.push(
                    item_at,
                    Some("item".into()),
                    "bad_item_code",
                    "a 特定個人情報名コード: TM followed by 14 digits",
                );
                None
            }
        };
        let stem = Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if item.is_some() && stem != raw.item.get_ref() {
            self.push(
                item_at,
                Some("item".into()),
                "name_mismatch",
                "the layout of an item lives in <item code>.toml",
            );
        }
        if raw.fields.is_empty() {
            self.push(
                None,
                Some("fields".into()),
                "no_fields",
                "a copy layout needs fields",
            );
        }
        let mut fields = Vec::with_capacity(raw.fields.len());
        for (i, f) in raw.fields.iter().enumerate() {
            let whole = Some(f.span().start);
            let f = f.get_ref();
            let field = |k: &str| Some(format!("fields[{i}].{k}"));
            let at = |s: &Spanned<_>| Some(s.span().start);
            let name = f.name.get_ref();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                self.push(
                    at(&f.name),
                    field("name"),
                    "bad_field_name",
                    "name must be ASCII snake case",
                );
            }
            if raw.fields[..i]
                .iter()
                .any(|g| g.get_ref().name.get_ref() == name)
            {
                self.push(
                    at(&f.name),
                    field("name"),
                    "duplicate_field",
                    "the same name as an earlier field",
                );
            }
            if f.label.get_ref().trim().is_empty() {
                self.push(
                    Some(f.label.span().start),
                    field("label"),
                    "empty_label",
                    "name the platform's field",
                );
            }
            let max = f.max.as_ref().map(|m| *m.get_ref());
            if let Some(m) = f.max.as_ref().filter(|m| *m.get_ref() == 0) {
                self.push(
                    Some(m.span().start),
                    field("max"),
                    "bad_max",
                    "max must be at least 1",
                );
            }
            let width = f.width.as_ref().map(|w| *w.get_ref());
            if let Some(w) = f.width.as_ref().filter(|w| *w.get_ref() == 0) {
                self.push(
                    Some(w.span().start),
                    field("width"),
                    "bad_width",
                    "width must be at least 1",
                );
            }
            let codes = match (f.kind, f.table.as_ref()) {
                (FieldKind::Code, None) => {
                    self.push(
                        whole,
                        field("table"),
                        "missing_code_table",
                        "a code field names its code table",
                    );
                    None
                }
                (FieldKind::Code, Some(t)) => match codes.get(t.get_ref()) {
                    Ok(t) => Some(t.clone()),
                    Err(_) => {
                        self.push(
                            Some(t.span().start),
                            field("table"),
                            "unknown_code_table",
                            "no code table of this name in codes/",
                        );
                        None
                    }
                },
                (_, Some(t)) => {
                    self.push(
                        Some(t.span().start),
                        field("table"),
                        "table_not_code",
                        "only a code field has a code table",
                    );
                    None
                }
                (_, None) => None,
            };
            fields.push(CopyField {
                name: name.clone(),
                label: f.label.get_ref().clone(),
                kind: f.kind,
                max,
                width,
                table: f.table.as_ref().map(|t| t.get_ref().clone()),
                required: f.required,
                codes,
            });
        }
        if self.problems.len() > before {
            return None;
        }
        Some(CopyLayout {
            item: item?,
            title: raw.title,
            fields,
        })
    }
}

impl CopyLayouts {
    /// Parses `(file name, text)` pairs; every problem of every file is returned at once.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        codes: &CodeTables,
    ) -> Result<Self, Vec<CopyLayoutProblem>> {
        let mut problems = Vec::new();
        let mut out = Self::default();
        let mut origin: BTreeMap<ItemCode, String> = BTreeMap::new();
        let mut any = false;
        for (file, text) in files {
            any = true;
            let mut c = FileCheck {
                file,
                text,
                problems: &mut problems,
            };
            let Some(l) = c.layout(codes) else {
                continue;
            };
            if let Some(first) = origin.get(&l.item) {
                c.push(
                    None,
                    Some("item".into()),
                    "duplicate_item",
                    &format!("the same item as {first}"),
                );
                continue;
            }
            origin.insert(l.item.clone(), file.to_string());
            out.by_item.insert(l.item.clone(), Arc::new(l));
        }
        if !any {
            problems.push(CopyLayoutProblem {
                file: "copies".into(),
                line: None,
                field: None,
                code: "no_copy_layouts",
                message: "no copy layout files (*.toml)".into(),
            });
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Reads every `copies/*.toml` of the schemas folder `dir` (sorted by name), with the
    /// folder's code tables (`codes/`).
    pub fn load_dir(dir: &Path) -> Result<Self, Vec<CopyLayoutProblem>> {
        let copies = dir.join("copies");
        let codes = CodeTables::load_dir(&dir.join("codes")).map_err(|es| {
            es.into_iter()
                .map(|(p, e)| CopyLayoutProblem {
                    file: p.display().to_string(),
                    line: None,
                    field: None,
                    code: e.code(),
                    message: e.to_string(),
                })
                .collect::<Vec<_>>()
        })?;
        let (texts, unreadable) = super::read_toml_files(&copies);
        let mut problems: Vec<CopyLayoutProblem> = unreadable
            .into_iter()
            .map(|(file, message)| CopyLayoutProblem {
                file,
                line: None,
                field: None,
                code: "unreadable",
                message,
            })
            .collect();
        let parsed = Self::from_files(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())), &codes);
        match parsed {
            Ok(l) if problems.is_empty() => Ok(l),
            Ok(_) => Err(problems),
            Err(mut p) => {
                if texts.is_empty() {
                    // Name the folder rather than a bare "copies".
                    for q in &mut p {
                        q.file = copies.display().to_string();
                    }
                }
                problems.extend(p);
                Err(problems)
            }
        }
    }

    /// The copy built into the binary, with the built-in code tables.
    pub fn builtin() -> Result<Self, Vec<CopyLayoutProblem>> {
        let codes = CodeTables::builtin().map_err(|e| {
            vec![CopyLayoutProblem {
                file: "codes".into(),
                line: None,
                field: None,
                code: e.code(),
                message: e.to_string(),
            }]
        })?;
        Self::from_files(BUILTIN.iter().copied(), &codes)
    }

    /// The layout of `item`'s copy, if there is one.
    pub fn get(&self, item: &ItemCode) -> Option<Arc<CopyLayout>> {
        self.by_item.get(item).cloned()
    }

    /// The items that have a copy layout.
    pub fn items(&self) -> Vec<ItemCode> {
        self.by_item.keys().cloned().collect()
    }

    /// How many items have a layout.
    pub fn len(&self) -> usize {
        self.by_item.len()
    }

    /// True when no item has a layout.
    pub fn is_empty(&self) -> bool {
        self.by_item.is_empty()
    }
}

/// The layouts put in force by the settings (start, reload); `None` before the first.
static IN_FORCE: RwLock<Option<Arc<CopyLayouts>>> = RwLock::new(None);

/// Puts `layouts` in force for every later lookup (called when settings are put in force).
pub fn put_in_force(layouts: Arc<CopyLayouts>) {
    match IN_FORCE.write() {
        Ok(mut g) => *g = Some(layouts),
        Err(p) => *p.into_inner() = Some(layouts),
    }
}

/// The layouts in force: those of the settings in force, or — in a process that has put none
/// in force (a command that runs without the gateway) — the built-in copy.
pub fn in_force() -> Result<Arc<CopyLayouts>, BuiltinCopyLayoutsError> {
    let set = match IN_FORCE.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if let Some(l) = set {
        return Ok(l);
    }
    static BUILT_IN: OnceLock<Result<Arc<CopyLayouts>, BuiltinCopyLayoutsError>> = OnceLock::new();
    BUILT_IN
        .get_or_init(|| {
            CopyLayouts::builtin()
                .map(Arc::new)
                .map_err(|ps| BuiltinCopyLayoutsError {
                    problems: ps.iter().map(|p| p.to_string()).collect(),
                })
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        let codes = CodeTables::builtin().unwrap();
        match CopyLayouts::from_files(files.iter().copied(), &codes) {
            Ok(_) => vec![],
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn builtin_layouts_are_valid() {
        let l = CopyLayouts::builtin().unwrap();
        assert_eq!(l.len(), 2);
        let acct = l
            .get(&ItemCode::parse("TM00000000000089").unwrap())
            .unwrap();
        assert!(
            acct.fields[2].codes.is_some(),
            "code table resolved at load"
        );
    }

    #[test]
    fn every_problem_names_the_file_line_and_field() {
        let good = "item = \"TM00000000000003\"\ntitle = \"t\"\n\n[[fields]]\nname = \"a\"\nlabel = \"A\"\nkind = \"digits\"\n";
        assert!(problems(&[("TM00000000000003.toml", good)]).is_empty());

        let bad = "item = \"TM00000000000003\"\ntitle = \"t\"\n\n[[fields]]\nname = \"a\"\nlabel = \"A\"\nkind = \"code\"\ntable = \"no-such-table\"\n\n[[fields]]\nname = \"a\"\nlabel = \"B\"\nkind = \"text\"\nmax = 0\n";
        let got = problems(&[("TM00000000000003.toml", bad)]);
        assert!(
            got.iter()
                .any(|p| p.starts_with("TM00000000000003.toml: line ")
                    && p.contains("fields[0].table: unknown_code_table")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|p| p.contains("fields[1].name: duplicate_field")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|p| p.contains("fields[1].max: bad_max")),
            "{got:?}"
        );

        let unknown_key = "item = \"TM00000000000003\"\ntitle = \"t\"\n\n[[fields]]\nname = \"a\"\nlabel = \"A\"\nkind = \"digits\"\nmaxx = 3\n";
        let got = problems(&[("TM00000000000003.toml", unknown_key)]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("TM00000000000003.toml: line 8: copy_layout_syntax: "),
            "{got:?}"
        );

        let misnamed = problems(&[("other.toml", good)]);
        assert!(
            misnamed[0].contains("line 1: item: name_mismatch"),
            "{misnamed:?}"
        );
        let twice = problems(&[
            ("TM00000000000003.toml", good),
            ("TM00000000000003.toml", good),
        ]);
        assert!(twice[0].contains("item: duplicate_item"), "{twice:?}");
        assert_eq!(
            problems(&[]),
            vec!["copies: no_copy_layouts: no copy layout files (*.toml)"]
        );
    }
}
