//! The sled implementation of [`Store`]: all named trees in one sled tree (each under a one-byte
//! prefix, so that a whole commit group is one atomic `apply_batch`), one writer thread doing
//! group commit, and an explicit `fdatasync` after sled's flush.
//!
//! Why the extra sync: on Linux sled 0.34's `flush` ends in `sync_file_range`, which neither
//! flushes the drive's write cache nor the file's metadata (sled issue #1452), so a power cut
//! could lose writes that `flush` reported stable. After each group's flush the writer calls
//! `sync_data` on sled's log file (`db`), which is a real `fdatasync` on the same inode.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{
    Batch, CommitFuture, CommitReceipt, CommitStats, Entries, LogChain, Op, Store, StoreError,
    Tree, META_CHAIN_STATE,
};

/// Most batches one group takes; bounds latency of the first caller in a group.
const DEFAULT_MAX_GROUP: usize = 4096;
/// Queue depth in front of the writer; callers wait (backpressure) when it is full.
const DEFAULT_QUEUE_DEPTH: usize = 16_384;
/// sled page cache; small so that memory stays flat whatever the backlog (the OS page
/// cache still holds hot data).
const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How hard the writer works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// sled flush, then `fdatasync` of the log file: survives power loss (default).
    #[default]
    Fsync,
    /// sled flush only (`sync_file_range`): survives a process crash, not a power cut.
    /// For benchmarks that measure the cost of the real thing.
    FlushOnly,
}

type Job = (Batch, oneshot::Sender<Result<CommitReceipt, StoreError>>);

/// A sled database with its group-commit writer.
pub struct SledStore {
    db: sled::Db,
    kv: sled::Tree,
    tx: mpsc::Sender<Job>,
    chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    batches: Arc<AtomicU64>,
    groups: Arc<AtomicU64>,
    path: PathBuf,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path, durability: Durability) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(DEFAULT_CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(io)?;
        let kv = db.open_tree("kv").map_err(io)?;
        // sled's log file: synced after every flush (see the module doc).
        let log_file = File::open(dir.join("db")).map_err(io)?;
        // Make the directory entries themselves durable once.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        let (tx, rx) = mpsc::channel(DEFAULT_QUEUE_DEPTH);
        let chain: Arc<Mutex<Option<Box<dyn LogChain>>>> = Arc::new(Mutex::new(None));
        let batches = Arc::new(AtomicU64::new(0));
        let groups = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            db: db.clone(),
            kv: kv.clone(),
            log_file,
            durability,
            chain: chain.clone(),
            batches: batches.clone(),
            groups: groups.clone(),
        };
        std::thread::Builder::new()
            .name("renkei-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(Arc::new(Self {
            db,
            kv,
            tx,
            chain,
            batches,
            groups,
            path: dir.to_path_buf(),
        }))
    }

    /// Bytes on disk used by the database (for reports).
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// The one-byte prefix of a named tree inside the sled tree. Stable: it is on disk.
fn tag(t: Tree) -> u8 {
    match t {
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
    }
}

fn full_key(t: Tree, k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(tag(t));
    v.extend_from_slice(k);
    v
}

/// `[start, end)` inside tree `t`; an empty `end` means "to the end of the tree".
fn full_range(t: Tree, start: &[u8], end: &[u8]) -> std::ops::Range<Vec<u8>> {
    let lo = full_key(t, start);
    let hi = if end.is_empty() {
        vec![tag(t) + 1]
    } else {
        full_key(t, end)
    };
    lo..hi
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    limit: usize,
) -> Result<Entries, StoreError> {
    let mut out = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item.map_err(io)?;
        out.push((k[1..].to_vec(), v.to_vec()));
    }
    Ok(out)
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .kv
            .get(full_key(tree, key))
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn range(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        collect(self.kv.range(full_range(tree, start, end)), limit)
    }

    fn range_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        collect(self.kv.range(full_range(tree, start, end)).rev(), limit)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        collect(self.kv.scan_prefix(full_key(tree, prefix)), limit)
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        Ok(self.kv.scan_prefix([tag(tree)]).count())
    }

    fn commit(&self, batch: Batch) -> CommitFuture {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            tx.send((batch, done))
                .await
                .map_err(|_| StoreError::Closed)?;
            wait.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn set_log_chain(&self, chain: Box<dyn LogChain>) -> Result<(), StoreError> {
        let mut slot = self
            .chain
            .lock()
            .map_err(|_| StoreError::Io("chain lock poisoned".into()))?;
        *slot = Some(chain);
        Ok(())
    }

    fn log_chain_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(Tree::Meta, META_CHAIN_STATE)
    }

    fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
        }
    }
}

struct Writer {
    db: sled::Db,
    kv: sled::Tree,
    log_file: File,
    durability: Durability,
    chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    batches: Arc<AtomicU64>,
    groups: Arc<AtomicU64>,
}

