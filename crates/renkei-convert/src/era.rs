//! 和暦 ↔ 西暦 conversion driven by `schemas/eras.toml`, with explicit rules for 不詳 (unknown parts).
//!
//! Accepted input forms (digits may be full-width; `元` means year 1):
//! - kanji: `令和8年4月1日`, `令和元年5月1日`, `昭和25年4月不詳`, `昭和25年不詳`;
//! - letter: `R08.04.01`, `R8.4.1`, `R080401`, separators `.`, `/` or `-`; `00` = unknown;
//! - digits: `5080401` (municipal era digit + YYMMDD); `00` = unknown.
//!
//! 不詳 rules: a day may be unknown alone; a month may be unknown only together with the day
//! (a known day in an unknown month is refused). A full date must lie inside its era (from the
//! era's start to the day before the next era starts); a partial date must overlap its era.
//! Formatting picks the era in effect on the *last* day of the known period (so 1989 with an
//! unknown month is 平成元年, the era for most of that year).

use std::sync::OnceLock;

use serde::Deserialize;
use time::{Date, Month};

use crate::width::fullwidth_alnum_to_halfwidth;

/// One era.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Era {
    /// Kanji name (`令和`).
    pub name: String,
    /// Initial letter (`R`).
    pub letter: char,
    /// Municipal era digit (`5`).
    pub digit: u8,
    /// First day of the era.
    pub start: Date,
}

/// The era table as written in `eras.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraFile {
    /// Eras, oldest first.
    pub eras: Vec<EraEntry>,
}

/// One `[[eras]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraEntry {
    /// Kanji name, e.g. `"令和"`.
    pub name: String,
    /// One ASCII upper-case letter, e.g. `"R"`.
    pub letter: String,
    /// Municipal era digit 1..=9, e.g. `5`.
    pub digit: u8,
    /// First day, `"YYYY-MM-DD"`, e.g. `"2019-05-01"`.
    pub start: String,
}

/// Why an era date or era table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EraError {
    /// The text is not one of the accepted forms.
    #[error("not a recognised date form: {0}")]
    Syntax(&'static str),
    /// Unknown era name, letter or digit.
    #[error("unknown era")]
    UnknownEra,
    /// The date does not exist (e.g. month 13, 2月30日).
    #[error("no such date")]
    NoSuchDate,
    /// The date is before its era began.
    #[error("date is before {0} began")]
    BeforeEra(String),
    /// The date is on or after the next era began.
    #[error("date is after {0} ended")]
    AfterEra(String),
    /// A day is known but its month is not.
    #[error("a day cannot be known when the month is unknown")]
    Inconsistent,
    /// The date is before the first era in the table.
    #[error("date is before the first era")]
    BeforeFirstEra,
    /// The era table itself is invalid.
    #[error("era table: {0}")]
    Table(String),
}

impl EraError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            EraError::Syntax(_) => "date_syntax",
            EraError::UnknownEra => "unknown_era",
            EraError::NoSuchDate => "no_such_date",
            EraError::BeforeEra(_) => "before_era_start",
            EraError::AfterEra(_) => "after_era_end",
            EraError::Inconsistent => "unknown_month_known_day",
            EraError::BeforeFirstEra => "before_first_era",
            EraError::Table(_) => "era_table",
        }
    }
}

/// A date whose month and day may be unknown (不詳).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    /// Gregorian year.
    pub year: i32,
    /// Month 1..=12, `None` when unknown.
    pub month: Option<u8>,
    /// Day 1..=31, `None` when unknown.
    pub day: Option<u8>,
}

impl PartialDate {
    /// ISO 8601 with reduced precision: `2026-04-01`, `1950-04`, `1950`.
    pub fn to_iso(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            _ => format!("{:04}", self.year),
        }
    }

    /// Parses the form [`PartialDate::to_iso`] writes; checks that a full date exists.
    pub fn parse_iso(s: &str) -> Result<Self, EraError> {
        let parts: Vec<&str> = s.split('-').collect();
        let num = |p: &str, n: usize| -> Result<u32, EraError> {
            if p.len() != n || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EraError::Syntax("expected YYYY, YYYY-MM or YYYY-MM-DD"));
            }
            p.parse().map_err(|_| EraError::Syntax("expected digits"))
        };
        let year = num(parts.first().copied().unwrap_or(""), 4)? as i32;
        let month = match parts.get(1) {
            Some(p) => Some(num(p, 2)? as u8),
            None => None,
        };
        let day = match parts.get(2) {
            Some(p) => Some(num(p, 2)? as u8),
            None => None,
        };
        if parts.len() > 3 {
            return Err(EraError::Syntax("expected YYYY, YYYY-MM or YYYY-MM-DD"));
        }
        let d = PartialDate { year, month, day };
        d.first_day()?;
        d.last_day()?;
        Ok(d)
    }

    /// First day of the period the date covers.
    pub fn first_day(&self) -> Result<Date, EraError> {
        let m = month_of(self.month.unwrap_or(1))?;
        Date::from_calendar_date(self.year, m, self.day.unwrap_or(1))
            .map_err(|_| EraError::NoSuchDate)
    }

    /// Last day of the period the date covers.
    pub fn last_day(&self) -> Result<Date, EraError> {
        let m = month_of(self.month.unwrap_or(12))?;
        let d = match self.day {
            Some(d) => d,
            None => m.length(self.year),
        };
        Date::from_calendar_date(self.year, m, d).map_err(|_| EraError::NoSuchDate)
    }
}

