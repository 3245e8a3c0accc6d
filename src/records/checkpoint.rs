//! Signed checkpoints of the record log: the background signer (every interval, or sooner when
//! many records arrived) with the keyring's own checkpoint key, and the public keys that
//! verify them — every checkpoint-key version, retired ones included, read from the sealed
//! keyring only.

use std::sync::Arc;
use std::time::Duration;

use renkei_records::{ChainState, Checkpoint, CheckpointSigner, KeySet};
use renkei_store::{Batch, Store, StoreError, Tree};
use tokio::sync::watch;

use super::Error;
use crate::keyring::KeyState;
use crate::util::{now_ms, rfc3339_jst};

/// A checkpoint is signed once this many records were added since the last one…
pub const DEFAULT_CHECKPOINT_EVERY_RECORDS: u64 = 10_000;
/// …or this long after a record was added, whichever comes first: an auditor's export is at
/// most this stale.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Public keys (SEC1) by checkpoint-key version.
pub type KeysByVersion = std::collections::BTreeMap<u32, Vec<u8>>;

/// The public key of every checkpoint-key version, retired ones included, from the sealed
/// keyring alone. Keys kept anywhere in the store are never consulted: someone who can write
/// the store but not the keyring cannot slip in a key of their own (its checkpoints then
/// fail verification).
pub fn checkpoint_keys(keyring: &KeyState) -> Result<KeysByVersion, Error> {
    Ok(keyring
        .keyring()
        .checkpoint_public_keys()?
        .into_iter()
        .map(|(v, k)| (v, k.to_sec1()))
        .collect())
}

/// [`checkpoint_keys`] as PEM, for bundles and auditors.
pub fn checkpoint_keys_pem(
    keyring: &KeyState,
) -> Result<std::collections::BTreeMap<u32, String>, Error> {
    Ok(keyring
        .keyring()
        .checkpoint_public_keys()?
        .into_iter()
        .map(|(v, k)| (v, k.to_spki_pem()))
        .collect())
}

/// [`checkpoint_keys`] as the key set checkpoints are verified with.
pub fn checkpoint_key_set(keyring: &KeyState) -> Result<KeySet, Error> {
    Ok(KeySet::from_pems(checkpoint_keys(keyring)?)?)
}

/// Signs checkpoints with the keyring's active checkpoint key (its own purpose, never the
/// message-signing key), taken once so that version and signature always agree.
struct Signer(Arc<renkei_crypto::keyring::Keyring>);

impl CheckpointSigner for Signer {
    fn key_version(&self) -> u32 {
        self.0.checkpoint_signing().map(|(v, _)| v).unwrap_or(0)
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let (_, key) = self.0.checkpoint_signing().map_err(|e| e.to_string())?;
        key.sign(msg).map_err(|e| e.to_string())
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
pub async fn checkpoint_now(store: &dyn Store, keys: &Arc<KeyState>) -> Result<Option<u64>, Error> {
    let Some(state) = store.log_chain_state()? else {
        return Ok(None);
    };
    let state = ChainState::from_bytes(&state)?;
    if state.next_seq == 0 || state.next_seq <= last_checkpoint_size(store)? {
        return Ok(None);
    }
    let cp = Checkpoint::sign(&state, &rfc3339_jst(now_ms()), &Signer(keys.keyring()))?;
    let mut b = Batch::new();
    b.put(
        Tree::Checkpoints,
        cp.tree_size.to_be_bytes().to_vec(),
        cp.to_json_line().into_bytes(),
    );
    store.commit(b).await?;
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
