//! Signed checkpoints: the tree size, Merkle root and chain head at a moment, signed with
//! ECDSA P-256 as a C2SP `tlog-checkpoint` inside a C2SP signed note (or, for checkpoints
//! stored before that format, the legacy `renkei-records/v1` note), and public-key handling.
//!
//! # The checkpoint note (`Checkpoint::note` when `origin` is set)
//! ```text
//! <origin>
//! <tree size, decimal>
//! <base64 Merkle root>
//! chain-head <base64 chain hash of entry tree_size-1>
//! created-at <RFC 3339>
//! key-version <signing key version>
//! ```
//! The first three lines are the C2SP tlog-checkpoint body; the last three are extension
//! lines (opaque to generic log tools, and signed): the chain head and time are what the
//! bundle verification and the legacy note already bound, and the key version lets a key
//! set pick the key without trying each one. As a signed note it is followed by a blank line
//! and `— <origin> <base64(key ID || DER signature)>` (see `note.rs` for the type and ID).
//!
//! # Key names and versions
//! The signature line's key name is the origin, as tlog-checkpoint recommends. It cannot
//! carry the version (`<origin>+v2` is not a valid key name: `+` is forbidden), and needs
//! not: each version's key has its own key ID, and the version is a signed line of the body.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde::{Deserialize, Serialize};

use crate::chain::ChainState;
use crate::keyset::KeySet;
use crate::merkle::{to_hash, Hash};
use crate::note::{key_id, NoteSignature, SignedNote};
use crate::record::parse_time;
use crate::RecordsError;

/// First line of every legacy (pre-C2SP) signed note; checkpoints stored with it still
/// parse and verify, new ones use the C2SP form.
pub const NOTE_ORIGIN: &str = "renkei-records/v1";

/// The origin [`Checkpoint::sign`] writes when the gateway names none. `.invalid` is a
/// reserved top-level domain (RFC 2606), so this can never collide with a real log's name;
/// a deployment should pass its own (e.g. `records.city.example.lg.jp/renkei`) to
/// [`Checkpoint::sign_with_origin`], since a log's origin should be unique.
pub const DEFAULT_ORIGIN: &str = "renkei-records.invalid/log";

/// Extension line tags of the checkpoint note.
const EXT_CHAIN_HEAD: &str = "chain-head ";
const EXT_CREATED_AT: &str = "created-at ";
const EXT_KEY_VERSION: &str = "key-version ";

/// Signs checkpoint notes. The gateway implements it over its keyring (renkei-crypto);
/// the signature is ECDSA P-256 / SHA-256, DER encoded.
pub trait CheckpointSigner {
    /// The version of the signing key in use.
    fn key_version(&self) -> u32;
    /// Signs `msg`; returns the DER signature.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String>;
}

/// A signed statement: "after `tree_size` entries the root was `root` and the chain head
/// `chain_head`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of entries covered.
    pub tree_size: u64,
    /// RFC 9162 Merkle root over their leaf hashes.
    pub root: Hash,
    /// `chain_hash[tree_size - 1]` (zeros for size 0).
    pub chain_head: Hash,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// The signing key's version.
    pub key_version: u32,
    /// DER ECDSA signature over [`Checkpoint::note`].
    pub signature: Vec<u8>,
    /// The log's origin (first line of the C2SP checkpoint) when the signature covers the
    /// C2SP note; `None` for a legacy checkpoint signed over the `renkei-records/v1` note.
    pub origin: Option<String>,
}

/// The structured JSON line form (the gateway's store, legacy bundles): hashes and
/// signature in base64; `origin` only for C2SP-form checkpoints (first, so legacy lines
/// keep their exact old bytes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub tree_size: u64,
    pub root: String,
    pub chain_head: String,
    pub created_at: String,
    pub key_version: u32,
    pub signature: String,
}

/// The JSON line form bundles use for C2SP-form checkpoints: the whole signed note.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignedNoteLine {
    pub signed_note: String,
}

impl Checkpoint {
    /// The signed bytes: the C2SP checkpoint body (module docs) when `origin` is set, else
    /// the legacy note
    /// `renkei-records/v1\n<tree_size>\n<base64 root>\n<base64 chain head>\n<created_at>\n<key_version>\n`.
    pub fn note(&self) -> Vec<u8> {
        match &self.origin {
            Some(origin) => checkpoint_body(
                origin,
                self.tree_size,
                &self.root,
                &self.chain_head,
                &self.created_at,
                self.key_version,
            ),
            None => note_text(
                self.tree_size,
                &self.root,
                &self.chain_head,
                &self.created_at,
                self.key_version,
            ),
        }
        .into_bytes()
    }

