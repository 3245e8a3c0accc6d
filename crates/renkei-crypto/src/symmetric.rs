//! Symmetric primitives: AES-256-GCM data keys and HMAC-SHA256 blind-index keys.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::CryptoError;

/// AES-256 key length.
pub(crate) const KEY_LEN: usize = 32;
/// AES-GCM nonce length (96 bits, the only size NIST SP 800-38D recommends).
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length (128 bits, full length).
pub(crate) const TAG_LEN: usize = 16;

/// An AES-256-GCM key for data at rest. Zeroized on drop; no `Debug`.
///
/// Nonces are 96-bit random values: with the NIST limit of 2^32 messages per key
/// under random nonces, keys are meant to be rotated long before (see keyring).
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    cipher: Aes256Gcm,
}

impl DataKey {
    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let b = crate::rng::random_array::<KEY_LEN>()?;
        Self::from_bytes(b.as_ref())
    }

    /// Loads a 32-byte key.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != KEY_LEN {
            return Err(CryptoError::InvalidKey("an AES-256 key is 32 bytes"));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(b);
        let cipher = Aes256Gcm::new_from_slice(b)
            .map_err(|_| CryptoError::InvalidKey("an AES-256 key is 32 bytes"))?;
        Ok(DataKey { bytes, cipher })
    }

    /// The raw 32 key bytes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.bytes.to_vec())
    }

    /// Encrypts: returns `nonce (12) || ciphertext || tag (16)`.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = crate::rng::random_array::<NONCE_LEN>()?;
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(nonce.as_ref()),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a blob produced by [`DataKey::encrypt`] with the same `aad`.
    pub fn decrypt(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Truncated {
                what: "AES-GCM blob",
                min: NONCE_LEN + TAG_LEN,
                got: blob.len(),
            });
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// An HMAC-SHA256 key for blind indexes (searchable keyed hashes of personal data).
/// Zeroized on drop; no `Debug`.
pub struct BlindIndexKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    key: ring::hmac::Key,
}

impl BlindIndexKey {
    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let b = crate::rng::random_array::<KEY_LEN>()?;
        Self::from_bytes(b.as_ref())
    }

    /// Loads a 32-byte key.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != KEY_LEN {
            return Err(CryptoError::InvalidKey("a blind-index key is 32 bytes"));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(b);
        Ok(BlindIndexKey {
            bytes,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b),
        })
    }

    /// The raw 32 key bytes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.bytes.to_vec())
    }

    /// HMAC-SHA256(key, data).
    pub fn index(&self, data: &[u8]) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.key, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_round_trip_and_refusals() {
        let k = DataKey::generate().unwrap();
        let blob = k.encrypt(b"aad", b"plain").unwrap();
        assert_eq!(blob.len(), 12 + 5 + 16);
        assert_eq!(k.decrypt(b"aad", &blob).unwrap().as_slice(), b"plain");
        assert_eq!(
            k.decrypt(b"aae", &blob).unwrap_err().code(),
            "crypto.decrypt_failed"
        );
        assert_eq!(
            k.decrypt(b"aad", &blob[..27]).unwrap_err().code(),
            "crypto.truncated"
        );
        let other = DataKey::generate().unwrap();
        assert_eq!(
            other.decrypt(b"aad", &blob).unwrap_err().code(),
            "crypto.decrypt_failed"
        );
        assert_ne!(
            blob,
            k.encrypt(b"aad", b"plain").unwrap(),
            "nonces must be fresh"
        );
        assert_eq!(
            DataKey::from_bytes(&[1; 16]).err().map(|e| e.code()),
            Some("crypto.invalid_key")
        );
    }

    #[test]
    fn blind_index_is_hmac_sha256_golden() {
        // HMAC-SHA256 over "abc" with key 0x00..0x1f, computed independently with
        // `openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f`.
        let key: Vec<u8> = (0u8..32).collect();
        let k = BlindIndexKey::from_bytes(&key).unwrap();
        assert_eq!(
            hex::encode(k.index(b"abc")),
            "f0133729c4163dede81e21cd47839256da58171238c8a0d874397c73b14e1e47"
        );
    }
}
