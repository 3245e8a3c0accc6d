//! The sled implementation of [`Store`]: all named trees in one sled tree (each under a one-byte
//! prefix, so that a whole commit group is one atomic `apply_batch`), one writer thread doing
//! group commit, and explicit `fsync`s of every file sled wrote before a group is acknowledged.
//!
//! # Durability: what sled 0.34 writes, and what this module syncs
//!
//! sled's `flush` ends in `sync_file_range` on Linux, which neither flushes the drive's write
//! cache nor the file's metadata (sled issue #1452), and sled never syncs some files at all.
//! Read from sled 0.34.7's source, these are the files it writes under the store's folder:
//!
//! - `db`, the log: every page write goes here, unless it is a blob (below). The writer
//!   `fdatasync`s it after each group's flush.
//! - `blobs/<lsn>`: any log message larger than `segment_size / 4 - 20` bytes (131,052 with
//!   the default 512 KiB segments; `pagecache/logger.rs`, `reserve_inner`) goes to a new file
//!   of its own, made with `create_new` and written with plain `write`s inside the reservation
//!   (`pagecache/blob_io.rs`, `write_blob`) — never synced, nor is `blobs/`. Messages are whole
//!   pages (a leaf holds up to 16 entries before it splits, so a page reaches the threshold with
//!   values far below it) and, for one value over the threshold, the value itself. Blob names
//!   are never reused, and a blob file is never written again after it is made.
//! - `conf` (created at the first open, not synced), `snap.<lsn>` (synced by sled, then renamed
//!   into place without syncing the folder), and the `blobs/` folder itself.
//!
//! The choice made here is to sync them, not to avoid them: the gateway stores values of some
//! hundred KB (a batch's list of rejected lines), and keeping every page under the threshold
//! would need a format change (larger segments cannot be set on an existing store) or a cap on
//! value sizes that the gateway does not have. So each group, after `apply_batch` and `flush`:
//!
//! 1. `blobs/` is listed and every file not seen at the previous group is `fsync`ed; if the
//!    listing changed, `blobs/` is `fsync`ed (its new entries).
//! 2. The store folder is listed; if its entries changed (a new snapshot, a rename), new files
//!    are `fsync`ed and so is the folder.
//! 3. `db` is `fdatasync`ed. Only then are the group's callers answered.
//!
//! Why a listing is enough: a blob is written by the thread that reserves its log message,
//! before that reservation completes, and `flush` returns only once every reservation up to the
//! log's end at the time of the call has completed; so every blob the group's pages went to
//! exists, fully written, when the listing runs. A blob made later (by another thread that
//! consolidates or splits a page) lies after the group in the log, so sled's recovery never
//! needs it to rebuild the group; it is synced at the next group, before that group's answer.
//! What this cannot close, short of patching sled: such a later blob is unsynced while sled's
//! own writes of the log after it may reach the disk (the kernel writes dirty pages back on its
//! own). A power cut in that window leaves recovery a blob that is empty (recovery stops there:
//! every acknowledged group lies before it) or missing (sled skips the message). Acknowledged
//! groups are not affected in the first case; the second needs a page split or merge racing
//! the cut, and is why the tests also kill the process at random moments and reopen.
//! At open, every existing blob, `conf`, `blobs/`, the store folder and its parent are synced
//! once, since a crash of an earlier run may have left them in the page cache only.
//!
//! The cost is one `readdir` of `blobs/` and of the store folder per group (both small: sled
//! deletes blobs that no page points to), plus one `fsync` per new blob.
//!
//! # Fail closed
//!
//! If `apply_batch`, `flush` or any sync fails, nothing is known about what reached the disk
//! (after a failed `fsync` Linux may even have dropped the dirty pages). The writer then refuses
//! every later commit with [`StoreError::Failed`] until restart, and [`Store::health`] says so.
//! sled has already put the failed group in its in-memory tree (it rewinds only its log), so
//! before applying a group the writer reads the value every written key had (one `get` per
//! distinct key, measured in the tests); on failure these become an overlay that every read
//! consults first, so reads show only acknowledged data. When sled itself took the group (the
//! failure was in a flush or sync) the old values are also written back to sled's memory, best
//! effort and never acknowledged, so that sled's own later flushes do not carry the failed group.
//!
//! Readers see a group once it is applied, before it is durable: a caller takes a durability
//! barrier (`commit(Batch::new())`) before acting on what it read; see [`Store::commit`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use super::{
    Batch, CommitFuture, CommitReceipt, CommitStats, Entries, GroupReport, Health, LogChain,
    ObserverSlot, Op, Store, StoreError, Tree, META_CHAIN_STATE,
};

