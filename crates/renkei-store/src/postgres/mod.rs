//! The PostgreSQL implementation of [`Store`], for cities that run two machines: a primary
//! with a synchronous standby. Every tree lives in one table `renkei_kv (tree, key, value)`;
//! one writer task does group commit (one transaction per group, acknowledged after
//! `COMMIT`, which with `synchronous_commit=on` and a synchronous standby returns only once
//! the standby has the group too).
//!
//! Threads: the store owns a small tokio runtime on its own threads (the writer task, the
//! connections' I/O, the read queries). The trait's read methods are synchronous; each one
//! sends its query to that runtime and waits for the answer, inside
//! [`tokio::task::block_in_place`] when called from a multi-thread runtime (so the caller's
//! other tasks move to another worker while it waits), plainly otherwise. Because the I/O
//! runs on the store's own runtime, a read can never deadlock its caller's runtime, whatever
//! its flavour. Cost: a read is one PostgreSQL round trip plus two thread hand-offs (some
//! tens of microseconds on loopback), against sled's in-process lookup.
//!
//! Failure: a broken connection is dropped and re-established (backoff from
//! [`DEFAULT_MIN_BACKOFF`] to [`DEFAULT_MAX_BACKOFF`]; with several hosts and
//! `target_session_attrs=read-write` in the url this finds the promoted standby). Commits in
//! the meantime fail with [`StoreError::Io`]; nothing is acknowledged unless its `COMMIT`
//! returned success. A connection lost during `COMMIT` leaves the outcome unknown: the
//! batches are answered with an error (they may still have been committed; the next group
//! re-reads the chain state, so the log stays one chain either way).

mod conn;
mod schema;
mod writer;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;
use tokio_postgres::{Client, Config, Statement};

pub use schema::{Migrated, SCHEMA_VERSION};

use crate::{
    Batch, CommitFuture, CommitStats, Entries, LogChain, Store, StoreError, Tree, META_CHAIN_STATE,
};
use conn::{describe_error, Backoff};

/// Connections for reads. Reads are short single-index lookups; four in flight keep a
/// small gateway's handlers busy without holding many server backends (each a process).
pub const DEFAULT_READ_CONNECTIONS: usize = 4;
/// Most batches one group takes (as sled): bounds the first caller's latency and the size
/// of one transaction.
pub const DEFAULT_MAX_GROUP: usize = 4096;
/// Queue depth in front of the writer (as sled); callers wait (backpressure) when it is full.
pub const DEFAULT_QUEUE_DEPTH: usize = 16_384;
/// Used when the url sets no `connect_timeout`: long enough for a WAN round trip and TCP
/// retries, short enough that a dead host makes callers wait seconds, not minutes.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a group waits for the writer lock held by another gateway's group before it
/// fails (503): longer than any healthy group, short enough to surface a stuck peer.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before retrying a broken connection: a restart or failover takes longer.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnect attempts: the gateway is back within seconds of the
/// database.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Threads of the store's runtime. The work is waiting on the network; two threads let
/// a read proceed while the writer encodes a large group.
pub const DEFAULT_IO_THREADS: usize = 2;

/// The `synchronous_commit` level the writer's session uses. Only levels that keep the
/// durability contract are offered (`local` and `off` are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SynchronousCommit {
    /// Flushed to disk on the primary and on the synchronous standby (default).
    #[default]
    On,
    /// As `On`, and also applied on the standby (reads there see it).
    RemoteApply,
}

impl SynchronousCommit {
    fn as_sql(self) -> &'static str {
        match self {
            SynchronousCommit::On => "on",
            SynchronousCommit::RemoteApply => "remote_apply",
        }
    }
}

/// Tuning of a [`PgStore`]; `Default` gives the `DEFAULT_…` values.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub read_connections: usize,
    pub max_group: usize,
    pub queue_depth: usize,
    pub connect_timeout: Duration,
    pub lock_timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub io_threads: usize,
    pub synchronous_commit: SynchronousCommit,
    /// The password, when the url carries none (read from a file or the environment by the
    /// caller, so that it never sits in a configuration file that is shown or logged).
    pub password: Option<PgPassword>,
}

/// A database password: never shown by `Debug`, wiped when dropped.
#[derive(Clone)]
pub struct PgPassword(zeroize::Zeroizing<String>);

impl PgPassword {
    /// Wraps `password` (trailing line breaks, as a file's last line has, are removed).
    pub fn new(password: &str) -> Self {
        Self(zeroize::Zeroizing::new(
            password.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for PgPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgPassword(..)")
    }
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            read_connections: DEFAULT_READ_CONNECTIONS,
            max_group: DEFAULT_MAX_GROUP,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            io_threads: DEFAULT_IO_THREADS,
            synchronous_commit: SynchronousCommit::On,
            password: None,
        }
    }
}

