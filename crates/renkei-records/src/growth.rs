//! "The log only grew": checking a consistency proof between an old signed checkpoint and a
//! new one, and, when history was rewritten, locating the first rewritten record from the
//! evidence at hand.
//!
//! # What can be located, and from what
//! A consistency proof only says yes or no. To say WHERE the current log departs from what
//! was signed, the current leaf hashes are replayed and compared with signed roots:
//! * with ONE old checkpoint (size m) the answer is only "somewhere in seq 0..m": a Merkle
//!   root commits to all m leaves at once and cannot be opened further;
//! * with SEVERAL old checkpoints (the old bundle's `checkpoints.jsonl`, or the auditor's
//!   collected notes), the first rewritten record lies between the last checkpoint whose
//!   root the current log still reproduces and the first one it does not
//!   ([`locate_rewrite`], one pass over the current leaves);
//! * with the OLD LEAF HASHES (an old bundle from seq 0 keeps them in `entries.jsonl`),
//!   authenticated against the old signed root, the first differing leaf IS the first
//!   rewritten record ([`locate_rewrite_with_old_leaves`]).

use std::ops::Range;

use crate::checkpoint::Checkpoint;
use crate::keyset::KeySet;
use crate::merkle::{root_of, verify_consistency, ConsistencyError, Frontier, Hash};
use crate::RecordsError;

/// Which part of a growth check failed.
#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    /// The old checkpoint cannot be read or does not verify under the keys.
    #[error("old checkpoint: {0}")]
    OldCheckpoint(RecordsError),
    /// The new checkpoint does not verify under the keys.
    #[error("new checkpoint: {0}")]
    NewCheckpoint(RecordsError),
    /// The two checkpoints name different logs.
    #[error("the checkpoints are of different logs ({old} and {new})")]
    DifferentLogs {
        /// The old checkpoint's origin.
        old: String,
        /// The new checkpoint's origin.
        new: String,
    },
    /// Both verify, but the proof does not show the new tree extends the old one.
    #[error("consistency proof: {0}")]
    Inconsistent(ConsistencyError),
}

impl GrowthError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            GrowthError::OldCheckpoint(_) => "growth_old_checkpoint",
            GrowthError::NewCheckpoint(_) => "growth_new_checkpoint",
            GrowthError::DifferentLogs { .. } => "growth_different_logs",
            GrowthError::Inconsistent(_) => "growth_inconsistent",
        }
    }
}

/// What a successful growth check established: the log of `old_size` entries signed then is
/// a prefix of the log of `new_size` entries signed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// Size of the old checkpoint.
    pub old_size: u64,
    /// Size of the new checkpoint.
    pub new_size: u64,
}

/// Checks that the log only grew from the old signed checkpoint `old_note` (C2SP signed
/// note text, as an auditor keeps it) to `new`: both signatures verify under `keys`, they
/// name the same log, and `proof` is an RFC 9162 consistency proof between their roots
/// (the gateway makes it with [`crate::consistency_proof`]). The error says which failed.
pub fn verify_growth(
    old_note: &str,
    new: &Checkpoint,
    keys: &KeySet,
    proof: &[Hash],
) -> Result<Growth, GrowthError> {
    let old = Checkpoint::from_signed_note(old_note, keys).map_err(GrowthError::OldCheckpoint)?;
    verify_checkpoint_growth(&old, new, keys, proof)
}

/// [`verify_growth`] for an old checkpoint already parsed (any form, legacy included).
pub fn verify_checkpoint_growth(
    old: &Checkpoint,
    new: &Checkpoint,
    keys: &KeySet,
    proof: &[Hash],
) -> Result<Growth, GrowthError> {
    old.verify_with(keys).map_err(GrowthError::OldCheckpoint)?;
    new.verify_with(keys).map_err(GrowthError::NewCheckpoint)?;
    // A legacy checkpoint has no origin: it is the same log before the C2SP form.
    if let (Some(a), Some(b)) = (&old.origin, &new.origin) {
        if a != b {
            return Err(GrowthError::DifferentLogs {
                old: a.clone(),
                new: b.clone(),
            });
        }
    }
    verify_consistency(old.tree_size, &old.root, new.tree_size, &new.root, proof)
        .map_err(GrowthError::Inconsistent)?;
    Ok(Growth {
        old_size: old.tree_size,
        new_size: new.tree_size,
    })
}

