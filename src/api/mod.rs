//! The HTTPS API, one module per audience. This file holds what they share: the router, the
//! caller's identity, and the one place where errors become HTTP answers.
//!
//! Layers, outermost first: mutual TLS (in `tls::serve`: no valid client certificate, no
//! request), body size limit, identity (the certificate's name must be a configured client),
//! role check per route, then the handler.

pub mod audit;
pub mod batch;
pub mod business;
pub mod ops;
pub mod registry;
pub mod security;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;

use crate::config::{ClientConfig, Role};
use crate::gateway::{Gateway, GatewayError};
use crate::tls::Peer;

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `invalid_check_digit`.
    pub code: String,
    /// Human-readable explanation (never contains personal data).
    pub message: String,
    /// The request field concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    /// A new error answer.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: scrub(&message.into()),
                field: None,
            },
        }
    }

    /// With the field it concerns.
    pub fn field(mut self, f: impl Into<String>) -> Self {
        self.body.field = Some(f.into());
        self
    }
}

/// Removes any run of 6 or more digits from text that may echo input (a serde message can
/// quote a number it could not parse): an individual number must never come back in an
/// error, whatever shape the client sent it in.
pub fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        if run.len() >= 6 {
            out.push('…');
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    if run.len() >= 6 {
        out.push('…');
    } else {
        out.push_str(&run);
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Invalid {
                code,
                field,
                message,
            } => {
                let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
                a.body.field = field;
                a
            }
            GatewayError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found")
            }
            GatewayError::Forbidden { code, message } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            GatewayError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            GatewayError::Store(e) => {
                tracing::error!(message = "Store failure.", error = %e);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the gateway could not store the request; nothing was kept; retry",
                )
            }
            GatewayError::Internal(detail) => {
                tracing::error!(message = "Internal error.", detail = %scrub(&detail));
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// Turns a JSON body rejection into a clear answer naming the field when serde says which.
pub fn json_error(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            // axum reports "<prefix>: <path>: <serde message>"; the path names the field.
            let detail = text
                .split_once("target type: ")
                .map(|(_, d)| d)
                .unwrap_or(&text);
            let field = text
                .split("unknown field `")
                .nth(1)
                .or_else(|| text.split("missing field `").nth(1))
                .and_then(|s| s.split('`').next())
                .map(str::to_string)
                .or_else(|| {
                    detail
                        .split_once(": ")
                        .map(|(path, _)| path)
                        .filter(|p| {
                            !p.is_empty()
                                && *p != "."
                                && p.bytes().all(|b| {
                                    b.is_ascii_alphanumeric()
                                        || b == b'_'
                                        || b == b'.'
                                        || b == b'['
                                        || b == b']'
                                })
                        })
                        .map(str::to_string)
                });
            let code = if text.contains("unknown field") {
                "unknown_field"
            } else if text.contains("check digit") {
                "invalid_check_digit"
            } else if text.contains("missing field") {
                "missing_field"
            } else {
                "invalid_field"
            };
            let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, text);
            a.body.field = field;
            a
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "send Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is larger than the gateway accepts",
        ),
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
    }
}

/// The caller: its certificate and its configured entry.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Peer,
    pub client: ClientConfig,
}

/// Appends one linkage record on its own and waits until it is durable: a staff action is
/// recorded before its answer is given.
pub async fn commit_record(gw: &Gateway, r: &renkei_records::Record) -> Result<(), ApiError> {
    let mut b = renkei_store::Batch::new();
    crate::records::append(&mut b, r);
    gw.store
        .commit(b)
        .await
        .map_err(|e| ApiError::from(GatewayError::Store(e)))?;
    Ok(())
}

impl Caller {
    /// Who did a staff action, from where, on what.
    pub fn staff_detail(
        &self,
        action: &str,
        target: Option<String>,
        touched_individual_number: bool,
    ) -> renkei_records::StaffDetail {
        renkei_records::StaffDetail {
            actor: self.client.name.to_string(),
            terminal: self.peer.addr.to_string(),
            certificate_fingerprint: Some(self.peer.fingerprint.clone()),
            action: action.to_string(),
            target,
            touched_individual_number,
        }
    }

    /// Refuses unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.client.role == role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_role",
                "this client's role may not use this endpoint",
            ))
        }
    }
}

impl FromRequestParts<Arc<Gateway>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<Peer>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_client_certificate",
                "a client certificate is required",
            )
        })?;
        let client = gw.config.client(&peer.name).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_client",
                "this client certificate is not configured in the gateway",
            )
        })?;
        Ok(Caller { peer, client })
    }
}

/// The whole API.
pub fn app(gw: Arc<Gateway>) -> Router {
    let limit = gw.config.max_body_bytes;
    Router::new()
        .merge(business::routes())
        .merge(ops::routes())
        .merge(audit::routes())
        .merge(security::routes())
        .merge(registry::routes())
        .merge(batch::routes())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_endpoint",
                "no such endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gw)
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_removes_long_digit_runs_only() {
        assert_eq!(
            scrub("invalid type: integer `621498320257`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(scrub("line 12 column 5"), "line 12 column 5");
        assert_eq!(scrub("123456"), "…");
    }
}
