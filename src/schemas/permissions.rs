//! The permission table by law (`schemas/permissions/*.toml`, one file per affair): which
//! (事務手続コード, 特定個人情報名コード) pairs an affair (事務コード) may inquire or provide,
//! each with its legal basis. Parsed strictly: unknown fields, malformed codes, duplicate
//! rows and an empty legal basis are problems naming the file, the row and the field, and
//! every problem is reported at once.

use std::collections::HashSet;
use std::path::Path;

use renkei_ids::{AffairCode, ItemCode, ProcedureCode};

/// Which way a row permits information to flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This city asks another agency (情報照会).
    Inquiry,
    /// This city answers another agency (情報提供).
    Provision,
}

impl Direction {
    /// The text used in the table files.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inquiry => "inquiry",
            Direction::Provision => "provision",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    /// 事務コード.
    pub affair: AffairCode,
    /// 事務手続コード.
    pub procedure: ProcedureCode,
    /// 特定個人情報名コード.
    pub item: ItemCode,
    pub direction: Direction,
    /// The law or ordinance that permits it, e.g. `番号法第19条第8号、別表`.
    pub legal_basis: String,
    /// For provision rows: a person answers, not the copies (副本).
    pub manual: bool,
}

type Key = (AffairCode, ProcedureCode, ItemCode, Direction);

/// The whole table.
#[derive(Debug, Clone, Default)]
pub struct PermissionTable {
    rows: Vec<PermissionRow>,
    index: HashSet<Key>,
}

/// One problem in a table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionProblem {
    /// The file (its path, or its name for the built-in copy).
    pub file: String,
    /// Index of the row in the file's `[[rows]]` (from 0), when the problem is in a row.
    pub row: Option<usize>,
    /// The field, when the problem is in one.
    pub field: Option<&'static str>,
    /// Stable machine code, e.g. `duplicate_row`.
    pub code: &'static str,
    /// What is wrong (a fixed text).
    pub message: String,
}

impl std::fmt::Display for PermissionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.file)?;
        match (self.row, self.field) {
            (Some(r), Some(field)) => write!(f, "rows[{r}].{field}: ")?,
            (Some(r), None) => write!(f, "rows[{r}]: ")?,
            (None, Some(field)) => write!(f, "{field}: ")?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The copy built into the binary (the repository's `schemas/permissions/`).
const BUILTIN: &[(&str, &str)] = &[
    (
        "child-medical.toml",
        include_str!("../../schemas/permissions/child-medical.toml"),
    ),
    (
        "kokuho.toml",
        include_str!("../../schemas/permissions/kokuho.toml"),
    ),
    (
        "local-tax.toml",
        include_str!("../../schemas/permissions/local-tax.toml"),
    ),
];

const FILE_FIELDS: &[&str] = &["affair", "title", "rows"];
const ROW_FIELDS: &[&str] = &["procedure", "item", "direction", "legal_basis", "manual"];

/// Collects the problems of one file.
struct FileCheck<'a> {
    file: &'a str,
    problems: &'a mut Vec<PermissionProblem>,
}

impl FileCheck<'_> {
    fn push(
        &mut self,
        row: Option<usize>,
        field: Option<&'static str>,
        code: &'static str,
        message: &str,
    ) {
        self.problems.push(PermissionProblem {
            file: self.file.to_string(),
            row,
            field,
            code,
            message: message.to_string(),
        });
    }

    fn unknown_fields(&mut self, t: &toml::Table, known: &[&str], row: Option<usize>) {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                self.push(
                    row,
                    None,
                    "unknown_field",
                    &format!("unknown field {k:?}; expected one of {}", known.join(", ")),
                );
            }
        }
    }

    /// A required string field.
    fn string<'t>(
        &mut self,
        t: &'t toml::Table,
        field: &'static str,
        row: Option<usize>,
    ) -> Option<&'t str> {
        match t.get(field) {
            None => {
                self.push(row, Some(field), "missing_field", "required");
                None
            }
            Some(toml::Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.push(row, Some(field), "not_a_string", "expected a string");
                None
            }
        }
    }

    /// A required code field parsed by `parse`.
    fn code<T>(
        &mut self,
        t: &toml::Table,
        field: &'static str,
        row: Option<usize>,
        expected: &str,
        parse: fn(&str) -> Result<T, renkei_ids::IdError>,
    ) -> Option<T> {
        let s = self.string(t, field, row)?;
        match parse(s) {
            Ok(v) => Some(v),
            Err(_) => {
                self.push(
                    row,
                    Some(field),
                    "bad_code",
                    &format!("expected {expected}"),
                );
                None
            }
        }
    }
}

