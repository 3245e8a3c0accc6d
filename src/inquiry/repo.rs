//! The one reader and writer of the inquiry trees: `inquiries` (by id), `idempotency`
//! (`system \0 key` → id and request hash) and `awaiting_code` (`unified \0 id`).
//! Writes are staged into a caller's batch, so each state change stays one atomic commit with
//! its schedule entry and its linkage record.

use std::sync::Arc;

use renkei_ids::{InquiryId, SystemId, UnifiedAddressNumber};
use renkei_store::{key2, prefix_end, Batch, Store, StoreError, Tree};
use serde::{Deserialize, Serialize};

use super::model::{Inquiry, Status};

/// Why a stored inquiry value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored inquiry value is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl From<RepoError> for crate::error::Error {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Store(s) => crate::error::Error::Store(s),
            other => crate::error::Error::internal("reading an inquiry", other),
        }
    }
}

/// What an idempotency key remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdemEntry {
    pub id: InquiryId,
    pub request_sha256: String,
}

/// One `awaiting_code` entry: its key, and the inquiry it names (`None` if unreadable).
pub type AwaitingEntry = (Vec<u8>, Option<InquiryId>);

/// Access to the inquiry trees.
#[derive(Debug, Clone)]
pub struct InquiryRepo {
    store: Arc<dyn Store>,
}

impl InquiryRepo {
    /// The repository over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Reads an inquiry.
    pub fn get(&self, id: &InquiryId) -> Result<Option<Inquiry>, RepoError> {
        match self.store.get(Tree::Inquiries, id.as_str().as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// How many inquiries are held in each status (a scan of the tree, page by page: for
    /// metrics, read on each scrape).
    pub fn count_by_status(&self) -> Result<Vec<(Status, usize)>, RepoError> {
        /// Only the status is decoded.
        #[derive(Deserialize)]
        struct StatusOnly {
            status: Status,
        }
        const PAGE: usize = 4096;
        let mut counts: Vec<(Status, usize)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        let mut start = Vec::new();
        loop {
            let page = self.store.range(Tree::Inquiries, &start, &[], PAGE)?;
            for (_, v) in &page {
                let s: StatusOnly = serde_json::from_slice(v)?;
                if let Some(c) = counts.iter_mut().find(|(st, _)| *st == s.status) {
                    c.1 += 1;
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    start = k.clone();
                    start.push(0);
                }
                _ => return Ok(counts),
            }
        }
    }

    /// Stages the write of an inquiry's current state.
    pub fn stage_put(&self, b: &mut Batch, inquiry: &Inquiry) -> Result<(), RepoError> {
        b.put(
            Tree::Inquiries,
            inquiry.id.as_str().as_bytes().to_vec(),
            serde_json::to_vec(inquiry)?,
        );
        Ok(())
    }

    fn idem_key(system: &SystemId, key: &str) -> Vec<u8> {
        key2(system.as_str(), key)
    }

    /// The inquiry an idempotency key already names, if any.
    pub fn idempotency(
        &self,
        system: &SystemId,
        key: &str,
    ) -> Result<Option<IdemEntry>, RepoError> {
        match self
            .store
            .get(Tree::Idempotency, &Self::idem_key(system, key))?
        {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Stages a new idempotency key; the batch fails with a conflict if it exists by then.
    pub fn stage_idempotency(
        &self,
        b: &mut Batch,
        system: &SystemId,
        key: &str,
        entry: &IdemEntry,
    ) -> Result<(), RepoError> {
        let k = Self::idem_key(system, key);
        b.require_absent(Tree::Idempotency, k.clone());
        b.put(Tree::Idempotency, k, serde_json::to_vec(entry)?);
        Ok(())
    }

    /// Stages "this inquiry waits for `u`'s code".
    pub fn stage_awaiting(&self, b: &mut Batch, u: &UnifiedAddressNumber, id: &InquiryId) {
        b.put(
            Tree::AwaitingCode,
            key2(&u.to_string(), id.as_str()),
            Vec::new(),
        );
    }

    /// Stages "this inquiry no longer waits".
    pub fn stage_not_awaiting(&self, b: &mut Batch, u: &UnifiedAddressNumber, id: &InquiryId) {
        b.delete(Tree::AwaitingCode, key2(&u.to_string(), id.as_str()));
    }

    /// Stages the removal of one `awaiting_code` key as [`InquiryRepo::awaiting`] listed it.
    pub fn stage_awaiting_done(&self, b: &mut Batch, key: Vec<u8>) {
        b.delete(Tree::AwaitingCode, key);
    }

    /// The inquiries waiting for `u`'s code (their `awaiting_code` keys and ids).
    pub fn awaiting(&self, u: &UnifiedAddressNumber) -> Result<Vec<AwaitingEntry>, RepoError> {
        let prefix = key2(&u.to_string(), "");
        let rows = self.store.range(
            Tree::AwaitingCode,
            &prefix,
            &prefix_end(&prefix),
            usize::MAX,
        )?;
        Ok(rows
            .into_iter()
            .map(|(k, _)| {
                let id = std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(|s| InquiryId::parse(s).ok());
                (k, id)
            })
            .collect())
    }
}
