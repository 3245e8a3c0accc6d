//! The gateway's shared state and its business operations (link a person, accept an
//! inquiry, read one back), independent of HTTP so that tests and the batch path call the
//! same code the API does.

use std::sync::Arc;

use renkei_ids::{BusinessNumber, IndividualNumber, ItemCode, ProcedureCode, SystemId};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::config::{ClientConfig, GatewayConfig, Role};
use crate::inquiry::{inquiry_job, Conditions, Inquiry, Status};
use crate::keys::KeyState;
use crate::registry::{due_key, BasicFacts, Linked, Registry, RegistryError};
use crate::uplink::Uplink;
use crate::util::{new_id, now_ms, sha256_hex};
use renkei_store::{key2, Batch, Store, StoreError, Tree};

/// A business-level refusal or failure, with a stable code and the field it concerns.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<RegistryError> for GatewayError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::LinkedElsewhere => GatewayError::Conflict {
                code: "business_number_linked_elsewhere",
                message: "this business number is already linked to another person".into(),
            },
            RegistryError::NotFound => GatewayError::NotFound,
            RegistryError::Store(s) => GatewayError::Store(s),
            other => GatewayError::Internal(other.to_string()),
        }
    }
}

/// `PUT /v1/persons/{business_number}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub individual_number: IndividualNumber,
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub sex: String,
    pub address: String,
}

/// `POST /v1/inquiries` body.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InquiryRequest {
    pub business_number: BusinessNumber,
    pub procedure_code: ProcedureCode,
    pub item_code: ItemCode,
    pub conditions: Conditions,
    /// 照会側不開示: the inquirer asks that the person not be shown this inquiry in their
    /// disclosure (e.g. an investigation); carried to the platform and into the record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_disclosure: bool,
}

/// What accepting an inquiry answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: Status,
    /// False when an earlier request with the same idempotency key is being answered.
    #[serde(skip)]
    pub new: bool,
}

/// Stored under `Idempotency`.
#[derive(Debug, serde::Serialize, Deserialize)]
struct IdemEntry {
    id: String,
    request_sha256: String,
}

/// The gateway.
pub struct Gateway {
    pub config: GatewayConfig,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub keys: Arc<KeyState>,
    pub uplink: Uplink,
    /// Wakes the dispatcher when new work is scheduled.
    pub wake: Arc<Notify>,
    /// The platform's master information as last verified.
    pub master: crate::master::SharedMaster,
}

fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::Invalid {
        code,
        field: Some(field.to_string()),
        message: message.into(),
    }
}

/// Validates a date `YYYY-MM-DD`.
pub fn check_date(field: &str, s: &str) -> Result<(), GatewayError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map(|_| ()).map_err(|_| {
        invalid(
            "invalid_date",
            field,
            format!("{field}: expected a date YYYY-MM-DD"),
        )
    })
}

impl Gateway {
    /// The client entry of a business system, or Forbidden.
    pub fn business_client(&self, name: &str) -> Result<&ClientConfig, GatewayError> {
        match self.config.client(name) {
            Some(c) if c.role == Role::Business => Ok(c),
            _ => Err(GatewayError::Forbidden {
                code: "not_a_business_system",
                message: "this client is not a business system".into(),
            }),
        }
    }

    /// Links a business system's number for a person.
    pub async fn link_person(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        req: LinkRequest,
    ) -> Result<Linked, GatewayError> {
        let text = |field: &str, v: &str, max: usize| {
            if v.trim().is_empty() || v.chars().count() > max {
                Err(invalid(
                    "invalid_text",
                    field,
                    format!("{field}: 1 to {max} characters"),
                ))
            } else {
                Ok(())
            }
        };
        text("name", &req.name, 100)?;
        text("kana", &req.kana, 100)?;
        text("address", &req.address, 200)?;
        if !req
            .kana
            .chars()
            .all(|c| ('\u{30A0}'..='\u{30FF}').contains(&c) || c == '\u{3000}' || c == ' ')
        {
            return Err(invalid(
                "invalid_kana",
                "kana",
                "kana: full-width katakana only",
            ));
        }
        check_date("birth_date", &req.birth_date)?;
        if !matches!(req.sex.as_str(), "1" | "2" | "9") {
            return Err(invalid(
                "invalid_code",
                "sex",
                "sex: 1 (男), 2 (女) or 9 (不明)",
            ));
        }
        let facts = BasicFacts {
            name: req.name,
            kana: req.kana,
            birth_date: req.birth_date,
            sex: req.sex,
            address: req.address,
        };
        let linked = self
            .registry
            .link(system, bn, &req.individual_number, &facts)
            .await?;
        if linked.created {
            self.wake.notify_one();
        }
        Ok(linked)
    }

