//! Export and verification of bundles (a directory an auditor or a person receives) and
//! in-place verification of the stored log.
//!
//! A log bundle holds `bundle.json`, `records.jsonl`, `entries.jsonl`, `checkpoints.jsonl`,
//! `public-keys.pem` and `VERIFY.txt` (flat, text only); a person bundle
//! holds `proofs.jsonl` instead of `entries.jsonl`. The formats are in `docs/records.md`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use renkei_ids::UnifiedAddressNumber;
use serde::{Deserialize, Serialize};

use crate::chain::{chain_hash, StoredEntry, CHAIN_GENESIS};
use crate::checkpoint::{Checkpoint, SignedNoteLine};
use crate::error::{RecordsError, TamperKind, VerifyError};
use crate::keyset::{BundleKeys, KeySet};
use crate::merkle::{leaf_hash, to_hash, verify_inclusion, Frontier, Hash, MerkleTree};
use crate::record::Record;
use crate::verify::{replay, ContentSide, EntrySide, Item};

/// The `format` value of `bundle.json` written now: v2 bundles carry C2SP signed notes in
/// `checkpoints.jsonl` (checkpoints stored before the C2SP form keep their legacy line).
pub const BUNDLE_FORMAT: &str = "renkei-records-bundle/v2";

/// The `format` of bundles written before signed notes (legacy checkpoint lines only); such
/// bundles still verify.
pub const BUNDLE_FORMAT_V1: &str = "renkei-records-bundle/v1";

/// Leaf hashes preallocated for a person export: 16 Mi hashes (512 MiB) covers years of a
/// city's records; a larger log still works, growing the vector as it goes.
const DEFAULT_PREALLOCATE_LEAVES: u64 = 1 << 24;

const MANIFEST: &str = "bundle.json";
const RECORDS: &str = "records.jsonl";
const ENTRIES: &str = "entries.jsonl";
const PROOFS: &str = "proofs.jsonl";
const CHECKPOINTS: &str = "checkpoints.jsonl";
const PUBLIC_KEYS: &str = "public-keys.pem";
const VERIFY_TXT: &str = "VERIFY.txt";

/// Checkpoints between two kept ones in [`CheckpointSelection::default`]: one per 100 000
/// entries (~40 MB of records) still locates a consistent rewrite to a stretch an auditor can
/// search, while a 5-second checkpoint interval no longer adds one line per 5 seconds.
pub const DEFAULT_CHECKPOINT_SPACING: u64 = 100_000;

/// Which of the checkpoints inside a log bundle's range are written to `checkpoints.jsonl`.
/// The last one (at the bundle's end) is always written: it alone binds every entry, since
/// its chain head follows from the anchor through all of them. Earlier ones only narrow down
/// WHERE a consistent rewrite happened (`bad_checkpoint` names the first checkpoint after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointSelection {
    /// Every checkpoint in the range (the behaviour before thinning existed).
    All,
    /// Only the checkpoint that covers the end of the range.
    Needed,
    /// The first checkpoint at or after each multiple of this many entries, plus the last
    /// (0 is read as 1, i.e. all).
    Spaced(u64),
}

impl Default for CheckpointSelection {
    fn default() -> Self {
        CheckpointSelection::Spaced(DEFAULT_CHECKPOINT_SPACING)
    }
}

impl CheckpointSelection {
    /// Picks from `cps` (sorted, all inside the range, the last at its end).
    fn pick(self, first: u64, cps: Vec<Checkpoint>) -> Vec<Checkpoint> {
        let every = match self {
            CheckpointSelection::All => return cps,
            CheckpointSelection::Needed => return cps.into_iter().last().into_iter().collect(),
            CheckpointSelection::Spaced(n) => n.max(1),
        };
        let next_mark = |after: u64| (after / every).saturating_add(1).saturating_mul(every);
        let mut mark = next_mark(first);
        let last = cps.len().saturating_sub(1);
        cps.into_iter()
            .enumerate()
            .filter_map(|(i, cp)| {
                if i == last || cp.tree_size >= mark {
                    mark = next_mark(cp.tree_size);
                    Some(cp)
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Options of a log-bundle export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Which checkpoints to include (default: one per [`DEFAULT_CHECKPOINT_SPACING`] entries
    /// plus the last).
    pub checkpoints: CheckpointSelection,
}

/// Which kind of bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleKind {
    /// A contiguous range of the log (the whole log when it starts at seq 0).
    Log,
    /// One person's records with inclusion proofs.
    Person,
}

/// `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    kind: BundleKind,
    /// Log: the first seq in the bundle.
    first_seq: u64,
    /// Log: one past the last seq (= the last checkpoint's size). Person: the checkpoint's size.
    end_seq: u64,
    /// Log: content is given for seqs below this; above it only hashes (up to the checkpoint).
    content_to: u64,
    /// Log: hex chain hash of the entry before `first_seq` (zeros when it is 0).
    anchor: String,
    /// Person: the person's unified address number.
    person: Option<UnifiedAddressNumber>,
}

/// A hash-only line of `records.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum HashOnly {
    /// Content deleted by the retention sweep.
    Swept(String),
    /// Content outside the exported range (present only to reach the covering checkpoint).
    Withheld(String),
}

/// A line of `entries.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    seq: u64,
    leaf: String,
    chain: String,
}

/// A line of `proofs.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofLine {
    seq: u64,
    leaf: String,
    path: Vec<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// Log or person.
    pub kind: BundleKind,
    /// First seq covered (log bundles).
    pub first_seq: u64,
    /// One past the last seq covered (= size of the covering checkpoint).
    pub end_seq: u64,
    /// Records exported with content.
    pub records: u64,
    /// Swept entries (hash only).
    pub swept: u64,
    /// Entries past the requested range, present as hashes only.
    pub withheld: u64,
    /// Checkpoints included.
    pub checkpoints: usize,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Log or person (for a live check of the store: log).
    pub kind: BundleKind,
    /// First seq covered.
    pub first_seq: u64,
    /// One past the last seq checked.
    pub end_seq: u64,
    /// Records checked with content.
    pub records: u64,
    /// Swept entries (hash only).
    pub swept: u64,
    /// Hash-only entries past the exported range.
    pub withheld: u64,
    /// Checkpoints whose signature and contents were verified.
    pub checkpoints_verified: usize,
    /// Size and time of the latest verified checkpoint.
    pub last_checkpoint: Option<(u64, String)>,
    /// Live check only: entries after the last checkpoint (chain checked, not yet signed).
    pub unchecked_tail: u64,
    /// Hex chain head at the end.
    pub chain_head: String,
    /// Person bundles: whose records.
    pub person: Option<UnifiedAddressNumber>,
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> RecordsError + '_ {
    move |e| RecordsError::io(path, e)
}

