//! Batch inquiries submitted as municipal files (情報照会依頼一括ファイル): one upload, one batch
//! id, every good line an inquiry through the same path as `POST /v1/inquiries`, bad lines
//! reported with line, field and code, and the results as a file in the `inquiry-result` layout.
//!
//! - [`accept`] — parses the upload and submits its lines concurrently in the background;
//! - [`progress`] — counts a batch's inquiries by status (`GET /v1/batches/{id}`);
//! - [`results`] — renders the results file (`GET /v1/batches/{id}/results`);
//! - [`spool`] — the upload on disk as it arrives, and the per-system cap on batches in
//!   progress;
//!
//! Storage, all in [`Tree::Batches`]: `<id>` holds the [`BatchMeta`] (counts and a bounded
//! list of rejected lines), `<id>/<line, 10 digits>` one [`LineEntry`] per line (an accepted
//! line's inquiry id and its final status once seen; a refused line's reason code), `<id>#progress` the last [`Progress`]. Nothing
//! per line is kept in memory, so a 300,000-line batch costs the same RAM as a small one.
//!
//! Re-uploading the same file is harmless: the batch id is derived from the system and the
//! file's SHA-256, and each line's idempotency key is `batch:<sha256>:<line>`, so the same
//! upload answers the same batch id and creates no new inquiry. A batch whose acceptance was
//! cut short (gateway restart) is resumed by uploading the same file again.

pub mod accept;
pub mod progress;
pub mod results;
pub mod spool;

use renkei_ids::SystemId;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::inquiry::Inquiries;
use crate::inquiry::Status;
use renkei_store::Tree;

/// Rejected lines listed in full in a batch's status; beyond this only the count grows, so a
/// file of garbage cannot make the status document (or the stored metadata) unbounded.
pub const DEFAULT_MAX_REJECTED_LISTED: usize = 1000;

/// Where a batch's acceptance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Lines are being read and submitted.
    Accepting,
    /// Every line was read; each is accepted or rejected.
    Accepted,
    /// Acceptance stopped early (store failure or restart); upload the same file to resume.
    Interrupted,
}

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// 1-based line number in the file.
    pub line: u64,
    /// The layout field concerned (e.g. `business_number`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// Stable machine code, e.g. `invalid_format`, `person_not_linked`, `not_permitted`.
    pub code: String,
    /// Explanation (never carries a personal value).
    pub message: String,
}

/// A batch's metadata, stored under `<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchMeta {
    pub id: String,
    pub system: SystemId,
    pub file_sha256: String,
    pub bytes: u64,
    pub received_ms: u64,
    pub state: BatchState,
    /// Lines read so far.
    pub total_lines: u64,
    /// Lines that became inquiries.
    pub accepted: u64,
    /// Lines refused.
    pub rejected_count: u64,
    /// The first [`DEFAULT_MAX_REJECTED_LISTED`] refused lines, in line order.
    pub rejected: Vec<Rejection>,
    /// When every line had been read and submitted.
    #[serde(default)]
    pub accepted_ms: Option<u64>,
}

/// Per line, stored under `<id>/<line>`: the inquiry an accepted line became, or the reason
/// code of a refused one (so the results file can answer for every line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntry {
    /// The inquiry id (accepted lines).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub inquiry: Option<String>,
    /// `answered` or `failed` once the inquiry was seen final (it will not change again).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub final_status: Option<Status>,
    /// The stable code a refused line was rejected with (refused lines).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// Counts of a batch's inquiries by status, stored under `<id>#progress`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub queued: u64,
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    /// True once acceptance finished and every accepted inquiry is answered or failed.
    pub done: bool,
    /// When these counts were taken.
    pub counted_ms: u64,
    /// How long counting took (the next count waits [`progress::DEFAULT_RECOUNT_SPACING`] times as long).
    pub count_ms: u64,
}

/// Stable batch id of `system` uploading a file with this SHA-256.
pub fn batch_id(system: &SystemId, file_sha256: &str) -> String {
    let h = crate::util::sha256_hex(format!("{}\0{file_sha256}", system.as_str()).as_bytes());
    format!("BT{}", &h[..26].to_ascii_uppercase())
}

/// Key of a batch's metadata.
pub fn meta_key(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Key of a batch's progress counts.
pub fn progress_key(id: &str) -> Vec<u8> {
    format!("{id}#progress").into_bytes()
}

/// Prefix of a batch's per-line entries.
pub fn line_prefix(id: &str) -> Vec<u8> {
    format!("{id}/").into_bytes()
}

/// Key of one line's entry (zero-padded so keys sort in line order).
pub fn line_key(id: &str, line: u64) -> Vec<u8> {
    format!("{id}/{line:010}").into_bytes()
}

/// The line number of a per-line key.
pub fn line_of_key(key: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(key).ok()?;
    s.rsplit('/').next()?.parse().ok()
}

/// A batch's stored value could not be used (its cause goes to the log).
pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal("batch", e.to_string())
}

/// Reads a batch's metadata.
pub fn load_meta(gw: &Inquiries, id: &str) -> Result<Option<BatchMeta>, Error> {
    match gw.store().get(Tree::Batches, &meta_key(id))? {
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(internal),
        None => Ok(None),
    }
}

/// A batch's metadata on behalf of `system`: another system's batch is "not found".
pub fn meta_for(gw: &Inquiries, system: &SystemId, id: &str) -> Result<BatchMeta, Error> {
    // Ids are ours (`BT` + 26 hex digits): anything else cannot name a batch, and must not
    // reach the per-line key space through a `/` or `#`.
    if id.len() != 28 || !id.starts_with("BT") || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::NotFound);
    }
    match load_meta(gw, id)? {
        Some(m) if &m.system == system => Ok(m),
        _ => Err(Error::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_line_order_and_parse_back() {
        let id = "BT0123456789ABCDEF0123456789";
        assert!(line_key(id, 9) < line_key(id, 10));
        assert!(line_key(id, 10).starts_with(&line_prefix(id)));
        assert!(!progress_key(id).starts_with(&line_prefix(id)));
        assert_eq!(line_of_key(&line_key(id, 300_000)), Some(300_000));
    }

    #[test]
    fn batch_ids_depend_on_system_and_file() {
        let a = SystemId::parse("kodomo-iryo").unwrap();
        let b = SystemId::parse("kokuho").unwrap();
        assert_eq!(batch_id(&a, "ab"), batch_id(&a, "ab"));
        assert_ne!(batch_id(&a, "ab"), batch_id(&b, "ab"));
        assert_ne!(batch_id(&a, "ab"), batch_id(&a, "ac"));
        assert_eq!(batch_id(&a, "ab").len(), 28);
    }
}