    /// Signs the current state of the log as a C2SP checkpoint of [`DEFAULT_ORIGIN`].
    pub fn sign(
        state: &ChainState,
        created_at: &str,
        signer: &dyn CheckpointSigner,
    ) -> Result<Checkpoint, RecordsError> {
        Self::sign_with_origin(state, created_at, DEFAULT_ORIGIN, signer)
    }

    /// Signs the current state of the log as a C2SP checkpoint of the log `origin` (see
    /// [`valid_origin`] for what an origin may contain).
    pub fn sign_with_origin(
        state: &ChainState,
        created_at: &str,
        origin: &str,
        signer: &dyn CheckpointSigner,
    ) -> Result<Checkpoint, RecordsError> {
        parse_time(created_at, "created_at")?;
        if created_at.chars().any(char::is_control) {
            return Err(RecordsError::format("created_at", "control character"));
        }
        if !valid_origin(origin) {
            return Err(RecordsError::format(
                "origin",
                "printable ASCII without spaces, '+', '\"' or '\\' expected",
            ));
        }
        let mut cp = Checkpoint {
            tree_size: state.next_seq,
            root: state.root(),
            chain_head: state.head,
            created_at: created_at.to_owned(),
            key_version: signer.key_version(),
            signature: vec![],
            origin: Some(origin.to_owned()),
        };
        cp.signature = signer.sign(&cp.note()).map_err(RecordsError::Signer)?;
        Ok(cp)
    }

    /// Verifies the signature with a SEC1 uncompressed P-256 public key (65 bytes), or any
    /// form [`parse_public_key`] accepts.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), RecordsError> {
        let sec1 = parse_public_key(public_key)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &sec1)
            .verify(&self.note(), &self.signature)
            .map_err(|_| RecordsError::BadSignature)
    }

    /// Verifies the signature with the key `keys` holds for this checkpoint's `key_version`;
    /// `UnknownKeyVersion` when it holds none.
    pub fn verify_with(&self, keys: &KeySet) -> Result<(), RecordsError> {
        self.verify(self.key_for(keys)?)
    }

    fn key_for<'k>(&self, keys: &'k KeySet) -> Result<&'k [u8], RecordsError> {
        keys.get(self.key_version)
            .ok_or(RecordsError::UnknownKeyVersion {
                version: self.key_version,
            })
    }

    /// The C2SP signed note: the checkpoint body, a blank line and the signature line
    /// `— <origin> <base64(key ID || signature)>`, the key ID being that of the key `keys`
    /// holds for `key_version`. The signature is checked with that key first, so a note
    /// written here verifies with the same keys. A legacy checkpoint has no such form
    /// (its signature covers the legacy note): `Format`.
    pub fn to_signed_note(&self, keys: &KeySet) -> Result<String, RecordsError> {
        let Some(origin) = &self.origin else {
            return Err(RecordsError::format(
                "checkpoint",
                "a legacy checkpoint has no signed-note form",
            ));
        };
        let key = self.key_for(keys)?;
        self.verify(key)?;
        let note = SignedNote {
            text: String::from_utf8_lossy(&self.note()).into_owned(),
            signatures: vec![NoteSignature {
                key_name: origin.clone(),
                key_id: key_id(key)?,
                signature: self.signature.clone(),
            }],
        };
        Ok(note.to_text())
    }

    /// Reads and verifies a C2SP signed checkpoint note against the auditor's keys: the
    /// body must be exactly the checkpoint form above; the key for its `key-version` line
    /// must have signed it under the key name `<origin>` (other signature lines, e.g.
    /// witness cosignatures, are ignored). `UnknownKeyVersion` when the set lacks that
    /// version, `NoteNotSigned` when no line of that key is present, `BadSignature` when one
    /// does not verify.
    pub fn from_signed_note(text: &str, keys: &KeySet) -> Result<Checkpoint, RecordsError> {
        let note = SignedNote::parse(text)?;
        let mut cp = parse_checkpoint_body(&note.text)?;
        let origin = cp.origin.clone().unwrap_or_default();
        let key = cp.key_for(keys)?;
        cp.signature = note.verify(&origin, key)?.signature.clone();
        Ok(cp)
    }

    /// Reads a C2SP signed checkpoint note WITHOUT verifying it (for stored data; verify
    /// with [`Checkpoint::verify_with`]). The signature kept is the first line named by the
    /// origin.
    pub fn parse_signed_note(text: &str) -> Result<Checkpoint, RecordsError> {
        let note = SignedNote::parse(text)?;
        let mut cp = parse_checkpoint_body(&note.text)?;
        let origin = cp.origin.clone().unwrap_or_default();
        cp.signature = note
            .signatures
            .iter()
            .find(|s| s.key_name == origin)
            .map(|s| s.signature.clone())
            .ok_or_else(|| RecordsError::NoteNotSigned {
                key_name: origin,
                key_id: "any".into(),
            })?;
        Ok(cp)
    }

    /// The structured JSON line (what the gateway stores): the legacy six keys, plus a
    /// leading `origin` for C2SP-form checkpoints. Bundles write [`Checkpoint::to_signed_note`]
    /// instead (as `{"signed_note":"..."}`) for those.
    pub fn to_json_line(&self) -> String {
        let line = CheckpointLine {
            origin: self.origin.clone(),
            tree_size: self.tree_size,
            root: B64.encode(self.root),
            chain_head: B64.encode(self.chain_head),
            created_at: self.created_at.clone(),
            key_version: self.key_version,
            signature: B64.encode(&self.signature),
        };
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Parses a checkpoint line in any form written so far: the legacy structured line, the
    /// structured line with `origin`, or `{"signed_note":"..."}` (read without verifying,
    /// see [`Checkpoint::parse_signed_note`]).
    pub fn from_json_line(line: &str) -> Result<Checkpoint, RecordsError> {
        const WHAT: &str = "checkpoint";
        if let Ok(n) = serde_json::from_str::<SignedNoteLine>(line) {
            return Self::parse_signed_note(&n.signed_note);
        }
        let l: CheckpointLine = serde_json::from_str(line)
            .map_err(|_| RecordsError::format(WHAT, "not a checkpoint line"))?;
        if l.created_at.contains('\n') {
            return Err(RecordsError::format(WHAT, "created_at contains a newline"));
        }
        if let Some(o) = &l.origin {
            if !valid_origin(o) || l.created_at.chars().any(char::is_control) {
                return Err(RecordsError::format(WHAT, "bad origin or created_at"));
            }
        }
        Ok(Checkpoint {
            tree_size: l.tree_size,
            root: b64_hash(&l.root, WHAT)?,
            chain_head: b64_hash(&l.chain_head, WHAT)?,
            created_at: l.created_at,
            key_version: l.key_version,
            signature: B64
                .decode(&l.signature)
                .map_err(|_| RecordsError::format(WHAT, "bad base64"))?,
            origin: l.origin,
        })
    }
}

