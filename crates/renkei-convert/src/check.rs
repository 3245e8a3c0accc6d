//! `renkei schemas check`: validates every layout, code table and the era table under a folder.

use std::path::{Path, PathBuf};

use crate::codes::{CodeTable, CodeTables};
use crate::era::EraTable;
use crate::layout::Layout;

/// One problem found in a schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// The file.
    pub file: PathBuf,
    /// Stable machine code, e.g. `missing_code_table`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.code,
            self.message
        )
    }
}

/// The `*.toml` files directly in `dir`, sorted (empty if the folder is missing).
pub(crate) fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Checks `dir/eras.toml`, `dir/codes/*.toml` and `dir/layouts/*.toml`; returns every problem
/// (empty = all good). Unknown keys, bad widths, overlapping code versions and references to
/// missing code tables are all reported.
pub fn check_schemas(dir: &Path) -> Vec<SchemaProblem> {
    let mut problems = Vec::new();
    let mut push = |file: &Path, code: &'static str, message: String| {
        problems.push(SchemaProblem {
            file: file.to_path_buf(),
            code,
            message,
        });
    };
    let era_path = dir.join("eras.toml");
    let eras = match std::fs::read_to_string(&era_path) {
        Ok(text) => match EraTable::from_toml(&text) {
            Ok(t) => Some(t),
            Err(e) => {
                push(&era_path, e.code(), e.to_string());
                None
            }
        },
        Err(e) => {
            push(&era_path, "unreadable", e.to_string());
            None
        }
    };
    let mut codes = CodeTables::default();
    let codes_dir = dir.join("codes");
    for path in toml_files(&codes_dir) {
        match std::fs::read_to_string(&path).map_err(|e| e.to_string()) {
            Ok(text) => match CodeTable::from_toml(&text) {
                Ok(t) => {
                    if codes.get(&t.name).is_ok() {
                        push(
                            &path,
                            "duplicate_code_table",
                            format!("table {:?} defined twice", t.name),
                        );
                    }
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    if stem != t.name {
                        push(
                            &path,
                            "name_mismatch",
                            format!("table {:?} should live in {}.toml", t.name, t.name),
                        );
                    }
                    codes.insert(t);
                }
                Err(e) => push(&path, e.code(), e.to_string()),
            },
            Err(e) => push(&path, "unreadable", e),
        }
    }
    let layouts_dir = dir.join("layouts");
    let layout_files = toml_files(&layouts_dir);
    if layout_files.is_empty() {
        push(&layouts_dir, "no_layouts", "no layout files".into());
    }
    let fallback;
    let eras = match &eras {
        Some(e) => e,
        None => match EraTable::builtin() {
            Ok(e) => e,
            Err(e) => {
                fallback = e;
                push(&era_path, fallback.code(), fallback.to_string());
                return problems;
            }
        },
    };
    for path in layout_files {
        match std::fs::read_to_string(&path) {
            Ok(text) => match Layout::from_toml(&text, &codes, eras) {
                Ok(l) => {
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    if stem != l.name {
                        push(
                            &path,
                            "name_mismatch",
                            format!("layout {:?} should live in {}.toml", l.name, l.name),
                        );
                    }
                }
                Err(errs) => {
                    for e in errs {
                        push(&path, e.code, e.to_string());
                    }
                }
            },
            Err(e) => push(&path, "unreadable", e.to_string()),
        }
    }
    problems
}
