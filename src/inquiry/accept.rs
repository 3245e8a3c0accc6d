//! Accepting an inquiry: validation, the permission table, idempotency, then ONE atomic batch
//! (inquiry, schedule entry, idempotency key, linkage record) — the answer is given only once
//! that batch is durable. Reading an inquiry back for its business system is here too.

use std::sync::Arc;

use renkei_ids::{AffairCode, BusinessNumber, InquiryId, ItemCode, ProcedureCode, SystemId};
use renkei_records::{RecordKind, RecordResult};
use renkei_store::{Batch, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::model::{Conditions, Inquiry, Status};
use super::record::inquiry_record;
use super::repo::{IdemEntry, InquiryRepo};
use crate::config::{ClientConfig, GatewayConfig, Role};
use crate::error::{check_date, Bug, Error};
use crate::registry::Registry;
use crate::schedule::{self, Job, Wake};
use crate::settings::Live;
use crate::util::{new_inquiry_id, now_ms, sha256_hex};

/// Longest `Idempotency-Key` accepted (a UUID is 36; 128 leaves room for a prefix).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// A listing opens at most this many inquiries per one it may return (a `status` filter
/// that matches rarely gives short pages with a cursor, not an unbounded scan).
pub const LIST_SCAN_FACTOR: usize = 10;
/// Fiscal years an inquiry may name: the platform's data does not go further either way.
pub const FISCAL_YEARS: std::ops::RangeInclusive<u16> = 1900..=2200;

/// `POST /v1/inquiries` body.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InquiryRequest {
    pub business_number: BusinessNumber,
    pub procedure: ProcedureCode,
    pub item: ItemCode,
    pub conditions: Conditions,
    /// 照会側不開示: the inquirer asks that the person not be shown this inquiry in their
    /// disclosure (e.g. an investigation); carried to the platform and into the record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_disclosure: bool,
}

/// What accepting an inquiry answers.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: InquiryId,
    pub status: Status,
    /// False when an earlier request with the same idempotency key is being answered.
    #[serde(skip)]
    pub new: bool,
}

/// Accepts and reads inquiries on behalf of business systems.
pub struct Inquiries {
    settings: Live,
    store: Arc<dyn Store>,
    repo: InquiryRepo,
    registry: Arc<Registry>,
    wake: Wake,
}

/// The client entry of a business system, or Forbidden.
pub fn business_client<'a>(
    config: &'a GatewayConfig,
    system: &SystemId,
) -> Result<&'a ClientConfig, Error> {
    match config.client(system.as_str()) {
        Some(c) if c.role == Role::Business => Ok(c),
        _ => Err(Error::forbidden(
            "not_a_business_system",
            "this client is not a business system",
        )),
    }
}

fn check_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "invalid_idempotency_key",
            "Idempotency-Key",
            "Idempotency-Key: 1 to 128 visible ASCII characters",
        ));
    }
    Ok(())
}

fn check_conditions(c: &Conditions) -> Result<(), Error> {
    match c {
        Conditions::FiscalYear { fiscal_year } => {
            if !FISCAL_YEARS.contains(fiscal_year) {
                return Err(Error::invalid(
                    "invalid_fiscal_year",
                    "conditions.fiscal_year",
                    "conditions.fiscal_year: a year from 1900 to 2200",
                ));
            }
        }
        Conditions::Period { from, to } => {
            check_date("conditions.from", from)?;
            check_date("conditions.to", to)?;
            if from > to {
                return Err(Error::invalid(
                    "invalid_period",
                    "conditions.to",
                    "conditions: from must not be after to",
                ));
            }
        }
    }
    Ok(())
}

impl Inquiries {
    /// The service over the store and the registry.
    pub fn new(settings: Live, store: Arc<dyn Store>, registry: Arc<Registry>, wake: Wake) -> Self {
        Self {
            repo: InquiryRepo::new(store.clone(), registry.keys().clone()),
            settings,
            store,
            registry,
            wake,
        }
    }

    /// The store (the batch path keeps its own trees there).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The repository (for the batch path's result files).
    pub fn repo(&self) -> &InquiryRepo {
        &self.repo
    }

    /// The gateway's configuration now in force.
    pub fn config(&self) -> Arc<GatewayConfig> {
        self.settings.current().config.clone()
    }

