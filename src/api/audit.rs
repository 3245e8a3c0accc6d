//! Routes for auditors: query, export and verify the linkage records, and the public keys
//! needed to verify exports offline. Every auditor action is itself recorded.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, SystemId, UnifiedAddressNumber};
use renkei_records::{Record, RecordKind, StoredEntry};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Caller, JsonBody};
use crate::error::Error;
use crate::records;

/// Most records one page returns.
pub const MAX_PAGE: usize = 1000;
/// Default page size.
pub const DEFAULT_PAGE: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/records", get(query))
        .route("/v1/audit/export", post(export))
        .route("/v1/audit/verify", get(verify_live))
        .route("/v1/audit/public-keys", get(public_keys))
        .route("/v1/audit/consistency", get(consistency))
        .route("/v1/audit/checkpoints", get(stored_checkpoints))
        .route("/v1/audit/leaves", get(leaves))
}

/// Query parameters of `GET /v1/audit/records`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// Unified address number.
    pub person: Option<String>,
    /// A business number, with `system`.
    pub business_number: Option<String>,
    /// Business system name.
    pub system: Option<String>,
    /// inquiry, provision, code_acquisition, denied_request, staff_action, key_action, retention_sweep
    pub kind: Option<String>,
    pub procedure: Option<String>,
    pub item: Option<String>,
    /// answered, not_held, refused, failed, accepted, done
    pub result: Option<String>,
    /// Requested at or after (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Requested before.
    pub to: Option<String>,
    /// Page size (≤ 1000).
    pub limit: Option<usize>,
    /// Return records with seq below this (the `next_before` of the previous page).
    pub before: Option<u64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One record in a query answer.
#[derive(Debug, Serialize)]
pub struct RecordRow {
    pub seq: u64,
    #[serde(flatten)]
    pub record: Record,
}

/// A page of records, newest first.
#[derive(Debug, Serialize)]
pub struct RecordPage {
    pub records: Vec<RecordRow>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

fn bad(field: &'static str, msg: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", msg).field(field)
}

fn snake(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn time_bound(
    field: &'static str,
    s: &Option<String>,
) -> Result<Option<String>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) if v.len() == 10 => {
            crate::error::check_date(field, v)
                .map_err(|_| bad(field, "a date YYYY-MM-DD or an RFC 3339 time"))?;
            Ok(Some(format!("{v}T00:00:00+09:00")))
        }
        Some(v) => crate::util::parse_rfc3339_ms(v)
            .map(|_| Some(v.clone()))
            .ok_or_else(|| bad(field, "a date YYYY-MM-DD or an RFC 3339 time")),
    }
}

struct Filter {
    person: Option<UnifiedAddressNumber>,
    system: Option<String>,
    kind: Option<String>,
    procedure: Option<String>,
    item: Option<String>,
    result: Option<String>,
    from_ms: Option<u64>,
    to_ms: Option<u64>,
}

impl Filter {
    fn matches(&self, r: &Record) -> bool {
        let t = crate::util::parse_rfc3339_ms(&r.requested_at).unwrap_or(0);
        self.person.is_none_or(|p| r.person == Some(p))
            && self
                .system
                .as_ref()
                .is_none_or(|s| r.business_system.as_ref().map(|x| x.as_str()) == Some(s.as_str()))
            && self.kind.as_ref().is_none_or(|k| &snake(&r.kind) == k)
            && self.result.as_ref().is_none_or(|k| &snake(&r.result) == k)
            && self
                .procedure
                .as_ref()
                .is_none_or(|p| r.procedure.as_ref().map(|x| x.as_str()) == Some(p.as_str()))
            && self
                .item
                .as_ref()
                .is_none_or(|p| r.item.as_ref().map(|x| x.as_str()) == Some(p.as_str()))
            && self.from_ms.is_none_or(|f| t >= f)
            && self.to_ms.is_none_or(|f| t < f)
    }
}

