//! The gateway's linkage records (情報提供等記録): a record for every change the gateway
//! makes, appended to the hash-chained log in the same atomic batch as the change
//! ([`append`]); signed checkpoints ([`checkpoint`]); reading the log ([`log`]); the
//! retention sweep ([`retention`]). The log's rules (hashes, Merkle tree, bundle format) live
//! in `renkei_records`.

pub mod checkpoint;
pub mod log;
pub mod retention;

use renkei_records::{canonical_bytes, ChainState, Record, RecordKind, RecordResult};
use renkei_store::{Batch, LogChain, Store, StoreError};

use crate::util::{now_ms, rfc3339_jst};

/// Why reading or signing the record log failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Records(#[from] renkei_records::RecordsError),
    #[error("stored value is unreadable: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("key: {0}")]
    Crypto(#[from] renkei_crypto::CryptoError),
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => crate::error::Error::Store(s),
            other => crate::error::Error::internal("linkage records", other),
        }
    }
}

/// The store's log chain, backed by `renkei_records::ChainState`.
pub struct RecordChain(ChainState);

impl LogChain for RecordChain {
    fn append(&mut self, entry: &[u8]) -> (u64, Vec<u8>) {
        let stored = self.0.append(entry);
        (stored.seq, stored.to_bytes())
    }
    fn state(&self) -> Vec<u8> {
        self.0.to_bytes()
    }
    fn snapshot(&self) -> Box<dyn LogChain> {
        Box::new(RecordChain(self.0.clone()))
    }
    fn restore(&mut self, state: &[u8]) -> Result<(), StoreError> {
        // Another writer (a second gateway on the same PostgreSQL) advanced the chain.
        self.0 = ChainState::from_bytes(state).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            detail: e.to_string(),
        })?;
        Ok(())
    }
}

/// Installs the chain into the store, resuming from the persisted state.
pub fn install(store: &dyn Store) -> Result<(), StoreError> {
    let state = match store.log_chain_state()? {
        Some(b) => ChainState::from_bytes(&b).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            detail: e.to_string(),
        })?,
        None => ChainState::new(),
    };
    store.set_log_chain(Box::new(RecordChain(state)))
}

/// Appends `record` to the batch's log entries. A record whose free text fails validation
/// (it looks like it holds an individual number, or a time is malformed) is still recorded —
/// the event happened — but with its free text withheld and the time set to now.
pub fn append(b: &mut Batch, record: &Record) {
    match renkei_records::checked_canonical_bytes(record) {
        Ok(bytes) => b.append_log(bytes),
        Err(error) => {
            tracing::error!(
                message = "Record text failed validation; recorded without it.",
                code = error.code()
            );
            let mut safe = record.clone();
            safe.reason = Some("record text withheld: failed validation".into());
            safe.reference = None;
            safe.requested_at = rfc3339_jst(now_ms());
            safe.provided_at = None;
            if let Some(staff) = safe.staff.as_mut() {
                staff.target = None;
                staff.action = "withheld".into();
            }
            b.append_log(canonical_bytes(&safe));
        }
    }
}

/// A record with the common fields filled in.
pub fn base(kind: RecordKind, result: RecordResult) -> Record {
    Record {
        kind,
        inquirer: None,
        provider: None,
        procedure: None,
        item: None,
        person: None,
        business_system: None,
        requested_at: rfc3339_jst(now_ms()),
        provided_at: None,
        serial: None,
        result,
        reason: None,
        non_disclosure: false,
        staff: None,
        reference: None,
    }
}

/// Appends one record on its own and waits until it is durable: a staff action is recorded
/// before its answer is given.
pub async fn record_now(store: &dyn Store, r: &Record) -> Result<(), StoreError> {
    let mut b = Batch::new();
    append(&mut b, r);
    store.commit(b).await.map(|_| ())
}
