//! Routes for batch inquiries (business systems): upload a municipal inquiry file, follow its
//! progress, download its results file.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use renkei_ids::SystemId;
use serde::Serialize;

use super::{ApiError, AppState, Caller};
use crate::batch::accept::{is_running, upload};
use crate::batch::spool::{try_slot, SpoolError, SpoolWriter};
use crate::batch::{meta_for, progress, results, BatchState, Rejection};
use crate::error::Error;

/// Media type of the results file (CP932 is Microsoft's Shift_JIS, registered as
/// `Windows-31J`).
pub const RESULTS_CONTENT_TYPE: &str = "text/csv; charset=Windows-31J";
/// `Retry-After` for a system at its cap of batches in progress: accepting a large batch
/// takes tens of seconds, so asking again within the minute is soon enough.
const BATCH_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

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

/// `POST /v1/inquiries:batch`: the body is streamed to a spool file (never held whole),
/// within `max_batch_bytes`, and made durable before the batch is registered. A system with
/// `max_batches_per_system` batches in progress (receiving or accepting) gets 429.
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
    let Some(slot) = try_slot(&system, gw.config.limits.max_batches_per_system) else {
        return Err(ApiError::too_many(
            "too_many_batches",
            "this system has as many batches in progress as it may; retry when one is accepted",
            BATCH_RETRY,
        ));
    };
    let spool_failed = |e: SpoolError| match e {
        SpoolError::TooLarge => too_large(limit),
        SpoolError::Io(e) => Error::internal("spooling a batch upload", e).into(),
    };
    let mut spool = SpoolWriter::create(&gw.config.data_dir, limit as u64)
        .await
        .map_err(spool_failed)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "upload_cut_short",
                "the batch file did not arrive whole",
            )
        })?;
        if let Ok(chunk) = frame.into_data() {
            spool.write(&chunk).await.map_err(spool_failed)?;
        }
    }
    if spool.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_file",
            "the batch file is empty",
        ));
    }
    let spooled = spool.finish().await.map_err(spool_failed)?;
    let up = upload(&gw.inquiries, &system, spooled, slot).await?;
    let at = super::business::location(&format!("/v1/batches/{}", up.id))?;
    Ok((StatusCode::ACCEPTED, at, Json(up)))
}

/// A results file as it is rendered: the pieces [`results::stream`] hands over.
struct Chunks(tokio::sync::mpsc::Receiver<results::Chunk>);

impl hyper::body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// `GET /v1/batches/{id}`.
#[derive(Debug, Serialize)]
struct BatchView {
    id: String,
    status: BatchState,
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
        status: state,
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
    let file = Body::new(Chunks(results::stream(gw.inquiries.clone(), meta)));
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
