//! Routes for the batch API (being built).

use std::sync::Arc;

use axum::Router;

use crate::gateway::Gateway;

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
}
