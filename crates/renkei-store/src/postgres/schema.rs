//! The PostgreSQL schema: embedded, numbered migrations recorded in `renkei_schema_version`,
//! applied by [`super::PgStore::migrate`] and checked (never applied) by
//! [`super::PgStore::open`].

use tokio_postgres::{Client, GenericClient};

use super::PgError;

/// One step of the schema. Steps are applied in order, each in the migration transaction,
/// and never edited once released: a change is a new step.
struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

/// Every tree in one table. `key` is `bytea`, which PostgreSQL orders bytewise (shorter
/// prefix first), exactly as sled orders keys, so ranges and prefix scans agree on both
/// backends. The primary key's B-tree on `(tree, key)` serves every read.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "renkei_kv: every tree in one (tree, key, value) table",
    sql: "CREATE TABLE renkei_kv (
              tree smallint NOT NULL,
              key bytea NOT NULL,
              value bytea NOT NULL,
              PRIMARY KEY (tree, key)
          );",
}];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Serialises concurrent `migrate` runs (a transaction-scoped advisory lock; the value is
/// "renkei" and 1 in ASCII, arbitrary but fixed).
const MIGRATE_LOCK_KEY: i64 = 0x7265_6e6b_6569_0001;

/// What `migrate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Version found before (0: an empty database).
    pub from: i32,
    /// Version now.
    pub to: i32,
}

/// The recorded version; `None` when the database has no renkei schema at all.
pub(crate) async fn version(client: &impl GenericClient) -> Result<Option<i32>, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('renkei_schema_version') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let v: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM renkei_schema_version",
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(Some(v))
}

/// Refuses a database this build cannot use.
pub(crate) async fn check(client: &impl GenericClient) -> Result<(), PgError> {
    match version(client).await? {
        None | Some(0) => Err(PgError::NotMigrated),
        Some(v) if v > SCHEMA_VERSION => Err(PgError::SchemaTooNew {
            found: v,
            known: SCHEMA_VERSION,
        }),
        Some(v) if v < SCHEMA_VERSION => Err(PgError::SchemaTooOld {
            found: v,
            latest: SCHEMA_VERSION,
        }),
        Some(_) => Ok(()),
    }
}

/// Applies the missing steps in one transaction (all or none).
pub(crate) async fn migrate(client: &mut Client) -> Result<Migrated, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS renkei_schema_version (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let from = version(&tx).await?.unwrap_or(0);
    if from > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found: from,
            known: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO renkei_schema_version (version, description) VALUES ($1, $2)",
            &[&m.version, &m.description],
        )
        .await?;
        tracing::info!(
            message = "Applied schema migration.",
            version = m.version,
            description = m.description
        );
    }
    tx.commit().await?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}
