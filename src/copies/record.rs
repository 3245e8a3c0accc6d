//! The linkage record of a copy version's state: one builder, used by registration and by the
//! transfer, so every record of a copy names the same fields.

use renkei_ids::AgencyCode;
use renkei_records::{Record, RecordKind, RecordResult};

use super::model::CopyVersion;
use crate::util::rfc3339_jst;

/// The record of a copy version (kind `provision`: information this city provides).
pub fn copy_record(c: &CopyVersion, result: RecordResult, city: &AgencyCode) -> Record {
    let mut r = crate::records::base(RecordKind::Provision, result);
    r.item = Some(c.item.clone());
    r.person = Some(c.unified);
    r.business_system = Some(c.system.clone());
    r.provider = Some(city.clone());
    r.requested_at = rfc3339_jst(c.accepted_ms);
    r.reference = Some(c.id.clone());
    r.non_disclosure = c.non_disclosure;
    r
}
