//! Records no one can silently rewrite: someone with write access to the store (not to the
//! sealed keyring) rewrites a record, rebuilds the whole hash chain over the altered log,
//! signs a fresh checkpoint with a key of their own and stores that key as "version 1".
//! The gateway must not believe it: live verification fails, and the public keys handed to
//! auditors do not include the forged key — both trust only keys the keyring vouches for.

mod common;

use std::time::Duration;

use common::{local_tax, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use renkei_records::{ChainState, Checkpoint, CheckpointSigner, StoredEntry};
use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Batch, Store, Tree, META_CHAIN_STATE};

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
        let store = SledStore::open(&d.dir.join("gateway/data/store"), Durability::Fsync)
            .expect("open store");
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
