//! The integrated address registry (団体内統合宛名): assigns unified address numbers, links
//! them to individual numbers (encrypted, found by blind index) and to each business system's
//! own numbers, and tracks code (符号) acquisition per person.

pub mod codes;
pub mod import;
pub mod lifecycle;
pub mod link;
pub mod search;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest};
use renkei_ids::{BusinessNumber, Fugo, IndividualNumber, SystemId, UnifiedAddressNumber};
use serde::{Deserialize, Serialize};

use crate::keyring::KeyState;
use crate::schedule::{self, Job, Wake};
use crate::util::now_ms;
use renkei_store::{key2, Batch, Store, StoreError, Tree};

/// The at-rest location of a person's code (符号).
pub fn fugo_location(u: &UnifiedAddressNumber) -> String {
    format!("persons/{u}/fugo")
}

/// Code (符号) acquisition status of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    None,
    Pending,
    Acquired,
    Failed,
}

/// Whether new inquiries may be made for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonState {
    Active,
    MovedOut,
    Deceased,
}

/// The basic four facts (基本4情報), stored encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicFacts {
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub sex: String,
    pub address: String,
}

/// A person as stored (key: the unified address number).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonRecord {
    pub unified: UnifiedAddressNumber,
    /// At-rest envelope of the individual number (base64), bound to this person's location.
    pub individual_number_sealed: String,
    /// At-rest envelope of the basic facts JSON (base64).
    pub basic_sealed: String,
    pub code_status: CodeStatus,
    #[serde(default)]
    pub code_reason: Option<String>,
    /// At-rest envelope (base64) of the code (符号) once acquired, bound to
    /// `persons/<unified>/fugo`.
    #[serde(default)]
    pub fugo_sealed: Option<String>,
    #[serde(default)]
    pub code_attempts: u32,
    pub state: PersonState,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// Registry failures with stable codes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("business number is already linked to another person")]
    LinkedElsewhere,
    #[error("person not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key failure: {0}")]
    Crypto(String),
    #[error("corrupt person record: {0}")]
    Corrupt(String),
    #[error("the store holds {0} in plaintext: it was written by an older build, before personal data was encrypted at rest; start from an empty data_dir")]
    PlaintextStore(&'static str),
}

impl RegistryError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::LinkedElsewhere => "business_number_linked_elsewhere",
            RegistryError::NotFound => "person_not_found",
            RegistryError::Store(e) => e.code(),
            RegistryError::Crypto(_) => "key_failure",
            RegistryError::Corrupt(_) => "store_corrupt",
            RegistryError::PlaintextStore(_) => "store_plaintext_format",
        }
    }
}

impl From<RegistryError> for crate::error::Error {
    fn from(e: RegistryError) -> Self {
        use crate::error::Error;
        match e {
            RegistryError::LinkedElsewhere => Error::conflict(
                "business_number_linked_elsewhere",
                "this business number is already linked to another person",
            ),
            RegistryError::NotFound => Error::NotFound,
            RegistryError::Store(s) => Error::Store(s),
            other => Error::internal("registry", other),
        }
    }
}

/// The outcome of linking.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub unified_address_number: UnifiedAddressNumber,
    pub code_status: CodeStatus,
    /// True when this call made the person or the link (false: it existed already).
    #[serde(skip)]
    pub created: bool,
}

/// Persons looked at when checking a store's at-rest format at start.
const FORMAT_CHECK_PERSONS: usize = 256;

/// Refuses a store written by a build that kept inquiries and codes (符号) in plaintext
/// (pre-production: such a store is not migrated). Looks at the first inquiry and the first
/// [`FORMAT_CHECK_PERSONS`] persons; an older inquiry found later is refused when read.
fn refuse_plaintext_store(store: &dyn Store) -> Result<(), RegistryError> {
    let first = store.range(Tree::Inquiries, &[], &[], 1)?;
    if first
        .iter()
        .any(|(_, v)| !v.starts_with(renkei_crypto::at_rest::AT_REST_MAGIC))
    {
        return Err(RegistryError::PlaintextStore("inquiries"));
    }
    let persons = store.range(Tree::Persons, &[], &[], FORMAT_CHECK_PERSONS)?;
    for (_, v) in persons {
        let old = serde_json::from_slice::<serde_json::Value>(&v)
            .map(|p| p.get("fugo").is_some_and(|f| !f.is_null()))
            .unwrap_or(false);
        if old {
            return Err(RegistryError::PlaintextStore("codes (符号)"));
        }
    }
    Ok(())
}

