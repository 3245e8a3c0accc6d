//! End-to-end tests of export and verification: honest bundles verify; each kind of
//! tampering is detected and located; person and range bundles; retention; the live store
//! check; and the manual sha256sum/openssl procedure of docs/records.md.

use std::fs;
use std::path::Path;
use std::process::Command;

use renkei_ids::UnifiedAddressNumber;
mod common;
use common::{synthetic_record, EphemeralSigner};
use renkei_records::{
    canonical_bytes, chain_hash, export_bundle, export_bundle_with, export_person_bundle,
    export_range_bundle, merkle, public_key_pem, retention_cutoff, sweep, verify_bundle,
    verify_entries, ChainState, Checkpoint, CheckpointSelection, ExportOptions, Record,
    StoredEntry, TamperKind, VerifyError, CHAIN_GENESIS, DEFAULT_RETENTION_YEARS,
};
use tempfile::TempDir;

struct Log {
    records: Vec<Record>,
    entries: Vec<StoredEntry>,
    checkpoints: Vec<Checkpoint>,
    signer: EphemeralSigner,
    pem: String,
}

fn person(n: u64) -> UnifiedAddressNumber {
    UnifiedAddressNumber::from_serial(n).unwrap()
}

/// Record i: four persons in turn; records with i % 3 == 0 are from 2018 (sweepable).
fn record(i: u64) -> Record {
    let mut r = synthetic_record(i);
    r.person = Some(person(i % 4 + 1));
    if i.is_multiple_of(3) {
        r.requested_at = "2018-04-01T09:00:00+09:00".into();
        r.provided_at = Some("2018-04-01T09:00:03+09:00".into());
    }
    r
}

/// n records, a checkpoint every `every` entries and one at the end.
fn build(n: u64, every: u64) -> Log {
    let signer = EphemeralSigner::generate().unwrap();
    let pem = public_key_pem(signer.public_key()).unwrap();
    let mut state = ChainState::new();
    let mut records = vec![];
    let mut entries = vec![];
    let mut checkpoints = vec![];
    for i in 0..n {
        let r = record(i);
        entries.push(state.append_record(&r).unwrap());
        records.push(r);
        if (i + 1).is_multiple_of(every) || i + 1 == n {
            checkpoints.push(Checkpoint::sign(&state, "2026-11-26T10:00:00Z", &signer).unwrap());
        }
    }
    Log {
        records,
        entries,
        checkpoints,
        signer,
        pem,
    }
}

/// A full export with every checkpoint, so tampering is located at the first checkpoint after it.
fn export(log: &Log) -> TempDir {
    let dir = TempDir::new().unwrap();
    export_bundle_with(
        dir.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &log.pem,
        &ExportOptions {
            checkpoints: CheckpointSelection::All,
        },
    )
    .unwrap();
    dir
}

fn read_lines(dir: &Path, file: &str) -> Vec<String> {
    fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(dir: &Path, file: &str, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(dir.join(file), text).unwrap();
}

fn verify_err(dir: &Path, log: &Log) -> VerifyError {
    verify_bundle(dir, log.pem.as_bytes()).expect_err("tampering must be detected")
}

fn assert_found(err: &VerifyError, kind: TamperKind, seq: u64) {
    assert_eq!((err.kind, err.seq), (kind, Some(seq)), "{err}");
}

#[test]
fn an_honest_export_verifies() {
    let log = build(50, 16);
    let dir = export(&log);
    let report = verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    assert_eq!(
        (report.first_seq, report.end_seq, report.records),
        (0, 50, 50)
    );
    assert_eq!(report.checkpoints_verified, 4);
    assert_eq!(
        report.last_checkpoint,
        Some((50, "2026-11-26T10:00:00Z".to_string()))
    );
    assert_eq!(report.chain_head, hex::encode(log.entries[49].chain_hash));
    // The raw SEC1 key works as well as PEM; each line is exactly the canonical bytes.
    verify_bundle(dir.path(), log.signer.public_key()).unwrap();
    let lines = read_lines(dir.path(), "records.jsonl");
    assert_eq!(
        lines[7].as_bytes(),
        canonical_bytes(&log.records[7]).as_slice()
    );
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "VERIFY.txt",
            "bundle.json",
            "checkpoints.jsonl",
            "entries.jsonl",
            "public-keys.pem",
            "records.jsonl"
        ]
    );
}

