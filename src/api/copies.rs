//! Routes for business systems that provide information: register copies (副本), list their
//! versions and transfer status, withdraw them.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::put;
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, ItemCode};

use super::{ApiError, AppState, Caller, JsonBody};
use crate::copies::{CopyAccepted, CopyRequest};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/copies/{business_number}/{item_code}",
        put(register).get(list).delete(withdraw),
    )
}

fn parse(bn: &str, item: &str) -> Result<(BusinessNumber, ItemCode), ApiError> {
    let bn = BusinessNumber::parse(bn)
        .map_err(|e| ApiError::invalid(e.code(), "business_number", e.to_string()))?;
    let item = ItemCode::parse(item)
        .map_err(|e| ApiError::invalid(e.code(), "item_code", e.to_string()))?;
    Ok((bn, item))
}

fn accepted(bn: &BusinessNumber, item: &ItemCode, a: CopyAccepted) -> impl IntoResponse {
    let status = if a.new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/copies/{}/{}", bn.as_str(), item.as_str());
    (status, [(header::LOCATION, location)], Json(a))
}

async fn register(
    State(s): State<AppState>,
    caller: Caller,
    Path((bn, item)): Path<(String, String)>,
    JsonBody(req): JsonBody<CopyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (bn, item) = parse(&bn, &item)?;
    let a = s
        .copies
        .register(&caller.client.name, &bn, &item, req)
        .await?;
    Ok(accepted(&bn, &item, a))
}

async fn withdraw(
    State(s): State<AppState>,
    caller: Caller,
    Path((bn, item)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (bn, item) = parse(&bn, &item)?;
    let a = s.copies.withdraw(&caller.client.name, &bn, &item).await?;
    Ok(accepted(&bn, &item, a))
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path((bn, item)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (bn, item) = parse(&bn, &item)?;
    let versions = s.copies.list(&caller.client.name, &bn, &item).await?;
    let views: Vec<_> = versions.iter().map(|v| v.view()).collect();
    Ok(Json(serde_json::json!({
        "business_number": bn.as_str(),
        "item_code": item.as_str(),
        "versions": views,
    })))
}
