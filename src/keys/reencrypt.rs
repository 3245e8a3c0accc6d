//! Background re-encryption after an at-rest key rotation: finds every stored value still on
//! an old version and re-encrypts it onto the active one (resumable: each pass simply finds
//! what is still old; compare-and-swap per person, so a concurrent update wins).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use renkei_crypto::at_rest::{at_rest_key_version, decrypt_at_rest, encrypt_at_rest};
use renkei_store::{Batch, Store, StoreError, Tree};
use tokio::sync::watch;

use super::Error;
use crate::keyring::KeyState;
use crate::registry::PersonRecord;

/// Persons re-encrypted per store batch.
const REKEY_PAGE: usize = 256;
/// Persons read per page when counting what each version protects.
const USAGE_PAGE: usize = 4096;
/// How often the background job looks for data on old at-rest keys.
const REKEY_INTERVAL: Duration = Duration::from_secs(2);

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// How many at-rest blobs each key version protects.
pub fn at_rest_usage(store: &dyn Store) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut out = BTreeMap::new();
    let mut start = Vec::new();
    loop {
        let page = store.range(Tree::Persons, &start, &[], USAGE_PAGE)?;
        let Some((last, _)) = page.last() else { break };
        let mut next = last.clone();
        next.push(0);
        for (_, v) in &page {
            if let Ok(p) = serde_json::from_slice::<PersonRecord>(v) {
                for blob in [&p.individual_number_sealed, &p.basic_sealed] {
                    if let Some(ver) = b64()
                        .decode(blob)
                        .ok()
                        .and_then(|b| at_rest_key_version(&b))
                    {
                        *out.entry(ver).or_insert(0) += 1;
                    }
                }
            }
        }
        if page.len() < USAGE_PAGE {
            break;
        }
        start = next;
    }
    Ok(out)
}

fn reseal(
    keys: &KeyState,
    location: &str,
    blob_b64: &str,
    active: u32,
) -> Result<Option<String>, Error> {
    let blob = b64().decode(blob_b64)?;
    if at_rest_key_version(&blob) == Some(active) {
        return Ok(None);
    }
    let ring = keys.keyring();
    let plain = decrypt_at_rest(&ring, location, &blob)?;
    let fresh = encrypt_at_rest(&ring, location, &plain)?;
    Ok(Some(b64().encode(fresh)))
}

/// One pass: re-encrypts every person still on an old at-rest key. Returns how many.
pub async fn reencrypt_pass(store: &dyn Store, keys: &KeyState) -> Result<u64, Error> {
    let active = keys.keyring().data_key().0;
    let mut done = 0u64;
    let mut start = Vec::new();
    loop {
        let page = store.range(Tree::Persons, &start, &[], REKEY_PAGE)?;
        let Some((last, _)) = page.last() else { break };
        let mut next = last.clone();
        next.push(0);
        let mut b = Batch::new();
        for (k, v) in &page {
            let Ok(mut p) = serde_json::from_slice::<PersonRecord>(v) else {
                continue;
            };
            let u = p.unified;
            let a = reseal(
                keys,
                &format!("persons/{u}/individual_number"),
                &p.individual_number_sealed,
                active,
            )?;
            let c = reseal(keys, &format!("persons/{u}/basic"), &p.basic_sealed, active)?;
            if a.is_none() && c.is_none() {
                continue;
            }
            if let Some(a) = a {
                p.individual_number_sealed = a;
            }
            if let Some(c) = c {
                p.basic_sealed = c;
            }
            // Compare-and-swap: a concurrent update of this person makes the batch retry later.
            b.require_equal(Tree::Persons, k.clone(), v.clone());
            b.put(Tree::Persons, k.clone(), serde_json::to_vec(&p)?);
            done += 1;
        }
        if !b.is_empty() {
            match store.commit(b).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if page.len() < REKEY_PAGE {
            break;
        }
        start = next;
    }
    Ok(done)
}

/// Background job: keeps at-rest data on the active key.
pub async fn reencrypt_job(
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match reencrypt_pass(store.as_ref(), &keys).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                message = "Re-encrypted at-rest data on the active key.",
                persons = n
            ),
            Err(error) => tracing::error!(message = "Re-encryption pass failed.", %error),
        }
        tokio::select! {
            _ = tokio::time::sleep(REKEY_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
}
