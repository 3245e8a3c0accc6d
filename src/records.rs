//! The gateway's linkage records (情報提供等記録): builds a record for every change it makes,
//! appends it to the hash-chained log in the same atomic batch as the change, signs
//! checkpoints, and answers auditors (query, export, live verify, retention sweep).
//! The log's rules (hashes, Merkle tree, bundle format) live in `renkei_records`.

use std::sync::Arc;
use std::time::Duration;

use renkei_records::{
    canonical_bytes, ChainState, Checkpoint, CheckpointSigner, Record, RecordKind, RecordResult,
    StoredEntry,
};
use tokio::sync::watch;

use crate::keys::KeyState;
use crate::util::{now_ms, rfc3339_jst};
use renkei_store::{Batch, LogChain, Store, StoreError, Tree, META_CHAIN_STATE};

/// A checkpoint is signed once this many records were added since the last one…
pub const DEFAULT_CHECKPOINT_EVERY_RECORDS: u64 = 10_000;
/// …or this long after a record was added, whichever comes first: an auditor's export is at
/// most this stale.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

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

/// Set only by `renkei bench` to measure what recording costs; nothing else can turn records
/// off (there is no config for it: the law requires them).
static BENCH_WITHOUT_RECORDS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// For `renkei bench` only: stop (or resume) writing records in this process.
pub fn bench_set_records(enabled: bool) {
    BENCH_WITHOUT_RECORDS.store(!enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Whether records are being written (always, outside `renkei bench`).
pub fn bench_records_enabled() -> bool {
    !BENCH_WITHOUT_RECORDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Appends `record` to the batch's log entries. A record whose free text fails validation
/// (it looks like it holds an individual number, or a time is malformed) is still recorded —
/// the event happened — but with its free text withheld and the time set to now.
pub fn append(b: &mut Batch, record: &Record) {
    if BENCH_WITHOUT_RECORDS.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
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

/// Key in `Meta` holding every signing key version's public key (SEC1) ever used for
/// checkpoints, so that checkpoints stay verifiable after the private key is retired.
const META_CHECKPOINT_KEYS: &[u8] = b"records.checkpoint_keys";

/// The public keys of every version that signed checkpoints (version → SEC1).
pub fn checkpoint_keys(
    store: &dyn Store,
) -> Result<std::collections::BTreeMap<u32, Vec<u8>>, String> {
    match store
        .get(Tree::Meta, META_CHECKPOINT_KEYS)
        .map_err(|e| e.to_string())?
    {
        Some(b) => serde_json::from_slice::<std::collections::BTreeMap<u32, String>>(&b)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(v, h)| hex::decode(h).map(|k| (v, k)).map_err(|e| e.to_string()))
            .collect(),
        None => Ok(Default::default()),
    }
}

/// The checkpoint keys as PEM, for bundles and auditors.
pub fn checkpoint_keys_pem(
    store: &dyn Store,
) -> Result<std::collections::BTreeMap<u32, String>, String> {
    checkpoint_keys(store)?
        .into_iter()
        .map(|(v, k)| {
            renkei_crypto::VerifyingKey::from_sec1(&k)
                .map(|k| (v, k.to_spki_pem()))
                .map_err(|e| e.to_string())
        })
        .collect()
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

/// Signs checkpoints with the gateway's active signing key.
struct Signer(Arc<KeyState>);

impl CheckpointSigner for Signer {
    fn key_version(&self) -> u32 {
        self.0.keyring().signing().0
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.0
            .keyring()
            .signing()
            .1
            .sign(msg)
            .map_err(|e| e.to_string())
    }
}

/// The latest checkpoint's tree size (0 if none).
pub fn last_checkpoint_size(store: &dyn Store) -> Result<u64, StoreError> {
    Ok(store
        .range_rev(Tree::Checkpoints, &[], &[], 1)?
        .first()
        .and_then(|(k, _)| k.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

/// Signs a checkpoint of the current chain state if the log grew since the last one.
pub async fn checkpoint_now(
    store: &dyn Store,
    keys: &Arc<KeyState>,
) -> Result<Option<u64>, String> {
    let Some(state) = store.log_chain_state().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let state = ChainState::from_bytes(&state).map_err(|e| e.to_string())?;
    if state.next_seq == 0
        || state.next_seq <= last_checkpoint_size(store).map_err(|e| e.to_string())?
    {
        return Ok(None);
    }
    let cp = Checkpoint::sign(&state, &rfc3339_jst(now_ms()), &Signer(keys.clone()))
        .map_err(|e| e.to_string())?;
    let mut b = Batch::new();
    let mut known = checkpoint_keys(store)?;
    if let std::collections::btree_map::Entry::Vacant(slot) = known.entry(cp.key_version) {
        let ring = keys.keyring();
        let public = ring
            .verifying_key(cp.key_version)
            .ok_or("the signing key just used has no public key")?
            .to_sec1();
        slot.insert(public);
        let as_hex: std::collections::BTreeMap<u32, String> =
            known.iter().map(|(v, k)| (*v, hex::encode(k))).collect();
        b.put(
            Tree::Meta,
            META_CHECKPOINT_KEYS.to_vec(),
            serde_json::to_vec(&as_hex).map_err(|e| e.to_string())?,
        );
    }
    b.put(
        Tree::Checkpoints,
        cp.tree_size.to_be_bytes().to_vec(),
        cp.to_json_line().into_bytes(),
    );
    store.commit(b).await.map_err(|e| e.to_string())?;
    Ok(Some(cp.tree_size))
}

/// Signs checkpoints every interval (or sooner when many records arrived) until shutdown.
pub async fn checkpointer(
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let grown = store
            .log_chain_state()
            .ok()
            .flatten()
            .and_then(|b| ChainState::from_bytes(&b).ok())
            .map(|s| s.next_seq)
            .unwrap_or(0)
            .saturating_sub(last_checkpoint_size(store.as_ref()).unwrap_or(0));
        let wait = if grown >= DEFAULT_CHECKPOINT_EVERY_RECORDS {
            Duration::ZERO
        } else {
            DEFAULT_CHECKPOINT_INTERVAL
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        if let Err(error) = checkpoint_now(store.as_ref(), &keys).await {
            tracing::error!(message = "Checkpoint failed.", %error);
        }
        if *shutdown.borrow() {
            break;
        }
    }
}

/// All checkpoints, oldest first.
pub fn checkpoints(store: &dyn Store) -> Result<Vec<Checkpoint>, String> {
    store
        .range(Tree::Checkpoints, &[], &[], usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, v)| {
            Checkpoint::from_json_line(&String::from_utf8_lossy(&v)).map_err(|e| e.to_string())
        })
        .collect()
}

/// Stored entries from `from` (inclusive) in order, read in pages.
pub fn entries(
    store: &dyn Store,
    from: u64,
) -> impl Iterator<Item = Result<StoredEntry, String>> + '_ {
    const PAGE: usize = 4096;
    let mut next = from;
    let mut buf: std::collections::VecDeque<Result<StoredEntry, String>> = Default::default();
    let mut done = false;
    std::iter::from_fn(move || {
        if buf.is_empty() && !done {
            match store.range(Tree::Records, &next.to_be_bytes(), &[], PAGE) {
                Ok(page) => {
                    if page.len() < PAGE {
                        done = true;
                    }
                    for (_, v) in page {
                        let e = StoredEntry::from_bytes(&v).map_err(|e| e.to_string());
                        if let Ok(entry) = &e {
                            next = entry.seq + 1;
                        }
                        buf.push_back(e);
                    }
                }
                Err(e) => {
                    done = true;
                    buf.push_back(Err(e.to_string()));
                }
            }
        }
        buf.pop_front()
    })
}

/// Decodes a stored entry's record, if its content is still there.
pub fn decode(entry: &StoredEntry) -> Option<Record> {
    entry
        .content
        .as_ref()
        .and_then(|c| serde_json::from_slice::<Record>(c).ok())
}

/// Key of the chain state, for tests that tamper with the store.
pub const CHAIN_STATE_KEY: &[u8] = META_CHAIN_STATE;

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
pub async fn sweep_expired(store: &dyn Store, now: &str, years: u32) -> Result<u64, String> {
    let cutoff = renkei_records::retention_cutoff(now, years).map_err(|e| e.to_string())?;
    let mut cursor = store
        .get(Tree::Meta, META_SWEPT_UPTO)
        .map_err(|e| e.to_string())?
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
            store
                .commit(std::mem::take(&mut b))
                .await
                .map_err(|e| e.to_string())?;
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
    store.commit(b).await.map_err(|e| e.to_string())?;
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
