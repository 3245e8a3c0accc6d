//! Error types: `RecordsError` for building, storing, signing and exporting; `VerifyError`
//! for a verification that found the log or a bundle not to be what was signed.

use std::fmt;

/// A failure while building, decoding, signing or exporting records. `code()` is stable.
///
/// Messages never carry record contents (which name persons), only positions and shapes.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A value did not have the expected shape (the message says what was expected).
    #[error("{what}: {detail}")]
    Format {
        /// What was being read (`record`, `stored_entry`, `chain_state`, `public_key`, ...).
        what: &'static str,
        /// What was wrong, without the value itself.
        detail: String,
    },
    /// A record carries text that looks like a 12-digit individual number.
    #[error("record field {field} contains what looks like an individual number")]
    IndividualNumberInText {
        /// The field that was refused.
        field: &'static str,
    },
    /// The public key could not be read as a P-256 key.
    #[error("public key: {0}")]
    BadKey(String),
    /// A checkpoint signature did not verify under the given key.
    #[error("checkpoint signature does not verify")]
    BadSignature,
    /// A checkpoint is signed with a key version the auditor's key set does not hold.
    #[error("no public key for signing key version {version}")]
    UnknownKeyVersion {
        /// The checkpoint's `key_version`.
        version: u32,
    },
    /// A signed note carries no signature line of this key (name and key ID).
    #[error("the note carries no signature by key {key_name} (key ID {key_id})")]
    NoteNotSigned {
        /// The key name looked for (the log's origin).
        key_name: String,
        /// The key ID looked for, hex.
        key_id: String,
    },
    /// The signer refused or failed.
    #[error("checkpoint signer failed: {0}")]
    Signer(String),
    /// The entries handed to an export do not fit together or with the checkpoints.
    #[error("export: {0}")]
    Export(String),
    /// Reading or writing a bundle file failed.
    #[error("i/o on {path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl RecordsError {
    /// A stable machine code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            RecordsError::Format { .. } => "records_format",
            RecordsError::IndividualNumberInText { .. } => "records_individual_number_in_text",
            RecordsError::BadKey(_) => "records_bad_key",
            RecordsError::BadSignature => "records_bad_signature",
            RecordsError::UnknownKeyVersion { .. } => "records_unknown_key_version",
            RecordsError::NoteNotSigned { .. } => "records_note_not_signed",
            RecordsError::Signer(_) => "records_signer_failed",
            RecordsError::Export(_) => "records_export",
            RecordsError::Io { .. } => "records_io",
        }
    }

    pub(crate) fn format(what: &'static str, detail: impl Into<String>) -> Self {
        RecordsError::Format {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordsError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What kind of damage a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// A record's bytes (or a stored hash) differ from what was appended.
    Altered,
    /// A record that was appended is missing.
    Removed,
    /// A record that was never appended (or a duplicate) is present.
    Inserted,
    /// Records are present but not in the order they were appended.
    Reordered,
    /// A checkpoint's signature does not verify under the auditor's key.
    BadSignature,
    /// A validly signed checkpoint does not match the records (root, chain head or size),
    /// or the bundle is not covered by a checkpoint.
    BadCheckpoint,
    /// The bundle cannot be read at all (missing file, unreadable line, unknown format).
    Malformed,
}

impl TamperKind {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            TamperKind::Altered => "altered",
            TamperKind::Removed => "removed",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
            TamperKind::BadSignature => "bad_signature",
            TamperKind::BadCheckpoint => "bad_checkpoint",
            TamperKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The FIRST problem a verification found: its kind and where it is.
///
/// `seq` is the log sequence number of the first bad record (for a removed record, the
/// number that is missing); `line` is the 1-based line of the file named by `file`, when the
/// problem sits in a bundle file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at seq {seq:?} ({file}:{line:?}): {detail}")]
pub struct VerifyError {
    /// What was found.
    pub kind: TamperKind,
    /// The sequence number of the first bad record, when one can be named.
    pub seq: Option<u64>,
    /// The bundle file involved (`records.jsonl`, `checkpoints.jsonl`, ...), or `store`.
    pub file: &'static str,
    /// The 1-based line in `file`, when known.
    pub line: Option<usize>,
    /// A human explanation (never record contents).
    pub detail: String,
}

impl VerifyError {
    /// A stable machine code (the kind's).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    pub(crate) fn new(
        kind: TamperKind,
        seq: Option<u64>,
        file: &'static str,
        line: Option<usize>,
        detail: impl Into<String>,
    ) -> Self {
        VerifyError {
            kind,
            seq,
            file,
            line,
            detail: detail.into(),
        }
    }

    pub(crate) fn malformed(
        file: &'static str,
        line: Option<usize>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(TamperKind::Malformed, None, file, line, detail)
    }
}