/// Most batches one group takes; bounds latency of the first caller in a group.
const DEFAULT_MAX_GROUP: usize = 4096;
/// Queue depth in front of the writer; callers wait (backpressure) when it is full.
const DEFAULT_QUEUE_DEPTH: usize = 16_384;
/// sled page cache; small so that memory stays flat whatever the backlog (the OS page
/// cache still holds hot data).
const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// sled's folder of large pages (fixed by sled 0.34: `Config::blob_path`).
const BLOB_DIR: &str = "blobs";
/// sled's log file (fixed by sled 0.34: `Config::db_path`).
const LOG_FILE: &str = "db";

/// The first bytes of a store dump ([`SledStore::export`]).
pub const DUMP_MAGIC: &[u8] = b"RENKEI-STORE-DUMP-1\n";
/// The length that ends a dump's entries (followed by the entry count, u64 big-endian).
const DUMP_END: u32 = u32::MAX;
/// Entries applied per sled batch when importing a dump.
const IMPORT_CHUNK: usize = 10_000;

/// What [`SledStore::export`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportReport {
    /// Entries copied (every tree).
    pub entries: u64,
    /// Their bytes (keys, values and length prefixes).
    pub bytes: u64,
    /// How long commits were held (the copy under the commit lock).
    pub pause: std::time::Duration,
    /// How long it waited for the group being written to finish.
    pub waited: std::time::Duration,
}

/// Makes a new store in `dir` (which must not exist or be empty) from a dump made by
/// [`SledStore::export`], and makes it durable: the entries are applied in chunks, flushed, and
/// every file of the store is `fsync`ed. Refuses a dump that is cut short,
/// does not start with [`DUMP_MAGIC`] or whose entry count does not match.
pub fn import(dir: &Path, input: &mut dyn io::Read) -> Result<u64, StoreError> {
    if std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(StoreError::Io(format!("{} is not empty", dir.display())));
    }
    let corrupt = |detail: &str| StoreError::Corrupt {
        tree: "dump",
        detail: detail.to_string(),
    };
    let mut magic = vec![0u8; DUMP_MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| corrupt("too short"))?;
    if magic != DUMP_MAGIC {
        return Err(corrupt("not a renkei store dump"));
    }
    // sled itself, without a writer thread: nothing holds the database once this returns.
    let (db, kv) = open_sled(dir)?;
    let read_u32 = |input: &mut dyn io::Read| -> Result<u32, StoreError> {
        let mut b = [0u8; 4];
        input.read_exact(&mut b).map_err(|_| corrupt("cut short"))?;
        Ok(u32::from_be_bytes(b))
    };
    let read_part = |input: &mut dyn io::Read, len: u32| -> Result<Vec<u8>, StoreError> {
        let mut v = vec![0u8; len as usize];
        input.read_exact(&mut v).map_err(|_| corrupt("cut short"))?;
        Ok(v)
    };
    let mut entries = 0u64;
    let mut chunk = sled::Batch::default();
    let mut in_chunk = 0usize;
    loop {
        let len = read_u32(input)?;
        if len == DUMP_END {
            break;
        }
        let key = read_part(input, len)?;
        let len = read_u32(input)?;
        let value = read_part(input, len)?;
        chunk.insert(key, value);
        entries += 1;
        in_chunk += 1;
        if in_chunk == IMPORT_CHUNK {
            kv.apply_batch(std::mem::take(&mut chunk)).map_err(io)?;
            in_chunk = 0;
        }
    }
    let mut count = [0u8; 8];
    input
        .read_exact(&mut count)
        .map_err(|_| corrupt("cut short"))?;
    if u64::from_be_bytes(count) != entries {
        return Err(corrupt("entry count differs"));
    }
    kv.apply_batch(chunk).map_err(io)?;
    db.flush().map_err(io)?;
    drop(kv);
    drop(db);
    // Syncs every file the import wrote, the blobs and the folders (see `Syncer::open`).
    Syncer::open(dir).map_err(io)?;
    Ok(entries)
}