#[test]
fn a_flipped_byte_in_any_record_is_altered_at_its_seq() {
    let log = build(40, 16);
    let dir = export(&log);
    let original = read_lines(dir.path(), "records.jsonl");
    for k in 0..original.len() {
        let mut lines = original.clone();
        let mut bytes = lines[k].clone().into_bytes();
        let at = 40 + k % 30; // somewhere inside the record, ASCII stays ASCII
        bytes[at] ^= 0x01;
        lines[k] = String::from_utf8(bytes).unwrap();
        write_lines(dir.path(), "records.jsonl", &lines);
        let err = verify_err(dir.path(), &log);
        assert_found(&err, TamperKind::Altered, k as u64);
        assert_eq!((err.file, err.line), ("records.jsonl", Some(k + 1)));
    }
}

#[test]
fn a_dropped_record_is_removed_at_its_seq() {
    let log = build(40, 16);
    let dir = export(&log);
    let recs = read_lines(dir.path(), "records.jsonl");
    let ents = read_lines(dir.path(), "entries.jsonl");
    for k in [0usize, 9, 16, 39] {
        // From the records file only.
        let mut r = recs.clone();
        r.remove(k);
        write_lines(dir.path(), "records.jsonl", &r);
        write_lines(dir.path(), "entries.jsonl", &ents);
        assert_found(&verify_err(dir.path(), &log), TamperKind::Removed, k as u64);
        // From both files together.
        let mut e = ents.clone();
        e.remove(k);
        write_lines(dir.path(), "entries.jsonl", &e);
        assert_found(&verify_err(dir.path(), &log), TamperKind::Removed, k as u64);
    }
}

#[test]
fn swapped_records_are_reordered_at_the_first_position() {
    let log = build(40, 16);
    let dir = export(&log);
    let recs = read_lines(dir.path(), "records.jsonl");
    let ents = read_lines(dir.path(), "entries.jsonl");
    for (a, b) in [(3usize, 4usize), (5, 20), (38, 39)] {
        let mut r = recs.clone();
        r.swap(a, b);
        write_lines(dir.path(), "records.jsonl", &r);
        write_lines(dir.path(), "entries.jsonl", &ents);
        assert_found(
            &verify_err(dir.path(), &log),
            TamperKind::Reordered,
            a as u64,
        );
        let mut e = ents.clone();
        e.swap(a, b);
        write_lines(dir.path(), "entries.jsonl", &e);
        assert_found(
            &verify_err(dir.path(), &log),
            TamperKind::Reordered,
            a as u64,
        );
    }
}

#[test]
fn an_inserted_record_is_inserted_at_its_position() {
    let log = build(40, 16);
    let dir = export(&log);
    let recs = read_lines(dir.path(), "records.jsonl");
    let ents = read_lines(dir.path(), "entries.jsonl");
    let mut fake = record(1000);
    fake.reason = Some("never happened".into());
    let fake_line = String::from_utf8(canonical_bytes(&fake)).unwrap();
    for k in [0usize, 10, 39] {
        // A made-up record in the records file only.
        let mut r = recs.clone();
        r.insert(k, fake_line.clone());
        write_lines(dir.path(), "records.jsonl", &r);
        write_lines(dir.path(), "entries.jsonl", &ents);
        assert_found(
            &verify_err(dir.path(), &log),
            TamperKind::Inserted,
            k as u64,
        );
        // A replayed copy of an earlier record.
        let mut r = recs.clone();
        r.insert(k + 1, recs[0].clone());
        write_lines(dir.path(), "records.jsonl", &r);
        assert_found(
            &verify_err(dir.path(), &log),
            TamperKind::Inserted,
            k as u64 + 1,
        );
        // In both files, with a correct leaf and a chain hash linked to the previous entry.
        let prev = if k == 0 {
            CHAIN_GENESIS
        } else {
            log.entries[k - 1].chain_hash
        };
        let leaf = merkle::leaf_hash(fake_line.as_bytes());
        let entry = format!(
            "{{\"seq\":{k},\"leaf\":\"{}\",\"chain\":\"{}\"}}",
            hex::encode(leaf),
            hex::encode(chain_hash(&prev, &leaf))
        );
        let mut r = recs.clone();
        r.insert(k, fake_line.clone());
        let mut e = ents.clone();
        e.insert(k, entry);
        write_lines(dir.path(), "records.jsonl", &r);
        write_lines(dir.path(), "entries.jsonl", &e);
        assert_found(
            &verify_err(dir.path(), &log),
            TamperKind::Inserted,
            k as u64,
        );
    }
}

