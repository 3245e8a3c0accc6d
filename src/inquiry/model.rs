//! The inquiry as stored and as a business system sees it: its states, conditions, result
//! and failure, and the JSON view.

use renkei_ids::{
    AffairCode, BusinessNumber, InquiryId, ItemCode, ProcedureCode, ProcessingSerial, SystemId,
    UnifiedAddressNumber,
};
use serde::{Deserialize, Serialize};

/// Where an inquiry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    AwaitingCode,
    Sent,
    Answered,
    Failed,
}

impl Status {
    /// True for `answered` and `failed`.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Answered | Status::Failed)
    }

    /// Every status, in the order an inquiry moves through them.
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::AwaitingCode,
        Status::Sent,
        Status::Answered,
        Status::Failed,
    ];

    /// The status as written in JSON (`awaiting_code`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::AwaitingCode => "awaiting_code",
            Status::Sent => "sent",
            Status::Answered => "answered",
            Status::Failed => "failed",
        }
    }
}

/// What the business system asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum Conditions {
    /// A fiscal year (年度), e.g. `{"fiscal_year": 2026}`.
    FiscalYear { fiscal_year: u16 },
    /// A period of dates, e.g. `{"from": "2026-04-01", "to": "2027-03-31"}`.
    Period { from: String, to: String },
}

/// One field of an answered item, converted for the business system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    /// Stored inquiries written before the field was renamed say `item_code`.
    #[serde(alias = "item_code")]
    pub item: ItemCode,
    pub fields: Vec<(String, String)>,
}

/// The answer, as the business system sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InquiryResult {
    pub provider_agency: Option<String>,
    /// 照会ステータス（明細単位）, `09` = finished normally.
    pub detail_status: String,
    /// 照会ステータス（特定個人情報名単位）, `01` = provided.
    pub item_status: String,
    pub items: Vec<ResultItem>,
}

/// Why an inquiry failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InquiryError {
    /// Stable code, e.g. `platform_rejected`, `deadline_passed`, `not_permitted`.
    pub code: String,
    pub message: String,
    /// The platform's own text, verbatim (Japanese), when it gave one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_message: Option<String>,
}

/// An inquiry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inquiry {
    pub id: InquiryId,
    pub system: SystemId,
    pub business_number: BusinessNumber,
    pub unified: UnifiedAddressNumber,
    pub affair: AffairCode,
    pub procedure: ProcedureCode,
    pub item: ItemCode,
    pub conditions: Conditions,
    /// 照会側不開示コード: hide this inquiry from the person's disclosure.
    #[serde(default)]
    pub non_disclosure: bool,
    pub status: Status,
    #[serde(default)]
    pub serial: Option<ProcessingSerial>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub result: Option<InquiryResult>,
    #[serde(default)]
    pub error: Option<InquiryError>,
    /// Batch it came in, if any.
    #[serde(default)]
    pub batch: Option<String>,
    pub accepted_ms: u64,
    #[serde(default)]
    pub sent_ms: Option<u64>,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    pub deadline_ms: u64,
    /// The due-tree key currently scheduling this inquiry (removed when it moves).
    #[serde(default)]
    pub due_key: Option<Vec<u8>>,
}

/// The JSON a business system gets for `GET /v1/inquiries/{id}`.
#[derive(Debug, Serialize)]
pub struct InquiryView<'a> {
    pub id: &'a InquiryId,
    pub status: Status,
    pub business_number: &'a BusinessNumber,
    pub procedure: &'a ProcedureCode,
    pub item: &'a ItemCode,
    pub conditions: &'a Conditions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a InquiryResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a InquiryError>,
    pub timestamps: Timestamps,
}

/// Times of an inquiry's steps, RFC 3339 JST.
#[derive(Debug, Serialize)]
pub struct Timestamps {
    pub accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub deadline_at: String,
}

impl Inquiry {
    /// The business system's view.
    pub fn view(&self) -> InquiryView<'_> {
        use crate::util::rfc3339_jst;
        InquiryView {
            id: &self.id,
            status: self.status,
            business_number: &self.business_number,
            procedure: &self.procedure,
            item: &self.item,
            conditions: &self.conditions,
            result: self.result.as_ref(),
            error: self.error.as_ref(),
            timestamps: Timestamps {
                accepted_at: rfc3339_jst(self.accepted_ms),
                sent_at: self.sent_ms.map(rfc3339_jst),
                finished_at: self.finished_ms.map(rfc3339_jst),
                deadline_at: rfc3339_jst(self.deadline_ms),
            },
        }
    }
}
