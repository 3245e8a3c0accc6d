//! Registering, reading and withdrawing copies on behalf of business systems: ownership (the
//! registry says whose business numbers are whose), the provision rights, validation against
//! the item's layout, the next version number, then ONE atomic batch (the version, its index
//! entry, its schedule entry, its linkage record) — answered only once that batch is durable.

use std::sync::Arc;

use renkei_ids::{BusinessNumber, ItemCode, SystemId, UnifiedAddressNumber};
use renkei_records::{RecordKind, RecordResult};
use renkei_store::{Batch, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::layout;
use super::model::{CopyVersion, TransferStatus};
use super::record::copy_record;
use super::repo::CopyRepo;
use crate::config::{ClientConfig, GatewayConfig, Role};
use crate::error::{check_date, Error};
use crate::registry::Registry;
use crate::schedule::{self, Job, Wake};
use crate::util::{new_id, now_ms};

/// How often a registration retries when another one took the same version number.
const VERSION_RACE_RETRIES: usize = 8;

/// Whether `client` may provide `item` (register copies of it). The one place provision rights
/// are read: today from the client's `provides` list; the permission table's `provision`
/// direction replaces this body when it lands.
pub fn may_provide(client: &ClientConfig, item: &ItemCode) -> bool {
    client.provides.iter().any(|i| i == item)
}

/// `PUT /v1/copies/{business_number}/{item_code}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// データセット番号: 1 to 64 ASCII letters, digits or '-'.
    pub dataset: String,
    pub effective_from: String,
    #[serde(default)]
    pub effective_to: Option<String>,
    #[serde(default)]
    pub non_disclosure: bool,
    /// The fields in the business system's own codes, keyed as the item's layout names them.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// What registering or withdrawing answers.
#[derive(Debug, Clone, Serialize)]
pub struct CopyAccepted {
    pub id: String,
    pub status: TransferStatus,
    pub version: u32,
    /// False when the same content was already the latest version (nothing new was made).
    #[serde(skip)]
    pub new: bool,
}

/// The copy service.
pub struct Copies {
    config: Arc<GatewayConfig>,
    store: Arc<dyn Store>,
    repo: CopyRepo,
    registry: Arc<Registry>,
    wake: Wake,
}

fn check_dataset(s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::invalid(
            "invalid_dataset",
            "dataset",
            "dataset: 1 to 64 ASCII letters, digits or '-'",
        ));
    }
    Ok(())
}

fn parse_date(field: &'static str, s: &str) -> Result<time::Date, Error> {
    check_date(field, s)?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|_| {
        Error::invalid(
            "invalid_date",
            field,
            format!("{field}: expected a date YYYY-MM-DD"),
        )
    })
}

impl Copies {
    /// The service over the store and the registry.
    pub fn new(
        config: Arc<GatewayConfig>,
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        wake: Wake,
    ) -> Self {
        Self {
            repo: CopyRepo::new(store.clone(), registry.keys().clone()),
            config,
            store,
            registry,
            wake,
        }
    }

    /// The person behind a business number the caller owns, after the provision check.
    async fn owned(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
    ) -> Result<UnifiedAddressNumber, Error> {
        // Only business systems keep copies (the role check of the routes says the same).
        let client = self
            .config
            .client(system.as_str())
            .filter(|c| c.role == Role::Business)
            .ok_or(Error::forbidden(
                "not_a_business_system",
                "this client is not a business system",
            ))?;
        if !may_provide(client, item) {
            let mut r = crate::records::base(RecordKind::DeniedRequest, RecordResult::Refused);
            r.item = Some(item.clone());
            r.business_system = Some(system.clone());
            r.provider = Some(self.config.agency_code.clone());
            r.reason = Some("copy_not_permitted".into());
            crate::records::record_now(self.store.as_ref(), &r).await?;
            return Err(Error::forbidden(
                "not_permitted",
                "this system may not provide this item",
            ));
        }
        // Another system's business number is "not found", like another system's inquiry.
        self.registry.resolve(system, bn)?.ok_or(Error::NotFound)
    }

