//! The durable store: named trees, atomic batches with guards, ordered scans, and one
//! group-commit writer that makes every acknowledged batch survive a power cut.
//!
//! It is a crate of its own, the one library crate that does I/O: its backends build and
//! test without the gateway, and nothing in it can reach back into the gateway's logic.
//! The gateway sees only this interface ([`Store`]); sled is one implementation
//! ([`sled_store::SledStore`], the embedded default). With the `postgres` feature,
//! `postgres::PgStore` is a second implementation for a primary with a synchronous standby:
//! every method maps onto a table `(tree, key, value)` and a transaction per commit group.
//!
//! Durability contract: [`Store::commit`] resolves `Ok` only after the batch (and every batch
//! committed before it) is on stable storage — every file the store wrote, and the directory
//! entry of every file it created. The writer applies many callers' batches as one atomic write
//! and makes them durable with one round of `fsync`s, so the cost of durability is shared.
//!
//! Visibility is not durability: a backend may let readers see a group as soon as it is applied,
//! before its `fsync` has returned (sled does). A caller that sends on what it read takes a
//! *durability barrier* first: `commit(Batch::new())` resolves only after every group queued
//! before it is durable, and it is refused like any write once the store has failed.
//!
//! Fail closed: after a write or sync fails the store cannot say what reached the disk, so it
//! refuses every later commit with [`StoreError::Failed`] until it is restarted, reads show only
//! acknowledged data (never the failed group's), and [`Store::health`] reports the failure.

#![forbid(unsafe_code)]

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sled_store;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Key/value pairs read from a tree, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The named trees. Each is a separate keyspace; keys are ordered bytewise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Store metadata: schema version, counters, chain state.
    Meta,
    /// Person records by unified address number (individual number only encrypted).
    Persons,
    /// Blind index of individual numbers → unified address number.
    BlindIndex,
    /// `system \0 business number` → unified address number.
    BusinessLinks,
    /// `unified \0 system` → business number (reverse map for answers).
    ReverseLinks,
    /// Inquiries by id.
    Inquiries,
    /// `system \0 idempotency key` → inquiry id and request hash.
    Idempotency,
    /// Work schedule: `due time (ms, big-endian) ‖ job key` → empty.
    Due,
    /// Inquiries waiting for a person's code: `unified \0 inquiry id` → empty.
    AwaitingCode,
    /// The linkage-record log: sequence number (big-endian) → stored entry.
    Records,
    /// Signed checkpoints of the record log: tree size (big-endian) → checkpoint.
    Checkpoints,
    /// Batches of inquiries submitted as files.
    Batches,
    /// Staff users and their sign-in sessions (values sealed at rest).
    Staff,
    /// A business system's inquiries, newest last: `system \0 inquiry id` → empty (ids are
    /// time-ordered, so a reverse range lists them newest first).
    InquiriesBySystem,
    /// Copy versions (副本) by id, sealed at rest.
    Copies,
    /// `system \0 business number \0 item \0 version (10 digits)` → copy version id.
    CopyIndex,
    /// Provisions fetched back from the platform: `meta` keys of the fetch position.
    ProvisionLog,
    /// Each inquiry's status: `inquiry id` → status name (written with
    /// [`Batch::put_tallied`], so [`Tree::Tallies`] counts inquiries by status).
    InquiryStatus,
    /// Manual provision requests (手動提供) fetched from the platform, by request id, sealed
    /// at rest.
    ProvisionRequests,
    /// A business system's manual provision requests, newest last: `system \0 request id`
    /// → empty (ids are time-ordered, so a reverse range lists them newest first).
    ProvisionRequestsBySystem,
    /// Counts of the values of tallied trees: `tree tag ‖ value` → count (u64 big-endian),
    /// kept by the writer in the same atomic write as the tallied keys (see
    /// [`Batch::put_tallied`]); read with [`tallies`].
    Tallies,
}

impl Tree {
    /// Every tree, for scans that cover the whole store (privacy checks, backups).
    pub const ALL: [Tree; 21] = [
        Tree::Meta,
        Tree::Persons,
        Tree::BlindIndex,
        Tree::BusinessLinks,
        Tree::ReverseLinks,
        Tree::Inquiries,
        Tree::Idempotency,
        Tree::Due,
        Tree::AwaitingCode,
        Tree::Records,
        Tree::Checkpoints,
        Tree::Batches,
        Tree::Staff,
        Tree::InquiriesBySystem,
        Tree::Copies,
        Tree::CopyIndex,
        Tree::ProvisionLog,
        Tree::InquiryStatus,
        Tree::Tallies,
        Tree::ProvisionRequests,
        Tree::ProvisionRequestsBySystem,
    ];

