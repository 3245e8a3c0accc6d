//! Message envelope helpers: the `Renkei-Signature` HTTP header and HPKE sealing of personal data.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::{seal, CryptoError, OpeningKey, Sealed, SealingPublicKey, SigningKey, VerifyingKey};

/// Name of the HTTP header carrying the detached body signature.
pub const SIGNATURE_HEADER_NAME: &str = "Renkei-Signature";
/// The only signature algorithm name.
pub const SIGNATURE_ALG: &str = "ecdsa-p256-sha256";
/// Prefix of the HPKE `info` for sealed personal data; the message type name follows.
pub const SEAL_INFO_PREFIX: &[u8] = b"renkei/v1/";
/// Longest DER ECDSA P-256 signature: SEQUENCE(2+) of two INTEGERs of up to 33 bytes each.
const MAX_DER_SIG_LEN: usize = 72;
/// Shortest DER ECDSA signature (two one-byte INTEGERs).
const MIN_DER_SIG_LEN: usize = 8;
/// Longest accepted message type name (it is an identifier such as "InquiryRequest").
const MAX_MESSAGE_TYPE_LEN: usize = 64;

/// A parsed `Renkei-Signature` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The signing agency's 16-character 機関コード.
    pub agency: String,
    /// The signing key's version in the agency's keyring.
    pub version: u32,
    /// The ASN.1 DER signature.
    pub sig: Vec<u8>,
}

impl SignatureHeader {
    /// Parses a header value strictly:
    /// `v=1; agency=<16 chars>; key=<version>; alg=ecdsa-p256-sha256; sig=<base64>` —
    /// fields in this order, separated by exactly "; ", no other whitespace, version a
    /// decimal without leading zeros and ≥ 1, signature standard base64 with padding.
    pub fn parse(h: &str) -> Result<Self, CryptoError> {
        let bad = |reason: &str| CryptoError::malformed("Renkei-Signature header", reason);
        let parts: Vec<&str> = h.split("; ").collect();
        let [v, agency, key, alg, sig] = parts.as_slice() else {
            return Err(bad("expected 5 fields separated by \"; \""));
        };
        let value = |s: &str, name: &str| -> Result<String, CryptoError> {
            s.strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("expected field {name}")))
        };
        if value(v, "v")? != "1" {
            return Err(bad("unsupported version (expected v=1)"));
        }
        let agency = value(agency, "agency")?;
        renkei_ids::AgencyCode::parse(&agency)
            .map_err(|_| bad("agency is not a 16-character agency code"))?;
        let key = value(key, "key")?;
        if key.is_empty()
            || key.len() > 10
            || key.starts_with('0')
            || !key.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad(
                "key must be a decimal version ≥ 1 without leading zeros",
            ));
        }
        let version: u32 = key.parse().map_err(|_| bad("key version out of range"))?;
        if value(alg, "alg")? != SIGNATURE_ALG {
            return Err(bad("unsupported alg (expected ecdsa-p256-sha256)"));
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(value(sig, "sig")?)
            .map_err(|_| bad("sig is not standard padded base64"))?;
        if !(MIN_DER_SIG_LEN..=MAX_DER_SIG_LEN).contains(&sig.len()) {
            return Err(bad(
                "sig has an impossible length for a DER P-256 signature",
            ));
        }
        Ok(SignatureHeader {
            agency,
            version,
            sig,
        })
    }

    /// Verifies the header's signature over the exact HTTP body bytes.
    pub fn verify(&self, key: &VerifyingKey, body: &[u8]) -> Result<(), CryptoError> {
        key.verify(body, &self.sig)
    }
}

impl std::fmt::Display for SignatureHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "v=1; agency={}; key={}; alg={SIGNATURE_ALG}; sig={}",
            self.agency,
            self.version,
            base64::engine::general_purpose::STANDARD.encode(&self.sig)
        )
    }
}

/// Signs `body` and returns the `Renkei-Signature` header value.
pub fn signature_header(
    agency: &str,
    version: u32,
    key: &SigningKey,
    body: &[u8],
) -> Result<String, CryptoError> {
    renkei_ids::AgencyCode::parse(agency).map_err(|_| {
        CryptoError::malformed("agency code", "expected 16 upper-case letters or digits")
    })?;
    if version == 0 {
        return Err(CryptoError::malformed("key version", "versions start at 1"));
    }
    let sig = key.sign(body)?;
    Ok(SignatureHeader {
        agency: agency.to_string(),
        version,
        sig,
    }
    .to_string())
}

/// The HPKE info for a message type: `b"renkei/v1/" || message_type`.
fn info(message_type: &str) -> Result<Vec<u8>, CryptoError> {
    if message_type.is_empty()
        || message_type.len() > MAX_MESSAGE_TYPE_LEN
        || !message_type.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(CryptoError::malformed(
            "message type",
            "expected 1-64 ASCII letters or digits",
        ));
    }
    let mut i = SEAL_INFO_PREFIX.to_vec();
    i.extend_from_slice(message_type.as_bytes());
    Ok(i)
}

/// Seals personal data for a message: info = `renkei/v1/<message_type>`, aad = `message_id` (UTF-8).
pub fn seal_for(
    pk: &SealingPublicKey,
    message_type: &str,
    message_id: &str,
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    seal(pk, &info(message_type)?, message_id.as_bytes(), plaintext)
}

/// Opens what [`seal_for`] sealed; the message type and id must match.
pub fn open_from(
    key: &OpeningKey,
    message_type: &str,
    message_id: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    key.open(sealed, &info(message_type)?, message_id.as_bytes())
}
