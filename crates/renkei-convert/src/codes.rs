//! Code tables as data (`schemas/codes/*.toml`): internal ↔ platform codes, per effective date.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use time::Date;

use crate::era::parse_ymd;

/// A code table file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTableFile {
    /// Table name referenced by layouts, e.g. `"sex"`.
    pub name: String,
    /// Human title, e.g. `"性別"`.
    pub title: String,
    /// Versions, each with an effective period.
    pub versions: Vec<CodeVersionFile>,
}

/// One version of a table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeVersionFile {
    /// Version label, e.g. `"2"`.
    pub version: String,
    /// First day in effect, `"YYYY-MM-DD"`.
    pub effective_from: String,
    /// Last day in effect (inclusive), absent when open-ended.
    pub effective_to: Option<String>,
    /// The codes.
    pub codes: Vec<CodeEntry>,
}

/// One code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeEntry {
    /// The business system's code, e.g. `"02"`.
    pub internal: String,
    /// The canonical/platform code, e.g. `"01"`.
    pub platform: String,
    /// Meaning, e.g. `"世帯主"`.
    pub label: String,
}

/// A validated version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeVersion {
    /// Version label.
    pub version: String,
    /// First day in effect.
    pub from: Date,
    /// Last day in effect, inclusive.
    pub to: Option<Date>,
    /// The codes.
    pub codes: Vec<CodeEntry>,
}

/// A validated code table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTable {
    /// Table name.
    pub name: String,
    /// Human title.
    pub title: String,
    /// Versions sorted by start date, never overlapping.
    pub versions: Vec<CodeVersion>,
}

/// Why a code could not be mapped or a table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The value is not in the table version in effect.
    #[error("code table {table}: unknown {side} code {value:?} on {date}")]
    UnknownCode {
        /// Table name.
        table: String,
        /// `internal` or `platform`.
        side: &'static str,
        /// The value.
        value: String,
        /// The date looked up.
        date: Date,
    },
    /// No version is in effect on the date.
    #[error("code table {table}: no version in effect on {date}")]
    NoVersion {
        /// Table name.
        table: String,
        /// The date.
        date: Date,
    },
    /// The table name is not loaded.
    #[error("no code table named {0:?}")]
    NoTable(String),
    /// The table file is invalid.
    #[error("code table {table}: {message}")]
    Invalid {
        /// Table name or file.
        table: String,
        /// What is wrong.
        message: String,
    },
}

impl CodeError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::UnknownCode { .. } => "unknown_code",
            CodeError::NoVersion { .. } => "no_code_version",
            CodeError::NoTable(_) => "no_code_table",
            CodeError::Invalid { .. } => "invalid_code_table",
        }
    }
}

impl CodeTable {
    /// Parses and validates one table file's text.
    pub fn from_toml(text: &str) -> Result<Self, CodeError> {
        let f: CodeTableFile = toml::from_str(text).map_err(|e| CodeError::Invalid {
            table: "?".into(),
            message: e.message().to_owned(),
        })?;
        let invalid = |message: String| CodeError::Invalid {
            table: f.name.clone(),
            message,
        };
        if f.name.is_empty() || f.versions.is_empty() {
            return Err(invalid("name and at least one version are required".into()));
        }
        let mut versions = Vec::new();
        for v in &f.versions {
            let from = parse_ymd(&v.effective_from).ok_or_else(|| {
                invalid(format!(
                    "version {}: effective_from must be YYYY-MM-DD",
                    v.version
                ))
            })?;
            let to = match &v.effective_to {
                Some(t) => Some(parse_ymd(t).ok_or_else(|| {
                    invalid(format!(
                        "version {}: effective_to must be YYYY-MM-DD",
                        v.version
                    ))
                })?),
                None => None,
            };
            if to.is_some_and(|t| t < from) {
                return Err(invalid(format!(
                    "version {}: effective_to is before effective_from",
                    v.version
                )));
            }
            for (i, c) in v.codes.iter().enumerate() {
                if c.internal.is_empty() || c.platform.is_empty() {
                    return Err(invalid(format!("version {}: empty code", v.version)));
                }
                for d in &v.codes[i + 1..] {
                    if d.internal == c.internal || d.platform == c.platform {
                        return Err(invalid(format!(
                            "version {}: duplicate code {:?}/{:?}",
                            v.version, d.internal, d.platform
                        )));
                    }
                }
            }
            versions.push(CodeVersion {
                version: v.version.clone(),
                from,
                to,
                codes: v.codes.clone(),
            });
        }
        versions.sort_by_key(|v| v.from);
        for w in versions.windows(2) {
            let overlaps = match w[0].to {
                None => true,
                Some(t) => t >= w[1].from,
            };
            if overlaps {
                return Err(invalid(format!(
                    "versions {} and {} overlap",
                    w[0].version, w[1].version
                )));
            }
        }
        Ok(Self {
            name: f.name,
            title: f.title,
            versions,
        })
    }

    /// The version in effect on `date`.
    pub fn version_on(&self, date: Date) -> Result<&CodeVersion, CodeError> {
        self.versions
            .iter()
            .find(|v| v.from <= date && v.to.is_none_or(|t| date <= t))
            .ok_or_else(|| CodeError::NoVersion {
                table: self.name.clone(),
                date,
            })
    }