    /// Accepts an inquiry: returns only once it is durable. `affair` is the 事務コード the
    /// inquiry names (a batch line does); without one, the first of the client's affairs
    /// under which the permission table allows it.
    pub async fn submit(
        &self,
        system: &SystemId,
        idempotency_key: &str,
        req: InquiryRequest,
        affair: Option<&AffairCode>,
        batch: Option<String>,
    ) -> Result<Accepted, Error> {
        let settings = self.settings.current();
        let config = &settings.config;
        let client = business_client(config, system)?;
        check_idempotency_key(idempotency_key)?;
        check_conditions(&req.conditions)?;
        let request_sha256 = sha256_hex(&serde_json::to_vec(&req)?);
        if let Some(found) = self
            .idempotent_answer(system, idempotency_key, &request_sha256)
            .await?
        {
            return Ok(found);
        }
        let permitted = settings.inquiry_affair(client, affair, &req.procedure, &req.item);
        let Some(affair) = permitted else {
            let mut r = crate::records::base(RecordKind::DeniedRequest, RecordResult::Refused);
            r.procedure = Some(req.procedure.clone());
            r.item = Some(req.item.clone());
            r.business_system = Some(system.clone());
            r.inquirer = Some(config.agency_code.clone());
            r.reason = Some("not_permitted".into());
            crate::records::record_now(self.store.as_ref(), &r).await?;
            return Err(Error::forbidden_field(
                "not_permitted",
                "item",
                "the permission table allows none of this system's affairs to inquire this item under this procedure",
            ));
        };
        let unified = self
            .registry
            .resolve(system, &req.business_number)?
            .ok_or_else(|| {
                Error::invalid(
                    "person_not_linked",
                    "business_number",
                    "business_number: not linked to a person; PUT /v1/persons/{business_number} first",
                )
            })?;
        self.registry.check_active(&unified)?;
        let now = now_ms();
        let id = new_inquiry_id();
        let mut b = Batch::new();
        let due = schedule::stage_new(&mut b, now, Job::Inquiry(id.clone()));
        let inquiry = Inquiry {
            id: id.clone(),
            system: system.clone(),
            business_number: req.business_number,
            unified,
            affair,
            procedure: req.procedure,
            item: req.item,
            conditions: req.conditions,
            non_disclosure: req.non_disclosure,
            status: Status::Queued,
            serial: None,
            attempts: 0,
            result: None,
            error: None,
            batch,
            accepted_ms: now,
            sent_ms: None,
            finished_ms: None,
            deadline_ms: now + config.platform.inquiry_deadline_secs * 1000,
            due_key: Some(due),
        };
        self.repo.stage_idempotency(
            &mut b,
            system,
            idempotency_key,
            &IdemEntry {
                id: id.clone(),
                request_sha256: request_sha256.clone(),
            },
        )?;
        self.repo.stage_put(&mut b, &inquiry)?;
        self.repo.stage_system_index(&mut b, &inquiry);
        let mut r = inquiry_record(&inquiry, RecordResult::Accepted);
        r.inquirer = Some(config.agency_code.clone());
        r.reason = Some("queued".into());
        crate::records::append(&mut b, &r);
        match self.store.commit(b).await {
            Ok(_) => {
                self.wake.notify();
                crate::metrics::global().inquiries_accepted.inc();
                Ok(Accepted {
                    id,
                    status: Status::Queued,
                    new: true,
                })
            }
            Err(StoreError::Conflict { .. }) => self
                .idempotent_answer(system, idempotency_key, &request_sha256)
                .await?
                .ok_or_else(|| {
                    Error::internal("accepting an inquiry", Bug("idempotency entry vanished"))
                }),
            Err(e) => Err(e.into()),
        }
    }

    /// The answer for a key already used: the same inquiry, or a conflict when the body
    /// differs. Taken only after a durability barrier, so a replay never reports an inquiry
    /// whose commit group a crash could still take back.
    async fn idempotent_answer(
        &self,
        system: &SystemId,
        key: &str,
        request_sha256: &str,
    ) -> Result<Option<Accepted>, Error> {
        let Some(entry) = self.repo.idempotency(system, key)? else {
            return Ok(None);
        };
        if entry.request_sha256 != request_sha256 {
            return Err(Error::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            ));
        }
        self.store.commit(Batch::new()).await?;
        let status = self
            .repo
            .get(&entry.id)?
            .map(|i| i.status)
            .unwrap_or(Status::Queued);
        Ok(Some(Accepted {
            id: entry.id,
            status,
            new: false,
        }))
    }

    /// A page of `system`'s own inquiries, newest first (see [`InquiryRepo::list_for`]):
    /// `status` keeps one status only, `since_ms` stops at inquiries accepted before it,
    /// `before` continues after a previous page's cursor.
    pub fn list_for(
        &self,
        system: &SystemId,
        status: Option<Status>,
        since_ms: Option<u64>,
        before: Option<&InquiryId>,
        limit: usize,
    ) -> Result<(Vec<Inquiry>, Option<InquiryId>), Error> {
        business_client(&self.config(), system)?;
        let scan = limit.saturating_mul(LIST_SCAN_FACTOR).max(limit);
        Ok(self.repo.list_for(
            system,
            before,
            limit,
            scan,
            |i| status.is_none_or(|s| i.status == s),
            |i| since_ms.is_some_and(|t| i.accepted_ms < t),
        )?)
    }

    /// Reads an inquiry on behalf of a system: another system's inquiry is "not found".
    pub fn get_for(&self, system: &SystemId, id: &InquiryId) -> Result<Inquiry, Error> {
        match self.repo.get(id)? {
            Some(i) if &i.system == system => Ok(i),
            _ => Err(Error::NotFound),
        }
    }
}
