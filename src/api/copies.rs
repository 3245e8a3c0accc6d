//! Routes for business systems that provide information: register copies (副本), list their
//! versions and transfer status, withdraw them, and register many from a file
//! (`POST /v1/copies:import?item_code=TM…&format=csv|fixed`, the raw file as the body, up to
//! `max_batch_bytes`, streamed; answers a `CopyImportSummary`).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, ItemCode};
use serde::Deserialize;

use super::upload::{check_declared, too_large, LineStream};
use super::{ApiError, AppState, Caller, JsonBody};
use crate::copies::import::{
    file_layout, CopyFileFormat, CopyImportSummary, DEFAULT_COPY_IMPORT_CHUNK,
};
use crate::copies::{CopyAccepted, CopyRequest};
use crate::error::Error;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/copies/{business_number}/{item_code}",
            put(register).get(list).delete(withdraw),
        )
        .route(
            "/v1/copies:import",
            // The file is streamed and counted against `max_batch_bytes` by the handler.
            post(import).layer(DefaultBodyLimit::disable()),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    item_code: String,
    #[serde(default)]
    format: Option<CopyFileFormat>,
}

async fn import(
    State(s): State<AppState>,
    caller: Caller,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CopyImportSummary>, ApiError> {
    let system = caller.client.name.clone();
    // Fixed texts only: the query's text is input and is not shown back.
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "item_code: ?item_code=TM… is required; format, when given, is csv or fixed",
        )
        .field("item_code")
    })?;
    let item = ItemCode::parse(&q.item_code)
        .map_err(|e| ApiError::invalid(e.code(), "item_code", e.to_string()))?;
    let format = q.format.unwrap_or(CopyFileFormat::Csv);
    s.copies.check_import(&system, &item).await?;
    let copy = crate::copies::layout::layout(&item)?.ok_or_else(|| {
        ApiError::from(Error::invalid(
            "no_copy_layout",
            "item_code",
            "item_code: renkei has no copy layout for this item",
        ))
    })?;
    let layout = file_layout(&copy, format)?;
    let max = s.config.max_batch_bytes;
    check_declared(&headers, max)?;
    let mut stream = LineStream::start(body, layout, max, DEFAULT_COPY_IMPORT_CHUNK);
    let mut summary = CopyImportSummary::new(&system, &item, format);
    let mut failure = None;
    while let Some(chunk) = stream.chunks.recv().await {
        if let Err(e) = s
            .copies
            .import_chunk(&system, &item, chunk, &mut summary)
            .await
        {
            failure = Some(e);
            break;
        }
    }
    let over = stream.finish().await;
    tracing::info!(
        message = "Copy import finished.",
        system = %system,
        item = %item,
        format = format.as_str(),
        lines = summary.lines,
        created = summary.created,
        unchanged = summary.unchanged,
        rejected = summary.rejections.rejected_count,
        complete = failure.is_none() && !over,
    );
    if let Some(e) = failure {
        return Err(e.into());
    }
    if over {
        let mut e = too_large(max);
        e.body.message = format!(
            "{}; the first {} lines were taken and replaying the file is harmless",
            e.body.message, summary.lines
        )
        .into();
        return Err(e);
    }
    Ok(Json(summary))
}
