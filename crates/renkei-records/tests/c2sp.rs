//! C2SP checkpoints and "the log only grew": signed-note form of checkpoints (golden text,
//! round trips, key names and IDs, tampering, witness lines, legacy lines), bundles written
//! before signed notes, consistency between signed checkpoints, and locating a rewrite.

use std::fs;
use std::path::Path;
use std::process::Command;

mod common;
use base64::Engine;
use common::{synthetic_record, EphemeralSigner};
use renkei_records::merkle::leaf_hash;
use renkei_records::{
    canonical_bytes, consistency_proof, export_bundle, key_id, locate_rewrite,
    locate_rewrite_with_old_leaves, public_key_pem, verifier_key, verify_bundle,
    verify_checkpoint_growth, verify_growth, ChainState, Checkpoint, CheckpointSigner,
    ConsistencyError, GrowthError, Hash, KeySet, LocateError, RecordsError, StoredEntry,
    DEFAULT_ORIGIN,
};
use tempfile::TempDir;

const ORIGIN: &str = "records.city.example/renkei";
const T: &str = "2026-11-26T10:00:00+09:00";

struct Log {
    entries: Vec<StoredEntry>,
    checkpoints: Vec<Checkpoint>,
    signer: EphemeralSigner,
}

impl Log {
    fn keys(&self) -> KeySet {
        KeySet::single(self.signer.public_key()).unwrap()
    }
    fn leaves(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| e.leaf_hash).collect()
    }
    fn at(&self, size: u64) -> &Checkpoint {
        self.checkpoints
            .iter()
            .find(|c| c.tree_size == size)
            .unwrap()
    }
}

/// n records with C2SP checkpoints (origin `ORIGIN`) at each of `sizes`.
fn build(n: u64, sizes: &[u64], signer: EphemeralSigner) -> Log {
    let mut state = ChainState::new();
    let mut entries = vec![];
    let mut checkpoints = vec![];
    for i in 0..n {
        entries.push(state.append(&canonical_bytes(&synthetic_record(i))));
        if sizes.contains(&(i + 1)) {
            checkpoints.push(Checkpoint::sign_with_origin(&state, T, ORIGIN, &signer).unwrap());
        }
    }
    Log {
        entries,
        checkpoints,
        signer,
    }
}

#[test]
fn a_checkpoint_is_a_c2sp_signed_note_and_round_trips() {
    let log = build(5, &[5], EphemeralSigner::generate_version(3).unwrap());
    let cp = log.at(5);
    let keys = log.keys();
    let b64 = |h: &[u8]| base64::engine::general_purpose::STANDARD.encode(h);
    let body = format!(
        "{ORIGIN}\n5\n{}\nchain-head {}\ncreated-at {T}\nkey-version 3\n",
        b64(&cp.root),
        b64(&cp.chain_head)
    );
    assert_eq!(String::from_utf8(cp.note()).unwrap(), body);
    let note = cp.to_signed_note(&keys).unwrap();
    // Body, blank line, one signature line "— <origin> base64(key ID || DER signature)".
    let (text, sigs) = note.split_once("\n\n").unwrap();
    assert_eq!(format!("{text}\n"), body);
    let sig = sigs.strip_prefix(&format!("\u{2014} {ORIGIN} ")).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sig.trim_end())
        .unwrap();
    let id = key_id(log.signer.public_key()).unwrap();
    assert_eq!(raw[..4], id);
    assert_eq!(raw[4..], cp.signature[..]);
    // The key ID is SHA-256 of the DER public key (signed-note type 0x02), as in the vkey.
    let der = &public_key_der(log.signer.public_key());
    assert_eq!(
        ring::digest::digest(&ring::digest::SHA256, der).as_ref()[..4],
        id
    );
    assert!(verifier_key(ORIGIN, log.signer.public_key())
        .unwrap()
        .starts_with(&format!("{ORIGIN}+{}+AjBZ", hex::encode(id))));
    // Reading it back with the keys gives the same checkpoint; so do both JSON line forms.
    assert_eq!(&Checkpoint::from_signed_note(&note, &keys).unwrap(), cp);
    assert_eq!(&Checkpoint::parse_signed_note(&note).unwrap(), cp);
    let stored = cp.to_json_line();
    assert!(stored.starts_with(&format!("{{\"origin\":\"{ORIGIN}\",\"tree_size\":5,")));
    assert_eq!(&Checkpoint::from_json_line(&stored).unwrap(), cp);
    let bundled = serde_json::json!({ "signed_note": note }).to_string();
    assert_eq!(&Checkpoint::from_json_line(&bundled).unwrap(), cp);
    // A witness cosignature after ours is ignored.
    let cosigned = format!("{note}\u{2014} witness.example/w1 AAAAAAEC\n");
    assert_eq!(&Checkpoint::from_signed_note(&cosigned, &keys).unwrap(), cp);
    // Plain `sign` uses the default origin.
    let mut state = ChainState::new();
    state.append(b"x");
    let d = Checkpoint::sign(&state, T, &log.signer).unwrap();
    assert_eq!(d.origin.as_deref(), Some(DEFAULT_ORIGIN));
    d.verify_with(&keys).unwrap();
    assert!(Checkpoint::sign_with_origin(&state, T, "a+b", &log.signer).is_err());
    assert!(Checkpoint::sign_with_origin(&state, T, "has space", &log.signer).is_err());
}

