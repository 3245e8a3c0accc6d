//! HPKE (RFC 9180) base mode: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.

use aws_lc_rs::agreement;
use hpke::{Kem as _, Serializable as _};
use zeroize::Zeroizing;

use crate::hpke_schedule::{extract_and_expand, KeySchedule, N_SECRET, N_T};
use crate::sign::{fingerprint, SEC1_UNCOMPRESSED_LEN};
use crate::CryptoError;

/// KEM 0x0010: DHKEM(P-256, HKDF-SHA256). The `hpke` crate is kept for key generation
/// (RFC 9180 `DeriveKeyPair`), point validation and, in tests, as the reference
/// implementation the ring-based seal and single-multiplication open are checked against.
pub(crate) type Kem = hpke::kem::DhP256HkdfSha256;
/// KDF 0x0001: HKDF-SHA256 (reference implementation, tests only).
#[cfg(test)]
pub(crate) type Kdf = hpke::kdf::HkdfSha256;
/// AEAD 0x0002: AES-256-GCM (reference implementation, tests only).
#[cfg(test)]
pub(crate) type Aead = hpke::aead::AesGcm256;

/// Length of a P-256 private scalar.
const SCALAR_LEN: usize = 32;
/// SEC1 tag of an uncompressed point (`0x04 || X || Y`).
const SEC1_UNCOMPRESSED_TAG: u8 = 0x04;

/// An HPKE recipient private key (a P-256 scalar) with its public key computed once at
/// load, so that opening needs a single scalar multiplication. Zeroized on drop; no `Debug`.
pub struct OpeningKey {
    /// The scalar as aws-lc holds it, for `DH(skR, pkE)`; aws-lc scrubs it when the key
    /// is freed on drop.
    sk: agreement::PrivateKey,
    /// The 32-byte big-endian scalar (RFC 9180 `SerializePrivateKey`), for the keyring.
    scalar: Zeroizing<[u8; SCALAR_LEN]>,
    /// `pkRm`, part of every KEM context; cached so `open` does not recompute `sk·G`.
    pk: SealingPublicKey,
}

impl OpeningKey {
    /// Generates a fresh recipient key pair (RFC 9180 `GenerateKeyPair`).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut rng = crate::rng::SeededRng::new()?;
        let (sk, _) = Kem::gen_keypair(&mut rng);
        Self::from_bytes(&Zeroizing::new(sk.to_bytes()))
    }

    /// Loads a key from its 32-byte big-endian scalar (RFC 9180 `SerializePrivateKey`).
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let scalar: [u8; SCALAR_LEN] = b
            .try_into()
            .map_err(|_| CryptoError::InvalidKey("an HPKE P-256 private key is 32 bytes"))?;
        let scalar = Zeroizing::new(scalar);
        // aws-lc refuses 0 and values ≥ the group order n.
        let sk = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, scalar.as_ref())
            .map_err(|_| CryptoError::InvalidKey("scalar out of range for P-256"))?;
        let public = sk
            .compute_public_key()
            .map_err(|_| CryptoError::InvalidKey("scalar out of range for P-256"))?;
        let point: [u8; SEC1_UNCOMPRESSED_LEN] = public
            .as_ref()
            .try_into()
            .map_err(|_| CryptoError::InvalidKey("scalar out of range for P-256"))?;
        Ok(OpeningKey {
            sk,
            scalar,
            pk: SealingPublicKey { point },
        })
    }

    /// The 32-byte scalar.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.scalar.to_vec())
    }

    /// The matching public key.
    pub fn public_key(&self) -> SealingPublicKey {
        self.pk.clone()
    }

    /// Opens a sealed message (RFC 9180 `OpenBase`, sequence number 0).
    ///
    /// One scalar multiplication (`DH(skR, pkE)`, aws-lc's P-256); `pkRm` for the KEM
    /// context is the cached public key.
    pub fn open(
        &self,
        sealed: &Sealed,
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // Uncompressed only: aws-lc would also parse compressed and hybrid (0x06/0x07,
        // also 65 bytes) encodings, which RFC 9180 `DeserializePublicKey` does not allow.
        if sealed.enc.len() != SEC1_UNCOMPRESSED_LEN || sealed.enc[0] != SEC1_UNCOMPRESSED_TAG {
            return Err(CryptoError::malformed(
                "HPKE enc",
                "expected a 65-byte uncompressed P-256 point",
            ));
        }
        if sealed.ciphertext.len() < N_T {
            return Err(CryptoError::Truncated {
                what: "HPKE ciphertext",
                min: N_T,
                got: sealed.ciphertext.len(),
            });
        }
        // aws-lc checks that pkE is on the curve (the identity has no 65-byte encoding);
        // skR is non-zero mod the prime order, so the result is never the identity
        // (RFC 9180 §7.1.4). The DH output lives in a zeroizing buffer.
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &sealed.enc);
        let shared_secret = agreement::agree(
            &self.sk,
            peer,
            CryptoError::malformed("HPKE enc", "not a point on P-256"),
            |dh| extract_and_expand(dh, &sealed.enc, &self.pk.point).ok_or(CryptoError::Decrypt),
        )?;
        KeySchedule::base(&shared_secret, info)
            .and_then(|ks| ks.open(aad, &sealed.ciphertext))
            .ok_or(CryptoError::Decrypt)
    }
}