#[test]
fn a_consistent_rewrite_is_caught_by_the_signed_checkpoint() {
    let log = build(40, 16);
    let dir = export(&log);
    let mut recs = read_lines(dir.path(), "records.jsonl");
    recs[20] = recs[20].replace("\"answered\"", "\"refused\"");
    // Recompute every leaf and chain hash as a careful forger would.
    let mut prev = CHAIN_GENESIS;
    let ents: Vec<String> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let leaf = merkle::leaf_hash(r.as_bytes());
            prev = chain_hash(&prev, &leaf);
            format!(
                "{{\"seq\":{i},\"leaf\":\"{}\",\"chain\":\"{}\"}}",
                hex::encode(leaf),
                hex::encode(prev)
            )
        })
        .collect();
    write_lines(dir.path(), "records.jsonl", &recs);
    write_lines(dir.path(), "entries.jsonl", &ents);
    let err = verify_err(dir.path(), &log);
    // The first checkpoint after seq 20 is at size 32.
    assert_found(&err, TamperKind::BadCheckpoint, 31);
}

#[test]
fn checkpoints_with_a_wrong_key_or_edited_fields_fail() {
    let log = build(40, 16);
    let dir = export(&log);
    let other = EphemeralSigner::generate().unwrap();
    let err = verify_bundle(dir.path(), other.public_key()).unwrap_err();
    assert_eq!(
        (err.kind, err.file, err.line),
        (TamperKind::BadSignature, "checkpoints.jsonl", Some(1))
    );
    // Also a bundle whose own public-keys.pem was swapped: the auditor's key decides.
    fs::write(
        dir.path().join("public-keys.pem"),
        public_key_pem(other.public_key()).unwrap(),
    )
    .unwrap();
    verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    // An edited checkpoint line no longer verifies.
    let cps = read_lines(dir.path(), "checkpoints.jsonl");
    let mut edited = cps.clone();
    // (The line is a signed note: its second line is the tree size.)
    assert!(edited[1].contains("\\n32\\n"), "{}", edited[1]);
    edited[1] = edited[1].replace("\\n32\\n", "\\n33\\n");
    write_lines(dir.path(), "checkpoints.jsonl", &edited);
    let err = verify_err(dir.path(), &log);
    assert_eq!((err.kind, err.line), (TamperKind::BadSignature, Some(2)));
    // Checkpoints out of order.
    let mut shuffled = cps.clone();
    shuffled.swap(0, 1);
    write_lines(dir.path(), "checkpoints.jsonl", &shuffled);
    let err = verify_err(dir.path(), &log);
    assert_eq!((err.kind, err.line), (TamperKind::BadCheckpoint, Some(2)));
}

#[test]
fn truncating_the_end_is_removed_and_unsigned_additions_are_inserted() {
    let log = build(40, 16);
    let dir = export(&log);
    let recs = read_lines(dir.path(), "records.jsonl");
    let ents = read_lines(dir.path(), "entries.jsonl");
    write_lines(dir.path(), "records.jsonl", &recs[..37]);
    write_lines(dir.path(), "entries.jsonl", &ents[..37]);
    assert_found(&verify_err(dir.path(), &log), TamperKind::Removed, 37);
    // Entries past the last checkpoint are not signed: an export never has them.
    let mut state = ChainState::rebuild(log.entries.clone()).unwrap();
    let extra = state.append_record(&record(40)).unwrap();
    let mut r = recs.clone();
    r.push(String::from_utf8(extra.content.clone().unwrap()).unwrap());
    let mut e = ents.clone();
    e.push(format!(
        "{{\"seq\":40,\"leaf\":\"{}\",\"chain\":\"{}\"}}",
        hex::encode(extra.leaf_hash),
        hex::encode(extra.chain_hash)
    ));
    write_lines(dir.path(), "records.jsonl", &r);
    write_lines(dir.path(), "entries.jsonl", &e);
    assert_found(&verify_err(dir.path(), &log), TamperKind::Inserted, 40);
}

