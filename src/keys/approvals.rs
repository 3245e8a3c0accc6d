//! The two-person rule (`[keys] two_person_rule = true`): a rotation or retirement asked by
//! one security officer waits as a request until a second, different officer approves it;
//! the approval runs it exactly once (the request is taken by compare-and-swap). Requests,
//! refusals and approvals are all linkage records.

use renkei_crypto::keyring::KeyPurpose;
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use renkei_store::{Batch, StoreError, Tree};
use serde::{Deserialize, Serialize};

use super::{Error, KeyOutcome, Keys, Refusal};
use crate::util::{new_id, now_ms, rfc3339_jst};

/// Prefix of pending requests in `Meta`.
const KEY_REQUEST_PREFIX: &[u8] = b"keys.request.";
/// Most pending requests listed (there are a handful at most in practice).
const MAX_LISTED_REQUESTS: usize = 1000;

/// What a pending two-person request will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRequestAction {
    Rotate,
    Retire,
}

impl KeyRequestAction {
    fn as_str(self) -> &'static str {
        match self {
            KeyRequestAction::Rotate => "rotate",
            KeyRequestAction::Retire => "retire",
        }
    }
}

/// A rotation or retirement waiting for a second security officer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRequest {
    pub id: String,
    pub action: KeyRequestAction,
    pub purpose: String,
    #[serde(default)]
    pub version: Option<u32>,
    pub requested_by: String,
    pub requested_at: String,
}

fn request_key(id: &str) -> Vec<u8> {
    let mut key = KEY_REQUEST_PREFIX.to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

impl Keys {
    /// Stores a request for a second officer, with its record.
    pub(super) async fn request(
        &self,
        action: KeyRequestAction,
        purpose: KeyPurpose,
        version: Option<u32>,
        staff: &StaffDetail,
    ) -> Result<KeyOutcome, Refusal> {
        let req = KeyRequest {
            id: new_id("KR"),
            action,
            purpose: purpose.to_string(),
            version,
            requested_by: staff.actor.clone(),
            requested_at: rfc3339_jst(now_ms()),
        };
        let mut r = crate::records::base(RecordKind::KeyAction, RecordResult::Accepted);
        r.reason = Some("awaiting a second security officer".into());
        r.staff = Some(StaffDetail {
            action: format!("keys.request {} {purpose}", action.as_str()),
            target: Some(req.id.clone()),
            ..staff.clone()
        });
        let mut b = Batch::new();
        b.put(
            Tree::Meta,
            request_key(&req.id),
            serde_json::to_vec(&req).map_err(Error::from)?,
        );
        crate::records::append(&mut b, &r);
        self.store.commit(b).await?;
        Ok(KeyOutcome::Pending {
            id: req.id,
            status: "pending_approval",
        })
    }

    /// The requests waiting for approval.
    pub fn requests(&self) -> Result<Vec<KeyRequest>, Error> {
        let rows = self
            .store
            .scan_prefix(Tree::Meta, KEY_REQUEST_PREFIX, MAX_LISTED_REQUESTS)?;
        rows.into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(Error::from))
            .collect()
    }

    /// A second officer approves request `id`: it runs once; the requester cannot approve.
    pub async fn approve(&self, id: &str, staff: &StaffDetail) -> Result<KeyOutcome, Refusal> {
        let key = request_key(id);
        let raw = self
            .store
            .get(Tree::Meta, &key)?
            .ok_or(Refusal::NoSuchRequest)?;
        let req: KeyRequest = serde_json::from_slice(&raw).map_err(Error::from)?;
        if req.requested_by == staff.actor {
            self.record(
                staff,
                format!("keys.approve {id}"),
                false,
                Some("the requester cannot approve their own request".into()),
            )
            .await?;
            return Err(Refusal::SameOfficer);
        }
        // Take the request first (compare-and-swap), so that it runs once.
        let mut b = Batch::new();
        b.require_equal(Tree::Meta, key.clone(), raw);
        b.delete(Tree::Meta, key);
        self.store.commit(b).await.map_err(|e| match e {
            StoreError::Conflict { .. } => Refusal::NoSuchRequest,
            other => other.into(),
        })?;
        let approval = format!(
            " (requested by {}, approved by {})",
            req.requested_by, staff.actor
        );
        let purpose: KeyPurpose = req.purpose.parse().map_err(Error::from)?;
        match (req.action, req.version) {
            (KeyRequestAction::Rotate, _) => self.do_rotate(purpose, staff, &approval).await,
            (KeyRequestAction::Retire, Some(v)) => {
                self.do_retire(purpose, v, staff, &approval).await
            }
            (KeyRequestAction::Retire, None) => {
                Err(Refusal::Failed(Error::Missing("the request's key version")))
            }
        }
    }
}
