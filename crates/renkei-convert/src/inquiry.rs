//! The municipal inquiry batch (`inquiry-batch` layout) as a typed line, and result lines.

use renkei_ids::{
    AffairCode, AgencyCode, BusinessNumber, IdError, ItemCode, ProcedureCode, UnifiedAddressNumber,
};

use crate::layout::{Layout, LineError, Record};

/// One inquiry line, typed. Identifiers are validated newtypes; dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInquiryLine {
    /// 宛名番号: the business system's number for the person.
    pub business_number: BusinessNumber,
    /// 統合宛名番号, when the business system already knows it.
    pub unified: Option<UnifiedAddressNumber>,
    /// 照会依頼日時 as `YYYY-MM-DDTHH:MM:SS.mmm` (from 17 digits `YYYYMMDDHHMMSSmmm`).
    pub requested_at: String,
    /// 事務コード.
    pub affair: AffairCode,
    /// 事務手続コード.
    pub procedure: ProcedureCode,
    /// 特定個人情報名コード.
    pub item: ItemCode,
    /// 情報照会者機関コード.
    pub inquirer: AgencyCode,
    /// 情報提供者機関コード.
    pub provider: Option<AgencyCode>,
    /// 照会側不開示コード = `1`.
    pub non_disclosure: bool,
    /// 照会条件区分.
    pub condition_kind: char,
    /// 照会年度区分.
    pub fiscal_year_kind: char,
    /// 照会開始日付.
    pub from: Option<String>,
    /// 照会終了日付.
    pub to: Option<String>,
}

fn id_err(line: u64, field: &str, e: IdError) -> LineError {
    LineError {
        line,
        field: Some(field.to_owned()),
        code: e.code(),
        message: e.to_string(),
    }
}

fn req<'a>(rec: &'a Record, line: u64, name: &str) -> Result<&'a str, LineError> {
    rec.non_empty(name).ok_or_else(|| LineError {
        line,
        field: Some(name.to_owned()),
        code: "required",
        message: "required field is empty".into(),
    })
}

/// `YYYYMMDDHHMMSSmmm` → `YYYY-MM-DDTHH:MM:SS.mmm`, checking it is a real instant.
fn timestamp17(s: &str) -> Option<String> {
    if s.len() != 17 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| s[a..b].parse::<u8>().ok();
    crate::era::parse_ymd(&format!("{}-{}-{}", &s[0..4], &s[4..6], &s[6..8]))?;
    time::Time::from_hms(n(8, 10)?, n(10, 12)?, n(12, 14)?).ok()?;
    Some(format!(
        "{}-{}-{}T{}:{}:{}.{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14],
        &s[14..17]
    ))
}

/// The typed view of an `inquiry-batch` record. Errors carry the record's line
/// ([`Record::line`], 0 for records built in memory) and the field name.
pub fn parse_batch_line(rec: &Record) -> Result<BatchInquiryLine, LineError> {
    let line = rec.line();
    let one_char = |name: &str| -> Result<char, LineError> {
        let v = req(rec, line, name)?;
        let mut c = v.chars();
        match (c.next(), c.next()) {
            (Some(ch), None) => Ok(ch),
            _ => Err(LineError {
                line,
                field: Some(name.into()),
                code: "invalid_format",
                message: "expected one character".into(),
            }),
        }
    };
    let requested = req(rec, line, "requested_at")?;
    let requested_at = timestamp17(requested).ok_or_else(|| LineError {
        line,
        field: Some("requested_at".into()),
        code: "invalid_timestamp",
        message: "expected YYYYMMDDHHMMSSmmm".into(),
    })?;
    Ok(BatchInquiryLine {
        business_number: BusinessNumber::parse(req(rec, line, "business_number")?)
            .map_err(|e| id_err(line, "business_number", e))?,
        unified: rec
            .non_empty("unified_address_number")
            .map(UnifiedAddressNumber::parse)
            .transpose()
            .map_err(|e| id_err(line, "unified_address_number", e))?,
        requested_at,
        affair: AffairCode::parse(req(rec, line, "affair_code")?)
            .map_err(|e| id_err(line, "affair_code", e))?,
        procedure: ProcedureCode::parse(req(rec, line, "procedure_code")?)
            .map_err(|e| id_err(line, "procedure_code", e))?,
        item: ItemCode::parse(req(rec, line, "item_code")?)
            .map_err(|e| id_err(line, "item_code", e))?,
        inquirer: AgencyCode::parse(req(rec, line, "inquirer_agency")?)
            .map_err(|e| id_err(line, "inquirer_agency", e))?,
        provider: rec
            .non_empty("provider_agency")
            .map(AgencyCode::parse)
            .transpose()
            .map_err(|e| id_err(line, "provider_agency", e))?,
        non_disclosure: req(rec, line, "non_disclosure")? == "1",
        condition_kind: one_char("condition_kind")?,
        fiscal_year_kind: one_char("fiscal_year_kind")?,
        from: rec.non_empty("from_date").map(str::to_owned),
        to: rec.non_empty("to_date").map(str::to_owned),
    })
}

