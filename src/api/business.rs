//! Routes for business systems: link persons, submit inquiries, read them back.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, InquiryId};

use super::{ApiError, AppState, Caller, JsonBody};
use crate::inquiry::InquiryRequest;
use crate::registry::link::LinkRequest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/persons/{business_number}", put(link_person))
        .route("/v1/inquiries", post(submit_inquiry))
        .route("/v1/inquiries/{id}", get(get_inquiry))
}

async fn link_person(
    State(s): State<AppState>,
    caller: Caller,
    Path(bn): Path<String>,
    JsonBody(req): JsonBody<LinkRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let bn = BusinessNumber::parse(&bn)
        .map_err(|e| ApiError::invalid(e.code(), "business_number", e.to_string()))?;
    let linked = s
        .registry
        .link_person(&caller.client.name, &bn, req)
        .await?;
    let status = if linked.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(linked)))
}

async fn submit_inquiry(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<InquiryRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_idempotency_key",
                "send an Idempotency-Key header so that a retry cannot create a second inquiry",
            )
            .field("Idempotency-Key")
        })?
        .to_string();
    let accepted = s
        .inquiries
        .submit(&caller.client.name, &key, req, None, None)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn get_inquiry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // An id of the wrong shape names nothing: answered like any unknown id.
    let id = InquiryId::parse(&id).map_err(|_| ApiError::from(crate::error::Error::NotFound))?;
    let inquiry = s.inquiries.get_for(&caller.client.name, &id)?;
    Ok(Json(serde_json::to_value(inquiry.view())?))
}
