//! The layout of each item's copy (副本): which keys a business system's `data` carries, how
//! each value is checked and converted (digits, text, a code table), and the name each field
//! is sent under. Layouts are data, `copies/<item code>.toml` in the configured `schemas_dir`
//! (or the built-in copy of `schemas/copies/`), loaded and checked with the other settings
//! (`schemas::copies`); this module looks them up and converts a copy's `data` with them.

use std::sync::Arc;

use renkei_convert::width::{fullwidth_alnum_to_halfwidth, halfwidth_kana_to_fullwidth};
use renkei_ids::ItemCode;

use crate::error::{Bug, Error};

pub use crate::schemas::copies::{CopyField, CopyLayout, FieldKind};

/// Longest a `text` field may be when its layout names no `max`.
const DEFAULT_TEXT_MAX: usize = 256;

fn layouts() -> Result<Arc<crate::schemas::copies::CopyLayouts>, Error> {
    crate::schemas::copies::in_force().map_err(|e| Error::internal("loading copy layouts", e))
}

/// The layout of `item`'s copy in force, if renkei has one.
pub fn layout(item: &ItemCode) -> Result<Option<Arc<CopyLayout>>, Error> {
    Ok(layouts()?.get(item))
}

/// The items that have a copy layout in force.
pub fn items() -> Result<Vec<ItemCode>, Error> {
    Ok(layouts()?.items())
}

fn bad(field: &str, code: &'static str, what: &str) -> Error {
    Error::invalid(
        code,
        format!("data.{field}"),
        format!("data.{field}: {what}"),
    )
}

impl CopyLayout {
    /// Checks a business system's `data` and converts it: the (label, value) pairs to send,
    /// in layout order. Codes are converted with the table version in force on `on`. Unknown
    /// keys, missing required fields and values of the wrong shape are refused; messages name
    /// the field, never the value.
    pub fn convert(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        on: time::Date,
    ) -> Result<Vec<(String, String)>, Error> {
        if data
            .keys()
            .any(|k| !self.fields.iter().any(|f| &f.name == k))
        {
            // The key is the caller's text: it is not echoed.
            return Err(Error::invalid(
                "unknown_field",
                "data",
                "data: a key that is not a field of this item's copy",
            ));
        }
        let mut out = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let raw = match data.get(&f.name) {
                None | Some(serde_json::Value::Null) => {
                    if f.required {
                        return Err(bad(&f.name, "missing_field", "required"));
                    }
                    continue;
                }
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) if f.kind == FieldKind::Digits => n.to_string(),
                Some(_) => return Err(bad(&f.name, "invalid_value", "expected a string")),
            };
            let value = match f.kind {
                FieldKind::Digits => {
                    let v = fullwidth_alnum_to_halfwidth(raw.trim());
                    let max = f.max.unwrap_or(18);
                    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad(
                            &f.name,
                            "invalid_value",
                            "expected digits of the layout's length",
                        ));
                    }
                    v
                }
                FieldKind::Text => {
                    let v = halfwidth_kana_to_fullwidth(raw.trim());
                    let max = f.max.unwrap_or(DEFAULT_TEXT_MAX);
                    if v.chars().count() > max || v.chars().any(char::is_control) {
                        return Err(bad(
                            &f.name,
                            "invalid_value",
                            "text too long or with control characters",
                        ));
                    }
                    v
                }
                FieldKind::Code => {
                    // Resolved and checked when the layout was loaded.
                    let t = f.codes.as_ref().ok_or_else(|| {
                        Error::internal(
                            "converting a copy",
                            Bug("copy layout names a missing code table"),
                        )
                    })?;
                    t.to_platform(raw.trim(), on)
                        .map_err(|_| {
                            bad(&f.name, "unknown_code", "not a code of this field's table")
                        })?
                        .to_string()
                }
            };
            out.push((f.label.clone(), value));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(s: &str) -> ItemCode {
        ItemCode::parse(s).unwrap()
    }

    #[test]
    fn builtin_layouts_load_and_convert() {
        let lt = layout(&item("TM00000000000002")).unwrap().unwrap();
        let data = serde_json::json!({"fiscal_year": "2026", "income_levy": "１２３４００", "per_capita_levy": 3500});
        let on = time::macros::date!(2026 - 06 - 01);
        let out = lt.convert(data.as_object().unwrap(), on).unwrap();
        assert_eq!(out[0], ("課税年度".into(), "2026".into()));
        assert_eq!(out[1], ("市町村民税所得割額".into(), "123400".into()));
        assert_eq!(out[2], ("市町村民税均等割額".into(), "3500".into()));
        assert_eq!(out.len(), 3);

        let missing = serde_json::json!({"fiscal_year": "2026"});
        assert!(lt.convert(missing.as_object().unwrap(), on).is_err());
        let unknown = serde_json::json!({"fiscal_year": "2026", "income_levy": "1", "per_capita_levy": "1", "x": "1"});
        assert!(lt.convert(unknown.as_object().unwrap(), on).is_err());

        let acct = layout(&item("TM00000000000089")).unwrap().unwrap();
        let data = serde_json::json!({"bank_code": "0001", "branch_code": "123", "account_kind": "9",
            "account_number": "1234567", "holder_kana": "ﾔﾏﾀﾞ ﾀﾛｳ"});
        let out = acct.convert(data.as_object().unwrap(), on).unwrap();
        assert_eq!(out[2], ("預金種目".into(), "4".into()), "code converted");
        assert_eq!(out[4].1, "ヤマダ タロウ", "half-width kana made full-width");
        let bad_code = serde_json::json!({"bank_code": "0001", "branch_code": "123", "account_kind": "7", "account_number": "1"});
        assert!(acct.convert(bad_code.as_object().unwrap(), on).is_err());
        assert!(layout(&item("TM09999999999999")).unwrap().is_none());
    }
}
