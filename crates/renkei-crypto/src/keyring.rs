//! Versioned keyring: all versions of each key purpose, rotation, retirement, sealed storage.
//!
//! On disk (see `keys/README.md` and `docs/envelope.md` §4) a keyring directory holds
//! `keyring.json` (public metadata only) and one `<purpose>-v<version>.key` file per
//! non-retired version, each sealed under the [`MasterKey`] with AES-256-GCM.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{BlindIndexKey, CryptoError, DataKey, OpeningKey, SigningKey, VerifyingKey};

/// Name of the metadata file in a keyring directory.
pub const METADATA_FILE: &str = "keyring.json";
/// Format tag written into `keyring.json`.
const METADATA_FORMAT: &str = "renkei-keyring/1";
/// Magic prefix of a sealed key file.
const KEY_FILE_MAGIC: &[u8; 4] = b"RKK1";
/// Prefix of the AAD binding a sealed key file to its purpose and version.
const KEY_FILE_AAD_PREFIX: &str = "renkei-keyring/v1";
/// Permission bits for every file the keyring writes: owner read/write only.
const SECRET_FILE_MODE: u32 = 0o600;

/// Argon2id memory cost in KiB: 64 MiB, RFC 9106 §4's second recommended option,
/// affordable once at start-up on the 2-core/24 GiB hosts renkei targets.
const DEFAULT_ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id passes: 3, as RFC 9106 §4 recommends with 64 MiB.
const DEFAULT_ARGON2_T: u32 = 3;
/// Argon2id lanes: 1, so deriving never takes more than one of the host's 2 cores.
const DEFAULT_ARGON2_P: u32 = 1;
/// Minimum salt length for passphrase derivation (RFC 9106 recommends 16 bytes).
const MIN_SALT_LEN: usize = 16;

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPurpose {
    /// ECDSA P-256 message signatures.
    Signing,
    /// HPKE recipient keys for sealed personal data.
    Sealing,
    /// AES-256-GCM data keys for storage.
    AtRest,
    /// HMAC-SHA256 blind-index keys.
    BlindIndex,
    /// ECDSA P-256 signatures over linkage-record checkpoints: a key of its own, never the
    /// message-signing key, so that it can move to an HSM on its own. Declared last so the
    /// order of the older purposes (and of [`Keyring::list`]) is unchanged.
    Checkpoint,
}

impl KeyPurpose {
    /// All purposes, in file/listing order.
    pub const ALL: [KeyPurpose; 5] = [
        KeyPurpose::Signing,
        KeyPurpose::Sealing,
        KeyPurpose::AtRest,
        KeyPurpose::BlindIndex,
        KeyPurpose::Checkpoint,
    ];

    /// The stable name: "signing", "sealing", "at-rest", "blind-index", "checkpoint".
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Signing => "signing",
            KeyPurpose::Sealing => "sealing",
            KeyPurpose::AtRest => "at-rest",
            KeyPurpose::BlindIndex => "blind-index",
            KeyPurpose::Checkpoint => "checkpoint",
        }
    }
}

impl std::fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyPurpose {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                CryptoError::malformed(
                    "key purpose",
                    "expected signing, sealing, at-rest, blind-index or checkpoint",
                )
            })
    }
}

/// Lifecycle state of one key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Used for new signatures / seals / encryptions.
    Active,
    /// An older version still used to verify, open or decrypt existing data.
    VerifyOnly,
    /// Material destroyed; only the metadata remains.
    Retired,
}

/// Public description of one key version (no secret material).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// What the key is for.
    pub purpose: KeyPurpose,
    /// Version number, from 1, increasing per purpose.
    pub version: u32,
    /// Lifecycle state.
    pub state: KeyState,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Public-key fingerprint for signing and sealing keys (16 hex chars); `None` for
    /// symmetric keys, whose hashes are not published.
    pub fingerprint: Option<String>,
    /// The public key (hex SEC1) of a signature key (`signing`, `checkpoint`), kept after
    /// the version is retired so that what it signed stays verifiable from the keyring
    /// alone. Absent for other purposes and in keyrings written before it existed (then
    /// derived from the private key on load, and written at the next save).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// The keyring master key: 32 bytes that seal every private key on disk. Zeroized; no `Debug`.
