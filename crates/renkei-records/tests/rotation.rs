//! A log signed across a key rotation (half the checkpoints with key version 1, half with
//! version 2) verifies with a key set, fails naming the version a key set lacks, exports its
//! keys in the `renkei audit public-keys` format, passes the manual openssl procedure; plus
//! checkpoint thinning on export and record validation before appending.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

mod common;
use common::{synthetic_record, EphemeralSigner};
use renkei_records::{
    checked_canonical_bytes, export_bundle, export_bundle_with, export_person_bundle,
    export_range_bundle_with, merkle, public_key_pem, verify_bundle, verify_bundle_with,
    verify_entries, verify_entries_with, ChainState, Checkpoint, CheckpointSelection,
    ExportOptions, KeySet, StoredEntry, TamperKind, CHAIN_GENESIS,
};
use tempfile::TempDir;

struct Rotated {
    entries: Vec<StoredEntry>,
    checkpoints: Vec<Checkpoint>,
    v1: EphemeralSigner,
    v2: EphemeralSigner,
}

impl Rotated {
    fn pem(&self, version: u32) -> String {
        let s = if version == 1 { &self.v1 } else { &self.v2 };
        public_key_pem(s.public_key()).unwrap()
    }

    /// The key file exactly as `renkei audit public-keys` prints it.
    fn cli_key_file(&self) -> String {
        format!(
            "# signing key version 1\n{}\n# signing key version 2\n{}\n",
            self.pem(1),
            self.pem(2)
        )
    }

    fn both(&self) -> KeySet {
        KeySet::from_pems([(1, self.pem(1)), (2, self.pem(2))]).unwrap()
    }
}

/// `n` records, a checkpoint every `every`; the key rotates from version 1 to version 2 at
/// record `n / 2`.
fn rotated(n: u64, every: u64) -> Rotated {
    let v1 = EphemeralSigner::generate_version(1).unwrap();
    let v2 = EphemeralSigner::generate_version(2).unwrap();
    let mut state = ChainState::new();
    let mut entries = vec![];
    let mut checkpoints = vec![];
    for i in 0..n {
        entries.push(state.append_record(&synthetic_record(i)).unwrap());
        if (i + 1).is_multiple_of(every) || i + 1 == n {
            let signer = if i < n / 2 { &v1 } else { &v2 };
            checkpoints.push(Checkpoint::sign(&state, "2026-11-26T10:00:00Z", signer).unwrap());
        }
    }
    Rotated {
        entries,
        checkpoints,
        v1,
        v2,
    }
}

const ALL: ExportOptions = ExportOptions {
    checkpoints: CheckpointSelection::All,
};

fn export_all(log: &Rotated, keys: &KeySet) -> TempDir {
    let dir = TempDir::new().unwrap();
    export_bundle_with(
        dir.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        keys,
        &ALL,
    )
    .unwrap();
    dir
}

fn versions_in(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("checkpoints.jsonl"))
        .unwrap()
        .lines()
        .map(|l| Checkpoint::from_json_line(l).unwrap().key_version)
        .collect()
}

#[test]
fn a_log_spanning_a_rotation_verifies_with_both_versions() {
    let log = rotated(60, 10);
    let dir = export_all(&log, &log.both());
    assert_eq!(versions_in(dir.path()), [1, 1, 1, 2, 2, 2]);
    let report = verify_bundle_with(dir.path(), &log.both()).unwrap();
    assert_eq!((report.end_seq, report.checkpoints_verified), (60, 6));
    // The old entry points take the key file the CLI prints, unchanged.
    let file = log.cli_key_file();
    assert_eq!(verify_bundle(dir.path(), file.as_bytes()).unwrap(), report);
    let live = verify_entries_with(
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &log.both(),
    )
    .unwrap();
    assert_eq!((live.checkpoints_verified, live.unchecked_tail), (6, 0));
    verify_entries(
        log.entries.clone().into_iter(),
        &log.checkpoints,
        file.as_bytes(),
    )
    .unwrap();
}

