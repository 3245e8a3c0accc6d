//! Background re-encryption after an at-rest key rotation: finds every stored value still on
//! an old version and re-encrypts it onto the active one (resumable: each pass simply finds
//! what is still old; compare-and-swap per value, so a concurrent update wins), and counts
//! what each at-rest key version still protects (`GET /v1/keys/status`, retirement).
//!
//! # What each tree holds, and what is encrypted
//!
//! Every value is sealed with the at-rest key in the RKE1 envelope bound to its location
//! (tree and key, e.g. `persons/000000000000017/fugo`), so a value copied to another key
//! does not open. Keys are never encrypted: they are what the store looks values up by.
//!
//! | tree | holds | at rest |
//! |---|---|---|
//! | `persons` | per unified number: individual number, basic four facts, code (符号), code status, life state, times | individual number (`…/individual_number`), basic facts (`…/basic`) and code (`…/fugo`) sealed; statuses and times plain (they gate every inquiry and name no one) |
//! | `inquiries` | per inquiry id: business number, conditions, result (income figures …), the platform's messages, status, times | the whole value sealed (`inquiries/<id>`) |
//! | `copies` | per copy version id: business number, unified number, item, dates, the copy's converted data, transfer status | the whole value sealed (`copies/<id>`) |
//! | `provision_requests` | per manual provision request id: the holding system's business number, unified number, procedure, item, as-of date, deadline, the answer (its converted data, decision, reason code), status | the whole value sealed (`provision_requests/<id>`) |
//! | `provision_requests_by_system` | `system ‖ request id` → empty | plain: no personal value |
//! | `copy_index`, `provision_log` | `system ‖ business number ‖ item ‖ version` → version id; the provision-log position and its schedule key | plain: no personal value |
//! | `blind_index` | HMAC of individual numbers and of (kana/name, birth date) → unified number; applied-change markers | keyed HMACs (blind-index key) reveal nothing; values are unified numbers |
//! | `business_links`, `reverse_links` | business system's number ↔ unified number | plain: lookup keys; neither is personal data by itself |
//! | `idempotency` | `system ‖ key` → inquiry id, request SHA-256 | plain: no personal value |
//! | `due`, `awaiting_code` | schedule: times, inquiry ids, unified numbers | plain: no personal value |
//! | `batches` | batch counts, per-line inquiry ids, rejected lines (line, field, code, scrubbed message) | plain: no personal value (the results file is rendered from the sealed inquiries) |
//! | `records`, `checkpoints` | linkage records (who asked what about which unified number, when) and signed checkpoints | plain: hash-chained audit evidence with codes and numbers, no values or facts |
//! | `staff` | staff users (password hash, TOTP secret, lockout state) and sessions (by the SHA-256 of their token) | the whole value sealed (`staff/<key>`) |
//! | `meta` | counters, chain state, merge redirects (unified → unified) | plain: no personal value |
//!
//! A store written by an older build (inquiries and codes in plaintext) is refused at start
//! (`store_plaintext_format`, see `registry::Registry::new`), not migrated: pre-production.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use renkei_crypto::at_rest::{at_rest_key_version, decrypt_at_rest, encrypt_at_rest};
use renkei_store::{Batch, Store, StoreError, Tree};
use tokio::sync::watch;

use super::Error;
use crate::copies::manual::request_location;
use crate::copies::repo::copy_location;
use crate::inquiry::repo::inquiry_location;
use crate::keyring::KeyState;
use crate::registry::{fugo_location, PersonRecord};
use crate::staff::staff_location;

/// Values re-encrypted per store batch.
const REKEY_PAGE: usize = 256;
/// Values read per page when counting what each version protects.
const USAGE_PAGE: usize = 4096;
/// How often the background job looks for data on old at-rest keys.
const REKEY_INTERVAL: Duration = Duration::from_secs(2);
/// Once a pass found nothing old, passes are skipped until the active version changes, but a
/// full pass still runs every this many intervals (a write sealed just before a rotation and
/// committed just after it is found then).
const FULL_PASS_EVERY: u32 = 30;