/// A record of `layout` (an `inquiry-batch` layout) holding `l`; the reverse of [`parse_batch_line`].
pub fn batch_line_record(layout: &Layout, l: &BatchInquiryLine) -> Record {
    let mut r = Record::new(layout);
    r.set("numbering_system", "01");
    r.set("business_number", l.business_number.as_str());
    r.set(
        "unified_address_number",
        l.unified.map(|u| u.to_string()).unwrap_or_default(),
    );
    r.set(
        "requested_at",
        l.requested_at.replace(['-', 'T', ':', '.'], ""),
    );
    r.set("inquirer_agency", l.inquirer.as_str());
    r.set("non_disclosure", if l.non_disclosure { "1" } else { "0" });
    r.set("affair_code", l.affair.as_str());
    r.set("procedure_code", l.procedure.as_str());
    r.set(
        "provider_agency",
        l.provider.as_ref().map(|p| p.as_str()).unwrap_or_default(),
    );
    r.set("item_code", l.item.as_str());
    r.set("condition_kind", l.condition_kind.to_string());
    r.set("fiscal_year_kind", l.fiscal_year_kind.to_string());
    r.set("from_date", l.from.clone().unwrap_or_default());
    r.set("to_date", l.to.clone().unwrap_or_default());
    r
}

/// One result line for the business system (`inquiry-result` layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryResultLine {
    /// 宛名番号.
    pub business_number: BusinessNumber,
    /// 情報提供者機関コード.
    pub provider: Option<AgencyCode>,
    /// 照会ステータス（明細単位）, e.g. `09` = finished normally.
    pub status_detail: String,
    /// 照会ステータス（特定個人情報名単位）, e.g. `01` = provided.
    pub status_item: String,
    /// 照会処理結果メッセージ（明細単位）, verbatim.
    pub message: String,
    /// Item fields by layout field name, e.g. `("municipal_tax_per_capita", "3500")`.
    pub items: Vec<(String, String)>,
}

/// A record of `layout` (an `inquiry-result` layout) holding `l`. Unknown item names are
/// refused with a [`LineError`] naming the field.
pub fn result_line_record(layout: &Layout, l: &InquiryResultLine) -> Result<Record, LineError> {
    let mut r = Record::new(layout);
    r.set("business_number", l.business_number.as_str());
    r.set(
        "provider_agency",
        l.provider.as_ref().map(|p| p.as_str()).unwrap_or_default(),
    );
    r.set("status_detail", l.status_detail.as_str());
    r.set("status_item", l.status_item.as_str());
    r.set("result_message", l.message.as_str());
    for (k, v) in &l.items {
        if !r.set(k, v.as_str()) {
            return Err(LineError {
                line: 0,
                field: Some(k.clone()),
                code: "unknown_field",
                message: "no such field in the result layout".into(),
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp() {
        assert_eq!(
            timestamp17("20260401093000123").as_deref(),
            Some("2026-04-01T09:30:00.123")
        );
        assert_eq!(timestamp17("20260431093000123"), None);
        assert_eq!(timestamp17("20260401253000123"), None);
    }
}
