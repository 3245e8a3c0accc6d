//! ECDSA P-256 / SHA-256 signing and verification (ring), with SEC1/SPKI encodings.

use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length of an uncompressed SEC1 P-256 point (0x04 || X || Y).
pub(crate) const SEC1_UNCOMPRESSED_LEN: usize = 65;

/// DER prefix of a SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 with an
/// uncompressed point: SEQUENCE { SEQUENCE { OID 1.2.840.10045.2.1, OID
/// 1.2.840.10045.3.1.7 }, BIT STRING (0 unused bits) } — the 65 point bytes follow.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// An ECDSA P-256 private key (signs with SHA-256, ASN.1 DER signatures).
///
/// The PKCS#8 document is kept in zeroizing memory; there is deliberately no `Debug`.
pub struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pair: EcdsaKeyPair,
}

impl SigningKey {
    /// Generates a fresh key from the system RNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| CryptoError::Rng)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads a key from an unencrypted PKCS#8 v1/v2 DER document (as ring and
    /// `openssl pkcs8 -topk8 -nocrypt -outform DER` produce).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
            .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 private key"))?;
        Ok(SigningKey {
            pkcs8: Zeroizing::new(der.to_vec()),
            pair,
        })
    }

    /// The PKCS#8 DER document of this key.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut point = [0u8; SEC1_UNCOMPRESSED_LEN];
        point.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey { point }
    }

    /// Signs `msg` (hashed with SHA-256); returns an ASN.1 DER `ECDSA-Sig-Value`,
    /// the form `openssl dgst -sha256 -verify` accepts.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        self.pair
            .sign(&rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::Rng)
    }
}

/// Something that makes ECDSA P-256/SHA-256 ASN.1 DER signatures: a [`SigningKey`] in
/// memory today, an HSM-held key later. Code that signs checkpoints can take a
/// `&dyn Signer` so the key's home can change without changing the caller.
pub trait Signer {
    /// Signs `msg` (hashed with SHA-256); an ASN.1 DER `ECDSA-Sig-Value`.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The public key that verifies these signatures.
    fn verifying_key(&self) -> VerifyingKey;
}

impl Signer for SigningKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        SigningKey::sign(self, msg)
    }
    fn verifying_key(&self) -> VerifyingKey {
        SigningKey::verifying_key(self)
    }
}

/// An ECDSA P-256 public key, held as its uncompressed SEC1 point (65 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    point: [u8; SEC1_UNCOMPRESSED_LEN],
}

impl VerifyingKey {
    /// Parses an uncompressed SEC1 point and checks that it lies on P-256.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, CryptoError> {
        let point = validate_p256_point(bytes)?;
        Ok(VerifyingKey { point })
    }

    /// The uncompressed SEC1 point (65 bytes, starting with 0x04).
    pub fn to_sec1(&self) -> Vec<u8> {
        self.point.to_vec()
    }

    /// The key as a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo), as OpenSSL writes it.
    pub fn to_spki_pem(&self) -> String {
        let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + SEC1_UNCOMPRESSED_LEN);
        der.extend_from_slice(&P256_SPKI_PREFIX);
        der.extend_from_slice(&self.point);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::with_capacity(b64.len() + 64);
        pem.push_str(PEM_BEGIN);
        pem.push('\n');
        // 64-character lines as in RFC 7468 §2.
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        pem
    }

    /// Parses a PEM `PUBLIC KEY` holding a P-256 key with an uncompressed point.
    /// Anything else (other curves, compressed points, extra blocks) is refused.
    pub fn from_spki_pem(pem: &str) -> Result<Self, CryptoError> {
        let text = pem.trim();
        let body = text
            .strip_prefix(PEM_BEGIN)
            .and_then(|r| r.strip_suffix(PEM_END))
            .ok_or_else(|| CryptoError::malformed("SPKI PEM", "expected one PUBLIC KEY block"))?;
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::malformed("SPKI PEM", "invalid base64"))?;
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .ok_or(CryptoError::InvalidKey(
                "not a P-256 uncompressed SubjectPublicKeyInfo",
            ))?;
        Self::from_sec1(point)
    }

    /// Verifies an ASN.1 DER ECDSA P-256 SHA-256 signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig_der: &[u8]) -> Result<(), CryptoError> {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(msg, sig_der)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// First 16 hex characters of SHA-256 over the SEC1 bytes.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.point)
    }
}

/// First 16 lower-case hex characters of SHA-256(`bytes`).
pub(crate) fn fingerprint(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    hex::encode(&d.as_ref()[..8])
}

/// Checks that `bytes` is an uncompressed SEC1 encoding of a P-256 point
/// (not the identity) and returns it.
pub(crate) fn validate_p256_point(
    bytes: &[u8],
) -> Result<[u8; SEC1_UNCOMPRESSED_LEN], CryptoError> {
    use hpke::Deserializable as _;
    if bytes.len() != SEC1_UNCOMPRESSED_LEN || bytes[0] != 0x04 {
        return Err(CryptoError::InvalidKey(
            "expected a 65-byte uncompressed SEC1 P-256 point",
        ));
    }
    // hpke's P-256 public key parser performs the on-curve check.
    <crate::seal::Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
        .map_err(|_| CryptoError::InvalidKey("point is not on P-256"))?;
    let mut point = [0u8; SEC1_UNCOMPRESSED_LEN];
    point.copy_from_slice(bytes);
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_encodings_round_trip() {
        let k = SigningKey::generate().unwrap();
        let vk = k.verifying_key();
        let sig = k.sign(b"hello").unwrap();
        vk.verify(b"hello", &sig).unwrap();
        assert_eq!(
            vk.verify(b"hellp", &sig).unwrap_err().code(),
            "crypto.bad_signature"
        );
        let pem = vk.to_spki_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
        assert_eq!(VerifyingKey::from_spki_pem(&pem).unwrap(), vk);
        assert_eq!(VerifyingKey::from_sec1(&vk.to_sec1()).unwrap(), vk);
        let again = SigningKey::from_pkcs8_der(&k.to_pkcs8_der()).unwrap();
        assert_eq!(again.verifying_key(), vk);
        assert_eq!(vk.fingerprint().len(), 16);
    }

    #[test]
    fn off_curve_and_wrong_length_points_are_refused() {
        let mut p = SigningKey::generate().unwrap().verifying_key().to_sec1();
        p[64] ^= 1;
        assert_eq!(
            VerifyingKey::from_sec1(&p).unwrap_err().code(),
            "crypto.invalid_key"
        );
        assert_eq!(
            VerifyingKey::from_sec1(&p[..33]).unwrap_err().code(),
            "crypto.invalid_key"
        );
        assert!(SigningKey::from_pkcs8_der(b"not a key").is_err());
    }
}
