//! The `checkpoint` key purpose: its own ECDSA P-256 key, rotation, retirement, and keyrings saved before it existed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use renkei_crypto::keyring::{KeyPurpose, KeyState, Keyring, MasterKey};
use renkei_crypto::{CryptoError, Signer, VerifyingKey};

/// Master key of the committed fixture `tests/data/keyring-pre-checkpoint` (test-only bytes).
const FIXTURE_MASTER: [u8; 32] = [0x42; 32];

fn code<T>(r: Result<T, CryptoError>) -> &'static str {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// Copies the committed fixture into `dst` with mode 0600 (git does not keep it).
fn copy_fixture(dst: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keyring-pre-checkpoint");
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        fs::copy(e.path(), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn states(ring: &Keyring, purpose: KeyPurpose) -> Vec<(u32, KeyState)> {
    ring.list()
        .into_iter()
        .filter(|k| k.purpose == purpose)
        .map(|k| (k.version, k.state))
        .collect()
}

#[test]
fn checkpoint_key_is_its_own_key_and_survives_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[3u8; 32]).unwrap();
    let ring = Keyring::generate().unwrap();
    assert!(ring.has_purpose(KeyPurpose::Checkpoint));
    let (v, ck) = ring.checkpoint_signing().unwrap();
    assert_eq!(v, 1);
    // Never the message-signing key.
    assert_ne!(ck.verifying_key(), ring.signing().1.verifying_key());
    let sig = ck.sign(b"checkpoint 17").unwrap();
    ring.checkpoint_verifying_key(1)
        .unwrap()
        .verify(b"checkpoint 17", &sig)
        .unwrap();
    // A checkpoint signature does not verify under the message-signing key.
    assert_eq!(
        code(
            ring.verifying_key(1)
                .unwrap()
                .verify(b"checkpoint 17", &sig)
        ),
        "crypto.bad_signature"
    );
    let info = ring
        .list()
        .into_iter()
        .find(|k| k.purpose == KeyPurpose::Checkpoint)
        .unwrap();
    assert_eq!(info.fingerprint, Some(ck.verifying_key().fingerprint()));

    ring.save(dir.path(), &master).unwrap();
    let file = fs::read(dir.path().join("checkpoint-v1.key")).unwrap();
    assert!(file.starts_with(b"RKK1"));
    let json = fs::read_to_string(dir.path().join("keyring.json")).unwrap();
    assert!(json.contains("\"purpose\": \"checkpoint\""), "{json}");

    let loaded = Keyring::load(dir.path(), &master).unwrap();
    assert_eq!(loaded.list(), ring.list());
    loaded
        .checkpoint_verifying_key(1)
        .unwrap()
        .verify(b"checkpoint 17", &sig)
        .unwrap();
    // The signer trait (what an HSM-held key would implement) signs the same way.
    let signer: &dyn Signer = loaded.checkpoint_signing().unwrap().1;
    let s2 = signer.sign(b"x").unwrap();
    signer.verifying_key().verify(b"x", &s2).unwrap();
    // `ensure_purpose` on a keyring that has every purpose changes nothing.
    let mut loaded = loaded;
    for p in KeyPurpose::ALL {
        assert!(!loaded.ensure_purpose(p).unwrap(), "{p}");
    }
    assert_eq!(loaded.list(), ring.list());
}

#[test]
fn checkpoint_key_rotates_and_retires_like_signing() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[4u8; 32]).unwrap();
    let mut ring = Keyring::generate().unwrap();
    let old_sig = ring.checkpoint_signing().unwrap().1.sign(b"c1").unwrap();
    let old_vk: VerifyingKey = ring.checkpoint_verifying_key(1).unwrap();

    assert_eq!(ring.rotate(KeyPurpose::Checkpoint).unwrap(), 2);
    // Only the checkpoint purpose moved.
    assert_eq!(ring.signing().0, 1);
    assert_eq!(ring.checkpoint_signing().unwrap().0, 2);
    assert_eq!(
        states(&ring, KeyPurpose::Checkpoint),
        [(1, KeyState::VerifyOnly), (2, KeyState::Active)]
    );
    // v1 still verifies old checkpoints; v2 does not.
    ring.checkpoint_verifying_key(1)
        .unwrap()
        .verify(b"c1", &old_sig)
        .unwrap();
    assert_eq!(
        code(
            ring.checkpoint_verifying_key(2)
                .unwrap()
                .verify(b"c1", &old_sig)
        ),
        "crypto.bad_signature"
    );
    assert!(ring.checkpoint_verifying_key(3).is_none());

    ring.save(dir.path(), &master).unwrap();
    assert!(dir.path().join("checkpoint-v1.key").exists());
    assert_eq!(
        code(ring.retire(KeyPurpose::Checkpoint, 2)),
        "crypto.active_key"
    );
    assert_eq!(
        code(ring.retire(KeyPurpose::Checkpoint, 7)),
        "crypto.unknown_key_version"
    );
    ring.retire(KeyPurpose::Checkpoint, 1).unwrap();
    assert!(ring.checkpoint_verifying_key(1).is_none());
    ring.save(dir.path(), &master).unwrap();
    assert!(
        !dir.path().join("checkpoint-v1.key").exists(),
        "a retired checkpoint key file is deleted at save"
    );
    assert!(dir.path().join("checkpoint-v2.key").exists());

    let loaded = Keyring::load(dir.path(), &master).unwrap();
    assert_eq!(loaded.list(), ring.list());
    let retired = loaded
        .list()
        .into_iter()
        .find(|k| k.purpose == KeyPurpose::Checkpoint && k.version == 1)
        .unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    // The retired key's public fingerprint stays listed, for the record.
    assert_eq!(retired.fingerprint, Some(old_vk.fingerprint()));
    // …and its public key stays in the keyring: what v1 signed still verifies from it.
    let kept = loaded.checkpoint_public_keys().unwrap();
    assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [1, 2]);
    kept[&1].verify(b"c1", &old_sig).unwrap();
    assert_eq!(
        kept[&2],
        loaded.checkpoint_signing().unwrap().1.verifying_key()
    );

    // A kept public key swapped in keyring.json (not its fingerprint) is refused at load.
    let json = fs::read_to_string(dir.path().join("keyring.json")).unwrap();
    let other = hex::encode(
        renkei_crypto::SigningKey::generate()
            .unwrap()
            .verifying_key()
            .to_sec1(),
    );
    let swapped = json.replace(&hex::encode(old_vk.to_sec1()), &other);
    assert_ne!(swapped, json);
    fs::write(dir.path().join("keyring.json"), swapped).unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &master)), "crypto.keyring");
}

