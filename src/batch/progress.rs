//! Counting a batch's inquiries by status, page by page over its per-line entries. Lines seen
//! final are marked so, and are not read again; once acceptance finished and every line is
//! final the batch is `done` and its counts never change.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::internal;
use super::{line_prefix, progress_key, BatchMeta, BatchState, LineEntry, Progress};
use crate::error::Error;
use crate::inquiry::Inquiries;
use crate::inquiry::Status;
use crate::util::now_ms;
use renkei_store::{prefix_end, Batch, Tree};

/// Line entries read per store scan: large enough to amortise the scan, small enough that
/// one page (and its write-back) never holds more than a few hundred kilobytes.
pub const DEFAULT_SCAN_PAGE: usize = 2048;
/// Counts younger than this are answered as they are: a client polling every few
/// milliseconds must not make the gateway re-read 300,000 inquiries each time.
pub const DEFAULT_MIN_RECOUNT_MS: u64 = 500;
/// A recount waits at least this many times as long as the last one took, so counting a
/// large batch takes at most a tenth of one core however often clients ask (a recount of a
/// 300,000-line batch reads up to 300,000 inquiries: about a second of CPU).
pub const DEFAULT_RECOUNT_SPACING: u64 = 10;

fn counting() -> &'static Mutex<HashSet<String>> {
    static COUNTING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    COUNTING.get_or_init(|| Mutex::new(HashSet::new()))
}

/// One count per batch at a time; a concurrent caller gets the last stored counts.
struct CountClaim(String);

impl CountClaim {
    fn take(id: &str) -> Option<CountClaim> {
        let inserted = match counting().lock() {
            Ok(mut g) => g.insert(id.to_string()),
            Err(p) => p.into_inner().insert(id.to_string()),
        };
        inserted.then(|| CountClaim(id.to_string()))
    }
}

impl Drop for CountClaim {
    fn drop(&mut self) {
        match counting().lock() {
            Ok(mut g) => g.remove(&self.0),
            Err(p) => p.into_inner().remove(&self.0),
        };
    }
}

/// The last stored counts of a batch.
pub fn stored(gw: &Inquiries, id: &str) -> Result<Option<Progress>, Error> {
    match gw.store().get(Tree::Batches, &progress_key(id))? {
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(internal),
        None => Ok(None),
    }
}

/// Current counts of `meta`'s batch: the stored ones when fresh (or final), else a recount.
pub async fn progress(gw: &Inquiries, meta: &BatchMeta) -> Result<Progress, Error> {
    let last = stored(gw, &meta.id)?;
    if let Some(p) = last {
        let age = now_ms().saturating_sub(p.counted_ms);
        if p.done || age < DEFAULT_MIN_RECOUNT_MS.max(DEFAULT_RECOUNT_SPACING * p.count_ms) {
            return Ok(p);
        }
    }
    let Some(_claim) = CountClaim::take(&meta.id) else {
        return Ok(last.unwrap_or_default());
    };
    recount(gw, meta).await
}

/// Reads every line entry of the batch (and the inquiries not yet final), saves and returns
/// the counts.
pub async fn recount(gw: &Inquiries, meta: &BatchMeta) -> Result<Progress, Error> {
    let started = Instant::now();
    let acceptance_over = meta.state == BatchState::Accepted;
    let prefix = line_prefix(&meta.id);
    let end = prefix_end(&prefix);
    let mut start = prefix.clone();
    let mut p = Progress::default();
    loop {
        let page = gw
            .store()
            .range(Tree::Batches, &start, &end, DEFAULT_SCAN_PAGE)?;
        let Some((last_key, _)) = page.last() else {
            break;
        };
        let mut next = last_key.clone();
        next.push(0);
        let full = page.len() == DEFAULT_SCAN_PAGE;
        let mut b = Batch::new();
        for (key, value) in page {
            let mut entry: LineEntry = serde_json::from_slice(&value).map_err(internal)?;
            let Some(inquiry) = entry.inquiry.as_deref() else {
                // A refused line: counted in the batch's metadata, not here.
                continue;
            };
            let status = match entry.final_status {
                Some(s) => s,
                None => {
                    let id = renkei_ids::InquiryId::parse(inquiry).ok();
                    let found = match id {
                        Some(id) => gw.repo().get(&id)?,
                        None => None,
                    };
                    let s = found
                        .map(|i| i.status)
                        // An inquiry cannot vanish; count it as failed rather than pending forever.
                        .unwrap_or(Status::Failed);
                    if s.is_final() {
                        entry.final_status = Some(s);
                        b.put(
                            Tree::Batches,
                            key,
                            serde_json::to_vec(&entry).map_err(internal)?,
                        );
                    }
                    s
                }
            };
            match status {
                Status::Queued | Status::AwaitingCode => p.queued += 1,
                Status::Sent => p.sent += 1,
                Status::Answered => p.answered += 1,
                Status::Failed => p.failed += 1,
            }
        }
        if !b.is_empty() {
            gw.store().commit(b).await?;
        }
        if !full {
            break;
        }
        start = next;
        tokio::task::yield_now().await;
    }
    p.done = acceptance_over && p.queued == 0 && p.sent == 0;
    p.counted_ms = now_ms();
    p.count_ms = started.elapsed().as_millis() as u64;
    let mut b = Batch::new();
    b.put(
        Tree::Batches,
        progress_key(&meta.id),
        serde_json::to_vec(&p).map_err(internal)?,
    );
    gw.store().commit(b).await?;
    Ok(p)
}
