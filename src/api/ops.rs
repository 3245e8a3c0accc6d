//! Routes for operators: counts of what the gateway holds and how the store commits (on the
//! API, for the operator role); and the operations listener's own small router ([`probes`]):
//! `/healthz`, `/readyz` and `/metrics` in plain HTTP, no client certificate.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, AppState};
use crate::error::Error;
use crate::ops::{self, OpsStats, Readiness};

/// The content type of `/metrics` (the OpenMetrics text Prometheus reads).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ops/stats", get(stats))
        .route("/v1/ops/business-stats", get(business_stats))
        .route("/v1/ops/batches", get(batches))
        .route("/v1/ops/readiness", get(readiness))
        .route("/v1/ops/queue", get(queue))
        .route("/v1/ops/throughput", get(throughput))
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD` of the business statistics.
#[derive(Debug, serde::Deserialize)]
struct DateRange {
    from: Option<String>,
    to: Option<String>,
}

/// A `YYYY-MM-DD` date (checked as a calendar date), or a fixed-text refusal naming `field`.
fn date(v: Option<String>, field: &'static str) -> Result<String, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match v {
        Some(d) if time::Date::parse(&d, &format).is_ok() => Ok(d),
        _ => Err(ApiError::invalid(
            "invalid_date",
            field,
            "expected a date YYYY-MM-DD",
        )),
    }
}

/// Finished inquiries per day × business system × procedure × item × result.
async fn business_stats(
    State(s): State<AppState>,
    q: Result<Query<DateRange>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "unknown or malformed query parameters",
        )
    })?;
    let (from, to) = (date(q.from, "from")?, date(q.to, "to")?);
    if from > to {
        return Err(ApiError::invalid(
            "invalid_date",
            "to",
            "the range ends before it starts",
        ));
    }
    let store = s.store.clone();
    let (f, t) = (from.clone(), to.clone());
    let rows = tokio::task::spawn_blocking(move || ops::business_stats(store.as_ref(), &f, &t))
        .await
        .map_err(|e| Error::internal("ops", e.to_string()))?
        .map_err(Error::from)?;
    Ok(Json(json!({"from": from, "to": to, "rows": rows})))
}

/// Every batch with its state and progress (counts only).
async fn batches(State(s): State<AppState>) -> Result<Json<Vec<ops::BatchRow>>, ApiError> {
    Ok(Json(ops::batches(&s.inquiries).await?))
}

async fn stats(State(s): State<AppState>) -> Result<Json<OpsStats>, ApiError> {
    Ok(Json(
        ops::stats(s.store.as_ref(), &s.master).map_err(Error::from)?,
    ))
}

/// The operations listener's routes.
pub fn probes(r: Readiness) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "alive"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::no_such_endpoint() })
        .with_state(r)
}

/// The readiness answer: whether every check passes, and the body naming the failing ones;
/// `warnings` lists what to act on soon (certificates expiring within 30 days) without
/// failing readiness.
async fn readiness_body(r: &Readiness) -> (bool, serde_json::Value) {
    let (checks, store) = r.checks_and_store().await;
    let warnings = r.warnings();
    let failing: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let ready = failing.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "failing": failing,
        "checks": checks,
        "store": store,
        "warnings": warnings,
    });
    (ready, body)
}

/// 200 when every check passes, else 503 (a load balancer reads the status).
async fn readyz(State(r): State<Readiness>) -> Response {
    let (ready, body) = readiness_body(&r).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The same checks for an operator on the API (the console's readiness page): always 200,
/// `status` says ready or not.
async fn readiness(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(readiness_body(&s.readiness).await.1)
}

/// Every outcome a platform exchange is counted under (`ok` and `UplinkError::code`).
const PLATFORM_OUTCOMES: [&str; 5] = [
    "ok",
    "platform_closed",
    "platform_unavailable",
    "platform_fault",
    "platform_answer_untrusted",
];

/// Queue depth ([`ops::queue_depth`], the same reading `/v1/ops/stats` shows): inquiries by
/// status (counts only), jobs scheduled and persons awaiting a code; and, since the process
/// started, inquiries accepted and finished and platform exchanges by outcome.
async fn queue(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = s.store.clone();
    let depth = tokio::task::spawn_blocking(move || ops::queue_depth(store.as_ref()))
        .await
        .map_err(|e| Error::internal("ops queue", e.to_string()))?
        .map_err(Error::from)?;
    let m = crate::metrics::global();
    let finished = |status: &str| {
        m.inquiries_finished
            .get(&crate::metrics::StatusLabel {
                status: status.to_string(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    };
    let platform: serde_json::Map<String, serde_json::Value> = PLATFORM_OUTCOMES
        .iter()
        .map(|&outcome| {
            let n = m
                .platform_requests
                .get(&crate::metrics::OutcomeLabel { outcome })
                .map(|c| c.get())
                .unwrap_or(0);
            (outcome.to_string(), json!(n))
        })
        .collect();
    Ok(Json(json!({
        "inquiries_by_status": depth.inquiries_by_status,
        "scheduled_jobs": depth.scheduled_jobs,
        "awaiting_code": depth.awaiting_code,
        "since_start": {
            "accepted": m.inquiries_accepted.get(),
            "answered": finished("answered"),
            "failed": finished("failed"),
            "platform_requests": platform,
        },
    })))
}

/// `GET /v1/ops/throughput`: inquiries accepted, answered and failed per minute over the last
/// hour, oldest minute first (always [`crate::metrics::THROUGHPUT_MINUTES`] entries; counts
/// since the process started).
async fn throughput() -> Json<serde_json::Value> {
    Json(json!({
        "minutes": crate::metrics::THROUGHPUT_MINUTES,
        "series": crate::metrics::global().throughput.last_hour(),
    }))
}

async fn metrics(State(r): State<Readiness>) -> Response {
    ops::refresh_metrics(&r.store, &r.keyring);
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        crate::metrics::global().encode(),
    )
        .into_response()
}
