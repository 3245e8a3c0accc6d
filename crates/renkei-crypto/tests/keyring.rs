//! Keyring: save/load, rotation, retirement, master key handling, at-rest blobs across versions.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use renkei_crypto::at_rest::{at_rest_key_version, decrypt_at_rest, encrypt_at_rest};
use renkei_crypto::keyring::{KeyPurpose, KeyState, Keyring, MasterKey};
use renkei_crypto::CryptoError;

const LOC: &str = "persons/000000000000017/individual_number";

fn code<T>(r: Result<T, CryptoError>) -> &'static str {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_load_round_trip_keeps_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let kdir = dir.path().join("ring");
    let master = MasterKey::generate_file(&dir.path().join("master.key")).unwrap();
    let ring = Keyring::generate().unwrap();
    let sig = ring.signing().1.sign(b"body").unwrap();
    let blob = encrypt_at_rest(&ring, LOC, b"sensitive-value").unwrap();
    let sealed = renkei_crypto::seal(&ring.opening().1.public_key(), b"i", b"a", b"p").unwrap();
    let bi = ring.blind_index().index(b"x");
    ring.save(&kdir, &master).unwrap();

    let mut names: Vec<String> = fs::read_dir(&kdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "at-rest-v1.key",
            "blind-index-v1.key",
            "checkpoint-v1.key",
            "keyring.json",
            "sealing-v1.key",
            "signing-v1.key"
        ]
    );
    for n in &names {
        assert_eq!(mode(&kdir.join(n)), 0o600, "{n}");
    }
    // No private key in the clear: the PKCS#8 bytes do not appear in the file.
    let pkcs8 = ring.signing().1.to_pkcs8_der();
    let file = fs::read(kdir.join("signing-v1.key")).unwrap();
    assert!(file.starts_with(b"RKK1"));
    assert!(!file.windows(32).any(|w| pkcs8.windows(32).any(|p| p == w)));

    let loaded = Keyring::load(&kdir, &master).unwrap();
    assert_eq!(loaded.list(), ring.list());
    loaded
        .verifying_key(1)
        .unwrap()
        .verify(b"body", &sig)
        .unwrap();
    assert_eq!(
        decrypt_at_rest(&loaded, LOC, &blob).unwrap().as_slice(),
        b"sensitive-value"
    );
    assert_eq!(
        loaded
            .opening()
            .1
            .open(&sealed, b"i", b"a")
            .unwrap()
            .as_slice(),
        b"p"
    );
    assert_eq!(loaded.blind_index().index(b"x"), bi);
}

#[test]
fn wrong_master_key_or_swapped_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    Keyring::generate()
        .unwrap()
        .save(dir.path(), &master)
        .unwrap();
    let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &other)), "crypto.keyring");
    // AAD binds purpose+version: an at-rest key file renamed as the blind-index key fails.
    fs::copy(
        dir.path().join("at-rest-v1.key"),
        dir.path().join("blind-index-v1.key"),
    )
    .unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &master)), "crypto.keyring");
}

