//! Accepting an uploaded batch file: the upload (spooled to disk by [`super::spool`]) is
//! answered at once with the batch id; a background task reads the file line by line and submits each good line through
//! [`Gateway::submit_inquiry`] with a bounded number in flight, so that the store's group
//! commit makes many lines durable per `fsync`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use renkei_convert::{parse_batch_line, BatchInquiryLine, Layout, LayoutReader, LineError};
use renkei_ids::SystemId;
use tokio::task::JoinSet;

use super::internal;
use super::spool::{BatchSlot, Spooled};
use super::{
    batch_id, line_key, load_meta, meta_key, BatchMeta, BatchState, LineEntry, Rejection,
    DEFAULT_MAX_REJECTED_LISTED,
};
use crate::error::Error;
use crate::inquiry::Conditions;
use crate::inquiry::{accept::business_client, Inquiries, InquiryRequest};
use crate::util::now_ms;
use renkei_store::{Batch, StoreError, Tree};

/// Lines submitted at once. Each waits mostly for the group commit; 256 in flight keep the
/// writer's groups large (hundreds of inquiries per `fsync`) while bounding memory and the
/// share of the two cores a batch can take from interactive requests.
pub const DEFAULT_BATCH_IN_FLIGHT: usize = 256;
/// Lines whose per-line entries and counts are saved together: one extra store write per
/// 1,024 lines keeps the batch's bookkeeping a small fraction of the inquiries' own writes.
pub const DEFAULT_CHUNK_LINES: usize = 1024;
/// 照会年度区分 meaning "a fiscal year (年度)": the year is the one containing 照会開始日付.
pub const FISCAL_YEAR_KIND_YEAR: char = '1';
/// 照会年度区分 meaning "a period": 照会開始日付 to 照会終了日付.
pub const FISCAL_YEAR_KIND_PERIOD: char = '0';

/// Batches whose acceptance task runs in this process (at most one task per batch).
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Whether the acceptance task of batch `id` runs in this process.
pub fn is_running(id: &str) -> bool {
    match running().lock() {
        Ok(g) => g.contains(id),
        Err(p) => p.into_inner().contains(id),
    }
}

fn claim(id: &str) -> bool {
    match running().lock() {
        Ok(mut g) => g.insert(id.to_string()),
        Err(p) => p.into_inner().insert(id.to_string()),
    }
}

/// Releases the claim on a batch when the task ends, however it ends.
struct Claim(String);

impl Drop for Claim {
    fn drop(&mut self) {
        match running().lock() {
            Ok(mut g) => g.remove(&self.0),
            Err(p) => p.into_inner().remove(&self.0),
        };
    }
}

/// The `inquiry-batch` layout (from `schemas_dir`, or the built-in copy), parsed once.
pub fn batch_layout() -> Result<&'static Layout, Error> {
    static LAYOUT: OnceLock<Result<Layout, crate::schemas::SchemaError>> = OnceLock::new();
    crate::schemas::layout_once(&LAYOUT, "inquiry-batch")
        .map_err(|e| Error::internal("batch layout", e))
}

/// What an upload answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub id: String,
    pub status: BatchState,
    /// False when the same file was uploaded before by this system (nothing new is created).
    pub new: bool,
}

