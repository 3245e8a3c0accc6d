//! The PostgreSQL group-commit writer: one task takes every queued batch, applies the group in
//! ONE transaction (guards checked inside it, in commit order) and acknowledges each batch only
//! after `COMMIT` returned — with a synchronous standby, after the standby has it too.
//!
//! Two gateways on one database: every group first takes a transaction-scoped advisory lock
//! (one writer at a time across all processes, so a guard read and the write it protects
//! cannot interleave with another gateway's group), then locks and re-reads the chain-state
//! row; if another process advanced the chain, the in-memory [`LogChain`] is reloaded from
//! the row ([`LogChain::restore`]) before this group appends, so there is one chain.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Statement};

use super::conn::{self, describe_error, Backoff};
use super::{schema, tree_id, Counters, Job, PgError, PgOptions};
use crate::{Batch, CommitReceipt, LogChain, Op, StoreError, Tree, META_CHAIN_STATE};

/// The advisory lock every group holds until its transaction ends ("renkei" and 2 in ASCII;
/// arbitrary but fixed: every gateway on the database must use the same value).
const WRITER_LOCK_KEY: i64 = 0x7265_6e6b_6569_0002;

const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const SQL_CHAIN: &str = "SELECT value FROM renkei_kv WHERE tree = $1 AND key = $2 FOR UPDATE";
const SQL_GUARDS: &str = "SELECT k.tree, k.key, kv.value
     FROM unnest($1::int2[], $2::bytea[]) AS k(tree, key)
     JOIN renkei_kv kv ON kv.tree = k.tree AND kv.key = k.key";
const SQL_UPSERT: &str = "INSERT INTO renkei_kv (tree, key, value)
     SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[])
     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
/// Log entries are inserted without `ON CONFLICT`: a sequence number that already exists
/// fails the whole group instead of overwriting a record (defence in depth: the lock and
/// the chain reload already make it impossible).
const SQL_INSERT: &str = "INSERT INTO renkei_kv (tree, key, value)
     SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[])";
const SQL_DELETE: &str = "DELETE FROM renkei_kv kv
     USING unnest($1::int2[], $2::bytea[]) AS d(tree, key)
     WHERE kv.tree = d.tree AND kv.key = d.key";

/// SQLSTATE 25006: the session landed on a read-only server (a demoted primary).
const READ_ONLY_SQL_TRANSACTION: &str = "25006";

struct Statements {
    lock: Statement,
    chain: Statement,
    guards: Statement,
    upsert: Statement,
    insert: Statement,
    delete: Statement,
}

struct WriterConn {
    client: Client,
    st: Statements,
}

pub(crate) struct Writer {
    config: Config,
    targets: String,
    options: PgOptions,
    conn: Option<WriterConn>,
    backoff: Backoff,
    pending_chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    chain: Option<Box<dyn LogChain>>,
    counters: Arc<Counters>,
}

/// One key's final state after the group's batches, in order.
struct Pending {
    tree: i16,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    from_log: bool,
}

/// The group being staged: net writes per key plus the values the guards read.
#[derive(Default)]
struct Group {
    writes: HashMap<(i16, Vec<u8>), Pending>,
    found: HashMap<(i16, Vec<u8>), Vec<u8>>,
}

impl Group {
    fn existing(&self, tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
        let k = (tree_id(tree), key.to_vec());
        match self.writes.get(&k) {
            Some(p) => p.value.clone(),
            None => self.found.get(&k).cloned(),
        }
    }

    /// Stages the [`Tree::Tallies`] changes of one tallied write (the counts it touches were
    /// fetched with the group's guards).
    fn tally(&mut self, tree: Tree, key: &[u8], new: Option<&Vec<u8>>) {
        let old = self.existing(tree, key);
        for (value, delta) in crate::tally_changes(old.as_deref(), new.map(Vec::as_slice)) {
            let tk = crate::tally_key(tree, &value);
            let count = self.existing(Tree::Tallies, &tk);
            let next = crate::counted(count.as_deref(), delta);
            self.write(Tree::Tallies, tk, Some(next), false);
        }
    }

    fn write(&mut self, tree: Tree, key: Vec<u8>, value: Option<Vec<u8>>, from_log: bool) {
        let t = tree_id(tree);
        self.writes.insert(
            (t, key.clone()),
            Pending {
                tree: t,
                key,
                value,
                from_log,
            },
        );
    }
}

