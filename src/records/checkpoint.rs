//! Signed checkpoints of the record log: the background signer (every interval, or sooner when
//! many records arrived), and the public keys of every version that ever signed one, kept so
//! that old checkpoints stay verifiable after a key is retired.

use std::sync::Arc;
use std::time::Duration;

use renkei_records::{ChainState, Checkpoint, CheckpointSigner};
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

/// Key in `Meta` holding every signing key version's public key (SEC1) ever used for
/// checkpoints, so that checkpoints stay verifiable after the private key is retired.
const META_CHECKPOINT_KEYS: &[u8] = b"records.checkpoint_keys";

/// The public keys of every version that signed checkpoints (version → SEC1).
pub fn checkpoint_keys(
    store: &dyn Store,
) -> Result<std::collections::BTreeMap<u32, Vec<u8>>, Error> {
    match store.get(Tree::Meta, META_CHECKPOINT_KEYS)? {
        Some(b) => serde_json::from_slice::<std::collections::BTreeMap<u32, String>>(&b)?
            .into_iter()
            .map(|(v, h)| hex::decode(h).map(|k| (v, k)).map_err(Error::from))
            .collect(),
        None => Ok(Default::default()),
    }
}

/// Public keys (SEC1) by key version.
pub type KeysByVersion = std::collections::BTreeMap<u32, Vec<u8>>;

/// The stored checkpoint keys that the sealed keyring vouches for: a version is kept only
/// when the keyring lists a signing key of that version with the same fingerprint. Someone
/// who can write the store but not the keyring cannot slip in a key of their own (its
/// checkpoints then fail verification). Returns the trusted keys and the versions refused.
pub fn trusted_checkpoint_keys(
    store: &dyn Store,
    keyring: &KeyState,
) -> Result<(KeysByVersion, Vec<u32>), Error> {
    let listed: Vec<(u32, String)> = keyring
        .keyring()
        .list()
        .into_iter()
        .filter(|k| k.purpose == renkei_crypto::keyring::KeyPurpose::Signing)
        .filter_map(|k| k.fingerprint.map(|f| (k.version, f)))
        .collect();
    let mut trusted = std::collections::BTreeMap::new();
    let mut refused = Vec::new();
    for (v, sec1) in checkpoint_keys(store)? {
        let fingerprint = renkei_crypto::VerifyingKey::from_sec1(&sec1)?.fingerprint();
        if listed.iter().any(|(lv, lf)| *lv == v && *lf == fingerprint) {
            trusted.insert(v, sec1);
        } else {
            refused.push(v);
        }
    }
    Ok((trusted, refused))
}

/// The trusted checkpoint keys as PEM, for bundles and auditors.
pub fn checkpoint_keys_pem(
    store: &dyn Store,
    keyring: &KeyState,
) -> Result<std::collections::BTreeMap<u32, String>, Error> {
    let (trusted, refused) = trusted_checkpoint_keys(store, keyring)?;
    if !refused.is_empty() {
        tracing::error!(message = "Stored checkpoint keys the keyring does not vouch for; left out.", versions = ?refused);
    }
    trusted
        .into_iter()
        .map(|(v, k)| {
            renkei_crypto::VerifyingKey::from_sec1(&k)
                .map(|k| (v, k.to_spki_pem()))
                .map_err(Error::from)
        })
        .collect()
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
pub async fn checkpoint_now(store: &dyn Store, keys: &Arc<KeyState>) -> Result<Option<u64>, Error> {
    let Some(state) = store.log_chain_state()? else {
        return Ok(None);
    };
    let state = ChainState::from_bytes(&state)?;
    if state.next_seq == 0 || state.next_seq <= last_checkpoint_size(store)? {
        return Ok(None);
    }
    let cp = Checkpoint::sign(&state, &rfc3339_jst(now_ms()), &Signer(keys.clone()))?;
    let mut b = Batch::new();
    let mut known = checkpoint_keys(store)?;
    if let std::collections::btree_map::Entry::Vacant(slot) = known.entry(cp.key_version) {
        let ring = keys.keyring();
        let public = ring
            .verifying_key(cp.key_version)
            .ok_or(Error::MissingKey(cp.key_version))?
            .to_sec1();
        slot.insert(public);
        let as_hex: std::collections::BTreeMap<u32, String> =
            known.iter().map(|(v, k)| (*v, hex::encode(k))).collect();
        b.put(
            Tree::Meta,
            META_CHECKPOINT_KEYS.to_vec(),
            serde_json::to_vec(&as_hex)?,
        );
    }
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
