//! Message envelope: the Renkei-Signature header (golden format, strict parsing) and seal_for/open_from.

use base64::Engine as _;
use renkei_crypto::envelope::{open_from, seal_for, signature_header, SignatureHeader};
use renkei_crypto::{OpeningKey, SigningKey};

const AGENCY: &str = "0112345678900000";

#[test]
fn header_has_the_documented_shape_and_verifies() {
    let key = SigningKey::generate().unwrap();
    let body = b"<InquiryRequest/>";
    let h = signature_header(AGENCY, 7, &key, body).unwrap();
    let prefix = "v=1; agency=0112345678900000; key=7; alg=ecdsa-p256-sha256; sig=";
    assert!(h.starts_with(prefix), "{h}");
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&h[prefix.len()..])
        .unwrap();
    assert_eq!(sig[0], 0x30, "DER SEQUENCE");
    let parsed = SignatureHeader::parse(&h).unwrap();
    assert_eq!(parsed.agency, AGENCY);
    assert_eq!(parsed.version, 7);
    assert_eq!(parsed.sig, sig);
    assert_eq!(parsed.to_string(), h);
    parsed.verify(&key.verifying_key(), body).unwrap();
    // One byte of body changed, or another key: refused.
    assert_eq!(
        parsed
            .verify(&key.verifying_key(), b"<InquiryRequest />")
            .unwrap_err()
            .code(),
        "crypto.bad_signature"
    );
    let other = SigningKey::generate().unwrap().verifying_key();
    assert_eq!(
        parsed.verify(&other, body).unwrap_err().code(),
        "crypto.bad_signature"
    );
    // A tampered signature byte (last byte of s) is refused.
    let mut t = parsed.clone();
    let n = t.sig.len() - 1;
    t.sig[n] ^= 0x01;
    assert_eq!(
        t.verify(&key.verifying_key(), body).unwrap_err().code(),
        "crypto.bad_signature"
    );
}

#[test]
fn header_parsing_is_strict() {
    let key = SigningKey::generate().unwrap();
    let good = signature_header(AGENCY, 1, &key, b"x").unwrap();
    let sig = good.rsplit_once("sig=").unwrap().1.to_string();
    let head = format!("v=1; agency={AGENCY}; key=1; alg=ecdsa-p256-sha256; sig=");
    // The padded standard encoding of the same bytes is accepted by the parser.
    let padded = format!(
        "{head}{}",
        base64::engine::general_purpose::STANDARD.encode([0xfb; 70])
    );
    assert!(padded.ends_with("=="));
    assert_eq!(SignatureHeader::parse(&padded).unwrap().sig, [0xfb; 70]);
    let bad = [
        String::new(),
        good.replace("; ", ";"),
        good.replace("v=1", "v=2"),
        good.replace("v=1; ", ""),
        good.replace("key=1", "key=01"),
        good.replace("key=1", "key=0"),
        good.replace("key=1", "key=4294967296"),
        good.replace("key=1", "key=+1"),
        good.replace("agency=0112345678900000", "agency=011234567890000a"),
        good.replace("agency=0112345678900000", "agency=011234567890000"),
        good.replace("alg=ecdsa-p256-sha256", "alg=ecdsa-p384-sha384"),
        good.replace("alg=ecdsa-p256-sha256; ", "") + "; alg=ecdsa-p256-sha256",
        format!("{good}; extra=1"),
        format!(" {good}"),
        // 70 bytes need "==" padding: unpadded and URL-safe alphabets are refused.
        format!(
            "{head}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode([0xfb; 70])
        ),
        format!(
            "{head}{}",
            base64::engine::general_purpose::URL_SAFE.encode([0xfb; 70])
        ),
        good.replace(&sig, "AAAA"),
        good.replace("agency=", "Agency="),
    ];
    for b in bad {
        let e = SignatureHeader::parse(&b)
            .err()
            .unwrap_or_else(|| panic!("accepted: {b:?}"));
        assert_eq!(e.code(), "crypto.malformed", "{b:?}");
    }
    assert_eq!(
        SignatureHeader::parse(&good.replace("key=1", "key=4294967295"))
            .unwrap()
            .version,
        u32::MAX
    );
    assert_eq!(
        signature_header("short", 1, &key, b"x").unwrap_err().code(),
        "crypto.malformed"
    );
    assert_eq!(
        signature_header(AGENCY, 0, &key, b"x").unwrap_err().code(),
        "crypto.malformed"
    );
}

#[test]
fn sealed_personal_data_binds_message_type_and_id() {
    let k = OpeningKey::generate().unwrap();
    let pk = k.public_key();
    let pt = br#"{"unified_address_number":"000000000000017"}"#;
    let s = seal_for(&pk, "InquiryRequest", "m-1", pt).unwrap();
    assert_eq!(
        open_from(&k, "InquiryRequest", "m-1", &s)
            .unwrap()
            .as_slice(),
        pt
    );
    // Same bytes via the raw HPKE API with the documented info/aad.
    assert_eq!(
        k.open(&s, b"renkei/v1/InquiryRequest", b"m-1")
            .unwrap()
            .as_slice(),
        pt
    );
    assert_eq!(
        open_from(&k, "InquiryResult", "m-1", &s)
            .unwrap_err()
            .code(),
        "crypto.decrypt_failed"
    );
    assert_eq!(
        open_from(&k, "InquiryRequest", "m-2", &s)
            .unwrap_err()
            .code(),
        "crypto.decrypt_failed"
    );
    let other = OpeningKey::generate().unwrap();
    assert_eq!(
        open_from(&other, "InquiryRequest", "m-1", &s)
            .unwrap_err()
            .code(),
        "crypto.decrypt_failed"
    );
    let mut t = s.clone();
    t.ciphertext.truncate(15);
    assert_eq!(
        open_from(&k, "InquiryRequest", "m-1", &t)
            .unwrap_err()
            .code(),
        "crypto.truncated"
    );
    let mut t = s.clone();
    t.ciphertext[0] ^= 1;
    assert_eq!(
        open_from(&k, "InquiryRequest", "m-1", &t)
            .unwrap_err()
            .code(),
        "crypto.decrypt_failed"
    );
    let mut t = s.clone();
    t.enc[64] ^= 1;
    assert_eq!(
        open_from(&k, "InquiryRequest", "m-1", &t)
            .unwrap_err()
            .code(),
        "crypto.malformed"
    );
    assert_eq!(
        seal_for(&pk, "Inquiry/Request", "m-1", pt)
            .unwrap_err()
            .code(),
        "crypto.malformed"
    );
    // Each seal uses a fresh ephemeral key.
    assert_ne!(
        seal_for(&pk, "InquiryRequest", "m-1", pt).unwrap().enc,
        s.enc
    );
}
