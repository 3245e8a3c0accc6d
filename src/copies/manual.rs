//! Manual provision (手動提供): the provision requests the platform hands to this city for
//! items the permission table marks `manual = true`, as the business system holding the
//! person sees and answers them — `GET /v1/provision-requests`, `POST …/{id}/answer` —
//! and the one repository of the request trees (values sealed at rest).
//!
//! A request is stored when the gateway fetches it ([`super::manual_jobs`]), mapped to the
//! business system that holds the person (the registry's links of its unified address
//! number, the first system whose affairs have the manual row); nobody holding it answers
//! `not_held` automatically. States: `pending` → `answered` (the answer queued, then
//! delivered by the dispatcher with the request id as message id) or `timed_out` (the
//! deadline passed, here or at the platform). Every answer, automatic `not_held` and timeout
//! seen is a linkage record (kind `provision`) in the same batch as the change.

use std::sync::Arc;

use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest, AT_REST_MAGIC};
use renkei_ids::UnifiedAddressNumber;
use renkei_ids::{AgencyCode, BusinessNumber, ItemCode, ProcedureCode, SystemId};
use renkei_records::{Record, RecordKind, RecordResult};
use renkei_store::{prefix_end, Batch, Store, StoreError, Tree};
use serde::{Deserialize, Serialize};

use super::layout;
use crate::config::ClientConfig;
use crate::error::{Bug, Error};
use crate::keyring::KeyState;
use crate::schedule::{self, Job, Wake};
use crate::schemas::permissions::{Direction, PermissionTable};
use crate::settings::Live;
use crate::util::{now_ms, rfc3339_jst};

/// How often an answer retries when another answer to the same request raced it.
const ANSWER_RACE_RETRIES: usize = 4;
/// Longest refusal reason code.
const MAX_REASON_LEN: usize = 64;

/// Whether `client` answers manual provision requests for (`procedure`, `item`): one of its
/// affairs has a `direction = "provision"` row for them with `manual = true`.
pub fn may_answer_manually(
    table: &PermissionTable,
    client: &ClientConfig,
    procedure: &ProcedureCode,
    item: &ItemCode,
) -> bool {
    client.affairs.iter().any(|a| {
        table.rows().iter().any(|r| {
            &r.affair == a
                && &r.procedure == procedure
                && &r.item == item
                && r.direction == Direction::Provision
                && r.manual
        })
    })
}

/// Where a manual provision request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for the holding business system's answer.
    Pending,
    /// Answered (see the answer's delivery).
    Answered,
    /// The deadline passed without an answer the platform took.
    TimedOut,
}

impl RequestStatus {
    /// The status as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Answered => "answered",
            RequestStatus::TimedOut => "timed_out",
        }
    }
}

/// What a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The data is provided.
    Provide,
    /// The city holds nothing for the person.
    NotHeld,
    /// Refused, with a reason code.
    Refuse,
}

/// Where an answer's delivery to the platform is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Durable here, waiting for (or retrying) the send.
    Queued,
    /// The platform took it.
    Delivered,
    /// The platform refused it; `error` says why.
    Failed,
}

/// An answer as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub decision: Decision,
    /// The converted fields (platform names and values) of a `provide`.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// The reason code of a `refuse`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Made by the gateway (nobody holds the person), not by a business system.
    #[serde(default)]
    pub automatic: bool,
    pub answered_ms: u64,
    pub delivery: Delivery,
    /// The platform's fault code when it refused the answer.
    #[serde(default)]
    pub error: Option<String>,
}

