//! Routes for operators: counts of what the gateway holds and how the store commits.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::error::Error;
use crate::ops::{self, OpsStats};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/ops/stats", get(stats))
}

async fn stats(State(s): State<AppState>) -> Result<Json<OpsStats>, ApiError> {
    Ok(Json(
        ops::stats(s.store.as_ref(), &s.master).map_err(Error::from)?,
    ))
}
