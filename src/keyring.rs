//! One side's message keys at run time: its own keyring (swappable while serving, for
//! rotation) and the public keys it knows of its peers, plus the signed, sealed transport
//! both the gateway and the simulator speak (format in docs/envelope.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use renkei_crypto::envelope::{open_from, seal_for, signature_header, SignatureHeader};
use renkei_crypto::keyring::{Keyring, MasterKey};
use renkei_crypto::{SealingPublicKey, VerifyingKey};
use renkei_ids::AgencyCode;
use renkei_platform::SealedData;
use serde::{Deserialize, Serialize};

/// The HTTP header carrying the detached signature over the body.
pub const SIGNATURE_HEADER: &str = "renkei-signature";

/// Key and envelope failures. Codes are stable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key material: {0}")]
    Material(String),
    #[error("signature missing")]
    SignatureMissing,
    #[error("signature invalid: {0}")]
    SignatureInvalid(String),
    #[error("unknown signer {agency} key version {version}")]
    UnknownSigner { agency: String, version: u32 },
    #[error("cannot open sealed data: {0}")]
    Open(String),
    #[error("cannot seal: {0}")]
    Seal(String),
}

impl KeyError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Material(_) => "key_material",
            KeyError::SignatureMissing => "signature_missing",
            KeyError::SignatureInvalid(_) => "signature_invalid",
            KeyError::UnknownSigner { .. } => "unknown_signer",
            KeyError::Open(_) => "unseal_failed",
            KeyError::Seal(_) => "seal_failed",
        }
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A peer's published public keys, by version (JSON file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerKeysFile {
    pub agency: AgencyCode,
    /// version → base64 SEC1 public key.
    pub signing: BTreeMap<u32, String>,
    /// version → base64 SEC1 public key; the highest version is the one to seal to.
    pub sealing: BTreeMap<u32, String>,
}

/// Decoded peer keys.
#[derive(Debug, Clone)]
pub struct PeerKeys {
    pub agency: AgencyCode,
    pub signing: BTreeMap<u32, VerifyingKey>,
    pub sealing: BTreeMap<u32, SealingPublicKey>,
}

impl PeerKeys {
    /// Reads a peer keys file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Material(format!("{}: {e}", path.display())))?;
        let f: PeerKeysFile = serde_json::from_str(&text)
            .map_err(|e| KeyError::Material(format!("{}: {e}", path.display())))?;
        Self::from_file(&f)
    }

    /// Decodes the JSON form.
    pub fn from_file(f: &PeerKeysFile) -> Result<Self, KeyError> {
        let dec = |s: &str| {
            b64()
                .decode(s)
                .map_err(|e| KeyError::Material(format!("peer key: {e}")))
        };
        let mut signing = BTreeMap::new();
        for (v, k) in &f.signing {
            signing.insert(
                *v,
                VerifyingKey::from_sec1(&dec(k)?).map_err(|e| KeyError::Material(e.to_string()))?,
            );
        }
        let mut sealing = BTreeMap::new();
        for (v, k) in &f.sealing {
            sealing.insert(
                *v,
                SealingPublicKey::from_bytes(&dec(k)?)
                    .map_err(|e| KeyError::Material(e.to_string()))?,
            );
        }
        Ok(Self {
            agency: f.agency.clone(),
            signing,
            sealing,
        })
    }

    /// The JSON form.
    pub fn to_file(&self) -> PeerKeysFile {
        PeerKeysFile {
            agency: self.agency.clone(),
            signing: self
                .signing
                .iter()
                .map(|(v, k)| (*v, b64().encode(k.to_sec1())))
                .collect(),
            sealing: self
                .sealing
                .iter()
                .map(|(v, k)| (*v, b64().encode(k.to_bytes())))
                .collect(),
        }
    }

    /// Writes the JSON form atomically.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let json = serde_json::to_vec_pretty(&self.to_file())
            .map_err(|e| KeyError::Material(e.to_string()))?;
        crate::fsutil::write_public(path, &json)
            .map_err(|e| KeyError::Material(format!("{}: {e}", path.display())))
    }

    /// The newest sealing key.
    pub fn sealing_key(&self) -> Option<(u32, &SealingPublicKey)> {
        self.sealing.iter().next_back().map(|(v, k)| (*v, k))
    }
}

/// This side's identity and keys, shared by every task; rotation swaps the keyring in place.
pub struct KeyState {
    pub agency: AgencyCode,
    keyring: RwLock<Arc<Keyring>>,
    peers: RwLock<BTreeMap<String, Arc<PeerKeys>>>,
    dir: PathBuf,
    master: MasterKey,
}

impl std::fmt::Debug for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyState")
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