    /// Accepts an inquiry: returns only once it is durable.
    pub async fn submit_inquiry(
        &self,
        system: &SystemId,
        idempotency_key: &str,
        req: InquiryRequest,
        batch: Option<String>,
    ) -> Result<Accepted, GatewayError> {
        let client = self.business_client(system.as_str())?;
        if idempotency_key.is_empty()
            || idempotency_key.len() > 128
            || !idempotency_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid(
                "invalid_idempotency_key",
                "Idempotency-Key",
                "Idempotency-Key: 1 to 128 visible ASCII characters",
            ));
        }
        match &req.conditions {
            Conditions::FiscalYear { fiscal_year } => {
                if !(1900..=2200).contains(fiscal_year) {
                    return Err(invalid(
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
                    return Err(invalid(
                        "invalid_period",
                        "conditions.to",
                        "conditions: from must not be after to",
                    ));
                }
            }
        }
        let request_sha256 = sha256_hex(
            &serde_json::to_vec(&req).map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        let idem_key = key2(system.as_str(), idempotency_key);
        if let Some(found) = self.idempotent_answer(&idem_key, &request_sha256)? {
            return Ok(found);
        }
        let permitted = client
            .permissions
            .iter()
            .any(|p| p.procedure == req.procedure_code && p.item == req.item_code);
        if !permitted {
            let mut r = crate::records::base(
                renkei_records::RecordKind::DeniedRequest,
                renkei_records::RecordResult::Refused,
            );
            r.procedure = Some(req.procedure_code.clone());
            r.item = Some(req.item_code.clone());
            r.business_system = Some(system.clone());
            r.inquirer = Some(self.config.agency_code.clone());
            r.reason = Some("not_permitted".into());
            let mut b = Batch::new();
            crate::records::append(&mut b, &r);
            self.store.commit(b).await?;
            return Err(GatewayError::Forbidden {
                code: "not_permitted",
                message: "this system may not inquire this item under this procedure".into(),
            });
        }
        let unified = self
            .registry
            .resolve(system, &req.business_number)?
            .ok_or_else(|| {
                invalid(
                    "person_not_linked",
                    "business_number",
                    "business_number: not linked to a person; PUT /v1/persons/{business_number} first",
                )
            })?;
        self.registry.check_active(&unified)?;
        let affair = client
            .affair_code
            .clone()
            .ok_or_else(|| GatewayError::Internal("business client without affair code".into()))?;
        let now = now_ms();
        let id = new_id("IQ");
        let due = due_key(now, &inquiry_job(&id));
        let inquiry = Inquiry {
            id: id.clone(),
            system: system.clone(),
            business_number: req.business_number,
            unified,
            affair,
            procedure: req.procedure_code,
            item: req.item_code,
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
            deadline_ms: now + self.config.platform.inquiry_deadline_secs * 1000,
            due_key: Some(due.clone()),
        };
        let mut b = Batch::new();
        b.require_absent(Tree::Idempotency, idem_key.clone());
        b.put(
            Tree::Idempotency,
            idem_key.clone(),
            serde_json::to_vec(&IdemEntry {
                id: id.clone(),
                request_sha256: request_sha256.clone(),
            })
            .map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        b.put(
            Tree::Inquiries,
            id.as_bytes().to_vec(),
            serde_json::to_vec(&inquiry).map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        b.put(Tree::Due, due, Vec::new());
        let mut r = crate::inquiry::dispatch::inquiry_record(
            &inquiry,
            renkei_records::RecordResult::Accepted,
        );
        r.inquirer = Some(self.config.agency_code.clone());
        r.reason = Some("queued".into());
        crate::records::append(&mut b, &r);
        match self.store.commit(b).await {
            Ok(_) => {
                self.wake.notify_one();
                Ok(Accepted {
                    id,
                    status: Status::Queued,
                    new: true,
                })
            }
            Err(StoreError::Conflict { .. }) => self
                .idempotent_answer(&idem_key, &request_sha256)?
                .ok_or_else(|| GatewayError::Internal("idempotency entry vanished".into())),
            Err(e) => Err(e.into()),
        }
    }

    fn idempotent_answer(
        &self,
        idem_key: &[u8],
        request_sha256: &str,
    ) -> Result<Option<Accepted>, GatewayError> {
        let Some(raw) = self.store.get(Tree::Idempotency, idem_key)? else {
            return Ok(None);
        };
        let entry: IdemEntry =
            serde_json::from_slice(&raw).map_err(|e| GatewayError::Internal(e.to_string()))?;
        if entry.request_sha256 != request_sha256 {
            return Err(GatewayError::Conflict {
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was used with a different request".into(),
            });
        }
        let status = self
            .inquiry(&entry.id)?
            .map(|i| i.status)
            .unwrap_or(Status::Queued);
        Ok(Some(Accepted {
            id: entry.id,
            status,
            new: false,
        }))
    }

    /// Reads an inquiry.
    pub fn inquiry(&self, id: &str) -> Result<Option<Inquiry>, GatewayError> {
        match self.store.get(Tree::Inquiries, id.as_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| GatewayError::Internal(e.to_string())),
            None => Ok(None),
        }
    }

    /// Reads an inquiry on behalf of a system: another system's inquiry is "not found".
    pub fn inquiry_for(&self, system: &SystemId, id: &str) -> Result<Inquiry, GatewayError> {
        match self.inquiry(id)? {
            Some(i) if &i.system == system => Ok(i),
            _ => Err(GatewayError::NotFound),
        }
    }
}
