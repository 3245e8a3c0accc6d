//! Routes for security officers: list, rotate and retire keys, and follow re-encryption.
//! Every action is recorded with who, from where, what and the outcome.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use renkei_crypto::keyring::KeyPurpose;
use renkei_records::{RecordKind, RecordResult};
use serde::Serialize;

use super::{ApiError, Caller};
use crate::config::Role;
use crate::gateway::{Gateway, GatewayError};
use crate::records;

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/keys", get(list))
        .route("/v1/keys/status", get(status))
        .route("/v1/keys/{purpose}/rotate", post(rotate))
        .route("/v1/keys/{purpose}/{version}/retire", post(retire))
        .route("/v1/keys/requests", get(requests))
        .route("/v1/keys/requests/{id}/approve", post(approve))
}

/// One key version as a security officer sees it.
#[derive(Debug, Serialize)]
pub struct KeyRow {
    pub purpose: String,
    pub version: u32,
    pub state: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// At-rest keys: how many stored values this version still protects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protects: Option<u64>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(GatewayError::Internal(e.to_string()))
}

fn purpose(p: &str) -> Result<KeyPurpose, ApiError> {
    p.parse::<KeyPurpose>().map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_purpose",
            "purpose: signing, sealing, at-rest or blind-index",
        )
        .field("purpose")
    })
}

async fn record_key_action(
    gw: &Gateway,
    caller: &Caller,
    action: String,
    ok: bool,
    reason: Option<String>,
) -> Result<(), ApiError> {
    let mut r = records::base(
        RecordKind::KeyAction,
        if ok {
            RecordResult::Done
        } else {
            RecordResult::Refused
        },
    );
    r.reason = reason;
    r.staff = Some(caller.staff_detail(&action, None, false));
    super::commit_record(gw, &r).await
}

/// Records a refused key action, then gives the 409 answer that says why.
async fn refused(
    gw: &Gateway,
    caller: &Caller,
    action: String,
    code: &str,
    msg: String,
) -> ApiError {
    match record_key_action(gw, caller, action, false, Some(msg.clone())).await {
        Ok(()) => ApiError::new(StatusCode::CONFLICT, code, msg),
        Err(e) => e,
    }
}

async fn list(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
) -> Result<Json<Vec<KeyRow>>, ApiError> {
    caller.require(Role::Security)?;
    let usage = crate::rekey::at_rest_usage(&gw).map_err(internal)?;
    let rows = gw
        .keys
        .keyring()
        .list()
        .into_iter()
        .map(|k| KeyRow {
            purpose: k.purpose.to_string(),
            version: k.version,
            state: serde_json::to_value(k.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            created_at: crate::util::rfc3339_jst(k.created_at * 1000),
            fingerprint: k.fingerprint,
            protects: (k.purpose == KeyPurpose::AtRest)
                .then(|| usage.get(&k.version).copied().unwrap_or(0)),
        })
        .collect();
    Ok(Json(rows))
}

/// Re-encryption progress.
#[derive(Debug, Serialize)]
pub struct KeyStatus {
    pub active_at_rest_version: u32,
    /// version → stored values it protects.
    pub at_rest_usage: std::collections::BTreeMap<u32, u64>,
    /// Values still to re-encrypt onto the active version.
    pub remaining: u64,
}

async fn status(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
) -> Result<Json<KeyStatus>, ApiError> {
    caller.require(Role::Security)?;
    let usage = crate::rekey::at_rest_usage(&gw).map_err(internal)?;
    let active = gw.keys.keyring().data_key().0;
    let remaining = usage
        .iter()
        .filter(|(v, _)| **v != active)
        .map(|(_, n)| n)
        .sum();
    Ok(Json(KeyStatus {
        active_at_rest_version: active,
        at_rest_usage: usage,
        remaining,
    }))
}

async fn rotate(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(p): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Security)?;
    let purpose = purpose(&p)?;
    if gw.config.keys.two_person_rule {
        return request_approval(&gw, &caller, KeyRequestAction::Rotate, purpose, None).await;
    }
    do_rotate(&gw, &caller, purpose, "").await
}

async fn do_rotate(
    gw: &Gateway,
    caller: &Caller,
    purpose: KeyPurpose,
    approval: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    match crate::rekey::rotate(gw, purpose).await {
        Ok(version) => {
            tracing::info!(message = "Key rotated.", purpose = %purpose, version);
            record_key_action(
                gw,
                caller,
                format!("keys.rotate {purpose} -> v{version}{approval}"),
                true,
                None,
            )
            .await?;
            Ok(Json(
                serde_json::json!({"purpose": purpose.to_string(), "version": version, "state": "active"}),
            ))
        }
        Err(e) => Err(refused(
            gw,
            caller,
            format!("keys.rotate {purpose}"),
            "rotation_failed",
            e,
        )
        .await),
    }
}

async fn retire(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((p, version)): Path<(String, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Security)?;
    let purpose = purpose(&p)?;
    if gw.config.keys.two_person_rule {
        return request_approval(
            &gw,
            &caller,
            KeyRequestAction::Retire,
            purpose,
            Some(version),
        )
        .await;
    }
    do_retire(&gw, &caller, purpose, version, "").await
}