fn b64_hash(s: &str, what: &'static str) -> Result<Hash, RecordsError> {
    let b = B64
        .decode(s)
        .map_err(|_| RecordsError::format(what, "bad base64"))?;
    if b.len() != 32 {
        return Err(RecordsError::format(what, "hash is not 32 bytes"));
    }
    Ok(to_hash(&b))
}

/// What an origin may be here: non-empty printable ASCII without spaces, `+`, `"` or `\`.
/// Stricter than tlog-checkpoint (which allows any UTF-8 without spaces or `+`) so that the
/// origin is also a valid key name and passes through JSON and `sed` unescaped.
pub fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'+' | b'"' | b'\\'))
}

fn checkpoint_body(
    origin: &str,
    tree_size: u64,
    root: &Hash,
    head: &Hash,
    created_at: &str,
    key_version: u32,
) -> String {
    format!(
        "{origin}\n{tree_size}\n{}\n{EXT_CHAIN_HEAD}{}\n{EXT_CREATED_AT}{created_at}\n{EXT_KEY_VERSION}{key_version}\n",
        B64.encode(root),
        B64.encode(head)
    )
}

/// Parses a checkpoint body; it must be exactly what [`checkpoint_body`] writes for the
/// values read (one spelling per checkpoint). The signature is left empty.
fn parse_checkpoint_body(text: &str) -> Result<Checkpoint, RecordsError> {
    const WHAT: &str = "checkpoint_note";
    let bad = |d: &str| RecordsError::format(WHAT, d.to_owned());
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let [origin, size, root, head, created, version] = lines[..] else {
        return Err(bad(
            "expected origin, size, root and the three renkei extension lines",
        ));
    };
    if !valid_origin(origin) {
        return Err(bad("bad origin line"));
    }
    let tree_size: u64 = size.parse().map_err(|_| bad("bad tree size"))?;
    let chain_head = head
        .strip_prefix(EXT_CHAIN_HEAD)
        .ok_or_else(|| bad("line 4 is not chain-head"))?;
    let created_at = created
        .strip_prefix(EXT_CREATED_AT)
        .ok_or_else(|| bad("line 5 is not created-at"))?;
    let key_version: u32 = version
        .strip_prefix(EXT_KEY_VERSION)
        .ok_or_else(|| bad("line 6 is not key-version"))?
        .parse()
        .map_err(|_| bad("bad key version"))?;
    let cp = Checkpoint {
        tree_size,
        root: b64_hash(root, WHAT)?,
        chain_head: b64_hash(chain_head, WHAT)?,
        created_at: created_at.to_owned(),
        key_version,
        signature: vec![],
        origin: Some((*origin).to_owned()),
    };
    if cp.note() != text.as_bytes() {
        return Err(bad("not in canonical form"));
    }
    Ok(cp)
}

