//! Signed checkpoints: the tree size, Merkle root and chain head at a moment, signed with
//! ECDSA P-256 over a small documented text (a signed note), and public-key handling.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde::{Deserialize, Serialize};

use crate::chain::ChainState;
use crate::keyset::KeySet;
use crate::merkle::{to_hash, Hash};
use crate::record::parse_time;
use crate::RecordsError;

/// First line of every signed note; bumps when the note's shape changes.
pub const NOTE_ORIGIN: &str = "renkei-records/v1";

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
}

/// The JSON line form used in `checkpoints.jsonl` (hashes and signature in base64).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointLine {
    pub tree_size: u64,
    pub root: String,
    pub chain_head: String,
    pub created_at: String,
    pub key_version: u32,
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes:
    /// `renkei-records/v1\n<tree_size>\n<base64 root>\n<base64 chain head>\n<created_at>\n<key_version>\n`.
    pub fn note(&self) -> Vec<u8> {
        note_text(
            self.tree_size,
            &self.root,
            &self.chain_head,
            &self.created_at,
            self.key_version,
        )
        .into_bytes()
    }

    /// Signs the current state of the log.
    pub fn sign(
        state: &ChainState,
        created_at: &str,
        signer: &dyn CheckpointSigner,
    ) -> Result<Checkpoint, RecordsError> {
        parse_time(created_at, "created_at")?;
        let mut cp = Checkpoint {
            tree_size: state.next_seq,
            root: state.root(),
            chain_head: state.head,
            created_at: created_at.to_owned(),
            key_version: signer.key_version(),
            signature: vec![],
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
        let key = keys
            .get(self.key_version)
            .ok_or(RecordsError::UnknownKeyVersion {
                version: self.key_version,
            })?;
        self.verify(key)
    }

    /// The JSON line for `checkpoints.jsonl`.
    pub fn to_json_line(&self) -> String {
        let line = CheckpointLine {
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

    /// Parses a `checkpoints.jsonl` line.
    pub fn from_json_line(line: &str) -> Result<Checkpoint, RecordsError> {
        const WHAT: &str = "checkpoint";
        let l: CheckpointLine = serde_json::from_str(line)
            .map_err(|_| RecordsError::format(WHAT, "not a checkpoint line"))?;
        let hash = |s: &str| -> Result<Hash, RecordsError> {
            let b = B64
                .decode(s)
                .map_err(|_| RecordsError::format(WHAT, "bad base64"))?;
            if b.len() != 32 {
                return Err(RecordsError::format(WHAT, "hash is not 32 bytes"));
            }
            Ok(to_hash(&b))
        };
        if l.created_at.contains('\n') {
            return Err(RecordsError::format(WHAT, "created_at contains a newline"));
        }
        Ok(Checkpoint {
            tree_size: l.tree_size,
            root: hash(&l.root)?,
            chain_head: hash(&l.chain_head)?,
            created_at: l.created_at,
            key_version: l.key_version,
            signature: B64
                .decode(&l.signature)
                .map_err(|_| RecordsError::format(WHAT, "bad base64"))?,
        })
    }
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
