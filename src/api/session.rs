//! Staff sign-in over HTTP: `POST /v1/session` (password + TOTP → a bearer token),
//! `DELETE /v1/session`, `POST /v1/session/password` (one's own password); the layer
//! [`require_session`] that makes every staff caller present a live session of a user bound
//! to its certificate; and the admin's staff-user routes (`/v1/staff/users…`). The work and
//! its records are in `staff`.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState, Caller, JsonBody};
use crate::staff::{Attempt, SignedIn, StaffError};

impl From<StaffError> for ApiError {
    fn from(e: StaffError) -> Self {
        let status = match &e {
            StaffError::SignInFailed
            | StaffError::SessionRequired
            | StaffError::SessionExpired
            | StaffError::SessionMismatch => StatusCode::UNAUTHORIZED,
            StaffError::Locked => StatusCode::LOCKED,
            StaffError::NoSuchUser => StatusCode::NOT_FOUND,
            StaffError::UserExists => StatusCode::CONFLICT,
            StaffError::BadUserName | StaffError::WeakPassword => StatusCode::UNPROCESSABLE_ENTITY,
            StaffError::Store(s) => return crate::error::Error::Store(s.clone()).into(),
            StaffError::Corrupt(_) | StaffError::Credential(_) => {
                return crate::error::Error::internal("staff sign-in", e).into()
            }
        };
        let field = match &e {
            StaffError::BadUserName => Some("user"),
            StaffError::WeakPassword => Some("new_password"),
            _ => None,
        };
        let err = ApiError::new(status, e.code(), e.to_string());
        match field {
            Some(f) => err.field(f),
            None => err,
        }
    }
}

/// Sign-in and sign-out (every staff role).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/session", post(sign_in).delete(sign_out))
        .route("/v1/session/password", post(change_password))
}

/// Staff-user management (admin).
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/users", get(list).post(add))
        .route("/v1/staff/users/{name}/disable", post(disable))
        .route("/v1/staff/users/{name}/enable", post(enable))
        .route("/v1/staff/users/{name}/reset", post(reset))
}

/// The bearer token of a request, if it sent one.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Layer: a staff caller (security, auditor, operator, admin) must send
/// `Authorization: Bearer <token>` of a live session signed in with the same certificate;
/// only `POST /v1/session` (signing in) and `/healthz` go without. Business systems and the
/// resident-record feed are certificate-only and pass untouched.
pub async fn require_session(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    let exempt =
        path == "/healthz" || (path == "/v1/session" && req.method() == axum::http::Method::POST);
    if !caller.client.role.is_staff() || exempt {
        return next.run(req).await;
    }
    let Some(token) = bearer(&req) else {
        return ApiError::from(StaffError::SessionRequired).into_response();
    };
    match s.staff.check(token, &caller.peer.name).await {
        Ok(signed) => {
            let mut c = caller;
            c.user = Some(signed.user.clone());
            req.extensions_mut().insert(c);
            req.extensions_mut().insert(signed);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user: String,
    password: String,
    totp: String,
}

async fn sign_in(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let who = caller.staff_detail("session.sign_in", None, false);
    let session = s
        .staff
        .sign_in(
            &who,
            &Attempt {
                user: &b.user,
                password: &b.password,
                totp: &b.totp,
                certificate: &caller.peer.name,
            },
        )
        .await?;
    let body = json!({"token": session.token.as_str(), "expires_at": session.expires_at});
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/v1/session"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn sign_out(
    State(s): State<AppState>,
    caller: Caller,
    Extension(signed): Extension<SignedIn>,
) -> Result<StatusCode, ApiError> {
    let who = caller.staff_detail("session.sign_out", None, false);
    s.staff.sign_out(&who, &signed).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    totp: String,
    new_password: String,
}

async fn change_password(
    State(s): State<AppState>,
    caller: Caller,
    Extension(signed): Extension<SignedIn>,
    JsonBody(b): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let who = caller.staff_detail("staff.password_change", None, false);
    s.staff
        .change_password(&who, &signed, &b.current_password, &b.totp, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "users": s.staff.list()? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    user: String,
    /// The client certificate the user signs in with (default: the user's own name).
    #[serde(default)]
    certificate: Option<String>,
}

async fn add(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let cert = b.certificate.unwrap_or_else(|| b.user.clone());
    if !s.config.client(&cert).is_some_and(|c| c.role.is_staff()) {
        return Err(ApiError::invalid(
            "not_a_staff_client",
            "certificate",
            "certificate: must name a configured client with a staff role",
        ));
    }
    let who = caller.staff_detail("staff.user_add", None, false);
    let first = s.staff.add_user(&who, &b.user, &cert).await?;
    let mut resp = (StatusCode::CREATED, Json(first.to_json())).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/staff/users/{}", first.user)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn disable(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = caller.staff_detail("staff.user_disable", None, false);
    s.staff.disable(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = caller.staff_detail("staff.user_enable", None, false);
    s.staff.enable(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let who = caller.staff_detail("staff.user_reset", None, false);
    let first = s.staff.reset(&who, &name).await?;
    let mut resp = Json(first.to_json()).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
