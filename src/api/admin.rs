//! Routes for administrators: `POST /v1/admin/config/reload` re-reads `renkei.toml` and the
//! permission table and puts them in force whole, or changes nothing and names every
//! problem. Each reload, applied or refused, is a staff-action record; [`record_reload`] is
//! shared with the SIGHUP handler in `app`. `POST /v1/admin/backup` streams a consistent
//! backup of the running gateway as a tar stream (`crate::backup`; `renkei backup`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use renkei_store::Store;
use serde_json::json;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{ApiError, AppState, Caller};
use crate::backup::BackupError;
use crate::error::Error;
use crate::settings::Reloaded;
use crate::tls::ChannelBody;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/config/reload", post(reload))
        .route("/v1/admin/backup", post(backup))
}

/// Pieces of the backup stream queued between the tar writer and the connection.
const BACKUP_QUEUE: usize = 8;
/// Bytes gathered before a piece is sent.
const BACKUP_PIECE: usize = 256 * 1024;

/// The blocking side of the backup's [`ChannelBody`]: a client that went away ends the writing.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `POST /v1/admin/backup`: takes the backup (the store's dump pauses commits only while it
/// is copied), records it as a staff action, then streams it.
async fn backup(State(s): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Some(config_path) = s.config_path.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backup_unavailable",
            "this gateway was started without a configuration file to back up",
        ));
    };
    let (config, store, keys) = (s.config.clone(), s.store.clone(), s.keys.keyring.clone());
    let made = tokio::task::spawn_blocking(move || {
        crate::backup::make(&config_path, &config, store.as_ref(), &keys)
    })
    .await
    .map_err(|e| Error::internal("taking a backup", e))?;
    let made = match made {
        Ok(m) => m,
        Err(BackupError::Postgres) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backup_unsupported",
                "a PostgreSQL store is backed up with pg_basebackup or pg_dump, not through the gateway",
            ))
        }
        Err(BackupError::Store(e)) => return Err(Error::from(e).into()),
        Err(e) => return Err(Error::internal("taking a backup", e).into()),
    };
    let mut r = crate::records::base(RecordKind::StaffAction, RecordResult::Done);
    r.reason = Some(format!(
        "backup: {} store entries, {} files",
        made.entries,
        made.files.len()
    ));
    r.staff = Some(caller.staff_detail("backup.make", None, false));
    crate::records::record_now(s.store.as_ref(), &r)
        .await
        .map_err(Error::from)?;
    tracing::info!(
        message = "Backup taken.",
        entries = made.entries,
        files = made.files.len(),
        dump_bytes = made.dump_len
    );
    let (tx, rx) = mpsc::channel(BACKUP_QUEUE);
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(BACKUP_PIECE, ChannelWriter(tx.clone()));
        if let Err(error) = crate::backup::write_tar(made, out) {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(message = "Backup stream failed.", %error);
            }
            let _ = tx.blocking_send(Err(error));
        }
    });
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        axum::body::Body::new(ChannelBody::new(rx, None)),
    )
        .into_response())
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
