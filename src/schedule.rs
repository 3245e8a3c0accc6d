//! The durable schedule: what the dispatcher must do and when, as keys of the `due` tree.
//!
//! There is no in-memory queue. A key is `due time (ms, big-endian) ‖ job`, the value is
//! empty; the dispatcher reads what is due in key order. A job is typed ([`Job`]) everywhere
//! but here, where it is spelled as it is on disk (`i:<inquiry id>`, `c:<unified number>`),
//! so that stores written before this type existed read the same.
//!
//! Whoever changes a job's state moves its schedule entry in the same atomic batch
//! ([`stage_move`]), so a crash leaves either the old state with the old entry or the new
//! state with the new one.

use std::sync::Arc;

use renkei_ids::UnifiedAddressNumber;
use renkei_store::{Batch, Store, StoreError, Tree};
use tokio::sync::Notify;

use renkei_ids::InquiryId;

/// Job spelling on disk: an inquiry to send or whose result to fetch.
const INQUIRY_PREFIX: &str = "i:";
/// Job spelling on disk: a person's code (符号) to acquire.
const CODE_PREFIX: &str = "c:";
/// Job spelling on disk: a copy version (副本) to transfer.
const COPY_PREFIX: &str = "p:";
/// Job spelling on disk: fetch the provisions the platform made from our copies.
const PROVISION_LOG: &str = "f:log";
/// Job spelling on disk: fetch the manual provision requests (手動提供) handed to us.
const MANUAL_FETCH: &str = "f:manual";
/// Job spelling on disk: a manual provision request — its deadline while pending, then
/// sending its answer.
const MANUAL_PREFIX: &str = "m:";

/// One piece of scheduled work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Send an inquiry, or fetch its result.
    Inquiry(InquiryId),
    /// Acquire a person's code (符号) from the platform.
    Code(UnifiedAddressNumber),
    /// Transfer a copy version (its id, `CP…`) to the platform.
    Copy(String),
    /// Fetch the provision log from the platform (one such job at a time).
    ProvisionLog,
    /// Fetch the pending manual provision requests (one such job at a time).
    ManualFetch,
    /// A manual provision request (the platform's id): time it out at its deadline, or
    /// send its answer.
    Manual(String),
}

/// A platform request id as the schedule accepts it: 1 to 64 ASCII letters, digits or '-'.
fn request_id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A copy version id as the schedule accepts it: `CP` and ASCII letters or digits, at most 64.
fn copy_id_ok(s: &str) -> bool {
    s.len() > 2
        && s.len() <= 64
        && s.starts_with("CP")
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A schedule key that is not one this gateway writes.
#[derive(Debug, thiserror::Error)]
#[error("unreadable schedule entry")]
pub struct BadEntry;

impl Job {
    fn spelling(&self) -> String {
        match self {
            Job::Inquiry(id) => format!("{INQUIRY_PREFIX}{id}"),
            Job::Code(u) => format!("{CODE_PREFIX}{u}"),
            Job::Copy(id) => format!("{COPY_PREFIX}{id}"),
            Job::ProvisionLog => PROVISION_LOG.to_string(),
            Job::ManualFetch => MANUAL_FETCH.to_string(),
            Job::Manual(id) => format!("{MANUAL_PREFIX}{id}"),
        }
    }

    fn parse(s: &str) -> Result<Job, BadEntry> {
        if let Some(id) = s.strip_prefix(INQUIRY_PREFIX) {
            return InquiryId::parse(id).map(Job::Inquiry).map_err(|_| BadEntry);
        }
        if let Some(u) = s.strip_prefix(CODE_PREFIX) {
            return UnifiedAddressNumber::parse(u)
                .map(Job::Code)
                .map_err(|_| BadEntry);
        }
        if let Some(id) = s.strip_prefix(COPY_PREFIX) {
            return copy_id_ok(id)
                .then(|| Job::Copy(id.to_string()))
                .ok_or(BadEntry);
        }
        if s == PROVISION_LOG {
            return Ok(Job::ProvisionLog);
        }
        if s == MANUAL_FETCH {
            return Ok(Job::ManualFetch);
        }
        if let Some(id) = s.strip_prefix(MANUAL_PREFIX) {
            return request_id_ok(id)
                .then(|| Job::Manual(id.to_string()))
                .ok_or(BadEntry);
        }
        Err(BadEntry)
    }
}

/// A job and its due time, as one key of the `due` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at_ms: u64,
    pub job: Job,
}