/// Registers an upload and starts (or resumes) its acceptance in the background; the
/// spool file and the system's batch slot are given back when the acceptance ends.
pub async fn upload(
    gw: &Arc<Inquiries>,
    system: &SystemId,
    body: Spooled,
    slot: BatchSlot,
) -> Result<Uploaded, Error> {
    business_client(&gw.config(), system)?;
    batch_layout()?;
    let sha = body.sha256.clone();
    let id = batch_id(system, &sha);
    let meta = match load_meta(gw, &id)? {
        Some(m) => {
            if m.state == BatchState::Accepted || is_running(&id) {
                return Ok(Uploaded {
                    id,
                    status: m.state,
                    new: false,
                });
            }
            // Cut short earlier: read the file again from the top (idempotent per line).
            m
        }
        None => {
            let meta = BatchMeta {
                id: id.clone(),
                system: system.clone(),
                file_sha256: sha.clone(),
                bytes: body.bytes,
                received_ms: now_ms(),
                state: BatchState::Accepting,
                total_lines: 0,
                accepted: 0,
                rejected_count: 0,
                rejected: Vec::new(),
                accepted_ms: None,
            };
            let mut b = Batch::new();
            b.require_absent(Tree::Batches, meta_key(&id));
            b.put(
                Tree::Batches,
                meta_key(&id),
                serde_json::to_vec(&meta).map_err(internal)?,
            );
            match gw.store().commit(b).await {
                Ok(_) => meta,
                // The same file raced in twice: the other upload owns it.
                Err(StoreError::Conflict { .. }) => {
                    return Ok(Uploaded {
                        id,
                        status: BatchState::Accepting,
                        new: false,
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !claim(&id) {
        return Ok(Uploaded {
            id,
            status: BatchState::Accepting,
            new: false,
        });
    }
    let claim = Claim(id.clone());
    let new = meta.total_lines == 0 && meta.state == BatchState::Accepting;
    tracing::info!(message = "Batch received.", batch_id = %id, bytes = body.bytes, resumed = !new);
    let reader = body.reader().map_err(internal)?;
    let gw = gw.clone();
    tokio::spawn(async move {
        let (_claim, _slot, _spool) = (claim, slot, body);
        let started = Instant::now();
        let batch_id = meta.id.clone();
        match accept_lines(&gw, meta, reader).await {
            Ok(m) => tracing::info!(
                message = "Batch accepted.",
                batch_id = %batch_id,
                lines = m.total_lines,
                accepted = m.accepted,
                rejected = m.rejected_count,
                state = ?m.state,
                elapsed_ms = started.elapsed().as_millis() as u64
            ),
            Err(error) => {
                tracing::error!(message = "Batch acceptance stopped.", batch_id = %batch_id, %error)
            }
        }
    });
    Ok(Uploaded {
        id,
        status: BatchState::Accepting,
        new: true,
    })
}

/// The outcome of one line.
enum Outcome {
    Accepted(String),
    Rejected(Rejection),
}

fn rejection(e: &LineError) -> Rejection {
    Rejection {
        line: e.line,
        field: e.field.clone(),
        code: e.code.to_string(),
        message: crate::util::scrub(&e.message),
    }
}

fn reject(line: u64, field: &str, code: &str, message: impl Into<String>) -> Rejection {
    Rejection {
        line,
        field: Some(field.to_string()),
        code: code.to_string(),
        message: message.into(),
    }
}

/// The layout field a gateway refusal concerns.
fn layout_field(gateway_field: Option<&str>, code: &str) -> Option<String> {
    match gateway_field {
        Some("business_number") => Some("business_number".into()),
        Some(f) if f.starts_with("conditions") => Some("from_date".into()),
        // The API's names for the request's codes are the file's column names.
        Some("item") => Some("item_code".into()),
        Some("procedure") => Some("procedure_code".into()),
        Some("Idempotency-Key") | None => match code {
            "not_permitted" => Some("item_code".into()),
            _ => None,
        },
        Some(f) => Some(f.to_string()),
    }
}

/// Turns a refusal of [`Inquiries::submit`] into a line rejection; `None` for failures
/// of the gateway itself (store, internal), which stop the batch instead.
fn gateway_rejection(line: u64, e: Error) -> Option<Rejection> {
    let (code, field, message) = match e {
        Error::Invalid {
            code,
            field,
            message,
        } => (code, field, message),
        Error::Forbidden {
            code,
            field,
            message,
        } => (code, field, message),
        Error::Conflict { code, message } => (code, None, message),
        Error::NotFound => ("not_found", None, "not found".into()),
        Error::Store(_) | Error::Internal { .. } => return None,
    };
    Some(Rejection {
        line,
        field: layout_field(field.as_deref(), code),
        code: code.to_string(),
        message: crate::util::scrub(&message),
    })
}

/// The fiscal year (April to March) containing a `YYYY-MM-DD` date.
fn fiscal_year_of(date: &str) -> Option<u16> {
    let year: u16 = date.get(0..4)?.parse().ok()?;
    let month: u8 = date.get(5..7)?.parse().ok()?;
    Some(if month >= 4 { year } else { year - 1 })
}

/// The inquiry a typed line asks for, or why it is refused before reaching the gateway's
/// checks (agency and affair must be this city's and this system's).
fn to_request(
    config: &crate::config::GatewayConfig,
    affairs: &[renkei_ids::AffairCode],
    line: u64,
    l: BatchInquiryLine,
) -> Result<(renkei_ids::AffairCode, InquiryRequest), Rejection> {
    if l.inquirer != config.agency_code {
        return Err(reject(
            line,
            "inquirer_agency",
            "agency_mismatch",
            "情報照会者機関コード is not this city's agency code",
        ));
    }
    if !affairs.contains(&l.affair) {
        return Err(reject(
            line,
            "affair_code",
            "affair_mismatch",
            "事務コード is not one of the affairs this system inquires under",
        ));
    }
    let conditions = match l.fiscal_year_kind {
        FISCAL_YEAR_KIND_YEAR => {
            let from = l.from.as_deref().ok_or_else(|| {
                reject(
                    line,
                    "from_date",
                    "required",
                    "照会開始日付 is required to name the fiscal year",
                )
            })?;
            let fiscal_year = fiscal_year_of(from)
                .ok_or_else(|| reject(line, "from_date", "invalid_date", "expected a date"))?;
            Conditions::FiscalYear { fiscal_year }
        }
        FISCAL_YEAR_KIND_PERIOD => match (&l.from, &l.to) {
            (Some(from), Some(to)) => Conditions::Period {
                from: from.clone(),
                to: to.clone(),
            },
            (None, _) => {
                return Err(reject(
                    line,
                    "from_date",
                    "required",
                    "照会開始日付 is required for a period",
                ))
            }
            (_, None) => {
                return Err(reject(
                    line,
                    "to_date",
                    "required",
                    "照会終了日付 is required for a period",
                ))
            }
        },
        _ => {
            return Err(reject(
                line,
                "fiscal_year_kind",
                "invalid_code",
                "照会年度区分: 1 (fiscal year) or 0 (period)",
            ))
        }
    };
    Ok((
        l.affair,
        InquiryRequest {
            business_number: l.business_number,
            procedure: l.procedure,
            item: l.item,
            conditions,
            non_disclosure: l.non_disclosure,
        },
    ))
}

/// Per-line results waiting to be saved with the batch's counts.
struct Pending {
    lines: Vec<(u64, Outcome)>,
}

impl Pending {
    /// Saves the waiting lines' entries and the updated metadata in one atomic write.
    async fn flush(&mut self, gw: &Inquiries, meta: &mut BatchMeta) -> Result<(), Error> {
        let mut b = Batch::new();
        let mut rejected = Vec::new();
        for (line, outcome) in self.lines.drain(..) {
            match outcome {
                Outcome::Accepted(inquiry) => {
                    meta.accepted += 1;
                    let entry = LineEntry {
                        inquiry: Some(inquiry),
                        final_status: None,
                        rejected: None,
                    };
                    b.put(
                        Tree::Batches,
                        line_key(&meta.id, line),
                        serde_json::to_vec(&entry).map_err(internal)?,
                    );
                }
                Outcome::Rejected(r) => {
                    meta.rejected_count += 1;
                    let entry = LineEntry {
                        inquiry: None,
                        final_status: None,
                        rejected: Some(r.code.clone()),
                    };
                    b.put(
                        Tree::Batches,
                        line_key(&meta.id, line),
                        serde_json::to_vec(&entry).map_err(internal)?,
                    );
                    rejected.push(r);
                }
            }
        }
        if !rejected.is_empty() {
            meta.rejected.extend(rejected);
            meta.rejected.sort_by_key(|r| r.line);
            meta.rejected.truncate(DEFAULT_MAX_REJECTED_LISTED);
        }
        b.put(
            Tree::Batches,
            meta_key(&meta.id),
            serde_json::to_vec(&*meta).map_err(internal)?,
        );
        gw.store().commit(b).await?;
        Ok(())
    }
}

type Submitted = (u64, Result<crate::inquiry::Accepted, Error>);

/// Reads every line of `body`, submits the good ones, records the outcome of each, and
/// marks the batch accepted (or interrupted when the gateway itself failed). `body` is a
/// buffered spool file: its reads come from the page cache, short enough to make here.
pub async fn accept_lines(
    gw: &Arc<Inquiries>,
    mut meta: BatchMeta,
    body: impl std::io::BufRead,
) -> Result<BatchMeta, Error> {
    let layout = batch_layout()?;
    let config = gw.config();
    let affairs = business_client(&config, &meta.system)?.affairs.clone();
    // Counts start over on a resume: every line is read again and answers the same way.
    meta.state = BatchState::Accepting;
    meta.total_lines = 0;
    meta.accepted = 0;
    meta.rejected_count = 0;
    meta.rejected.clear();
    let mut pending = Pending {
        lines: Vec::with_capacity(DEFAULT_CHUNK_LINES),
    };
    let mut set: JoinSet<Submitted> = JoinSet::new();
    let mut fatal: Option<Error> = None;
    let handle = |joined: Result<Submitted, tokio::task::JoinError>,
                  pending: &mut Pending,
                  fatal: &mut Option<Error>| {
        match joined {
            Ok((line, Ok(accepted))) => pending
                .lines
                .push((line, Outcome::Accepted(accepted.id.to_string()))),
            Ok((line, Err(e))) => match gateway_rejection(line, e) {
                Some(r) => pending.lines.push((line, Outcome::Rejected(r))),
                None => {
                    if fatal.is_none() {
                        *fatal = Some(Error::internal(
                            "accepting a batch",
                            crate::error::Bug("the store failed while accepting the batch"),
                        ));
                    }
                }
            },
            Err(e) => {
                if fatal.is_none() {
                    *fatal = Some(internal(e));
                }
            }
        }
    };
    for item in LayoutReader::new(layout, body) {
        if fatal.is_some() {
            break;
        }
        meta.total_lines += 1;
        let rec = match item {
            Ok(rec) => rec,
            Err(e) => {
                pending
                    .lines
                    .push((e.line, Outcome::Rejected(rejection(&e))));
                continue;
            }
        };
        let line = rec.line();
        let req = parse_batch_line(&rec)
            .map_err(|e| rejection(&e))
            .and_then(|l| to_request(&config, &affairs, line, l));
        drop(rec);
        match req {
            Err(r) => pending.lines.push((line, Outcome::Rejected(r))),
            Ok((affair, req)) => {
                let gw2 = gw.clone();
                let system = meta.system.clone();
                let key = format!("batch:{}:{line}", meta.file_sha256);
                let id = meta.id.clone();
                set.spawn(async move {
                    let r = gw2
                        .submit(&system, &key, req, Some(&affair), Some(id))
                        .await;
                    (line, r)
                });
            }
        }
        while set.len() >= DEFAULT_BATCH_IN_FLIGHT {
            if let Some(j) = set.join_next().await {
                handle(j, &mut pending, &mut fatal);
            }
        }
        if pending.lines.len() >= DEFAULT_CHUNK_LINES {
            pending.flush(gw, &mut meta).await?;
        }
    }
    while let Some(j) = set.join_next().await {
        handle(j, &mut pending, &mut fatal);
        if pending.lines.len() >= DEFAULT_CHUNK_LINES {
            pending.flush(gw, &mut meta).await?;
        }
    }
    if fatal.is_some() {
        meta.state = BatchState::Interrupted;
    } else {
        meta.state = BatchState::Accepted;
        meta.accepted_ms = Some(now_ms());
    }
    pending.flush(gw, &mut meta).await?;
    match fatal {
        Some(e) => Err(e),
        None => Ok(meta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_year_starts_in_april() {
        assert_eq!(fiscal_year_of("2026-04-01"), Some(2026));
        assert_eq!(fiscal_year_of("2027-03-31"), Some(2026));
        assert_eq!(fiscal_year_of("2026-x"), None);
    }

    #[test]
    fn gateway_refusals_name_layout_fields() {
        let r = gateway_rejection(
            7,
            Error::Forbidden {
                code: "not_permitted",
                field: None,
                message: "no".into(),
            },
        )
        .unwrap();
        assert_eq!((r.line, r.field.as_deref()), (7, Some("item_code")));
        let r = gateway_rejection(
            8,
            Error::Invalid {
                code: "person_not_linked",
                field: Some("business_number".into()),
                message: "x".into(),
            },
        )
        .unwrap();
        assert_eq!(r.field.as_deref(), Some("business_number"));
        assert!(gateway_rejection(9, Error::internal("test", crate::error::Bug("x"))).is_none());
    }
}