#[test]
fn keyring_saved_before_checkpoint_existed_loads_and_ensure_adds_v1() {
    // `tests/data/keyring-pre-checkpoint` was written by the crate as it was before the
    // checkpoint purpose (signing rotated once, so signing v1 is verify-only).
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    assert!(!dir.path().join("checkpoint-v1.key").exists());
    let master = MasterKey::from_bytes(&FIXTURE_MASTER).unwrap();

    let mut ring = Keyring::load(dir.path(), &master).unwrap();
    let before = ring.list();
    assert!(before.iter().all(|k| k.purpose != KeyPurpose::Checkpoint));
    assert_eq!(
        states(&ring, KeyPurpose::Signing),
        [(1, KeyState::VerifyOnly), (2, KeyState::Active)]
    );
    // Until ensured: no checkpoint key, and a typed refusal rather than a panic.
    assert!(!ring.has_purpose(KeyPurpose::Checkpoint));
    assert_eq!(code(ring.checkpoint_signing()), "crypto.missing_purpose");
    assert!(ring.checkpoint_verifying_key(1).is_none());
    assert_eq!(
        code(ring.rotate(KeyPurpose::Checkpoint)),
        "crypto.missing_purpose"
    );
    assert_eq!(
        code(ring.retire(KeyPurpose::Checkpoint, 1)),
        "crypto.missing_purpose"
    );
    // Saving such a keyring as it is keeps the old format (no checkpoint entry).
    let untouched = tempfile::tempdir().unwrap();
    ring.save(untouched.path(), &master).unwrap();
    assert!(!Keyring::load(untouched.path(), &master)
        .unwrap()
        .has_purpose(KeyPurpose::Checkpoint));

    // The start-up step: ensure, then save.
    assert!(ring.ensure_purpose(KeyPurpose::Checkpoint).unwrap());
    assert!(!ring.ensure_purpose(KeyPurpose::Checkpoint).unwrap());
    let (v, ck) = ring.checkpoint_signing().unwrap();
    assert_eq!(v, 1);
    let sig = ck.sign(b"first checkpoint").unwrap();
    ring.save(dir.path(), &master).unwrap();
    assert!(dir.path().join("checkpoint-v1.key").exists());

    let loaded = Keyring::load(dir.path(), &master).unwrap();
    // Every old key is unchanged; checkpoint v1 is added, active.
    let after = loaded.list();
    assert_eq!(&after[..before.len()], before.as_slice());
    assert_eq!(
        states(&loaded, KeyPurpose::Checkpoint),
        [(1, KeyState::Active)]
    );
    loaded
        .checkpoint_verifying_key(1)
        .unwrap()
        .verify(b"first checkpoint", &sig)
        .unwrap();
    assert_ne!(
        loaded.checkpoint_verifying_key(1),
        loaded.verifying_key(2),
        "the generated checkpoint key is not the signing key"
    );
}

#[test]
fn checkpoint_entries_without_an_active_version_are_refused() {
    // A checkpoint purpose that is present must be complete: only total absence means
    // "saved before the purpose existed".
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[5u8; 32]).unwrap();
    let mut ring = Keyring::generate().unwrap();
    ring.save(dir.path(), &master).unwrap();
    let meta = dir.path().join("keyring.json");
    let text = fs::read_to_string(&meta).unwrap();
    let edited = text.replacen(
        "\"purpose\": \"checkpoint\",\n      \"version\": 1,\n      \"state\": \"active\"",
        "\"purpose\": \"checkpoint\",\n      \"version\": 1,\n      \"state\": \"retired\"",
        1,
    );
    assert_ne!(edited, text, "fixture edit must apply:\n{text}");
    fs::write(&meta, edited).unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &master)), "crypto.keyring");
    // And a checkpoint key file renamed from the signing key does not open (AAD binds purpose).
    ring.rotate(KeyPurpose::Signing).unwrap();
    ring.save(dir.path(), &master).unwrap();
    fs::copy(
        dir.path().join("signing-v1.key"),
        dir.path().join("checkpoint-v1.key"),
    )
    .unwrap();
    assert_eq!(code(Keyring::load(dir.path(), &master)), "crypto.keyring");
}