/// The at-rest location of a value from its key.
type Location = fn(&[u8]) -> String;

/// Trees whose every value is one at-rest envelope, with the location of a key.
const SEALED_TREES: [(Tree, Location); 4] = [
    (Tree::Inquiries, inquiry_location),
    (Tree::Staff, staff_location),
    (Tree::Copies, copy_location),
    (Tree::ProvisionRequests, request_location),
];

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A person's sealed fields: (location, base64 envelope).
fn person_blobs(p: &PersonRecord) -> Vec<(String, &str)> {
    let u = p.unified;
    let mut out = vec![
        (
            format!("persons/{u}/individual_number"),
            p.individual_number_sealed.as_str(),
        ),
        (format!("persons/{u}/basic"), p.basic_sealed.as_str()),
    ];
    if let Some(f) = &p.fugo_sealed {
        out.push((fugo_location(&u), f.as_str()));
    }
    out
}

/// One page of (key, value) pairs.
type Page = Vec<(Vec<u8>, Vec<u8>)>;

/// A tree read a page at a time, in key order.
struct Pages {
    tree: Tree,
    len: usize,
    /// Where the next page starts; `None` once the last page was read.
    start: Option<Vec<u8>>,
}

impl Pages {
    fn new(tree: Tree, len: usize) -> Self {
        Self {
            tree,
            len,
            start: Some(Vec::new()),
        }
    }

    /// The next page (empty when the tree is done).
    fn next(&mut self, store: &dyn Store) -> Result<Page, StoreError> {
        let Some(start) = self.start.take() else {
            return Ok(Vec::new());
        };
        let page = store.range(self.tree, &start, &[], self.len)?;
        if page.len() == self.len {
            self.start = page.last().map(|(k, _)| {
                let mut next = k.clone();
                next.push(0);
                next
            });
        }
        Ok(page)
    }
}

/// Calls `f` on every (key, value) of `tree`, a page at a time.
fn scan(
    store: &dyn Store,
    tree: Tree,
    page_len: usize,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    let mut pages = Pages::new(tree, page_len);
    loop {
        let page = pages.next(store)?;
        if page.is_empty() {
            return Ok(());
        }
        for (k, v) in &page {
            f(k, v);
        }
    }
}

/// How many at-rest blobs each key version protects, over every tree that holds them.
pub fn at_rest_usage(store: &dyn Store) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut out = BTreeMap::new();
    let mut count = |ver: Option<u32>| {
        if let Some(ver) = ver {
            *out.entry(ver).or_insert(0u64) += 1;
        }
    };
    scan(store, Tree::Persons, USAGE_PAGE, |_, v| {
        if let Ok(p) = serde_json::from_slice::<PersonRecord>(v) {
            for (_, blob) in person_blobs(&p) {
                count(
                    b64()
                        .decode(blob)
                        .ok()
                        .and_then(|b| at_rest_key_version(&b)),
                );
            }
        }
    })?;
    for (tree, _) in SEALED_TREES {
        scan(store, tree, USAGE_PAGE, |_, v| {
            count(at_rest_key_version(v))
        })?;
    }
    Ok(out)
}

/// `blob` re-encrypted onto the active version, or `None` if it is on it already.
fn reseal_raw(
    keys: &KeyState,
    location: &str,
    blob: &[u8],
    active: u32,
) -> Result<Option<Vec<u8>>, Error> {
    if at_rest_key_version(blob) == Some(active) {
        return Ok(None);
    }
    let ring = keys.keyring();
    let plain = decrypt_at_rest(&ring, location, blob)?;
    Ok(Some(encrypt_at_rest(&ring, location, &plain)?))
}

fn reseal(
    keys: &KeyState,
    location: &str,
    blob_b64: &str,
    active: u32,
) -> Result<Option<String>, Error> {
    let blob = b64().decode(blob_b64)?;
    Ok(reseal_raw(keys, location, &blob, active)?.map(|b| b64().encode(b)))
}