/// Failures opening or migrating a PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The url could not be parsed (its text is not repeated: it may hold a password).
    #[error("invalid PostgreSQL url (libpq `key=value` or `postgresql://` form expected)")]
    Url,
    #[error("cannot connect to PostgreSQL at {targets}: {detail}")]
    Connect { targets: String, detail: String },
    #[error("the database has no renkei schema; run `renkei store migrate` first")]
    NotMigrated,
    #[error("the database schema is version {found}, newer than this build knows ({known}); upgrade renkei")]
    SchemaTooNew { found: i32, known: i32 },
    #[error("the database schema is version {found}, older than this build needs ({latest}); run `renkei store migrate`")]
    SchemaTooOld { found: i32, latest: i32 },
    #[error("PostgreSQL: {0}")]
    Db(String),
    #[error("store runtime: {0}")]
    Runtime(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Db(describe_error(&e))
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// The table's tree number: [`Tree::tag`], as the database's `smallint`.
pub(crate) fn tree_id(t: Tree) -> i16 {
    i16::from(t.tag())
}

type Job = crate::WriterJob;

#[derive(Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    groups: AtomicU64,
    observer: crate::ObserverSlot,
}

/// Waits for `f` without stalling the caller's tokio worker (see the module doc).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `fut` to completion on a fresh current-thread runtime on its own thread, from any
/// context (for the one-off administrative calls).
fn run_detached<T, F>(fut: F) -> Result<T, PgError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, PgError>> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("renkei-pg-admin".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PgError::Runtime(e.to_string()))?
                .block_on(fut)
        })
        .map_err(|e| PgError::Runtime(e.to_string()))?;
    blocking(|| thread.join()).map_err(|_| PgError::Runtime("admin thread panicked".into()))?
}

/// A PostgreSQL database with its group-commit writer.
pub struct PgStore {
    tx: mpsc::Sender<Job>,
    handle: Handle,
    readers: Arc<ReadPool>,
    pending_chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    counters: Arc<Counters>,
    targets: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("targets", &self.targets)
            .finish()
    }
}

impl PgStore {
    /// Applies the embedded migrations that `url`'s database lacks (all in one
    /// transaction; concurrent runs wait for each other). Refuses a database newer than
    /// this build.
    pub fn migrate(url: &str) -> Result<Migrated, PgError> {
        Self::migrate_with(url, &PgOptions::default())
    }

    /// [`PgStore::migrate`] with `options` (the password, the connect timeout).
    pub fn migrate_with(url: &str, options: &PgOptions) -> Result<Migrated, PgError> {
        let config = conn::parse(url, options)?;
        let targets = conn::describe(&config);
        run_detached(async move {
            let mut client = conn::connect(&config, &targets, "migrate").await?;
            schema::migrate(&mut client).await
        })
    }

    /// The schema version recorded in `url`'s database (`None`: no renkei schema).
    pub fn schema_version(url: &str) -> Result<Option<i32>, PgError> {
        Self::schema_version_with(url, &PgOptions::default())
    }

    /// [`PgStore::schema_version`] with `options`.
    pub fn schema_version_with(url: &str, options: &PgOptions) -> Result<Option<i32>, PgError> {
        let config = conn::parse(url, options)?;
        let targets = conn::describe(&config);
        run_detached(async move {
            let client = conn::connect(&config, &targets, "admin").await?;
            schema::version(&client).await
        })
    }

    /// Connects to `url` (libpq form: `postgresql://user@h1:5432,h2:5432/renkei?target_session_attrs=read-write`
    /// or `host=h1,h2 port=5432 dbname=renkei target_session_attrs=read-write`), checks the
    /// schema version (refuses a database not migrated, or of a version this build does
    /// not know) and starts the writer. Blocks until connected.
    pub fn open(url: &str, options: PgOptions) -> Result<Arc<Self>, PgError> {
        let config = conn::parse(url, &options)?;
        let targets = conn::describe(&config);
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let pending_chain: Arc<Mutex<Option<Box<dyn LogChain>>>> = Arc::new(Mutex::new(None));
        let counters = Arc::new(Counters::default());
        let readers = Arc::new(ReadPool::new(config.clone(), targets.clone(), &options));
        let mut writer = writer::Writer::new(
            config,
            targets.clone(),
            options.clone(),
            pending_chain.clone(),
            counters.clone(),
        );
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<Handle, PgError>>(1);
        let threads = options.io_threads.max(1);
        std::thread::Builder::new()
            .name("renkei-pg".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("renkei-pg-io")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(PgError::Runtime(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    if let Err(e) = writer.start().await {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    let _ = ready_tx.send(Ok(Handle::current()));
                    // Ends when the store and every pending commit future are gone.
                    writer.run(rx).await;
                });
                // Dropping the runtime here ends the connections' tasks.
            })
            .map_err(|e| PgError::Runtime(e.to_string()))?;
        let handle = blocking(|| ready_rx.recv())
            .map_err(|_| PgError::Runtime("store thread ended during open".into()))??;
        tracing::info!(message = "PostgreSQL store open.", targets = %targets);
        Ok(Arc::new(Self {
            tx,
            handle,
            readers,
            pending_chain,
            counters,
            targets,
        }))
    }