/// Why a rewrite could not be located.
#[derive(Debug, thiserror::Error)]
pub enum LocateError<E> {
    /// An old checkpoint does not verify: it is no evidence.
    #[error("old checkpoint of size {tree_size}: {error}")]
    Checkpoint {
        /// Its size.
        tree_size: u64,
        /// Why it does not verify.
        error: RecordsError,
    },
    /// The old leaf hashes given are not the ones the old checkpoint signed.
    #[error("the old leaf hashes do not rebuild the old checkpoint's root")]
    OldLeavesDoNotMatch,
    /// The current log's leaf source failed.
    #[error("leaf {index} could not be read: {error}")]
    Leaf {
        /// The seq being read.
        index: u64,
        /// The source's error.
        error: E,
    },
}

/// Where the current log departs from what was signed, as far as the evidence tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteLocation {
    /// Entries below this seq are exactly as signed.
    pub intact_below: u64,
    /// The smallest prefix size known to differ from what was signed (`None`: none does,
    /// the log only grew as far as this evidence reaches).
    pub first_mismatch: Option<u64>,
    /// The current log's size.
    pub current_size: u64,
    /// The current log is shorter than a signed checkpoint: entries were removed.
    pub shrunk: bool,
}

impl RewriteLocation {
    /// The seqs among which the first rewritten record lies (`intact_below..first_mismatch`).
    pub fn suspects(&self) -> Option<Range<u64>> {
        self.first_mismatch.map(|m| self.intact_below..m)
    }

    /// The seq of the first rewritten record, when the evidence pins it down to one.
    pub fn first_rewritten(&self) -> Option<u64> {
        self.suspects()
            .filter(|r| r.end == r.start + 1)
            .map(|r| r.start)
    }
}

/// Locates the first rewritten record with several old signed checkpoints: one pass over
/// the current leaf hashes (`get_leaf(seq)`, `current_size` of them), comparing the root of
/// each checkpointed prefix. Each checkpoint's signature is verified under `keys` first.
/// Reads at most the largest checkpoint's size in leaves, each once, in order.
pub fn locate_rewrite<E>(
    old_checkpoints: &[Checkpoint],
    keys: &KeySet,
    current_size: u64,
    get_leaf: impl Fn(u64) -> Result<Hash, E>,
) -> Result<RewriteLocation, LocateError<E>> {
    let mut cps = old_checkpoints.to_vec();
    cps.sort_by_key(|c| c.tree_size);
    for cp in &cps {
        cp.verify_with(keys)
            .map_err(|error| LocateError::Checkpoint {
                tree_size: cp.tree_size,
                error,
            })?;
    }
    let mut found = RewriteLocation {
        intact_below: 0,
        first_mismatch: None,
        current_size,
        shrunk: false,
    };
    let mut frontier = Frontier::new();
    for cp in &cps {
        if cp.tree_size > current_size {
            found.first_mismatch = Some(cp.tree_size);
            found.shrunk = true;
            return Ok(found);
        }
        while frontier.size() < cp.tree_size {
            let i = frontier.size();
            frontier.push(get_leaf(i).map_err(|error| LocateError::Leaf { index: i, error })?);
        }
        if frontier.root() != cp.root {
            found.first_mismatch = Some(cp.tree_size);
            return Ok(found);
        }
        found.intact_below = cp.tree_size;
    }
    Ok(found)
}

/// Locates the first rewritten record exactly, given the leaf hashes as they were when `old`
/// was signed (e.g. the `leaf` column of an old bundle from seq 0): they are first checked
/// to rebuild `old`'s signed root (so they are evidence, not hearsay), then compared with
/// the current leaves one by one. `first_rewritten()` of the answer names the seq.
pub fn locate_rewrite_with_old_leaves<E>(
    old: &Checkpoint,
    keys: &KeySet,
    old_leaves: &[Hash],
    current_size: u64,
    get_leaf: impl Fn(u64) -> Result<Hash, E>,
) -> Result<RewriteLocation, LocateError<E>> {
    old.verify_with(keys)
        .map_err(|error| LocateError::Checkpoint {
            tree_size: old.tree_size,
            error,
        })?;
    if old_leaves.len() as u64 != old.tree_size || root_of(old_leaves) != old.root {
        return Err(LocateError::OldLeavesDoNotMatch);
    }
    let mut found = RewriteLocation {
        intact_below: 0,
        first_mismatch: None,
        current_size,
        shrunk: false,
    };
    for (i, want) in (0u64..).zip(old_leaves) {
        if i == current_size {
            found.first_mismatch = Some(i + 1);
            found.shrunk = true;
            return Ok(found);
        }
        let got = get_leaf(i).map_err(|error| LocateError::Leaf { index: i, error })?;
        if got != *want {
            found.first_mismatch = Some(i + 1);
            return Ok(found);
        }
        found.intact_below = i + 1;
    }
    Ok(found)
}