impl KeyState {
    /// Loads the keyring from `dir`, sealed under the master key file. A keyring saved before
    /// the `checkpoint` purpose existed gets its checkpoint key version 1 here, saved at once.
    pub fn load(agency: AgencyCode, dir: &Path, master_file: &Path) -> Result<Self, KeyError> {
        let master =
            MasterKey::from_file(master_file).map_err(|e| KeyError::Material(e.to_string()))?;
        let mut keyring =
            Keyring::load(dir, &master).map_err(|e| KeyError::Material(e.to_string()))?;
        let material = |e: renkei_crypto::CryptoError| KeyError::Material(e.to_string());
        if keyring
            .ensure_purpose(renkei_crypto::keyring::KeyPurpose::Checkpoint)
            .map_err(material)?
        {
            keyring.save(dir, &master).map_err(material)?;
        }
        Ok(Self {
            agency,
            keyring: RwLock::new(Arc::new(keyring)),
            peers: RwLock::new(BTreeMap::new()),
            dir: dir.to_path_buf(),
            master,
        })
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// A fresh copy of the keyring from disk, to change (see [`KeyState::install`]).
    pub fn prepare(&self) -> Result<Keyring, KeyError> {
        Keyring::load(&self.dir, &self.master).map_err(|e| KeyError::Material(e.to_string()))
    }

    /// Saves a changed keyring and makes it the current one.
    pub fn install(&self, next: Keyring) -> Result<(), KeyError> {
        next.save(&self.dir, &self.master)
            .map_err(|e| KeyError::Material(e.to_string()))?;
        let mut guard = match self.keyring.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = Arc::new(next);
        Ok(())
    }

    /// Registers or replaces a peer's public keys.
    pub fn set_peer(&self, peer: PeerKeys) {
        let mut g = match self.peers.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.insert(peer.agency.as_str().to_string(), Arc::new(peer));
    }

    /// A peer's keys.
    pub fn peer(&self, agency: &str) -> Option<Arc<PeerKeys>> {
        match self.peers.read() {
            Ok(g) => g.get(agency).cloned(),
            Err(p) => p.into_inner().get(agency).cloned(),
        }
    }

    /// The signature header for a body.
    pub fn sign(&self, body: &[u8]) -> Result<String, KeyError> {
        let ring = self.keyring();
        let (version, key) = ring.signing();
        signature_header(self.agency.as_str(), version, key, body)
            .map_err(|e| KeyError::SignatureInvalid(e.to_string()))
    }

    /// Checks a body's signature header against the named peer's keys; returns the signer.
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(String, u32), KeyError> {
        let header = header.ok_or(KeyError::SignatureMissing)?;
        let sig = SignatureHeader::parse(header)
            .map_err(|e| KeyError::SignatureInvalid(e.to_string()))?;
        let peer = self.peer(&sig.agency).ok_or(KeyError::UnknownSigner {
            agency: sig.agency.clone(),
            version: sig.version,
        })?;
        let key = peer
            .signing
            .get(&sig.version)
            .ok_or(KeyError::UnknownSigner {
                agency: sig.agency.clone(),
                version: sig.version,
            })?;
        key.verify(body, &sig.sig)
            .map_err(|e| KeyError::SignatureInvalid(e.to_string()))?;
        Ok((sig.agency, sig.version))
    }

    /// Seals `plaintext` to a peer's newest sealing key for one message.
    pub fn seal_to(
        &self,
        agency: &str,
        message_type: &str,
        message_id: &str,
        plaintext: &[u8],
    ) -> Result<SealedData, KeyError> {
        let peer = self
            .peer(agency)
            .ok_or_else(|| KeyError::Seal(format!("no keys for agency {agency}")))?;
        let (version, pk) = peer
            .sealing_key()
            .ok_or_else(|| KeyError::Seal(format!("agency {agency} has no sealing key")))?;
        let s = seal_for(pk, message_type, message_id, plaintext)
            .map_err(|e| KeyError::Seal(e.to_string()))?;
        Ok(SealedData {
            key_version: version,
            enc: s.enc,
            ciphertext: s.ciphertext,
        })
    }

    /// Opens data sealed to this side (any of its non-retired sealing key versions).
    pub fn open(
        &self,
        message_type: &str,
        message_id: &str,
        sealed: &SealedData,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
        let ring = self.keyring();
        let key = ring
            .opening_version(sealed.key_version)
            .ok_or_else(|| KeyError::Open(format!("no key version {}", sealed.key_version)))?;
        let s = renkei_crypto::Sealed {
            enc: sealed.enc.clone(),
            ciphertext: sealed.ciphertext.clone(),
        };
        open_from(key, message_type, message_id, &s).map_err(|e| KeyError::Open(e.to_string()))
    }

    /// This side's public keys, as a peer would store them.
    pub fn own_public(&self) -> PeerKeys {
        let ring = self.keyring();
        let mut signing = BTreeMap::new();
        let mut sealing = BTreeMap::new();
        for info in ring.list() {
            if info.state == renkei_crypto::keyring::KeyState::Retired {
                continue;
            }
            match info.purpose {
                renkei_crypto::keyring::KeyPurpose::Signing => {
                    if let Some(k) = ring.verifying_key(info.version) {
                        signing.insert(info.version, k);
                    }
                }
                renkei_crypto::keyring::KeyPurpose::Sealing => {
                    if let Some(k) = ring.opening_version(info.version) {
                        sealing.insert(info.version, k.public_key());
                    }
                }
                _ => {}
            }
        }
        PeerKeys {
            agency: self.agency.clone(),
            signing,
            sealing,
        }
    }
}