/// One manual provision request as stored (sealed at rest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionRequest {
    /// The platform's request id (also the answer's message id).
    pub id: String,
    /// The business system holding the person; `None` when nobody does.
    pub system: Option<SystemId>,
    pub business_number: Option<BusinessNumber>,
    pub unified: UnifiedAddressNumber,
    pub procedure: ProcedureCode,
    pub item: ItemCode,
    /// The date the answer must be in force on, `YYYY-MM-DD`.
    pub as_of: String,
    /// The agency asking.
    pub inquirer: AgencyCode,
    /// The platform's deadline, as it wrote it, and in ms since the epoch.
    pub deadline: String,
    pub deadline_ms: u64,
    pub received_ms: u64,
    pub status: RequestStatus,
    #[serde(default)]
    pub answer: Option<StoredAnswer>,
    #[serde(default)]
    pub attempts: u32,
    /// The due-tree key of its job: the deadline while pending, the send once answered.
    #[serde(default)]
    pub due_key: Option<Vec<u8>>,
}

/// An answer as its business system sees it.
#[derive(Debug, Serialize)]
pub struct AnswerView<'a> {
    pub decision: Decision,
    pub delivery: Delivery,
    pub answered_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// A request as its business system sees it: in its own business number, never the
/// unified address number.
#[derive(Debug, Serialize)]
pub struct RequestView<'a> {
    pub id: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_number: Option<&'a str>,
    pub procedure: &'a ProcedureCode,
    pub item: &'a ItemCode,
    pub as_of: &'a str,
    pub inquirer: &'a AgencyCode,
    pub deadline: &'a str,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<AnswerView<'a>>,
}

impl ProvisionRequest {
    /// The status as of `now`: a pending request past its deadline reads `timed_out` even
    /// before its deadline job has run.
    pub fn status_at(&self, now: u64) -> RequestStatus {
        match self.status {
            RequestStatus::Pending if now >= self.deadline_ms => RequestStatus::TimedOut,
            s => s,
        }
    }

    /// The business system's view.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            id: &self.id,
            status: self.status_at(now_ms()).as_str(),
            business_number: self.business_number.as_ref().map(BusinessNumber::as_str),
            procedure: &self.procedure,
            item: &self.item,
            as_of: &self.as_of,
            inquirer: &self.inquirer,
            deadline: &self.deadline,
            received_at: rfc3339_jst(self.received_ms),
            answer: self.answer.as_ref().map(|a| AnswerView {
                decision: a.decision,
                delivery: a.delivery,
                answered_at: rfc3339_jst(a.answered_ms),
                reason: a.reason.as_deref(),
                error: a.error.as_deref(),
            }),
        }
    }
}

/// The linkage record of a manual provision step (kind `provision`: information this city
/// provides, or declines to).
pub fn manual_record(
    r: &ProvisionRequest,
    result: RecordResult,
    reason: String,
    city: &AgencyCode,
) -> Record {
    let mut rec = crate::records::base(RecordKind::Provision, result);
    rec.inquirer = Some(r.inquirer.clone());
    rec.provider = Some(city.clone());
    rec.procedure = Some(r.procedure.clone());
    rec.item = Some(r.item.clone());
    rec.person = Some(r.unified);
    rec.business_system = r.system.clone();
    rec.reference = Some(r.id.clone());
    if result != RecordResult::Failed {
        rec.provided_at = Some(rfc3339_jst(now_ms()));
    }
    rec.reason = Some(reason);
    rec
}

/// The at-rest location a request's value is bound to, from its key.
pub fn request_location(key: &[u8]) -> String {
    format!("provision_requests/{}", String::from_utf8_lossy(key))
}

fn index_key(system: &SystemId, id: &str) -> Vec<u8> {
    let mut k = system.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The one reader and writer of the request trees: `provision_requests` (id → the request,
/// sealed, bound to `provision_requests/<id>`) and `provision_requests_by_system`
/// (`system \0 id` → empty).
#[derive(Clone)]
pub struct ManualRepo {
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
}

impl std::fmt::Debug for ManualRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualRepo").finish_non_exhaustive()
    }
}

/// A request as read, with its stored bytes (a write requires them unchanged).
pub struct Stored {
    pub raw: Vec<u8>,
    pub request: ProvisionRequest,
}

