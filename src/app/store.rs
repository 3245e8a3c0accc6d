//! The store behind the gateway, by `[store] backend`: [`open`] for `serve`, [`migrate`] for
//! `renkei store migrate`, and [`copy`] for `renkei store copy` (a whole deployment's state
//! from one backend to the other, with the record chain verified on arrival).

use std::sync::Arc;

use renkei_store::postgres::{Migrated, PgError, PgOptions, PgPassword, PgStore};
use renkei_store::sled_store::SledStore;
use renkei_store::{Batch, Store, StoreError, Tree};

use crate::config::{GatewayConfig, StoreBackend};
use crate::keyring::KeyState;
use crate::lease;

/// Entries read from the source and written to the target per batch.
const COPY_BATCH: usize = 1_000;

/// Why the store could not be opened, migrated or copied.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    #[error("{0}")]
    Pg(#[from] PgError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("store.url is not set: `renkei store` needs the PostgreSQL database in [store] url")]
    NoUrl,
    #[error("store.password_file {path}: {source}")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
    #[error("store.password_env: the environment variable {0} is not set")]
    PasswordEnv(String),
    #[error("the target store is not empty (tree {0} holds entries): copy only into a new store")]
    TargetNotEmpty(&'static str),
    #[error("a gateway holds the dispatch lease on the source database (until {until}): stop every gateway before copying")]
    SourceInUse { until: String },
    #[error("keys: {0}")]
    Keys(#[from] crate::keyring::KeyError),
    #[error("records on the target do not verify: {0}")]
    Verify(String),
}

/// The PostgreSQL options from `[store]`: the password from its file or variable, if any.
pub fn pg_options(config: &GatewayConfig) -> Result<PgOptions, StoreSetupError> {
    let s = &config.store;
    let password = if let Some(path) = &s.password_file {
        let text =
            std::fs::read_to_string(path).map_err(|source| StoreSetupError::PasswordFile {
                path: path.display().to_string(),
                source,
            })?;
        Some(PgPassword::new(text.lines().next().unwrap_or_default()))
    } else if let Some(var) = &s.password_env {
        Some(PgPassword::new(
            &std::env::var(var).map_err(|_| StoreSetupError::PasswordEnv(var.clone()))?,
        ))
    } else {
        None
    };
    Ok(PgOptions {
        synchronous_commit: s.synchronous_commit,
        password,
        ..PgOptions::default()
    })
}

fn pg_url(config: &GatewayConfig) -> Result<&str, StoreSetupError> {
    config.store.url.as_deref().ok_or(StoreSetupError::NoUrl)
}

fn open_sled(config: &GatewayConfig) -> Result<Arc<dyn Store>, StoreSetupError> {
    Ok(SledStore::open(
        &config.data_dir.join("store"),
        config.durability,
    )?)
}

fn open_pg(config: &GatewayConfig) -> Result<Arc<dyn Store>, StoreSetupError> {
    Ok(PgStore::open(pg_url(config)?, pg_options(config)?)?)
}

/// Opens the configured store (PostgreSQL refuses a database it has no schema for).
pub fn open(config: &GatewayConfig) -> Result<Arc<dyn Store>, StoreSetupError> {
    open_backend(config, config.store.backend)
}

/// Opens the store of `backend` with `config`'s locations, whichever backend is configured.
pub fn open_backend(
    config: &GatewayConfig,
    backend: StoreBackend,
) -> Result<Arc<dyn Store>, StoreSetupError> {
    match backend {
        StoreBackend::Sled => open_sled(config),
        StoreBackend::Postgres => open_pg(config),
    }
}

/// Applies the embedded schema migrations to the configured PostgreSQL database.
pub fn migrate(config: &GatewayConfig) -> Result<Migrated, StoreSetupError> {
    Ok(PgStore::migrate_with(
        pg_url(config)?,
        &pg_options(config)?,
    )?)
}

/// What [`copy`] moved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Copied {
    /// Entries per tree, by the tree's name (trees with none are left out).
    pub trees: Vec<(&'static str, u64)>,
    /// Linkage records on the target, all verified against their signed checkpoints.
    pub records_verified: u64,
}

/// Copies every tree from `from` to `to` (which must be empty; stop every gateway first),
/// then verifies the record chain on the target with the deployment's checkpoint keys.
pub async fn copy(
    config: &GatewayConfig,
    from: StoreBackend,
    to: StoreBackend,
) -> Result<Copied, StoreSetupError> {
    let source = open_backend(config, from)?;
    if let Some(until) = lease::live_holder(source.as_ref())? {
        return Err(StoreSetupError::SourceInUse { until });
    }
    let target = open_backend(config, to)?;
    for tree in Tree::ALL {
        if !target.range(tree, &[], &[], 1)?.is_empty() {
            return Err(StoreSetupError::TargetNotEmpty(tree.name()));
        }
    }
    let mut copied = Copied::default();
    for tree in Tree::ALL {
        let mut start: Vec<u8> = Vec::new();
        let mut n = 0u64;
        loop {
            let page = source.range(tree, &start, &[], COPY_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            start.clone_from(last);
            start.push(0);
            let full = page.len() == COPY_BATCH;
            let mut b = Batch::new();
            for (k, v) in page {
                b.put(tree, k, v);
                n += 1;
            }
            target.commit(b).await?;
            if !full {
                break;
            }
        }
        if n > 0 {
            copied.trees.push((tree.name(), n));
        }
    }
    // The last commit returned only after every earlier one was durable; now read the
    // chain back from the target, as an auditor's live verification would.
    let keyring = KeyState::load(
        config.agency_code.clone(),
        &config.keys.dir,
        &config.keys.master_key_file,
    )?;
    let cps = crate::records::log::checkpoints(target.as_ref())
        .map_err(|e| StoreSetupError::Verify(e.to_string()))?;
    let keys = crate::records::checkpoint::checkpoint_key_set(&keyring)
        .map_err(|e| StoreSetupError::Verify(e.to_string()))?;
    let mut bad: Option<String> = None;
    let entries = crate::records::log::entries(target.as_ref(), 0).map_while(|e| match e {
        Ok(x) => Some(x),
        Err(err) => {
            bad = Some(err.to_string());
            None
        }
    });
    let report = renkei_records::verify_entries_with(entries, &cps, &keys)
        .map_err(|e| StoreSetupError::Verify(e.to_string()))?;
    if let Some(e) = bad {
        return Err(StoreSetupError::Verify(e));
    }
    copied.records_verified = report.records;
    Ok(copied)
}
