//! C2SP signed notes (<https://c2sp.org/signed-note>) with ECDSA P-256 / SHA-256 signatures:
//! parsing, serialising, key IDs, verifier keys and verification. The checkpoint layer on
//! top is in `checkpoint.rs`.
//!
//! # Signature type
//! The gateway's signing keys are ECDSA P-256 with SHA-256 and DER (ASN.1) signatures, made
//! with `ring`. The signed-note spec assigns type `0x02` to exactly this: "ECDSA signatures as
//! implemented by github.com/transparency-dev/witness" (SHA-256 digest of the note text,
//! ASN.1 DER signature, P-256 recommended), the type Sigstore's Rekor log uses. So we use
//! `0x02` rather than the private-use byte `0xff`, and follow the spec's rule for that type:
//! the key ID is the first four bytes of SHA-256 over the DER SubjectPublicKeyInfo — NOT the
//! generic `SHA-256(key name || 0x0A || type || public key)` recommended for other types.
//! That way Go's `golang.org/x/mod/sumdb/note` with transparency-dev's ECDSA verifier, or
//! any tool that checks Rekor checkpoints, verifies our notes unchanged (the tests check the
//! published Rekor vector).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

use crate::checkpoint::{parse_public_key, spki_der};
use crate::RecordsError;

/// The signed-note signature type byte for ECDSA (P-256, SHA-256, DER signature).
pub const SIGNATURE_TYPE_ECDSA: u8 = 0x02;

/// Most signature lines read from one note: the spec requires accepting at least 16; 100 is
/// the cap of Go's reference `note` package, so anything it accepts we accept.
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// Largest note read, in bytes: a checkpoint is ~250 bytes plus ~100 per signature line, so
/// 64 KiB holds `MAX_NOTE_SIGNATURES` lines with room to spare and bounds hostile input.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The start of a signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

const WHAT: &str = "signed_note";

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name (for our own lines: the log's origin).
    pub key_name: String,
    /// The 4-byte key ID (big-endian).
    pub key_id: [u8; 4],
    /// The signature proper (for type `0x02`: DER ECDSA over the note text).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `— <key name> <base64(key ID || signature)>\n`.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.key_name, B64.encode(raw))
    }
}

/// A signed note split into its text (what is signed, ending in a newline) and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The note text, including its final newline, excluding the blank separator line.
    pub text: String,
    /// The signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note: text ending in a newline, a blank line, then one or more
    /// signature lines, each ending in a newline. Valid UTF-8 without control characters
    /// other than newline; the text is split from the signatures at the LAST blank line.
    pub fn parse(note: &str) -> Result<SignedNote, RecordsError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(RecordsError::format(WHAT, "note too large"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(RecordsError::format(WHAT, "control character in the note"));
        }
        if !note.ends_with('\n') {
            return Err(RecordsError::format(
                WHAT,
                "the note does not end in a newline",
            ));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| RecordsError::format(WHAT, "no blank line before the signatures"))?;
        let text = &note[..=split];
        let mut signatures = vec![];
        for line in note[split + 2..].split_terminator('\n') {
            if signatures.len() == MAX_NOTE_SIGNATURES {
                return Err(RecordsError::format(WHAT, "too many signatures"));
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
                RecordsError::format(WHAT, "a signature line must start with '— '")
            })?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| {
                RecordsError::format(WHAT, "a signature line lacks its signature")
            })?;
            if !valid_key_name(name) {
                return Err(RecordsError::format(
                    WHAT,
                    "bad key name in a signature line",
                ));
            }
            let raw = B64
                .decode(b64)
                .map_err(|_| RecordsError::format(WHAT, "bad base64 in a signature line"))?;
            if raw.len() < 5 {
                return Err(RecordsError::format(WHAT, "signature too short"));
            }
            let mut key_id = [0u8; 4];
            key_id.copy_from_slice(&raw[..4]);
            signatures.push(NoteSignature {
                key_name: name.to_owned(),
                key_id,
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(RecordsError::format(WHAT, "no signature lines"));
        }
        if text.len() <= 1 {
            return Err(RecordsError::format(WHAT, "empty note text"));
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: `text`, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// The signature lines of key `key_name` with the type-`0x02` key ID of `public_key`
    /// (SEC1, SPKI DER or PEM). Lines of other keys are ignored, as the spec requires.
    pub fn signatures_by<'a>(
        &'a self,
        key_name: &'a str,
        public_key: &[u8],
    ) -> Result<impl Iterator<Item = &'a NoteSignature> + 'a, RecordsError> {
        let id = key_id(public_key)?;
        Ok(self
            .signatures
            .iter()
            .filter(move |s| s.key_name == key_name && s.key_id == id))
    }

    /// Verifies the note against one known key: at least one signature line with this key
    /// name and key ID, and every such line verifies (a failing line from a known key
    /// rejects the whole note, as the spec advises). Returns the verified signature.
    pub fn verify<'a>(
        &'a self,
        key_name: &'a str,
        public_key: &[u8],
    ) -> Result<&'a NoteSignature, RecordsError> {
        let sec1 = parse_public_key(public_key)?;
        let mut verified = None;
        for s in self.signatures_by(key_name, &sec1)? {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &sec1)
                .verify(self.text.as_bytes(), &s.signature)
                .map_err(|_| RecordsError::BadSignature)?;
            verified.get_or_insert(s);
        }
        verified.ok_or_else(|| RecordsError::NoteNotSigned {
            key_name: key_name.to_owned(),
            key_id: hex::encode(key_id(&sec1).unwrap_or_default()),
        })
    }
}