fn month_of(m: u8) -> Result<Month, EraError> {
    Month::try_from(m).map_err(|_| EraError::NoSuchDate)
}

/// How [`EraTable::format`] writes a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarekiStyle {
    /// `令和8年4月1日`, `令和元年…`, `不詳` for unknown parts.
    Kanji,
    /// `R08.04.01`, `00` for unknown parts.
    Letter,
    /// `5080401`, `00` for unknown parts.
    Digits,
}

/// Parses a `YYYY-MM-DD` text into a date.
pub fn parse_ymd(s: &str) -> Option<Date> {
    let d = PartialDate::parse_iso(s).ok()?;
    d.day?;
    d.first_day().ok()
}

/// The eras, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraTable {
    eras: Vec<Era>,
}

const BUILTIN_ERAS: &str = include_str!("../../../schemas/eras.toml");

impl EraTable {
    /// Parses and validates an `eras.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, EraError> {
        let file: EraFile =
            toml::from_str(text).map_err(|e| EraError::Table(e.message().to_owned()))?;
        let mut eras = Vec::with_capacity(file.eras.len());
        for e in file.eras {
            let mut letters = e.letter.chars();
            let letter = match (letters.next(), letters.next()) {
                (Some(c), None) if c.is_ascii_uppercase() => c,
                _ => {
                    return Err(EraError::Table(format!(
                        "{}: letter must be one A-Z",
                        e.name
                    )))
                }
            };
            if !(1..=9).contains(&e.digit) {
                return Err(EraError::Table(format!("{}: digit must be 1..=9", e.name)));
            }
            let start = parse_ymd(&e.start)
                .ok_or_else(|| EraError::Table(format!("{}: start must be YYYY-MM-DD", e.name)))?;
            if e.name.is_empty() {
                return Err(EraError::Table("empty era name".into()));
            }
            eras.push(Era {
                name: e.name,
                letter,
                digit: e.digit,
                start,
            });
        }
        if eras.is_empty() {
            return Err(EraError::Table("no eras".into()));
        }
        for w in eras.windows(2) {
            if w[0].start >= w[1].start {
                return Err(EraError::Table(format!(
                    "{} must start after {}",
                    w[1].name, w[0].name
                )));
            }
        }
        for (i, a) in eras.iter().enumerate() {
            for b in &eras[i + 1..] {
                if a.name == b.name || a.letter == b.letter || a.digit == b.digit {
                    return Err(EraError::Table(format!(
                        "{} and {} share a name, letter or digit",
                        a.name, b.name
                    )));
                }
            }
        }
        Ok(Self { eras })
    }

    /// The table compiled in from `schemas/eras.toml`.
    pub fn builtin() -> Result<&'static EraTable, EraError> {
        static TABLE: OnceLock<Result<EraTable, EraError>> = OnceLock::new();
        TABLE
            .get_or_init(|| EraTable::from_toml(BUILTIN_ERAS))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The eras, oldest first.
    pub fn eras(&self) -> &[Era] {
        &self.eras
    }

    fn index_by(&self, f: impl Fn(&Era) -> bool) -> Result<usize, EraError> {
        self.eras.iter().position(f).ok_or(EraError::UnknownEra)
    }

    /// Parses a 和暦 date in any accepted form (see the module doc).
    pub fn parse(&self, text: &str) -> Result<PartialDate, EraError> {
        let s = fullwidth_alnum_to_halfwidth(text.trim());
        let s = s.replace(['．', '／', '－'], ".");
        let first = s.chars().next().ok_or(EraError::Syntax("empty"))?;
        if first.is_ascii_digit() {
            // era digit + YYMMDD
            if s.len() != 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EraError::Syntax("expected era digit and YYMMDD"));
            }
            let b = s.as_bytes();
            let idx = self.index_by(|e| e.digit == b[0] - b'0')?;
            let n = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
            return self.resolve(idx, u32::from(n(1)), n(3), n(5));
        }
        if first.is_ascii_alphabetic() {
            let idx = self.index_by(|e| e.letter == first.to_ascii_uppercase())?;
            let rest = &s[1..];
            let parts: Vec<&str> = if rest.contains(['.', '/', '-']) {
                rest.split(['.', '/', '-']).collect()
            } else if rest.len() == 6 && rest.is_ascii() {
                vec![&rest[0..2], &rest[2..4], &rest[4..6]]
            } else {
                return Err(EraError::Syntax("expected E YY.MM.DD"));
            };
            if parts.len() != 3
                || parts
                    .iter()
                    .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(EraError::Syntax("expected E YY.MM.DD"));
            }
            let n = |p: &str| {
                p.parse::<u8>()
                    .map_err(|_| EraError::Syntax("expected digits"))
            };
            return self.resolve(idx, u32::from(n(parts[0])?), n(parts[1])?, n(parts[2])?);
        }
        // kanji form
        let idx = self.index_by(|e| s.starts_with(e.name.as_str()))?;
        let rest = &s[self.eras[idx].name.len()..];
        let (y, rest) = rest
            .split_once('年')
            .ok_or(EraError::Syntax("expected 年"))?;
        let year = if y == "元" { 1 } else { kanji_num(y)? };
        let (month, day) = if rest == "不詳" || rest == "不詳月不詳日" {
            (0, 0)
        } else {
            let (m, rest) = rest
                .split_once('月')
                .ok_or(EraError::Syntax("expected 月"))?;
            let month = if m == "不詳" {
                0
            } else {
                kanji_num(m)? as u8
            };
            let day = match rest {
                "不詳" | "不詳日" => 0,
                _ => {
                    let d = rest
                        .strip_suffix('日')
                        .ok_or(EraError::Syntax("expected 日"))?;
                    kanji_num(d)? as u8
                }
            };
            (month, day)
        };
        self.resolve(idx, year, month, day)
    }

    fn resolve(&self, idx: usize, year: u32, month: u8, day: u8) -> Result<PartialDate, EraError> {
        if year == 0 || year > 99 {
            return Err(EraError::NoSuchDate);
        }
        if month == 0 && day != 0 {
            return Err(EraError::Inconsistent);
        }
        let era = &self.eras[idx];
        let d = PartialDate {
            year: era.start.year() + year as i32 - 1,
            month: (month != 0).then_some(month),
            day: (day != 0).then_some(day),
        };
        let (first, last) = (d.first_day()?, d.last_day()?);
        if last < era.start {
            return Err(EraError::BeforeEra(era.name.clone()));
        }
        if let Some(next) = self.eras.get(idx + 1) {
            if first >= next.start {
                return Err(EraError::AfterEra(era.name.clone()));
            }
        }
        Ok(d)
    }

    /// The era in effect on `date`.
    pub fn era_of(&self, date: Date) -> Result<&Era, EraError> {
        self.eras
            .iter()
            .rev()
            .find(|e| e.start <= date)
            .ok_or(EraError::BeforeFirstEra)
    }

    /// Writes a date in `style` (see the module doc for the era choice of partial dates).
    pub fn format(&self, d: &PartialDate, style: WarekiStyle) -> Result<String, EraError> {
        let era = self.era_of(d.last_day()?)?;
        let y = d.year - era.start.year() + 1;
        let m = d.month.unwrap_or(0);
        let dd = d.day.unwrap_or(0);
        Ok(match style {
            WarekiStyle::Digits => format!("{}{y:02}{m:02}{dd:02}", era.digit),
            WarekiStyle::Letter => format!("{}{y:02}.{m:02}.{dd:02}", era.letter),
            WarekiStyle::Kanji => {
                let ys = if y == 1 {
                    "元".to_owned()
                } else {
                    y.to_string()
                };
                match (d.month, d.day) {
                    (Some(m), Some(dd)) => format!("{}{ys}年{m}月{dd}日", era.name),
                    (Some(m), None) => format!("{}{ys}年{m}月不詳", era.name),
                    _ => format!("{}{ys}年不詳", era.name),
                }
            }
        })
    }
}