fn io(detail: impl Into<String>) -> StoreError {
    StoreError::Io(detail.into())
}

impl Writer {
    pub(crate) fn new(
        config: Config,
        targets: String,
        options: PgOptions,
        pending_chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
        counters: Arc<Counters>,
    ) -> Self {
        let backoff = Backoff::new(options.min_backoff, options.max_backoff);
        Self {
            config,
            targets,
            options,
            conn: None,
            backoff,
            pending_chain,
            chain: None,
            counters,
        }
    }

    /// First connection, at open: any failure (unreachable, not migrated, unknown schema)
    /// is returned to the caller of `open` as is.
    pub(crate) async fn start(&mut self) -> Result<(), PgError> {
        let c = self.connect().await?;
        self.conn = Some(c);
        Ok(())
    }

    async fn connect(&self) -> Result<WriterConn, PgError> {
        let client = conn::connect(&self.config, &self.targets, "writer").await?;
        schema::check(&client).await?;
        client
            .batch_execute(&format!(
                "SET synchronous_commit = {}; SET lock_timeout = {}",
                self.options.synchronous_commit.as_sql(),
                self.options.lock_timeout.as_millis()
            ))
            .await?;
        let standbys: String = client
            .query_one("SHOW synchronous_standby_names", &[])
            .await?
            .try_get(0)?;
        if standbys.trim().is_empty() {
            tracing::warn!(
                message = "No synchronous standby is configured: a commit is durable on the primary only.",
                targets = %self.targets
            );
        }
        let (lock, chain, guards, upsert, insert, delete) = tokio::try_join!(
            client.prepare(SQL_LOCK),
            client.prepare(SQL_CHAIN),
            client.prepare(SQL_GUARDS),
            client.prepare(SQL_UPSERT),
            client.prepare(SQL_INSERT),
            client.prepare(SQL_DELETE),
        )?;
        tracing::info!(
            message = "PostgreSQL writer connected.",
            targets = %self.targets,
            synchronous_commit = self.options.synchronous_commit.as_sql(),
            synchronous_standby_names = %standbys
        );
        Ok(WriterConn {
            client,
            st: Statements {
                lock,
                chain,
                guards,
                upsert,
                insert,
                delete,
            },
        })
    }

    /// A usable connection, reconnecting (no more often than the backoff allows) if the
    /// last one broke.
    async fn ensure_conn(&mut self) -> Result<(), StoreError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        if let Err(wait) = self.backoff.ready() {
            return Err(io(format!(
                "database unavailable; next reconnect attempt in {} ms",
                wait.as_millis()
            )));
        }
        match self.connect().await {
            Ok(c) => {
                self.backoff.succeeded();
                self.conn = Some(c);
                Ok(())
            }
            Err(e) => {
                let wait = self.backoff.failed();
                tracing::warn!(
                    message = "PostgreSQL reconnect failed.",
                    targets = %self.targets,
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64
                );
                Err(io(format!("database unavailable: {e}")))
            }
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < self.options.max_group {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.write_group(jobs).await;
        }
    }

