//! Routes for security officers: list, rotate and retire keys, follow re-encryption, and the
//! two-person rule's requests. The work and its records are in `keys`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use renkei_crypto::keyring::KeyPurpose;

use super::{ApiError, AppState, Caller};
use crate::error::Error;
use crate::keys::{KeyOutcome, KeyRequest, KeyRow, KeyStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(list))
        .route("/v1/keys/status", get(status))
        .route("/v1/keys/{purpose}/rotate", post(rotate))
        .route("/v1/keys/{purpose}/{version}/retire", post(retire))
        .route("/v1/keys/requests", get(requests))
        .route("/v1/keys/requests/{id}/approve", post(approve))
}

fn purpose(p: &str) -> Result<KeyPurpose, ApiError> {
    p.parse::<KeyPurpose>().map_err(|_| {
        ApiError::invalid(
            "unknown_purpose",
            "purpose",
            "purpose: signing, sealing, at-rest, blind-index or checkpoint",
        )
    })
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<KeyRow>>, ApiError> {
    Ok(Json(s.keys.list().map_err(Error::from)?))
}

async fn status(State(s): State<AppState>) -> Result<Json<KeyStatus>, ApiError> {
    Ok(Json(s.keys.status().map_err(Error::from)?))
}

async fn rotate(
    State(s): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
) -> Result<Json<KeyOutcome>, ApiError> {
    let purpose = purpose(&p)?;
    let staff = caller.staff_detail("keys.rotate", None, false);
    Ok(Json(
        s.keys.rotate(purpose, &staff).await.map_err(Error::from)?,
    ))
}

async fn retire(
    State(s): State<AppState>,
    caller: Caller,
    Path((p, version)): Path<(String, u32)>,
) -> Result<Json<KeyOutcome>, ApiError> {
    let purpose = purpose(&p)?;
    let staff = caller.staff_detail("keys.retire", None, false);
    Ok(Json(
        s.keys
            .retire(purpose, version, &staff)
            .await
            .map_err(Error::from)?,
    ))
}

async fn requests(State(s): State<AppState>) -> Result<Json<Vec<KeyRequest>>, ApiError> {
    Ok(Json(s.keys.requests().map_err(Error::from)?))
}

async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyOutcome>, ApiError> {
    let staff = caller.staff_detail("keys.approve", None, false);
    Ok(Json(
        s.keys.approve(&id, &staff).await.map_err(Error::from)?,
    ))
}
