//! The web console for staff at `/console/`: a page, its script and its style sheet, embedded
//! in the binary and served on the API port (mutual TLS: the browser presents the staff
//! member's certificate), plus two small answers the page needs before it signs in (who the
//! certificate is, and the era table for 和暦).
//!
//! Design, and why:
//! - **The page calls the JSON API; it holds no data of its own.** `app.js` signs in with
//!   `POST /v1/session` and sends `Authorization: Bearer` from `sessionStorage` on every call,
//!   so every check (session, idle timeout, lockout, role, staff-action records) is the API's
//!   own, and nothing here can show what the API would refuse. Assets carry no data, so they
//!   are served without a session (but only to a configured staff certificate).
//! - **A saved checkpoint is checked in the browser**: the page reads the auditor's saved
//!   checkpoint file (and key file, or `GET /v1/audit/public-keys`), takes today's checkpoint
//!   and the proof from `GET /v1/audit/consistency`, and verifies both ECDSA P-256 signatures
//!   with WebCrypto and the RFC 9162 consistency proof itself (the checks of
//!   `renkei audit verify --since`), so the gateway never vouches for its own log.
//! - **CSRF**: every state-changing call is `fetch` with a bearer header a cross-site page
//!   cannot set; the console uses no cookie at all, so there is no ambient credential to ride.
//! - **No outside resource, strict CSP** ([`CSP`]): no inline script or style, nothing from
//!   another origin, no framing (`frame-ancestors 'none'` and `X-Frame-Options: DENY`).
//! - **No front-end build**: three hand-written files under `assets/console/`.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{ApiError, AppState, Caller};

/// The Content Security Policy of every console answer: only this origin's script, style and
/// API; no inline code, no framing, no form posting anywhere, no `<base>` rewriting.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

const INDEX_HTML: &str = include_str!("../../assets/console/index.html");
const APP_JS: &str = include_str!("../../assets/console/app.js");
const APP_CSS: &str = include_str!("../../assets/console/app.css");

/// The console's routes (mounted for the staff roles only, outside the session layer: the
/// assets hold no data; the page's API calls carry the session).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/console/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/console/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/console/whoami", get(whoami))
        .route("/console/eras.json", get(eras))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The certificate the browser presented: its client name and role (no personal data), so
/// the page can offer the right sign-in name and menu before there is a session.
async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({
        "client": caller.client.name.as_str(),
        "role": caller.client.role,
    }))
}

/// The era table in use (`schemas/eras.toml`), for the page's 和暦 dates.
async fn eras() -> Result<Json<Value>, ApiError> {
    let table = renkei_convert::era::EraTable::builtin()
        .map_err(|e| crate::error::Error::internal("console eras", e.to_string()))?;
    let eras: Vec<Value> = table
        .eras()
        .iter()
        .map(|e| json!({"name": e.name, "start": e.start.to_string()}))
        .collect();
    Ok(Json(json!({ "eras": eras })))
}

/// Layer: the console's security headers on every answer (`app` puts it outermost on the
/// console's routes, so refusals carry them too).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let fixed: [(HeaderName, &'static str); 7] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}
