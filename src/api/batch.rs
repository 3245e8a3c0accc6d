//! Routes for batch inquiries (business systems): upload a municipal inquiry file, follow its
//! progress, download its results file.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use renkei_ids::SystemId;
use serde::Serialize;

use super::{ApiError, AppState, Caller};
use crate::batch::accept::{is_running, upload};
use crate::batch::{meta_for, progress, results, BatchState, Rejection};

/// Media type of the results file (CP932 is Microsoft's Shift_JIS, registered as
/// `Windows-31J`).
pub const RESULTS_CONTENT_TYPE: &str = "text/csv; charset=Windows-31J";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/inquiries:batch",
            // The router-wide body limit is for JSON requests; a batch file has its own
            // (`max_batch_bytes`), enforced in the handler where the config is at hand.
            post(submit_batch).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/batches/{id}", get(batch_status))
        .route("/v1/batches/{id}/results", get(batch_results))
}

fn system_of(caller: &Caller) -> Result<SystemId, ApiError> {
    Ok(caller.client.name.clone())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("a batch file may be at most {limit} bytes"),
    )
}

async fn submit_batch(
    State(gw): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
    let limit = gw.config.max_batch_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_file",
            "the batch file is empty",
        ));
    }
    let up = upload(&gw.inquiries, &system, bytes).await?;
    Ok((StatusCode::ACCEPTED, Json(up)))
}

/// `GET /v1/batches/{id}`.
#[derive(Debug, Serialize)]
struct BatchView {
    id: String,
    state: BatchState,
    total_lines: u64,
    accepted: u64,
    rejected_count: u64,
    /// The first refused lines (up to `DEFAULT_MAX_REJECTED_LISTED`), in line order.
    rejected: Vec<Rejection>,
    queued: u64,
    sent: u64,
    answered: u64,
    failed: u64,
    done: bool,
}

async fn batch_status(
    State(gw): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
    let meta = meta_for(&gw.inquiries, &system, &id)?;
    let p = progress::progress(&gw.inquiries, &meta).await?;
    let state = if meta.state == BatchState::Accepting && !is_running(&meta.id) {
        // Its task is gone (the gateway restarted): uploading the same file resumes it.
        BatchState::Interrupted
    } else {
        meta.state
    };
    Ok(Json(BatchView {
        id: meta.id,
        state,
        total_lines: meta.total_lines,
        accepted: meta.accepted,
        rejected_count: meta.rejected_count,
        rejected: meta.rejected,
        queued: p.queued,
        sent: p.sent,
        answered: p.answered,
        failed: p.failed,
        done: p.done,
    }))
}

async fn batch_results(
    State(gw): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let system = system_of(&caller)?;
    let meta = meta_for(&gw.inquiries, &system, &id)?;
    let p = progress::progress(&gw.inquiries, &meta).await?;
    let file = results::render(&gw.inquiries, &meta).await?;
    let done = if p.done { "true" } else { "false" };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, RESULTS_CONTENT_TYPE),
            (header::HeaderName::from_static("x-batch-done"), done),
        ],
        file,
    ))
}