fn create(path: &Path) -> Result<BufWriter<File>, RecordsError> {
    Ok(BufWriter::with_capacity(
        1 << 16,
        File::create(path).map_err(write_err(path))?,
    ))
}

fn sorted(checkpoints: &[Checkpoint]) -> Vec<Checkpoint> {
    let mut cps = checkpoints.to_vec();
    cps.sort_by_key(|c| c.tree_size);
    cps
}

/// Writes `checkpoints.jsonl` for `cps`: `{"signed_note":"..."}` for C2SP-form checkpoints
/// (the key ID comes from `keys`, which must hold each one's signing key), the legacy line
/// for legacy ones. Every line is prepared before the file is created.
fn write_checkpoints(dir: &Path, cps: &[Checkpoint], keys: &KeySet) -> Result<(), RecordsError> {
    let mut lines = Vec::with_capacity(cps.len());
    for cp in cps {
        if cp.origin.is_none() {
            lines.push(cp.to_json_line());
            continue;
        }
        let note = cp.to_signed_note(keys).map_err(|e| {
            RecordsError::Export(format!(
                "checkpoint of size {} (key version {}): {e}; the keys given for export must \
                 hold the public key of every signing key version used",
                cp.tree_size, cp.key_version
            ))
        })?;
        let line = serde_json::to_string(&SignedNoteLine { signed_note: note })
            .map_err(|e| RecordsError::Export(e.to_string()))?;
        lines.push(line);
    }
    let path = dir.join(CHECKPOINTS);
    let mut w = create(&path)?;
    for line in lines {
        writeln!(w, "{line}").map_err(write_err(&path))?;
    }
    w.flush().map_err(write_err(&path))
}

fn write_common(dir: &Path, manifest: &Manifest, keys: &KeySet) -> Result<(), RecordsError> {
    let path = dir.join(MANIFEST);
    let json =
        serde_json::to_string_pretty(manifest).map_err(|e| RecordsError::Export(e.to_string()))?;
    fs::write(&path, json + "\n").map_err(write_err(&path))?;
    let path = dir.join(PUBLIC_KEYS);
    fs::write(&path, keys.to_pem_file()).map_err(write_err(&path))?;
    let path = dir.join(VERIFY_TXT);
    let text = match manifest.kind {
        BundleKind::Log => VERIFY_LOG_TEXT,
        BundleKind::Person => VERIFY_PERSON_TEXT,
    };
    fs::write(&path, text).map_err(write_err(&path))
}

/// Exports the whole log from seq 0 up to the last checkpoint with the default
/// [`ExportOptions`]. `entries` must start at seq 0 and run at least to the last
/// checkpoint's size; entries after it are not exported. `keys` (one PEM as before, a
/// [`KeySet`], or (version, PEM) pairs) becomes the informational `public-keys.pem`.
pub fn export_bundle<K: BundleKeys + ?Sized>(
    dir: &Path,
    entries: impl Iterator<Item = StoredEntry>,
    checkpoints: &[Checkpoint],
    keys: &K,
) -> Result<BundleSummary, RecordsError> {
    export_bundle_with(dir, entries, checkpoints, keys, &ExportOptions::default())
}

/// [`export_bundle`] with explicit options.
pub fn export_bundle_with<K: BundleKeys + ?Sized>(
    dir: &Path,
    entries: impl Iterator<Item = StoredEntry>,
    checkpoints: &[Checkpoint],
    keys: &K,
    options: &ExportOptions,
) -> Result<BundleSummary, RecordsError> {
    export_range_bundle_with(dir, None, entries, u64::MAX, checkpoints, keys, options)
}

