//! Who is calling, as tower layers: [`authenticate`] turns the connection's client
//! certificate into a [`Caller`] (a configured client with a role), and [`require`] lets a
//! group of routes through only for the roles named. Handlers read the caller; they never
//! check roles themselves (where a route serves two roles, it reads which one it has).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use renkei_records::StaffDetail;

use super::error::ApiError;
use super::state::AppState;
use crate::config::{ClientConfig, Role};
use crate::tls::Peer;

/// The caller: its certificate and its configured entry, and for staff the signed-in user
/// (set by `session::require_session`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Peer,
    pub client: ClientConfig,
    pub user: Option<String>,
}

impl Caller {
    /// Who did a staff action, from where, on what.
    pub fn staff_detail(
        &self,
        action: &str,
        target: Option<String>,
        touched_individual_number: bool,
    ) -> StaffDetail {
        StaffDetail {
            actor: self
                .user
                .clone()
                .unwrap_or_else(|| self.client.name.to_string()),
            terminal: self.peer.addr.to_string(),
            certificate_fingerprint: Some(self.peer.fingerprint.clone()),
            action: action.to_string(),
            target,
            touched_individual_number,
        }
    }

    /// True when the caller has `role`.
    pub fn is(&self, role: Role) -> bool {
        self.client.role == role
    }
}

/// Layer: resolves the caller from the client certificate (set by the TLS server).
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_client_certificate",
            "a client certificate is required",
        )
        .into_response();
    };
    let Some(client) = state.settings.current().config.client(&peer.name).cloned() else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_client",
            "this client certificate is not configured in the gateway",
        )
        .into_response();
    };
    req.extensions_mut().insert(Caller {
        peer,
        client,
        user: None,
    });
    next.run(req).await
}

/// Layer: only callers with one of `roles` get through.
pub async fn require(roles: &'static [Role], req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(c) if roles.contains(&c.client.role) => next.run(req).await,
        _ => ApiError::wrong_role().into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_client_certificate",
                "a client certificate is required",
            )
        })
    }
}
