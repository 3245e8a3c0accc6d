//! Interoperability with outside tools: OpenSSL verifies our signatures; an independent
//! Python implementation (tests/py/open_envelope.py) of docs/envelope.md opens our blobs.

use std::path::Path;
use std::process::Command;

use renkei_crypto::at_rest::encrypt_at_rest;
use renkei_crypto::envelope::{seal_for, signature_header, SignatureHeader};
use renkei_crypto::keyring::Keyring;
use renkei_crypto::SigningKey;

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what} is required for this test (CI installs it): {e}"))
}

#[test]
fn openssl_verifies_a_renkei_signature() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let body = br#"{"type":"InquiryRequest","id":"0001"}"#;
    let header = signature_header("0112345678900000", 3, &key, body).unwrap();
    let parsed = SignatureHeader::parse(&header).unwrap();
    std::fs::write(
        dir.path().join("pub.pem"),
        key.verifying_key().to_spki_pem(),
    )
    .unwrap();
    std::fs::write(dir.path().join("sig.der"), &parsed.sig).unwrap();
    std::fs::write(dir.path().join("msg"), body).unwrap();
    std::fs::write(
        dir.path().join("bad"),
        b"{\"type\":\"InquiryRequest\",\"id\":\"0002\"}",
    )
    .unwrap();

    let verify = |msg: &str| {
        run(
            Command::new("openssl")
                .args([
                    "dgst",
                    "-sha256",
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig.der",
                    msg,
                ])
                .current_dir(dir.path()),
            "openssl",
        )
    };
    let ok = verify("msg");
    assert!(
        ok.status.success(),
        "openssl refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
    let bad = verify("bad");
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout).trim(),
        "Verification failure"
    );

    // And the other way: openssl reads our PEM as a P-256 key.
    let text = run(
        Command::new("openssl")
            .args(["pkey", "-pubin", "-in", "pub.pem", "-noout", "-text"])
            .current_dir(dir.path()),
        "openssl",
    );
    assert!(String::from_utf8_lossy(&text.stdout).contains("prime256v1"));
}

#[test]
fn openssl_signature_verifies_in_renkei() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = run(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "k.pem",
            ])
            .current_dir(d),
        "openssl",
    );
    assert!(gen.status.success());
    std::fs::write(d.join("msg"), b"hello renkei").unwrap();
    assert!(run(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", "k.pem", "-out", "sig.der", "msg"])
            .current_dir(d),
        "openssl"
    )
    .status
    .success());
    assert!(run(
        Command::new("openssl")
            .args(["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"])
            .current_dir(d),
        "openssl"
    )
    .status
    .success());
    let vk = renkei_crypto::VerifyingKey::from_spki_pem(
        &std::fs::read_to_string(d.join("pub.pem")).unwrap(),
    )
    .unwrap();
    let sig = std::fs::read(d.join("sig.der")).unwrap();
    vk.verify(b"hello renkei", &sig).unwrap();
    assert_eq!(
        vk.verify(b"hello renkej", &sig).unwrap_err().code(),
        "crypto.bad_signature"
    );
    // PKCS#8 from openssl loads as a SigningKey with the same public key.
    assert!(run(
        Command::new("openssl")
            .args([
                "pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-outform", "DER", "-out", "k.p8"
            ])
            .current_dir(d),
        "openssl"
    )
    .status
    .success());
    let sk = SigningKey::from_pkcs8_der(&std::fs::read(d.join("k.p8")).unwrap()).unwrap();
    assert_eq!(sk.verifying_key(), vk);
}

#[test]
fn python_cryptography_opens_at_rest_and_hpke_from_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::generate().unwrap();
    let location = "persons/000000000000017/individual_number";
    let at_rest_pt = "住所: 札幌市中央区北1条西2丁目".as_bytes();
    let blob = encrypt_at_rest(&ring, location, at_rest_pt).unwrap();
    let hpke_pt = br#"{"unified_address_number":"000000000000017","item":"TM00000000000002"}"#;
    let (_, opening) = ring.opening();
    let sealed = seal_for(
        &opening.public_key(),
        "InquiryRequest",
        "msg-20261126-0001",
        hpke_pt,
    )
    .unwrap();
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("data/hpke_p256_sha256_vectors.json")).unwrap();
    let aes256_vector = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["aead_id"] == 2)
        .unwrap()
        .clone();

    let input = serde_json::json!({
        "data_key": hex::encode(ring.data_key().1.to_bytes().as_slice()),
        "location": location,
        "at_rest_blob": hex::encode(&blob),
        "hpke_sk": hex::encode(opening.to_bytes().as_slice()),
        "enc": hex::encode(&sealed.enc),
        "ciphertext": hex::encode(&sealed.ciphertext),
        "message_type": "InquiryRequest",
        "message_id": "msg-20261126-0001",
        "rfc_vector": aes256_vector,
    });
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/open_envelope.py");
    let out = run(
        Command::new("python3").arg(&script).arg(&input_path),
        "python3 with the cryptography package",
    );
    assert!(
        out.status.success(),
        "python3 failed (is the `cryptography` package installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["at_rest_version"], 1);
    assert_eq!(got["at_rest_plaintext"], hex::encode(at_rest_pt));
    assert_eq!(got["hpke_plaintext"], hex::encode(hpke_pt));
    assert_eq!(got["rfc_vector_ok"], true);
}
