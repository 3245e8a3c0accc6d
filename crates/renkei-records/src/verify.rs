//! The verification core shared by bundle and live-store checks: replay the chain and the
//! Merkle frontier, compare with signed checkpoints, and on the first inconsistency look
//! ahead to name what happened (altered, removed, inserted, reordered) and where.

use crate::chain::chain_hash;
use crate::checkpoint::Checkpoint;
use crate::error::{TamperKind, VerifyError};
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::record::Record;

/// How many items past the first inconsistency are read to classify it. A reordering or
/// removal further apart than this is reported as `Removed`/`Altered` instead of
/// `Reordered`; 100 000 items is ~10 MB of hashes and covers any local edit.
pub const DEFAULT_ANALYSIS_WINDOW: usize = 100_000;

/// The entry side of one position (a line of `entries.jsonl` or a stored entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntrySide {
    Missing,
    Unreadable,
    Ok { seq: u64, leaf: Hash, chain: Hash },
}

/// The content side of one position (a line of `records.jsonl` or stored content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContentSide {
    Missing,
    Record(Vec<u8>),
    Swept(Hash),
    Withheld(Hash),
}

/// One position of the log as presented for verification.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub line: usize,
    pub entry: EntrySide,
    pub content: ContentSide,
}

/// An item reduced to what classification needs.
#[derive(Debug, Clone, Copy)]
struct Light {
    entry: EntrySide,
    content_hash: Option<Hash>,
}

impl Item {
    fn light(&self) -> Light {
        Light {
            entry: self.entry,
            content_hash: content_hash(&self.content),
        }
    }
}

fn content_hash(c: &ContentSide) -> Option<Hash> {
    match c {
        ContentSide::Missing => None,
        ContentSide::Record(b) => Some(leaf_hash(b)),
        ContentSide::Swept(h) | ContentSide::Withheld(h) => Some(*h),
    }
}

/// Counters gathered during a successful replay.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub first_seq: u64,
    pub end_seq: u64,
    pub records: u64,
    pub swept: u64,
    pub withheld: u64,
    pub checkpoints_verified: usize,
    pub last_checkpoint: Option<(u64, String)>,
    pub chain_head: Hash,
    pub root: Option<Hash>,
}

/// Replays items from `first_seq` (whose previous chain hash is `anchor`) against
/// checkpoints (already signature-checked, sorted by size). `file` names the file used in
/// errors. `require_covered_end`: the last item must end exactly at a checkpoint.
pub(crate) fn replay(
    items: &mut dyn Iterator<Item = Result<Item, VerifyError>>,
    first_seq: u64,
    anchor: Hash,
    checkpoints: &[Checkpoint],
    file: &'static str,
    require_covered_end: bool,
) -> Result<Tally, VerifyError> {
    let mut frontier = (first_seq == 0).then(Frontier::new);
    let mut expected = first_seq;
    let mut prev = anchor;
    let mut cps = checkpoints.iter().peekable();
    let mut tally = Tally {
        first_seq,
        ..Tally::default()
    };
    let check_cp = |cp: &Checkpoint,
                    prev: &Hash,
                    frontier: &Option<Frontier>,
                    line: Option<usize>|
     -> Result<(), VerifyError> {
        let seq = cp.tree_size.checked_sub(1);
        if cp.chain_head != *prev {
            return Err(VerifyError::new(
                TamperKind::BadCheckpoint,
                seq,
                file,
                line,
                format!(
                    "chain head after {} entries differs from the signed checkpoint",
                    cp.tree_size
                ),
            ));
        }
        if let Some(f) = frontier {
            if f.root() != cp.root {
                return Err(VerifyError::new(
                    TamperKind::BadCheckpoint,
                    seq,
                    file,
                    line,
                    format!(
                        "Merkle root after {} entries differs from the signed checkpoint",
                        cp.tree_size
                    ),
                ));
            }
        }
        Ok(())
    };
    // Checkpoints at or before the first seq.
    while let Some(cp) = cps.peek() {
        if cp.tree_size > first_seq {
            break;
        }
        if cp.tree_size < first_seq {
            return Err(VerifyError::new(
                TamperKind::BadCheckpoint,
                None,
                "checkpoints.jsonl",
                None,
                format!(
                    "checkpoint of size {} lies before the first entry {first_seq}",
                    cp.tree_size
                ),
            ));
        }
        check_cp(cp, &prev, &frontier, None)?;
        tally.checkpoints_verified += 1;
        tally.last_checkpoint = Some((cp.tree_size, cp.created_at.clone()));
        cps.next();
    }
    while let Some(item) = items.next() {
        let item = item?;
        if let Err(()) = step(&item, expected, &prev) {
            let mut window = vec![item.light()];
            for more in items.take(DEFAULT_ANALYSIS_WINDOW) {
                match more {
                    Ok(m) => window.push(m.light()),
                    Err(_) => break,
                }
            }
            let (kind, seq, detail) = classify(expected, &prev, &window);
            return Err(VerifyError::new(
                kind,
                Some(seq),
                file,
                Some(item.line),
                detail,
            ));
        }
        let EntrySide::Ok { leaf, chain, .. } = item.entry else {
            return Err(VerifyError::malformed(
                file,
                Some(item.line),
                "entry vanished",
            ));
        };
        match &item.content {
            ContentSide::Record(_) => tally.records += 1,
            ContentSide::Swept(_) => tally.swept += 1,
            ContentSide::Withheld(_) => tally.withheld += 1,
            ContentSide::Missing => {}
        }
        prev = chain;
        if let Some(f) = frontier.as_mut() {
            f.push(leaf);
        }
        expected += 1;
        while let Some(cp) = cps.peek() {
            if cp.tree_size != expected {
                break;
            }
            if let Err(bad) = check_cp(cp, &prev, &frontier, Some(item.line)) {
                // An entry spliced in just before a checkpoint with a well-forged chain hash
                // shows as a repeated seq right after it: name that rather than the checkpoint.
                if let Some(Ok(Item {
                    entry: EntrySide::Ok { seq, .. },
                    line,
                    ..
                })) = items.next()
                {
                    if seq < expected {
                        return Err(VerifyError::new(
                            TamperKind::Inserted,
                            Some(seq),
                            file,
                            Some(line),
                            format!("seq {seq} appears twice: an entry was spliced in before it"),
                        ));
                    }
                }
                return Err(bad);
            }
            tally.checkpoints_verified += 1;
            tally.last_checkpoint = Some((cp.tree_size, cp.created_at.clone()));
            cps.next();
        }
    }
    if let Some(cp) = cps.next() {
        return Err(VerifyError::new(
            TamperKind::Removed,
            Some(expected),
            file,
            None,
            format!(
                "a checkpoint covers {} entries but the log ends at {expected}",
                cp.tree_size
            ),
        ));
    }
    if require_covered_end {
        match &tally.last_checkpoint {
            None => {
                return Err(VerifyError::new(
                    TamperKind::BadCheckpoint,
                    None,
                    "checkpoints.jsonl",
                    None,
                    "no checkpoint covers the bundle",
                ))
            }
            Some((size, _)) if *size < expected => {
                return Err(VerifyError::new(
                    TamperKind::Inserted,
                    Some(*size),
                    file,
                    None,
                    format!("entries from seq {size} on are not covered by any signed checkpoint"),
                ))
            }
            Some(_) => {}
        }
    }
    tally.end_seq = expected;
    tally.chain_head = prev;
    tally.root = frontier.map(|f| f.root());
    Ok(tally)
}