/// sled's database in `dir` with this store's settings, and its one tree.
fn open_sled(dir: &Path) -> Result<(sled::Db, sled::Tree), StoreError> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(DEFAULT_CACHE_BYTES)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(io)?;
    let kv = db.open_tree("kv").map_err(io)?;
    Ok((db, kv))
}

/// How hard the writer works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// sled flush, then `fsync` of every file sled wrote and of new directory entries:
    /// survives power loss (default).
    #[default]
    Fsync,
    /// sled flush only (`sync_file_range`): survives a process crash, not a power cut.
    /// For benchmarks that measure the cost of the real thing.
    FlushOnly,
}

type Job = crate::WriterJob;

/// The first storage failure and the acknowledged values of the keys its group touched.
#[derive(Debug)]
struct Failure {
    error: String,
    /// Full key → its value before the failed group (`None`: absent). Reads look here first.
    before: BTreeMap<Vec<u8>, Option<sled::IVec>>,
}

/// State the writer shares with readers: set once, on the first failure.
#[derive(Debug, Default)]
struct Shared {
    failure: OnceLock<Failure>,
}

impl Shared {
    fn refusal(&self) -> Option<StoreError> {
        self.failure
            .get()
            .map(|f| StoreError::Failed(f.error.clone()))
    }
}

/// A sled database with its group-commit writer.
pub struct SledStore {
    db: sled::Db,
    kv: sled::Tree,
    tx: mpsc::Sender<Job>,
    chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    batches: Arc<AtomicU64>,
    groups: Arc<AtomicU64>,
    shared: Arc<Shared>,
    path: PathBuf,
    observer: ObserverSlot,
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
        let (db, kv) = open_sled(dir)?;
        let syncer = Syncer::open(dir).map_err(io)?;
        let (tx, rx) = mpsc::channel(DEFAULT_QUEUE_DEPTH);
        let chain: Arc<Mutex<Option<Box<dyn LogChain>>>> = Arc::new(Mutex::new(None));
        let batches = Arc::new(AtomicU64::new(0));
        let groups = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared::default());
        let observer = ObserverSlot::default();
        let writer = Writer {
            db: db.clone(),
            kv: kv.clone(),
            syncer,
            durability,
            chain: chain.clone(),
            batches: batches.clone(),
            groups: groups.clone(),
            shared: shared.clone(),
            observer: observer.clone(),
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
            shared,
            path: dir.to_path_buf(),
            observer,
        }))
    }

    /// Writes a consistent copy of every tree to `out` (the dump format of [`import`]) while
    /// the gateway keeps serving: the group-commit writer holds the chain lock for the whole of
    /// each group (apply, flush, every `fsync`), so holding it here pauses commits between two
    /// groups — every group applied so far is durable and no later one is visible — for as long
    /// as the copy takes. Commits queue meanwhile and are answered once it is released. Refused
    /// once the store has failed (its memory may hold a failed group).
    pub fn export(&self, out: &mut dyn io::Write) -> Result<ExportReport, StoreError> {
        let waited = std::time::Instant::now();
        let guard = self
            .chain
            .lock()
            .map_err(|_| StoreError::Io("chain lock poisoned".into()))?;
        let paused = std::time::Instant::now();
        if let Some(refused) = self.shared.refusal() {
            return Err(refused);
        }
        let mut report = ExportReport::default();
        out.write_all(DUMP_MAGIC).map_err(io)?;
        for item in self.kv.iter() {
            let (k, v) = item.map_err(io)?;
            for part in [&k[..], &v[..]] {
                let len = u32::try_from(part.len()).map_err(io)?;
                out.write_all(&len.to_be_bytes()).map_err(io)?;
                out.write_all(part).map_err(io)?;
            }
            report.entries += 1;
            report.bytes += (k.len() + v.len() + 8) as u64;
        }
        out.write_all(&DUMP_END.to_be_bytes()).map_err(io)?;
        out.write_all(&report.entries.to_be_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        drop(guard);
        report.pause = paused.elapsed();
        report.waited = paused.duration_since(waited);
        Ok(report)
    }

    /// Bytes on disk used by the database (for reports).
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// The acknowledged-values overlay, once the store has failed.
    fn before(&self) -> Option<&BTreeMap<Vec<u8>, Option<sled::IVec>>> {
        self.shared.failure.get().map(|f| &f.before)
    }

    /// Entries of `r` in key order (or reversed), the failure overlay applied.
    fn scan(
        &self,
        r: std::ops::Range<Vec<u8>>,
        limit: usize,
        rev: bool,
    ) -> Result<Entries, StoreError> {
        let iter = self.kv.range(r.clone());
        match self.before() {
            None if rev => collect(iter.rev(), limit),
            None => collect(iter, limit),
            Some(before) if rev => merge(iter.rev(), before.range(r).rev(), true, limit),
            Some(before) => merge(iter, before.range(r), false, limit),
        }
    }
}