impl PermissionTable {
    /// Parses the table from `(file name, text)` pairs; every problem is returned.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<PermissionProblem>> {
        let mut problems = Vec::new();
        let mut table = PermissionTable::default();
        let mut origin: std::collections::HashMap<Key, (String, usize)> = Default::default();
        let mut any = false;
        for (file, text) in files {
            any = true;
            let mut c = FileCheck {
                file,
                problems: &mut problems,
            };
            let doc: toml::Table = match toml::from_str(text) {
                Ok(d) => d,
                Err(e) => {
                    let at = e
                        .span()
                        .map(|s| {
                            let line = text[..s.start.min(text.len())].lines().count().max(1);
                            format!("line {line}: ")
                        })
                        .unwrap_or_default();
                    c.push(None, None, "not_toml", &format!("{at}{}", e.message()));
                    continue;
                }
            };
            c.unknown_fields(&doc, FILE_FIELDS, None);
            let affair = c.code(
                &doc,
                "affair",
                None,
                "a 事務コード: JM followed by 14 digits",
                AffairCode::parse,
            );
            let rows = match doc.get("rows") {
                Some(toml::Value::Array(a)) if !a.is_empty() => a.as_slice(),
                Some(toml::Value::Array(_)) | None => {
                    c.push(None, Some("rows"), "no_rows", "at least one [[rows]] entry");
                    &[]
                }
                Some(_) => {
                    c.push(
                        None,
                        Some("rows"),
                        "not_a_table",
                        "expected [[rows]] tables",
                    );
                    &[]
                }
            };
            for (i, v) in rows.iter().enumerate() {
                let Some(t) = v.as_table() else {
                    c.push(Some(i), None, "not_a_table", "expected a table");
                    continue;
                };
                c.unknown_fields(t, ROW_FIELDS, Some(i));
                let procedure = c.code(
                    t,
                    "procedure",
                    Some(i),
                    "a 事務手続コード: JT followed by 14 digits",
                    ProcedureCode::parse,
                );
                let item = c.code(
                    t,
                    "item",
                    Some(i),
                    "a 特定個人情報名コード: TM followed by 14 digits",
                    ItemCode::parse,
                );
                let direction = match c.string(t, "direction", Some(i)) {
                    Some("inquiry") => Some(Direction::Inquiry),
                    Some("provision") => Some(Direction::Provision),
                    Some(_) => {
                        c.push(
                            Some(i),
                            Some("direction"),
                            "bad_direction",
                            "expected \"inquiry\" or \"provision\"",
                        );
                        None
                    }
                    None => None,
                };
                let legal_basis = c.string(t, "legal_basis", Some(i)).and_then(|s| {
                    if s.trim().is_empty() {
                        c.push(
                            Some(i),
                            Some("legal_basis"),
                            "empty_legal_basis",
                            "name the law or ordinance that permits this row",
                        );
                        None
                    } else {
                        Some(s.trim().to_string())
                    }
                });
                let manual = match t.get("manual") {
                    None => Some(false),
                    Some(toml::Value::Boolean(b)) => Some(*b),
                    Some(_) => {
                        c.push(
                            Some(i),
                            Some("manual"),
                            "not_a_boolean",
                            "expected true or false",
                        );
                        None
                    }
                };
                if manual == Some(true) && direction == Some(Direction::Inquiry) {
                    c.push(
                        Some(i),
                        Some("manual"),
                        "manual_on_inquiry",
                        "only a provision row can be answered by a person",
                    );
                }
                let (
                    Some(affair),
                    Some(procedure),
                    Some(item),
                    Some(direction),
                    Some(legal_basis),
                    Some(manual),
                ) = (
                    affair.clone(),
                    procedure,
                    item,
                    direction,
                    legal_basis,
                    manual,
                )
                else {
                    continue;
                };
                let key = (affair.clone(), procedure.clone(), item.clone(), direction);
                if let Some((f, r)) = origin.get(&key) {
                    c.push(
                        Some(i),
                        None,
                        "duplicate_row",
                        &format!("the same affair, procedure, item and direction as {f} rows[{r}]"),
                    );
                    continue;
                }
                origin.insert(key.clone(), (file.to_string(), i));
                table.index.insert(key);
                table.rows.push(PermissionRow {
                    affair,
                    procedure,
                    item,
                    direction,
                    legal_basis,
                    manual,
                });
            }
        }
        if !any {
            problems.push(PermissionProblem {
                file: "permissions".into(),
                row: None,
                field: None,
                code: "no_permission_table",
                message: "no permission table files (*.toml)".into(),
            });
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems)
        }
    }

    /// Reads every `*.toml` directly in `dir` (sorted by name).
    pub fn load_dir(dir: &Path) -> Result<Self, Vec<PermissionProblem>> {
        let (texts, unreadable) = super::read_toml_files(dir);
        let mut unreadable: Vec<PermissionProblem> = unreadable
            .into_iter()
            .map(|(file, message)| PermissionProblem {
                file,
                row: None,
                field: None,
                code: "unreadable",
                message,
            })
            .collect();
        let parsed = Self::from_files(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
        match parsed {
            Ok(t) if unreadable.is_empty() => Ok(t),
            Ok(_) => Err(unreadable),
            Err(mut p) => {
                if texts.is_empty() {
                    // Name the folder rather than a bare "permissions".
                    for q in &mut p {
                        q.file = dir.display().to_string();
                    }
                }
                unreadable.extend(p);
                Err(unreadable)
            }
        }
    }

    /// The copy built into the binary.
    pub fn builtin() -> Result<Self, Vec<PermissionProblem>> {
        Self::from_files(BUILTIN.iter().copied())
    }

    /// Whether `affair` may do `direction` for (`procedure`, `item`).
    pub fn permits(
        &self,
        affair: &AffairCode,
        procedure: &ProcedureCode,
        item: &ItemCode,
        direction: Direction,
    ) -> bool {
        self.index
            .contains(&(affair.clone(), procedure.clone(), item.clone(), direction))
    }

    /// True when the table has at least one row for `affair`.
    pub fn knows_affair(&self, affair: &AffairCode) -> bool {
        self.rows.iter().any(|r| &r.affair == affair)
    }

    /// Every row, in file order.
    pub fn rows(&self) -> &[PermissionRow] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
affair = "JM01000000121000"
title = "x"
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "inquiry"
legal_basis = "番号法第19条第9号"
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "provision"
legal_basis = "番号法第19条第8号、別表"
manual = true
"#;

    fn codes(r: Result<PermissionTable, Vec<PermissionProblem>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}:{}:{}",
                    p.file,
                    p.row.map(|r| r.to_string()).unwrap_or_default(),
                    p.field.unwrap_or(""),
                    p.code
                )
            })
            .collect()
    }

    #[test]
    fn good_table_parses_and_answers() {
        let t = PermissionTable::from_files([("a.toml", GOOD)]).expect("good");
        assert_eq!(t.rows().len(), 2);
        let jm = AffairCode::parse("JM01000000121000").unwrap();
        let jt = ProcedureCode::parse("JT01010000000214").unwrap();
        let tm = ItemCode::parse("TM00000000000002").unwrap();
        assert!(t.permits(&jm, &jt, &tm, Direction::Inquiry));
        assert!(t.permits(&jm, &jt, &tm, Direction::Provision));
        assert!(t.rows()[1].manual);
        let other = ItemCode::parse("TM00000000000089").unwrap();
        assert!(!t.permits(&jm, &jt, &other, Direction::Inquiry));
        assert!(t.knows_affair(&jm));
    }

    #[test]
    fn builtin_table_is_valid_and_has_the_subsidy_rows() {
        let t = PermissionTable::builtin().expect("built-in table");
        let jm = AffairCode::parse("JM01000000121000").unwrap();
        let n = |d: Direction| {
            t.rows()
                .iter()
                .filter(|r| r.affair == jm && r.direction == d)
                .count()
        };
        assert_eq!(n(Direction::Inquiry), 2);
        // The public-fund account copies the development deployment provides.
        assert_eq!(n(Direction::Provision), 1);
        let tax = AffairCode::parse("JM01000000020000").unwrap();
        let tax_rows: Vec<_> = t.rows().iter().filter(|r| r.affair == tax).collect();
        assert!(tax_rows.iter().all(|r| r.direction == Direction::Provision));
        // Local-tax income from copies, and under a second procedure answered by a person.
        assert_eq!(tax_rows.iter().filter(|r| !r.manual).count(), 1);
        assert_eq!(tax_rows.iter().filter(|r| r.manual).count(), 1);
    }

    #[test]
    fn every_problem_is_named_with_file_row_and_field() {
        let bad = r#"
affair = "JM0100000012100"
colour = "red"
[[rows]]
procedure = "JT0101000000021X"
item = "TM00000000000002"
direction = "sideways"
legal_basis = "  "
extra = 1
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "inquiry"
legal_basis = "x"
manual = true
"#;
        let got = codes(PermissionTable::from_files([("b.toml", bad)]));
        for want in [
            "b.toml:::unknown_field",
            "b.toml::affair:bad_code",
            "b.toml:0::unknown_field",
            "b.toml:0:procedure:bad_code",
            "b.toml:0:direction:bad_direction",
            "b.toml:0:legal_basis:empty_legal_basis",
            "b.toml:1:manual:manual_on_inquiry",
        ] {
            assert!(got.contains(&want.to_string()), "{want} missing in {got:?}");
        }
    }

    #[test]
    fn duplicate_rows_across_files_and_missing_fields() {
        let got = codes(PermissionTable::from_files([
            ("a.toml", GOOD),
            ("c.toml", GOOD),
            (
                "d.toml",
                "affair = \"JM01000000121000\"\n[[rows]]\nitem = \"TM00000000000002\"\n",
            ),
            ("e.toml", "affair = \"JM01000000121000\"\nrows = []\n"),
            ("f.toml", "affair = ["),
        ]));
        for want in [
            "c.toml:0::duplicate_row",
            "c.toml:1::duplicate_row",
            "d.toml:0:procedure:missing_field",
            "d.toml:0:direction:missing_field",
            "d.toml:0:legal_basis:missing_field",
            "e.toml::rows:no_rows",
            "f.toml:::not_toml",
        ] {
            assert!(got.contains(&want.to_string()), "{want} missing in {got:?}");
        }
        assert!(!got.iter().any(|g| g.starts_with("a.toml")), "{got:?}");
    }

    #[test]
    fn no_files_is_a_problem() {
        let got = codes(PermissionTable::from_files([]));
        assert_eq!(got, vec!["permissions:::no_permission_table".to_string()]);
    }
}
