//! 情報提供等記録: the linkage records of renkei — tamper-evident, provable to a third party,
//! kept seven years (番号法 art. 23).
//!
//! # What it does
//! * [`Record`]: one inquiry, provision, code acquisition, denied request, staff, key or
//!   retention action. Persons appear by unified address number only; the type has no place
//!   for an individual number and [`Record::validate`] refuses free text that looks like one.
//! * [`canonical_bytes`]: one line of canonical JSON per record, the exact bytes hashed.
//! * [`ChainState::append`]: numbers entries from 0, computes the RFC 9162 leaf hash
//!   `SHA-256(0x00 || bytes)`, the chain hash `SHA-256(prev || leaf)` and the Merkle frontier,
//!   and returns the [`StoredEntry`] the gateway stores. Both encode to bytes, so the state
//!   survives a restart ([`ChainState::from_bytes`], or [`ChainState::rebuild`] by replay).
//! * [`Checkpoint::sign`] / [`Checkpoint::sign_with_origin`]: an ECDSA P-256 signature over a
//!   C2SP tlog-checkpoint (origin, tree size, Merkle root, plus chain head, time and key
//!   version as extension lines), through the [`CheckpointSigner`] trait;
//!   [`Checkpoint::to_signed_note`] / [`Checkpoint::from_signed_note`] write and verify it as
//!   a C2SP signed note (signature type `0x02`, key name = origin). Legacy checkpoints (the
//!   `renkei-records/v1` note) still parse and verify.
//! * [`consistency_proof`] / [`verify_consistency`] (RFC 9162 §2.1.4) over a fallible leaf
//!   source; [`verify_growth`] checks an old signed note, a new checkpoint and a proof and
//!   names the failing part; [`locate_rewrite`] and [`locate_rewrite_with_old_leaves`] find
//!   where a rewritten history departs from what was signed.
//! * Bundles: [`export_bundle`], [`export_range_bundle`], [`export_person_bundle`] write a
//!   directory anyone can check with `sha256sum` and `openssl` (see `docs/records.md`),
//!   checkpoints as signed notes ([`BUNDLE_FORMAT`]; [`BUNDLE_FORMAT_V1`] bundles verify too);
//!   [`verify_bundle`] and [`verify_entries`] check a bundle or the live store and name the
//!   FIRST problem: its kind (altered, removed, inserted, reordered, bad signature, bad
//!   checkpoint) and its seq. [`ExportOptions`] thins the checkpoints a log bundle carries.
//! * [`KeySet`]: the auditor's public keys by signing-key version, so a log signed across a
//!   key rotation verifies ([`verify_bundle_with`], [`verify_entries_with`]); read from the
//!   file `renkei audit public-keys` prints with [`KeySet::parse`].
//! * [`sweep`]: deletes a record's content past the retention period, keeping its hashes.
//!
//! # What it deliberately does not do
//! * Store anything: the gateway keeps entries in its store through its own group-commit
//!   writer and calls this crate for pure logic. Persist the new `StoredEntry` and the new
//!   `ChainState::to_bytes()` in the same transaction.
//! * Hold keys: signing goes through [`CheckpointSigner`]; verification takes the public
//!   keys from the caller (an auditor's copy), never from the bundle.
//! * Prove completeness of a person bundle: it proves each record is in the signed log, not
//!   that no record of the person was left out (a Merkle tree cannot show absence).
//!
//! # Privacy
//! Errors and reports carry positions (seq, line) and hashes, never record contents.
#![forbid(unsafe_code)]

// The unit tests share the integration tests' helpers, which name this crate by its name.
#[cfg(test)]
extern crate self as renkei_records;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod testing;

mod bundle;
mod chain;
mod checkpoint;
mod error;
mod growth;
mod keyset;
pub mod merkle;
mod note;
mod record;
mod retention;
mod verify;

pub use bundle::{
    export_bundle, export_bundle_with, export_person_bundle, export_range_bundle,
    export_range_bundle_with, verify_bundle, verify_bundle_with, verify_entries,
    verify_entries_with, BundleKind, BundleSummary, CheckpointSelection, ExportOptions,
    VerifyReport, BUNDLE_FORMAT, BUNDLE_FORMAT_V1, DEFAULT_CHECKPOINT_SPACING,
};
pub use chain::{chain_hash, ChainState, StoredEntry, CHAIN_GENESIS};
pub use checkpoint::{
    parse_public_key, public_key_pem, valid_origin, Checkpoint, CheckpointSigner, DEFAULT_ORIGIN,
    NOTE_ORIGIN,
};
pub use error::{RecordsError, TamperKind, VerifyError};
pub use growth::{
    locate_rewrite, locate_rewrite_with_old_leaves, verify_checkpoint_growth, verify_growth,
    Growth, GrowthError, LocateError, RewriteLocation,
};
pub use keyset::{BundleKeys, KeySet, KEY_VERSION_LINE};
pub use merkle::{
    consistency_proof, consistency_proof_from_leaves, inclusion_proof, try_inclusion_proof,
    verify_consistency, verify_inclusion, ConsistencyError, Hash, ProofError,
};
pub use note::{
    key_id, verifier_key, NoteSignature, SignedNote, MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES,
    SIGNATURE_TYPE_ECDSA,
};
pub use record::{
    canonical_bytes, checked_canonical_bytes, Record, RecordKind, RecordResult, StaffDetail,
};
pub use retention::{retention_cutoff, sweep, DEFAULT_RETENTION_YEARS};
pub use verify::DEFAULT_ANALYSIS_WINDOW;
