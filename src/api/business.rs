//! Routes for business systems: link persons, submit inquiries, read them back.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, SystemId};

use super::{json_error, ApiError, Caller};
use crate::config::Role;
use crate::gateway::{Gateway, InquiryRequest, LinkRequest};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/persons/{business_number}", put(link_person))
        .route("/v1/inquiries", post(submit_inquiry))
        .route("/v1/inquiries/{id}", get(get_inquiry))
}

fn system_of(caller: &Caller) -> Result<SystemId, ApiError> {
    caller.require(Role::Business)?;
    Ok(caller.client.name.clone())
}

async fn link_person(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(bn): Path<String>,
    body: Result<Json<LinkRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
    let bn = BusinessNumber::parse(&bn).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            .field("business_number")
    })?;
    let Json(req) = body.map_err(json_error)?;
    let linked = gw.link_person(&system, &bn, req).await?;
    let status = if linked.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(linked)))
}

async fn submit_inquiry(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<InquiryRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
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
    let Json(req) = body.map_err(json_error)?;
    let accepted = gw.submit_inquiry(&system, &key, req, None).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn get_inquiry(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
    let inquiry = gw.inquiry_for(&system, &id)?;
    Ok(Json(serde_json::to_value(inquiry.view()).map_err(|e| {
        ApiError::from(crate::gateway::GatewayError::Internal(e.to_string()))
    })?))
}