#[test]
fn rotate_keeps_old_versions_usable_and_retire_destroys_them() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[1u8; 32]).unwrap();
    let mut ring = Keyring::generate().unwrap();
    let old_sig = ring.signing().1.sign(b"m").unwrap();
    let old_blob = encrypt_at_rest(&ring, LOC, b"old").unwrap();
    let old_pk = ring.opening().1.public_key();
    let old_sealed = renkei_crypto::seal(&old_pk, b"i", b"a", b"sealed").unwrap();

    assert_eq!(ring.rotate(KeyPurpose::Signing).unwrap(), 2);
    assert_eq!(ring.rotate(KeyPurpose::AtRest).unwrap(), 2);
    assert_eq!(ring.rotate(KeyPurpose::Sealing).unwrap(), 2);
    assert_eq!(
        code(ring.rotate(KeyPurpose::BlindIndex)),
        "crypto.unsupported"
    );
    assert_eq!(ring.signing().0, 2);
    assert_ne!(ring.opening().1.public_key(), old_pk);

    // Old material still verifies / decrypts / opens; new blobs carry version 2.
    ring.verifying_key(1)
        .unwrap()
        .verify(b"m", &old_sig)
        .unwrap();
    assert_eq!(
        code(ring.verifying_key(2).unwrap().verify(b"m", &old_sig)),
        "crypto.bad_signature"
    );
    assert_eq!(
        decrypt_at_rest(&ring, LOC, &old_blob).unwrap().as_slice(),
        b"old"
    );
    let new_blob = encrypt_at_rest(&ring, LOC, b"new").unwrap();
    assert_eq!(at_rest_key_version(&new_blob), Some(2));
    assert_eq!(at_rest_key_version(&old_blob), Some(1));
    assert_eq!(
        ring.opening_version(1)
            .unwrap()
            .open(&old_sealed, b"i", b"a")
            .unwrap()
            .as_slice(),
        b"sealed"
    );

    let states: Vec<(KeyPurpose, u32, KeyState)> = ring
        .list()
        .iter()
        .map(|k| (k.purpose, k.version, k.state))
        .collect();
    assert_eq!(
        states,
        [
            (KeyPurpose::Signing, 1, KeyState::VerifyOnly),
            (KeyPurpose::Signing, 2, KeyState::Active),
            (KeyPurpose::Sealing, 1, KeyState::VerifyOnly),
            (KeyPurpose::Sealing, 2, KeyState::Active),
            (KeyPurpose::AtRest, 1, KeyState::VerifyOnly),
            (KeyPurpose::AtRest, 2, KeyState::Active),
            (KeyPurpose::BlindIndex, 1, KeyState::Active),
            (KeyPurpose::Checkpoint, 1, KeyState::Active),
        ]
    );

    // Saved with both versions, then retire v1 of at-rest: refused for the active one.
    // A master key kept (against advice) in the same folder must survive saves.
    let master_path = dir.path().join("master.key");
    let _ = MasterKey::generate_file(&master_path).unwrap();
    ring.save(dir.path(), &master).unwrap();
    assert!(dir.path().join("at-rest-v1.key").exists());
    assert_eq!(
        code(ring.retire(KeyPurpose::AtRest, 2)),
        "crypto.active_key"
    );
    assert_eq!(
        code(ring.retire(KeyPurpose::AtRest, 9)),
        "crypto.unknown_key_version"
    );
    ring.retire(KeyPurpose::AtRest, 1).unwrap();
    ring.retire(KeyPurpose::Signing, 1).unwrap();
    assert!(ring.data_key_version(1).is_none());
    assert!(ring.verifying_key(1).is_none());
    assert_eq!(
        code(decrypt_at_rest(&ring, LOC, &old_blob)),
        "crypto.unknown_key_version"
    );
    ring.save(dir.path(), &master).unwrap();
    assert!(
        !dir.path().join("at-rest-v1.key").exists(),
        "retired key file must be removed"
    );
    assert!(!dir.path().join("signing-v1.key").exists());
    assert!(dir.path().join("sealing-v1.key").exists());
    assert!(
        master_path.exists(),
        "save must only delete <purpose>-v<n>.key files"
    );

    let loaded = Keyring::load(dir.path(), &master).unwrap();
    assert_eq!(loaded.list(), ring.list());
    let retired = loaded
        .list()
        .into_iter()
        .find(|k| k.purpose == KeyPurpose::Signing && k.version == 1)
        .unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    assert!(
        retired.fingerprint.is_some(),
        "retired keys keep their public fingerprint"
    );
    assert_eq!(
        decrypt_at_rest(&loaded, LOC, &new_blob).unwrap().as_slice(),
        b"new"
    );
    assert_eq!(
        code(decrypt_at_rest(&loaded, LOC, &old_blob)),
        "crypto.unknown_key_version"
    );
}

#[test]
fn master_key_file_permissions_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("master.key");
    let m = MasterKey::generate_file(&p).unwrap();
    assert_eq!(mode(&p), 0o600);
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    // Same key back: a ring saved under the generated key loads under the file's key.
    let ring = Keyring::generate().unwrap();
    ring.save(&dir.path().join("r"), &m).unwrap();
    Keyring::load(&dir.path().join("r"), &MasterKey::from_file(&p).unwrap()).unwrap();
    // Refuses to overwrite.
    assert_eq!(code(MasterKey::generate_file(&p)), "crypto.io");
    // 0644 and 0640 are refused.
    for bad in [0o644, 0o640, 0o604] {
        fs::set_permissions(&p, fs::Permissions::from_mode(bad)).unwrap();
        let err = MasterKey::from_file(&p).err().unwrap();
        assert_eq!(err.code(), "crypto.insecure_permissions");
        assert!(err.to_string().contains("chmod 600"));
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).unwrap();
    MasterKey::from_file(&p).unwrap();
    // A key file made world-readable is refused at load too.
    let kf = dir.path().join("r").join("signing-v1.key");
    fs::set_permissions(&kf, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        code(Keyring::load(&dir.path().join("r"), &m)),
        "crypto.insecure_permissions"
    );
    // Malformed content.
    let q = dir.path().join("short.key");
    fs::write(&q, "abcd\n").unwrap();
    fs::set_permissions(&q, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code(MasterKey::from_file(&q)), "crypto.malformed");
}