/// An HPKE recipient public key: an uncompressed SEC1 P-256 point (65 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingPublicKey {
    point: [u8; SEC1_UNCOMPRESSED_LEN],
}

impl SealingPublicKey {
    /// Parses an uncompressed SEC1 point and checks that it lies on P-256.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        Ok(SealingPublicKey {
            point: crate::sign::validate_p256_point(b)?,
        })
    }

    /// The 65 SEC1 bytes (RFC 9180 `SerializePublicKey`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.point.to_vec()
    }

    /// First 16 hex characters of SHA-256 over the SEC1 bytes.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.point)
    }
}

/// The output of [`seal`]: the encapsulated ephemeral key and the AEAD ciphertext (with tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// `enc`: the sender's ephemeral public key, 65-byte uncompressed SEC1.
    pub enc: Vec<u8>,
    /// AES-256-GCM ciphertext followed by its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` to `pk` (RFC 9180 `SealBase`, sequence number 0).
///
/// The ephemeral key pair and `DH(skE, pkR)` come from ring's ECDH (`agree_ephemeral`);
/// ring draws the ephemeral scalar from the system RNG.
pub fn seal(
    pk: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    let rng = ring::rand::SystemRandom::new();
    let sk_e = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng)
        .map_err(|_| CryptoError::Rng)?;
    let enc = sk_e
        .compute_public_key()
        .map_err(|_| CryptoError::Encrypt)?;
    let enc: [u8; SEC1_UNCOMPRESSED_LEN] =
        enc.as_ref().try_into().map_err(|_| CryptoError::Encrypt)?;
    let peer = ring::agreement::UnparsedPublicKey::new(&ring::agreement::ECDH_P256, &pk.point);
    let mut dh = Zeroizing::new([0u8; N_SECRET]);
    let copied = ring::agreement::agree_ephemeral(sk_e, &peer, |z| {
        if z.len() == dh.len() {
            dh.copy_from_slice(z);
            true
        } else {
            false
        }
    })
    .map_err(|_| CryptoError::InvalidKey("point is not on P-256"))?;
    if !copied {
        return Err(CryptoError::Encrypt);
    }
    seal_with_dh(dh.as_ref(), &enc, pk, info, aad, plaintext)
}

/// Everything in `SealBase` after the DH: `ExtractAndExpand`, key schedule, AEAD.
fn seal_with_dh(
    dh: &[u8],
    enc: &[u8; SEC1_UNCOMPRESSED_LEN],
    pk: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    let shared_secret = extract_and_expand(dh, enc, &pk.point).ok_or(CryptoError::Encrypt)?;
    let ciphertext = KeySchedule::base(&shared_secret, info)
        .and_then(|ks| ks.seal(aad, plaintext))
        .ok_or(CryptoError::Encrypt)?;
    Ok(Sealed {
        enc: enc.to_vec(),
        ciphertext,
    })
}