#[test]
fn a_person_bundle_verifies_and_reveals_nobody_else() {
    let log = build(45, 16);
    let dir = TempDir::new().unwrap();
    let who = person(2);
    let summary = export_person_bundle(
        dir.path(),
        who,
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &log.pem,
    )
    .unwrap();
    let expected: Vec<usize> = (0..45).filter(|i| i % 4 == 1).collect();
    assert_eq!(summary.records, expected.len() as u64);
    let report = verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    assert_eq!(
        (report.records, report.person, report.end_seq),
        (expected.len() as u64, Some(who), 45)
    );
    let recs = read_lines(dir.path(), "records.jsonl");
    for (line, i) in recs.iter().zip(&expected) {
        assert_eq!(
            line.as_bytes(),
            canonical_bytes(&log.records[*i]).as_slice()
        );
    }
    // No file of the bundle names another person or holds another record's content.
    for entry in walk(dir.path()) {
        let text = String::from_utf8_lossy(&fs::read(&entry).unwrap()).to_string();
        for other in [1, 3, 4] {
            assert!(
                !text.contains(&person(other).to_string()),
                "{} names person {other}",
                entry.display()
            );
        }
        for i in (0..45).filter(|i| i % 4 != 1) {
            assert!(
                !text.contains(&format!("\"inq-{i}\"")),
                "{} holds record {i}",
                entry.display()
            );
        }
    }
    // Tampering.
    let proofs = read_lines(dir.path(), "proofs.jsonl");
    let mut r = recs.clone();
    r[2] = r[2].replace("\"answered\"", "\"not_held\"");
    write_lines(dir.path(), "records.jsonl", &r);
    assert_found(
        &verify_err(dir.path(), &log),
        TamperKind::Altered,
        expected[2] as u64,
    );
    let mut r = recs.clone();
    let mut p = proofs.clone();
    r.swap(1, 2);
    p.swap(1, 2);
    write_lines(dir.path(), "records.jsonl", &r);
    write_lines(dir.path(), "proofs.jsonl", &p);
    assert_found(
        &verify_err(dir.path(), &log),
        TamperKind::Reordered,
        expected[1] as u64,
    );
    // A genuine record of someone else, with a genuine proof, is still not this person's.
    let tree = merkle::MerkleTree::new(log.entries.iter().map(|e| e.leaf_hash).collect());
    let foreign = 4usize;
    let mut r = recs.clone();
    let mut p = proofs.clone();
    r.insert(
        1,
        String::from_utf8(canonical_bytes(&log.records[foreign])).unwrap(),
    );
    p.insert(
        1,
        serde_json::json!({
            "seq": foreign,
            "leaf": hex::encode(log.entries[foreign].leaf_hash),
            "path": tree.proof(foreign as u64).iter().map(hex::encode).collect::<Vec<_>>(),
        })
        .to_string(),
    );
    write_lines(dir.path(), "records.jsonl", &r);
    write_lines(dir.path(), "proofs.jsonl", &p);
    assert_found(
        &verify_err(dir.path(), &log),
        TamperKind::Inserted,
        foreign as u64,
    );
    write_lines(dir.path(), "records.jsonl", &recs);
    write_lines(dir.path(), "proofs.jsonl", &proofs);
    verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    let other = EphemeralSigner::generate().unwrap();
    assert_eq!(
        verify_bundle(dir.path(), other.public_key())
            .unwrap_err()
            .kind,
        TamperKind::BadSignature
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_range_export_verifies_from_its_anchor() {
    let log = build(45, 16);
    let dir = TempDir::new().unwrap();
    let summary = export_range_bundle(
        dir.path(),
        Some(&log.entries[19]),
        log.entries[20..].iter().cloned(),
        30,
        &log.checkpoints,
        &log.pem,
    )
    .unwrap();
    assert_eq!(
        (
            summary.first_seq,
            summary.end_seq,
            summary.records,
            summary.withheld
        ),
        (20, 32, 10, 2)
    );
    let report = verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    assert_eq!(
        (
            report.first_seq,
            report.end_seq,
            report.records,
            report.withheld
        ),
        (20, 32, 10, 2)
    );
    assert_eq!(report.checkpoints_verified, 1);
    let recs = read_lines(dir.path(), "records.jsonl");
    assert!(recs[10].starts_with("{\"withheld\":\""), "{}", recs[10]);
    let mut r = recs.clone();
    r.remove(3);
    write_lines(dir.path(), "records.jsonl", &r);
    assert_found(&verify_err(dir.path(), &log), TamperKind::Removed, 23);
    // A forged anchor breaks the first link.
    write_lines(dir.path(), "records.jsonl", &recs);
    let manifest = fs::read_to_string(dir.path().join("bundle.json")).unwrap();
    let forged = manifest.replace(
        &hex::encode(log.entries[19].chain_hash),
        &hex::encode(log.entries[18].chain_hash),
    );
    fs::write(dir.path().join("bundle.json"), forged).unwrap();
    assert_found(&verify_err(dir.path(), &log), TamperKind::Altered, 20);
    // No checkpoint at or after the range end yet: refused.
    let none = export_range_bundle(
        dir.path(),
        None,
        log.entries.iter().cloned(),
        46,
        &log.checkpoints,
        &log.pem,
    );
    assert_eq!(none.unwrap_err().code(), "records_export");
}

fn swept_log(log: &Log, cutoff: &str) -> Vec<StoredEntry> {
    log.entries
        .iter()
        .zip(&log.records)
        .map(|(e, r)| sweep(e, r, cutoff).unwrap_or_else(|| e.clone()))
        .collect()
}

#[test]
fn sweeping_past_retention_keeps_everything_verifiable() {
    let log = build(45, 16);
    // Injected "now": 2026-11-26, seven years back is 2019-11-26; the 2018 records go.
    let cutoff = retention_cutoff("2026-11-26T00:00:00Z", DEFAULT_RETENTION_YEARS).unwrap();
    let entries = swept_log(&log, &cutoff);
    let swept: Vec<u64> = entries
        .iter()
        .filter(|e| e.content.is_none())
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        swept,
        (0..45)
            .filter(|i: &u64| i.is_multiple_of(3))
            .collect::<Vec<_>>()
    );
    // The Merkle root and chain are untouched.
    assert_eq!(
        ChainState::rebuild(entries.clone()).unwrap(),
        ChainState::rebuild(log.entries.clone()).unwrap()
    );
    let live = verify_entries(
        entries.clone().into_iter(),
        &log.checkpoints,
        log.signer.public_key(),
    )
    .unwrap();
    assert_eq!((live.records, live.swept), (30, 15));
    let dir = TempDir::new().unwrap();
    export_bundle(dir.path(), entries.into_iter(), &log.checkpoints, &log.pem).unwrap();
    let report = verify_bundle(dir.path(), log.pem.as_bytes()).unwrap();
    assert_eq!((report.records, report.swept), (30, 15));
    let recs = read_lines(dir.path(), "records.jsonl");
    assert_eq!(
        recs[3],
        format!(
            "{{\"swept\":\"{}\"}}",
            hex::encode(log.entries[3].leaf_hash)
        )
    );
    // An earlier "now" sweeps nothing.
    let early = retention_cutoff("2024-01-01T00:00:00Z", DEFAULT_RETENTION_YEARS).unwrap();
    assert!(swept_log(&log, &early).iter().all(|e| e.content.is_some()));
}

#[test]
fn the_live_store_check_finds_and_locates_damage() {
    let log = build(40, 16);
    let key = log.signer.public_key();
    let mut entries = log.entries.clone();
    let mut state = ChainState::rebuild(entries.clone()).unwrap();
    for i in 40..43 {
        entries.push(state.append_record(&record(i)).unwrap());
    }
    let ok = verify_entries(entries.clone().into_iter(), &log.checkpoints, key).unwrap();
    assert_eq!(
        (ok.end_seq, ok.unchecked_tail, ok.checkpoints_verified),
        (43, 3, 3)
    );

    let mut e = entries.clone();
    e.remove(5);
    let err = verify_entries(e.into_iter(), &log.checkpoints, key).unwrap_err();
    assert_found(&err, TamperKind::Removed, 5);
    let mut e = entries.clone();
    e.swap(5, 6);
    assert_found(
        &verify_entries(e.into_iter(), &log.checkpoints, key).unwrap_err(),
        TamperKind::Reordered,
        5,
    );
    let mut e = entries.clone();
    if let Some(c) = e[12].content.as_mut() {
        c[50] ^= 1;
    }
    assert_found(
        &verify_entries(e.into_iter(), &log.checkpoints, key).unwrap_err(),
        TamperKind::Altered,
        12,
    );
    let mut e = entries.clone();
    e[41].chain_hash[0] ^= 1;
    assert_found(
        &verify_entries(e.into_iter(), &log.checkpoints, key).unwrap_err(),
        TamperKind::Altered,
        41,
    );
    let other = EphemeralSigner::generate().unwrap();
    let err =
        verify_entries(entries.into_iter(), &log.checkpoints, other.public_key()).unwrap_err();
    assert_eq!(err.kind, TamperKind::BadSignature);
}

#[test]
fn state_restored_from_bytes_continues_the_same_log() {
    let log = build(20, 8);
    let mut state = ChainState::rebuild(log.entries[..13].to_vec()).unwrap();
    let restored = ChainState::from_bytes(&state.to_bytes()).unwrap();
    let mut restored = restored;
    for i in 13..20 {
        let a = state.append_record(&log.records[i as usize]).unwrap();
        let b = restored.append_record(&log.records[i as usize]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, log.entries[i as usize]);
    }
    assert_eq!(restored.root(), log.checkpoints.last().unwrap().root);
}

fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "this test needs `{tool}` on PATH (CI installs it)");
}