    async fn write_group(&mut self, jobs: Vec<Job>) {
        if let Ok(mut slot) = self.pending_chain.lock() {
            if let Some(chain) = slot.take() {
                self.chain = Some(chain);
            }
        }
        let backup = self.chain.as_ref().map(|c| c.snapshot());
        let (batches, waiters): (Vec<Batch>, Vec<_>) = jobs.into_iter().unzip();
        let started = std::time::Instant::now();
        let result = match self.ensure_conn().await {
            Ok(()) => self.transact(&batches).await,
            Err(e) => Err(e),
        };
        self.counters.observer.report(crate::GroupReport {
            batches: waiters.len(),
            records: match &result {
                Ok(outcomes) => outcomes
                    .iter()
                    .map(|o| o.as_ref().map_or(0, |r| r.log_seqs.len()))
                    .sum(),
                Err(_) => 0,
            },
            write: started.elapsed(),
            ok: result.is_ok(),
        });
        self.counters.groups.fetch_add(1, Ordering::Relaxed);
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(
                    message = "Group commit failed.",
                    error = %e,
                    batches = waiters.len()
                );
                self.chain = backup;
                vec![Err(e); waiters.len()]
            }
        };
        for (done, outcome) in waiters.into_iter().zip(outcomes) {
            if outcome.is_ok() {
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            // A caller that gave up waiting is not an error for the others.
            let _ = done.send(outcome);
        }
    }

    /// The group's transaction. `Err` means nothing of the group may be acknowledged (it
    /// was rolled back, or the connection broke and the outcome is unknown).
    async fn transact(
        &mut self,
        batches: &[Batch],
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        let result = self.transact_inner(batches).await;
        if let Err(e) = &result {
            let broken = e.is_closed()
                || e.code().map(|c| c.code()) == Some(READ_ONLY_SQL_TRANSACTION)
                || self.conn.as_ref().is_some_and(|c| c.client.is_closed());
            if broken {
                // Reconnect (target_session_attrs picks the new primary) on the next group.
                self.conn = None;
            }
            return Err(io(format!("group commit failed: {}", describe_error(e))));
        }
        result.map_err(|e| io(describe_error(&e)))
    }

    async fn transact_inner(
        &mut self,
        batches: &[Batch],
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, tokio_postgres::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(vec![Err(io("not connected")); batches.len()]);
        };
        let st = &conn.st;
        let tx = conn.client.transaction().await?;

        // Every key a guard reads, fetched once (after the lock: the statements run in
        // order, and each reads the data committed before it starts).
        let mut guard_trees = Vec::new();
        let mut guard_keys: Vec<&[u8]> = Vec::new();
        for b in batches {
            for (t, k) in &b.absent {
                guard_trees.push(tree_id(*t));
                guard_keys.push(k);
            }
            for (t, k, _) in &b.equal {
                guard_trees.push(tree_id(*t));
                guard_keys.push(k);
            }
            // A tallied write reads the value it replaces.
            for op in &b.ops {
                if let Op::PutTallied(t, k, _) | Op::DeleteTallied(t, k) = op {
                    guard_trees.push(tree_id(*t));
                    guard_keys.push(k);
                }
            }
        }
        let meta = tree_id(Tree::Meta);
        // One round trip: lock, chain row, guarded values (pipelined).
        let chain_params: [&(dyn ToSql + Sync); 2] = [&meta, &META_CHAIN_STATE];
        let guard_params: [&(dyn ToSql + Sync); 2] = [&guard_trees, &guard_keys];
        let (_, chain_rows, guard_rows) = tokio::try_join!(
            tx.execute(&st.lock, &[&WRITER_LOCK_KEY]),
            tx.query(&st.chain, &chain_params),
            tx.query(&st.guards, &guard_params),
        )?;

        let mut group = Group::default();
        for row in guard_rows {
            let t: i16 = row.try_get(0)?;
            let k: Vec<u8> = row.try_get(1)?;
            let v: Vec<u8> = row.try_get(2)?;
            group.found.insert((t, k), v);
        }
        // The counts tallied writes change: of the values they replace and of the values
        // they write (a second round trip, only for groups with tallied writes).
        let mut tally_trees = Vec::new();
        let mut tally_keys: Vec<Vec<u8>> = Vec::new();
        for b in batches {
            for op in &b.ops {
                let (t, k, new) = match op {
                    Op::PutTallied(t, k, v) => (*t, k, Some(v)),
                    Op::DeleteTallied(t, k) => (*t, k, None),
                    _ => continue,
                };
                let old = group.found.get(&(tree_id(t), k.clone())).cloned();
                for v in old.iter().chain(new) {
                    tally_trees.push(tree_id(Tree::Tallies));
                    tally_keys.push(crate::tally_key(t, v));
                }
            }
        }
        if !tally_keys.is_empty() {
            let keys: Vec<&[u8]> = tally_keys.iter().map(Vec::as_slice).collect();
            let params: [&(dyn ToSql + Sync); 2] = [&tally_trees, &keys];
            for row in tx.query(&st.guards, &params).await? {
                let t: i16 = row.try_get(0)?;
                let k: Vec<u8> = row.try_get(1)?;
                let v: Vec<u8> = row.try_get(2)?;
                group.found.insert((t, k), v);
            }
        }

        // Another process may have advanced the chain since this one last wrote.
        let mut chain_error: Option<StoreError> = None;
        let persisted: Option<Vec<u8>> = match chain_rows.first() {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        };
        if let (Some(chain), Some(stored)) = (self.chain.as_mut(), persisted.as_ref()) {
            if chain.state() != *stored {
                match chain.restore(stored) {
                    Ok(()) => tracing::info!(
                        message = "Record chain reloaded: another writer advanced it."
                    ),
                    Err(e) => {
                        tracing::error!(
                            message = "Record chain advanced by another writer and cannot be reloaded; log appends refused.",
                            error = %e
                        );
                        chain_error = Some(e);
                    }
                }
            }
        }

        let mut outcomes = Vec::with_capacity(batches.len());
        let mut wrote_log = false;
        for b in batches {
            outcomes.push(stage(
                b,
                &mut group,
                &mut self.chain,
                chain_error.as_ref(),
                &mut wrote_log,
            ));
        }
        if wrote_log {
            if let Some(chain) = self.chain.as_ref() {
                group.write(
                    Tree::Meta,
                    META_CHAIN_STATE.to_vec(),
                    Some(chain.state()),
                    false,
                );
            }
        }

        let mut up = (Vec::new(), Vec::new(), Vec::new());
        let mut ins = (Vec::new(), Vec::new(), Vec::new());
        let mut del = (Vec::new(), Vec::new());
        for p in group.writes.values() {
            match (&p.value, p.from_log) {
                (Some(v), false) => {
                    up.0.push(p.tree);
                    up.1.push(p.key.as_slice());
                    up.2.push(v.as_slice());
                }
                (Some(v), true) => {
                    ins.0.push(p.tree);
                    ins.1.push(p.key.as_slice());
                    ins.2.push(v.as_slice());
                }
                (None, _) => {
                    del.0.push(p.tree);
                    del.1.push(p.key.as_slice());
                }
            }
        }
        // Keys are distinct across the three statements (one final state per key), so
        // their order does not matter; they are pipelined.
        let upsert = async {
            if up.0.is_empty() {
                return Ok(0);
            }
            tx.execute(&st.upsert, &[&up.0, &up.1, &up.2]).await
        };
        let insert = async {
            if ins.0.is_empty() {
                return Ok(0);
            }
            tx.execute(&st.insert, &[&ins.0, &ins.1, &ins.2]).await
        };
        let delete = async {
            if del.0.is_empty() {
                return Ok(0);
            }
            tx.execute(&st.delete, &[&del.0, &del.1]).await
        };
        tokio::try_join!(upsert, insert, delete)?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Checks one batch's guards against the database as changed by the group so far, then