fn build_filter(gw: &AppState, q: &RecordQuery) -> Result<Filter, ApiError> {
    let mut person = match &q.person {
        Some(p) => Some(UnifiedAddressNumber::parse(p).map_err(|e| bad("person", e.to_string()))?),
        None => None,
    };
    if let Some(bn) = &q.business_number {
        let system = q
            .system
            .as_ref()
            .ok_or_else(|| bad("system", "a business_number needs its system"))?;
        let system = SystemId::parse(system).map_err(|e| bad("system", e.to_string()))?;
        let bn = BusinessNumber::parse(bn).map_err(|e| bad("business_number", e.to_string()))?;
        let u = gw
            .registry
            .resolve(&system, &bn)
            .map_err(|e| ApiError::from(Error::from(e)))?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "person_not_found",
                    "no person has this business number in this system",
                )
            })?;
        person = Some(u);
    }
    let from = time_bound("from", &q.from)?;
    let to = time_bound("to", &q.to)?;
    Ok(Filter {
        person,
        system: if q.business_number.is_some() {
            None
        } else {
            q.system.clone()
        },
        kind: q.kind.clone(),
        procedure: q.procedure.clone(),
        item: q.item.clone(),
        result: q.result.clone(),
        from_ms: from.as_deref().and_then(crate::util::parse_rfc3339_ms),
        to_ms: to.as_deref().and_then(crate::util::parse_rfc3339_ms),
    })
}

/// Records the auditor's own action in the log.
async fn record_staff(
    gw: &AppState,
    caller: &Caller,
    action: &str,
    target: Option<String>,
) -> Result<(), ApiError> {
    let mut r = records::base(RecordKind::StaffAction, renkei_records::RecordResult::Done);
    r.staff = Some(caller.staff_detail(action, target, false));
    crate::records::record_now(gw.store.as_ref(), &r)
        .await
        .map_err(|e| ApiError::from(Error::Store(e)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn to_csv(rows: &[RecordRow]) -> String {
    let mut out = String::from(
        "seq,kind,requested_at,provided_at,inquirer,provider,procedure,item,person,business_system,serial,result,reason,non_disclosure,staff_actor,staff_action,staff_terminal,reference\r\n",
    );
    for row in rows {
        let r = &row.record;
        let o = |v: Option<String>| v.unwrap_or_default();
        let fields = [
            row.seq.to_string(),
            snake(&r.kind),
            r.requested_at.clone(),
            o(r.provided_at.clone()),
            o(r.inquirer.as_ref().map(|x| x.to_string())),
            o(r.provider.as_ref().map(|x| x.to_string())),
            o(r.procedure.as_ref().map(|x| x.to_string())),
            o(r.item.as_ref().map(|x| x.to_string())),
            o(r.person.map(|x| x.to_string())),
            o(r.business_system.as_ref().map(|x| x.to_string())),
            o(r.serial.as_ref().map(|x| x.to_string())),
            snake(&r.result),
            o(r.reason.clone()),
            r.non_disclosure.to_string(),
            o(r.staff.as_ref().map(|s| s.actor.clone())),
            o(r.staff.as_ref().map(|s| s.action.clone())),
            o(r.staff.as_ref().map(|s| s.terminal.clone())),
            o(r.reference.clone()),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

async fn query(
    State(gw): State<AppState>,
    caller: Caller,
    q: Result<Query<RecordQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            e.body_text(),
        )
    })?;
    let filter = build_filter(&gw, &q)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let end = q
        .before
        .map(|b| b.to_be_bytes().to_vec())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut cursor_end = end;
    let mut next_before = None;
    'scan: loop {
        let page = gw
            .store
            .range_rev(renkei_store::Tree::Records, &[], &cursor_end, 4096)
            .map_err(|e| ApiError::from(Error::Store(e)))?;
        if page.is_empty() {
            break;
        }
        for (k, v) in &page {
            cursor_end = k.clone();
            let Ok(entry) = StoredEntry::from_bytes(v) else {
                continue;
            };
            if let Some(r) = records::log::decode(&entry) {
                if filter.matches(&r) {
                    if rows.len() == limit {
                        next_before = Some(
                            rows.last()
                                .map(|x: &RecordRow| x.seq)
                                .unwrap_or(entry.seq + 1),
                        );
                        break 'scan;
                    }
                    rows.push(RecordRow {
                        seq: entry.seq,
                        record: r,
                    });
                }
            }
        }
        if page.len() < 4096 {
            break;
        }
    }
    record_staff(
        &gw,
        &caller,
        "audit.query",
        q.person.clone().or(q.business_number.clone()),
    )
    .await?;
    if q.format.as_deref() == Some("csv") {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&rows),
        )
            .into_response());
    }
    Ok(Json(RecordPage {
        records: rows,
        next_before,
    })
    .into_response())
}