#[test]
fn a_key_set_missing_a_version_fails_naming_that_version() {
    let log = rotated(60, 10);
    let dir = export_all(&log, &log.both());
    // Only version 2: the very first checkpoint (size 10, version 1) fails.
    let only_v2 = KeySet::from_pems([(2, log.pem(2))]).unwrap();
    let err = verify_bundle_with(dir.path(), &only_v2).unwrap_err();
    assert_eq!(
        (err.kind, err.seq, err.file, err.line),
        (
            TamperKind::BadSignature,
            Some(9),
            "checkpoints.jsonl",
            Some(1)
        )
    );
    assert!(err.detail.contains("key version 1,"), "{err}");
    assert!(err.detail.contains("(versions 2)"), "{err}");
    let err = verify_entries_with(log.entries.clone().into_iter(), &log.checkpoints, &only_v2)
        .unwrap_err();
    assert_eq!((err.kind, err.file), (TamperKind::BadSignature, "store"));
    assert!(err.detail.contains("key version 1,"), "{err}");
    // Only version 1: fails at the first version-2 checkpoint (size 40, line 4).
    let only_v1 = KeySet::from_pems([(1, log.pem(1))]).unwrap();
    let err = verify_bundle_with(dir.path(), &only_v1).unwrap_err();
    assert_eq!(
        (err.kind, err.line, err.seq),
        (TamperKind::BadSignature, Some(4), Some(39))
    );
    assert!(err.detail.contains("key version 2,"), "{err}");
    // One key for every version (the old single-key call) stops at the same place, saying
    // the signature does not verify rather than that the version is missing.
    let err = verify_bundle(dir.path(), log.pem(1).as_bytes()).unwrap_err();
    assert_eq!((err.kind, err.line), (TamperKind::BadSignature, Some(4)));
    assert!(err.detail.contains("does not verify"), "{err}");
    // Keys under the wrong versions fail at the first checkpoint.
    let swapped = KeySet::from_pems([(1, log.pem(2)), (2, log.pem(1))]).unwrap();
    let err = verify_bundle_with(dir.path(), &swapped).unwrap_err();
    assert_eq!((err.kind, err.line), (TamperKind::BadSignature, Some(1)));
    // A checkpoint re-labelled with the other version no longer verifies (the version is
    // signed).
    let path = dir.path().join("checkpoints.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("key-version 1", "key-version 2", 1)).unwrap();
    let err = verify_bundle_with(dir.path(), &log.both()).unwrap_err();
    assert_eq!((err.kind, err.line), (TamperKind::BadSignature, Some(1)));
}

#[test]
fn bundles_carry_every_version_in_the_cli_format() {
    let log = rotated(30, 10);
    let dir = export_all(&log, &log.both());
    let written = fs::read_to_string(dir.path().join("public-keys.pem")).unwrap();
    assert_eq!(written, log.cli_key_file());
    assert_eq!(KeySet::parse(written.as_bytes()).unwrap(), log.both());
    // The gateway's `/v1/audit/public-keys` answer (version -> PEM) works as is.
    let map: BTreeMap<u32, String> = [(1, log.pem(1)), (2, log.pem(2))].into();
    let by_map = TempDir::new().unwrap();
    export_bundle(
        by_map.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &map,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(by_map.path().join("public-keys.pem")).unwrap(),
        written
    );
    // A person bundle too; and one plain PEM (the old call) is written as that PEM.
    let person = TempDir::new().unwrap();
    let who = synthetic_record(3).person.unwrap();
    export_person_bundle(
        person.path(),
        who,
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &log.both(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(person.path().join("public-keys.pem")).unwrap(),
        written
    );
    let report = verify_bundle_with(person.path(), &log.both()).unwrap();
    assert_eq!((report.person, report.end_seq), (Some(who), 30));
    let single = TempDir::new().unwrap();
    let pem = log.pem(2);
    export_bundle(
        single.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        &pem,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(single.path().join("public-keys.pem")).unwrap(),
        pem
    );
    // A broken key is refused before anything is written.
    let bad = TempDir::new().unwrap();
    let err = export_bundle(
        bad.path(),
        log.entries.clone().into_iter(),
        &log.checkpoints,
        "not a key",
    )
    .unwrap_err();
    assert_eq!(err.code(), "records_bad_key");
    assert!(!bad.path().join("records.jsonl").exists());
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

fn run_manual_script(dir: &Path, keys: &str) -> (bool, String) {
    let keydir = TempDir::new().unwrap();
    let key = keydir.path().join("keys.pem");
    fs::write(&key, keys).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manual_verify.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(&key)
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
fn the_manual_procedure_picks_the_key_of_each_version() {
    for tool in ["bash", "openssl", "sha256sum", "base64", "od", "grep"] {
        require_tool(tool);
    }
    let log = rotated(24, 6);
    let dir = export_all(&log, &log.both());
    assert_eq!(versions_in(dir.path()), [1, 1, 2, 2]);
    let (ok, text) = run_manual_script(dir.path(), &log.cli_key_file());
    assert!(ok, "{text}");
    assert!(text.contains("bundle OK: seq 0..23"), "{text}");
    // CRLF line ends (a file saved on Windows) work too.
    let (ok, text) = run_manual_script(dir.path(), &log.cli_key_file().replace('\n', "\r\n"));
    assert!(ok, "{text}");
    // Without version 1 in the file, the first checkpoint fails naming version 1.
    let only_v2 = format!("# signing key version 2\n{}\n", log.pem(2));
    let (ok, text) = run_manual_script(dir.path(), &only_v2);
    assert!(!ok);
    assert!(
        text.contains("checkpoint line 1: no key for signing key version 1"),
        "{text}"
    );
    // Keys under the wrong version labels fail the signature step.
    let swapped = format!(
        "# signing key version 1\n{}\n# signing key version 2\n{}\n",
        log.pem(2),
        log.pem(1)
    );
    let (ok, text) = run_manual_script(dir.path(), &swapped);
    assert!(!ok);
    assert!(
        text.contains("checkpoint line 1: signature (key ID")
            && text.contains("is not that of key version 1"),
        "{text}"
    );
    // A single plain key still works for a log that never rotated (the first half).
    let first_half = TempDir::new().unwrap();
    export_range_bundle_with(
        first_half.path(),
        None,
        log.entries.clone().into_iter(),
        12,
        &log.checkpoints,
        &log.pem(1),
        &ALL,
    )
    .unwrap();
    let (ok, text) = run_manual_script(first_half.path(), &log.pem(1));
    assert!(ok, "{text}");
    assert!(text.contains("bundle OK: seq 0..11"), "{text}");
}

/// A checkpoint after every record, as a 5-second interval gives on a quiet day.
fn dense(n: u64) -> (Vec<StoredEntry>, Vec<Checkpoint>, EphemeralSigner) {
    let signer = EphemeralSigner::generate().unwrap();
    let mut state = ChainState::new();
    let mut entries = vec![];
    let mut cps = vec![];
    for i in 0..n {
        entries.push(state.append_record(&synthetic_record(i)).unwrap());
        cps.push(Checkpoint::sign(&state, "2026-11-26T10:00:00Z", &signer).unwrap());
    }
    (entries, cps, signer)
}

fn sizes_in(dir: &Path) -> Vec<u64> {
    fs::read_to_string(dir.join("checkpoints.jsonl"))
        .unwrap()
        .lines()
        .map(|l| Checkpoint::from_json_line(l).unwrap().tree_size)
        .collect()
}

#[test]
fn thinning_keeps_the_covering_checkpoint_and_still_catches_a_rewrite() {
    let (entries, cps, signer) = dense(60);
    let keys = KeySet::single(signer.public_key()).unwrap();
    let cases: [(CheckpointSelection, Vec<u64>); 4] = [
        (CheckpointSelection::All, (1..=60).collect()),
        (CheckpointSelection::Needed, vec![60]),
        (CheckpointSelection::Spaced(25), vec![25, 50, 60]),
        // The default spacing (100 000) keeps only the last in a small log.
        (CheckpointSelection::default(), vec![60]),
    ];
    for (selection, want) in cases {
        let dir = TempDir::new().unwrap();
        let summary = export_bundle_with(
            dir.path(),
            entries.clone().into_iter(),
            &cps,
            &keys,
            &ExportOptions {
                checkpoints: selection,
            },
        )
        .unwrap();
        assert_eq!(sizes_in(dir.path()), want, "{selection:?}");
        assert_eq!(summary.checkpoints, want.len());
        let report = verify_bundle_with(dir.path(), &keys).unwrap();
        assert_eq!(
            (report.end_seq, report.checkpoints_verified),
            (60, want.len())
        );
    }
    // export_bundle (no options) uses the default.
    let dir = TempDir::new().unwrap();
    export_bundle(dir.path(), entries.clone().into_iter(), &cps, &keys).unwrap();
    assert_eq!(sizes_in(dir.path()), [60]);
    // A consistent rewrite of seq 20 is still caught, at the one remaining checkpoint.
    let path = dir.path().join("records.jsonl");
    let mut recs: Vec<String> = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    recs[20] = recs[20].replace("\"answered\"", "\"refused\"");
    let mut prev = CHAIN_GENESIS;
    let ents: Vec<String> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let leaf = merkle::leaf_hash(r.as_bytes());
            prev = renkei_records::chain_hash(&prev, &leaf);
            format!(
                "{{\"seq\":{i},\"leaf\":\"{}\",\"chain\":\"{}\"}}",
                hex::encode(leaf),
                hex::encode(prev)
            )
        })
        .collect();
    fs::write(&path, recs.join("\n") + "\n").unwrap();
    fs::write(dir.path().join("entries.jsonl"), ents.join("\n") + "\n").unwrap();
    let err = verify_bundle_with(dir.path(), &keys).unwrap_err();
    assert_eq!((err.kind, err.seq), (TamperKind::BadCheckpoint, Some(59)));
    // A range export keeps the one checkpoint at or after its end.
    let range = TempDir::new().unwrap();
    let summary = export_range_bundle_with(
        range.path(),
        Some(&entries[9]),
        entries[10..].iter().cloned(),
        30,
        &cps,
        &keys,
        &ExportOptions {
            checkpoints: CheckpointSelection::Needed,
        },
    )
    .unwrap();
    assert_eq!(
        (summary.first_seq, summary.end_seq, summary.checkpoints),
        (10, 30, 1)
    );
    assert_eq!(sizes_in(range.path()), [30]);
    verify_bundle_with(range.path(), &keys).unwrap();
    // Checkpoints left out are still checked against the store on export.
    let mut forged = cps.clone();
    forged[30].chain_head[0] ^= 1;
    let err = export_bundle(
        TempDir::new().unwrap().path(),
        entries.clone().into_iter(),
        &forged,
        &keys,
    )
    .unwrap_err();
    assert!(err.to_string().contains("checkpoint of size 31"), "{err}");
}

#[test]
fn records_are_validated_before_they_reach_the_log() {
    // A 12-digit run with a valid check digit, built here and never printed.
    let first11 = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1];
    let check = renkei_ids::individual_number_check_digit(&first11);
    let digits: String = first11
        .iter()
        .chain(std::iter::once(&check))
        .map(|d| char::from(b'0' + d))
        .collect();
    let mut bad = synthetic_record(1);
    bad.reason = Some(format!("caller typed {digits}"));
    assert_eq!(
        checked_canonical_bytes(&bad).err().map(|e| e.code()),
        Some("records_individual_number_in_text")
    );
    let mut state = ChainState::new();
    let before = state.clone();
    assert_eq!(
        state.append_record(&bad).err().map(|e| e.code()),
        Some("records_individual_number_in_text")
    );
    assert_eq!(state, before, "a refused record leaves the log unchanged");
    let good = synthetic_record(1);
    let bytes = checked_canonical_bytes(&good).unwrap();
    let mut other = state.clone();
    let appended = state.append(&bytes);
    assert_eq!(appended, other.append_record(&good).unwrap());
    assert_eq!(appended.content.as_deref(), Some(bytes.as_slice()));
}
