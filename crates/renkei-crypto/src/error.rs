//! The crate's one error type, with a stable machine code per failure.

use std::path::PathBuf;

/// Every failure of a renkei-crypto operation.
///
/// Messages never carry key material or plaintext; they name the operation,
/// the key purpose/version or the file that failed. `code()` is stable and
/// meant for logs, metrics and HTTP problem documents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// Key bytes (or a PEM/SEC1 encoding) were not a valid key of the expected kind.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A signature did not verify under the given key.
    #[error("signature verification failed")]
    BadSignature,
    /// Authenticated decryption failed: wrong key, wrong AAD/info, or tampered data.
    #[error("decryption failed (wrong key, wrong associated data or tampered ciphertext)")]
    Decrypt,
    /// Encryption failed (only for inputs larger than the AEAD allows).
    #[error("encryption failed")]
    Encrypt,
    /// The input is shorter than its fixed framing requires.
    #[error("input truncated: {what} needs at least {min} bytes, got {got}")]
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// The minimum length.
        min: usize,
        /// The length received.
        got: usize,
    },
    /// The input does not follow the documented format (docs/envelope.md).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Why it was refused (never contains secret data).
        reason: String,
    },
    /// No usable (non-retired) key of this purpose has this version.
    #[error("no usable {purpose} key with version {version}")]
    UnknownKeyVersion {
        /// The key purpose, e.g. "at-rest".
        purpose: &'static str,
        /// The version asked for.
        version: u32,
    },
    /// The keyring has no key of this purpose at all (a keyring saved before the purpose
    /// existed; `Keyring::ensure_purpose` adds it).
    #[error("the keyring has no {purpose} key; generate it with ensure_purpose and save")]
    MissingPurpose {
        /// The key purpose, e.g. "checkpoint".
        purpose: &'static str,
    },
    /// The operation would remove the active key of a purpose.
    #[error("version {version} is the active {purpose} key; rotate first")]
    ActiveKey {
        /// The key purpose.
        purpose: &'static str,
        /// The active version.
        version: u32,
    },
    /// The operation is deliberately not supported.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A secret file is readable or writable by group or others.
    #[error("{path} has mode {mode:o}; secret files must not be accessible by group or others (chmod 600)")]
    InsecurePermissions {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing a key file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The keyring on disk is inconsistent (missing file, fingerprint mismatch, …).
    #[error("keyring: {0}")]
    Keyring(String),
    /// Key derivation from a passphrase failed (bad parameters or salt).
    #[error("key derivation failed: {0}")]
    Kdf(&'static str),
}

impl CryptoError {
    /// A stable, machine-readable code for this error (`crypto.*`).
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::Rng => "crypto.rng",
            CryptoError::InvalidKey(_) => "crypto.invalid_key",
            CryptoError::BadSignature => "crypto.bad_signature",
            CryptoError::Decrypt => "crypto.decrypt_failed",
            CryptoError::Encrypt => "crypto.encrypt_failed",
            CryptoError::Truncated { .. } => "crypto.truncated",
            CryptoError::Malformed { .. } => "crypto.malformed",
            CryptoError::UnknownKeyVersion { .. } => "crypto.unknown_key_version",
            CryptoError::MissingPurpose { .. } => "crypto.missing_purpose",
            CryptoError::ActiveKey { .. } => "crypto.active_key",
            CryptoError::Unsupported(_) => "crypto.unsupported",
            CryptoError::InsecurePermissions { .. } => "crypto.insecure_permissions",
            CryptoError::Io { .. } => "crypto.io",
            CryptoError::Keyring(_) => "crypto.keyring",
            CryptoError::Kdf(_) => "crypto.kdf",
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        CryptoError::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CryptoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