impl ManualRepo {
    /// The repository over `store`, values sealed with `keys`' at-rest key.
    pub fn new(store: Arc<dyn Store>, keys: Arc<KeyState>) -> Self {
        Self { store, keys }
    }

    /// Reads a request by id.
    pub fn get(&self, id: &str) -> Result<Option<Stored>, Error> {
        let Some(raw) = self.store.get(Tree::ProvisionRequests, id.as_bytes())? else {
            return Ok(None);
        };
        if !raw.starts_with(AT_REST_MAGIC) {
            return Err(Error::internal(
                "reading a provision request",
                Bug("stored provision request is not sealed"),
            ));
        }
        let plain = zeroize::Zeroizing::new(
            decrypt_at_rest(&self.keys.keyring(), &request_location(id.as_bytes()), &raw)
                .map_err(|e| Error::internal("reading a provision request", e))?,
        );
        let request = serde_json::from_slice(&plain)?;
        Ok(Some(Stored { raw, request }))
    }

    /// Stages the write of a request's state; `was` (the bytes read) must still be there,
    /// or — for a new request — nothing.
    pub fn stage_put(
        &self,
        b: &mut Batch,
        r: &ProvisionRequest,
        was: Option<&[u8]>,
    ) -> Result<(), Error> {
        let key = r.id.as_bytes().to_vec();
        match was {
            Some(raw) => b.require_equal(Tree::ProvisionRequests, key.clone(), raw.to_vec()),
            None => {
                b.require_absent(Tree::ProvisionRequests, key.clone());
                if let Some(system) = &r.system {
                    b.put(
                        Tree::ProvisionRequestsBySystem,
                        index_key(system, &r.id),
                        Vec::new(),
                    );
                }
            }
        }
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(r)?);
        let sealed = encrypt_at_rest(&self.keys.keyring(), &request_location(&key), &plain)
            .map_err(|e| Error::internal("sealing a provision request", e))?;
        b.put(Tree::ProvisionRequests, key, sealed);
        Ok(())
    }

    /// Up to `limit` of `system`'s requests older than `before`, newest first, that `keep`
    /// accepts, reading at most `scan`; and the cursor of the next page.
    pub fn list_for(
        &self,
        system: &SystemId,
        before: Option<&str>,
        limit: usize,
        scan: usize,
        keep: impl Fn(&ProvisionRequest) -> bool,
    ) -> Result<(Vec<ProvisionRequest>, Option<String>), Error> {
        let prefix = index_key(system, "");
        let mut end = match before {
            Some(id) => index_key(system, id),
            None => prefix_end(&prefix),
        };
        let mut found = Vec::new();
        let mut read = 0usize;
        while read < scan {
            let want = (scan - read).min(256);
            let rows =
                self.store
                    .range_rev(Tree::ProvisionRequestsBySystem, &prefix, &end, want)?;
            for (k, _) in &rows {
                end.clone_from(k);
                read += 1;
                let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let Some(s) = self.get(&id)? else {
                    continue;
                };
                if keep(&s.request) {
                    found.push(s.request);
                    if found.len() == limit {
                        return Ok((found, Some(id)));
                    }
                }
            }
            if rows.len() < want {
                return Ok((found, None));
            }
        }
        // Scanned as far as one page may: the caller continues from here.
        let next = String::from_utf8_lossy(&end[prefix.len().min(end.len())..]).into_owned();
        Ok((found, Some(next)))
    }
}

/// `POST /v1/provision-requests/{id}/answer` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// `provide`, `not_held` or `refuse`.
    pub decision: Decision,
    /// For `provide`: the fields in the business system's own codes, keyed as the item's
    /// copy layout names them.
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// For `refuse`: a reason code, 1 to 64 lower-case ASCII letters or '-' (a code, never
    /// free text or numbers, so no personal data travels in it).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What answering answers.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerAccepted {
    pub id: String,
    pub status: RequestStatus,
    pub decision: Decision,
}