pub(crate) fn note_text(
    tree_size: u64,
    root: &Hash,
    head: &Hash,
    created_at: &str,
    key_version: u32,
) -> String {
    format!(
        "{NOTE_ORIGIN}\n{tree_size}\n{}\n{}\n{created_at}\n{key_version}\n",
        B64.encode(root),
        B64.encode(head)
    )
}

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Reads a P-256 public key given as SEC1 uncompressed bytes (65 bytes, `0x04 || x || y`),
/// SPKI DER, or SPKI PEM (`-----BEGIN PUBLIC KEY-----`). Returns the SEC1 bytes.
pub fn parse_public_key(input: &[u8]) -> Result<Vec<u8>, RecordsError> {
    if input.len() == 65 && input[0] == 0x04 {
        return Ok(input.to_vec());
    }
    if input.len() == 91 && input[..26] == P256_SPKI_PREFIX {
        return Ok(input[26..].to_vec());
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| RecordsError::BadKey("neither SEC1, SPKI DER nor PEM".into()))?;
    let begin = "-----BEGIN PUBLIC KEY-----";
    let end = "-----END PUBLIC KEY-----";
    let start = text
        .find(begin)
        .ok_or_else(|| RecordsError::BadKey("no PUBLIC KEY PEM block".into()))?
        + begin.len();
    let stop = text[start..]
        .find(end)
        .ok_or_else(|| RecordsError::BadKey("unterminated PEM block".into()))?
        + start;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64
        .decode(b64)
        .map_err(|_| RecordsError::BadKey("bad base64 in PEM".into()))?;
    if der.len() == 91 && der[..26] == P256_SPKI_PREFIX && der[26] == 0x04 {
        Ok(der[26..].to_vec())
    } else {
        Err(RecordsError::BadKey(
            "not a P-256 uncompressed public key".into(),
        ))
    }
}

/// The DER SubjectPublicKeyInfo of a SEC1 uncompressed P-256 public key.
pub(crate) fn spki_der(sec1: &[u8]) -> Result<Vec<u8>, RecordsError> {
    if sec1.len() != 65 || sec1[0] != 0x04 {
        return Err(RecordsError::BadKey(
            "expected 65 bytes of SEC1 uncompressed point".into(),
        ));
    }
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(sec1);
    Ok(der)
}

/// The SPKI PEM for a SEC1 uncompressed P-256 public key (what `openssl dgst -verify` takes).
pub fn public_key_pem(sec1: &[u8]) -> Result<String, RecordsError> {
    if sec1.len() != 65 || sec1[0] != 0x04 {
        return Err(RecordsError::BadKey(
            "expected 65 bytes of SEC1 uncompressed point".into(),
        ));
    }
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(sec1);
    let b64 = B64.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EphemeralSigner;

    #[test]
    fn note_golden_and_sign_verify() {
        let mut state = ChainState::new();
        let empty = Checkpoint {
            tree_size: 0,
            root: crate::merkle::empty_root(),
            chain_head: [0; 32],
            created_at: "2026-11-26T00:00:00Z".into(),
            key_version: 3,
            signature: vec![],
            origin: None,
        };
        assert_eq!(
            String::from_utf8(empty.note()).unwrap(),
            "renkei-records/v1\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n2026-11-26T00:00:00Z\n3\n"
        );
        state.append(b"x");
        let signer = EphemeralSigner::generate().unwrap();
        let cp = Checkpoint::sign(&state, "2026-11-26T00:00:01Z", &signer).unwrap();
        assert_eq!(cp.tree_size, 1);
        cp.verify(signer.public_key()).unwrap();
        let pem = public_key_pem(signer.public_key()).unwrap();
        cp.verify(pem.as_bytes()).unwrap();
        assert_eq!(
            parse_public_key(pem.as_bytes()).unwrap(),
            signer.public_key()
        );
        let other = EphemeralSigner::generate().unwrap();
        assert_eq!(
            cp.verify(other.public_key()).unwrap_err().code(),
            "records_bad_signature"
        );
        let mut changed = cp.clone();
        changed.tree_size = 2;
        assert!(changed.verify(signer.public_key()).is_err());
        let back = Checkpoint::from_json_line(&cp.to_json_line()).unwrap();
        assert_eq!(back, cp);
        assert!(Checkpoint::sign(&state, "not a time", &signer).is_err());
        assert_eq!(
            parse_public_key(b"junk").unwrap_err().code(),
            "records_bad_key"
        );
    }
}
