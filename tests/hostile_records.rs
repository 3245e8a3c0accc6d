//! Records no one can silently rewrite: someone with write access to the store (not to the
//! sealed keyring) rewrites a record, rebuilds the whole hash chain over the altered log,
//! signs a fresh checkpoint with a key of their own and stores that key as "version 1".
//! The gateway must not believe it: live verification fails, and the public keys handed to
//! auditors do not include the forged key — both trust only keys the keyring vouches for.
//! And checkpoints are signed by a key of their own (never the message-signing key), which
//! rotates in its own version namespace and, once retired, still verifies from the keyring.

mod common;

use std::time::Duration;

use common::{local_tax, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use renkei_records::{ChainState, Checkpoint, CheckpointSigner, StoredEntry};
use renkei_store::{Batch, Tree, META_CHAIN_STATE};

/// The forger's signer, claiming to be version 1.
struct Forger(renkei_crypto::SigningKey);

impl CheckpointSigner for Forger {
    fn key_version(&self) -> u32 {
        1
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign(msg).map_err(|e| e.to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_log_signed_with_a_forged_key_is_not_believed() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok("forge-1", &local_tax(SAMPLES[0].business_number))
        .await;
    let v = api.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(v["status"], "answered", "{v}");
    let auditor = d.client("auditor");
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], true, "before the forgery: {}", live.body);

    d.kill_gateway();
    let forged_pem = {
        let store = d.open_store();
        let entries: Vec<StoredEntry> = store
            .range(Tree::Records, &[], &[], usize::MAX)
            .expect("records")
            .into_iter()
            .map(|(_, v)| StoredEntry::from_bytes(&v).expect("entry"))
            .collect();
        assert!(
            entries.len() >= 3,
            "the flow wrote records: {}",
            entries.len()
        );
        // Rewrite one record and rebuild the whole chain over the altered contents.
        let target = entries
            .iter()
            .position(|e| {
                e.content
                    .as_ref()
                    .is_some_and(|c| String::from_utf8_lossy(c).contains(CLIENT_SUBSIDY))
            })
            .expect("a record naming the business system");
        let mut chain = ChainState::new();
        let mut b = Batch::new();
        for (i, e) in entries.iter().enumerate() {
            let mut content = e.content.clone().expect("content");
            if i == target {
                let text = String::from_utf8(content).expect("utf-8");
                content = text.replacen(CLIENT_SUBSIDY, "kokuho", 1).into_bytes();
            }
            let rebuilt = chain.append(&content);
            b.put(
                Tree::Records,
                rebuilt.seq.to_be_bytes().to_vec(),
                rebuilt.to_bytes(),
            );
        }
        b.put(Tree::Meta, META_CHAIN_STATE.to_vec(), chain.to_bytes());
        // Replace every checkpoint by one the forger signs, and store the forger's key.
        for (k, _) in store
            .range(Tree::Checkpoints, &[], &[], usize::MAX)
            .expect("checkpoints")
        {
            b.delete(Tree::Checkpoints, k);
        }
        let key = renkei_crypto::SigningKey::generate().expect("key");
        let public = key.verifying_key();
        let cp =
            Checkpoint::sign(&chain, "2026-12-01T12:00:00.000+09:00", &Forger(key)).expect("sign");
        b.put(
            Tree::Checkpoints,
            cp.tree_size.to_be_bytes().to_vec(),
            cp.to_json_line().into_bytes(),
        );
        let keys = serde_json::json!({"1": hex::encode(public.to_sec1())});
        b.put(
            Tree::Meta,
            b"records.checkpoint_keys".to_vec(),
            serde_json::to_vec(&keys).expect("json"),
        );
        store.commit(b).await.expect("commit the forgery");
        public.to_spki_pem()
    };

    d.start_gateway().await;
    let auditor = d.client("auditor");
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert_eq!(
        live.body["ok"], false,
        "the forged log was believed: {}",
        live.body
    );
    let keys = auditor.get("/v1/audit/public-keys").await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let handed: Vec<String> = keys
        .body
        .as_object()
        .expect("object")
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(!handed.is_empty(), "the genuine keys are still handed out");
    assert!(
        !handed.iter().any(|pem| pem.trim() == forged_pem.trim()),
        "the forged key was handed to auditors"
    );
}

/// The fingerprint of a PEM public key, as `/v1/keys` lists it.
fn fingerprint(pem: &str) -> String {
    let sec1 = renkei_records::parse_public_key(pem.as_bytes()).expect("a public key");
    renkei_crypto::VerifyingKey::from_sec1(&sec1)
        .expect("P-256")
        .fingerprint()
}

/// (version, fingerprint) of every `/v1/keys` row of `purpose`.
async fn listed(officer: &common::Api, purpose: &str) -> Vec<(u64, String, String)> {
    let rows = officer.get("/v1/keys").await;
    assert_eq!(rows.status, 200, "{}", rows.body);
    rows.body
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["purpose"] == purpose)
        .map(|r| {
            (
                r["version"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or("").to_string(),
                r["fingerprint"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `/v1/audit/public-keys` as version → fingerprint.
async fn handed_out(auditor: &common::Api) -> Vec<(u64, String)> {
    let keys = auditor.get("/v1/audit/public-keys").await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    keys.body
        .as_object()
        .expect("object")
        .iter()
        .map(|(v, pem)| {
            (
                v.parse().expect("a version"),
                fingerprint(pem.as_str().expect("PEM")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_by_their_own_key_which_rotates_and_retires() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let auditor = d.client("auditor");
    let officer = d.client("security-officer");
    api.inquire_answered("ck-1", SAMPLES[0].business_number)
        .await;

    // Auditors get the checkpoint key, and only it: never the message-signing key.
    let checkpoint_v1 = listed(&officer, "checkpoint").await;
    assert_eq!(checkpoint_v1.len(), 1, "{checkpoint_v1:?}");
    let signing = listed(&officer, "signing").await;
    let handed = handed_out(&auditor).await;
    assert_eq!(handed, vec![(1, checkpoint_v1[0].2.clone())]);
    assert!(
        signing.iter().all(|(_, _, f)| *f != handed[0].1),
        "the message-signing key was handed out as a checkpoint key"
    );
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], true, "{}", live.body);

    // Rotating the checkpoint key: its own version namespace, the signing key untouched.
    let r = officer
        .send(
            hyper::Method::POST,
            "/v1/keys/checkpoint/rotate",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 2, "{}", r.body);
    assert_eq!(listed(&officer, "signing").await, signing);
    api.inquire_answered("ck-2", SAMPLES[1].business_number)
        .await;
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], true, "{}", live.body);

    // Retire v1: its material is destroyed, its public key kept; old checkpoints still verify,
    // also after a restart (the keyring alone holds it).
    let r = officer
        .send(
            hyper::Method::POST,
            "/v1/keys/checkpoint/1/retire",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    d.kill_gateway();
    d.start_gateway().await;
    let auditor = d.client("auditor");
    let officer = d.client("security-officer");
    let states: Vec<(u64, String)> = listed(&officer, "checkpoint")
        .await
        .into_iter()
        .map(|(v, s, _)| (v, s))
        .collect();
    assert_eq!(
        states,
        vec![(1, "retired".into()), (2, "active".into())],
        "{states:?}"
    );
    let handed = handed_out(&auditor).await;
    assert_eq!(
        handed.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [1, 2],
        "the retired public key is still handed out"
    );
    assert_eq!(handed[0].1, checkpoint_v1[0].2);
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], true, "{}", live.body);
    assert!(
        live.body["checkpoints_verified"].as_u64().unwrap_or(0) >= 2,
        "{}",
        live.body
    );

    // Offline: the auditor's key file, an export, the CLI's verify; the keys come from the
    // auditor's file, not from the bundle's informational copy.
    let key_file = d.auditor_key_file();
    let bundle = d.tmp.path().join("bundle");
    let out = d.cli(&["audit", "export", "--out", bundle.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |key: &std::path::Path| {
        std::process::Command::new(common::BIN)
            .args([
                "audit",
                "verify",
                bundle.to_str().expect("utf-8"),
                "--public-key",
            ])
            .arg(key)
            .output()
            .expect("run renkei")
    };
    let ok = verify(&key_file);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A key file of other keys does not verify it, even with the genuine keys in the
    // bundle's own copy.
    let ring_pem = renkei_crypto::SigningKey::generate()
        .expect("key")
        .verifying_key()
        .to_spki_pem();
    let wrong = d.tmp.path().join("wrong.pem");
    std::fs::write(
        &wrong,
        format!("# signing key version 1\n{ring_pem}\n# signing key version 2\n{ring_pem}"),
    )
    .expect("write");
    std::fs::copy(&key_file, bundle.join("public-keys.pem")).expect("copy");
    let bad = verify(&wrong);
    assert!(
        !bad.status.success(),
        "a bundle verified with keys that did not sign it"
    );
}