/// [`seal`] with the ephemeral key derived from a caller-chosen RNG (RFC 9180
/// `GenerateKeyPair` = `DeriveKeyPair(random(32))`), so tests can feed the RFC vectors'
/// `ikmE`; the DH is the `p256` crate's, everything after it is [`seal_with_dh`].
#[cfg(test)]
pub(crate) fn seal_with_rng<R: hpke::rand_core::CryptoRng + hpke::rand_core::RngCore>(
    pk: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, CryptoError> {
    let (sk_e, pk_e) = Kem::gen_keypair(rng);
    let sk_e = p256::SecretKey::from_slice(&sk_e.to_bytes())
        .map_err(|_| CryptoError::InvalidKey("scalar out of range for P-256"))?;
    let pk_r = p256::PublicKey::from_sec1_bytes(&pk.point)
        .map_err(|_| CryptoError::InvalidKey("point is not on P-256"))?;
    let dh = p256::ecdh::diffie_hellman(sk_e.to_nonzero_scalar(), pk_r.as_affine());
    let mut enc = [0u8; SEC1_UNCOMPRESSED_LEN];
    enc.copy_from_slice(&pk_e.to_bytes());
    seal_with_dh(dh.raw_secret_bytes(), &enc, pk, info, aad, plaintext)
}

#[cfg(test)]
mod tests {
    //! RFC 9180 / CFRG test vectors, mode 0, KEM 0x0010, KDF 0x0001, AEAD 0x0001 and 0x0002.
    use super::*;
    use hpke::Deserializable as _;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vector {
        mode: u8,
        kem_id: u16,
        kdf_id: u16,
        aead_id: u16,
        info: String,
        #[serde(rename = "ikmE")]
        ikm_e: String,
        #[serde(rename = "pkEm")]
        pk_em: String,
        #[serde(rename = "skEm")]
        sk_em: String,
        #[serde(rename = "ikmR")]
        ikm_r: String,
        #[serde(rename = "pkRm")]
        pk_rm: String,
        #[serde(rename = "skRm")]
        sk_rm: String,
        enc: String,
        shared_secret: String,
        key: String,
        base_nonce: String,
        encryptions: Vec<Encryption>,
    }

    #[derive(Deserialize)]
    struct Encryption {
        aad: String,
        ct: String,
        nonce: String,
        pt: String,
    }

    /// Replays fixed bytes, so `Kem::gen_keypair` reproduces the vector's ephemeral key.
    struct ReplayRng(Vec<u8>);
    impl hpke::rand_core::RngCore for ReplayRng {
        fn next_u32(&mut self) -> u32 {
            unimplemented!()
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!()
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            assert!(dst.len() <= self.0.len(), "vector ikmE exhausted");
            let rest = self.0.split_off(dst.len());
            dst.copy_from_slice(&self.0);
            self.0 = rest;
        }
    }
    impl hpke::rand_core::CryptoRng for ReplayRng {}

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../tests/data/hpke_p256_sha256_vectors.json")).unwrap()
    }

    #[test]
    fn rfc9180_vectors_derive_keys_and_first_ciphertext() {
        let vs = vectors();
        assert!(
            vs.iter().any(|v| v.aead_id == 2),
            "fixture must hold the AES-256-GCM case"
        );
        for v in vs {
            assert_eq!((v.mode, v.kem_id, v.kdf_id), (0, 0x0010, 0x0001));
            // KEM: DeriveKeyPair(ikm) gives the vector's keys.
            let (sk_r, pk_r) = Kem::derive_keypair(&h(&v.ikm_r));
            assert_eq!(sk_r.to_bytes().to_vec(), h(&v.sk_rm));
            assert_eq!(pk_r.to_bytes().to_vec(), h(&v.pk_rm));
            let (sk_e, pk_e) = Kem::derive_keypair(&h(&v.ikm_e));
            assert_eq!(sk_e.to_bytes().to_vec(), h(&v.sk_em));
            assert_eq!(pk_e.to_bytes().to_vec(), h(&v.pk_em));

            let recipient = OpeningKey::from_bytes(&h(&v.sk_rm)).unwrap();
            assert_eq!(recipient.public_key().to_bytes(), h(&v.pk_rm));
            let first = &v.encryptions[0];
            // Our seal with the vector's ephemeral randomness reproduces enc and ct exactly
            // (only meaningful for our own suite, AES-256-GCM).
            if v.aead_id == 2 {
                let sealed = seal_with_rng(
                    &recipient.public_key(),
                    &h(&v.info),
                    &h(&first.aad),
                    &h(&first.pt),
                    &mut ReplayRng(h(&v.ikm_e)),
                )
                .unwrap();
                assert_eq!(sealed.enc, h(&v.enc));
                assert_eq!(hex::encode(&sealed.ciphertext), first.ct);
                let sealed_v = Sealed {
                    enc: h(&v.enc),
                    ciphertext: h(&first.ct),
                };
                let pt = recipient
                    .open(&sealed_v, &h(&v.info), &h(&first.aad))
                    .unwrap();
                assert_eq!(pt.as_slice(), h(&first.pt).as_slice());
                // Wrong AAD is refused.
                let err = recipient
                    .open(&sealed_v, &h(&v.info), b"other")
                    .unwrap_err();
                assert_eq!(err.code(), "crypto.decrypt_failed");
            }
        }
    }

    #[test]
    fn rfc9180_vectors_later_sequence_numbers_via_context() {
        // Later encryptions (seq > 0) check the key schedule's base_nonce XOR seq.
        for v in vectors().into_iter().filter(|v| v.aead_id == 2) {
            let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(&v.sk_rm)).unwrap();
            let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(&v.enc)).unwrap();
            let mut ctx = hpke::setup_receiver::<Aead, Kdf, Kem>(
                &hpke::OpModeR::Base,
                &sk,
                &enc,
                &h(&v.info),
            )
            .unwrap();
            let mut last_nonce = String::new();
            // The fixture keeps the first three and the last of the 257 encryptions; a
            // receiver context only moves forward one open at a time, so the contiguous
            // prefix (sequence numbers 0, 1, 2) is what is checked here.
            for e in v.encryptions.iter().take(3) {
                let pt = ctx.open(&h(&e.ct), &h(&e.aad)).unwrap();
                assert_eq!(pt, h(&e.pt));
                assert_ne!(e.nonce, last_nonce);
                last_nonce = e.nonce.clone();
            }
        }
    }

    #[test]
    fn rfc9180_vectors_extract_and_expand_key_schedule_and_aead() {
        use crate::hpke_schedule::{decrypt, encrypt, N_N};
        let vs = vectors();
        for v in &vs {
            // DH both ways with the p256 crate (the recipient side of `open`).
            let sk_e = p256::SecretKey::from_slice(&h(&v.sk_em)).unwrap();
            let sk_r = p256::SecretKey::from_slice(&h(&v.sk_rm)).unwrap();
            let pk_r = p256::PublicKey::from_sec1_bytes(&h(&v.pk_rm)).unwrap();
            let pk_e = p256::PublicKey::from_sec1_bytes(&h(&v.enc)).unwrap();
            let dh_s = p256::ecdh::diffie_hellman(sk_e.to_nonzero_scalar(), pk_r.as_affine());
            let dh_r = p256::ecdh::diffie_hellman(sk_r.to_nonzero_scalar(), pk_e.as_affine());
            assert_eq!(dh_s.raw_secret_bytes(), dh_r.raw_secret_bytes());
            // The KEM does not depend on the AEAD: both vectors check ExtractAndExpand.
            let ss = extract_and_expand(dh_r.raw_secret_bytes(), &h(&v.enc), &h(&v.pk_rm)).unwrap();
            assert_eq!(hex::encode(ss.as_ref()), v.shared_secret);
            if v.aead_id != 2 {
                continue;
            }
            let ks = KeySchedule::base(&ss, &h(&v.info)).unwrap();
            assert_eq!(hex::encode(ks.key()), v.key);
            assert_eq!(hex::encode(ks.base_nonce()), v.base_nonce);
            // The fixture keeps sequence numbers 0, 1, 2 and 256; nonce = base_nonce XOR seq.
            assert_eq!(v.encryptions.len(), 4);
            for (e, seq) in v.encryptions.iter().zip([0u64, 1, 2, 256]) {
                let mut nonce = *ks.base_nonce();
                for (n, s) in nonce[N_N - 8..].iter_mut().zip(seq.to_be_bytes()) {
                    *n ^= s;
                }
                assert_eq!(hex::encode(nonce), e.nonce, "seq {seq}");
                let ct = encrypt(ks.key(), &nonce, &h(&e.aad), &h(&e.pt)).unwrap();
                assert_eq!(hex::encode(&ct), e.ct, "seq {seq}");
                let pt = decrypt(ks.key(), &nonce, &h(&e.aad), &ct).unwrap();
                assert_eq!(pt.as_slice(), h(&e.pt).as_slice());
            }
            // Sequence number 0 through the single-shot context calls.
            let first = &v.encryptions[0];
            let ct = ks.seal(&h(&first.aad), &h(&first.pt)).unwrap();
            assert_eq!(hex::encode(&ct), first.ct);
            assert_eq!(
                ks.open(&h(&first.aad), &ct).unwrap().as_slice(),
                h(&first.pt).as_slice()
            );
            assert!(ks.open(b"Count-1", &ct).is_none());
            assert!(ks.open(&h(&first.aad), &ct[..15]).is_none());
        }
    }

    /// Deterministic payload of `len` bytes that differs per size.
    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + len) as u8).collect()
    }

    #[test]
    fn ring_seal_and_single_dh_open_interoperate_with_the_hpke_crate() {
        let info = b"renkei/v1/InquiryRequest";
        let aad = b"msg-0001";
        for _ in 0..3 {
            let k = OpeningKey::generate().unwrap();
            let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&k.to_bytes()).unwrap();
            let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&k.public_key().to_bytes()).unwrap();
            assert_eq!(Kem::sk_to_pk(&sk).to_bytes(), pk.to_bytes());
            for len in [0usize, 1, 2048, 65536] {
                let pt = payload(len);
                // New seal (ring) → reference open (hpke crate).
                let s = seal(&k.public_key(), info, aad, &pt).unwrap();
                assert_eq!((s.enc.len(), s.ciphertext.len()), (65, len + 16));
                let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s.enc).unwrap();
                let opened = hpke::single_shot_open::<Aead, Kdf, Kem>(
                    &hpke::OpModeR::Base,
                    &sk,
                    &enc,
                    info,
                    &s.ciphertext,
                    aad,
                )
                .unwrap();
                assert_eq!(opened, pt, "len {len}");
                assert!(hpke::single_shot_open::<Aead, Kdf, Kem>(
                    &hpke::OpModeR::Base,
                    &sk,
                    &enc,
                    info,
                    &s.ciphertext,
                    b"msg-0002",
                )
                .is_err());
                // Reference seal (hpke crate) → new open (one DH, cached pkR).
                let mut rng = crate::rng::SeededRng::new().unwrap();
                let (enc, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
                    &hpke::OpModeS::Base,
                    &pk,
                    info,
                    &pt,
                    aad,
                    &mut rng,
                )
                .unwrap();
                let mut r = Sealed {
                    enc: enc.to_bytes().to_vec(),
                    ciphertext,
                };
                assert_eq!(k.open(&r, info, aad).unwrap().as_slice(), pt.as_slice());
                // And our own round trip, then a flipped tag bit is refused.
                assert_eq!(k.open(&s, info, aad).unwrap().as_slice(), pt.as_slice());
                let last = r.ciphertext.len() - 1;
                r.ciphertext[last] ^= 0x80;
                assert_eq!(
                    k.open(&r, info, aad).unwrap_err().code(),
                    "crypto.decrypt_failed"
                );
            }
        }
    }

    #[test]
    fn loaded_keys_cache_the_public_key_and_empty_plaintext_seals() {
        // A key loaded from bytes carries the same pkR as the hpke crate derives.
        let k = OpeningKey::generate().unwrap();
        let loaded = OpeningKey::from_bytes(&k.to_bytes()).unwrap();
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(
            loaded.pk.point.to_vec(),
            Kem::sk_to_pk(&sk).to_bytes().to_vec()
        );
        assert_eq!(loaded.to_bytes().as_slice(), k.to_bytes().as_slice());
        // Scalar n - 1 (largest valid) loads; n is refused.
        let n_minus_1 = h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550");
        assert!(OpeningKey::from_bytes(&n_minus_1).is_ok());
        let n = h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        assert_eq!(
            OpeningKey::from_bytes(&n).err().map(|e| e.code()),
            Some("crypto.invalid_key")
        );
        assert_eq!(
            OpeningKey::from_bytes(&[1u8; 31]).err().map(|e| e.code()),
            Some("crypto.invalid_key")
        );
        // Empty plaintext seals to a bare tag and opens.
        let s = seal(&loaded.public_key(), b"", b"", b"").unwrap();
        assert_eq!(s.ciphertext.len(), 16);
        assert!(k.open(&s, b"", b"").unwrap().is_empty());
    }

    #[test]
    fn open_refuses_enc_that_is_not_an_uncompressed_curve_point() {
        let k = OpeningKey::generate().unwrap();
        let s = seal(&k.public_key(), b"info", b"aad", b"secret").unwrap();
        // Hybrid encoding (0x06/0x07 || X || Y, also 65 bytes) of the very same point:
        // aws-lc would parse it, RFC 9180 does not allow it.
        let y_odd = s.enc[64] & 1 == 1;
        let mut hybrid = s.clone();
        hybrid.enc[0] = if y_odd { 0x07 } else { 0x06 };
        assert_eq!(
            k.open(&hybrid, b"info", b"aad").unwrap_err().code(),
            "crypto.malformed"
        );
        // Compressed (33 bytes) and a point off the curve.
        let mut compressed = s.clone();
        compressed.enc = [&[if y_odd { 0x03 } else { 0x02 }], &s.enc[1..33]].concat();
        assert_eq!(
            k.open(&compressed, b"info", b"aad").unwrap_err().code(),
            "crypto.malformed"
        );
        let mut off = s.clone();
        off.enc[64] ^= 0x01;
        assert_eq!(
            k.open(&off, b"info", b"aad").unwrap_err().code(),
            "crypto.malformed"
        );
        // The genuine enc still opens.
        assert_eq!(k.open(&s, b"info", b"aad").unwrap().as_slice(), b"secret");
    }

    #[test]
    fn seal_open_round_trip_and_refusals() {
        let k = OpeningKey::generate().unwrap();
        let s = seal(&k.public_key(), b"info", b"aad", b"secret").unwrap();
        assert_eq!(s.enc.len(), 65);
        assert_eq!(s.ciphertext.len(), 6 + 16);
        assert_eq!(k.open(&s, b"info", b"aad").unwrap().as_slice(), b"secret");
        assert_eq!(
            k.open(&s, b"infx", b"aad").unwrap_err().code(),
            "crypto.decrypt_failed"
        );
        let other = OpeningKey::generate().unwrap();
        assert_eq!(
            other.open(&s, b"info", b"aad").unwrap_err().code(),
            "crypto.decrypt_failed"
        );
        let mut t = s.clone();
        t.ciphertext.truncate(10);
        assert_eq!(
            k.open(&t, b"info", b"aad").unwrap_err().code(),
            "crypto.truncated"
        );
        let again = OpeningKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert_eq!(
            OpeningKey::from_bytes(&[0u8; 32]).err().map(|e| e.code()),
            Some("crypto.invalid_key")
        );
        assert_eq!(
            OpeningKey::from_bytes(&[0xffu8; 32])
                .err()
                .map(|e| e.code()),
            Some("crypto.invalid_key")
        );
    }
}
