//! HPKE (RFC 9180) base mode: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.

use hpke::{Deserializable as _, Kem as _, Serializable as _};
use zeroize::Zeroizing;

use crate::sign::{fingerprint, SEC1_UNCOMPRESSED_LEN};
use crate::CryptoError;

/// KEM 0x0010: DHKEM(P-256, HKDF-SHA256).
pub(crate) type Kem = hpke::kem::DhP256HkdfSha256;
/// KDF 0x0001: HKDF-SHA256.
pub(crate) type Kdf = hpke::kdf::HkdfSha256;
/// AEAD 0x0002: AES-256-GCM.
pub(crate) type Aead = hpke::aead::AesGcm256;

/// Length of an AES-GCM authentication tag.
const TAG_LEN: usize = 16;
/// Length of a P-256 private scalar.
const SCALAR_LEN: usize = 32;

/// An HPKE recipient private key (a P-256 scalar). Zeroized on drop; no `Debug`.
pub struct OpeningKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    pk: SealingPublicKey,
}

impl OpeningKey {
    /// Generates a fresh recipient key pair (RFC 9180 `GenerateKeyPair`).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut rng = crate::rng::SeededRng::new()?;
        let (sk, pk) = Kem::gen_keypair(&mut rng);
        Ok(Self::from_parts(sk, &pk))
    }

    fn from_parts(sk: <Kem as hpke::Kem>::PrivateKey, pk: &<Kem as hpke::Kem>::PublicKey) -> Self {
        let mut point = [0u8; SEC1_UNCOMPRESSED_LEN];
        point.copy_from_slice(&pk.to_bytes());
        OpeningKey {
            sk,
            pk: SealingPublicKey { point },
        }
    }

    /// Loads a key from its 32-byte big-endian scalar (RFC 9180 `SerializePrivateKey`).
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != SCALAR_LEN {
            return Err(CryptoError::InvalidKey(
                "an HPKE P-256 private key is 32 bytes",
            ));
        }
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(b)
            .map_err(|_| CryptoError::InvalidKey("scalar out of range for P-256"))?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self::from_parts(sk, &pk))
    }

    /// The 32-byte scalar.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.sk.to_bytes().to_vec())
    }

    /// The matching public key.
    pub fn public_key(&self) -> SealingPublicKey {
        self.pk.clone()
    }

    /// Opens a sealed message (RFC 9180 `OpenBase`, sequence number 0).
    pub fn open(
        &self,
        sealed: &Sealed,
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.enc.len() != SEC1_UNCOMPRESSED_LEN {
            return Err(CryptoError::malformed(
                "HPKE enc",
                "expected a 65-byte uncompressed P-256 point",
            ));
        }
        if sealed.ciphertext.len() < TAG_LEN {
            return Err(CryptoError::Truncated {
                what: "HPKE ciphertext",
                min: TAG_LEN,
                got: sealed.ciphertext.len(),
            });
        }
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
            .map_err(|_| CryptoError::malformed("HPKE enc", "not a point on P-256"))?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &hpke::OpModeR::Base,
            &self.sk,
            &enc,
            info,
            &sealed.ciphertext,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
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
pub fn seal(
    pk: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    let mut rng = crate::rng::SeededRng::new()?;
    seal_with_rng(pk, info, aad, plaintext, &mut rng)
}

/// [`seal`] with a caller-chosen RNG (tests feed the RFC vectors' `ikmE`).
pub(crate) fn seal_with_rng<R: hpke::rand_core::CryptoRng + hpke::rand_core::RngCore>(
    pk: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&pk.point)
        .map_err(|_| CryptoError::InvalidKey("point is not on P-256"))?;
    let (enc, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem, R>(
        &hpke::OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| CryptoError::Encrypt)?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

#[cfg(test)]
mod tests {
    //! RFC 9180 / CFRG test vectors, mode 0, KEM 0x0010, KDF 0x0001, AEAD 0x0001 and 0x0002.
    use super::*;
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
