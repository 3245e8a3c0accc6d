//! Key management while serving, for security officers: listing what each key version
//! protects, rotation ([`rotate`]), retirement, the two-person rule ([`approvals`]),
//! background re-encryption ([`reencrypt`]), the platform's signed master information
//! ([`master`]) and the development PKI ([`pki`]).
//!
//! Every key action — done, refused or waiting for a second officer — is a linkage record.
//! Rotations and retirements are serialised: two at once could choose the same version.

pub mod approvals;
pub mod master;
pub mod pki;
pub mod reencrypt;
pub mod rotate;

use std::collections::BTreeMap;
use std::sync::Arc;

use renkei_crypto::keyring::KeyPurpose;
use renkei_ids::AgencyCode;
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use renkei_store::{Store, StoreError};
use serde::Serialize;

use crate::keyring::{KeyError, KeyState};
use crate::platform::Uplink;
use crate::util::rfc3339_jst;

pub use approvals::{KeyRequest, KeyRequestAction};

/// Why a key action failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Crypto(#[from] renkei_crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored value is unreadable: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("stored value is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0}")]
    Publication(String),
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => crate::error::Error::Store(s),
            other => crate::error::Error::internal("key management", other),
        }
    }
}

/// One key version as a security officer sees it.
#[derive(Debug, Serialize)]
pub struct KeyRow {
    pub purpose: String,
    pub version: u32,
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// At-rest keys: how many stored values this version still protects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protects: Option<u64>,
}

/// Re-encryption progress.
#[derive(Debug, Serialize)]
pub struct KeyStatus {
    pub active_at_rest_version: u32,
    /// version → stored values it protects.
    pub at_rest_usage: BTreeMap<u32, u64>,
    /// Values still to re-encrypt onto the active version.
    pub remaining: u64,
}

/// What a rotation or retirement ended in.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum KeyOutcome {
    /// Done: the purpose's version and its new state (`active` or `retired`).
    Done {
        purpose: String,
        version: u32,
        status: &'static str,
    },
    /// Waiting for a second security officer (two-person rule).
    Pending { id: String, status: &'static str },
}

/// A key action that was refused (and recorded as refused): its stable code and why.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("a second, different security officer must approve this request")]
    SameOfficer,
    #[error("no pending key request with this id")]
    NoSuchRequest,
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Failed(Error::Store(e))
    }
}

impl From<Refusal> for crate::error::Error {
    fn from(r: Refusal) -> Self {
        use crate::error::Error as E;
        match r {
            Refusal::Conflict { code, message } => E::conflict(code, message),
            Refusal::SameOfficer => E::forbidden("same_officer", Refusal::SameOfficer.to_string()),
            Refusal::NoSuchRequest => E::NotFound,
            Refusal::Failed(e) => e.into(),
        }
    }
}

/// The key-management capability.
pub struct Keys {
    pub keyring: Arc<KeyState>,
    store: Arc<dyn Store>,
    uplink: Uplink,
    agency: AgencyCode,
    two_person_rule: bool,
    /// Held for the length of a rotation or retirement.
    serial: tokio::sync::Mutex<()>,
}

