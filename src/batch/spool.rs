//! Batch uploads spooled to disk as they arrive, never held whole in memory: each upload is
//! written to its own owner-only file under `<data_dir>/spool/`, counted against the size
//! limit and hashed on the way, made durable, then read back line by line by the acceptance
//! task. The file is removed when the batch's acceptance ends (or the upload is refused),
//! and everything left in the folder — uploads cut short by a crash — at start.
//!
//! Also here: the per-system cap on batches in progress ([`try_slot`]), held from the first
//! byte received to the end of acceptance.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use renkei_ids::SystemId;
use tokio::io::AsyncWriteExt;

/// The spool folder's name under the data folder.
pub const SPOOL_DIR: &str = "spool";
/// Read buffer of the acceptance task over a spool file: a few lines' worth of page-cache
/// reads at a time (the file was just written and synced, so these do not wait on the disk).
const READ_BUFFER: usize = 64 * 1024;

/// Where uploads are spooled.
pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SPOOL_DIR)
}

/// Creates the spool folder (0700) and removes whatever a previous run left in it.
pub fn clear(data_dir: &Path) -> std::io::Result<usize> {
    let dir = spool_dir(data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir)? {
        std::fs::remove_file(entry?.path())?;
        removed += 1;
    }
    Ok(removed)
}

/// A spool file, removed when this is dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(message = "Spool file not removed.", %error);
            }
        }
    }
}

/// Why an upload could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the upload is larger than the limit")]
    TooLarge,
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
}

/// An upload being written to its spool file.
pub struct SpoolWriter {
    file: tokio::fs::File,
    spool: SpoolFile,
    sha: ring::digest::Context,
    bytes: u64,
    limit: u64,
}

/// A whole upload on disk, durable.
#[derive(Debug)]
pub struct Spooled {
    pub file: SpoolFile,
    pub bytes: u64,
    pub sha256: String,
}

impl SpoolWriter {
    /// A new, empty spool file (0600) for an upload of at most `limit` bytes.
    pub async fn create(data_dir: &Path, limit: u64) -> Result<Self, SpoolError> {
        let dir = spool_dir(data_dir);
        // Made at start by `clear`; made here too for a gateway built without starting it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(crate::util::new_id("up-"));
        let std_file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Self {
            file: tokio::fs::File::from_std(std_file),
            spool: SpoolFile { path },
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
            limit,
        })
    }

    /// Appends a piece of the upload; refuses once the total passes the limit (the file is
    /// removed when the writer is dropped).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(SpoolError::TooLarge);
        }
        self.sha.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// True when nothing was received.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Makes the upload durable and hands it over.
    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(Spooled {
            file: self.spool,
            bytes: self.bytes,
            sha256: hex::encode(self.sha.finish().as_ref()),
        })
    }
}

impl Spooled {
    /// Reads the upload from the top.
    pub fn reader(&self) -> std::io::Result<BufReader<std::fs::File>> {
        Ok(BufReader::with_capacity(
            READ_BUFFER,
            std::fs::File::open(&self.file.path)?,
        ))
    }
}

/// Batches in progress per system (only configured business systems ever appear).
fn in_progress() -> &'static Mutex<HashMap<SystemId, usize>> {
    static IN_PROGRESS: OnceLock<Mutex<HashMap<SystemId, usize>>> = OnceLock::new();
    IN_PROGRESS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// One of a system's batch slots, given back when dropped.
#[derive(Debug)]
pub struct BatchSlot(SystemId);

impl Drop for BatchSlot {
    fn drop(&mut self) {
        let mut g = in_progress().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = g.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.remove(&self.0);
            }
        }
    }
}

/// A slot for one more batch of `system`, if it has fewer than `max` in progress.
pub fn try_slot(system: &SystemId, max: usize) -> Option<BatchSlot> {
    let mut g = in_progress().lock().unwrap_or_else(|p| p.into_inner());
    let n = g.entry(system.clone()).or_insert(0);
    if *n >= max {
        return None;
    }
    *n += 1;
    Some(BatchSlot(system.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_system_and_given_back() {
        let a = SystemId::parse("spool-test-a").unwrap();
        let b = SystemId::parse("spool-test-b").unwrap();
        let s1 = try_slot(&a, 2).unwrap();
        let _s2 = try_slot(&a, 2).unwrap();
        assert!(try_slot(&a, 2).is_none());
        assert!(try_slot(&b, 2).is_some());
        drop(s1);
        assert!(try_slot(&a, 2).is_some());
    }

    #[tokio::test]
    async fn spool_counts_against_the_limit_and_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        clear(tmp.path()).unwrap();
        let mut w = SpoolWriter::create(tmp.path(), 10).await.unwrap();
        w.write(b"12345").await.unwrap();
        assert!(matches!(
            w.write(b"678901").await,
            Err(SpoolError::TooLarge)
        ));
        drop(w);
        assert_eq!(std::fs::read_dir(spool_dir(tmp.path())).unwrap().count(), 0);

        let mut w = SpoolWriter::create(tmp.path(), 10).await.unwrap();
        w.write(b"abc").await.unwrap();
        let s = w.finish().await.unwrap();
        assert_eq!(s.sha256, crate::util::sha256_hex(b"abc"));
        let mode = std::fs::metadata(&s.file.path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s.reader().unwrap(), &mut text).unwrap();
        assert_eq!(text, "abc");
        drop(s);
        assert_eq!(std::fs::read_dir(spool_dir(tmp.path())).unwrap().count(), 0);
        // Left-overs of a crash go at start.
        std::fs::write(spool_dir(tmp.path()).join("up-old"), b"x").unwrap();
        assert_eq!(clear(tmp.path()).unwrap(), 1);
    }
}
