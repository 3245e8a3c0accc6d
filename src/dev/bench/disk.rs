//! Where the disk per answered inquiry goes: after the gateway has stopped, the store is opened
//! again and every tree is read through (entries, key bytes, value bytes), so that the
//! bench's one disk figure (bytes allocated under the data folder) splits into live data per
//! tree and what the storage engine keeps besides (old page versions, segment slack).

use std::path::Path;
use std::time::{Duration, Instant};

use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Store, Tree};
use serde::Serialize;

use super::BenchError;

/// Entries read per page while walking a tree (bounds the walk's memory).
const PAGE: usize = 4096;

/// One tree's live data.
#[derive(Debug, Clone, Serialize)]
pub struct TreeBytes {
    pub tree: &'static str,
    pub entries: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// The live data of every non-empty tree, largest first.
pub fn live_by_tree(store_dir: &Path) -> Result<Vec<TreeBytes>, BenchError> {
    let store = SledStore::open(store_dir, Durability::FlushOnly)?;
    let mut out = Vec::new();
    for tree in Tree::ALL {
        let mut t = TreeBytes {
            tree: tree.name(),
            entries: 0,
            key_bytes: 0,
            value_bytes: 0,
        };
        let mut start = Vec::new();
        loop {
            let page = store.range(tree, &start, &[], PAGE)?;
            for (k, v) in &page {
                t.entries += 1;
                t.key_bytes += k.len() as u64;
                t.value_bytes += v.len() as u64;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        if t.entries > 0 {
            out.push(t);
        }
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.key_bytes + t.value_bytes));
    drop(store);
    wait_for_release(&store_dir.join("db"))?;
    Ok(out)
}

/// How long the store's background threads may take to let go of its file lock.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits until nobody holds the store's file lock. Dropping the store handle stops its writer
/// and sled's flusher threads, but they let go of the lock only once they end; on a large
/// store that outlasts the drop, and a gateway started next (the bulk phase) would find the
/// store locked. sled takes the lock with `flock`, which conflicts across open files even in
/// one process, so taking and releasing it here shows the store is free.
fn wait_for_release(db_file: &Path) -> Result<(), BenchError> {
    let io = |source| BenchError::Io {
        what: format!("waiting for {} to be unlocked", db_file.display()),
        source,
    };
    let file = std::fs::File::open(db_file).map_err(io)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return file.unlock().map_err(io),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < RELEASE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io(std::io::Error::from(std::io::ErrorKind::WouldBlock)))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}