/// The writes of one group, in order, plus an overlay used to check guards against writes
/// made earlier in the same group.
#[derive(Default)]
struct Group {
    batch: sled::Batch,
    writes: usize,
    /// Keys and values are `IVec`s: made once from the caller's bytes, then shared by the
    /// sled batch and this overlay without copying again.
    overlay: HashMap<sled::IVec, Option<sled::IVec>>,
}

impl Group {
    fn put(&mut self, t: Tree, k: &[u8], v: Vec<u8>) {
        let k = sled::IVec::from(full_key(t, k));
        let v = sled::IVec::from(v);
        self.batch.insert(k.clone(), v.clone());
        self.overlay.insert(k, Some(v));
        self.writes += 1;
    }
    fn delete(&mut self, t: Tree, k: &[u8]) {
        let k = sled::IVec::from(full_key(t, k));
        self.batch.remove(k.clone());
        self.overlay.insert(k, None);
        self.writes += 1;
    }
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < DEFAULT_MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.write_group(jobs);
        }
    }

    fn existing(&self, group: &Group, t: Tree, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = full_key(t, k);
        if let Some(v) = group.overlay.get(k.as_slice()) {
            return Ok(v.as_ref().map(|v| v.to_vec()));
        }
        Ok(self.kv.get(k).map_err(io)?.map(|v| v.to_vec()))
    }

    fn write_group(&mut self, jobs: Vec<Job>) {
        let mut chain_guard = match self.chain.lock() {
            Ok(g) => g,
            Err(_) => {
                for (_, done) in jobs {
                    let _ = done.send(Err(StoreError::Io("chain lock poisoned".into())));
                }
                return;
            }
        };
        let chain_backup = chain_guard.as_ref().map(|c| c.snapshot());
        let mut group = Group::default();
        let mut outcomes: Vec<Result<CommitReceipt, StoreError>> = Vec::with_capacity(jobs.len());
        let mut wrote_log = false;
        let mut waiters = Vec::with_capacity(jobs.len());
        for (batch, done) in jobs {
            outcomes.push(self.stage(batch, &mut group, &mut chain_guard, &mut wrote_log));
            waiters.push(done);
        }
        if wrote_log {
            if let Some(chain) = chain_guard.as_ref() {
                group.put(Tree::Meta, META_CHAIN_STATE, chain.state());
            }
        }
        let written = self.apply_and_sync(group);
        if let Err(e) = &written {
            tracing::error!(message = "Group commit failed.", error = %e, batches = waiters.len());
            *chain_guard = chain_backup;
        }
        drop(chain_guard);
        self.groups.fetch_add(1, Ordering::Relaxed);
        for (done, outcome) in waiters.into_iter().zip(outcomes) {
            let outcome = match (&written, outcome) {
                (Err(e), Ok(_)) => Err(e.clone()),
                (_, o) => o,
            };
            if outcome.is_ok() {
                self.batches.fetch_add(1, Ordering::Relaxed);
            }
            // A caller that gave up waiting is not an error for the others.
            let _ = done.send(outcome);
        }
    }

    fn stage(
        &self,
        batch: Batch,
        group: &mut Group,
        chain: &mut Option<Box<dyn LogChain>>,
        wrote_log: &mut bool,
    ) -> Result<CommitReceipt, StoreError> {
        for (t, k) in &batch.absent {
            if let Some(existing) = self.existing(group, *t, k)? {
                return Err(StoreError::Conflict {
                    tree: *t,
                    key: k.clone(),
                    existing,
                });
            }
        }
        for (t, k, v) in &batch.equal {
            let found = self.existing(group, *t, k)?;
            if found.as_deref() != Some(v.as_slice()) {
                return Err(StoreError::Conflict {
                    tree: *t,
                    key: k.clone(),
                    existing: found.unwrap_or_default(),
                });
            }
        }
        if !batch.log.is_empty() && chain.is_none() {
            return Err(StoreError::Io("record log chain not installed".into()));
        }
        for op in batch.ops {
            match op {
                Op::Put(t, k, v) => group.put(t, &k, v),
                Op::Delete(t, k) => group.delete(t, &k),
            }
        }
        let mut receipt = CommitReceipt::default();
        if let Some(chain) = chain.as_mut() {
            for entry in &batch.log {
                let (seq, stored) = chain.append(entry);
                group.put(Tree::Records, &seq.to_be_bytes(), stored);
                receipt.log_seqs.push(seq);
                *wrote_log = true;
            }
        }
        Ok(receipt)
    }

    fn apply_and_sync(&self, group: Group) -> Result<(), StoreError> {
        if group.writes > 0 {
            // One sled batch for the whole group: atomic, all or nothing.
            self.kv.apply_batch(group.batch).map_err(io)?;
        }
        self.db.flush().map_err(io)?;
        if self.durability == Durability::Fsync {
            self.log_file.sync_data().map_err(io)?;
        }
        Ok(())
    }
}
