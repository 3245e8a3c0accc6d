//! Retention (番号法 art. 23, seven years): deleting a record's content past the period while
//! keeping its leaf and chain hashes, so the chain, the Merkle tree and every checkpoint
//! still verify.

use time::format_description::well_known::Rfc3339;
use time::{Month, OffsetDateTime};

use crate::chain::StoredEntry;
use crate::merkle::leaf_hash;
use crate::record::{canonical_bytes, parse_time, Record};
use crate::RecordsError;

/// 情報提供等記録 are kept seven years (番号法施行令 第29条), then deleted.
pub const DEFAULT_RETENTION_YEARS: u32 = 7;

/// `now` minus `years` calendar years (29 February becomes 28 February), as RFC 3339 UTC.
pub fn retention_cutoff(now: &str, years: u32) -> Result<String, RecordsError> {
    let now = parse_time(now, "now")?.to_offset(time::UtcOffset::UTC);
    let year = now.year()
        - i32::try_from(years).map_err(|_| RecordsError::format("years", "too large"))?;
    let mut day = now.day();
    if now.month() == Month::February && day == 29 && !time::util::is_leap_year(year) {
        day = 28;
    }
    let date = time::Date::from_calendar_date(year, now.month(), day)
        .map_err(|_| RecordsError::format("years", "cutoff out of range"))?;
    let cutoff = OffsetDateTime::new_utc(date, now.time());
    cutoff
        .format(&Rfc3339)
        .map_err(|_| RecordsError::format("years", "cutoff out of range"))
}

/// The entry with its content deleted when `record` (the decoded content of `entry`) is
/// older than `cutoff`: its latest timestamp (provision, else request) lies strictly before
/// it. `None` means keep the entry as it is: not old enough, already swept, the record does
/// not match the entry, or a timestamp cannot be read (a record is never deleted on a guess).
pub fn sweep(entry: &StoredEntry, record: &Record, cutoff: &str) -> Option<StoredEntry> {
    let content = entry.content.as_ref()?;
    let canonical = canonical_bytes(record);
    if &canonical != content || leaf_hash(&canonical) != entry.leaf_hash {
        return None;
    }
    let cutoff = parse_time(cutoff, "cutoff").ok()?;
    let mut latest = parse_time(&record.requested_at, "requested_at").ok()?;
    if let Some(p) = &record.provided_at {
        latest = latest.max(parse_time(p, "provided_at").ok()?);
    }
    (latest < cutoff).then(|| StoredEntry {
        content: None,
        ..entry.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainState;
    use crate::record::{RecordKind, RecordResult};

    fn rec(at: &str) -> Record {
        Record {
            kind: RecordKind::KeyAction,
            inquirer: None,
            provider: None,
            procedure: None,
            item: None,
            person: None,
            business_system: None,
            requested_at: at.into(),
            provided_at: None,
            serial: None,
            result: RecordResult::Done,
            reason: None,
            non_disclosure: false,
            staff: None,
            reference: None,
        }
    }

    #[test]
    fn cutoff_is_seven_calendar_years() {
        assert_eq!(
            retention_cutoff("2026-11-26T12:00:00Z", 7).unwrap(),
            "2019-11-26T12:00:00Z"
        );
        assert_eq!(
            retention_cutoff("2028-02-29T00:00:00+09:00", 7).unwrap(),
            "2021-02-28T15:00:00Z"
        );
        assert_eq!(
            retention_cutoff("2024-02-29T12:00:00Z", 7).unwrap(),
            "2017-02-28T12:00:00Z"
        );
        assert!(retention_cutoff("soon", 7).is_err());
    }

    #[test]
    fn sweeps_only_old_matching_records() {
        let mut s = ChainState::new();
        let old = rec("2018-01-01T00:00:00Z");
        let new = rec("2026-01-01T00:00:00+09:00");
        let e_old = s.append_record(&old).unwrap();
        let e_new = s.append_record(&new).unwrap();
        let cutoff = "2019-11-26T00:00:00Z";
        let swept = sweep(&e_old, &old, cutoff).unwrap();
        assert_eq!(swept.content, None);
        assert_eq!(
            (swept.seq, swept.leaf_hash, swept.chain_hash),
            (e_old.seq, e_old.leaf_hash, e_old.chain_hash)
        );
        assert!(sweep(&e_new, &new, cutoff).is_none());
        assert!(sweep(&swept, &old, cutoff).is_none(), "already swept");
        assert!(
            sweep(&e_new, &old, cutoff).is_none(),
            "record does not match entry"
        );
        assert!(sweep(&e_old, &old, "bad").is_none());
        // A later provision time keeps it.
        let mut provided_late = rec("2018-01-01T00:00:00Z");
        provided_late.provided_at = Some("2020-01-01T00:00:00Z".into());
        let e = s.append_record(&provided_late).unwrap();
        assert!(sweep(&e, &provided_late, cutoff).is_none());
    }
}