async fn do_retire(
    gw: &Gateway,
    caller: &Caller,
    purpose: KeyPurpose,
    version: u32,
    approval: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    if purpose == KeyPurpose::AtRest {
        let usage = crate::rekey::at_rest_usage(gw).map_err(internal)?;
        let n = usage.get(&version).copied().unwrap_or(0);
        if n > 0 {
            let msg = format!("at-rest key v{version} still protects {n} stored values; wait for re-encryption (renkei keys status)");
            let action = format!("keys.retire {purpose} v{version}");
            return Err(refused(gw, caller, action, "key_in_use", msg).await);
        }
    }
    let mut next = gw.keys.prepare().map_err(internal)?;
    match next.retire(purpose, version) {
        Ok(()) => {
            gw.keys.install(next).map_err(internal)?;
            record_key_action(
                gw,
                caller,
                format!("keys.retire {purpose} v{version}{approval}"),
                true,
                None,
            )
            .await?;
            Ok(Json(
                serde_json::json!({"purpose": purpose.to_string(), "version": version, "state": "retired"}),
            ))
        }
        Err(e) => {
            let action = format!("keys.retire {purpose} v{version}");
            Err(refused(gw, caller, action, e.code(), e.to_string()).await)
        }
    }
}

/// What a pending two-person request will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRequestAction {
    Rotate,
    Retire,
}

/// A rotation or retirement waiting for a second security officer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyRequest {
    pub id: String,
    pub action: KeyRequestAction,
    pub purpose: String,
    #[serde(default)]
    pub version: Option<u32>,
    pub requested_by: String,
    pub requested_at: String,
}

/// Prefix of pending requests in `Meta`.
const KEY_REQUEST_PREFIX: &[u8] = b"keys.request.";

async fn request_approval(
    gw: &Gateway,
    caller: &Caller,
    action: KeyRequestAction,
    purpose: KeyPurpose,
    version: Option<u32>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req = KeyRequest {
        id: crate::util::new_id("KR"),
        action,
        purpose: purpose.to_string(),
        version,
        requested_by: caller.client.name.to_string(),
        requested_at: crate::util::rfc3339_jst(crate::util::now_ms()),
    };
    let mut r = records::base(RecordKind::KeyAction, RecordResult::Accepted);
    r.reason = Some("awaiting a second security officer".into());
    r.staff = Some(caller.staff_detail(
        &format!(
                "keys.request {} {purpose}",
                serde_json::to_value(action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        Some(req.id.clone()),
        false,
    ));
    let mut b = renkei_store::Batch::new();
    let mut key = KEY_REQUEST_PREFIX.to_vec();
    key.extend_from_slice(req.id.as_bytes());
    b.put(
        renkei_store::Tree::Meta,
        key,
        serde_json::to_vec(&req).map_err(internal)?,
    );
    records::append(&mut b, &r);
    gw.store
        .commit(b)
        .await
        .map_err(|e| ApiError::from(GatewayError::Store(e)))?;
    Ok(Json(
        serde_json::json!({"request_id": req.id, "state": "pending_approval"}),
    ))
}

async fn requests(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
) -> Result<Json<Vec<KeyRequest>>, ApiError> {
    caller.require(Role::Security)?;
    let rows = gw
        .store
        .scan_prefix(renkei_store::Tree::Meta, KEY_REQUEST_PREFIX, 1000)
        .map_err(|e| ApiError::from(GatewayError::Store(e)))?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect(),
    ))
}

async fn approve(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Security)?;
    let mut key = KEY_REQUEST_PREFIX.to_vec();
    key.extend_from_slice(id.as_bytes());
    let raw = gw
        .store
        .get(renkei_store::Tree::Meta, &key)
        .map_err(|e| ApiError::from(GatewayError::Store(e)))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_request",
                "no pending key request with this id",
            )
        })?;
    let req: KeyRequest = serde_json::from_slice(&raw).map_err(internal)?;
    if req.requested_by == caller.client.name.as_str() {
        record_key_action(
            &gw,
            &caller,
            format!("keys.approve {id}"),
            false,
            Some("the requester cannot approve their own request".into()),
        )
        .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "same_officer",
            "a second, different security officer must approve this request",
        ));
    }
    // Take the request first (compare-and-swap), so that it runs once.
    let mut b = renkei_store::Batch::new();
    b.require_equal(renkei_store::Tree::Meta, key.clone(), raw.clone());
    b.delete(renkei_store::Tree::Meta, key);
    gw.store.commit(b).await.map_err(|e| match e {
        renkei_store::StoreError::Conflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "request_taken",
            "this request was approved already",
        ),
        other => ApiError::from(GatewayError::Store(other)),
    })?;
    let approval = format!(
        " (requested by {}, approved by {})",
        req.requested_by, caller.client.name
    );
    let purpose = purpose(&req.purpose)?;
    match (req.action, req.version) {
        (KeyRequestAction::Rotate, _) => do_rotate(&gw, &caller, purpose, &approval).await,
        (KeyRequestAction::Retire, Some(v)) => do_retire(&gw, &caller, purpose, v, &approval).await,
        (KeyRequestAction::Retire, None) => Err(internal("retire request without a version")),
    }
}