/// Manual provision on behalf of business systems.
pub struct ManualProvision {
    settings: Live,
    store: Arc<dyn Store>,
    repo: ManualRepo,
    wake: Wake,
}

fn check_reason(reason: &str) -> Result<(), Error> {
    if reason.is_empty()
        || reason.len() > MAX_REASON_LEN
        || !reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return Err(Error::invalid(
            "invalid_reason",
            "reason",
            "reason: a code of 1 to 64 lower-case ASCII letters or '-'",
        ));
    }
    Ok(())
}

fn parse_as_of(s: &str) -> Result<time::Date, Error> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|_| {
        Error::internal(
            "answering a provision request",
            Bug("stored as-of date unreadable"),
        )
    })
}

impl ManualProvision {
    /// The service over the store, sealing with `keys`.
    pub fn new(settings: Live, store: Arc<dyn Store>, keys: Arc<KeyState>, wake: Wake) -> Self {
        Self {
            repo: ManualRepo::new(store.clone(), keys),
            settings,
            store,
            wake,
        }
    }

    /// The repository (for the dispatcher's jobs).
    pub fn repo(&self) -> &ManualRepo {
        &self.repo
    }

    /// A request of `system`'s; another system's, or none, is "not found".
    fn own(&self, system: &SystemId, id: &str) -> Result<Stored, Error> {
        match self.repo.get(id)? {
            Some(s) if s.request.system.as_ref() == Some(system) => Ok(s),
            _ => Err(Error::NotFound),
        }
    }

    /// One of `system`'s requests.
    pub fn get_for(&self, system: &SystemId, id: &str) -> Result<ProvisionRequest, Error> {
        Ok(self.own(system, id)?.request)
    }

    /// A page of `system`'s requests, newest first, optionally only those in `status`.
    pub fn list_for(
        &self,
        system: &SystemId,
        status: Option<RequestStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ProvisionRequest>, Option<String>), Error> {
        let now = now_ms();
        let scan = limit.saturating_mul(16).max(limit);
        self.repo.list_for(system, before, limit, scan, |r| {
            status.is_none_or(|s| r.status_at(now) == s)
        })
    }

    /// Answers one of `system`'s pending requests; returns once the answer, its queued send
    /// and its record are durable.
    pub async fn answer(
        &self,
        system: &SystemId,
        id: &str,
        req: AnswerRequest,
    ) -> Result<AnswerAccepted, Error> {
        for _ in 0..ANSWER_RACE_RETRIES {
            let Stored { raw, request } = self.own(system, id)?;
            match request.status_at(now_ms()) {
                RequestStatus::Pending => {}
                RequestStatus::TimedOut => {
                    return Err(Error::conflict(
                        "deadline_passed",
                        "the request's deadline has passed; the platform answered the inquirer with a timeout",
                    ))
                }
                RequestStatus::Answered => {
                    return Err(Error::conflict(
                        "already_answered",
                        "the request was answered already",
                    ))
                }
            }
            let answer = self.checked_answer(&request, &req)?;
            let mut r = request;
            let (result, reason) = match answer.decision {
                Decision::Provide => (RecordResult::Answered, "manual provision: provided".into()),
                Decision::NotHeld => (
                    RecordResult::NotHeld,
                    "manual provision: not held".to_string(),
                ),
                Decision::Refuse => (
                    RecordResult::Refused,
                    format!(
                        "manual provision: refused ({})",
                        answer.reason.as_deref().unwrap_or_default()
                    ),
                ),
            };
            let decision = answer.decision;
            r.status = RequestStatus::Answered;
            r.answer = Some(answer);
            let mut b = Batch::new();
            r.due_key = Some(schedule::stage_move(
                &mut b,
                r.due_key.take(),
                now_ms(),
                Job::Manual(r.id.clone()),
            ));
            let city = self.settings.current().config.agency_code.clone();
            crate::records::append(&mut b, &manual_record(&r, result, reason, &city));
            self.repo.stage_put(&mut b, &r, Some(&raw))?;
            match self.store.commit(b).await {
                Ok(_) => {
                    self.wake.notify();
                    tracing::info!(message = "Provision request answered.", request_id = %r.id, decision = ?decision);
                    return Ok(AnswerAccepted {
                        id: r.id,
                        status: RequestStatus::Answered,
                        decision,
                    });
                }
                // Another answer or the deadline job changed it: look again.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(
            "request_busy",
            "the request is being changed; try again",
        ))
    }