    /// The tree's one-byte number: the key prefix inside sled's tree and the `tree` column on
    /// PostgreSQL. Stable: it is on disk and in the database.
    pub fn tag(self) -> u8 {
        match self {
            Tree::Meta => 1,
            Tree::Persons => 2,
            Tree::BlindIndex => 3,
            Tree::BusinessLinks => 4,
            Tree::ReverseLinks => 5,
            Tree::Inquiries => 6,
            Tree::Idempotency => 7,
            Tree::Due => 8,
            Tree::AwaitingCode => 9,
            Tree::Records => 10,
            Tree::Checkpoints => 11,
            Tree::Batches => 12,
            Tree::Staff => 13,
            Tree::InquiriesBySystem => 14,
            Tree::Copies => 15,
            Tree::CopyIndex => 16,
            Tree::ProvisionLog => 17,
            Tree::InquiryStatus => 18,
            Tree::Tallies => 19,
            Tree::ProvisionRequests => 20,
            Tree::ProvisionRequestsBySystem => 21,
        }
    }

    /// The tree's stable name (used as the sled tree name and in errors).
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Persons => "persons",
            Tree::BlindIndex => "blind_index",
            Tree::BusinessLinks => "business_links",
            Tree::ReverseLinks => "reverse_links",
            Tree::Inquiries => "inquiries",
            Tree::Idempotency => "idempotency",
            Tree::Due => "due",
            Tree::AwaitingCode => "awaiting_code",
            Tree::Records => "records",
            Tree::Checkpoints => "checkpoints",
            Tree::Batches => "batches",
            Tree::Staff => "staff",
            Tree::InquiriesBySystem => "inquiries_by_system",
            Tree::Copies => "copies",
            Tree::CopyIndex => "copy_index",
            Tree::ProvisionLog => "provision_log",
            Tree::InquiryStatus => "inquiry_status",
            Tree::Tallies => "tallies",
            Tree::ProvisionRequests => "provision_requests",
            Tree::ProvisionRequestsBySystem => "provision_requests_by_system",
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
    /// A put whose tree's values are counted in [`Tree::Tallies`] ([`Batch::put_tallied`]).
    PutTallied(Tree, Vec<u8>, Vec<u8>),
    /// A delete likewise counted ([`Batch::delete_tallied`]).
    DeleteTallied(Tree, Vec<u8>),
}

