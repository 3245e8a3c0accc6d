//! At-rest envelope: `RKE1 || version || AES-256-GCM(nonce || ct || tag)` bound to a storage location.

use zeroize::Zeroizing;

use crate::keyring::Keyring;
use crate::symmetric::{NONCE_LEN, TAG_LEN};
use crate::CryptoError;

/// Magic bytes opening every at-rest blob.
pub const AT_REST_MAGIC: &[u8; 4] = b"RKE1";
/// Header length: magic (4) + key version (4, big-endian).
pub const AT_REST_HEADER_LEN: usize = 8;

/// Encrypts `plaintext` under the keyring's active at-rest key.
///
/// Output: `b"RKE1" || version (u32 BE) || nonce (12) || ciphertext || tag (16)`.
/// AAD: the 8 header bytes followed by the UTF-8 bytes of `location`
/// (e.g. `persons/000000000000017/individual_number`), so a blob copied to another
/// record or field, or relabelled with another key version, fails to decrypt.
pub fn encrypt_at_rest(
    ring: &Keyring,
    location: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (version, key) = ring.data_key();
    let header = header(version);
    let body = key.encrypt(&aad(&header, location), plaintext)?;
    let mut out = Vec::with_capacity(AT_REST_HEADER_LEN + body.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a blob from [`encrypt_at_rest`] stored at `location`, with whichever
/// non-retired at-rest key version its header names.
pub fn decrypt_at_rest(
    ring: &Keyring,
    location: &str,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let min = AT_REST_HEADER_LEN + NONCE_LEN + TAG_LEN;
    if blob.len() < min {
        return Err(CryptoError::Truncated {
            what: "at-rest blob",
            min,
            got: blob.len(),
        });
    }
    let version = at_rest_key_version(blob)
        .ok_or_else(|| CryptoError::malformed("at-rest blob", "missing RKE1 magic"))?;
    let key = ring
        .data_key_version(version)
        .ok_or(CryptoError::UnknownKeyVersion {
            purpose: "at-rest",
            version,
        })?;
    let (header, body) = blob.split_at(AT_REST_HEADER_LEN);
    key.decrypt(&aad(header, location), body)
}

/// The key version named in an at-rest blob's header, or `None` if it is not one.
pub fn at_rest_key_version(blob: &[u8]) -> Option<u32> {
    let rest = blob.strip_prefix(&AT_REST_MAGIC[..])?;
    let v: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(v))
}

fn header(version: u32) -> [u8; AT_REST_HEADER_LEN] {
    let mut h = [0u8; AT_REST_HEADER_LEN];
    h[..4].copy_from_slice(AT_REST_MAGIC);
    h[4..].copy_from_slice(&version.to_be_bytes());
    h
}

fn aad(header: &[u8], location: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + location.len());
    a.extend_from_slice(header);
    a.extend_from_slice(location.as_bytes());
    a
}