pub struct MasterKey {
    key: DataKey,
}

impl MasterKey {
    /// Wraps 32 raw bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        Ok(MasterKey {
            key: DataKey::from_bytes(b)?,
        })
    }

    /// Generates a fresh master key and writes it as 64 lower-case hex characters and a
    /// newline to `path`, created with mode 0600. Refuses to overwrite an existing file.
    pub fn generate_file(path: &Path) -> Result<Self, CryptoError> {
        let key = DataKey::generate()?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(key.to_bytes().as_slice())));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_FILE_MODE)
            .open(path)
            .map_err(|e| CryptoError::io(path, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| CryptoError::io(path, e))?;
        f.sync_all().map_err(|e| CryptoError::io(path, e))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(MasterKey { key })
    }

    /// Reads a master key file (64 hex characters, optional trailing newline).
    /// Refuses a file whose mode grants any access to group or others.
    pub fn from_file(path: &Path) -> Result<Self, CryptoError> {
        check_private_mode(path)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| CryptoError::io(path, e))?);
        let bytes = Zeroizing::new(hex::decode(text.trim_end_matches(['\n', '\r'])).map_err(
            |_| CryptoError::malformed("master key file", "expected 64 hex characters"),
        )?);
        if bytes.len() != 32 {
            return Err(CryptoError::malformed(
                "master key file",
                "expected 64 hex characters",
            ));
        }
        Self::from_bytes(&bytes)
    }

    /// Derives the master key from a passphrase with Argon2id (m = 64 MiB, t = 3, p = 1,
    /// 32-byte output). `salt` must be at least 16 bytes and is stored beside the keyring
    /// by the caller (it is not secret).
    pub fn from_passphrase(pass: &str, salt: &[u8]) -> Result<Self, CryptoError> {
        if salt.len() < MIN_SALT_LEN {
            return Err(CryptoError::Kdf("salt must be at least 16 bytes"));
        }
        if pass.is_empty() {
            return Err(CryptoError::Kdf("empty passphrase"));
        }
        let params = argon2::Params::new(
            DEFAULT_ARGON2_M_KIB,
            DEFAULT_ARGON2_T,
            DEFAULT_ARGON2_P,
            Some(32),
        )
        .map_err(|_| CryptoError::Kdf("invalid Argon2 parameters"))?;
        let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        a2.hash_password_into(pass.as_bytes(), salt, out.as_mut())
            .map_err(|_| CryptoError::Kdf("Argon2id failed"))?;
        Self::from_bytes(out.as_ref())
    }

    fn seal_key(
        &self,
        purpose: KeyPurpose,
        version: u32,
        secret: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ct = self
            .key
            .encrypt(key_file_aad(purpose, version).as_bytes(), secret)?;
        let mut out = Vec::with_capacity(4 + ct.len());
        out.extend_from_slice(KEY_FILE_MAGIC);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_key(
        &self,
        purpose: KeyPurpose,
        version: u32,
        file: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let body = file
            .strip_prefix(&KEY_FILE_MAGIC[..])
            .ok_or_else(|| CryptoError::malformed("key file", "missing RKK1 magic"))?;
        self.key
            .decrypt(key_file_aad(purpose, version).as_bytes(), body)
    }
}

/// The AAD of a sealed key file: `renkei-keyring/v1:<purpose>:<version in decimal>`.
fn key_file_aad(purpose: KeyPurpose, version: u32) -> String {
    format!("{KEY_FILE_AAD_PREFIX}:{}:{version}", purpose.as_str())
}

/// File name of a sealed key: `<purpose>-v<version>.key`.
pub fn key_file_name(purpose: KeyPurpose, version: u32) -> String {
    format!("{}-v{version}.key", purpose.as_str())
}

