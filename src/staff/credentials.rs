//! The secrets of staff sign-in, and nothing else: argon2id password hashes, TOTP codes
//! (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits) over base32 secrets, and session tokens
//! (256 random bits, of which only the SHA-256 is ever stored). No function here logs or
//! returns a secret inside an error.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Seconds per TOTP step (RFC 6238's default, what every authenticator app uses).
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a TOTP code.
pub const TOTP_DIGITS: u32 = 6;
/// Bytes of a TOTP secret: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends.
const TOTP_SECRET_BYTES: usize = 20;
/// Bytes of a session token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// What every session token starts with (so a scan or a secret scanner can spot one).
pub const TOKEN_PREFIX: &str = "rks_";
/// Characters of a generated first-login password.
const PASSWORD_LEN: usize = 20;
/// A generated password's alphabet: no look-alikes (0/O, 1/l/I).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// The shortest password a user may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Why a secret could not be made or checked (no secret inside).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the system random number generator failed")]
    Random,
    #[error("a stored password hash is malformed")]
    BadHash,
    #[error("a stored TOTP secret is malformed")]
    BadSecret,
}

fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CredentialError::Random)?;
    Ok(b)
}

/// The argon2id hash (PHC string, default parameters: 19 MiB, 2 passes) of `password`.
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    let salt = random(16)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| CredentialError::Random)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CredentialError::BadHash)
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, CredentialError> {
    let parsed = PasswordHash::new(hash).map_err(|_| CredentialError::BadHash)?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A new random first-login password.
pub fn generate_password() -> Result<Zeroizing<String>, CredentialError> {
    let bytes = random(PASSWORD_LEN)?;
    Ok(Zeroizing::new(
        bytes
            .iter()
            .map(|b| PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()] as char)
            .collect(),
    ))
}

/// A new TOTP secret, base32 without padding (what `otpauth://` URIs carry).
pub fn generate_totp_secret() -> Result<Zeroizing<String>, CredentialError> {
    Ok(Zeroizing::new(
        data_encoding::BASE32_NOPAD.encode(&random(TOTP_SECRET_BYTES)?),
    ))
}

/// The TOTP step of a time in milliseconds.
pub fn totp_step(now_ms: u64) -> u64 {
    now_ms / 1000 / TOTP_STEP_SECS
}

/// The code of `step` for the base32 `secret` (RFC 4226 dynamic truncation).
pub fn totp_code(secret: &str, step: u64) -> Result<u32, CredentialError> {
    let key = Zeroizing::new(
        data_encoding::BASE32_NOPAD
            .decode(secret.trim_end_matches('=').as_bytes())
            .map_err(|_| CredentialError::BadSecret)?,
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let m = mac.as_ref();
    let off = usize::from(m[m.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([m[off] & 0x7f, m[off + 1], m[off + 2], m[off + 3]]);
    Ok(bin % 10u32.pow(TOTP_DIGITS))
}

/// The step (`now`'s, or one either side for clock skew) whose code `code` is, if any.
pub fn totp_match(secret: &str, code: &str, now_ms: u64) -> Result<Option<u64>, CredentialError> {
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let Ok(given) = code.parse::<u32>() else {
        return Ok(None);
    };
    let now = totp_step(now_ms);
    for step in [now.saturating_sub(1), now, now + 1] {
        if totp_code(secret, step)? == given {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

/// A new session token (`rks_` and 256 random bits in base64url).
pub fn generate_token() -> Result<Zeroizing<String>, CredentialError> {
    use base64::Engine;
    let b = random(TOKEN_BYTES)?;
    Ok(Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
    )))
}

/// The SHA-256 of a token, in hex: the only form a token is kept in.
pub fn token_digest(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the secret is ASCII "12345678901234567890"; the
    /// 8-digit codes' last six digits are the 6-digit codes.
    #[test]
    fn totp_matches_rfc6238_vectors() {
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, code) in [
            (59u64, 287_082u32),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(totp_code(&secret, t / 30).unwrap(), code, "t={t}");
        }
    }

    #[test]
    fn totp_allows_one_step_of_skew_and_no_more() {
        let secret = generate_totp_secret().unwrap();
        let now = 1_800_000_000_000u64;
        let step = totp_step(now);
        for (s, ok) in [
            (step - 2, false),
            (step - 1, true),
            (step, true),
            (step + 1, true),
            (step + 2, false),
        ] {
            let code = format!("{:06}", totp_code(&secret, s).unwrap());
            assert_eq!(totp_match(&secret, &code, now).unwrap(), ok.then_some(s));
        }
        assert_eq!(totp_match(&secret, "12345", now).unwrap(), None);
        assert_eq!(totp_match(&secret, "abcdef", now).unwrap(), None);
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let pw = generate_password().unwrap();
        assert_eq!(pw.len(), PASSWORD_LEN);
        let h = hash_password(&pw).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &h).unwrap());
        assert!(!verify_password("not the password", &h).unwrap());
    }

    #[test]
    fn tokens_are_long_random_and_kept_only_as_a_digest() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(*a, *b);
        assert!(a.len() >= TOKEN_PREFIX.len() + 43);
        assert_eq!(token_digest(&a).len(), 64);
        assert!(!token_digest(&a).contains(&a[TOKEN_PREFIX.len()..]));
    }
}
