//! The retention sweep: contents of records older than the legal period (7 years) are
//! deleted, their hashes kept, so the chain and the Merkle tree still verify; the sweep
//! records itself.

use std::sync::Arc;
use std::time::Duration;

use renkei_records::{RecordKind, RecordResult};
use renkei_store::{Batch, Store, Tree};
use tokio::sync::watch;

use super::log::{decode, entries};
use super::{append, base, Error};
use crate::util::{now_ms, rfc3339_jst};

/// Where the retention sweep got to (every entry below it is swept or kept for good reason).
const META_SWEPT_UPTO: &[u8] = b"records.swept_upto";
/// Entries swept per store batch.
const SWEEP_BATCH: usize = 1000;
/// How often the retention sweeper runs: records expire by the day, so hourly is plenty.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes the contents of records older than `years` before `now` (RFC 3339), keeping their
/// hashes so the chain and the Merkle tree still verify, and records the sweep itself.
/// Records are swept in log order and the sweep stops at the first one still within the
/// period. Returns how many were swept.
pub async fn sweep_expired(store: &dyn Store, now: &str, years: u32) -> Result<u64, Error> {
    let cutoff = renkei_records::retention_cutoff(now, years)?;
    let mut cursor = store
        .get(Tree::Meta, META_SWEPT_UPTO)?
        .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    let mut swept = 0u64;
    let mut b = Batch::new();
    let mut in_batch = 0usize;
    for entry in entries(store, cursor) {
        let entry = entry?;
        let next = entry.seq + 1;
        if entry.content.is_some() {
            let Some(record) = decode(&entry) else {
                break;
            };
            match renkei_records::sweep(&entry, &record, &cutoff) {
                Some(gone) => {
                    b.put(
                        Tree::Records,
                        entry.seq.to_be_bytes().to_vec(),
                        gone.to_bytes(),
                    );
                    swept += 1;
                    in_batch += 1;
                }
                None => break,
            }
        }
        cursor = next;
        if in_batch >= SWEEP_BATCH {
            b.put(
                Tree::Meta,
                META_SWEPT_UPTO.to_vec(),
                cursor.to_be_bytes().to_vec(),
            );
            store.commit(std::mem::take(&mut b)).await?;
            in_batch = 0;
        }
    }
    b.put(
        Tree::Meta,
        META_SWEPT_UPTO.to_vec(),
        cursor.to_be_bytes().to_vec(),
    );
    if swept > 0 {
        let mut r = base(RecordKind::RetentionSweep, RecordResult::Done);
        r.reason = Some(format!("{swept} records older than {cutoff} swept"));
        append(&mut b, &r);
    }
    store.commit(b).await?;
    if swept > 0 {
        tracing::info!(message = "Retention sweep done.", swept);
    }
    Ok(swept)
}

/// Runs the retention sweep periodically until shutdown.
pub async fn sweeper(store: Arc<dyn Store>, years: u32, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = rfc3339_jst(now_ms());
        if let Err(error) = sweep_expired(store.as_ref(), &now, years).await {
            tracing::error!(message = "Retention sweep failed.", %error);
        }
        tokio::select! {
            _ = tokio::time::sleep(DEFAULT_SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
}