/// `POST /v1/audit/export` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// First record time (inclusive), RFC 3339 or date; omit for the beginning.
    #[serde(default)]
    pub from: Option<String>,
    /// End time (exclusive); omit for "up to the latest checkpoint".
    #[serde(default)]
    pub to: Option<String>,
    /// Export one person's records only (unified address number).
    #[serde(default)]
    pub person: Option<String>,
}

/// The bundle, file by file, for the client to write into a folder.
#[derive(Debug, Serialize)]
pub struct ExportAnswer {
    pub files: BTreeMap<String, String>,
    pub records: u64,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(Error::internal("audit", e.to_string()))
}

async fn export(
    State(gw): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ExportRequest>,
) -> Result<Json<ExportAnswer>, ApiError> {
    // Make sure everything recorded so far is covered by a signed checkpoint.
    records::checkpoint::checkpoint_now(gw.store.as_ref(), &gw.keys.keyring)
        .await
        .map_err(internal)?;
    let cps = records::log::checkpoints(gw.store.as_ref()).map_err(internal)?;
    let pem = records::checkpoint::checkpoint_keys_pem(&gw.keys.keyring).map_err(internal)?;
    let tmp = tempdir_in(&gw.config.data_dir).map_err(internal)?;
    let (files, records) = {
        // An unreadable entry stops the export with an error; it never silently shortens it.
        let failure = std::cell::RefCell::new(None);
        let readable = |from: u64| {
            records::log::entries(gw.store.as_ref(), from).map_while(|e| match e {
                Ok(x) => Some(x),
                Err(err) => {
                    failure.borrow_mut().get_or_insert(err);
                    None
                }
            })
        };
        let all = || readable(0);
        let summary = if let Some(p) = &req.person {
            let u = UnifiedAddressNumber::parse(p).map_err(|e| bad("person", e.to_string()))?;
            renkei_records::export_person_bundle(&tmp, u, all(), &cps, &pem)
        } else {
            let from =
                time_bound("from", &req.from)?.and_then(|s| crate::util::parse_rfc3339_ms(&s));
            let to = time_bound("to", &req.to)?.and_then(|s| crate::util::parse_rfc3339_ms(&s));
            // Map times to a contiguous range of sequence numbers (append order).
            let mut first: Option<u64> = None;
            let mut end: u64 = u64::MAX;
            for e in all() {
                let t = records::log::decode(&e)
                    .and_then(|r| crate::util::parse_rfc3339_ms(&r.requested_at));
                if first.is_none() && from.is_none_or(|f| t.is_some_and(|t| t >= f)) {
                    first = Some(e.seq);
                }
                if let (Some(to), Some(t)) = (to, t) {
                    if t >= to && end == u64::MAX && first.is_some() {
                        end = e.seq;
                    }
                }
            }
            let first = first.unwrap_or(0);
            let previous = if first == 0 {
                None
            } else {
                readable(first - 1).next()
            };
            renkei_records::export_range_bundle(
                &tmp,
                previous.as_ref(),
                readable(first),
                end,
                &cps,
                &pem,
            )
        }
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
        if let Some(err) = failure.into_inner() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::from(err).into());
        }
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&tmp).map_err(internal)? {
            let entry = entry.map_err(internal)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let text = std::fs::read_to_string(entry.path()).map_err(internal)?;
            files.insert(name, text);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        (files, summary.records)
    };
    record_staff(&gw, &caller, "audit.export", req.person.clone()).await?;
    Ok(Json(ExportAnswer { files, records }))
}