fn public_key_der(sec1: &[u8]) -> Vec<u8> {
    let pem = public_key_pem(sec1).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn notes_with_the_wrong_key_version_or_text_are_refused_saying_why() {
    let log = build(5, &[5], EphemeralSigner::generate_version(2).unwrap());
    let keys = KeySet::from_pems([(2, log.signer.public_key())]).unwrap();
    let note = log.at(5).to_signed_note(&keys).unwrap();
    let code = |text: &str, keys: &KeySet| Checkpoint::from_signed_note(text, keys).unwrap_err();
    // A key set without version 2.
    let other = EphemeralSigner::generate().unwrap();
    let v1 = KeySet::from_pems([(1, log.signer.public_key())]).unwrap();
    assert!(matches!(
        code(&note, &v1),
        RecordsError::UnknownKeyVersion { version: 2 }
    ));
    // Another key under version 2: its key ID is not on the note.
    let wrong = KeySet::from_pems([(2, other.public_key())]).unwrap();
    assert_eq!(code(&note, &wrong).code(), "records_note_not_signed");
    // The body edited: the signature fails; the version relabelled: the signature fails too.
    let bigger = note.replacen("\n5\n", "\n6\n", 1);
    assert_eq!(code(&bigger, &keys).code(), "records_bad_signature");
    let both =
        KeySet::from_pems([(2, log.signer.public_key()), (3, log.signer.public_key())]).unwrap();
    let relabelled = note.replace("key-version 2", "key-version 3");
    assert_eq!(code(&relabelled, &both).code(), "records_bad_signature");
    // Non-canonical spellings and unknown extension lines are refused as format errors.
    for bad in [
        note.replacen("\n5\n", "\n05\n", 1),
        note.replace("key-version 2\n", "key-version 2\nextra line\n"),
        note.replace("chain-head ", "chain_head "),
    ] {
        assert_eq!(code(&bad, &keys).code(), "records_format", "{bad}");
    }
    // Our signature line under another key name is not ours.
    let renamed = note.replace(&format!("\u{2014} {ORIGIN} "), "\u{2014} someone.else ");
    assert_eq!(code(&renamed, &keys).code(), "records_note_not_signed");
    // A legacy checkpoint has no signed-note form.
    let mut legacy = log.at(5).clone();
    legacy.origin = None;
    assert!(legacy.to_signed_note(&keys).is_err());
    // Exporting needs the key of each written checkpoint's version.
    let dir = TempDir::new().unwrap();
    let err = export_bundle(
        dir.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &public_key_pem(other.public_key()).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("key version 2"), "{err}");
}

/// A checkpoint line as stored before signed notes (origin None, signed over the legacy
/// `renkei-records/v1` note).
fn legacy(cp: &Checkpoint, signer: &EphemeralSigner) -> Checkpoint {
    let mut old = cp.clone();
    old.origin = None;
    old.signature = signer.sign(&old.note()).unwrap();
    old
}

#[test]
fn old_stored_lines_and_old_bundles_still_verify() {
    let log = build(30, &[10, 30], EphemeralSigner::generate().unwrap());
    let keys = log.keys();
    let old: Vec<Checkpoint> = log
        .checkpoints
        .iter()
        .map(|c| legacy(c, &log.signer))
        .collect();
    // The exact line the previous version stored.
    let line = old[0].to_json_line();
    assert!(line.starts_with("{\"tree_size\":10,\"root\":\""), "{line}");
    assert!(!line.contains("origin"));
    let back = Checkpoint::from_json_line(&line).unwrap();
    assert_eq!(back, old[0]);
    back.verify_with(&keys).unwrap();
    assert!(String::from_utf8(back.note())
        .unwrap()
        .starts_with("renkei-records/v1\n10\n"));
    // A bundle of legacy checkpoints, marked as the v1 format: verifies, also by hand.
    let pem = public_key_pem(log.signer.public_key()).unwrap();
    let dir = TempDir::new().unwrap();
    export_bundle(dir.path(), log.entries.clone().into_iter(), &old, &pem).unwrap();
    let manifest = fs::read_to_string(dir.path().join("bundle.json")).unwrap();
    fs::write(
        dir.path().join("bundle.json"),
        manifest.replace("renkei-records-bundle/v2", "renkei-records-bundle/v1"),
    )
    .unwrap();
    assert!(fs::read_to_string(dir.path().join("checkpoints.jsonl"))
        .unwrap()
        .starts_with("{\"tree_size\":"));
    let report = verify_bundle(dir.path(), pem.as_bytes()).unwrap();
    assert_eq!(report.checkpoints_verified, 1);
    let keyfile = dir.path().join("../auditor-key.pem");
    fs::write(&keyfile, &pem).unwrap();
    let (ok, text) = manual(dir.path(), &keyfile);
    assert!(ok && text.contains("bundle OK: seq 0..29"), "{text}");
    // A log that mixes both (upgraded mid-way): legacy line, then a signed note.
    let mixed = vec![old[0].clone(), log.checkpoints[1].clone()];
    let dir = TempDir::new().unwrap();
    export_bundle(dir.path(), log.entries.clone().into_iter(), &mixed, &keys).unwrap();
    let lines = fs::read_to_string(dir.path().join("checkpoints.jsonl")).unwrap();
    assert!(lines.contains("\"signed_note\""));
    let report = verify_bundle(dir.path(), pem.as_bytes()).unwrap();
    assert_eq!(report.last_checkpoint.unwrap().0, 30);
    let (ok, text) = manual(dir.path(), &keyfile);
    assert!(ok, "{text}");
    // An unknown bundle format is still refused.
    let manifest = fs::read_to_string(dir.path().join("bundle.json")).unwrap();
    fs::write(
        dir.path().join("bundle.json"),
        manifest.replace("renkei-records-bundle/v2", "renkei-records-bundle/v9"),
    )
    .unwrap();
    assert_eq!(
        verify_bundle(dir.path(), pem.as_bytes())
            .unwrap_err()
            .code(),
        "malformed"
    );
}

fn manual(dir: &Path, key: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manual_verify.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_log_only_grew_or_the_check_says_which_part_failed() {
    let log = build(40, &[10, 25, 40], EphemeralSigner::generate().unwrap());
    let keys = log.keys();
    let leaves = log.leaves();
    let get = |i: u64| Ok::<Hash, ()>(leaves[i as usize]);
    let old_note = log.at(10).to_signed_note(&keys).unwrap();
    let proof = consistency_proof(10, 40, get).unwrap();
    let grew = verify_growth(&old_note, log.at(40), &keys, &proof).unwrap();
    assert_eq!((grew.old_size, grew.new_size), (10, 40));
    // A legacy old checkpoint of the same log works as well.
    let old = legacy(log.at(10), &log.signer);
    verify_checkpoint_growth(&old, log.at(40), &keys, &proof).unwrap();
    // The old note under a key the auditor does not hold.
    let stranger = KeySet::single(EphemeralSigner::generate().unwrap().public_key()).unwrap();
    let err = verify_growth(&old_note, log.at(40), &stranger, &proof).unwrap_err();
    assert_eq!(err.code(), "growth_old_checkpoint");
    // A new checkpoint whose size was edited.
    let mut edited = log.at(40).clone();
    edited.tree_size = 41;
    let err = verify_growth(&old_note, &edited, &keys, &proof).unwrap_err();
    assert_eq!(err.code(), "growth_new_checkpoint");
    // A proof with a flipped byte.
    let mut bad = proof.clone();
    bad[0][3] ^= 1;
    assert!(matches!(
        verify_growth(&old_note, log.at(40), &keys, &bad).unwrap_err(),
        GrowthError::Inconsistent(_)
    ));
    // Another log (another origin) signed by the same key.
    let mut state = ChainState::rebuild(log.entries.clone()).unwrap();
    state.append(b"y");
    let elsewhere =
        Checkpoint::sign_with_origin(&state, T, "other.example/log", &log.signer).unwrap();
    let err = verify_growth(&old_note, &elsewhere, &keys, &[]).unwrap_err();
    assert_eq!(err.code(), "growth_different_logs");
    // The log got smaller.
    let err = verify_growth(
        &log.at(25).to_signed_note(&keys).unwrap(),
        log.at(10),
        &keys,
        &[],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        GrowthError::Inconsistent(ConsistencyError::Shrunk { old: 25, new: 10 })
    ));
}

/// The log as it was, and the same log with record 17 rewritten and re-signed at size 40
/// with the same key (what a dishonest operator could do).
fn honest_and_rewritten() -> (Log, Log) {
    let signer = EphemeralSigner::generate().unwrap();
    let honest = build(40, &[10, 25, 40], signer);
    let mut state = ChainState::new();
    let mut entries = vec![];
    for i in 0..40u64 {
        let mut r = synthetic_record(i);
        if i == 17 {
            r.reference = Some("inq-rewritten".into());
        }
        entries.push(state.append(&canonical_bytes(&r)));
    }
    let cp = Checkpoint::sign_with_origin(&state, T, ORIGIN, &honest.signer).unwrap();
    let rewritten = Log {
        entries,
        checkpoints: vec![cp],
        signer: EphemeralSigner::generate().unwrap(),
    };
    (honest, rewritten)
}

#[test]
fn a_rewrite_is_detected_and_located_as_far_as_the_evidence_allows() {
    let (honest, now) = honest_and_rewritten();
    let keys = honest.keys();
    let current = now.leaves();
    let get = |i: u64| Ok::<Hash, ()>(current[i as usize]);
    let new_cp = &now.checkpoints[0];
    new_cp.verify_with(&keys).unwrap();
    // The old checkpoint of size 10 is still consistent (the rewrite is later) ...
    let p10 = consistency_proof(10, 40, get).unwrap();
    verify_growth(
        &honest.at(10).to_signed_note(&keys).unwrap(),
        new_cp,
        &keys,
        &p10,
    )
    .unwrap();
    // ... the one of size 25 is not: the current log cannot rebuild its root.
    let p25 = consistency_proof(25, 40, get).unwrap();
    let err = verify_growth(
        &honest.at(25).to_signed_note(&keys).unwrap(),
        new_cp,
        &keys,
        &p25,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            GrowthError::Inconsistent(ConsistencyError::OldRootMismatch)
        ),
        "{err}"
    );
    // One old checkpoint: somewhere below 25.
    let one = locate_rewrite(&[honest.at(25).clone()], &keys, 40, get).unwrap();
    assert_eq!(one.suspects(), Some(0..25));
    assert_eq!(one.first_rewritten(), None);
    // All old checkpoints: between 10 and 25.
    let all = locate_rewrite(&honest.checkpoints, &keys, 40, get).unwrap();
    assert_eq!((all.intact_below, all.suspects()), (10, Some(10..25)));
    assert!(!all.shrunk);
    // The old leaf hashes (an old bundle's entries.jsonl), checked against the signed root:
    // exactly seq 17.
    let old_leaves = honest.leaves()[..25].to_vec();
    let exact = locate_rewrite_with_old_leaves(honest.at(25), &keys, &old_leaves, 40, get).unwrap();
    assert_eq!(exact.first_rewritten(), Some(17));
    // Made-up "old" leaves are refused: they do not rebuild the signed root.
    let mut forged = old_leaves.clone();
    forged[3] = leaf_hash(b"forged");
    assert!(matches!(
        locate_rewrite_with_old_leaves(honest.at(25), &keys, &forged, 40, get),
        Err(LocateError::OldLeavesDoNotMatch)
    ));
    // An honest log: nothing to locate.
    let honest_leaves = honest.leaves();
    let hget = |i: u64| Ok::<Hash, ()>(honest_leaves[i as usize]);
    let fine = locate_rewrite(&honest.checkpoints, &keys, 40, hget).unwrap();
    assert_eq!((fine.intact_below, fine.suspects()), (40, None));
    // A truncated log: shorter than a signed checkpoint.
    let cut = locate_rewrite(&honest.checkpoints, &keys, 20, hget).unwrap();
    assert!(cut.shrunk);
    assert_eq!(cut.suspects(), Some(10..25));
    // A checkpoint that does not verify is no evidence.
    let mut fake = honest.at(25).clone();
    fake.root[0] ^= 1;
    assert!(matches!(
        locate_rewrite(&[fake], &keys, 40, hget),
        Err(LocateError::Checkpoint { tree_size: 25, .. })
    ));
    // Leaf source errors are reported with the seq.
    let failing = |i: u64| {
        if i == 12 {
            Err("io")
        } else {
            Ok(honest_leaves[i as usize])
        }
    };
    assert!(matches!(
        locate_rewrite(&honest.checkpoints, &keys, 40, failing),
        Err(LocateError::Leaf {
            index: 12,
            error: "io"
        })
    ));
}
