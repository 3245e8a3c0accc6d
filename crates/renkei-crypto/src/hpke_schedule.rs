//! RFC 9180 base mode past the Diffie-Hellman step: DHKEM `ExtractAndExpand`, the key schedule and single-shot AES-256-GCM.
//!
//! Only the crate's one suite exists here — DHKEM(P-256, HKDF-SHA256) (KEM 0x0010),
//! HKDF-SHA256 (KDF 0x0001), AES-256-GCM (AEAD 0x0002) — in base mode with sequence
//! number 0, so the nonce is `base_nonce` itself. The scalar multiplications live in
//! `seal.rs` (ring for the sender, aws-lc-rs for the recipient); everything after
//! them is shared by both directions and checked against the RFC vectors.
//!
//! HMAC/HKDF come from ring; AES-256-GCM from the `aes-gcm` crate (its key schedule is
//! zeroized on drop). Every intermediate secret sits in a [`Zeroizing`] buffer.

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

/// `"HPKE-v1"`, prefixed to every labeled extract/expand input (RFC 9180 §4).
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// KEM suite id: `"KEM" || I2OSP(0x0010, 2)` (RFC 9180 §4.1).
const KEM_SUITE_ID: &[u8] = b"KEM\x00\x10";
/// HPKE suite id: `"HPKE" || I2OSP(0x0010, 2) || I2OSP(0x0001, 2) || I2OSP(0x0002, 2)` (§5.1).
const HPKE_SUITE_ID: &[u8] = b"HPKE\x00\x10\x00\x01\x00\x02";
/// `mode_base` (§5.1, Table 1).
const MODE_BASE: u8 = 0x00;
/// `Nsecret` of DHKEM(P-256, HKDF-SHA256).
pub(crate) const N_SECRET: usize = 32;
/// `Nh` of HKDF-SHA256.
const N_H: usize = 32;
/// `Nk` of AES-256-GCM.
pub(crate) const N_K: usize = 32;
/// `Nn` of AES-256-GCM.
pub(crate) const N_N: usize = 12;
/// `Nt` of AES-256-GCM.
pub(crate) const N_T: usize = 16;

/// `LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm)`.
///
/// HKDF-Extract is HMAC-SHA256 keyed by the salt; an empty salt is the same HMAC key as
/// `Nh` zero bytes (HMAC pads keys with zeros), which is what RFC 5869 prescribes.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; N_H]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    for part in [VERSION_LABEL, suite_id, label, ikm] {
        ctx.update(part);
    }
    let mut prk = Zeroizing::new([0u8; N_H]);
    prk.copy_from_slice(ctx.sign().as_ref());
    prk
}

/// An HKDF output length for ring's `Prk::expand`.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// `LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" ||
/// suite_id || label || info, L)`, with `info` given as pieces (no concatenation copy).
/// `L = out.len()`. `None` only for lengths HKDF cannot produce (never for this suite's
/// fixed sizes).
fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8; N_H],
    label: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(4 + info.len());
    parts.extend_from_slice(&[&len, VERSION_LABEL, suite_id, label]);
    parts.extend_from_slice(info);
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk);
    prk.expand(&parts, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .ok()
}

/// DHKEM `ExtractAndExpand(dh, kem_context)` with `kem_context = enc || pkRm` (§4.1):
/// the KEM shared secret from the raw DH output (the 32-byte x-coordinate).
pub(crate) fn extract_and_expand(
    dh: &[u8],
    enc: &[u8],
    pk_r: &[u8],
) -> Option<Zeroizing<[u8; N_SECRET]>> {
    let eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut shared_secret = Zeroizing::new([0u8; N_SECRET]);
    labeled_expand(
        KEM_SUITE_ID,
        &eae_prk,
        b"shared_secret",
        &[enc, pk_r],
        shared_secret.as_mut(),
    )?;
    Some(shared_secret)
}

/// The AEAD key and base nonce from the base-mode key schedule. Zeroized on drop; no `Debug`.
pub(crate) struct KeySchedule {
    key: Zeroizing<[u8; N_K]>,
    base_nonce: Zeroizing<[u8; N_N]>,
}

impl KeySchedule {
    /// `KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "")` (§5.1).
    pub(crate) fn base(shared_secret: &[u8; N_SECRET], info: &[u8]) -> Option<Self> {
        let psk_id_hash = labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info);
        // key_schedule_context = mode || psk_id_hash || info_hash
        let context: [&[u8]; 3] = [&[MODE_BASE], psk_id_hash.as_ref(), info_hash.as_ref()];
        // secret = LabeledExtract(shared_secret, "secret", psk) with the empty default psk.
        let secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; N_K]);
        labeled_expand(HPKE_SUITE_ID, &secret, b"key", &context, key.as_mut())?;
        let mut base_nonce = Zeroizing::new([0u8; N_N]);
        labeled_expand(
            HPKE_SUITE_ID,
            &secret,
            b"base_nonce",
            &context,
            base_nonce.as_mut(),
        )?;
        Some(KeySchedule { key, base_nonce })
    }

    /// `ContextS.Seal(aad, pt)` at sequence number 0: `ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        encrypt(&self.key, &self.base_nonce, aad, plaintext)
    }

    /// `ContextR.Open(aad, ct)` at sequence number 0. `None` if the tag does not verify.
    pub(crate) fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        decrypt(&self.key, &self.base_nonce, aad, ciphertext)
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8; N_K] {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn base_nonce(&self) -> &[u8; N_N] {
        &self.base_nonce
    }
}

/// AES-256-GCM encryption: `ciphertext || 16-byte tag`. `None` only past the GCM length limit.
pub(crate) fn encrypt(
    key: &[u8; N_K],
    nonce: &[u8; N_N],
    aad: &[u8],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let mut out = Vec::with_capacity(plaintext.len() + N_T);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out)
        .ok()?;
    out.extend_from_slice(&tag);
    Some(out)
}

/// AES-256-GCM decryption of `ciphertext || tag`; the plaintext only ever lives in a
/// zeroizing buffer. `None` if shorter than a tag or the tag does not verify.
pub(crate) fn decrypt(
    key: &[u8; N_K],
    nonce: &[u8; N_N],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let body_len = ciphertext.len().checked_sub(N_T)?;
    let (body, tag) = ciphertext.split_at(body_len);
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let mut out = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            out.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(out)
}
