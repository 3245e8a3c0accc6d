//! Routes for operators: counts of what the gateway holds and how the store commits.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, Caller};
use crate::config::Role;
use crate::gateway::Gateway;
use renkei_store::{CommitStats, Tree};

/// `GET /v1/ops/stats`.
#[derive(Debug, Serialize)]
pub struct OpsStats {
    pub inquiries: usize,
    pub persons: usize,
    pub scheduled_jobs: usize,
    pub awaiting_code: usize,
    pub records: usize,
    pub commits: CommitStats,
    pub master_info: crate::master::MasterStatus,
}

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new().route("/v1/ops/stats", get(stats))
}

async fn stats(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<OpsStats>, ApiError> {
    caller.require(Role::Operator)?;
    let n = |t: Tree| {
        gw.store
            .len(t)
            .map_err(|e| ApiError::from(crate::gateway::GatewayError::Store(e)))
    };
    Ok(Json(OpsStats {
        inquiries: n(Tree::Inquiries)?,
        persons: n(Tree::Persons)?,
        scheduled_jobs: n(Tree::Due)?,
        awaiting_code: n(Tree::AwaitingCode)?,
        records: n(Tree::Records)?,
        commits: gw.store.stats(),
        master_info: match gw.master.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        },
    }))
}
