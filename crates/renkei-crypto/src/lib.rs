//! renkei-crypto: message security and key management for the renkei gateway.
//!
//! # What it does
//! - **Signatures**: ECDSA P-256 with SHA-256 (ring), ASN.1 DER signatures that
//!   `openssl dgst -sha256 -verify` accepts, carried detached over the exact HTTP body in
//!   a `Renkei-Signature` header ([`envelope`]).
//! - **Sealing personal data**: HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256),
//!   HKDF-SHA256, AES-256-GCM ([`seal`], [`envelope::seal_for`]).
//! - **Data at rest**: AES-256-GCM with random 96-bit nonces in a versioned `RKE1` blob bound
//!   to its storage location ([`at_rest`]).
//! - **Blind indexes**: HMAC-SHA256 ([`BlindIndexKey`]) so an individual number can be
//!   looked up without being stored in plaintext.
//! - **Keys**: a versioned [`keyring::Keyring`] with rotation and retirement, every private
//!   key sealed on disk under a [`keyring::MasterKey`] (file or Argon2id passphrase). The
//!   `checkpoint` purpose is a second ECDSA P-256 key, for linkage-record checkpoints only;
//!   [`Signer`] is the seam where an HSM-held key can later replace it.
//!
//! Every algorithm is on the CRYPTREC list of e-Government recommended ciphers (ECDSA
//! P-256, SHA-256, AES, GCM, HMAC; HKDF is HMAC-based). The byte formats are specified in
//! `docs/envelope.md` so a third party can interoperate.
//!
//! # What it deliberately does not do
//! - No other curves, hash functions or cipher modes: one suite, no negotiation.
//! - No HPKE auth/PSK modes and no multi-message contexts: one seal, one message.
//! - No logging: errors name the operation, purpose/version or file, never key bytes,
//!   plaintext or personal data. Secret types zeroize on drop and implement no `Debug`.
//! - Blind-index keys are not rotated (that needs a re-index of stored data).
//!
//! # Rationale for defaults
//! - Random 96-bit GCM nonces: no nonce state to persist or lose across restarts; safe
//!   for well under 2^32 messages per key, far beyond a city's volumes between rotations.
//! - HPKE over a hand-rolled ECIES: a published RFC with test vectors and independent
//!   implementations (the Python check in `tests/py` is one).
//! - HPKE speed: sealing does its ephemeral key and DH with ring's P-256 ECDH (assembly);
//!   opening does exactly one scalar multiplication (`DH(skR, pkE)`) with aws-lc-rs's
//!   static-key ECDH (ring cannot load a static ECDH key; aws-lc's assembly P-256 is several
//!   times faster than the pure-Rust `p256` crate used before), with `pkRm` computed once
//!   per [`OpeningKey`]. aws-lc-rs is a plain dependency here: rustls keeps ring as its
//!   only provider. `cargo bench -p renkei-crypto` measures the message path.
//!   The RFC 9180 key schedule and AEAD after the DH are shared (`hpke_schedule.rs`) and
//!   checked against the RFC vectors, the `hpke` crate (reference, in tests) and Python.
//! - Master key from a 0600 file or Argon2id (64 MiB, t = 3, p = 1, RFC 9106).
//!
//! # Secrets have no `Debug`
//! So that no key can reach a log line by accident, the secret types do not implement
//! `Debug`; each of these fails to compile (checked by the doc tests):
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::SigningKey>();
//! ```
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::OpeningKey>();
//! ```
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::DataKey>();
//! ```
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::BlindIndexKey>();
//! ```
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::keyring::MasterKey>();
//! ```
//! ```compile_fail
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::keyring::Keyring>();
//! ```
//! The public types, by contrast, do:
//! ```
//! fn debug<T: std::fmt::Debug>() {}
//! debug::<renkei_crypto::VerifyingKey>();
//! debug::<renkei_crypto::SealingPublicKey>();
//! debug::<renkei_crypto::Sealed>();
//! ```
#![forbid(unsafe_code)]

pub mod at_rest;
pub mod envelope;
mod error;
mod hpke_schedule;
pub mod keyring;
mod rng;
mod seal;
mod sign;
mod symmetric;

pub use error::CryptoError;
pub use seal::{seal, OpeningKey, Sealed, SealingPublicKey};
pub use sign::{Signer, SigningKey, VerifyingKey};
pub use symmetric::{BlindIndexKey, DataKey};
