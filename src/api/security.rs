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
    match crate::rekey::rotate(&gw, purpose).await {
        Ok(version) => {
            tracing::info!(message = "Key rotated.", purpose = %purpose, version);
            record_key_action(
                &gw,
                &caller,
                format!("keys.rotate {purpose} -> v{version}"),
                true,
                None,
            )
            .await?;
            Ok(Json(
                serde_json::json!({"purpose": purpose.to_string(), "version": version, "state": "active"}),
            ))
        }
        Err(e) => {
            record_key_action(
                &gw,
                &caller,
                format!("keys.rotate {purpose}"),
                false,
                Some(e.clone()),
            )
            .await?;
            Err(ApiError::new(StatusCode::CONFLICT, "rotation_failed", e))
        }
    }
}

async fn retire(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((p, version)): Path<(String, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Security)?;
    let purpose = purpose(&p)?;
    if purpose == KeyPurpose::AtRest {
        let usage = crate::rekey::at_rest_usage(&gw).map_err(internal)?;
        let n = usage.get(&version).copied().unwrap_or(0);
        if n > 0 {
            let msg = format!("at-rest key v{version} still protects {n} stored values; wait for re-encryption (renkei keys status)");
            record_key_action(
                &gw,
                &caller,
                format!("keys.retire {purpose} v{version}"),
                false,
                Some(msg.clone()),
            )
            .await?;
            return Err(ApiError::new(StatusCode::CONFLICT, "key_in_use", msg));
        }
    }
    let mut next = gw.keys.prepare().map_err(internal)?;
    match next.retire(purpose, version) {
        Ok(()) => {
            gw.keys.install(next).map_err(internal)?;
            record_key_action(
                &gw,
                &caller,
                format!("keys.retire {purpose} v{version}"),
                true,
                None,
            )
            .await?;
            Ok(Json(
                serde_json::json!({"purpose": purpose.to_string(), "version": version, "state": "retired"}),
            ))
        }
        Err(e) => {
            let msg = e.to_string();
            record_key_action(
                &gw,
                &caller,
                format!("keys.retire {purpose} v{version}"),
                false,
                Some(msg.clone()),
            )
            .await?;
            Err(ApiError::new(StatusCode::CONFLICT, e.code(), msg))
        }
    }
}