/// Commits a page of compare-and-swap re-encryptions; a conflict leaves it to the next pass.
async fn commit_page(store: &dyn Store, b: Batch) -> Result<(), Error> {
    if b.is_empty() {
        return Ok(());
    }
    match store.commit(b).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A person's value with its sealed fields moved onto the active key, or `None` if all are
/// on it (or the value is not a person record).
fn reseal_person(keys: &KeyState, value: &[u8], active: u32) -> Result<Option<Vec<u8>>, Error> {
    let Ok(mut p) = serde_json::from_slice::<PersonRecord>(value) else {
        return Ok(None);
    };
    let u = p.unified;
    let a = reseal(
        keys,
        &format!("persons/{u}/individual_number"),
        &p.individual_number_sealed,
        active,
    )?;
    let c = reseal(keys, &format!("persons/{u}/basic"), &p.basic_sealed, active)?;
    let f = match &p.fugo_sealed {
        Some(f) => reseal(keys, &fugo_location(&u), f, active)?,
        None => None,
    };
    if a.is_none() && c.is_none() && f.is_none() {
        return Ok(None);
    }
    if let Some(a) = a {
        p.individual_number_sealed = a;
    }
    if let Some(c) = c {
        p.basic_sealed = c;
    }
    if f.is_some() {
        p.fugo_sealed = f;
    }
    Ok(Some(serde_json::to_vec(&p)?))
}

/// Re-encrypts every value of `tree` that `reseal_value(key, value)` finds on an old key.
async fn reencrypt_tree(
    store: &dyn Store,
    tree: Tree,
    reseal_value: impl Fn(&[u8], &[u8]) -> Result<Option<Vec<u8>>, Error>,
) -> Result<u64, Error> {
    let mut done = 0u64;
    let mut pages = Pages::new(tree, REKEY_PAGE);
    loop {
        let page = pages.next(store)?;
        if page.is_empty() {
            return Ok(done);
        }
        let mut b = Batch::new();
        for (k, v) in &page {
            if let Some(fresh) = reseal_value(k, v)? {
                // Compare-and-swap: a concurrent update of this value makes the page retry
                // in a later pass.
                b.require_equal(tree, k.clone(), v.clone());
                b.put(tree, k.clone(), fresh);
                done += 1;
            }
        }
        commit_page(store, b).await?;
        tokio::task::yield_now().await;
    }
}

/// One pass: re-encrypts every value still on an old at-rest key (persons' sealed fields
/// and every whole-value sealed tree). Returns how many records it re-encrypted (or tried
/// to: a concurrent update leaves a record to the next pass).
pub async fn reencrypt_pass(store: &dyn Store, keys: &KeyState) -> Result<u64, Error> {
    let active = keys.keyring().data_key().0;
    let mut done =
        reencrypt_tree(store, Tree::Persons, |_, v| reseal_person(keys, v, active)).await?;
    for (tree, location) in SEALED_TREES {
        done += reencrypt_tree(store, tree, |k, v| {
            reseal_raw(keys, &location(k), v, active)
        })
        .await?;
    }
    Ok(done)
}

/// Background job: keeps at-rest data on the active key.
pub async fn reencrypt_job(
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The active version everything was found on by the last pass, and passes since.
    let mut clean_on: Option<u32> = None;
    let mut skipped = 0u32;
    loop {
        let active = keys.keyring().data_key().0;
        if clean_on == Some(active) && skipped < FULL_PASS_EVERY {
            skipped += 1;
        } else {
            skipped = 0;
            match reencrypt_pass(store.as_ref(), &keys).await {
                Ok(0) => clean_on = Some(active),
                Ok(n) => {
                    clean_on = None;
                    tracing::info!(
                        message = "Re-encrypted at-rest data on the active key.",
                        records = n
                    )
                }
                Err(error) => {
                    clean_on = None;
                    tracing::error!(message = "Re-encryption pass failed.", %error)
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REKEY_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
}