/// Exports a range with the default [`ExportOptions`]: content for seqs from
/// `previous.seq + 1` (or 0) below `to`, then hashes only up to the first checkpoint at or
/// after `to` (the last checkpoint when `to` is `u64::MAX`). `previous` is the stored entry
/// just before the range: its chain hash is the anchor the verifier starts from. `entries`
/// must start right after `previous`.
pub fn export_range_bundle<K: BundleKeys + ?Sized>(
    dir: &Path,
    previous: Option<&StoredEntry>,
    entries: impl Iterator<Item = StoredEntry>,
    to: u64,
    checkpoints: &[Checkpoint],
    keys: &K,
) -> Result<BundleSummary, RecordsError> {
    export_range_bundle_with(
        dir,
        previous,
        entries,
        to,
        checkpoints,
        keys,
        &ExportOptions::default(),
    )
}

/// [`export_range_bundle`] with explicit options. Every checkpoint in the range is checked
/// against the stored entries; `options.checkpoints` says which are written.
pub fn export_range_bundle_with<K: BundleKeys + ?Sized>(
    dir: &Path,
    previous: Option<&StoredEntry>,
    entries: impl Iterator<Item = StoredEntry>,
    to: u64,
    checkpoints: &[Checkpoint],
    keys: &K,
    options: &ExportOptions,
) -> Result<BundleSummary, RecordsError> {
    let keys = keys.key_set()?;
    let first = previous.map_or(0, |p| p.seq + 1);
    let anchor = previous.map_or(CHAIN_GENESIS, |p| p.chain_hash);
    let cps = sorted(checkpoints);
    let end = if to == u64::MAX {
        cps.last().map(|c| c.tree_size)
    } else {
        cps.iter()
            .map(|c| c.tree_size)
            .find(|s| *s >= to && *s > first)
    }
    .filter(|s| *s > first)
    .ok_or_else(|| RecordsError::Export("no checkpoint covers the end of the range yet".into()))?;
    let content_to = to.min(end);
    let in_range: Vec<Checkpoint> = cps
        .into_iter()
        .filter(|c| c.tree_size > first && c.tree_size <= end)
        .collect();

    fs::create_dir_all(dir).map_err(write_err(dir))?;
    let rpath = dir.join(RECORDS);
    let epath = dir.join(ENTRIES);
    let mut rw = create(&rpath)?;
    let mut ew = create(&epath)?;
    let mut summary = BundleSummary {
        kind: BundleKind::Log,
        first_seq: first,
        end_seq: end,
        records: 0,
        swept: 0,
        withheld: 0,
        checkpoints: 0,
    };
    let mut frontier = (first == 0).then(Frontier::new);
    let mut prev = anchor;
    let mut expected = first;
    let mut next_cp = in_range.iter().peekable();
    for e in entries {
        if expected == end {
            break;
        }
        if e.seq != expected {
            return Err(RecordsError::Export(format!(
                "expected seq {expected}, the store gave {}",
                e.seq
            )));
        }
        if chain_hash(&prev, &e.leaf_hash) != e.chain_hash {
            return Err(RecordsError::Export(format!(
                "stored chain is broken at seq {expected}; run a live verify"
            )));
        }
        match (&e.content, e.seq < content_to) {
            (Some(c), true) => {
                if leaf_hash(c) != e.leaf_hash {
                    return Err(RecordsError::Export(format!(
                        "stored content of seq {expected} does not match its hash"
                    )));
                }
                rw.write_all(c).map_err(write_err(&rpath))?;
                rw.write_all(b"\n").map_err(write_err(&rpath))?;
                summary.records += 1;
            }
            (None, true) => {
                let line = serde_json::to_string(&HashOnly::Swept(hex::encode(e.leaf_hash)))
                    .unwrap_or_default();
                writeln!(rw, "{line}").map_err(write_err(&rpath))?;
                summary.swept += 1;
            }
            (_, false) => {
                let line = serde_json::to_string(&HashOnly::Withheld(hex::encode(e.leaf_hash)))
                    .unwrap_or_default();
                writeln!(rw, "{line}").map_err(write_err(&rpath))?;
                summary.withheld += 1;
            }
        }
        writeln!(
            ew,
            "{{\"seq\":{},\"leaf\":\"{}\",\"chain\":\"{}\"}}",
            e.seq,
            hex::encode(e.leaf_hash),
            hex::encode(e.chain_hash)
        )
        .map_err(write_err(&epath))?;
        prev = e.chain_hash;
        if let Some(f) = frontier.as_mut() {
            f.push(e.leaf_hash);
        }
        expected += 1;
        while let Some(cp) = next_cp.peek() {
            if cp.tree_size != expected {
                break;
            }
            if cp.chain_head != prev || frontier.as_ref().is_some_and(|f| f.root() != cp.root) {
                return Err(RecordsError::Export(format!(
                    "checkpoint of size {} does not match the stored log; run a live verify",
                    cp.tree_size
                )));
            }
            next_cp.next();
        }
    }
    if expected != end {
        return Err(RecordsError::Export(format!(
            "the store ended at seq {expected} before the checkpoint at {end}"
        )));
    }
    rw.flush().map_err(write_err(&rpath))?;
    ew.flush().map_err(write_err(&epath))?;
    let included = options.checkpoints.pick(first, in_range);
    summary.checkpoints = included.len();
    write_checkpoints(dir, &included, &keys)?;
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        kind: BundleKind::Log,
        first_seq: first,
        end_seq: end,
        content_to,
        anchor: hex::encode(anchor),
        person: None,
    };
    write_common(dir, &manifest, &keys)?;
    Ok(summary)
}