/// The registry over the store.
pub struct Registry {
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
    next_serial: AtomicU64,
    /// Wakes the dispatcher when a new person's code acquisition is scheduled.
    wake: Wake,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Registry {
    /// Opens the registry; finds the next free serial from the highest stored number.
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyState>,
        wake: Wake,
    ) -> Result<Self, RegistryError> {
        refuse_plaintext_store(store.as_ref())?;
        let last = store.range_rev(Tree::Persons, &[], &[], 1)?;
        let next = match last.first() {
            Some((k, _)) => {
                let s = String::from_utf8_lossy(k);
                UnifiedAddressNumber::parse(&s)
                    .map(|u| u.serial() + 1)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?
            }
            None => 1,
        };
        Ok(Self {
            store,
            keys,
            next_serial: AtomicU64::new(next),
            wake,
        })
    }

    /// The key state sealing the registry's values (the inquiry trees use it too).
    pub fn keys(&self) -> &Arc<KeyState> {
        &self.keys
    }

    /// The dispatcher's wake-up handle (imports schedule code acquisitions too).
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    fn blind_index(&self, n: &IndividualNumber) -> Vec<u8> {
        let digits = zeroize::Zeroizing::new(n.expose_digits());
        self.keys
            .keyring()
            .blind_index()
            .index(digits.as_bytes())
            .to_vec()
    }