/// Checks one item: right seq, content hashes to the leaf, chain links, content is a
/// canonical record.
fn step(item: &Item, expected: u64, prev: &Hash) -> Result<(), ()> {
    let EntrySide::Ok { seq, leaf, chain } = item.entry else {
        return Err(());
    };
    if seq != expected
        || content_hash(&item.content) != Some(leaf)
        || chain_hash(prev, &leaf) != chain
    {
        return Err(());
    }
    if let ContentSide::Record(bytes) = &item.content {
        Record::from_canonical(bytes).map_err(|_| ())?;
    }
    Ok(())
}

/// Names the first inconsistency. `window[0]` is the failing item, the rest follow it.
fn classify(e: u64, prev: &Hash, window: &[Light]) -> (TamperKind, u64, String) {
    let it = window[0];
    let next = window.get(1);
    match it.entry {
        EntrySide::Missing => (
            TamperKind::Inserted,
            e,
            "a record line has no entry: a record was added".into(),
        ),
        EntrySide::Unreadable => (
            TamperKind::Altered,
            e,
            "the entry line cannot be read".into(),
        ),
        EntrySide::Ok { seq, leaf, chain } => {
            if seq > e {
                if window[1..]
                    .iter()
                    .any(|w| matches!(w.entry, EntrySide::Ok { seq: s, .. } if s == e))
                {
                    return (
                        TamperKind::Reordered,
                        e,
                        format!("seq {seq} appears before seq {e}"),
                    );
                }
                return (
                    TamperKind::Removed,
                    e,
                    format!("seq {e} is missing (next present is {seq})"),
                );
            }
            if seq < e {
                return (
                    TamperKind::Inserted,
                    seq,
                    format!("seq {seq} appears again after seq {}", e.saturating_sub(1)),
                );
            }
            let Some(h0) = it.content_hash else {
                return (
                    TamperKind::Removed,
                    e,
                    "the record for this entry is missing".into(),
                );
            };
            if h0 != leaf {
                let found = window[1..]
                    .iter()
                    .position(|w| matches!(w.entry, EntrySide::Ok { leaf: l, .. } if l == h0));
                if let Some(k) = found {
                    if window[k + 1].content_hash == Some(leaf) {
                        return (
                            TamperKind::Reordered,
                            e,
                            "this record belongs further on and another took its place".into(),
                        );
                    }
                    return (
                        TamperKind::Removed,
                        e,
                        "this line holds a later record: records before it were removed".into(),
                    );
                }
                if next.and_then(|n| n.content_hash) == Some(leaf) {
                    return (
                        TamperKind::Inserted,
                        e,
                        "a record that was never appended stands here".into(),
                    );
                }
                return (
                    TamperKind::Altered,
                    e,
                    "the record does not hash to its leaf hash".into(),
                );
            }
            if chain_hash(prev, &leaf) != chain {
                if let Some(Light {
                    entry:
                        EntrySide::Ok {
                            leaf: l1,
                            chain: c1,
                            ..
                        },
                    ..
                }) = next
                {
                    if chain_hash(prev, l1) == *c1 {
                        return (
                            TamperKind::Inserted,
                            e,
                            "an entry was spliced into the chain here".into(),
                        );
                    }
                }
                return (
                    TamperKind::Altered,
                    e,
                    "the chain hash does not follow from the previous entry".into(),
                );
            }
            (
                TamperKind::Altered,
                e,
                "the content is not a canonical record".into(),
            )
        }
    }
}