fn kanji_num(s: &str) -> Result<u32, EraError> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EraError::Syntax("expected a number of 1 or 2 digits"));
    }
    s.parse().map_err(|_| EraError::Syntax("expected digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> &'static EraTable {
        EraTable::builtin().unwrap()
    }

    fn iso(s: &str) -> String {
        t().parse(s)
            .map(|d| d.to_iso())
            .unwrap_or_else(|e| e.code().to_owned())
    }

    #[test]
    fn forms() {
        assert_eq!(iso("令和8年4月1日"), "2026-04-01");
        assert_eq!(iso("令和８年４月１日"), "2026-04-01");
        assert_eq!(iso("R08.04.01"), "2026-04-01");
        assert_eq!(iso("r8/4/1"), "2026-04-01");
        assert_eq!(iso("R080401"), "2026-04-01");
        assert_eq!(iso("5080401"), "2026-04-01");
        assert_eq!(iso("令和元年5月1日"), "2019-05-01");
        assert_eq!(iso("平成元年1月8日"), "1989-01-08");
        assert_eq!(iso("明治1年1月25日"), "1868-01-25");
    }

    #[test]
    fn boundaries() {
        assert_eq!(iso("昭和64年1月7日"), "1989-01-07");
        assert_eq!(iso("昭和64年1月8日"), "after_era_end");
        assert_eq!(iso("平成元年1月7日"), "before_era_start");
        assert_eq!(iso("平成31年4月30日"), "2019-04-30");
        assert_eq!(iso("平成31年5月1日"), "after_era_end");
        assert_eq!(iso("令和元年4月30日"), "before_era_start");
        assert_eq!(iso("明治1年1月24日"), "before_era_start");
        assert_eq!(iso("大正15年12月25日"), "after_era_end");
        assert_eq!(iso("昭和65年不詳"), "after_era_end");
        assert_eq!(iso("令和5年2月29日"), "no_such_date");
        assert_eq!(iso("令和6年2月29日"), "2024-02-29");
        assert_eq!(iso("6080401"), "unknown_era");
        assert_eq!(iso("X08.04.01"), "unknown_era");
        assert_eq!(iso("R00.04.01"), "no_such_date");
        assert_eq!(iso("Rあい"), "date_syntax");
        assert_eq!(iso("令和"), "date_syntax");
        assert_eq!(iso("令和8年"), "date_syntax");
    }

    #[test]
    fn unknown_parts() {
        assert_eq!(iso("昭和25年4月不詳"), "1950-04");
        assert_eq!(iso("昭和25年不詳"), "1950");
        assert_eq!(iso("昭和25年不詳月不詳日"), "1950");
        assert_eq!(iso("3250400"), "1950-04");
        assert_eq!(iso("S25.00.00"), "1950");
        assert_eq!(iso("S25.00.10"), "unknown_month_known_day");
        assert_eq!(iso("昭和64年1月不詳"), "1989-01");
        assert_eq!(iso("平成元年1月不詳"), "1989-01");
        assert_eq!(iso("平成元年不詳"), "1989");
        assert_eq!(iso("令和元年4月不詳"), "before_era_start");
    }

    #[test]
    fn format_back() {
        let d = t().parse("令和8年4月1日").unwrap();
        assert_eq!(t().format(&d, WarekiStyle::Kanji).unwrap(), "令和8年4月1日");
        assert_eq!(t().format(&d, WarekiStyle::Letter).unwrap(), "R08.04.01");
        assert_eq!(t().format(&d, WarekiStyle::Digits).unwrap(), "5080401");
        let d = PartialDate::parse_iso("2019-05").unwrap();
        assert_eq!(
            t().format(&d, WarekiStyle::Kanji).unwrap(),
            "令和元年5月不詳"
        );
        let d = PartialDate::parse_iso("1989").unwrap();
        assert_eq!(t().format(&d, WarekiStyle::Kanji).unwrap(), "平成元年不詳");
        assert_eq!(t().format(&d, WarekiStyle::Digits).unwrap(), "4010000");
        let d = PartialDate::parse_iso("1989-01-07").unwrap();
        assert_eq!(t().format(&d, WarekiStyle::Letter).unwrap(), "S64.01.07");
        assert_eq!(
            PartialDate::parse_iso("2023-02-29").unwrap_err().code(),
            "no_such_date"
        );
        assert_eq!(
            t().format(
                &PartialDate::parse_iso("1800-01-01").unwrap(),
                WarekiStyle::Kanji
            )
            .unwrap_err()
            .code(),
            "before_first_era"
        );
    }

    #[test]
    fn table_refuses_bad_input() {
        assert!(EraTable::from_toml(
            "[[eras]]\nname='a'\nletter='A'\ndigit=1\nstart='2000-01-01'\nextra=1"
        )
        .is_err());
        let two = "[[eras]]\nname='a'\nletter='A'\ndigit=1\nstart='2000-01-01'\n[[eras]]\nname='b'\nletter='B'\ndigit=2\nstart='1999-01-01'";
        assert_eq!(EraTable::from_toml(two).unwrap_err().code(), "era_table");
    }
}