/// Exports one person's records, each with an inclusion proof against the latest checkpoint.
/// Other records appear only as hashes inside the proofs. `entries` must run from seq 0 to
/// at least the checkpoint's size (swept entries carry no content and are not included).
pub fn export_person_bundle<K: BundleKeys + ?Sized>(
    dir: &Path,
    person: UnifiedAddressNumber,
    entries: impl Iterator<Item = StoredEntry>,
    checkpoints: &[Checkpoint],
    keys: &K,
) -> Result<BundleSummary, RecordsError> {
    let keys = keys.key_set()?;
    let cp = sorted(checkpoints)
        .pop()
        .ok_or_else(|| RecordsError::Export("no checkpoint yet".into()))?;
    let size = cp.tree_size;
    // Preallocate for the checkpoint's size, capped so a corrupt size cannot ask for
    // terabytes up front.
    let mut leaves =
        Vec::with_capacity(usize::try_from(size.min(DEFAULT_PREALLOCATE_LEAVES)).unwrap_or(0));
    let mut mine: Vec<(u64, Vec<u8>)> = vec![];
    let mut prev = CHAIN_GENESIS;
    for e in entries {
        if leaves.len() as u64 == size {
            break;
        }
        if e.seq != leaves.len() as u64 || chain_hash(&prev, &e.leaf_hash) != e.chain_hash {
            return Err(RecordsError::Export(format!(
                "stored log is inconsistent at seq {}; run a live verify",
                e.seq
            )));
        }
        prev = e.chain_hash;
        if let Some(c) = e.content {
            let record = Record::from_canonical(&c).map_err(|_| {
                RecordsError::Export(format!("stored content of seq {} is not a record", e.seq))
            })?;
            if record.person == Some(person) {
                mine.push((e.seq, c));
            }
        }
        leaves.push(e.leaf_hash);
    }
    if leaves.len() as u64 != size {
        return Err(RecordsError::Export(
            "the store ended before the checkpoint".into(),
        ));
    }
    let tree = MerkleTree::new(leaves);
    if tree.root() != cp.root || prev != cp.chain_head {
        return Err(RecordsError::Export(
            "the checkpoint does not match the stored log; run a live verify".into(),
        ));
    }
    fs::create_dir_all(dir).map_err(write_err(dir))?;
    let rpath = dir.join(RECORDS);
    let ppath = dir.join(PROOFS);
    let mut rw = create(&rpath)?;
    let mut pw = create(&ppath)?;
    for (seq, content) in &mine {
        rw.write_all(content).map_err(write_err(&rpath))?;
        rw.write_all(b"\n").map_err(write_err(&rpath))?;
        let line = ProofLine {
            seq: *seq,
            leaf: hex::encode(leaf_hash(content)),
            path: tree.proof(*seq).iter().map(hex::encode).collect(),
        };
        let json = serde_json::to_string(&line).map_err(|e| RecordsError::Export(e.to_string()))?;
        writeln!(pw, "{json}").map_err(write_err(&ppath))?;
    }
    rw.flush().map_err(write_err(&rpath))?;
    pw.flush().map_err(write_err(&ppath))?;
    write_checkpoints(dir, std::slice::from_ref(&cp), &keys)?;
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        kind: BundleKind::Person,
        first_seq: 0,
        end_seq: size,
        content_to: size,
        anchor: hex::encode(CHAIN_GENESIS),
        person: Some(person),
    };
    write_common(dir, &manifest, &keys)?;
    Ok(BundleSummary {
        kind: BundleKind::Person,
        first_seq: 0,
        end_seq: size,
        records: mine.len() as u64,
        swept: 0,
        withheld: 0,
        checkpoints: 1,
    })
}

/// Reads lines (without the `\n`) of a bundle file; an I/O error becomes `Malformed`.
struct Lines {
    reader: Option<BufReader<File>>,
    file: &'static str,
    line: usize,
}

impl Lines {
    fn open(dir: &Path, file: &'static str) -> Result<Lines, VerifyError> {
        let f = File::open(dir.join(file))
            .map_err(|_| VerifyError::malformed(file, None, "file missing"))?;
        Ok(Lines {
            reader: Some(BufReader::with_capacity(1 << 16, f)),
            file,
            line: 0,
        })
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>, VerifyError> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => {
                self.reader = None;
                Ok(None)
            }
            Ok(_) => {
                self.line += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Ok(Some(buf))
            }
            Err(_) => Err(VerifyError::malformed(
                self.file,
                Some(self.line + 1),
                "read failed",
            )),
        }
    }
}

