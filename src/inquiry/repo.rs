//! The one reader and writer of the inquiry trees: `inquiries` (by id), `idempotency`
//! (`system \0 key` → id and request hash), `awaiting_code` (`unified \0 id`) and
//! `inquiry_status` (`id` → status, tallied by the store so that counting by status reads five
//! counters, not every sealed value).
//! Writes are staged into a caller's batch, so each state change stays one atomic commit with
//! its schedule entry and its linkage record.
//!
//! An inquiry's value (its business number, conditions, result — income figures and the like
//! — and the platform's messages) is stored encrypted with the at-rest key, bound to its
//! location [`inquiry_location`] (`inquiries/<id>`): a value copied under another id does not
//! open. The two index trees hold only ids, a request hash and unified numbers.

use std::sync::Arc;

use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest, AT_REST_MAGIC};
use renkei_ids::{InquiryId, SystemId, UnifiedAddressNumber};
use renkei_store::{key2, prefix_end, Batch, Store, StoreError, Tree};
use serde::{Deserialize, Serialize};

use super::model::{Inquiry, Status};
use crate::keyring::KeyState;

/// Why a stored inquiry value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored inquiry value is unreadable: {0}")]
    Corrupt(#[from] super::codec::CodecError),
    #[error("stored inquiry value cannot be opened with the at-rest keys: {0}")]
    Crypto(String),
    #[error("stored inquiry value is in plaintext (a store written by an older build); start from an empty data_dir")]
    Plaintext,
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

/// The at-rest location an inquiry's value is bound to, from its key in `Tree::Inquiries`.
pub fn inquiry_location(key: &[u8]) -> String {
    format!("inquiries/{}", String::from_utf8_lossy(key))
}

/// Set in `Meta` once every inquiry of the store is in the status index.
pub const META_STATUS_INDEXED: &[u8] = b"inquiries.status_indexed";

/// How many inquiries are held in each status, every status listed (from the store's
/// tallies of `inquiry_status`: O(statuses)).
pub fn count_by_status(store: &dyn Store) -> Result<Vec<(Status, u64)>, StoreError> {
    let tallies = renkei_store::tallies(store, Tree::InquiryStatus)?;
    Ok(Status::ALL
        .iter()
        .map(|s| {
            let n = tallies
                .iter()
                .find(|(v, _)| v.as_slice() == s.as_str().as_bytes())
                .map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect())
}

/// Access to the inquiry trees.
#[derive(Clone)]
pub struct InquiryRepo {
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
}

impl std::fmt::Debug for InquiryRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InquiryRepo").finish_non_exhaustive()
    }
}

impl InquiryRepo {
    /// The repository over `store`, values sealed with `keys`' at-rest key.
    pub fn new(store: Arc<dyn Store>, keys: Arc<KeyState>) -> Self {
        Self { store, keys }
    }

    /// Reads an inquiry.
    pub fn get(&self, id: &InquiryId) -> Result<Option<Inquiry>, RepoError> {
        let key = id.as_str().as_bytes();
        match self.store.get(Tree::Inquiries, key)? {
            Some(v) => Ok(Some(self.open(key, &v)?)),
            None => Ok(None),
        }
    }

    /// How many inquiries are held in each status: the store's tallies of `inquiry_status`,
    /// one short read whatever the backlog (for metrics, read on each scrape).
    pub fn count_by_status(&self) -> Result<Vec<(Status, u64)>, RepoError> {
        Ok(count_by_status(self.store.as_ref())?)
    }

    /// Builds the status index of a store written before it (every inquiry opened once) and
    /// marks the store as indexed; a store already marked is left alone. Run at start-up,
    /// before anything changes an inquiry. Idempotent: an index cut short by a crash is
    /// completed on the next start (a tallied write of the same status counts nothing).
    /// Returns how many inquiries were indexed.
    pub async fn ensure_status_index(&self) -> Result<usize, RepoError> {
        const PAGE: usize = 1024;
        if self.store.get(Tree::Meta, META_STATUS_INDEXED)?.is_some() {
            return Ok(0);
        }
        let mut start = Vec::new();
        let mut indexed = 0;
        loop {
            let page = self.store.range(Tree::Inquiries, &start, &[], PAGE)?;
            let mut b = Batch::new();
            for (k, v) in &page {
                let status = self.open(k, v)?.status;
                b.put_tallied(Tree::InquiryStatus, k.clone(), status.as_str());
                indexed += 1;
            }
            let last = page.len() < PAGE;
            if last {
                b.put(Tree::Meta, META_STATUS_INDEXED, b"1".to_vec());
            }
            self.store.commit(b).await?;
            match page.last() {
                Some((k, _)) if !last => {
                    start = k.clone();
                    start.push(0);
                }
                _ => return Ok(indexed),
            }
        }
    }

    /// Stages "this inquiry belongs to its system" (the index [`InquiryRepo::list_for`] reads).
    pub fn stage_system_index(&self, b: &mut Batch, inquiry: &Inquiry) {
        b.put(
            Tree::InquiriesBySystem,
            key2(inquiry.system.as_str(), inquiry.id.as_str()),
            Vec::new(),
        );
    }

    /// A page of `system`'s inquiries, newest first, older than `before` (an id) when given.
    /// At most `scan` index entries are opened (values are sealed, so `keep` is applied after
    /// opening): the page may be short, and its cursor says where to go on. The scan stops at
    /// the first inquiry `stop` refuses (e.g. one accepted before a `since`), with no cursor.
    pub fn list_for(
        &self,
        system: &SystemId,
        before: Option<&InquiryId>,
        limit: usize,
        scan: usize,
        keep: impl Fn(&Inquiry) -> bool,
        stop: impl Fn(&Inquiry) -> bool,
    ) -> Result<(Vec<Inquiry>, Option<InquiryId>), RepoError> {
        let prefix = key2(system.as_str(), "");
        let mut end = match before {
            Some(id) => key2(system.as_str(), id.as_str()),
            None => prefix_end(&prefix),
        };
        let mut found = Vec::new();
        let mut opened = 0usize;
        loop {
            let want = (scan - opened).min(256);
            let rows = self
                .store
                .range_rev(Tree::InquiriesBySystem, &prefix, &end, want)?;
            for (k, _) in &rows {
                end = k.clone();
                opened += 1;
                let Some(id) = std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(|s| InquiryId::parse(s).ok())
                else {
                    continue;
                };
                let Some(inquiry) = self.get(&id)? else {
                    continue;
                };
                if stop(&inquiry) {
                    return Ok((found, None));
                }
                if keep(&inquiry) {
                    found.push(inquiry);
                    if found.len() == limit {
                        return Ok((found, Some(id)));
                    }
                }
            }
            if rows.len() < want {
                return Ok((found, None));
            }
            if opened >= scan {
                let cursor = std::str::from_utf8(&end[prefix.len()..])
                    .ok()
                    .and_then(|s| InquiryId::parse(s).ok());
                return Ok((found, cursor));
            }
        }
    }

    /// Decrypts and parses one stored inquiry value.
    fn open(&self, key: &[u8], value: &[u8]) -> Result<Inquiry, RepoError> {
        if !value.starts_with(AT_REST_MAGIC) {
            return Err(RepoError::Plaintext);
        }
        let plain = decrypt_at_rest(&self.keys.keyring(), &inquiry_location(key), value)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        Ok(super::codec::decode_inquiry(&plain)?)
    }

    /// Stages the write of an inquiry's current state.
    pub fn stage_put(&self, b: &mut Batch, inquiry: &Inquiry) -> Result<(), RepoError> {
        let key = inquiry.id.as_str().as_bytes().to_vec();
        let plain = zeroize::Zeroizing::new(super::codec::encode_inquiry(inquiry)?);
        let sealed = encrypt_at_rest(&self.keys.keyring(), &inquiry_location(&key), &plain)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        b.put_tallied(Tree::InquiryStatus, key.clone(), inquiry.status.as_str());
        b.put(Tree::Inquiries, key, sealed);
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
            Some(v) => Ok(Some(super::codec::decode_idempotency(&v)?)),
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
        b.put(
            Tree::Idempotency,
            k,
            super::codec::encode_idempotency(entry)?,
        );
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