fn run_manual_script(dir: &Path, key_pem: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manual_verify.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(key_pem)
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
fn the_manual_sha256sum_and_openssl_procedure_passes_and_fails_as_documented() {
    for tool in ["bash", "openssl", "sha256sum", "base64", "od"] {
        require_tool(tool);
    }
    let log = build(40, 16);
    let cutoff = retention_cutoff("2026-11-26T00:00:00Z", DEFAULT_RETENTION_YEARS).unwrap();
    let dir = TempDir::new().unwrap();
    export_bundle(
        dir.path(),
        swept_log(&log, &cutoff).into_iter(),
        &log.checkpoints,
        &log.pem,
    )
    .unwrap();
    let keydir = TempDir::new().unwrap();
    let key = keydir.path().join("key.pem");
    fs::write(&key, &log.pem).unwrap();
    let (ok, text) = run_manual_script(dir.path(), &key);
    assert!(ok, "{text}");
    assert!(text.contains("bundle OK: seq 0..39"), "{text}");

    // A range bundle too.
    let range = TempDir::new().unwrap();
    export_range_bundle(
        range.path(),
        Some(&log.entries[9]),
        log.entries[10..].iter().cloned(),
        20,
        &log.checkpoints,
        &log.pem,
    )
    .unwrap();
    let (ok, text) = run_manual_script(range.path(), &key);
    assert!(ok, "{text}");
    assert!(text.contains("bundle OK: seq 10..31"), "{text}");

    // A flipped byte fails the leaf step; a wrong key fails the signature step.
    let mut recs = read_lines(dir.path(), "records.jsonl");
    recs[5] = recs[5].replace("\"kodomo-iryo\"", "\"kodomo-iryp\"");
    write_lines(dir.path(), "records.jsonl", &recs);
    let (ok, text) = run_manual_script(dir.path(), &key);
    assert!(!ok);
    assert!(
        text.contains("seq 5: record does not hash to its leaf"),
        "{text}"
    );
    let other = EphemeralSigner::generate().unwrap();
    fs::write(&key, public_key_pem(other.public_key()).unwrap()).unwrap();
    let (ok, text) = run_manual_script(range.path(), &key);
    assert!(!ok);
    assert!(text.contains("signature"), "{text}");
}