fn parse_hex32(s: &str) -> Option<Hash> {
    let b = hex::decode(s).ok()?;
    (b.len() == 32).then(|| to_hash(&b))
}

/// Fast path for the exact form the exporter writes:
/// `{"seq":N,"leaf":"<64 hex>","chain":"<64 hex>"}`.
fn parse_entry_line_exact(line: &[u8]) -> Option<EntrySide> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",\"leaf\":\"")?;
    let mut leaf = [0u8; 32];
    hex::decode_to_slice(rest.get(..64)?, &mut leaf).ok()?;
    let rest = rest[64..].strip_prefix(b"\",\"chain\":\"")?;
    let mut chain = [0u8; 32];
    hex::decode_to_slice(rest.get(..64)?, &mut chain).ok()?;
    (&rest[64..] == b"\"}").then_some(EntrySide::Ok { seq, leaf, chain })
}

fn parse_entry_line(line: &[u8]) -> EntrySide {
    if let Some(e) = parse_entry_line_exact(line) {
        return e;
    }
    let Ok(e) = serde_json::from_slice::<EntryLine>(line) else {
        return EntrySide::Unreadable;
    };
    match (parse_hex32(&e.leaf), parse_hex32(&e.chain)) {
        (Some(leaf), Some(chain)) => EntrySide::Ok {
            seq: e.seq,
            leaf,
            chain,
        },
        _ => EntrySide::Unreadable,
    }
}

fn parse_content_line(line: Vec<u8>) -> ContentSide {
    if line.starts_with(b"{\"kind\"") {
        return ContentSide::Record(line);
    }
    match serde_json::from_slice::<HashOnly>(&line) {
        Ok(HashOnly::Swept(h)) => {
            parse_hex32(&h).map_or(ContentSide::Record(line), ContentSide::Swept)
        }
        Ok(HashOnly::Withheld(h)) => {
            parse_hex32(&h).map_or(ContentSide::Record(line), ContentSide::Withheld)
        }
        // Anything else is treated as record bytes: its hash will not match and the
        // classifier names it.
        Err(_) => ContentSide::Record(line),
    }
}

/// Zips `records.jsonl` and `entries.jsonl` line by line.
struct BundleItems {
    records: Lines,
    entries: Lines,
    line: usize,
}

impl Iterator for BundleItems {
    type Item = Result<Item, VerifyError>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = match self.records.next_line() {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let e = match self.entries.next_line() {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        if r.is_none() && e.is_none() {
            return None;
        }
        self.line += 1;
        Some(Ok(Item {
            line: self.line,
            entry: e.map_or(EntrySide::Missing, |l| parse_entry_line(&l)),
            content: r.map_or(ContentSide::Missing, parse_content_line),
        }))
    }
}

/// Reads and signature-checks `checkpoints.jsonl`.
fn read_checkpoints(dir: &Path, keys: &KeySet) -> Result<Vec<Checkpoint>, VerifyError> {
    let mut lines = Lines::open(dir, CHECKPOINTS)?;
    let mut out: Vec<Checkpoint> = vec![];
    while let Some(line) = lines.next_line()? {
        let n = lines.line;
        let text = std::str::from_utf8(&line)
            .map_err(|_| VerifyError::malformed(CHECKPOINTS, Some(n), "not UTF-8"))?;
        let mut cp = Checkpoint::from_json_line(text).map_err(|e| {
            VerifyError::new(
                TamperKind::BadCheckpoint,
                None,
                CHECKPOINTS,
                Some(n),
                e.to_string(),
            )
        })?;
        let seq = cp.tree_size.checked_sub(1);
        match serde_json::from_str::<SignedNoteLine>(text) {
            // A signed note: verified as a note (key name, key ID, signature).
            Ok(line) => match Checkpoint::from_signed_note(&line.signed_note, keys) {
                Ok(verified) => cp = verified,
                Err(e) => return Err(signature_error(&cp, e, keys, CHECKPOINTS, Some(n))),
            },
            Err(_) => check_signature(&cp, keys, CHECKPOINTS, Some(n))?,
        }
        if let Some(last) = out.last() {
            if cp.tree_size < last.tree_size {
                return Err(VerifyError::new(
                    TamperKind::BadCheckpoint,
                    seq,
                    CHECKPOINTS,
                    Some(n),
                    "checkpoints are out of order",
                ));
            }
        }
        out.push(cp);
    }
    Ok(out)
}

/// Checks one checkpoint's signature with the key for its version; `BadSignature` naming the
/// version when the set lacks it or the signature does not verify.
fn check_signature(
    cp: &Checkpoint,
    keys: &KeySet,
    file: &'static str,
    line: Option<usize>,
) -> Result<(), VerifyError> {
    cp.verify_with(keys)
        .map_err(|e| signature_error(cp, e, keys, file, line))
}

fn signature_error(
    cp: &Checkpoint,
    error: RecordsError,
    keys: &KeySet,
    file: &'static str,
    line: Option<usize>,
) -> VerifyError {
    let detail = match error {
        RecordsError::UnknownKeyVersion { version } => format!(
            "checkpoint of size {} is signed with key version {version}, which the given key set \
             does not hold ({})",
            cp.tree_size,
            keys.describe()
        ),
        RecordsError::NoteNotSigned { .. } | RecordsError::BadSignature => format!(
            "checkpoint of size {} (key version {}) does not verify under the given key: {error}",
            cp.tree_size, cp.key_version
        ),
        other => format!(
            "checkpoint of size {} (key version {}) does not verify under the given key ({other})",
            cp.tree_size, cp.key_version
        ),
    };
    VerifyError::new(
        TamperKind::BadSignature,
        cp.tree_size.checked_sub(1),
        file,
        line,
        detail,
    )
}

fn read_keys(public_key: &[u8]) -> Result<KeySet, VerifyError> {
    KeySet::parse(public_key).map_err(|e| VerifyError::malformed("public key", None, e.to_string()))
}

/// Verifies a bundle directory with the auditor's key file: SEC1 bytes, SPKI DER, one PEM
/// (used for every key version) or a multi-version file as [`KeySet::parse`] reads it —
/// never the `public-keys.pem` inside the bundle, which is informational. Detects the bundle
/// kind from `bundle.json`. Returns the FIRST problem found.
pub fn verify_bundle(dir: &Path, public_key: &[u8]) -> Result<VerifyReport, VerifyError> {
    verify_bundle_with(dir, &read_keys(public_key)?)
}

/// [`verify_bundle`] with a key set: each checkpoint is checked with the key of its
/// `key_version`; a version the set lacks is `BadSignature` naming that version.
pub fn verify_bundle_with(dir: &Path, keys: &KeySet) -> Result<VerifyReport, VerifyError> {
    let manifest_text = fs::read(dir.join(MANIFEST))
        .map_err(|_| VerifyError::malformed(MANIFEST, None, "file missing"))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_text)
        .map_err(|_| VerifyError::malformed(MANIFEST, None, "not a bundle manifest"))?;
    if manifest.format != BUNDLE_FORMAT && manifest.format != BUNDLE_FORMAT_V1 {
        return Err(VerifyError::malformed(
            MANIFEST,
            None,
            "unknown bundle format",
        ));
    }
    let checkpoints = read_checkpoints(dir, keys)?;
    match manifest.kind {
        BundleKind::Log => verify_log_bundle(dir, &manifest, &checkpoints),
        BundleKind::Person => verify_person_bundle(dir, &manifest, &checkpoints),
    }
}

