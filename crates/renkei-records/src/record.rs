//! The record model (情報提供等記録 and staff/key/retention actions) and its canonical
//! one-line JSON encoding, the exact bytes that are hashed into the log.

use renkei_ids::{
    AgencyCode, ItemCode, ProcedureCode, ProcessingSerial, SystemId, UnifiedAddressNumber,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::RecordsError;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// 情報照会: this city asked another agency.
    Inquiry,
    /// 情報提供: this city answered another agency.
    Provision,
    /// 符号取得: a code acquisition for a person.
    CodeAcquisition,
    /// A request refused by the permission table or authentication.
    DeniedRequest,
    /// An operation by staff (operator, terminal, target).
    StaffAction,
    /// A key rotation, import or retirement.
    KeyAction,
    /// A run of the retention sweep.
    RetentionSweep,
}

impl RecordKind {
    fn as_str(self) -> &'static str {
        match self {
            RecordKind::Inquiry => "inquiry",
            RecordKind::Provision => "provision",
            RecordKind::CodeAcquisition => "code_acquisition",
            RecordKind::DeniedRequest => "denied_request",
            RecordKind::StaffAction => "staff_action",
            RecordKind::KeyAction => "key_action",
            RecordKind::RetentionSweep => "retention_sweep",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordResult {
    /// The item was provided.
    Answered,
    /// The provider holds no such information for the person.
    NotHeld,
    /// Refused (permission, non-disclosure, authentication).
    Refused,
    /// Failed (platform error, timeout, conversion).
    Failed,
    /// Accepted and queued, not yet finished.
    Accepted,
    /// A staff, key or sweep action completed.
    Done,
}

impl RecordResult {
    fn as_str(self) -> &'static str {
        match self {
            RecordResult::Answered => "answered",
            RecordResult::NotHeld => "not_held",
            RecordResult::Refused => "refused",
            RecordResult::Failed => "failed",
            RecordResult::Accepted => "accepted",
            RecordResult::Done => "done",
        }
    }
}

/// Who did what from where, for staff actions (操作ログ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffDetail {
    /// The staff member's login id, e.g. `"sato.h"`.
    pub actor: String,
    /// The terminal, e.g. `"kuyakusho-3f-012"`.
    pub terminal: String,
    /// SHA-256 fingerprint (hex) of the client certificate used, e.g. `"9f86d0…"`.
    pub certificate_fingerprint: Option<String>,
    /// The operation, e.g. `"person.search"`, `"keys.rotate"`.
    pub action: String,
    /// The target, by internal id only, e.g. `"inquiry:01J…"`.
    pub target: Option<String>,
    /// Whether the operation touched an individual number (個人番号を取り扱ったか).
    pub touched_individual_number: bool,
}

/// One 情報提供等記録 or audit record. Persons appear by unified address number only,
/// never by individual number (the type has no place for one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// What happened.
    pub kind: RecordKind,
    /// 情報照会者 機関コード, e.g. `"0112345678900000"`.
    pub inquirer: Option<AgencyCode>,
    /// 情報提供者 機関コード.
    pub provider: Option<AgencyCode>,
    /// 事務手続コード, e.g. `"JT01010000000214"`.
    pub procedure: Option<ProcedureCode>,
    /// 特定個人情報名コード, e.g. `"TM00000000000002"`.
    pub item: Option<ItemCode>,
    /// The person, by 団体内統合宛名番号.
    pub person: Option<UnifiedAddressNumber>,
    /// The business system that asked or answered, e.g. `"kodomo-iryo"`.
    pub business_system: Option<SystemId>,
    /// When the request was made (RFC 3339), e.g. `"2026-11-26T09:00:00Z"`.
    pub requested_at: String,
    /// When the information was provided (RFC 3339).
    pub provided_at: Option<String>,
    /// 処理通番.
    pub serial: Option<ProcessingSerial>,
    /// How it ended.
    pub result: RecordResult,
    /// Why (error code or refusal reason), e.g. `"permission_denied"`.
    pub reason: Option<String>,
    /// 不開示: not to be shown to the person through マイナポータル.
    pub non_disclosure: bool,
    /// Staff detail for staff and key actions.
    pub staff: Option<StaffDetail>,
    /// An internal reference, e.g. the inquiry id.
    pub reference: Option<String>,
}