impl Keys {
    /// The capability over this side's keyring.
    pub fn new(
        keyring: Arc<KeyState>,
        store: Arc<dyn Store>,
        uplink: Uplink,
        agency: AgencyCode,
        two_person_rule: bool,
    ) -> Self {
        Self {
            keyring,
            store,
            uplink,
            agency,
            two_person_rule,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// Every key version by purpose, with what at-rest versions still protect.
    pub fn list(&self) -> Result<Vec<KeyRow>, Error> {
        let usage = reencrypt::at_rest_usage(self.store.as_ref())?;
        Ok(self
            .keyring
            .keyring()
            .list()
            .into_iter()
            .map(|k| KeyRow {
                purpose: k.purpose.to_string(),
                version: k.version,
                status: serde_json::to_value(k.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                created_at: rfc3339_jst(k.created_at * 1000),
                fingerprint: k.fingerprint,
                protects: (k.purpose == KeyPurpose::AtRest)
                    .then(|| usage.get(&k.version).copied().unwrap_or(0)),
            })
            .collect())
    }

    /// Re-encryption progress.
    pub fn status(&self) -> Result<KeyStatus, Error> {
        let usage = reencrypt::at_rest_usage(self.store.as_ref())?;
        let active = self.keyring.keyring().data_key().0;
        let remaining = usage
            .iter()
            .filter(|(v, _)| **v != active)
            .map(|(_, n)| n)
            .sum();
        Ok(KeyStatus {
            active_at_rest_version: active,
            at_rest_usage: usage,
            remaining,
        })
    }

    /// Records a key action (done or refused) by `staff`, durably, before answering.
    async fn record(
        &self,
        staff: &StaffDetail,
        action: String,
        ok: bool,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let result = if ok {
            RecordResult::Done
        } else {
            RecordResult::Refused
        };
        let mut r = crate::records::base(RecordKind::KeyAction, result);
        r.reason = reason;
        r.staff = Some(StaffDetail {
            action,
            ..staff.clone()
        });
        crate::records::record_now(self.store.as_ref(), &r).await
    }

    /// Records a refusal and returns it.
    async fn refuse(
        &self,
        staff: &StaffDetail,
        action: String,
        code: &'static str,
        message: String,
    ) -> Refusal {
        match self
            .record(staff, action, false, Some(message.clone()))
            .await
        {
            Ok(()) => Refusal::Conflict { code, message },
            Err(e) => e.into(),
        }
    }

    /// Rotates `purpose` (or asks a second officer first, under the two-person rule).
    pub async fn rotate(
        &self,
        purpose: KeyPurpose,
        staff: &StaffDetail,
    ) -> Result<KeyOutcome, Refusal> {
        if self.two_person_rule {
            return self
                .request(KeyRequestAction::Rotate, purpose, None, staff)
                .await;
        }
        self.do_rotate(purpose, staff, "").await
    }

    async fn do_rotate(
        &self,
        purpose: KeyPurpose,
        staff: &StaffDetail,
        approval: &str,
    ) -> Result<KeyOutcome, Refusal> {
        let _serial = self.serial.lock().await;
        match rotate::rotate(self, purpose).await {
            Ok(version) => {
                tracing::info!(message = "Key rotated.", purpose = %purpose, version);
                let action = format!("keys.rotate {purpose} -> v{version}{approval}");
                self.record(staff, action, true, None).await?;
                Ok(KeyOutcome::Done {
                    purpose: purpose.to_string(),
                    version,
                    status: "active",
                })
            }
            Err(e) => {
                let action = format!("keys.rotate {purpose}");
                Err(self
                    .refuse(staff, action, "rotation_failed", e.to_string())
                    .await)
            }
        }
    }

    /// Retires `purpose` version `version` (or asks a second officer first).
    pub async fn retire(
        &self,
        purpose: KeyPurpose,
        version: u32,
        staff: &StaffDetail,
    ) -> Result<KeyOutcome, Refusal> {
        if self.two_person_rule {
            return self
                .request(KeyRequestAction::Retire, purpose, Some(version), staff)
                .await;
        }
        self.do_retire(purpose, version, staff, "").await
    }

    async fn do_retire(
        &self,
        purpose: KeyPurpose,
        version: u32,
        staff: &StaffDetail,
        approval: &str,
    ) -> Result<KeyOutcome, Refusal> {
        let _serial = self.serial.lock().await;
        let action = format!("keys.retire {purpose} v{version}");
        if purpose == KeyPurpose::AtRest {
            let usage = reencrypt::at_rest_usage(self.store.as_ref())?;
            let n = usage.get(&version).copied().unwrap_or(0);
            if n > 0 {
                let msg = format!("at-rest key v{version} still protects {n} stored values; wait for re-encryption (renkei keys status)");
                return Err(self.refuse(staff, action, "key_in_use", msg).await);
            }
        }
        let mut next = self.keyring.prepare().map_err(Error::from)?;
        match next.retire(purpose, version) {
            Ok(()) => {
                self.keyring.install(next).map_err(Error::from)?;
                let action = format!("keys.retire {purpose} v{version}{approval}");
                self.record(staff, action, true, None).await?;
                Ok(KeyOutcome::Done {
                    purpose: purpose.to_string(),
                    version,
                    status: "retired",
                })
            }
            Err(e) => Err(self.refuse(staff, action, e.code(), e.to_string()).await),
        }
    }
}