impl Due {
    /// The entry for `job` at `at_ms`.
    pub fn new(at_ms: u64, job: Job) -> Self {
        Self { at_ms, job }
    }

    /// The store key.
    pub fn key(&self) -> Vec<u8> {
        let spelling = self.job.spelling();
        let mut k = Vec::with_capacity(8 + spelling.len());
        k.extend_from_slice(&self.at_ms.to_be_bytes());
        k.extend_from_slice(spelling.as_bytes());
        k
    }

    /// Reads a store key.
    pub fn from_key(key: &[u8]) -> Result<Due, BadEntry> {
        let (time, job) = key.split_at_checked(8).ok_or(BadEntry)?;
        let at_ms = u64::from_be_bytes(time.try_into().map_err(|_| BadEntry)?);
        let job = Job::parse(std::str::from_utf8(job).map_err(|_| BadEntry)?)?;
        Ok(Due { at_ms, job })
    }
}

/// Adds `job` at `at_ms` to the batch; returns its key.
pub fn stage_new(b: &mut Batch, at_ms: u64, job: Job) -> Vec<u8> {
    let key = Due::new(at_ms, job).key();
    b.put(Tree::Due, key.clone(), Vec::new());
    key
}

/// Moves a job: removes its old entry (if any) and adds it at `at_ms`; returns the new key.
pub fn stage_move(b: &mut Batch, old: Option<Vec<u8>>, at_ms: u64, job: Job) -> Vec<u8> {
    if let Some(old) = old {
        b.delete(Tree::Due, old);
    }
    stage_new(b, at_ms, job)
}

/// Removes an entry (the job is finished, or the entry is stale).
pub fn stage_done(b: &mut Batch, key: &[u8]) {
    b.delete(Tree::Due, key.to_vec());
}

/// Up to `limit` entries due before `until_ms`, from `cursor` on, in due order.
pub fn due_before(
    store: &dyn Store,
    cursor: &[u8],
    until_ms: u64,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(store
        .range(Tree::Due, cursor, &until_ms.to_be_bytes(), limit)?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

/// When the earliest entry is due, if there is one.
pub fn next_due_ms(store: &dyn Store) -> Result<Option<u64>, StoreError> {
    Ok(store
        .range(Tree::Due, &[], &[], 1)?
        .first()
        .and_then(|(k, _)| k.get(..8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes))
}

/// Wakes the dispatcher when new work is scheduled for now (a shared handle).
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// A new handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the dispatcher to look at the schedule now.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Waits for [`Wake::notify`].
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_time() {
        let id = crate::util::new_inquiry_id();
        let u = UnifiedAddressNumber::from_serial(7).unwrap();
        let a = Due::new(5, Job::Inquiry(id.clone()));
        let b = Due::new(6, Job::Code(u));
        assert_eq!(Due::from_key(&a.key()).unwrap(), a);
        assert_eq!(Due::from_key(&b.key()).unwrap(), b);
        assert!(a.key() < b.key());
        // The on-disk spelling is the one stores written before this type used.
        assert_eq!(&a.key()[8..], format!("i:{id}").as_bytes());
        assert_eq!(&b.key()[8..], format!("c:{u}").as_bytes());
        let c = Due::new(7, Job::Copy("CP0123abc".into()));
        assert_eq!(Due::from_key(&c.key()).unwrap(), c);
        let f = Due::new(8, Job::ProvisionLog);
        assert_eq!(Due::from_key(&f.key()).unwrap(), f);
        let m = Due::new(8, Job::ManualFetch);
        assert_eq!(Due::from_key(&m.key()).unwrap(), m);
        let r = Due::new(8, Job::Manual("PQ01-abc".into()));
        assert_eq!(Due::from_key(&r.key()).unwrap(), r);
        assert!(Due::from_key(&Due::new(9, Job::Manual("PQ/../x".into())).key()).is_err());
        assert!(Due::from_key(&Due::new(9, Job::Copy("CP-../x".into())).key()).is_err());
        assert!(Due::from_key(b"short").is_err());
        assert!(Due::from_key(&[0, 0, 0, 0, 0, 0, 0, 1, b'x', b':']).is_err());
    }
}