    fn read(&self, req: ReadReq) -> Result<ReadResp, StoreError> {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        let pool = self.readers.clone();
        self.handle.spawn(async move {
            let _ = done.send(pool.run(req).await);
        });
        // If the runtime is gone, the task (and `done`) is dropped: the store is closed.
        blocking(|| wait.recv()).map_err(|_| StoreError::Closed)?
    }

    fn entries(&self, req: ReadReq) -> Result<Entries, StoreError> {
        match self.read(req)? {
            ReadResp::Entries(e) => Ok(e),
            _ => Err(StoreError::Io("unexpected read answer".into())),
        }
    }
}

impl Store for PgStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.read(ReadReq::Get(tree, key.to_vec()))? {
            ReadResp::Value(v) => Ok(v),
            _ => Err(StoreError::Io("unexpected read answer".into())),
        }
    }

    fn range(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.entries(ReadReq::Range {
            tree,
            start: start.to_vec(),
            end: (!end.is_empty()).then(|| end.to_vec()),
            limit,
            rev: false,
        })
    }

    fn range_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.entries(ReadReq::Range {
            tree,
            start: start.to_vec(),
            end: (!end.is_empty()).then(|| end.to_vec()),
            limit,
            rev: true,
        })
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        self.entries(ReadReq::Range {
            tree,
            start: prefix.to_vec(),
            end: successor(prefix),
            limit,
            rev: false,
        })
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        match self.read(ReadReq::Len(tree))? {
            ReadResp::Count(n) => Ok(n),
            _ => Err(StoreError::Io("unexpected read answer".into())),
        }
    }

    fn commit(&self, batch: Batch) -> CommitFuture {
        let tx = self.tx.clone();
        Box::pin(async move { crate::send_to_writer(tx, batch).await })
    }

    fn set_log_chain(&self, chain: Box<dyn LogChain>) -> Result<(), StoreError> {
        let mut slot = self
            .pending_chain
            .lock()
            .map_err(|_| StoreError::Io("chain lock poisoned".into()))?;
        *slot = Some(chain);
        Ok(())
    }

    fn log_chain_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(Tree::Meta, META_CHAIN_STATE)
    }

    fn observe_commits(&self, observer: crate::CommitObserver) {
        self.counters.observer.set(observer);
    }

    fn node(&self) -> Option<String> {
        match self.read(ReadReq::Node) {
            Ok(ReadResp::Node(n)) => Some(n),
            _ => None,
        }
    }

    fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            groups: self.counters.groups.load(Ordering::Relaxed),
        }
    }
}

/// The smallest key greater than every key starting with `prefix`; `None` when there is
/// none (empty or all-`0xff` prefix: scan to the end of the tree).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

enum ReadReq {
    Get(Tree, Vec<u8>),
    Range {
        tree: Tree,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: usize,
        rev: bool,
    },
    Len(Tree),
    Node,
}

enum ReadResp {
    Value(Option<Vec<u8>>),
    Entries(Entries),
    Count(usize),
    Node(String),
}

struct ReadStatements {
    get: Statement,
    range: Statement,
    range_open: Statement,
    range_rev: Statement,
    range_rev_open: Statement,
    len: Statement,
}

struct ReadConn {
    client: Client,
    st: ReadStatements,
}

struct ReadSlot {
    conn: Option<ReadConn>,
    backoff: Backoff,
}

/// A few read connections, each used by one query at a time, chosen round-robin.
struct ReadPool {
    config: Config,
    targets: String,
    slots: Vec<tokio::sync::Mutex<ReadSlot>>,
    next: AtomicUsize,
}

