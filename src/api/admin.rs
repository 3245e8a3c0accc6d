//! Routes for administrators: `POST /v1/admin/config/reload` re-reads `renkei.toml` and the
//! permission table and puts them in force whole, or changes nothing and names every
//! problem. Each reload, applied or refused, is a staff-action record; [`record_reload`] is
//! shared with the SIGHUP handler in `app`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use renkei_store::Store;
use serde_json::json;

use super::{ApiError, AppState, Caller};
use crate::error::Error;
use crate::settings::Reloaded;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/admin/config/reload", post(reload))
}

/// Records a reload (applied or refused) and waits until the record is durable.
pub async fn record_reload(
    store: &dyn Store,
    staff: StaffDetail,
    outcome: &Result<Reloaded, Vec<String>>,
) -> Result<(), Error> {
    let (result, reason) = match outcome {
        Ok(r) => (
            RecordResult::Done,
            format!(
                "applied: {} clients, {} permission rows",
                r.clients, r.permission_rows
            ),
        ),
        Err(p) => (
            RecordResult::Refused,
            format!("refused: {} problems; nothing changed", p.len()),
        ),
    };
    let mut r = crate::records::base(RecordKind::StaffAction, result);
    r.reason = Some(reason);
    r.staff = Some(staff);
    crate::records::record_now(store, &r).await?;
    Ok(())
}

async fn reload(State(s): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Some(reloader) = s.reloader.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "reload_unavailable",
            "this gateway was started without a configuration file to reload",
        ));
    };
    let outcome = tokio::task::spawn_blocking(move || reloader.reload())
        .await
        .map_err(|e| Error::internal("reloading the configuration", e))?;
    let staff = caller.staff_detail("config.reload", None, false);
    record_reload(s.store.as_ref(), staff, &outcome).await?;
    Ok(match outcome {
        Ok(done) => (
            StatusCode::OK,
            Json(json!({"status": "applied", "reloaded": done})),
        )
            .into_response(),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": "config_invalid",
                "message": "the configuration was not reloaded; the one in force stays",
                "problems": problems,
            })),
        )
            .into_response(),
    })
}