    /// The answer `req` makes for `r`, checked: a `provide` carries data valid for the item's
    /// copy layout (converted on the as-of date), a `refuse` a reason code, nothing else
    /// extra.
    fn checked_answer(
        &self,
        r: &ProvisionRequest,
        req: &AnswerRequest,
    ) -> Result<StoredAnswer, Error> {
        let mut answer = StoredAnswer {
            decision: req.decision,
            fields: Vec::new(),
            reason: None,
            automatic: false,
            answered_ms: now_ms(),
            delivery: Delivery::Queued,
            error: None,
        };
        let unexpected = |field: &'static str| {
            Error::invalid(
                "unexpected_field",
                field,
                format!("{field}: not part of this decision"),
            )
        };
        match req.decision {
            Decision::Provide => {
                if req.reason.is_some() {
                    return Err(unexpected("reason"));
                }
                let data = req.data.as_ref().ok_or_else(|| {
                    Error::invalid("missing_field", "data", "data: required to provide")
                })?;
                let copy = layout::layout(&r.item)?.ok_or_else(|| {
                    Error::invalid(
                        "no_copy_layout",
                        "item_code",
                        "item_code: renkei has no copy layout for this item",
                    )
                })?;
                answer.fields = copy.convert(data, parse_as_of(&r.as_of)?)?;
            }
            Decision::NotHeld => {
                if req.data.is_some() {
                    return Err(unexpected("data"));
                }
                if req.reason.is_some() {
                    return Err(unexpected("reason"));
                }
            }
            Decision::Refuse => {
                if req.data.is_some() {
                    return Err(unexpected("data"));
                }
                let reason = req.reason.as_deref().ok_or_else(|| {
                    Error::invalid("missing_field", "reason", "reason: required to refuse")
                })?;
                check_reason(reason)?;
                answer.reason = Some(reason.to_string());
            }
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_codes() {
        assert!(check_reason("ordinance-forbids").is_ok());
        for bad in [
            "",
            "Upper",
            "digits-123456789012",
            "with space",
            &"a".repeat(65),
        ] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn manual_rows_decide_who_answers() {
        let table = PermissionTable::from_files([(
            "t.toml",
            r#"
affair = "JM01000000020000"
title = "x"
[[rows]]
procedure = "JT01010000000215"
item = "TM00000000000002"
direction = "provision"
legal_basis = "番号法第19条第8号"
manual = true
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "provision"
legal_basis = "番号法第19条第8号"
"#,
        )])
        .unwrap();
        let client: ClientConfig = toml::from_str(
            "name = \"zeimu\"\nrole = \"business\"\naffairs = [\"JM01000000020000\"]",
        )
        .unwrap();
        let p = |s: &str| ProcedureCode::parse(s).unwrap();
        let item = ItemCode::parse("TM00000000000002").unwrap();
        assert!(may_answer_manually(
            &table,
            &client,
            &p("JT01010000000215"),
            &item
        ));
        // A row answered from copies is not one a person answers.
        assert!(!may_answer_manually(
            &table,
            &client,
            &p("JT01010000000214"),
            &item
        ));
        let other: ClientConfig = toml::from_str(
            "name = \"kokuho\"\nrole = \"business\"\naffairs = [\"JM01000000030000\"]",
        )
        .unwrap();
        assert!(!may_answer_manually(
            &table,
            &other,
            &p("JT01010000000215"),
            &item
        ));
    }
}
