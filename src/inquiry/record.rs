//! The linkage record (情報提供等記録) of an inquiry's state: one builder, used by accepting
//! and by delivery, so every record of an inquiry names the same fields.

use renkei_platform::item_status;
use renkei_records::{Record, RecordKind, RecordResult};

use super::model::Inquiry;
use crate::util::rfc3339_jst;

/// The record of an inquiry's current state.
pub fn inquiry_record(inquiry: &Inquiry, result: RecordResult) -> Record {
    let mut r = crate::records::base(RecordKind::Inquiry, result);
    r.procedure = Some(inquiry.procedure.clone());
    r.item = Some(inquiry.item.clone());
    r.person = Some(inquiry.unified);
    r.business_system = Some(inquiry.system.clone());
    r.requested_at = rfc3339_jst(inquiry.accepted_ms);
    r.serial = inquiry.serial.clone();
    r.reference = Some(inquiry.id.to_string());
    r.non_disclosure = inquiry.non_disclosure;
    r
}

/// The record result of a finished inquiry.
pub fn final_result(inquiry: &Inquiry) -> RecordResult {
    match (&inquiry.result, &inquiry.error) {
        (Some(r), _) if r.item_status == item_status::NOT_HELD => RecordResult::NotHeld,
        (Some(_), _) => RecordResult::Answered,
        (None, Some(e)) if e.code.starts_with("platform_") => RecordResult::Refused,
        _ => RecordResult::Failed,
    }
}
