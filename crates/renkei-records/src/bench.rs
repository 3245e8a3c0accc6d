//! Measurement: build an n-record bundle in a temporary directory and time `verify_bundle`;
//! plus the in-memory P-256 signer the measurement and the tests use.

use std::time::Instant;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use renkei_ids::{
    AgencyCode, ItemCode, ProcedureCode, ProcessingSerial, SystemId, UnifiedAddressNumber,
};

use crate::bundle::{export_bundle, verify_bundle};
use crate::chain::{ChainState, StoredEntry};
use crate::checkpoint::{public_key_pem, Checkpoint, CheckpointSigner};
use crate::record::{canonical_bytes, Record, RecordKind, RecordResult};
use crate::RecordsError;

/// A checkpoint every this many records in the synthetic log: about what a busy day's
/// per-minute checkpoints give, and enough to exercise checkpoint checks in the replay.
pub const DEFAULT_BENCH_CHECKPOINT_EVERY: u64 = 10_000;

/// A P-256 signer whose key lives only in memory, for tests and measurements. Never use it
/// in the gateway: its key is not stored, rotated or protected.
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

/// A plausible inquiry record number `i` (person `i % 5000 + 1`), for tests and measurements.
pub fn synthetic_record(i: u64) -> Record {
    let secs = i % 86_400;
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
        requested_at: format!(
            "2026-11-26T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ),
        provided_at: Some(format!(
            "2026-11-26T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )),
        serial: ProcessingSerial::parse(&format!("S{i:010}")).ok(),
        result: RecordResult::Answered,
        reason: None,
        non_disclosure: i.is_multiple_of(11),
        staff: None,
        reference: Some(format!("inq-{i}")),
    }
}

/// Result of [`bench_verify`].
#[derive(Debug, Clone)]
pub struct VerifyBench {
    /// Records in the bundle.
    pub n: usize,
    /// Checkpoints in the bundle.
    pub checkpoints: usize,
    /// Bytes of `records.jsonl` + `entries.jsonl`.
    pub bundle_bytes: u64,
    /// Seconds to build the log and its checkpoints (hashing and signing).
    pub build_secs: f64,
    /// Seconds to write the bundle.
    pub export_secs: f64,
    /// Seconds `verify_bundle` took.
    pub verify_secs: f64,
    /// n / verify_secs.
    pub records_per_sec: f64,
}

/// Builds an n-record log (checkpoint every [`DEFAULT_BENCH_CHECKPOINT_EVERY`] and at the
/// end), exports it to a temporary directory and times `verify_bundle`. Records are made on
/// the fly twice (once to sign, once to export) so memory stays flat for large n.
pub fn bench_verify(n: usize) -> Result<VerifyBench, RecordsError> {
    let signer = EphemeralSigner::generate()?;
    let pem = public_key_pem(signer.public_key())?;
    let n64 = n as u64;
    let start = Instant::now();
    let mut state = ChainState::new();
    let mut checkpoints = vec![];
    for i in 0..n64 {
        state.append(&canonical_bytes(&synthetic_record(i)));
        if (i + 1).is_multiple_of(DEFAULT_BENCH_CHECKPOINT_EVERY) || i + 1 == n64 {
            checkpoints.push(Checkpoint::sign(&state, "2026-11-26T23:59:59Z", &signer)?);
        }
    }
    let build_secs = start.elapsed().as_secs_f64();
    let dir =
        tempfile::tempdir().map_err(|e| RecordsError::io(std::path::Path::new("tempdir"), e))?;
    let start = Instant::now();
    let mut replay = ChainState::new();
    let entries = (0..n64)
        .map(move |i| -> StoredEntry { replay.append(&canonical_bytes(&synthetic_record(i))) });
    export_bundle(dir.path(), entries, &checkpoints, &pem)?;
    let export_secs = start.elapsed().as_secs_f64();
    let size = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let bundle_bytes = size("records.jsonl") + size("entries.jsonl");
    let start = Instant::now();
    let report = verify_bundle(dir.path(), pem.as_bytes())
        .map_err(|e| RecordsError::Export(format!("bench bundle did not verify: {e}")))?;
    let verify_secs = start.elapsed().as_secs_f64();
    if report.records != n64 {
        return Err(RecordsError::Export(
            "bench bundle verified the wrong number of records".into(),
        ));
    }
    Ok(VerifyBench {
        n,
        checkpoints: checkpoints.len(),
        bundle_bytes,
        build_secs,
        export_secs,
        verify_secs,
        records_per_sec: n as f64 / verify_secs.max(f64::MIN_POSITIVE),
    })
}
