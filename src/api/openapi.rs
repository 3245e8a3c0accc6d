//! The API's OpenAPI 3.1 document, kept in the repo (`openapi/renkei.json`) and served as it
//! is at `GET /openapi.json` to any authenticated client; tests/openapi.rs keeps it and the
//! router in step.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("../../openapi/renkei.json");

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