#[test]
fn passphrase_master_key_is_deterministic_per_salt() {
    let dir = tempfile::tempdir().unwrap();
    let salt = b"renkei-test-salt-16b";
    let a = MasterKey::from_passphrase("correct horse battery staple", salt).unwrap();
    Keyring::generate().unwrap().save(dir.path(), &a).unwrap();
    let b = MasterKey::from_passphrase("correct horse battery staple", salt).unwrap();
    Keyring::load(dir.path(), &b).unwrap();
    let c = MasterKey::from_passphrase("correct horse battery staplf", salt).unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &c)), "crypto.keyring");
    assert_eq!(
        code(MasterKey::from_passphrase("x", b"short")),
        "crypto.kdf"
    );
}

#[test]
fn at_rest_blob_layout_and_refusals() {
    let ring = Keyring::generate().unwrap();
    let blob = encrypt_at_rest(&ring, LOC, b"abc").unwrap();
    assert_eq!(&blob[..8], b"RKE1\0\0\0\x01");
    assert_eq!(blob.len(), 8 + 12 + 3 + 16);
    // Same data key, AAD computed by hand per docs/envelope.md: header || location.
    let aad = [&blob[..8], LOC.as_bytes()].concat();
    assert_eq!(
        ring.data_key()
            .1
            .decrypt(&aad, &blob[8..])
            .unwrap()
            .as_slice(),
        b"abc"
    );
    // Wrong location (a blob moved to another record) is refused.
    assert_eq!(
        code(decrypt_at_rest(
            &ring,
            "persons/000000000000018/individual_number",
            &blob
        )),
        "crypto.decrypt_failed"
    );
    // Truncated.
    assert_eq!(
        code(decrypt_at_rest(&ring, LOC, &blob[..30])),
        "crypto.truncated"
    );
    // Tampered ciphertext byte.
    let mut t = blob.clone();
    t[21] ^= 0x01;
    assert_eq!(
        code(decrypt_at_rest(&ring, LOC, &t)),
        "crypto.decrypt_failed"
    );
    // Bad magic / unknown version.
    let mut m = blob.clone();
    m[0] = b'X';
    assert_eq!(code(decrypt_at_rest(&ring, LOC, &m)), "crypto.malformed");
    let mut v = blob.clone();
    v[7] = 2;
    assert_eq!(
        code(decrypt_at_rest(&ring, LOC, &v)),
        "crypto.unknown_key_version"
    );
    assert_eq!(at_rest_key_version(b"RKE1\0\0"), None);
    // Keys from another keyring refuse it.
    let other = Keyring::generate().unwrap();
    assert_eq!(
        code(decrypt_at_rest(&other, LOC, &blob)),
        "crypto.decrypt_failed"
    );
}

#[test]
fn purpose_names_parse_and_serialize() {
    for (p, s) in [
        (KeyPurpose::Signing, "signing"),
        (KeyPurpose::Sealing, "sealing"),
        (KeyPurpose::AtRest, "at-rest"),
        (KeyPurpose::BlindIndex, "blind-index"),
        (KeyPurpose::Checkpoint, "checkpoint"),
    ] {
        assert_eq!(s.parse::<KeyPurpose>().unwrap(), p);
        assert_eq!(p.to_string(), s);
        assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
    }
    assert_eq!(code("atrest".parse::<KeyPurpose>()), "crypto.malformed");
    // The refusal names every purpose, so an operator sees the full choice.
    let msg = "atrest".parse::<KeyPurpose>().unwrap_err().to_string();
    for p in KeyPurpose::ALL {
        assert!(msg.contains(p.as_str()), "{msg}");
    }
    assert_eq!(
        serde_json::to_string(&KeyState::VerifyOnly).unwrap(),
        "\"verify-only\""
    );
}