impl Record {
    /// Checks what the types cannot: timestamps are RFC 3339 and no free-text field carries
    /// something that looks like an individual number (12 digits with a valid check digit).
    pub fn validate(&self) -> Result<(), RecordsError> {
        parse_time(&self.requested_at, "requested_at")?;
        if let Some(p) = &self.provided_at {
            parse_time(p, "provided_at")?;
        }
        let mut texts: Vec<(&'static str, &str)> = vec![];
        if let Some(r) = &self.reason {
            texts.push(("reason", r));
        }
        if let Some(r) = &self.reference {
            texts.push(("reference", r));
        }
        if let Some(s) = &self.staff {
            texts.push(("staff.actor", &s.actor));
            texts.push(("staff.terminal", &s.terminal));
            texts.push(("staff.action", &s.action));
            // A certificate fingerprint is a hash, not free text: hex digits can line up
            // as 12 decimals with a valid check digit by chance, so it is checked for shape
            // (hex only) instead of being scanned.
            if let Some(f) = &s.certificate_fingerprint {
                if f.is_empty() || !f.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return Err(RecordsError::format(
                        "staff.certificate_fingerprint",
                        "hex digits only",
                    ));
                }
            }
            if let Some(t) = &s.target {
                texts.push(("staff.target", t));
            }
        }
        for (field, text) in texts {
            if looks_like_individual_number(text) {
                return Err(RecordsError::IndividualNumberInText { field });
            }
        }
        Ok(())
    }

    /// Parses one canonical line and insists it is canonical (re-encoding gives the same
    /// bytes), so two different byte strings never stand for the same record.
    pub fn from_canonical(bytes: &[u8]) -> Result<Record, RecordsError> {
        let record: Record = serde_json::from_slice(bytes).map_err(|e| {
            RecordsError::format(
                "record",
                format!("not a record: line {} column {}", e.line(), e.column()),
            )
        })?;
        if canonical_bytes(&record) != bytes {
            return Err(RecordsError::format("record", "not in canonical form"));
        }
        Ok(record)
    }
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn parse_time(s: &str, what: &'static str) -> Result<OffsetDateTime, RecordsError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| RecordsError::format(what, "expected an RFC 3339 timestamp"))
}

/// True when `text` holds a run of exactly 12 ASCII digits whose last is the individual
/// number check digit.
fn looks_like_individual_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 12 {
                let mut first11 = [0u8; 11];
                for (k, d) in bytes[start..start + 11].iter().enumerate() {
                    first11[k] = d - b'0';
                }
                if renkei_ids::individual_number_check_digit(&first11) == bytes[start + 11] - b'0' {
                    return true;
                }
            }
        } else {
            i += 1;
        }
    }
    false
}

/// [`Record::validate`], then [`canonical_bytes`]: what the gateway should hand to its log
/// writer so a record with an individual number in free text never reaches the log.
pub fn checked_canonical_bytes(record: &Record) -> Result<Vec<u8>, RecordsError> {
    record.validate()?;
    Ok(canonical_bytes(record))
}

/// The canonical encoding of a record: one line of JSON, UTF-8, no whitespace between
/// tokens, every key present in the fixed order of the struct (absent values are `null`),
/// strings escaped minimally (`\"`, `\\`, `\b \f \n \r \t`, other controls as `\u00xx`
/// lower-case; everything else literal UTF-8). No trailing newline: the bundle adds `\n`
/// between lines, and the hash covers these bytes only.
pub fn canonical_bytes(record: &Record) -> Vec<u8> {
    let mut w = Writer(String::with_capacity(512));
    w.0.push('{');
    w.key_str("kind", record.kind.as_str(), true);
    w.key_opt("inquirer", record.inquirer.as_ref().map(|v| v.as_str()));
    w.key_opt("provider", record.provider.as_ref().map(|v| v.as_str()));
    w.key_opt("procedure", record.procedure.as_ref().map(|v| v.as_str()));
    w.key_opt("item", record.item.as_ref().map(|v| v.as_str()));
    w.key_opt("person", record.person.map(|v| v.to_string()).as_deref());
    w.key_opt(
        "business_system",
        record.business_system.as_ref().map(|v| v.as_str()),
    );
    w.key_str("requested_at", &record.requested_at, false);
    w.key_opt("provided_at", record.provided_at.as_deref());
    w.key_opt("serial", record.serial.as_ref().map(|v| v.as_str()));
    w.key_str("result", record.result.as_str(), false);
    w.key_opt("reason", record.reason.as_deref());
    w.key_raw("non_disclosure", bool_str(record.non_disclosure), false);
    match &record.staff {
        None => w.key_raw("staff", "null", false),
        Some(s) => {
            let mut inner = Writer(String::with_capacity(256));
            inner.0.push('{');
            inner.key_str("actor", &s.actor, true);
            inner.key_str("terminal", &s.terminal, false);
            inner.key_opt(
                "certificate_fingerprint",
                s.certificate_fingerprint.as_deref(),
            );
            inner.key_str("action", &s.action, false);
            inner.key_opt("target", s.target.as_deref());
            inner.key_raw(
                "touched_individual_number",
                bool_str(s.touched_individual_number),
                false,
            );
            inner.0.push('}');
            w.key_raw("staff", &inner.0, false);
        }
    }
    w.key_opt("reference", record.reference.as_deref());
    w.0.push('}');
    w.0.into_bytes()
}

struct Writer(String);