    /// Reads a person.
    pub fn person(&self, u: &UnifiedAddressNumber) -> Result<Option<PersonRecord>, RegistryError> {
        match self.store.get(Tree::Persons, u.to_string().as_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| RegistryError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// The unified number a business system's number is linked to.
    pub fn resolve(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
    ) -> Result<Option<UnifiedAddressNumber>, RegistryError> {
        match self
            .store
            .get(Tree::BusinessLinks, &key2(system.as_str(), bn.as_str()))?
        {
            Some(v) => UnifiedAddressNumber::parse(&String::from_utf8_lossy(&v))
                .map(Some)
                .map_err(|e| RegistryError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// The business number a system uses for a unified number.
    pub fn business_number(
        &self,
        u: &UnifiedAddressNumber,
        system: &SystemId,
    ) -> Result<Option<BusinessNumber>, RegistryError> {
        Ok(self
            .store
            .get(Tree::ReverseLinks, &key2(&u.to_string(), system.as_str()))?
            .and_then(|v| BusinessNumber::parse(&String::from_utf8_lossy(&v)).ok()))
    }

    /// Decrypts a person's individual number (only for code acquisition).
    pub fn individual_number(&self, p: &PersonRecord) -> Result<IndividualNumber, RegistryError> {
        let blob = b64()
            .decode(&p.individual_number_sealed)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let loc = format!("persons/{}/individual_number", p.unified);
        let plain = decrypt_at_rest(&self.keys.keyring(), &loc, &blob)
            .map_err(|e| RegistryError::Crypto(e.to_string()))?;
        let s = std::str::from_utf8(&plain).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        IndividualNumber::parse(s).map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    /// Decrypts a person's code (符号), if acquired.
    pub fn fugo(&self, p: &PersonRecord) -> Result<Option<Fugo>, RegistryError> {
        let Some(sealed) = &p.fugo_sealed else {
            return Ok(None);
        };
        let blob = b64()
            .decode(sealed)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let plain = decrypt_at_rest(&self.keys.keyring(), &fugo_location(&p.unified), &blob)
            .map_err(|e| RegistryError::Crypto(e.to_string()))?;
        let s = std::str::from_utf8(&plain).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        Fugo::parse(s)
            .map(Some)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    /// Links `system`'s number `bn` to the person with individual number `n`, making the
    /// person (and scheduling code acquisition) if new. Idempotent.
    pub async fn link(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        n: &IndividualNumber,
        facts: &BasicFacts,
    ) -> Result<Linked, RegistryError> {
        let idx = self.blind_index(n);
        // Two attempts: a racing link of the same person makes the first one conflict.
        for _ in 0..3 {
            let by_number = self
                .store
                .get(Tree::BlindIndex, &idx)?
                .map(|v| UnifiedAddressNumber::parse(&String::from_utf8_lossy(&v)))
                .transpose()
                .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
            let by_link = self.resolve(system, bn)?;
            match (by_link, by_number) {
                (Some(a), Some(b)) if a == b => {
                    // "Already linked" is answered only once the group that linked it is
                    // durable (readers see a group a moment before its fsync ends).
                    self.store.commit(Batch::new()).await?;
                    let p = self.person(&a)?.ok_or(RegistryError::NotFound)?;
                    return Ok(Linked {
                        unified_address_number: a,
                        code_status: p.code_status,
                        created: false,
                    });
                }
                (Some(_), _) => return Err(RegistryError::LinkedElsewhere),
                (None, Some(u)) => {
                    let p = self.person(&u)?.ok_or(RegistryError::NotFound)?;
                    let mut b = Batch::new();
                    self.put_links(&mut b, system, bn, &u);
                    match self.store.commit(b).await {
                        Ok(_) => {
                            return Ok(Linked {
                                unified_address_number: u,
                                code_status: p.code_status,
                                created: true,
                            })
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                (None, None) => {
                    let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
                    let u = UnifiedAddressNumber::from_serial(serial)
                        .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                    let ring = self.keys.keyring();
                    let digits = zeroize::Zeroizing::new(n.expose_digits());
                    let enc_n = encrypt_at_rest(
                        &ring,
                        &format!("persons/{u}/individual_number"),
                        digits.as_bytes(),
                    )
                    .map_err(|e| RegistryError::Crypto(e.to_string()))?;
                    let facts_json = zeroize::Zeroizing::new(
                        serde_json::to_vec(facts)
                            .map_err(|e| RegistryError::Corrupt(e.to_string()))?,
                    );
                    let enc_facts =
                        encrypt_at_rest(&ring, &format!("persons/{u}/basic"), &facts_json)
                            .map_err(|e| RegistryError::Crypto(e.to_string()))?;
                    let now = now_ms();
                    let rec = PersonRecord {
                        unified: u,
                        individual_number_sealed: b64().encode(enc_n),
                        basic_sealed: b64().encode(enc_facts),
                        code_status: CodeStatus::Pending,
                        code_reason: None,
                        fugo_sealed: None,
                        code_attempts: 0,
                        state: PersonState::Active,
                        created_ms: now,
                        updated_ms: now,
                    };
                    let mut b = Batch::new();
                    b.require_absent(Tree::BlindIndex, idx.clone());
                    b.require_absent(Tree::Persons, u.to_string().into_bytes());
                    b.put(Tree::BlindIndex, idx.clone(), u.to_string().into_bytes());
                    b.put(
                        Tree::Persons,
                        u.to_string().into_bytes(),
                        serde_json::to_vec(&rec)
                            .map_err(|e| RegistryError::Corrupt(e.to_string()))?,
                    );
                    self.put_links(&mut b, system, bn, &u);
                    self.stage_facts_index(&mut b, &u, facts);
                    schedule::stage_new(&mut b, now, Job::Code(u));
                    match self.store.commit(b).await {
                        Ok(_) => {
                            return Ok(Linked {
                                unified_address_number: u,
                                code_status: CodeStatus::Pending,
                                created: true,
                            })
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(RegistryError::Store(StoreError::Io(
            "link kept conflicting; try again".into(),
        )))
    }

    fn put_links(
        &self,
        b: &mut Batch,
        system: &SystemId,
        bn: &BusinessNumber,
        u: &UnifiedAddressNumber,
    ) {
        let k = key2(system.as_str(), bn.as_str());
        b.require_absent(Tree::BusinessLinks, k.clone());
        b.put(Tree::BusinessLinks, k, u.to_string().into_bytes());
        b.put(
            Tree::ReverseLinks,
            key2(&u.to_string(), system.as_str()),
            bn.as_str().as_bytes().to_vec(),
        );
    }

    /// Adds the writes that record a code acquisition outcome to `b`.
    pub fn stage_code_outcome(
        &self,
        b: &mut Batch,
        mut p: PersonRecord,
        status: CodeStatus,
        fugo: Option<Fugo>,
        reason: Option<String>,
    ) -> Result<PersonRecord, RegistryError> {
        p.code_status = status;
        if let Some(f) = fugo {
            let sealed = encrypt_at_rest(
                &self.keys.keyring(),
                &fugo_location(&p.unified),
                f.as_str().as_bytes(),
            )
            .map_err(|e| RegistryError::Crypto(e.to_string()))?;
            p.fugo_sealed = Some(b64().encode(sealed));
        }
        p.code_reason = reason;
        p.code_attempts += 1;
        p.updated_ms = now_ms();
        b.put(
            Tree::Persons,
            p.unified.to_string().into_bytes(),
            serde_json::to_vec(&p).map_err(|e| RegistryError::Corrupt(e.to_string()))?,
        );
        Ok(p)
    }
}
