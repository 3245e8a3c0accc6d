//! The HTTPS API: handlers only, one module per audience, plus the one error type
//! ([`error`]), the caller and roles ([`auth`]) and the handlers' state ([`state`]).
//!
//! The request pipeline, outermost first (mutual TLS comes before: in `tls::serve`, no valid
//! client certificate, no request):
//! 1. body size limit — [`DefaultBodyLimit`] at `max_body_bytes` (file uploads stream and
//!    count against `max_batch_bytes` in their handlers);
//! 2. authentication — [`auth::authenticate`]: the certificate's name must be a configured
//!    client, which gives the caller's role;
//! 3. fair share — [`limits::fair_share`]: the caller's token bucket and requests in flight
//!    (429 with `Retry-After` beyond them);
//! 4. staff session — [`session::require_session`]: a staff caller (security, auditor,
//!    operator, admin) must also send `Authorization: Bearer` of a live session signed in with
//!    the same certificate (401 `session_required` / `session_expired` / `session_mismatch`);
//!    only `POST /v1/session` and `/healthz` go without; business systems and the
//!    resident-record feed stay certificate-only;
//! 5. role — [`auth::require`] per group of routes: a group names the roles it serves;
//! 6. the handler.
//!
//! Around them all, [`unread::close_if_unread`] ends the connection after an answer sent
//! before the request's body was read whole.
//!
//! The web console ([`console`]: `/console/…`, the page and its assets) takes steps 1–3 and
//! 5 but not 4: its files hold no data, and the page reaches data only through the API
//! routes above, with the session (see `console.rs` for why).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod business;
pub mod console;
pub mod copies;
pub mod error;
pub mod limits;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod provision_requests;
pub mod registry;
pub mod security;
pub mod session;
pub mod state;
pub mod unread;
pub mod upload;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;

use crate::config::Role;
pub use auth::Caller;
pub use error::{ApiError, JsonBody};
pub use state::AppState;

/// The staff roles (they sign in; business systems and the feed do not).
const STAFF: &[Role] = &[Role::Security, Role::Auditor, Role::Operator, Role::Admin];

/// A group of routes served only to `roles`.
fn only(roles: &'static [Role], routes: Router<AppState>) -> Router<AppState> {
    routes.route_layer(from_fn(move |req, next| auth::require(roles, req, next)))
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let fair = limits::Limiters::new(&state.config);
    // The console: no session layer (its files hold no data), its own security headers on
    // every answer, refusals included.
    let console = only(STAFF, console::routes())
        .layer(from_fn_with_state(fair.clone(), limits::fair_share))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn(console::security_headers));
    let api = Router::new()
        .merge(only(&[Role::Business], business::routes()))
        .merge(only(&[Role::Business], batch::routes()))
        .merge(only(&[Role::Business], copies::routes()))
        .merge(only(&[Role::Business], provision_requests::routes()))
        // Imports and every life-cycle change come only from the resident-record feed.
        .merge(only(&[Role::ResidentFeed], registry::feed_routes()))
        .merge(only(
            &[Role::Business, Role::Security, Role::ResidentFeed],
            registry::search_routes(),
        ))
        .merge(only(&[Role::Security], registry::security_routes()))
        .merge(only(&[Role::Security], security::routes()))
        .merge(only(&[Role::Auditor], audit::routes()))
        .merge(only(&[Role::Operator], ops::routes()))
        .merge(only(&[Role::Admin], admin::routes()))
        .merge(only(STAFF, session::routes()))
        .merge(only(&[Role::Admin], session::admin_routes()))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(openapi::routes())
        .fallback(|| async { ApiError::no_such_endpoint() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(from_fn_with_state(state.clone(), session::require_session))
        .layer(from_fn_with_state(fair, limits::fair_share))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(console)
        .merge(api)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn(unread::close_if_unread))
        .layer(from_fn(observe::track))
        .with_state(state)
}
