//! Routes for operators: counts of what the gateway holds and how the store commits (on the
//! API, for the operator role); and the operations listener's own small router ([`probes`]):
//! `/healthz`, `/readyz` and `/metrics` in plain HTTP, no client certificate.

use axum::extract::State;
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
    Router::new().route("/v1/ops/stats", get(stats))
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

/// 200 when every check passes, else 503 naming the failing ones; `warnings` lists what to
/// act on soon (certificates expiring within 30 days) without failing readiness.
async fn readyz(State(r): State<Readiness>) -> Response {
    let checks = r.checks().await;
    let warnings = r.warnings();
    let failing: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "not_ready" },
        "failing": failing,
        "checks": checks,
        "warnings": warnings,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(r): State<Readiness>) -> Response {
    ops::refresh_metrics(&r.store, &r.keyring);
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        crate::metrics::global().encode(),
    )
        .into_response()
}
