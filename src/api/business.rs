//! Routes for business systems: link persons, submit inquiries, read them back.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, InquiryId};

use super::{ApiError, AppState, Caller, JsonBody};
use crate::inquiry::{InquiryRequest, InquiryView, Status};
use crate::registry::link::LinkRequest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/persons/{business_number}", put(link_person))
        .route("/v1/inquiries", post(submit_inquiry).get(list_inquiries))
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
    if linked.created {
        let at = format!("/v1/persons:lookup?business_number={}", bn.as_str());
        Ok((StatusCode::CREATED, location(&at)?, Json(linked)).into_response())
    } else {
        Ok((StatusCode::OK, Json(linked)).into_response())
    }
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
    let at = format!("/v1/inquiries/{}", accepted.id.as_str());
    Ok((StatusCode::ACCEPTED, location(&at)?, Json(accepted)))
}

/// A `Location` header naming where a created or accepted resource can be read.
pub(super) fn location(path: &str) -> Result<[(header::HeaderName, HeaderValue); 1], ApiError> {
    let v = HeaderValue::from_str(path)
        .map_err(|e| ApiError::from(crate::error::Error::internal("Location header", e)))?;
    Ok([(header::LOCATION, v)])
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

/// Most inquiries one page of `GET /v1/inquiries` returns.
pub const MAX_LIST_PAGE: usize = 1000;
/// Default page size of `GET /v1/inquiries`.
pub const DEFAULT_LIST_PAGE: usize = 100;

/// A list's page size: [`DEFAULT_LIST_PAGE`] when not given, 1 to [`MAX_LIST_PAGE`].
pub(super) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIST_PAGE),
        Some(n @ 1..=MAX_LIST_PAGE) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "invalid_query",
            "limit",
            "limit: a number from 1 to 1000",
        )),
    }
}

/// Query parameters of `GET /v1/inquiries`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only inquiries in this status.
    status: Option<Status>,
    /// Only inquiries accepted at or after this time (RFC 3339 or YYYY-MM-DD, JST).
    since: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to 1000).
    limit: Option<usize>,
}

/// A page of the caller's inquiries, newest first.
#[derive(Debug, serde::Serialize)]
struct InquiryPage<'a> {
    inquiries: Vec<InquiryView<'a>>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<InquiryId>,
}

/// `GET /v1/inquiries`: the caller's own inquiries (never another system's).
async fn list_inquiries(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // Fixed text: neither serde's message nor the query is shown back.
    let Query(q) = q.map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "the query: status is one of queued, awaiting_code, sent, answered, failed; limit a number from 1 to 1000; no other parameters",
        )
    })?;
    let limit = page_limit(q.limit)?;
    let since_ms = super::audit::time_bound("since", &q.since)?
        .as_deref()
        .and_then(crate::util::parse_rfc3339_ms);
    let cursor = match &q.cursor {
        Some(c) => Some(InquiryId::parse(c).map_err(|_| {
            ApiError::invalid(
                "invalid_cursor",
                "cursor",
                "cursor: the next_cursor of a previous page",
            )
        })?),
        None => None,
    };
    let (found, next) = s.inquiries.list_for(
        &caller.client.name,
        q.status,
        since_ms,
        cursor.as_ref(),
        limit,
    )?;
    let page = InquiryPage {
        inquiries: found.iter().map(|i| i.view()).collect(),
        next_cursor: next,
    };
    Ok(Json(serde_json::to_value(page)?))
}
