//! Test and benchmark helpers shared by the unit tests, the integration tests and the
//! benchmark: an in-memory P-256 signer and plausible synthetic records. Not part of the
//! library's API (included with `#[path]`; see `src/lib.rs` and `benches/verify.rs`).
#![allow(dead_code)]

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use renkei_ids::{
    AgencyCode, ItemCode, ProcedureCode, ProcessingSerial, SystemId, UnifiedAddressNumber,
};
use renkei_records::{CheckpointSigner, Record, RecordKind, RecordResult, RecordsError};

/// A P-256 signer whose key lives only in memory. Never use it in the gateway: its key is
/// not stored, rotated or protected.
pub struct EphemeralSigner {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    version: u32,
}

impl EphemeralSigner {
    /// Generates a fresh key that signs as key version 1.
    pub fn generate() -> Result<Self, RecordsError> {
        Self::generate_version(1)
    }

    /// Generates a fresh key that signs as key `version` (to test rotations).
    pub fn generate_version(version: u32) -> Result<Self, RecordsError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| RecordsError::Signer("key generation failed".into()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| RecordsError::Signer("key generation failed".into()))?;
        Ok(EphemeralSigner { pair, rng, version })
    }

    /// The SEC1 uncompressed public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

impl CheckpointSigner for EphemeralSigner {
    fn key_version(&self) -> u32 {
        self.version
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.pair
            .sign(&self.rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| "signing failed".to_string())
    }
}

/// A plausible inquiry record number `i` (person `i % 5000 + 1`).
pub fn synthetic_record(i: u64) -> Record {
    let secs = i % 86_400;
    let at = format!(
        "2026-11-26T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    Record {
        kind: if i.is_multiple_of(7) {
            RecordKind::Provision
        } else {
            RecordKind::Inquiry
        },
        inquirer: AgencyCode::parse("0112345678900000").ok(),
        provider: AgencyCode::parse("1300000000000001").ok(),
        procedure: ProcedureCode::parse("JT01010000000214").ok(),
        item: ItemCode::parse("TM00000000000002").ok(),
        person: UnifiedAddressNumber::from_serial(i % 5000 + 1).ok(),
        business_system: SystemId::parse("kodomo-iryo").ok(),
        requested_at: at.clone(),
        provided_at: Some(at),
        serial: ProcessingSerial::parse(&format!("S{i:010}")).ok(),
        result: RecordResult::Answered,
        reason: None,
        non_disclosure: i.is_multiple_of(11),
        staff: None,
        reference: Some(format!("inq-{i}")),
    }
}