    /// Internal code → platform code on `date`.
    pub fn to_platform(&self, internal: &str, date: Date) -> Result<&str, CodeError> {
        let v = self.version_on(date)?;
        v.codes
            .iter()
            .find(|c| c.internal == internal)
            .map(|c| c.platform.as_str())
            .ok_or_else(|| self.unknown("internal", internal, date))
    }

    /// Platform code → internal code on `date`.
    pub fn to_internal(&self, platform: &str, date: Date) -> Result<&str, CodeError> {
        let v = self.version_on(date)?;
        v.codes
            .iter()
            .find(|c| c.platform == platform)
            .map(|c| c.internal.as_str())
            .ok_or_else(|| self.unknown("platform", platform, date))
    }

    fn unknown(&self, side: &'static str, value: &str, date: Date) -> CodeError {
        CodeError::UnknownCode {
            table: self.name.clone(),
            side,
            value: value.to_owned(),
            date,
        }
    }
}

/// A set of code tables by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeTables {
    tables: BTreeMap<String, CodeTable>,
}

const BUILTIN_CODES: [&str; 4] = [
    include_str!("../../../schemas/codes/sex.toml"),
    include_str!("../../../schemas/codes/relationship.toml"),
    include_str!("../../../schemas/codes/change-kind.toml"),
    include_str!("../../../schemas/codes/account-kind.toml"),
];

impl CodeTables {
    /// The tables compiled in from `schemas/codes/`.
    pub fn builtin() -> Result<Self, CodeError> {
        let mut t = Self::default();
        for text in BUILTIN_CODES {
            t.insert(CodeTable::from_toml(text)?);
        }
        Ok(t)
    }

    /// Loads every `*.toml` in `dir`; all problems are returned at once.
    pub fn load_dir(dir: &Path) -> Result<Self, Vec<(std::path::PathBuf, CodeError)>> {
        let mut t = Self::default();
        let mut errors = Vec::new();
        for path in crate::check::toml_files(dir) {
            match std::fs::read_to_string(&path) {
                Ok(text) => match CodeTable::from_toml(&text) {
                    Ok(table) => t.insert(table),
                    Err(e) => errors.push((path, e)),
                },
                Err(e) => errors.push((
                    path,
                    CodeError::Invalid {
                        table: "?".into(),
                        message: e.to_string(),
                    },
                )),
            }
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    /// Adds or replaces a table.
    pub fn insert(&mut self, table: CodeTable) {
        self.tables.insert(table.name.clone(), table);
    }

    /// The table named `name`.
    pub fn get(&self, name: &str) -> Result<&CodeTable, CodeError> {
        self.tables
            .get(name)
            .ok_or_else(|| CodeError::NoTable(name.to_owned()))
    }

    /// Table names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn builtin_tables_map_both_ways_by_date() {
        let t = CodeTables::builtin().unwrap();
        let sex = t.get("sex").unwrap();
        assert_eq!(sex.to_platform("1", date!(2026 - 04 - 01)).unwrap(), "1");
        assert_eq!(sex.to_internal("0", date!(2026 - 04 - 01)).unwrap(), "9");
        let rel = t.get("relationship").unwrap();
        assert_eq!(rel.to_platform("02", date!(2020 - 01 - 01)).unwrap(), "01");
        assert_eq!(rel.to_platform("52", date!(2026 - 04 - 01)).unwrap(), "21");
        assert_eq!(rel.to_platform("13", date!(2026 - 04 - 01)).unwrap(), "04");
        let e = rel.to_platform("13", date!(2026 - 03 - 31)).unwrap_err();
        assert_eq!(e.code(), "unknown_code");
        assert_eq!(
            e.to_string(),
            "code table relationship: unknown internal code \"13\" on 2026-03-31"
        );
        assert_eq!(
            rel.to_platform("02", date!(2000 - 01 - 01))
                .unwrap_err()
                .code(),
            "no_code_version"
        );
        assert_eq!(
            t.get("nope").unwrap_err().to_string(),
            "no code table named \"nope\""
        );
    }

    #[test]
    fn overlapping_versions_and_unknown_keys_are_refused() {
        let overlap = r#"name="x"
title="x"
[[versions]]
version="1"
effective_from="2020-01-01"
codes=[{internal="1",platform="1",label="a"}]
[[versions]]
version="2"
effective_from="2021-01-01"
codes=[{internal="1",platform="1",label="a"}]
"#;
        let e = CodeTable::from_toml(overlap).unwrap_err();
        assert_eq!(e.to_string(), "code table x: versions 1 and 2 overlap");
        let unknown = "name='x'\ntitle='x'\ncolour=1\n[[versions]]\nversion='1'\neffective_from='2020-01-01'\ncodes=[]";
        assert_eq!(
            CodeTable::from_toml(unknown).unwrap_err().code(),
            "invalid_code_table"
        );
        let dup = "name='x'\ntitle='x'\n[[versions]]\nversion='1'\neffective_from='2020-01-01'\ncodes=[{internal='1',platform='1',label='a'},{internal='1',platform='2',label='b'}]";
        assert!(CodeTable::from_toml(dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
    }
}