    /// Registers a new version of a copy; returns once it is durable.
    pub async fn register(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
        req: CopyRequest,
    ) -> Result<CopyAccepted, Error> {
        let unified = self.owned(system, bn, item).await?;
        check_dataset(&req.dataset)?;
        let from = parse_date("effective_from", &req.effective_from)?;
        if let Some(to) = &req.effective_to {
            if parse_date("effective_to", to)? < from {
                return Err(Error::invalid(
                    "invalid_period",
                    "effective_to",
                    "effective_to: must not be before effective_from",
                ));
            }
        }
        let layout = layout::layout(item)?.ok_or_else(|| {
            Error::invalid(
                "no_copy_layout",
                "item_code",
                "item_code: renkei has no copy layout for this item",
            )
        })?;
        let fields = layout.convert(&req.data, from)?;
        let draft = self.draft(system, bn, unified, item);
        let draft = CopyVersion {
            dataset: req.dataset,
            effective_from: req.effective_from,
            effective_to: req.effective_to,
            non_disclosure: req.non_disclosure,
            fields,
            ..draft
        };
        self.commit_next(draft).await
    }

    /// Withdraws a copy: a new version that says it is no longer held.
    pub async fn withdraw(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
    ) -> Result<CopyAccepted, Error> {
        let unified = self.owned(system, bn, item).await?;
        let latest = self
            .repo
            .versions(system, bn, item)?
            .pop()
            .ok_or(Error::NotFound)?;
        let today = crate::util::rfc3339_jst(now_ms());
        let draft = CopyVersion {
            dataset: latest.dataset.clone(),
            effective_from: today.get(..10).unwrap_or_default().to_string(),
            withdrawn: true,
            ..self.draft(system, bn, unified, item)
        };
        self.commit_next(draft).await
    }

    fn draft(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        unified: UnifiedAddressNumber,
        item: &ItemCode,
    ) -> CopyVersion {
        CopyVersion {
            id: new_id("CP"),
            system: system.clone(),
            business_number: bn.clone(),
            unified,
            item: item.clone(),
            dataset: String::new(),
            version: 0,
            effective_from: String::new(),
            effective_to: None,
            non_disclosure: false,
            withdrawn: false,
            fields: Vec::new(),
            status: TransferStatus::Queued,
            error: None,
            attempts: 0,
            accepted_ms: now_ms(),
            transferred_ms: None,
            due_key: None,
        }
    }

    /// Gives `draft` the next version number and commits it with its schedule entry and
    /// record; a repeat of the latest version's content answers that version instead.
    async fn commit_next(&self, mut draft: CopyVersion) -> Result<CopyAccepted, Error> {
        for _ in 0..VERSION_RACE_RETRIES {
            let versions =
                self.repo
                    .versions(&draft.system, &draft.business_number, &draft.item)?;
            if let Some(latest) = versions.last() {
                if latest.same_content(&draft) {
                    // A retried request: make sure what we answer is durable, then answer it.
                    self.store.commit(Batch::new()).await?;
                    return Ok(CopyAccepted {
                        id: latest.id.clone(),
                        status: latest.status,
                        version: latest.version,
                        new: false,
                    });
                }
            } else if draft.withdrawn {
                return Err(Error::NotFound);
            }
            draft.version = versions.last().map_or(1, |l| l.version + 1);
            let mut b = Batch::new();
            let now = now_ms();
            draft.due_key = Some(schedule::stage_new(
                &mut b,
                now,
                Job::Copy(draft.id.clone()),
            ));
            self.repo.stage_new(&mut b, &draft)?;
            let mut r = copy_record(&draft, RecordResult::Accepted, &self.config.agency_code);
            r.reason = Some(format!(
                "{} v{} queued",
                if draft.withdrawn {
                    "copy_withdrawal"
                } else {
                    "copy"
                },
                draft.version
            ));
            crate::records::append(&mut b, &r);
            match self.store.commit(b).await {
                Ok(_) => {
                    self.wake.notify();
                    return Ok(CopyAccepted {
                        id: draft.id,
                        status: TransferStatus::Queued,
                        version: draft.version,
                        new: true,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(
            "copy_busy",
            "other registrations of this copy are under way; try again",
        ))
    }

    /// Every version of a copy, for the system that owns the business number.
    pub async fn list(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
    ) -> Result<Vec<CopyVersion>, Error> {
        self.owned(system, bn, item).await?;
        let v = self.repo.versions(system, bn, item)?;
        if v.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(v)
    }

    /// The repository (for the transfer job).
    pub fn repo(&self) -> &CopyRepo {
        &self.repo
    }
}