impl Writer {
    fn key_raw(&mut self, key: &str, raw: &str, first: bool) {
        if !first {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        self.0.push_str(raw);
    }
    fn key_opt(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.key_str(key, v, false),
            None => self.key_raw(key, "null", false),
        }
    }
    fn key_str(&mut self, key: &str, value: &str, first: bool) {
        self.key_raw(key, "", first);
        quote_into(&mut self.0, value);
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A JSON string literal with the minimal escaping described on [`canonical_bytes`]
/// (the same choice serde_json makes).
fn quote_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            kind: RecordKind::Inquiry,
            inquirer: Some(AgencyCode::parse("0112345678900000").unwrap()),
            provider: Some(AgencyCode::parse("1300000000000001").unwrap()),
            procedure: Some(ProcedureCode::parse("JT01010000000214").unwrap()),
            item: Some(ItemCode::parse("TM00000000000002").unwrap()),
            person: Some(UnifiedAddressNumber::from_serial(42).unwrap()),
            business_system: Some(SystemId::parse("kodomo-iryo").unwrap()),
            requested_at: "2026-11-26T09:00:00Z".into(),
            provided_at: Some("2026-11-26T09:00:05Z".into()),
            serial: Some(ProcessingSerial::parse("S0001").unwrap()),
            result: RecordResult::Answered,
            reason: None,
            non_disclosure: false,
            staff: None,
            reference: Some("inq-1".into()),
        }
    }

    #[test]
    fn canonical_golden_string() {
        let got = String::from_utf8(canonical_bytes(&sample())).unwrap();
        let person = UnifiedAddressNumber::from_serial(42).unwrap().to_string();
        let want = format!(
            "{{\"kind\":\"inquiry\",\"inquirer\":\"0112345678900000\",\"provider\":\"1300000000000001\",\
\"procedure\":\"JT01010000000214\",\"item\":\"TM00000000000002\",\"person\":\"{person}\",\
\"business_system\":\"kodomo-iryo\",\"requested_at\":\"2026-11-26T09:00:00Z\",\
\"provided_at\":\"2026-11-26T09:00:05Z\",\"serial\":\"S0001\",\"result\":\"answered\",\
\"reason\":null,\"non_disclosure\":false,\"staff\":null,\"reference\":\"inq-1\"}}"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn canonical_matches_serde_json_and_round_trips_with_escapes() {
        let mut r = sample();
        r.reason = Some("改行\nタブ\t引用\"\\ \u{1}\u{7f}〜".into());
        r.staff = Some(StaffDetail {
            actor: "sato.h".into(),
            terminal: "t-1".into(),
            certificate_fingerprint: None,
            action: "person.search".into(),
            target: Some("inquiry:1".into()),
            touched_individual_number: true,
        });
        let bytes = canonical_bytes(&r);
        assert_eq!(bytes, serde_json::to_vec(&r).unwrap());
        assert!(!bytes.contains(&b'\n'));
        assert_eq!(Record::from_canonical(&bytes).unwrap(), r);
    }

    #[test]
    fn non_canonical_and_unknown_fields_are_refused() {
        let bytes = canonical_bytes(&sample());
        let spaced = String::from_utf8(bytes.clone())
            .unwrap()
            .replace(",\"item\"", ", \"item\"");
        assert_eq!(
            Record::from_canonical(spaced.as_bytes())
                .unwrap_err()
                .code(),
            "records_format"
        );
        let extra = String::from_utf8(bytes)
            .unwrap()
            .replace("{\"kind\"", "{\"x\":1,\"kind\"");
        assert!(Record::from_canonical(extra.as_bytes()).is_err());
    }

    #[test]
    fn validate_refuses_individual_numbers_in_text_and_bad_times() {
        let mut r = sample();
        assert!(r.validate().is_ok());
        r.reference = Some("id 621498320257 here".into());
        let err = r.validate().unwrap_err();
        assert_eq!(err.code(), "records_individual_number_in_text");
        assert!(!err.to_string().contains("621498320257"));
        r.reference = Some("20261126090000123".into()); // 17 digits: a timestamp, fine
        assert!(r.validate().is_ok());
        r.requested_at = "yesterday".into();
        assert_eq!(r.validate().unwrap_err().code(), "records_format");
    }

    /// Regression: a certificate fingerprint is a hash whose hex can contain 12 decimal
    /// digits with a valid check digit by chance; it must not make the record "withheld".
    #[test]
    fn fingerprint_with_a_number_shaped_run_is_accepted_free_text_is_not() {
        let mut r = crate::testing::synthetic_record(1);
        r.staff = Some(StaffDetail {
            actor: "security-officer".into(),
            terminal: "127.0.0.1:50000".into(),
            certificate_fingerprint: Some(format!("ab{}cd", "621498320257")),
            action: "keys.rotate signing -> v2".into(),
            target: None,
            touched_individual_number: false,
        });
        assert!(r.validate().is_ok());
        if let Some(s) = r.staff.as_mut() {
            s.certificate_fingerprint = Some("not hex!".into());
        }
        assert!(r.validate().is_err());
        if let Some(s) = r.staff.as_mut() {
            s.certificate_fingerprint = None;
            s.action = format!("looked up {}", "621498320257");
        }
        assert!(r.validate().is_err(), "free text is still scanned");
    }
}