/// A set of writes applied atomically, all or nothing, with optional preconditions and log
/// entries.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) absent: Vec<(Tree, Vec<u8>)>,
    pub(crate) equal: Vec<(Tree, Vec<u8>, Vec<u8>)>,
    pub(crate) log: Vec<Vec<u8>>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` under `key`.
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }

    /// Removes `key`.
    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }

    /// Writes `value` under `key` and keeps [`Tree::Tallies`] counting `tree`'s values: when
    /// the value stored under `key` as the writer applies this batch differs, the count of
    /// the old value (if any) goes down by one and the count of `value` up by one. The writer
    /// reads the stored value itself, in commit order, so racing batches cannot make the
    /// counts drift; counting is then one short scan ([`tallies`]). A tree is tallied only if
    /// every write to it goes through here or [`Batch::delete_tallied`].
    pub fn put_tallied(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops
            .push(Op::PutTallied(tree, key.into(), value.into()));
    }

    /// Removes `key`, counting its value out of [`Tree::Tallies`] (see [`Batch::put_tallied`]).
    pub fn delete_tallied(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::DeleteTallied(tree, key.into()));
    }

    /// The whole batch is refused with [`StoreError::Conflict`] if `key` exists when the
    /// writer applies it (checked in commit order, so two racing batches cannot both pass).
    pub fn require_absent(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.absent.push((tree, key.into()));
    }

    /// The whole batch is refused with [`StoreError::Conflict`] unless `key` holds exactly
    /// `value` when the writer applies it (compare-and-swap for read-modify-write).
    pub fn require_equal(
        &mut self,
        tree: Tree,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) {
        self.equal.push((tree, key.into(), value.into()));
    }

    /// Appends an entry to the hash-chained record log in the same atomic write.
    pub fn append_log(&mut self, entry: Vec<u8>) {
        self.log.push(entry);
    }

    /// True when the batch writes nothing (a durability barrier).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.log.is_empty()
    }
}

/// What a successful commit tells the caller.
#[derive(Debug, Clone, Default)]
pub struct CommitReceipt {
    /// Sequence numbers given to this batch's log entries, in order.
    pub log_seqs: Vec<u64>,
}

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A `require_absent` key existed; carries the tree, key and the value found.
    #[error("conflict in tree {}", .tree.name())]
    Conflict {
        tree: Tree,
        key: Vec<u8>,
        existing: Vec<u8>,
    },
    /// The storage engine or the file system failed; details are in the log.
    #[error("storage failure: {0}")]
    Io(String),
    /// The writer has stopped (the gateway is shutting down).
    #[error("store is closed")]
    Closed,
    /// Stored bytes could not be decoded.
    #[error("corrupt value in tree {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    /// An earlier write or sync failed; the store refuses every write (barriers too) until it
    /// is restarted. Carries the first failure.
    #[error("store refuses writes after a storage failure (restart needed): {0}")]
    Failed(String),
}

impl StoreError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "store_conflict",
            StoreError::Io(_) => "store_io",
            StoreError::Closed => "store_closed",
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::Failed(_) => "store_failed",
        }
    }
}

/// A pending commit: resolves once the batch is durable (or refused).
pub type CommitFuture = Pin<Box<dyn Future<Output = Result<CommitReceipt, StoreError>> + Send>>;

/// The hash-chained log the writer appends to. The writer owns the only instance, so
/// appends are totally ordered; its state is saved in `Meta` in the same atomic write.
pub trait LogChain: Send {
    /// Appends one entry; returns its sequence number and the bytes to store for it.
    fn append(&mut self, entry: &[u8]) -> (u64, Vec<u8>);
    /// The chain state to persist after a group.
    fn state(&self) -> Vec<u8>;
    /// A copy to restore if the group's write fails.
    fn snapshot(&self) -> Box<dyn LogChain>;
    /// Replaces this chain's state with `state` (bytes from [`LogChain::state`]) read back from
    /// the store. A store shared by several processes (PostgreSQL) calls it when another writer
    /// advanced the persisted chain, so that every process keeps appending to ONE chain; a
    /// single-process store (sled) never calls it. The default refuses: such a store then
    /// fails log appends closed rather than fork the chain.
    fn restore(&mut self, state: &[u8]) -> Result<(), StoreError> {
        let _ = state;
        Err(StoreError::Io(
            "this log chain cannot be reloaded from stored state".into(),
        ))
    }
}

/// One caller's batch on its way to a backend's single writer, with where to answer.
pub(crate) type WriterJob = (
    Batch,
    tokio::sync::oneshot::Sender<Result<CommitReceipt, StoreError>>,
);

/// Queues `batch` for a backend's writer and waits for its answer; a writer that is gone is
/// [`StoreError::Closed`]. Shared by every backend's `commit`.
pub(crate) async fn send_to_writer(
    tx: tokio::sync::mpsc::Sender<WriterJob>,
    batch: Batch,
) -> Result<CommitReceipt, StoreError> {
    let (done, wait) = tokio::sync::oneshot::channel();
    tx.send((batch, done))
        .await
        .map_err(|_| StoreError::Closed)?;
    wait.await.map_err(|_| StoreError::Closed)?
}

/// The store interface the gateway uses.
pub trait Store: Send + Sync + fmt::Debug {
    /// Reads one value.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries with keys in `[start, end)`, in key order.
    fn range(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError>;
    /// Up to `limit` entries in `[start, end)`, newest (largest key) first.
    fn range_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order, up to `limit`.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, StoreError>;
    /// Number of entries in a tree.
    fn len(&self, tree: Tree) -> Result<usize, StoreError>;
    /// Sends a batch to the group-commit writer; the future resolves when it is durable, and
    /// so is every batch queued before it. An empty batch is a durability barrier: readers may
    /// see a group before it is durable, so a caller that acts on what it read (sends it, answers
    /// `202` on it) awaits `commit(Batch::new())` first.
    fn commit(&self, batch: Batch) -> CommitFuture;
    /// Installs the record log chain (once, at start-up, before the first log append).
    fn set_log_chain(&self, chain: Box<dyn LogChain>) -> Result<(), StoreError>;
    /// Reads the persisted chain state, if any.
    fn log_chain_state(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Commit statistics since start.
    fn stats(&self) -> CommitStats;
    /// Whether the store still takes writes (for readiness probes). A store that returned
    /// [`StoreError::Failed`] reports [`Health::Failed`] until restart.
    fn health(&self) -> Health {
        Health::Ok
    }
    /// Installs the one observer told about every commit group written (for metrics). A
    /// second call is ignored. Backends without group commit never call it.
    fn observe_commits(&self, observer: CommitObserver) {
        let _ = observer;
    }
    /// The database server this store writes to and whether it is the primary (for
    /// readiness: `127.0.0.1:5432 (primary)`); `None` for an embedded store, or when the
    /// server cannot be reached.
    fn node(&self) -> Option<String> {
        None
    }
    /// Writes a consistent copy of every tree to `out` while the store keeps serving (the
    /// dump format of [`sled_store::import`]); see [`sled_store::SledStore::export`]. A store
    /// kept by a database server is backed up with that server's own tools, so the default
    /// refuses.
    fn export(&self, out: &mut dyn std::io::Write) -> Result<sled_store::ExportReport, StoreError> {
        let _ = out;
        Err(StoreError::Io(
            "this store is backed up with its database server's own tools".into(),
        ))
    }
}

/// What one commit group was, told to a [`CommitObserver`] after it is written.
#[derive(Debug, Clone, Copy)]
pub struct GroupReport {
    /// Batches in the group.
    pub batches: usize,
    /// Log entries (linkage records) the group appended.
    pub records: usize,
    /// Time to write and sync the group (the `fsync` cost callers wait for).
    pub write: std::time::Duration,
    /// False when the write or sync failed.
    pub ok: bool,
}

/// Called by a backend's writer after each commit group; must be cheap (it runs on the writer).
pub type CommitObserver = std::sync::Arc<dyn Fn(GroupReport) + Send + Sync>;

/// Where a backend keeps its observer: set once, read by its writer.
#[derive(Clone, Default)]
pub(crate) struct ObserverSlot(std::sync::Arc<std::sync::OnceLock<CommitObserver>>);

impl ObserverSlot {
    pub(crate) fn set(&self, o: CommitObserver) {
        let _ = self.0.set(o);
    }
    pub(crate) fn report(&self, r: GroupReport) {
        if let Some(o) = self.0.get() {
            o(r);
        }
    }
}

/// What [`Store::health`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Health {
    /// Commits are taken.
    Ok,
    /// A write or sync failed: every later commit is refused until restart.
    Failed {
        /// The first failure, as logged.
        error: String,
    },
}

impl Health {
    /// True when commits are taken.
    pub fn is_ok(&self) -> bool {
        matches!(self, Health::Ok)
    }
}

/// Group-commit counters (for metrics and the benchmark).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CommitStats {
    /// Batches acknowledged.
    pub batches: u64,
    /// Groups written (each one atomic write and one fsync).
    pub groups: u64,
}

/// The key of `value`'s count in [`Tree::Tallies`] for tallied tree `tree`.
pub fn tally_key(tree: Tree, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 1);
    k.push(tree.tag());
    k.extend_from_slice(value);
    k
}

/// A count as stored in [`Tree::Tallies`]; a missing or malformed entry counts as zero.
pub fn decode_count(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The new count after a change of `delta` (never below zero).
pub(crate) fn counted(old: Option<&[u8]>, delta: i64) -> Vec<u8> {
    decode_count(old)
        .saturating_add_signed(delta)
        .to_be_bytes()
        .to_vec()
}

/// The tally changes one tallied write makes, given the value stored before it: `(value,
/// delta)` pairs for [`Tree::Tallies`] (none when the value is unchanged).
pub(crate) fn tally_changes(old: Option<&[u8]>, new: Option<&[u8]>) -> Vec<(Vec<u8>, i64)> {
    if old == new {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2);
    if let Some(o) = old {
        out.push((o.to_vec(), -1));
    }
    if let Some(n) = new {
        out.push((n.to_vec(), 1));
    }
    out
}

/// The counts of `tree`'s values, as [`Batch::put_tallied`] keeps them (values never
/// written are absent; a value whose count fell to zero is listed with zero).
pub fn tallies(store: &dyn Store, tree: Tree) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
    Ok(store
        .scan_prefix(Tree::Tallies, &[tree.tag()], usize::MAX)?
        .into_iter()
        .map(|(k, v)| (k[1..].to_vec(), decode_count(Some(&v))))
        .collect())
}

/// Key for the chain state in `Meta`.
pub const META_CHAIN_STATE: &[u8] = b"records.chain_state";

/// Builds `a \0 b` keys.
pub fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}
