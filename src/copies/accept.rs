//! Registering, reading and withdrawing copies on behalf of business systems: ownership (the
//! registry says whose business numbers are whose), the provision rights, validation against
//! the item's layout, the next version number, then ONE atomic batch (the version, its index
//! entry, its schedule entry, its linkage record) — answered only once that batch is durable.

use std::sync::Arc;

use renkei_ids::{AffairCode, BusinessNumber, ItemCode, SystemId, UnifiedAddressNumber};
use renkei_records::{RecordKind, RecordResult};
use renkei_store::{Batch, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::layout;
use super::model::{CopyVersion, TransferStatus};
use super::record::copy_record;
use super::repo::CopyRepo;
use crate::config::{ClientConfig, Role};
use crate::error::{check_date, Error};
use crate::registry::Registry;
use crate::schedule::{self, Job, Wake};
use crate::schemas::permissions::{Direction, PermissionTable};
use crate::settings::Live;
use crate::util::{new_id, now_ms};

/// How often a registration retries when another one took the same version number.
const VERSION_RACE_RETRIES: usize = 8;

/// The affair under which `client` may provide `item` (register copies of it): the first of
/// its affairs with a `direction = "provision"` row for the item in the permission table that
/// is not `manual` (a manual row is answered by a person, not from copies). `None`: not
/// permitted. The one place provision rights are read.
pub fn may_provide(
    table: &PermissionTable,
    client: &ClientConfig,
    item: &ItemCode,
) -> Option<AffairCode> {
    client
        .affairs
        .iter()
        .find(|a| {
            table.rows().iter().any(|r| {
                &r.affair == *a
                    && &r.item == item
                    && r.direction == Direction::Provision
                    && !r.manual
            })
        })
        .cloned()
}

/// How a registration recognises a repeat of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// The same content as the latest version (a retried `PUT`).
    Latest,
    /// That, or a file line registered before (its replay marker), even if newer versions
    /// followed: replaying a file makes nothing new.
    Marker,
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
    /// The settings in force (clients and the permission table, swapped by a reload).
    settings: Live,
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
    pub fn new(settings: Live, store: Arc<dyn Store>, registry: Arc<Registry>, wake: Wake) -> Self {
        Self {
            repo: CopyRepo::new(store.clone(), registry.keys().clone()),
            settings,
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
        self.permitted(system, item).await?;
        // Another system's business number is "not found", like another system's inquiry.
        self.registry.resolve(system, bn)?.ok_or(Error::NotFound)
    }

    /// The affair under which `system` may provide `item`; a refusal is recorded (a
    /// denied request) before it is answered.
    pub(super) async fn permitted(
        &self,
        system: &SystemId,
        item: &ItemCode,
    ) -> Result<AffairCode, Error> {
        // Only business systems keep copies (the role check of the routes says the same).
        let settings = self.settings.current();
        let client = settings
            .config
            .client(system.as_str())
            .filter(|c| c.role == Role::Business)
            .ok_or(Error::forbidden(
                "not_a_business_system",
                "this client is not a business system",
            ))?;
        let Some(affair) = may_provide(&settings.table, client, item) else {
            let mut r = crate::records::base(RecordKind::DeniedRequest, RecordResult::Refused);
            r.item = Some(item.clone());
            r.business_system = Some(system.clone());
            r.provider = Some(settings.config.agency_code.clone());
            r.reason = Some("copy_not_permitted".into());
            crate::records::record_now(self.store.as_ref(), &r).await?;
            return Err(Error::forbidden_field(
                "not_permitted",
                "item_code",
                "item_code: the permission table has no provision row for this item under the system's affairs",
            ));
        };
        Ok(affair)
    }

    /// Registers a new version of a copy; returns once it is durable.
    pub async fn register(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
        req: CopyRequest,
    ) -> Result<CopyAccepted, Error> {
        self.register_as(system, bn, item, req, Replay::Latest)
            .await
    }

    /// [`Copies::register`] with the replay rule of the caller: a single `PUT` compares with
    /// the latest version, a file's line also with its replay marker.
    pub(super) async fn register_as(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
        req: CopyRequest,
        replay: Replay,
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
        let marker = match replay {
            Replay::Latest => None,
            Replay::Marker => Some(self.repo.import_marker(&draft)),
        };
        self.commit_next(draft, marker).await
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
        self.commit_next(draft, None).await
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
    /// record (and `marker`, a file line's replay marker); a repeat of the latest version's
    /// content, or a line whose marker exists, answers that version instead.
    async fn commit_next(
        &self,
        mut draft: CopyVersion,
        marker: Option<Vec<u8>>,
    ) -> Result<CopyAccepted, Error> {
        let existing = |c: &CopyVersion| CopyAccepted {
            id: c.id.clone(),
            status: c.status,
            version: c.version,
            new: false,
        };
        for _ in 0..VERSION_RACE_RETRIES {
            if let Some(m) = &marker {
                if let Some(done) = self.repo.marked(m)? {
                    // The same line of a file registered before: make sure it is durable.
                    self.store.commit(Batch::new()).await?;
                    return Ok(existing(&done));
                }
            }
            let versions =
                self.repo
                    .versions(&draft.system, &draft.business_number, &draft.item)?;
            if let Some(latest) = versions.last() {
                if latest.same_content(&draft) {
                    // A retried request: make sure what we answer is durable (with the line's
                    // marker, so a replay later finds it even after newer versions), then
                    // answer it.
                    let mut b = Batch::new();
                    if let Some(m) = &marker {
                        self.repo.stage_marker(&mut b, m, &latest.id);
                    }
                    match self.store.commit(b).await {
                        Ok(_) => return Ok(existing(latest)),
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
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
            if let Some(m) = &marker {
                self.repo.stage_marker(&mut b, m, &draft.id);
            }
            let agency = self.settings.current().config.agency_code.clone();
            let mut r = copy_record(&draft, RecordResult::Accepted, &agency);
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

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
affair = "JM01000000020000"
title = "x"
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "provision"
legal_basis = "番号法第19条第8号"
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000089"
direction = "provision"
legal_basis = "番号法第19条第8号"
manual = true
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000003"
direction = "inquiry"
legal_basis = "番号法第19条第8号"
"#;

    #[test]
    fn provision_rights_are_the_tables_provision_rows_not_manual() {
        let table = PermissionTable::from_files([("t.toml", TABLE)]).unwrap();
        let client: ClientConfig = toml::from_str(
            "name = \"zeimu\"\nrole = \"business\"\naffairs = [\"JM01000000030000\", \"JM01000000020000\"]",
        )
        .unwrap();
        let item = |s: &str| ItemCode::parse(s).unwrap();
        assert_eq!(
            may_provide(&table, &client, &item("TM00000000000002")).map(|a| a.to_string()),
            Some("JM01000000020000".to_string())
        );
        // A manual row is answered by a person, not from copies; an inquiry row provides nothing.
        assert_eq!(
            may_provide(&table, &client, &item("TM00000000000089")),
            None
        );
        assert_eq!(
            may_provide(&table, &client, &item("TM00000000000003")),
            None
        );
        let other: ClientConfig = toml::from_str(
            "name = \"kokuho\"\nrole = \"business\"\naffairs = [\"JM01000000030000\"]",
        )
        .unwrap();
        assert_eq!(may_provide(&table, &other, &item("TM00000000000002")), None);
    }
}