fn tempdir_in(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let p = dir.join("tmp").join(crate::util::new_id("EX"));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

/// Live verification answer.
#[derive(Debug, Serialize)]
pub struct LiveVerify {
    pub ok: bool,
    pub records: u64,
    pub checkpoints_verified: usize,
    pub unchecked_tail: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<serde_json::Value>,
}

async fn verify_live(
    State(gw): State<AppState>,
    caller: Caller,
) -> Result<Json<LiveVerify>, ApiError> {
    // Make sure the newest records are covered, then check with every checkpoint-key version
    // the sealed keyring knows (retired ones keep their public key there). Keys read from
    // the store are never believed: a checkpoint signed by anything else fails.
    records::checkpoint::checkpoint_now(gw.store.as_ref(), &gw.keys.keyring)
        .await
        .map_err(internal)?;
    let cps = records::log::checkpoints(gw.store.as_ref()).map_err(internal)?;
    let keys = records::checkpoint::checkpoint_key_set(&gw.keys.keyring).map_err(internal)?;
    let mut bad_entry: Option<String> = None;
    let entries = records::log::entries(gw.store.as_ref(), 0).map_while(|e| match e {
        Ok(x) => Some(x),
        Err(err) => {
            bad_entry = Some(err.to_string());
            None
        }
    });
    let result = renkei_records::verify_entries_with(entries, &cps, &keys);
    record_staff(&gw, &caller, "audit.verify_live", None).await?;
    Ok(Json(match result {
        Ok(rep) => LiveVerify {
            ok: bad_entry.is_none(),
            records: rep.records,
            checkpoints_verified: rep.checkpoints_verified,
            unchecked_tail: rep.unchecked_tail,
            problem: bad_entry
                .map(|e| serde_json::json!({"kind": "undecodable_entry", "detail": e})),
        },
        Err(e) => LiveVerify {
            ok: false,
            records: 0,
            checkpoints_verified: 0,
            unchecked_tail: 0,
            problem: Some(serde_json::json!({"kind": e.code(), "detail": e.to_string()})),
        },
    }))
}

async fn public_keys(State(gw): State<AppState>) -> Result<Json<BTreeMap<u32, String>>, ApiError> {
    // Every checkpoint-key version, from the sealed keyring only; never the message-signing
    // keys, never keys read from the store.
    Ok(Json(
        records::checkpoint::checkpoint_keys_pem(&gw.keys.keyring).map_err(internal)?,
    ))
}

/// Query of `GET /v1/audit/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The tree size of the auditor's saved checkpoint (0: just today's checkpoint).
    pub from: u64,
}

/// Today's signed checkpoint and the RFC 9162 consistency proof from `from` to it.
#[derive(Debug, Serialize)]
pub struct ConsistencyAnswer {
    /// Today's checkpoint as a C2SP signed note.
    pub checkpoint: String,
    pub from: u64,
    pub tree_size: u64,
    /// The proof's hashes, base64, in RFC 9162 order.
    pub proof: Vec<String>,
}

fn invalid_query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "the query parameters are not the ones this route takes",
        )
    })
}

/// Leaf `seq` of the log as it is now: the hash of its content, or the stored hash once the
/// retention sweep removed the content. A record edited in place shows here as a changed leaf.
fn current_leaf(gw: &AppState, seq: u64) -> Result<renkei_records::Hash, Error> {
    let raw = gw
        .store
        .get(renkei_store::Tree::Records, &seq.to_be_bytes())?
        .ok_or_else(|| Error::internal("audit", format!("record {seq} is missing")))?;
    let entry = StoredEntry::from_bytes(&raw).map_err(|e| Error::internal("audit", e))?;
    Ok(match &entry.content {
        Some(c) => renkei_records::merkle::leaf_hash(c),
        None => entry.leaf_hash,
    })
}