/// adds its writes and log entries. A failed guard refuses this batch only.
fn stage(
    batch: &Batch,
    group: &mut Group,
    chain: &mut Option<Box<dyn LogChain>>,
    chain_error: Option<&StoreError>,
    wrote_log: &mut bool,
) -> Result<CommitReceipt, StoreError> {
    for (t, k) in &batch.absent {
        if let Some(existing) = group.existing(*t, k) {
            return Err(StoreError::Conflict {
                tree: *t,
                key: k.clone(),
                existing,
            });
        }
    }
    for (t, k, v) in &batch.equal {
        let found = group.existing(*t, k);
        if found.as_deref() != Some(v.as_slice()) {
            return Err(StoreError::Conflict {
                tree: *t,
                key: k.clone(),
                existing: found.unwrap_or_default(),
            });
        }
    }
    let mut receipt = CommitReceipt::default();
    if !batch.log.is_empty() {
        if let Some(e) = chain_error {
            return Err(e.clone());
        }
        if chain.is_none() {
            return Err(io("record log chain not installed"));
        }
    }
    for op in &batch.ops {
        match op {
            Op::Put(t, k, v) => group.write(*t, k.clone(), Some(v.clone()), false),
            Op::Delete(t, k) => group.write(*t, k.clone(), None, false),
            Op::PutTallied(t, k, v) => {
                group.tally(*t, k, Some(v));
                group.write(*t, k.clone(), Some(v.clone()), false);
            }
            Op::DeleteTallied(t, k) => {
                group.tally(*t, k, None);
                group.write(*t, k.clone(), None, false);
            }
        }
    }
    if let Some(chain) = chain.as_mut() {
        for entry in &batch.log {
            let (seq, stored) = chain.append(entry);
            group.write(
                Tree::Records,
                seq.to_be_bytes().to_vec(),
                Some(stored),
                true,
            );
            receipt.log_seqs.push(seq);
            *wrote_log = true;
        }
    }
    Ok(receipt)
}
