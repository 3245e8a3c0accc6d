//! The log only grew, provably: an auditor saves today's signed checkpoint, the log grows,
//! and `renkei audit verify --since` checks the RFC 9162 consistency proof between the saved
//! checkpoint and a new one with the auditor's own keys. Then someone with write access to
//! the store files rewrites one old record and rebuilds every hash after it (as a careful
//! attacker would, so the chain itself is consistent again): the check fails and names that
//! record's seq.

mod common;

use common::Deployment;
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use renkei_records::{ChainState, Checkpoint, StoredEntry};
use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Batch, Store, Tree, META_CHAIN_STATE};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_since_passes_while_the_log_grows_and_names_a_rewritten_record() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    api.inquire_answered("since-1", SAMPLES[0].business_number)
        .await;
    // Each live verification signs a checkpoint of everything so far, then records itself:
    // a run of signed checkpoints one record apart.
    let auditor = d.client("auditor");
    for _ in 0..3 {
        let live = auditor.get("/v1/audit/verify").await;
        assert_eq!(live.body["ok"], true, "{}", live.body);
    }

    // The auditor's copies: the checkpoint keys and today's checkpoint.
    let key_file = d.tmp.path().join("checkpoint-keys.pem");
    std::fs::write(&key_file, ok(&d.cli(&["audit", "public-keys"]))).expect("keys");
    let saved = d.tmp.path().join("saved.checkpoint");
    let key_arg = key_file.to_str().expect("utf-8");
    let said = ok(&d.cli(&[
        "audit",
        "checkpoint",
        "--out",
        saved.to_str().expect("utf-8"),
        "--public-key",
        key_arg,
    ]));
    assert!(said.starts_with("Saved the checkpoint of"), "{said}");
    let note = std::fs::read_to_string(&saved).expect("saved");
    let saved_cp = Checkpoint::parse_signed_note(&note).expect("a C2SP signed note");
    assert!(note.starts_with("renkei-records.invalid/log\n"), "{note}");

    // The log grows: the saved checkpoint is a prefix of today's.
    api.inquire_answered("since-2", SAMPLES[1].business_number)
        .await;
    let since = ["audit", "verify", "--since", saved.to_str().expect("utf-8")];
    let passed = ok(&d.cli(&[&since[..], &["--public-key", key_arg]].concat()));
    assert!(passed.starts_with("OK: the log only grew"), "{passed}");

    // With someone else's keys the same check fails: the keys are the auditor's, not the
    // gateway's.
    let other = d.tmp.path().join("other.pem");
    std::fs::write(
        &other,
        renkei_crypto::SigningKey::generate()
            .expect("key")
            .verifying_key()
            .to_spki_pem(),
    )
    .expect("write");
    let refused = d.cli(
        &[
            &since[..],
            &["--public-key", other.to_str().expect("utf-8")],
        ]
        .concat(),
    );
    assert!(!refused.status.success());

    // The rewrite: one record below the saved size, between two signed checkpoints one
    // record apart, and every leaf and chain hash after it rebuilt.
    d.kill_gateway();
    let target = {
        let store = SledStore::open(&d.dir.join("gateway/data/store"), Durability::Fsync)
            .expect("open store");
        let sizes: Vec<u64> = store
            .range(Tree::Checkpoints, &[], &[], usize::MAX)
            .expect("checkpoints")
            .into_iter()
            .map(|(k, _)| u64::from_be_bytes(k[..8].try_into().expect("8 bytes")))
            .collect();
        let entries: Vec<StoredEntry> = store
            .range(Tree::Records, &[], &[], usize::MAX)
            .expect("records")
            .into_iter()
            .map(|(_, v)| StoredEntry::from_bytes(&v).expect("entry"))
            .collect();
        let target = (0..saved_cp.tree_size)
            .rev()
            .find(|k| {
                sizes.contains(k)
                    && sizes.contains(&(k + 1))
                    && entries[*k as usize]
                        .content
                        .as_ref()
                        .is_some_and(|c| String::from_utf8_lossy(c).contains("auditor"))
            })
            .expect("a record between two checkpoints one apart");
        let mut chain = ChainState::new();
        let mut b = Batch::new();
        for e in &entries {
            let mut content = e.content.clone().expect("content");
            if e.seq == target {
                content = String::from_utf8(content)
                    .expect("utf-8")
                    .replacen("auditor", "nobody!", 1)
                    .into_bytes();
            }
            let rebuilt = chain.append(&content);
            if e.seq >= target {
                b.put(
                    Tree::Records,
                    rebuilt.seq.to_be_bytes().to_vec(),
                    rebuilt.to_bytes(),
                );
            }
        }
        b.put(Tree::Meta, META_CHAIN_STATE.to_vec(), chain.to_bytes());
        store.commit(b).await.expect("commit the rewrite");
        target
    };
    d.start_gateway().await;
    let failed = d.cli(&[&since[..], &["--public-key", key_arg]].concat());
    assert!(
        !failed.status.success(),
        "the rewrite was not detected: {}",
        String::from_utf8_lossy(&failed.stdout)
    );
    let why = String::from_utf8_lossy(&failed.stderr);
    let named: Option<u64> = why
        .split_once("the first rewritten record is seq ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    assert_eq!(named, Some(target), "names seq {target}: {why}");
}