/// Whether `name` has the form `<purpose>-v<digits>.key` (only such files are ever
/// deleted by [`Keyring::save`]; a master key kept in the same folder is left alone).
fn is_key_file_name(name: &str) -> bool {
    KeyPurpose::ALL.iter().any(|p| {
        name.strip_prefix(p.as_str())
            .and_then(|r| r.strip_prefix("-v"))
            .and_then(|r| r.strip_suffix(".key"))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Key material of one kind, as the keyring stores it (one type may serve several
/// purposes: [`SigningKey`] is both `signing` and `checkpoint`).
trait Material: Sized {
    fn generate() -> Result<Self, CryptoError>;
    fn secret(&self) -> Zeroizing<Vec<u8>>;
    fn from_secret(b: &[u8]) -> Result<Self, CryptoError>;
    fn fingerprint(&self) -> Option<String>;
    /// The public key kept after retirement (hex SEC1), for signature keys only.
    fn kept_public(&self) -> Option<String> {
        None
    }
}

impl Material for SigningKey {
    fn generate() -> Result<Self, CryptoError> {
        SigningKey::generate()
    }
    fn secret(&self) -> Zeroizing<Vec<u8>> {
        self.to_pkcs8_der()
    }
    fn from_secret(b: &[u8]) -> Result<Self, CryptoError> {
        SigningKey::from_pkcs8_der(b)
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.verifying_key().fingerprint())
    }
    fn kept_public(&self) -> Option<String> {
        Some(hex::encode(self.verifying_key().to_sec1()))
    }
}

impl Material for OpeningKey {
    fn generate() -> Result<Self, CryptoError> {
        OpeningKey::generate()
    }
    fn secret(&self) -> Zeroizing<Vec<u8>> {
        self.to_bytes()
    }
    fn from_secret(b: &[u8]) -> Result<Self, CryptoError> {
        OpeningKey::from_bytes(b)
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.public_key().fingerprint())
    }
}

impl Material for DataKey {
    fn generate() -> Result<Self, CryptoError> {
        DataKey::generate()
    }
    fn secret(&self) -> Zeroizing<Vec<u8>> {
        self.to_bytes()
    }
    fn from_secret(b: &[u8]) -> Result<Self, CryptoError> {
        DataKey::from_bytes(b)
    }
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

impl Material for BlindIndexKey {
    fn generate() -> Result<Self, CryptoError> {
        BlindIndexKey::generate()
    }
    fn secret(&self) -> Zeroizing<Vec<u8>> {
        self.to_bytes()
    }
    fn from_secret(b: &[u8]) -> Result<Self, CryptoError> {
        BlindIndexKey::from_bytes(b)
    }
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

/// An older (non-active) version.
struct OldVersion<K> {
    state: KeyState,
    created_at: u64,
    fingerprint: Option<String>,
    /// Hex SEC1 public key of a signature key, kept after retirement.
    public_key: Option<String>,
    /// `None` once retired.
    key: Option<K>,
}

/// All versions of one purpose. The active key is held directly, so accessors
/// need no fallible lookup.
struct Versions<K> {
    purpose: KeyPurpose,
    active_version: u32,
    active_created_at: u64,
    active: K,
    older: BTreeMap<u32, OldVersion<K>>,
}

impl<K: Material> Versions<K> {
    fn fresh(purpose: KeyPurpose, now: u64) -> Result<Self, CryptoError> {
        Ok(Versions {
            purpose,
            active_version: 1,
            active_created_at: now,
            active: K::generate()?,
            older: BTreeMap::new(),
        })
    }

    fn get(&self, version: u32) -> Option<&K> {
        if version == self.active_version {
            return Some(&self.active);
        }
        self.older.get(&version).and_then(|o| o.key.as_ref())
    }

    fn rotate(&mut self, now: u64) -> Result<u32, CryptoError> {
        let next = self
            .older
            .keys()
            .copied()
            .chain(std::iter::once(self.active_version))
            .max()
            .unwrap_or(self.active_version)
            .checked_add(1)
            .ok_or(CryptoError::Keyring("key version overflow".into()))?;
        let new_key = K::generate()?;
        let old = std::mem::replace(&mut self.active, new_key);
        let fingerprint = old.fingerprint();
        let public_key = old.kept_public();
        self.older.insert(
            self.active_version,
            OldVersion {
                state: KeyState::VerifyOnly,
                created_at: self.active_created_at,
                fingerprint,
                public_key,
                key: Some(old),
            },
        );
        self.active_version = next;
        self.active_created_at = now;
        Ok(next)
    }

    fn retire(&mut self, version: u32) -> Result<(), CryptoError> {
        if version == self.active_version {
            return Err(CryptoError::ActiveKey {
                purpose: self.purpose.as_str(),
                version,
            });
        }
        let old = self
            .older
            .get_mut(&version)
            .ok_or(CryptoError::UnknownKeyVersion {
                purpose: self.purpose.as_str(),
                version,
            })?;
        old.state = KeyState::Retired;
        // Dropping the key zeroizes its material.
        old.key = None;
        Ok(())
    }

    fn infos(&self, out: &mut Vec<KeyInfo>) {
        for (v, o) in &self.older {
            out.push(KeyInfo {
                purpose: self.purpose,
                version: *v,
                state: o.state,
                created_at: o.created_at,
                fingerprint: o.fingerprint.clone(),
                public_key: o.public_key.clone(),
            });
        }
        out.push(KeyInfo {
            purpose: self.purpose,
            version: self.active_version,
            state: KeyState::Active,
            created_at: self.active_created_at,
            fingerprint: self.active.fingerprint(),
            public_key: self.active.kept_public(),
        });
    }

    /// (version, secret) of every version whose material is held.
    fn secrets(&self) -> Vec<(u32, Zeroizing<Vec<u8>>)> {
        let mut out: Vec<_> = self
            .older
            .iter()
            .filter_map(|(v, o)| o.key.as_ref().map(|k| (*v, k.secret())))
            .collect();
        out.push((self.active_version, self.active.secret()));
        out
    }

    /// Rebuilds the versions of `purpose` from metadata and key files.
    fn load(
        purpose: KeyPurpose,
        infos: &[KeyInfo],
        dir: &Path,
        master: &MasterKey,
    ) -> Result<Self, CryptoError> {
        let mut active: Option<(u32, u64, K)> = None;
        let mut older = BTreeMap::new();
        for info in infos.iter().filter(|i| i.purpose == purpose) {
            let key = if info.state == KeyState::Retired {
                None
            } else {
                let path = dir.join(key_file_name(purpose, info.version));
                check_private_mode(&path)?;
                let file = fs::read(&path).map_err(|e| CryptoError::io(&path, e))?;
                let secret = master.open_key(purpose, info.version, &file).map_err(|e| match e {
                    CryptoError::Decrypt => CryptoError::Keyring(format!(
                        "{} does not open under this master key (wrong master key or tampered file)",
                        path.display()
                    )),
                    other => other,
                })?;
                let k = K::from_secret(&secret)?;
                if k.fingerprint() != info.fingerprint
                    || info
                        .public_key
                        .as_ref()
                        .is_some_and(|p| Some(p) != k.kept_public().as_ref())
                {
                    return Err(CryptoError::Keyring(format!(
                        "{} does not match the fingerprint or public key in {METADATA_FILE}",
                        path.display()
                    )));
                }
                Some(k)
            };
            // A retired version's kept public key must be the one its fingerprint names.
            if let (None, Some(public)) = (&key, &info.public_key) {
                let sec1 = hex::decode(public).map_err(|_| {
                    CryptoError::malformed(METADATA_FILE, "a public key is not hex")
                })?;
                if Some(crate::sign::fingerprint(&sec1)) != info.fingerprint {
                    return Err(CryptoError::Keyring(format!(
                        "{purpose} version {} has a public key that does not match its fingerprint",
                        info.version
                    )));
                }
            }
            let public_key = key
                .as_ref()
                .and_then(K::kept_public)
                .or_else(|| info.public_key.clone());
            match (info.state, key) {
                (KeyState::Active, Some(k)) => {
                    if active.is_some() {
                        return Err(CryptoError::Keyring(format!("two active {purpose} keys")));
                    }
                    active = Some((info.version, info.created_at, k));
                }
                (state, key) => {
                    let dup = older.insert(
                        info.version,
                        OldVersion {
                            state,
                            created_at: info.created_at,
                            fingerprint: info.fingerprint.clone(),
                            public_key,
                            key,
                        },
                    );
                    if dup.is_some() {
                        return Err(CryptoError::Keyring(format!(
                            "duplicate {purpose} version {}",
                            info.version
                        )));
                    }
                }
            }
        }
        let (active_version, active_created_at, active) =
            active.ok_or_else(|| CryptoError::Keyring(format!("no active {purpose} key")))?;
        if older.contains_key(&active_version) {
            return Err(CryptoError::Keyring(format!(
                "duplicate {purpose} version {active_version}"
            )));
        }
        Ok(Versions {
            purpose,
            active_version,
            active_created_at,
            active,
            older,
        })
    }
}

/// Contents of `keyring.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    format: String,
    keys: Vec<KeyInfo>,
}

/// All versions of all key purposes.
pub struct Keyring {
    signing: Versions<SigningKey>,
    sealing: Versions<OpeningKey>,
    at_rest: Versions<DataKey>,
    blind_index: Versions<BlindIndexKey>,
    /// `None` in a keyring written before the `checkpoint` purpose existed, until
    /// [`Keyring::ensure_purpose`] generates its version 1.
    checkpoint: Option<Versions<SigningKey>>,
}

impl Keyring {
    /// A new keyring with version 1 of each purpose, active.
    pub fn generate() -> Result<Self, CryptoError> {
        let now = unix_now();
        Ok(Keyring {
            signing: Versions::fresh(KeyPurpose::Signing, now)?,
            sealing: Versions::fresh(KeyPurpose::Sealing, now)?,
            at_rest: Versions::fresh(KeyPurpose::AtRest, now)?,
            blind_index: Versions::fresh(KeyPurpose::BlindIndex, now)?,
            checkpoint: Some(Versions::fresh(KeyPurpose::Checkpoint, now)?),
        })
    }

    /// Makes sure `purpose` has an active key: generates version 1 when the keyring has
    /// none (a keyring saved before that purpose existed) and returns `true`, so the
    /// caller knows to [`Keyring::save`]; returns `false` when the purpose is already
    /// present. Only `checkpoint` can be missing from a keyring that loaded; the four
    /// original purposes are always present.
    pub fn ensure_purpose(&mut self, purpose: KeyPurpose) -> Result<bool, CryptoError> {
        match purpose {
            KeyPurpose::Checkpoint if self.checkpoint.is_none() => {
                self.checkpoint = Some(Versions::fresh(purpose, unix_now())?);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the keyring holds an active key of `purpose` (always, except `checkpoint`
    /// in a keyring from before that purpose, until [`Keyring::ensure_purpose`]).
    pub fn has_purpose(&self, purpose: KeyPurpose) -> bool {
        purpose != KeyPurpose::Checkpoint || self.checkpoint.is_some()
    }

    fn checkpoint_versions(&self) -> Result<&Versions<SigningKey>, CryptoError> {
        self.checkpoint.as_ref().ok_or(CryptoError::MissingPurpose {
            purpose: KeyPurpose::Checkpoint.as_str(),
        })
    }

    fn checkpoint_versions_mut(&mut self) -> Result<&mut Versions<SigningKey>, CryptoError> {
        self.checkpoint.as_mut().ok_or(CryptoError::MissingPurpose {
            purpose: KeyPurpose::Checkpoint.as_str(),
        })
    }

    /// Loads a keyring saved by [`Keyring::save`], opening every key file with `master`.
    ///
    /// A keyring without any `checkpoint` entry (saved before that purpose existed) loads
    /// with no checkpoint key; call [`Keyring::ensure_purpose`] and save. Every other
    /// purpose must have exactly one active version.
    pub fn load(dir: &Path, master: &MasterKey) -> Result<Self, CryptoError> {
        let meta_path = dir.join(METADATA_FILE);
        check_private_mode(&meta_path)?;
        let text = fs::read_to_string(&meta_path).map_err(|e| CryptoError::io(&meta_path, e))?;
        let meta: Metadata = serde_json::from_str(&text)
            .map_err(|e| CryptoError::malformed("keyring.json", e.to_string()))?;
        if meta.format != METADATA_FORMAT {
            return Err(CryptoError::malformed(
                "keyring.json",
                format!("unknown format {:?}", meta.format),
            ));
        }
        let has = |p: KeyPurpose| meta.keys.iter().any(|k| k.purpose == p);
        let checkpoint = if has(KeyPurpose::Checkpoint) {
            Some(Versions::load(
                KeyPurpose::Checkpoint,
                &meta.keys,
                dir,
                master,
            )?)
        } else {
            // Written before the purpose existed: loads, and `ensure_purpose` adds v1.
            None
        };
        Ok(Keyring {
            signing: Versions::load(KeyPurpose::Signing, &meta.keys, dir, master)?,
            sealing: Versions::load(KeyPurpose::Sealing, &meta.keys, dir, master)?,
            at_rest: Versions::load(KeyPurpose::AtRest, &meta.keys, dir, master)?,
            blind_index: Versions::load(KeyPurpose::BlindIndex, &meta.keys, dir, master)?,
            checkpoint,
        })
    }

    /// Saves the keyring into `dir` (created 0700 if missing). Each private key goes to
    /// its own sealed file; each file is written to a temporary name, fsynced, renamed
    /// and the directory fsynced. `keyring.json` is written last, then key files of
    /// retired versions are deleted.
    pub fn save(&self, dir: &Path, master: &MasterKey) -> Result<(), CryptoError> {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CryptoError::io(dir, e))?;
        }
        let mut wanted = Vec::new();
        for (purpose, secrets) in [
            (KeyPurpose::Signing, self.signing.secrets()),
            (KeyPurpose::Sealing, self.sealing.secrets()),
            (KeyPurpose::AtRest, self.at_rest.secrets()),
            (KeyPurpose::BlindIndex, self.blind_index.secrets()),
            (
                KeyPurpose::Checkpoint,
                self.checkpoint
                    .as_ref()
                    .map(Versions::secrets)
                    .unwrap_or_default(),
            ),
        ] {
            for (version, secret) in secrets {
                let name = key_file_name(purpose, version);
                let sealed = master.seal_key(purpose, version, &secret)?;
                write_atomic(dir, &name, &sealed)?;
                wanted.push(name);
            }
        }
        let meta = Metadata {
            format: METADATA_FORMAT.to_string(),
            keys: self.list(),
        };
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| CryptoError::Keyring(e.to_string()))?;
        write_atomic(dir, METADATA_FILE, &json)?;
        // Destroy key files that no longer belong (retired versions).
        let entries = fs::read_dir(dir).map_err(|e| CryptoError::io(dir, e))?;
        let mut removed = false;
        for entry in entries {
            let entry = entry.map_err(|e| CryptoError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_key_file_name(&name) && !wanted.contains(&name) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| CryptoError::io(&path, e))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// The active signing key and its version.
    pub fn signing(&self) -> (u32, &SigningKey) {
        (self.signing.active_version, &self.signing.active)
    }

    /// The verifying key of any non-retired signing version.
    pub fn verifying_key(&self, version: u32) -> Option<VerifyingKey> {
        self.signing.get(version).map(SigningKey::verifying_key)
    }

    /// The active HPKE recipient key and its version.
    pub fn opening(&self) -> (u32, &OpeningKey) {
        (self.sealing.active_version, &self.sealing.active)
    }

    /// Any non-retired HPKE recipient key.
    pub fn opening_version(&self, version: u32) -> Option<&OpeningKey> {
        self.sealing.get(version)
    }

    /// The active at-rest data key and its version.
    pub fn data_key(&self) -> (u32, &DataKey) {
        (self.at_rest.active_version, &self.at_rest.active)
    }

    /// Any non-retired at-rest data key.
    pub fn data_key_version(&self, version: u32) -> Option<&DataKey> {
        self.at_rest.get(version)
    }

    /// The active checkpoint-signing key and its version; [`CryptoError::MissingPurpose`]
    /// in a keyring from before that purpose, until [`Keyring::ensure_purpose`].
    pub fn checkpoint_signing(&self) -> Result<(u32, &SigningKey), CryptoError> {
        let v = self.checkpoint_versions()?;
        Ok((v.active_version, &v.active))
    }

    /// The verifying key of any non-retired checkpoint-signing version (`None` also when
    /// the keyring has no checkpoint key at all).
    pub fn checkpoint_verifying_key(&self, version: u32) -> Option<VerifyingKey> {
        self.checkpoint
            .as_ref()
            .and_then(|v| v.get(version))
            .map(SigningKey::verifying_key)
    }

    /// The public key of every checkpoint-signing version the keyring knows, retired ones
    /// included (their public key is kept when the material is destroyed), so checkpoints
    /// signed by any of them verify from the sealed keyring alone, never from keys kept
    /// elsewhere. Empty in a keyring without the purpose.
    pub fn checkpoint_public_keys(&self) -> Result<BTreeMap<u32, VerifyingKey>, CryptoError> {
        self.list()
            .into_iter()
            .filter(|k| k.purpose == KeyPurpose::Checkpoint)
            .filter_map(|k| k.public_key.map(|p| (k.version, p)))
            .map(|(v, p)| {
                let sec1 = hex::decode(p).map_err(|_| {
                    CryptoError::malformed(METADATA_FILE, "a public key is not hex")
                })?;
                Ok((v, VerifyingKey::from_sec1(&sec1)?))
            })
            .collect()
    }

    /// The blind-index key (only one version is ever active; see [`Keyring::rotate`]).
    pub fn blind_index(&self) -> &BlindIndexKey {
        &self.blind_index.active
    }

    /// Makes a new version of `purpose` active; the previous active version becomes
    /// `VerifyOnly`. `checkpoint` rotates like `signing` ([`CryptoError::MissingPurpose`]
    /// before [`Keyring::ensure_purpose`]). Blind-index keys are refused: changing them needs every stored
    /// index recomputed (a re-index), which is not this crate's job.
    pub fn rotate(&mut self, purpose: KeyPurpose) -> Result<u32, CryptoError> {
        let now = unix_now();
        match purpose {
            KeyPurpose::Signing => self.signing.rotate(now),
            KeyPurpose::Sealing => self.sealing.rotate(now),
            KeyPurpose::AtRest => self.at_rest.rotate(now),
            KeyPurpose::Checkpoint => self.checkpoint_versions_mut()?.rotate(now),
            KeyPurpose::BlindIndex => Err(CryptoError::Unsupported(
                "rotating the blind-index key needs a re-index of all stored indexes",
            )),
        }
    }

    /// Retires a non-active version: its material is zeroized now and its key file
    /// removed at the next [`Keyring::save`]. Refuses the active version.
    pub fn retire(&mut self, purpose: KeyPurpose, version: u32) -> Result<(), CryptoError> {
        match purpose {
            KeyPurpose::Signing => self.signing.retire(version),
            KeyPurpose::Sealing => self.sealing.retire(version),
            KeyPurpose::AtRest => self.at_rest.retire(version),
            KeyPurpose::BlindIndex => self.blind_index.retire(version),
            KeyPurpose::Checkpoint => self.checkpoint_versions_mut()?.retire(version),
        }
    }

    /// Every version of every purpose, ordered by purpose then version.
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut out = Vec::new();
        self.signing.infos(&mut out);
        self.sealing.infos(&mut out);
        self.at_rest.infos(&mut out);
        self.blind_index.infos(&mut out);
        if let Some(c) = &self.checkpoint {
            c.infos(&mut out);
        }
        out
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Refuses a secret file that group or others may access in any way.
fn check_private_mode(path: &Path) -> Result<(), CryptoError> {
    let meta = fs::metadata(path).map_err(|e| CryptoError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Writes `dir/name` atomically: temp file (0600) → fsync → rename → fsync dir.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), CryptoError> {
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_FILE_MODE)
        .open(&tmp)
        .map_err(|e| CryptoError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| CryptoError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CryptoError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &dst).map_err(|e| CryptoError::io(&dst, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CryptoError::io(dir, e))
}