fn full_key(t: Tree, k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(t.tag());
    v.extend_from_slice(k);
    v
}

/// `[start, end)` inside tree `t`; an empty `end` means "to the end of the tree".
fn full_range(t: Tree, start: &[u8], end: &[u8]) -> std::ops::Range<Vec<u8>> {
    let lo = full_key(t, start);
    let hi = if end.is_empty() {
        vec![t.tag() + 1]
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

/// Which of two sorted streams holds the next key.
enum Next {
    Sled,
    Overlay,
    Both,
}

/// Merges sled's entries with the failure overlay (both in the same order): a key in the
/// overlay shows the overlay's value (or nothing, if it was absent before the failed group).
fn merge<'a>(
    mut sled_iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    mut overlay: impl Iterator<Item = (&'a Vec<u8>, &'a Option<sled::IVec>)>,
    rev: bool,
    limit: usize,
) -> Result<Entries, StoreError> {
    let mut out = Vec::new();
    let mut a = sled_iter.next().transpose().map_err(io)?;
    let mut b = overlay.next();
    while out.len() < limit {
        let next = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => Next::Sled,
            (None, Some(_)) => Next::Overlay,
            (Some((ka, _)), Some((kb, _))) => {
                let ord = ka.as_ref().cmp(kb.as_slice());
                match if rev { ord.reverse() } else { ord } {
                    std::cmp::Ordering::Less => Next::Sled,
                    std::cmp::Ordering::Greater => Next::Overlay,
                    std::cmp::Ordering::Equal => Next::Both,
                }
            }
        };
        if matches!(next, Next::Sled) {
            if let Some((k, v)) = a.take() {
                out.push((k[1..].to_vec(), v.to_vec()));
            }
        }
        if matches!(next, Next::Overlay | Next::Both) {
            if let Some((k, Some(v))) = b.take() {
                out.push((k[1..].to_vec(), v.to_vec()));
            }
            b = overlay.next();
        }
        if matches!(next, Next::Sled | Next::Both) {
            a = sled_iter.next().transpose().map_err(io)?;
        }
    }
    Ok(out)
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = full_key(tree, key);
        if let Some(v) = self.before().and_then(|b| b.get(&k)) {
            return Ok(v.as_ref().map(|v| v.to_vec()));
        }
        Ok(self.kv.get(k).map_err(io)?.map(|v| v.to_vec()))
    }

    fn range(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.scan(full_range(tree, start, end), limit, false)
    }

    fn range_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.scan(full_range(tree, start, end), limit, true)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        let lo = full_key(tree, prefix);
        if self.before().is_none() {
            return collect(self.kv.scan_prefix(lo), limit);
        }
        // The tag byte is below 0xff, so the end is always a finite key.
        let hi = super::prefix_end(&lo);
        self.scan(lo..hi, limit, false)
    }

    fn len(&self, tree: Tree) -> Result<usize, StoreError> {
        let mut n = self.kv.scan_prefix([tree.tag()]).count();
        if let Some(before) = self.before() {
            for (k, v) in before.range(full_range(tree, &[], &[])) {
                match (self.kv.contains_key(k).map_err(io)?, v.is_some()) {
                    (true, false) => n = n.saturating_sub(1),
                    (false, true) => n += 1,
                    _ => {}
                }
            }
        }
        Ok(n)
    }

    fn commit(&self, batch: Batch) -> CommitFuture {
        let tx = self.tx.clone();
        let refused = self.shared.refusal();
        Box::pin(async move {
            // Refused here too, not only by the writer: a writer stuck inside a failing
            // storage engine must not keep callers waiting.
            if let Some(e) = refused {
                return Err(e);
            }
            crate::send_to_writer(tx, batch).await
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

    fn observe_commits(&self, observer: crate::CommitObserver) {
        self.observer.set(observer);
    }

    fn health(&self) -> Health {
        match self.shared.failure.get() {
            None => Health::Ok,
            Some(f) => Health::Failed {
                error: f.error.clone(),
            },
        }
    }

    fn export(&self, out: &mut dyn io::Write) -> Result<ExportReport, StoreError> {
        SledStore::export(self, out)
    }
}

/// Names in a folder (a missing folder has none).
fn list(dir: &Path) -> io::Result<HashSet<OsString>> {
    let mut names = HashSet::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                names.insert(entry?.file_name());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(names)
}

/// `fsync`s a file or folder by path; one that is gone (sled removed it) needs nothing.
fn sync_path(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes every file sled wrote, and every entry it made, durable (see the module doc).
struct Syncer {
    dir: PathBuf,
    blob_dir: PathBuf,
    log_file: File,
    /// Blob names durable as of the last group.
    blobs: HashSet<OsString>,
    /// Store-folder names durable as of the last group.
    entries: HashSet<OsString>,
}

impl Syncer {
    /// Syncs everything sled may have left unsynced (this run's open, or an earlier run).
    fn open(dir: &Path) -> io::Result<Self> {
        let blob_dir = dir.join(BLOB_DIR);
        let log_file = File::open(dir.join(LOG_FILE))?;
        let blobs = list(&blob_dir)?;
        for name in &blobs {
            sync_path(&blob_dir.join(name))?;
        }
        sync_path(&blob_dir)?;
        let entries = list(dir)?;
        for name in &entries {
            if name != BLOB_DIR {
                sync_path(&dir.join(name))?;
            }
        }
        sync_path(dir)?;
        // The store folder's own entry, which `create_dir_all` may just have made.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_path(parent)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            blob_dir,
            log_file,
            blobs,
            entries,
        })
    }

    /// One group's syncs, after sled's flush: new blobs, changed folders, then the log.
    fn sync(&mut self) -> io::Result<()> {
        let blobs = list(&self.blob_dir)?;
        if blobs != self.blobs {
            for name in blobs.difference(&self.blobs) {
                sync_path(&self.blob_dir.join(name))?;
            }
            sync_path(&self.blob_dir)?;
            self.blobs = blobs;
        }
        let entries = list(&self.dir)?;
        if entries != self.entries {
            for name in entries.difference(&self.entries) {
                if name != BLOB_DIR {
                    sync_path(&self.dir.join(name))?;
                }
            }
            sync_path(&self.dir)?;
            self.entries = entries;
        }
        self.log_file.sync_data()
    }
}

struct Writer {
    db: sled::Db,
    kv: sled::Tree,
    syncer: Syncer,
    durability: Durability,
    chain: Arc<Mutex<Option<Box<dyn LogChain>>>>,
    batches: Arc<AtomicU64>,
    groups: Arc<AtomicU64>,
    shared: Arc<Shared>,
    observer: ObserverSlot,
}

/// The writes of one group, in order, plus an overlay used to check guards against writes
/// made earlier in the same group.
#[derive(Default)]
struct Group {
    batch: sled::Batch,
    writes: usize,
    /// Keys and values are `IVec`s: made once from the caller's bytes, then shared by the
    /// sled batch and this overlay without copying again. Its keys are every key the group
    /// writes, each once.
    overlay: HashMap<sled::IVec, Option<sled::IVec>>,
    /// Values guards read from sled before the group wrote their keys: the acknowledged
    /// values, reused so that a guarded key is not read twice.
    read: HashMap<sled::IVec, Option<sled::IVec>>,
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

/// Where a group's write failed.
struct WriteFailure {
    /// True when sled's `apply_batch` returned: its memory holds the whole group.
    applied: bool,
    error: String,
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

    fn existing(
        &self,
        group: &mut Group,
        t: Tree,
        k: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let k = full_key(t, k);
        if let Some(v) = group.overlay.get(k.as_slice()) {
            return Ok(v.as_ref().map(|v| v.to_vec()));
        }
        let v = self.kv.get(&k).map_err(io)?;
        let found = v.as_ref().map(|v| v.to_vec());
        group.read.insert(sled::IVec::from(k), v);
        Ok(found)
    }

    fn write_group(&mut self, jobs: Vec<Job>) {
        if let Some(refused) = self.shared.refusal() {
            for (_, done) in jobs {
                let _ = done.send(Err(refused.clone()));
            }
            return;
        }
        let chain = self.chain.clone();
        let mut chain_guard = match chain.lock() {
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
        let records = outcomes
            .iter()
            .map(|o| o.as_ref().map_or(0, |r| r.log_seqs.len()))
            .sum();
        let started = std::time::Instant::now();
        let written = self.write(group);
        self.observer.report(GroupReport {
            batches: waiters.len(),
            records,
            write: started.elapsed(),
            ok: written.is_ok(),
        });
        if let Err(e) = &written {
            tracing::error!(
                message = "Group commit failed; the store refuses writes until restart.",
                error = %e,
                batches = waiters.len()
            );
            *chain_guard = chain_backup;
        }
        drop(chain_guard);
        self.groups.fetch_add(1, Ordering::Relaxed);
        for (done, outcome) in waiters.into_iter().zip(outcomes) {
            let outcome = match (&written, outcome) {
                (Err(e), Ok(_)) => Err(StoreError::Io(e.clone())),
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

    /// Writes and syncs one group; on failure the store is failed for good (see the module
    /// doc) and the error is returned for the group's callers.
    fn write(&mut self, group: Group) -> Result<(), String> {
        // The acknowledged value of every key the group writes, read before sled's memory
        // holds the group; kept only if the group fails.
        let mut before = BTreeMap::new();
        for k in group.overlay.keys() {
            if let Some(v) = group.read.get(k) {
                before.insert(k.to_vec(), v.clone());
                continue;
            }
            match self.kv.get(k) {
                Ok(v) => {
                    before.insert(k.to_vec(), v);
                }
                Err(e) => {
                    // Nothing is applied yet: an empty overlay is exact.
                    let error = format!("reading before a group: {e}");
                    self.fail(error.clone(), BTreeMap::new(), false);
                    return Err(error);
                }
            }
        }
        match self.apply_and_sync(group) {
            Ok(()) => Ok(()),
            Err(WriteFailure { applied, error }) => {
                self.fail(error.clone(), before, applied);
                Err(error)
            }
        }
    }

    fn apply_and_sync(&mut self, group: Group) -> Result<(), WriteFailure> {
        if group.writes > 0 {
            // One sled batch for the whole group: atomic, all or nothing.
            self.kv.apply_batch(group.batch).map_err(|e| WriteFailure {
                applied: false,
                error: format!("apply: {e}"),
            })?;
        }
        let after_apply = |stage: &str, e: &dyn std::fmt::Display| WriteFailure {
            applied: true,
            error: format!("{stage}: {e}"),
        };
        self.db.flush().map_err(|e| after_apply("flush", &e))?;
        if self.durability == Durability::Fsync {
            self.syncer.sync().map_err(|e| after_apply("sync", &e))?;
        }
        Ok(())
    }

    /// Fails the store for good: refuse later writes, show the acknowledged values to readers,
    /// and (when sled holds the whole group) write those values back into sled's memory.
    fn fail(&self, error: String, before: BTreeMap<Vec<u8>, Option<sled::IVec>>, applied: bool) {
        if self.shared.failure.set(Failure { error, before }).is_err() {
            return;
        }
        if !applied {
            // sled failed inside `apply_batch`; it may be stuck on a half-made log buffer,
            // so nothing more is asked of it. The overlay serves reads.
            return;
        }
        let Some(failure) = self.shared.failure.get() else {
            return;
        };
        let mut undo = sled::Batch::default();
        for (k, v) in &failure.before {
            match v {
                Some(v) => undo.insert(k.as_slice(), v.clone()),
                None => undo.remove(k.as_slice()),
            }
        }
        // Never acknowledged and never relied on: sled usually refuses it after an I/O error.
        if let Err(error) = self.kv.apply_batch(undo) {
            tracing::warn!(message = "Could not write the old values back.", %error);
        }
    }
}
