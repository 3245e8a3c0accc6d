//! The one place an error becomes an HTTP answer: [`ApiError`] (status, stable `code`,
//! fixed human text, the `field` concerned) and [`JsonBody`], the JSON extractor whose
//! refusals name the field by its path and never echo serde's or the input's text.
//!
//! Every error answer is an RFC 9457 problem (`application/problem+json`): `type`
//! (`urn:renkei:problem:<code>`), `title` (the status's reason phrase), `status`, `detail`
//! (the fixed human text), and the stable `code` and `field` as extension members.
//!
//! Anything unrecognised is a plain 500 with the cause in the log (linkerd's rule): internal
//! details never reach the caller.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::util::scrub;

/// `Retry-After` of a 503 `store_unavailable`: a PostgreSQL failover takes a few seconds.
pub const STORE_RETRY_AFTER_SECS: u64 = 2;

/// What every error answer says (sent as a [`Problem`]).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `invalid_check_digit`.
    pub code: Cow<'static, str>,
    /// Human-readable explanation (never contains personal data).
    pub message: Cow<'static, str>,
    /// The request field concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (429 and 503 answers that know when to retry).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// A new error answer. `message` is scrubbed of digit runs, in case it ever carries input.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        let message = message.into();
        let message = if message.bytes().any(|b| b.is_ascii_digit()) {
            Cow::Owned(scrub(&message))
        } else {
            message
        };
        Self {
            status,
            body: ErrorBody {
                code: Cow::Borrowed(code),
                message,
                field: None,
            },
            retry_after_secs: None,
        }
    }

    /// 429 with `Retry-After`: the wait, rounded up to whole seconds (at least one).
    pub fn too_many(
        code: &'static str,
        message: &'static str,
        retry_after: std::time::Duration,
    ) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        e.retry_after_secs = Some(secs.max(1));
        e
    }

    /// With the field it concerns.
    pub fn field(mut self, f: impl Into<Cow<'static, str>>) -> Self {
        self.body.field = Some(f.into());
        self
    }

    /// 404 for a path that names nothing.
    pub fn no_such_endpoint() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_endpoint",
            "no such endpoint",
        )
    }

    /// 403 for a caller whose role may not use a route.
    pub fn wrong_role() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_role",
            "this client's role may not use this endpoint",
        )
    }

    /// 422 for a path or query value that is not of the expected shape.
    pub fn invalid(
        code: &'static str,
        field: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).field(field)
    }
}

/// The media type of error answers.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every problem `type`: a URN naming the stable code, not a page to fetch.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:renkei:problem:";

/// An error answer as RFC 9457 writes it.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: &'a str,
    pub code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ApiError {
    /// The problem document of this answer.
    pub fn problem(&self) -> Problem<'_> {
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.body.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.body.message,
            code: &self.body.code,
            field: self.body.field.as_deref(),
        }
    }

    /// 405 for a path that exists with another method.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take this method",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = match serde_json::to_vec(&self.problem()) {
            Ok(body) => (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response(),
            Err(_) => self.status.into_response(),
        };
        if let Some(secs) = self.retry_after_secs {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        r
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid {
                code,
                field,
                message,
            } => {
                let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
                a.body.field = field;
                a
            }
            Error::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found"),
            Error::Forbidden {
                code,
                field,
                message,
            } => {
                let mut a = ApiError::new(StatusCode::FORBIDDEN, code, message);
                a.body.field = field;
                a
            }
            Error::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            Error::Store(e) => {
                tracing::error!(message = "Store failure.", error = %e);
                // On PostgreSQL this is also the answer during a failover (the gateway
                // reconnects within seconds); a retry with the same Idempotency-Key never
                // stores a request twice, whether or not the first attempt was kept.
                let mut a = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the gateway could not store the request; retry it with the same Idempotency-Key",
                );
                a.retry_after_secs = Some(STORE_RETRY_AFTER_SECS);
                a
            }
            Error::Internal { context, source } => {
                tracing::error!(message = "Internal error.", context, error = %scrub(&source.to_string()));
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Error::from(e).into()
    }
}

/// A field name that may be shown back: a plain identifier without long digit runs (a JSON
/// key the client sent could itself be an individual number).
fn safe_name(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && scrub(s) == s;
    ok.then(|| s.to_string())
}

