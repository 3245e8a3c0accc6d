//! Routes for business systems that answer manual provision requests (手動提供): the
//! requests the platform handed to the city for the persons the caller holds, in the
//! caller's own business numbers (`GET /v1/provision-requests`, `GET …/{id}`), and the
//! answer (`POST …/{id}/answer`: provide with data, not held, or refuse with a reason code),
//! `202` once durable, sent by the dispatcher.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::business::{location, page_limit};
use super::{ApiError, AppState, Caller, JsonBody};
use crate::copies::manual::{AnswerRequest, RequestStatus, RequestView};
use crate::error::Error;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/provision-requests", get(list))
        .route("/v1/provision-requests/{id}", get(show))
        .route("/v1/provision-requests/{id}/answer", post(answer))
}

/// A request id as the platform makes them; anything else names nothing.
fn parse_id(id: &str) -> Result<&str, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(id)
        .ok_or_else(|| ApiError::from(Error::NotFound))
}

/// Query parameters of `GET /v1/provision-requests`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only requests in this status.
    status: Option<RequestStatus>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to 1000, default 100).
    limit: Option<usize>,
}

/// A page of the caller's requests, newest first.
#[derive(Debug, serde::Serialize)]
struct RequestPage<'a> {
    provision_requests: Vec<RequestView<'a>>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // Fixed text: neither serde's message nor the query is shown back.
    let Query(q) = q.map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "the query: status is one of pending, answered, timed_out; limit a number from 1 to 1000; no other parameters",
        )
    })?;
    let limit = page_limit(q.limit)?;
    let cursor = match &q.cursor {
        Some(c) => Some(parse_id(c).map_err(|_| {
            ApiError::invalid(
                "invalid_cursor",
                "cursor",
                "cursor: the next_cursor of a previous page",
            )
        })?),
        None => None,
    };
    let (found, next) = s
        .manual
        .list_for(&caller.client.name, q.status, cursor, limit)?;
    let page = RequestPage {
        provision_requests: found.iter().map(|r| r.view()).collect(),
        next_cursor: next,
    };
    Ok(Json(serde_json::to_value(page)?))
}

async fn show(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let r = s.manual.get_for(&caller.client.name, parse_id(&id)?)?;
    Ok(Json(serde_json::to_value(r.view())?))
}

async fn answer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AnswerRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let accepted = s.manual.answer(&caller.client.name, id, req).await?;
    let at = format!("/v1/provision-requests/{}", accepted.id);
    Ok((StatusCode::ACCEPTED, location(&at)?, Json(accepted)))
}