fn b64(h: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// The newest checkpoint, signed now if the log grew since the last one.
async fn todays_checkpoint(gw: &AppState) -> Result<renkei_records::Checkpoint, ApiError> {
    records::checkpoint::checkpoint_now(gw.store.as_ref(), &gw.keys.keyring)
        .await
        .map_err(internal)?;
    records::log::checkpoints(gw.store.as_ref())
        .map_err(internal)?
        .pop()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_checkpoint",
                "no record has been checkpointed yet",
            )
        })
}

async fn consistency(
    State(gw): State<AppState>,
    caller: Caller,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyAnswer>, ApiError> {
    let q = invalid_query(q)?;
    let cp = todays_checkpoint(&gw).await?;
    if q.from > cp.tree_size {
        // Larger than anything this log signed: the auditor holds a longer log than ours.
        return Err(bad(
            "from",
            "larger than today's checkpoint: the log is shorter than the saved checkpoint",
        ));
    }
    let keys = records::checkpoint::checkpoint_key_set(&gw.keys.keyring).map_err(internal)?;
    let note = cp.to_signed_note(&keys).map_err(internal)?;
    let proof = renkei_records::consistency_proof(q.from, cp.tree_size, |i| current_leaf(&gw, i))
        .map_err(internal)?;
    record_staff(&gw, &caller, "audit.consistency", Some(q.from.to_string())).await?;
    Ok(Json(ConsistencyAnswer {
        checkpoint: note,
        from: q.from,
        tree_size: cp.tree_size,
        proof: proof.iter().map(|h| b64(h)).collect(),
    }))
}

/// Every stored checkpoint, oldest first, as stored (JSON lines, unverified: the auditor
/// checks each with their own keys; one that does not verify is no evidence).
#[derive(Debug, Serialize)]
pub struct CheckpointList {
    pub checkpoints: Vec<String>,
}

async fn stored_checkpoints(
    State(gw): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckpointList>, ApiError> {
    let cps = gw
        .store
        .range(renkei_store::Tree::Checkpoints, &[], &[], usize::MAX)
        .map_err(|e| ApiError::from(Error::Store(e)))?
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect();
    record_staff(&gw, &caller, "audit.checkpoints", None).await?;
    Ok(Json(CheckpointList { checkpoints: cps }))
}

/// Most leaf hashes one `GET /v1/audit/leaves` page returns (~3 MiB of JSON).
pub const MAX_LEAVES_PAGE: u64 = 65_536;

/// Query of `GET /v1/audit/leaves`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeavesQuery {
    /// First seq.
    pub from: u64,
    /// End seq (exclusive); at most `MAX_LEAVES_PAGE` after `from`.
    pub to: u64,
}

/// The current leaf hashes of seq `from..to` (base64), for locating a rewrite.
#[derive(Debug, Serialize)]
pub struct LeavesPage {
    pub from: u64,
    pub leaves: Vec<String>,
}

async fn leaves(
    State(gw): State<AppState>,
    caller: Caller,
    q: Result<Query<LeavesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LeavesPage>, ApiError> {
    let q = invalid_query(q)?;
    if q.to < q.from || q.to - q.from > MAX_LEAVES_PAGE {
        return Err(bad(
            "to",
            "from..to must be ascending and at most 65536 long",
        ));
    }
    let size = gw
        .store
        .log_chain_state()
        .map_err(|e| ApiError::from(Error::Store(e)))?
        .and_then(|b| renkei_records::ChainState::from_bytes(&b).ok())
        .map(|s| s.next_seq)
        .unwrap_or(0);
    let leaves = (q.from..q.to.min(size))
        .map(|i| current_leaf(&gw, i).map(|h| b64(&h)))
        .collect::<Result<Vec<_>, _>>()?;
    record_staff(
        &gw,
        &caller,
        "audit.leaves",
        Some(format!("{}..{}", q.from, q.to)),
    )
    .await?;
    Ok(Json(LeavesPage {
        from: q.from,
        leaves,
    }))
}