impl ReadPool {
    fn new(config: Config, targets: String, options: &PgOptions) -> Self {
        let slots = (0..options.read_connections.max(1))
            .map(|_| {
                tokio::sync::Mutex::new(ReadSlot {
                    conn: None,
                    backoff: Backoff::new(options.min_backoff, options.max_backoff),
                })
            })
            .collect();
        Self {
            config,
            targets,
            slots,
            next: AtomicUsize::new(0),
        }
    }

    async fn connect(&self) -> Result<ReadConn, PgError> {
        let client = conn::connect(&self.config, &self.targets, "reader").await?;
        let (get, range, range_open, range_rev, range_rev_open, len) = tokio::try_join!(
            client.prepare("SELECT value FROM renkei_kv WHERE tree = $1 AND key = $2"),
            client.prepare(
                "SELECT key, value FROM renkei_kv WHERE tree = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key LIMIT $4"
            ),
            client.prepare(
                "SELECT key, value FROM renkei_kv WHERE tree = $1 AND key >= $2 \
                 ORDER BY key LIMIT $3"
            ),
            client.prepare(
                "SELECT key, value FROM renkei_kv WHERE tree = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key DESC LIMIT $4"
            ),
            client.prepare(
                "SELECT key, value FROM renkei_kv WHERE tree = $1 AND key >= $2 \
                 ORDER BY key DESC LIMIT $3"
            ),
            client.prepare("SELECT count(*) FROM renkei_kv WHERE tree = $1"),
        )?;
        Ok(ReadConn {
            client,
            st: ReadStatements {
                get,
                range,
                range_open,
                range_rev,
                range_rev_open,
                len,
            },
        })
    }

    async fn run(&self, req: ReadReq) -> Result<ReadResp, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if slot.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            slot.conn = None;
        }
        if slot.conn.is_none() {
            if let Err(wait) = slot.backoff.ready() {
                return Err(StoreError::Io(format!(
                    "database unavailable; next reconnect attempt in {} ms",
                    wait.as_millis()
                )));
            }
            match self.connect().await {
                Ok(c) => {
                    slot.backoff.succeeded();
                    slot.conn = Some(c);
                }
                Err(e) => {
                    let wait = slot.backoff.failed();
                    tracing::warn!(
                        message = "PostgreSQL reader connect failed.",
                        targets = %self.targets,
                        error = %e,
                        retry_in_ms = wait.as_millis() as u64
                    );
                    return Err(StoreError::Io(format!("database unavailable: {e}")));
                }
            }
        }
        let Some(conn) = slot.conn.as_ref() else {
            return Err(StoreError::Io("not connected".into()));
        };
        let result = query(conn, req).await;
        if let Err(e) = &result {
            if e.is_closed() || conn.client.is_closed() {
                slot.conn = None;
            }
        }
        result.map_err(|e| StoreError::Io(describe_error(&e)))
    }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

async fn query(conn: &ReadConn, req: ReadReq) -> Result<ReadResp, tokio_postgres::Error> {
    let st = &conn.st;
    let c = &conn.client;
    match req {
        ReadReq::Get(tree, key) => {
            let row = c.query_opt(&st.get, &[&tree_id(tree), &key]).await?;
            Ok(ReadResp::Value(match row {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            }))
        }
        ReadReq::Range {
            tree,
            start,
            end,
            limit,
            rev,
        } => {
            if limit == 0 {
                return Ok(ReadResp::Entries(Vec::new()));
            }
            let t = tree_id(tree);
            let lim = limit_param(limit);
            let rows = match (&end, rev) {
                (Some(end), false) => c.query(&st.range, &[&t, &start, end, &lim]).await?,
                (Some(end), true) => c.query(&st.range_rev, &[&t, &start, end, &lim]).await?,
                (None, false) => c.query(&st.range_open, &[&t, &start, &lim]).await?,
                (None, true) => c.query(&st.range_rev_open, &[&t, &start, &lim]).await?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
            Ok(ReadResp::Entries(out))
        }
        ReadReq::Len(tree) => {
            let n: i64 = c.query_one(&st.len, &[&tree_id(tree)]).await?.try_get(0)?;
            Ok(ReadResp::Count(usize::try_from(n).unwrap_or(usize::MAX)))
        }
        ReadReq::Node => {
            // The server this connection reached (target_session_attrs picks the primary).
            let row = c
                .query_one(
                    "SELECT coalesce(host(inet_server_addr()), 'local') || ':' || \
                     coalesce(inet_server_port(), 0)::text, pg_is_in_recovery()",
                    &[],
                )
                .await?;
            let node: String = row.try_get(0)?;
            let standby: bool = row.try_get(1)?;
            Ok(ReadResp::Node(if standby {
                format!("{node} (standby)")
            } else {
                format!("{node} (primary)")
            }))
        }
    }
}
