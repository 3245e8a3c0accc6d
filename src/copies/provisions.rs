//! The provisions the platform made automatically from this city's copies (情報提供), fetched
//! back on a schedule (`ProvisionLogRequest` after the last sequence number seen) and kept as
//! linkage records, so an audit shows who received what about whom.
//!
//! One job in the durable schedule does it; its current schedule key and the position are
//! kept in the `provision_log` tree and change in the same batch as the records they add, so
//! a crash neither loses nor repeats an entry.

use std::sync::Arc;

use renkei_ids::AgencyCode;
use renkei_platform::{item_status, Message, ProvisionEntry};
use renkei_records::{Record, RecordKind, RecordResult};
use renkei_store::{Batch, Store, Tree};

use crate::error::Error;
use crate::platform::{Policy, Uplink};
use crate::schedule::{self, Job};
use crate::util::{new_id, now_ms};

const DUE_KEY: &[u8] = b"due";
const AFTER_KEY: &[u8] = b"after";

/// Everything fetching the provision log needs.
pub struct ProvisionFetch {
    pub store: Arc<dyn Store>,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    pub agency: AgencyCode,
    pub interval_ms: u64,
}

/// Schedules the fetch job if it is not scheduled yet (at start-up).
pub async fn ensure_scheduled(store: &dyn Store) -> Result<(), Error> {
    ensure_singleton(store, DUE_KEY, Job::ProvisionLog).await
}

/// Schedules a job of which one runs at a time (a periodic fetch), unless it is scheduled
/// already: its current schedule key is kept in `Tree::ProvisionLog` under `due_key`.
pub(super) async fn ensure_singleton(
    store: &dyn Store,
    due_key: &[u8],
    job: Job,
) -> Result<(), Error> {
    if store.get(Tree::ProvisionLog, due_key)?.is_some() {
        return Ok(());
    }
    let mut b = Batch::new();
    b.require_absent(Tree::ProvisionLog, due_key.to_vec());
    let key = schedule::stage_new(&mut b, now_ms(), job);
    b.put(Tree::ProvisionLog, due_key.to_vec(), key);
    match store.commit(b).await {
        Ok(_) | Err(renkei_store::StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The record of one provision the platform made.
pub fn provision_record(e: &ProvisionEntry, city: &AgencyCode) -> Record {
    let (result, reason) = match e.item_status.as_str() {
        item_status::PROVIDED => (RecordResult::Answered, "provided from copy"),
        item_status::NOT_HELD => (RecordResult::NotHeld, "no copy in force"),
        item_status::WITHHELD => (RecordResult::Refused, "withheld: non-disclosure"),
        _ => (RecordResult::Failed, "other status"),
    };
    let mut r = crate::records::base(RecordKind::Provision, result);
    r.inquirer = Some(e.inquirer.clone());
    r.provider = Some(city.clone());
    r.procedure = Some(e.procedure.clone());
    r.item = Some(e.item.clone());
    r.person = Some(e.unified);
    r.provided_at = Some(e.provided_at.clone());
    r.non_disclosure = e.item_status == item_status::WITHHELD;
    r.reference = Some(format!("PL{}", e.seq));
    r.reason = Some(match e.version {
        Some(v) => format!("{reason} (v{v})"),
        None => reason.to_string(),
    });
    r
}

impl ProvisionFetch {
    fn after(&self) -> Result<u64, Error> {
        Ok(self
            .store
            .get(Tree::ProvisionLog, AFTER_KEY)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Runs the fetch job whose schedule entry is `key`.
    pub async fn run(&self, key: &[u8]) -> Result<(), Error> {
        let current = self.store.get(Tree::ProvisionLog, DUE_KEY)?;
        if current.as_deref() != Some(key) {
            let mut b = Batch::new();
            schedule::stage_done(&mut b, key);
            self.store.commit(b).await?;
            return Ok(());
        }
        let now = now_ms();
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            return self.reschedule(key, now + wait, Vec::new(), None).await;
        }
        let after = self.after()?;
        let msg = Message::ProvisionLogRequest {
            header: self.uplink.header(new_id("PL")),
            after,
        };
        let answer = self.policy.exchange(&self.uplink, &msg).await;
        let next = now_ms() + self.interval_ms;
        match answer {
            Ok(Message::ProvisionLog { entries, .. }) => {
                let mut records = Vec::new();
                let mut last = after;
                for e in entries.iter().filter(|e| e.seq > after) {
                    records.push(provision_record(e, &self.agency));
                    last = last.max(e.seq);
                }
                let more = !records.is_empty();
                let at = if more { now_ms() } else { next };
                self.reschedule(key, at, records, Some(last)).await
            }
            Ok(other) => {
                tracing::warn!(
                    message = "Unexpected answer to a provision log request.",
                    answer = other.type_name()
                );
                self.reschedule(key, next, Vec::new(), None).await
            }
            Err(e) => {
                tracing::info!(
                    message = "Provision log not fetched; will retry.",
                    reason = e.code()
                );
                let at = self.policy.retry_at(&e, 0).max(next.min(now_ms() + 1000));
                self.reschedule(key, at, Vec::new(), None).await
            }
        }
    }

    async fn reschedule(
        &self,
        key: &[u8],
        at: u64,
        records: Vec<Record>,
        after: Option<u64>,
    ) -> Result<(), Error> {
        let mut b = Batch::new();
        b.require_equal(Tree::ProvisionLog, DUE_KEY.to_vec(), key.to_vec());
        let new = schedule::stage_move(&mut b, Some(key.to_vec()), at, Job::ProvisionLog);
        b.put(Tree::ProvisionLog, DUE_KEY.to_vec(), new);
        for r in &records {
            crate::records::append(&mut b, r);
        }
        if let Some(a) = after {
            b.put(
                Tree::ProvisionLog,
                AFTER_KEY.to_vec(),
                a.to_string().into_bytes(),
            );
        }
        self.store.commit(b).await?;
        if !records.is_empty() {
            tracing::info!(message = "Provisions recorded.", count = records.len());
        }
        Ok(())
    }
}
