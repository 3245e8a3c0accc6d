//! Key rotation while serving: publishes new signing and sealing keys to the platform in the
//! order that never breaks an exchange, and re-encrypts at-rest data after an at-rest key
//! rotation in the background (resumable: it simply finds what is still on an old version).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use renkei_crypto::at_rest::{at_rest_key_version, decrypt_at_rest, encrypt_at_rest};
use renkei_crypto::keyring::KeyPurpose;
use renkei_platform::{KeyUse, Message, PublishedKey};
use tokio::sync::watch;

use crate::gateway::Gateway;
use crate::registry::PersonRecord;
use crate::util::new_id;
use renkei_store::{Batch, StoreError, Tree};

/// Persons re-encrypted per store batch.
const REKEY_PAGE: usize = 256;
/// How often the background job looks for data on old at-rest keys.
const REKEY_INTERVAL: Duration = Duration::from_secs(2);

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// How many at-rest blobs each key version protects.
pub fn at_rest_usage(gw: &Gateway) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut out = BTreeMap::new();
    let mut start = Vec::new();
    loop {
        let page = gw.store.range(Tree::Persons, &start, &[], 4096)?;
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
        if page.len() < 4096 {
            break;
        }
        start = next;
    }
    Ok(out)
}

fn reseal(
    gw: &Gateway,
    location: &str,
    blob_b64: &str,
    active: u32,
) -> Result<Option<String>, String> {
    let blob = b64().decode(blob_b64).map_err(|e| e.to_string())?;
    if at_rest_key_version(&blob) == Some(active) {
        return Ok(None);
    }
    let ring = gw.keys.keyring();
    let plain = decrypt_at_rest(&ring, location, &blob).map_err(|e| e.to_string())?;
    let fresh = encrypt_at_rest(&ring, location, &plain).map_err(|e| e.to_string())?;
    Ok(Some(b64().encode(fresh)))
}

/// One pass: re-encrypts every person still on an old at-rest key. Returns how many.
pub async fn reencrypt_pass(gw: &Gateway) -> Result<u64, String> {
    let active = gw.keys.keyring().data_key().0;
    let mut done = 0u64;
    let mut start = Vec::new();
    loop {
        let page = gw
            .store
            .range(Tree::Persons, &start, &[], REKEY_PAGE)
            .map_err(|e| e.to_string())?;
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
                gw,
                &format!("persons/{u}/individual_number"),
                &p.individual_number_sealed,
                active,
            )?;
            let c = reseal(gw, &format!("persons/{u}/basic"), &p.basic_sealed, active)?;
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
            b.put(
                Tree::Persons,
                k.clone(),
                serde_json::to_vec(&p).map_err(|e| e.to_string())?,
            );
            done += 1;
        }
        if !b.is_empty() {
            match gw.store.commit(b).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.to_string()),
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
pub async fn reencrypt_job(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match reencrypt_pass(&gw).await {
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

/// Rotates one purpose's key while serving; returns the new version.
pub async fn rotate(gw: &Gateway, purpose: KeyPurpose) -> Result<u32, String> {
    let mut next = gw.keys.prepare().map_err(|e| e.to_string())?;
    let version = next.rotate(purpose).map_err(|e| e.to_string())?;
    match purpose {
        KeyPurpose::Signing => {
            // Publish first, signed with the current key the platform already trusts; only
            // then sign with the new one.
            let public = next
                .verifying_key(version)
                .ok_or("new signing key missing")?
                .to_sec1();
            publish(gw, KeyUse::Signing, version, public).await?;
            gw.keys.install(next).map_err(|e| e.to_string())?;
        }
        KeyPurpose::Sealing => {
            // Able to open the new version before anyone can seal to it.
            let public = next
                .opening_version(version)
                .ok_or("new sealing key missing")?
                .public_key()
                .to_bytes();
            gw.keys.install(next).map_err(|e| e.to_string())?;
            publish(gw, KeyUse::Sealing, version, public).await?;
        }
        _ => gw.keys.install(next).map_err(|e| e.to_string())?,
    }
    Ok(version)
}

async fn publish(
    gw: &Gateway,
    key_use: KeyUse,
    version: u32,
    public_key: Vec<u8>,
) -> Result<(), String> {
    let msg = Message::KeyPublication {
        header: gw.uplink.header(new_id("KP")),
        key: PublishedKey {
            agency: gw.config.agency_code.clone(),
            key_use,
            version,
            public_key,
            not_after: None,
        },
    };
    match gw.uplink.exchange(&msg).await {
        Ok(Message::KeyPublicationAck { version: v, .. }) if v == version => Ok(()),
        Ok(other) => Err(format!(
            "platform answered {} to the key publication",
            other.type_name()
        )),
        Err(e) => Err(format!("publishing the key to the platform failed: {e}")),
    }
}