/// The text between the first pair of backticks in a serde message (a field name).
fn quoted(text: &str, after: &str) -> Option<String> {
    let rest = text.split_once(after)?.1;
    let name = rest.split('`').next()?;
    safe_name(name)
}

/// The path serde_path_to_error reports, if it is one we may show.
fn safe_path(path: &serde_path_to_error::Path) -> Option<String> {
    let p = path.to_string();
    let ok = !p.is_empty()
        && p != "."
        && p.split(['.', '[', ']'])
            .filter(|seg| !seg.is_empty())
            .all(|seg| {
                safe_name(seg).is_some() || seg.bytes().all(|b| b.is_ascii_digit()) && seg.len() < 6
            });
    ok.then_some(p)
}

/// Turns a deserialization failure into a fixed-text answer naming the field.
fn data_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = safe_path(e.path());
    let inner = e.inner().to_string();
    let join = |field: Option<String>| match (&path, field) {
        (Some(p), Some(f)) => Some(format!("{p}.{f}")),
        (None, Some(f)) => Some(f),
        (p, None) => p.clone(),
    };
    // serde's text is read here only to pick the code and the field name; it is never sent.
    let (code, kind, field) = if inner.starts_with("unknown field") {
        (
            "unknown_field",
            "unknown field",
            // serde_path_to_error's path already ends in the unknown key (when safe to show).
            path.clone(),
        )
    } else if inner.starts_with("missing field") {
        (
            "missing_field",
            "missing field",
            join(quoted(&inner, "missing field `")),
        )
    } else if inner.contains("check digit does not match") {
        (
            "invalid_check_digit",
            "check digit does not match",
            path.clone(),
        )
    } else {
        ("invalid_field", "invalid value", path.clone())
    };
    let message = match &field {
        Some(f) => format!("{f}: {kind}"),
        None => format!("the body: {kind}"),
    };
    let mut a = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    a.body.field = field.map(Cow::Owned);
    a
}

/// A JSON request body, checked for its content type and decoded with field paths.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                "send Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the body is larger than the gateway accepts",
            )
        })?;
        decode(&bytes).map(JsonBody)
    }
}

/// Decodes a JSON body (exposed for tests of the error mapping).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().is_data() {
            data_error(e)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON",
            )
        }
    })?;
    de.end().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_503_with_retry_after() {
        let e: ApiError =
            Error::Store(renkei_store::StoreError::Io("connection lost".into())).into();
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        year: u16,
    }

    #[test]
    fn refusals_name_the_field_with_fixed_text() {
        let e = decode::<Body>(br#"{"name":"a","inner":{"year":1},"nick":1}"#).unwrap_err();
        assert_eq!(
            (e.body.code.as_ref(), e.body.field.as_deref()),
            ("unknown_field", Some("nick"))
        );
        let e = decode::<Body>(br#"{"name":"a","inner":{}}"#).unwrap_err();
        assert_eq!(
            (e.body.code.as_ref(), e.body.field.as_deref()),
            ("missing_field", Some("inner.year"))
        );
        let e = decode::<Body>(br#"{"name":"a","inner":{"year":"x"}}"#).unwrap_err();
        assert_eq!(
            (e.body.code.as_ref(), e.body.field.as_deref()),
            ("invalid_field", Some("inner.year"))
        );
        assert_eq!(e.body.message, "inner.year: invalid value");
        let e = decode::<Body>(b"{").unwrap_err();
        assert_eq!(e.body.code, "malformed_json");
    }

    #[test]
    fn a_number_like_key_is_never_echoed() {
        let e =
            decode::<Body>(br#"{"name":"a","inner":{"year":1},"1234-5678-9018":1}"#).unwrap_err();
        assert_eq!(e.body.code, "unknown_field");
        let all = format!("{} {:?}", e.body.message, e.body.field);
        assert!(!all.contains("1234") && !all.contains("9018"), "{all}");
        let e =
            decode::<Body>(br#"{"name":"a","inner":{"year":1},"n123456789012":1}"#).unwrap_err();
        let all = format!("{} {:?}", e.body.message, e.body.field);
        assert!(!all.contains("123456"), "{all}");
    }
}
