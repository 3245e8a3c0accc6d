//! The outermost layer of the API: times every request and counts it by route template
//! (never the raw path, which can hold a business number) in the metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Layer: observes the request's latency under its route template.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    crate::metrics::global().request(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}