fn verify_log_bundle(
    dir: &Path,
    manifest: &Manifest,
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport, VerifyError> {
    let anchor = parse_hex32(&manifest.anchor)
        .ok_or_else(|| VerifyError::malformed(MANIFEST, None, "bad anchor"))?;
    if manifest.first_seq == 0 && anchor != CHAIN_GENESIS {
        return Err(VerifyError::malformed(
            MANIFEST,
            None,
            "a bundle from seq 0 must have a zero anchor",
        ));
    }
    let mut items = BundleItems {
        records: Lines::open(dir, RECORDS)?,
        entries: Lines::open(dir, ENTRIES)?,
        line: 0,
    };
    let t = replay(
        &mut items,
        manifest.first_seq,
        anchor,
        checkpoints,
        RECORDS,
        true,
    )?;
    if t.end_seq != manifest.end_seq {
        return Err(VerifyError::malformed(
            MANIFEST,
            None,
            format!(
                "end_seq says {} but the bundle ends at {}",
                manifest.end_seq, t.end_seq
            ),
        ));
    }
    Ok(VerifyReport {
        kind: BundleKind::Log,
        first_seq: t.first_seq,
        end_seq: t.end_seq,
        records: t.records,
        swept: t.swept,
        withheld: t.withheld,
        checkpoints_verified: t.checkpoints_verified,
        last_checkpoint: t.last_checkpoint,
        unchecked_tail: 0,
        chain_head: hex::encode(t.chain_head),
        person: None,
    })
}

fn verify_person_bundle(
    dir: &Path,
    manifest: &Manifest,
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport, VerifyError> {
    let person = manifest
        .person
        .ok_or_else(|| VerifyError::malformed(MANIFEST, None, "a person bundle names no person"))?;
    let [cp] = checkpoints else {
        return Err(VerifyError::new(
            TamperKind::BadCheckpoint,
            None,
            CHECKPOINTS,
            None,
            "a person bundle has exactly one checkpoint",
        ));
    };
    if cp.tree_size != manifest.end_seq {
        return Err(VerifyError::new(
            TamperKind::BadCheckpoint,
            None,
            CHECKPOINTS,
            Some(1),
            "checkpoint size differs from the manifest",
        ));
    }
    let mut records = Lines::open(dir, RECORDS)?;
    let mut proofs = Lines::open(dir, PROOFS)?;
    let mut last_seq: Option<u64> = None;
    let mut count = 0u64;
    loop {
        let r = records.next_line()?;
        let p = proofs.next_line()?;
        let line = records.line.max(proofs.line);
        let (r, p) = match (r, p) {
            (None, None) => break,
            (Some(_), None) => {
                return Err(VerifyError::new(
                    TamperKind::Inserted,
                    None,
                    RECORDS,
                    Some(line),
                    "a record without a proof",
                ))
            }
            (None, Some(_)) => {
                return Err(VerifyError::new(
                    TamperKind::Removed,
                    None,
                    RECORDS,
                    Some(line),
                    "a proof without its record",
                ))
            }
            (Some(r), Some(p)) => (r, p),
        };
        let proof: ProofLine = serde_json::from_slice(&p)
            .map_err(|_| VerifyError::malformed(PROOFS, Some(line), "not a proof line"))?;
        let seq = Some(proof.seq);
        let bad = |kind, detail: &str| VerifyError::new(kind, seq, RECORDS, Some(line), detail);
        if let Some(prev) = last_seq {
            if proof.seq == prev {
                return Err(bad(TamperKind::Inserted, "the same record appears twice"));
            }
            if proof.seq < prev {
                return Err(bad(TamperKind::Reordered, "records are out of log order"));
            }
        }
        let leaf = leaf_hash(&r);
        let claimed = parse_hex32(&proof.leaf)
            .ok_or_else(|| VerifyError::malformed(PROOFS, Some(line), "bad leaf hash"))?;
        let path: Option<Vec<Hash>> = proof.path.iter().map(|h| parse_hex32(h)).collect();
        let path =
            path.ok_or_else(|| VerifyError::malformed(PROOFS, Some(line), "bad hash in path"))?;
        if leaf != claimed || !verify_inclusion(&leaf, proof.seq, cp.tree_size, &path, &cp.root) {
            return Err(bad(
                TamperKind::Altered,
                "the record is not in the signed tree at this seq",
            ));
        }
        let record = Record::from_canonical(&r)
            .map_err(|_| bad(TamperKind::Altered, "not a canonical record"))?;
        if record.person != Some(person) {
            return Err(bad(TamperKind::Inserted, "a record of another person"));
        }
        last_seq = Some(proof.seq);
        count += 1;
    }
    Ok(VerifyReport {
        kind: BundleKind::Person,
        first_seq: 0,
        end_seq: cp.tree_size,
        records: count,
        swept: 0,
        withheld: 0,
        checkpoints_verified: 1,
        last_checkpoint: Some((cp.tree_size, cp.created_at.clone())),
        unchecked_tail: 0,
        chain_head: hex::encode(cp.chain_head),
        person: Some(person),
    })
}

/// Verifies the stored log in place: entries from seq 0 in order, checkpoints as stored
/// (each signature checked with `public_key`, read as [`verify_bundle`] reads it). Entries
/// after the last checkpoint are chain-checked and counted in `unchecked_tail`.
pub fn verify_entries(
    entries: impl Iterator<Item = StoredEntry>,
    checkpoints: &[Checkpoint],
    public_key: &[u8],
) -> Result<VerifyReport, VerifyError> {
    verify_entries_with(entries, checkpoints, &read_keys(public_key)?)
}

/// [`verify_entries`] with a key set (one key per signing-key version).
pub fn verify_entries_with(
    entries: impl Iterator<Item = StoredEntry>,
    checkpoints: &[Checkpoint],
    keys: &KeySet,
) -> Result<VerifyReport, VerifyError> {
    let cps = sorted(checkpoints);
    for cp in &cps {
        check_signature(cp, keys, "store", None)?;
    }
    let mut items = entries.enumerate().map(|(i, e)| {
        Ok(Item {
            line: i + 1,
            entry: EntrySide::Ok {
                seq: e.seq,
                leaf: e.leaf_hash,
                chain: e.chain_hash,
            },
            content: match e.content {
                Some(c) => ContentSide::Record(c),
                None => ContentSide::Swept(e.leaf_hash),
            },
        })
    });
    let t = replay(&mut items, 0, CHAIN_GENESIS, &cps, "store", false)?;
    let covered = t.last_checkpoint.as_ref().map_or(0, |(s, _)| *s);
    Ok(VerifyReport {
        kind: BundleKind::Log,
        first_seq: 0,
        end_seq: t.end_seq,
        records: t.records,
        swept: t.swept,
        withheld: 0,
        checkpoints_verified: t.checkpoints_verified,
        last_checkpoint: t.last_checkpoint,
        unchecked_tail: t.end_seq - covered,
        chain_head: hex::encode(t.chain_head),
        person: None,
    })
}

const VERIFY_LOG_TEXT: &str = "\
How to verify this bundle by hand (needs only sha256sum, openssl and bash)
==========================================================================
Take the public keys from the city through a channel you trust, NOT from public-keys.pem
in this folder (that copy is informational). The city's key file (`renkei audit public-keys`)
holds one PEM block per signing-key version, each after a line \"# signing key version N\".
Save the block for version N as key.pem:
  sed -n \"/^# signing key version N\\$/,/^-----END/p\" keys.pem > key.pem

Files: records.jsonl (line k = record of seq first_seq+k-1, canonical JSON, or
{\"swept\":\"<leaf hex>\"} / {\"withheld\":\"<leaf hex>\"}), entries.jsonl (line k =
{\"seq\":..,\"leaf\":\"<hex>\",\"chain\":\"<hex>\"}), checkpoints.jsonl (one signed checkpoint
a line), bundle.json (first_seq, end_seq, anchor = chain hash before first_seq).

1. Checkpoint signatures. A line {\"signed_note\":\"...\"} is a C2SP tlog-checkpoint signed note
   (c2sp.org/signed-note, ECDSA type 0x02). For line c:
     sed -n \"${c}p\" checkpoints.jsonl | sed -E 's/^\\{\"signed_note\":\"(.*)\"\\}$/\\1/; s/\\\\n/\\n/g' > signed.txt
     sed -n '/^$/q;p' signed.txt > note.txt        # the signed text: lines before the blank line
   note.txt: origin, tree size N, base64 root, \"chain-head <base64>\", \"created-at <time>\",
   \"key-version V\". The signature line is \"— <origin> <base64>\"; its base64 decodes to a
   4-byte key ID then the DER signature:
     grep -F -- \"— $(sed -n 1p note.txt) \" signed.txt | head -n 1 | cut -d' ' -f3 | base64 -d > sig.bin
     tail -c +5 sig.bin > sig.der
     openssl dgst -sha256 -verify key.pem -signature sig.der note.txt
   must print \"Verified OK\" (key.pem = the key of version V). The key ID (first 4 bytes of
   sig.bin) is the first 4 bytes of: openssl pkey -pubin -in key.pem -outform DER | sha256sum
   A line starting {\"tree_size\": is a checkpoint signed before signed notes; see
   docs/records.md section 6 for rebuilding its note (line 6 = version, line 4 = chain head).
2. Leaf hashes. For a record line k of records.jsonl:
     sed -n \"${k}p\" records.jsonl | tr -d '\\n' | { printf '\\000'; cat; } | sha256sum
   must equal the \"leaf\" of line k of entries.jsonl. For a swept/withheld line, the hex it
   gives must equal that leaf.
3. Chain. With prev = anchor from bundle.json (64 zeros for a bundle from seq 0), for each
   line k: chain = SHA-256(bytes(prev) || bytes(leaf)):
     printf \"$(echo \"$prev$leaf\" | sed 's/../\\\\x&/g')\" | sha256sum
   must equal the \"chain\" of line k, and seqs must count up by one.
4. Anchoring. For each checkpoint of size N, the chain of the entry with seq N-1 must equal
   the chain head: sed -n 's/^chain-head //p' note.txt | base64 -d | od -An -v -tx1 | tr -d ' \\n'
   The last line of entries.jsonl must be seq end_seq-1 and a checkpoint must have size end_seq.
5. Optional: the note's line 3 is the RFC 9162 Merkle root over all leaf hashes (bundles from
   seq 0); `renkei audit verify` checks it too.
docs/records.md in the renkei sources describes the formats in full, and
crates/renkei-records/tests/manual_verify.sh runs steps 1-4.
";

const VERIFY_PERSON_TEXT: &str = "\
How to verify this personal bundle by hand
==========================================
Take the public key from the city through a channel you trust, NOT from public-keys.pem;
use the block for the checkpoint's key version (the note's \"key-version V\" line) as key.pem.

1. Rebuild note.txt and sig.der from the one line of checkpoints.jsonl exactly as in step 1
   of a log bundle (docs/records.md), then
     openssl dgst -sha256 -verify key.pem -signature sig.der note.txt
   must print \"Verified OK\"; line 2 of the note is the tree size N, line 3 the Merkle root
   (base64).
2. For record line k of records.jsonl, sed -n \"${k}p\" records.jsonl | tr -d '\\n' |
   { printf '\\000'; cat; } | sha256sum must equal the \"leaf\" of line k of proofs.jsonl.
3. The \"path\" of line k is an RFC 9162 inclusion proof of that leaf at index \"seq\" in the tree
   of N leaves; folding it (RFC 9162 section 2.1.3.2, node = SHA-256(0x01 || left || right))
   must give the note's root. Other people's records appear only as hashes in these paths.
docs/records.md in the renkei sources describes the formats in full.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_entry_parser_agrees_with_serde() {
        let line = format!(
            "{{\"seq\":42,\"leaf\":\"{}\",\"chain\":\"{}\"}}",
            "ab".repeat(32),
            "0f".repeat(32)
        );
        let fast = parse_entry_line_exact(line.as_bytes()).unwrap();
        assert_eq!(
            fast,
            EntrySide::Ok {
                seq: 42,
                leaf: [0xab; 32],
                chain: [0x0f; 32]
            }
        );
        assert_eq!(parse_entry_line(line.as_bytes()), fast);
        // Other spellings fall back to serde; broken lines are unreadable.
        let spaced = line.replace(",\"leaf\"", ", \"leaf\"");
        assert!(parse_entry_line_exact(spaced.as_bytes()).is_none());
        assert_eq!(parse_entry_line(spaced.as_bytes()), fast);
        for bad in [
            &line[..line.len() - 1],
            &line.replace("42", "4x"),
            &line.replace("ab", "zz"),
        ] {
            assert_eq!(
                parse_entry_line(bad.as_bytes()),
                EntrySide::Unreadable,
                "{bad}"
            );
        }
    }
}
