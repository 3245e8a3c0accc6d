//! The outermost layer of the API: gives every request an id (returned as `x-request-id`
//! and carried by every log event of the request), times it, counts it by route template in
//! the metrics, and writes one access-log line. Only the route template is written — never
//! the raw path, which can hold a business number — and never a caller-supplied header.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::tls::Peer;

/// Route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The response header naming the request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A new request id: `RQ` and 26 letters and digits, time-ordered (like an inquiry id).
fn request_id() -> String {
    crate::util::new_id("RQ")
}

/// Layer: request id, latency metric and access-log line.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let client = req
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "-".to_string(), |p| p.name.clone());
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    crate::metrics::global().request(&route, &method, status, took);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    tracing::info!(
        parent: &span,
        message = "Request.",
        client,
        method,
        route,
        status,
        // Whole microseconds over 1000: at most three decimals (as_secs_f64() * 1000.0
        // printed float noise such as 0.7476050000000001).
        latency_ms = took.as_micros() as f64 / 1000.0
    );
    resp
}