/// The signed-note key ID of a P-256 public key (SEC1, SPKI DER or PEM) for type `0x02`:
/// `SHA-256(DER SubjectPublicKeyInfo)[:4]`.
pub fn key_id(public_key: &[u8]) -> Result<[u8; 4], RecordsError> {
    let spki = spki_der(&parse_public_key(public_key)?)?;
    let h = digest(&SHA256, &spki);
    let mut id = [0u8; 4];
    id.copy_from_slice(&h.as_ref()[..4]);
    Ok(id)
}

/// The verifier key string of the signed-note ecosystem for a P-256 key:
/// `<key name>+<hex key ID>+<base64(0x02 || DER SubjectPublicKeyInfo)>` — what Go's
/// `sumdb/note` with transparency-dev's ECDSA verifier (`NewECDSAVerifier`) reads.
pub fn verifier_key(key_name: &str, public_key: &[u8]) -> Result<String, RecordsError> {
    if !valid_key_name(key_name) {
        return Err(RecordsError::format(WHAT, "bad key name"));
    }
    let spki = spki_der(&parse_public_key(public_key)?)?;
    let mut raw = vec![SIGNATURE_TYPE_ECDSA];
    raw.extend_from_slice(&spki);
    Ok(format!(
        "{key_name}+{}+{}",
        hex::encode(key_id(public_key)?),
        B64.encode(raw)
    ))
}

/// A key name per the spec: non-empty, no Unicode white space, no `+`.
pub(crate) fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real type-0x02 notes published in transparency-dev/formats
    /// (`note/note_verifier_test.go`): the Sigstore Rekor log key and a Rekor checkpoint,
    /// and the Pixel 6 transparency log key and checkpoint.
    const VECTORS: [(&str, &str, &str, &str); 2] = [
        (
            "rekor.sigstore.dev",
            "c0d23d6a",
            "AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=",
            "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\u{2014} rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n",
        ),
        (
            "pixel6_transparency_log",
            "91c16e30",
            "AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8=",
            "DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n\u{2014} pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n",
        ),
    ];

    #[test]
    fn published_ecdsa_notes_verify_with_the_spec_key_id() {
        for (name, id, material, text) in VECTORS {
            let raw = B64.decode(material).unwrap();
            assert_eq!(raw[0], SIGNATURE_TYPE_ECDSA);
            let spki = &raw[1..];
            assert_eq!(hex::encode(key_id(spki).unwrap()), id, "{name}");
            assert_eq!(
                verifier_key(name, spki).unwrap(),
                format!("{name}+{id}+{material}")
            );
            let note = SignedNote::parse(text).unwrap();
            assert_eq!(note.to_text(), text, "round trip");
            note.verify(name, spki).unwrap();
            // The same key under another name is an unknown key, not a bad signature.
            assert_eq!(
                note.verify("other.example", spki).unwrap_err().code(),
                "records_note_not_signed"
            );
            // One changed character of the text fails the signature.
            let tampered = format!("X{text}");
            let bad = SignedNote::parse(&tampered).unwrap();
            assert_ne!(bad.text, note.text);
            assert_eq!(
                bad.verify(name, spki).unwrap_err().code(),
                "records_bad_signature"
            );
        }
        // Each key rejects the other's note as not signed by it.
        let pixel = B64.decode(VECTORS[1].2).unwrap();
        let rekor = SignedNote::parse(VECTORS[0].3).unwrap();
        assert!(rekor.verify("rekor.sigstore.dev", &pixel[1..]).is_err());
    }

    #[test]
    fn malformed_notes_are_refused_with_a_reason() {
        let good = VECTORS[0].3;
        let cases = [
            (good.trim_end().to_string(), "newline"),
            (good.replace("\n\n", "\n"), "blank line"),
            (good.replace('\u{2014}', "-"), "must start"),
            (
                good.replace("rekor.sigstore.dev w", "rekor+x w"),
                "key name",
            ),
            (good.replace("wNI9aj", "wNI9a!"), "base64"),
            (good.replace("Rekor", "Re\u{7}kor"), "control"),
            (format!("{good}\n"), "no signature lines"),
            ("\n\n\u{2014} a AAAAAAA=\n".into(), "empty"),
            ("x\n\n".into(), "no signature"),
        ];
        for (text, why) in cases {
            let err = SignedNote::parse(&text).unwrap_err();
            assert!(err.to_string().contains(why), "{text:?}: {err}");
        }
        // Extra signatures from unknown keys are kept and ignored.
        let cosigned = format!("{good}\u{2014} witness.example AAAAAAE=\n");
        let note = SignedNote::parse(&cosigned).unwrap();
        assert_eq!(note.signatures.len(), 2);
        let raw = B64.decode(VECTORS[0].2).unwrap();
        note.verify("rekor.sigstore.dev", &raw[1..]).unwrap();
        let many: String = (0..=MAX_NOTE_SIGNATURES)
            .map(|_| "\u{2014} w AAAAAAE=\n")
            .collect();
        assert!(SignedNote::parse(&format!("x\n\n{many}"))
            .unwrap_err()
            .to_string()
            .contains("too many"));
    }
}
