//! Retention of linkage records, with an injected clock: records past the period lose their
//! contents, keep their hashes, the log still verifies, and the sweep is itself recorded.

use std::sync::Arc;

use renkei::records;
use renkei_records::{Checkpoint, CheckpointSigner, RecordKind, RecordResult};
use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Batch, Store, Tree};

struct TestSigner(ring::signature::EcdsaKeyPair);

impl CheckpointSigner for TestSigner {
    fn key_version(&self) -> u32 {
        1
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let rng = ring::rand::SystemRandom::new();
        self.0
            .sign(&rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| e.to_string())
    }
}

fn signer() -> (TestSigner, Vec<u8>) {
    use ring::signature::KeyPair;
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let kp = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let public = kp.public_key().as_ref().to_vec();
    (TestSigner(kp), public)
}

#[tokio::test]
async fn sweep_deletes_old_contents_keeps_the_chain_and_records_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SledStore::open(&dir.path().join("store"), Durability::Fsync).unwrap();
    records::install(store.as_ref()).unwrap();
    // Ten records from 2018, then ten from 2026.
    for (year, n) in [(2018, 10), (2026, 10)] {
        for i in 0..n {
            let mut r = records::base(RecordKind::Inquiry, RecordResult::Answered);
            r.requested_at = format!("{year}-04-{:02}T10:00:00.000+09:00", i + 1);
            r.provided_at = Some(format!("{year}-04-{:02}T10:00:05.000+09:00", i + 1));
            r.reference = Some(format!("IQ{year}{i}"));
            let mut b = Batch::new();
            records::append(&mut b, &r);
            store.commit(b).await.unwrap();
        }
    }
    // The clock says 2026-11-26: seven years back is 2019-11-26.
    let swept = records::retention::sweep_expired(store.as_ref(), "2026-11-26T12:00:00+09:00", 7)
        .await
        .unwrap();
    assert_eq!(swept, 10);
    let entries: Vec<_> = records::log::entries(store.as_ref(), 0)
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries.len(), 21, "20 records and the sweep's own record");
    assert!(entries[..10].iter().all(|e| e.content.is_none()));
    assert!(entries[10..20].iter().all(|e| e.content.is_some()));
    let last = records::log::decode(&entries[20]).unwrap();
    assert_eq!(last.kind, RecordKind::RetentionSweep);
    assert!(last.reason.unwrap().starts_with("10 records"));

    // The log still verifies against a signed checkpoint.
    let (signer, public) = signer();
    let state =
        renkei_records::ChainState::from_bytes(&store.log_chain_state().unwrap().unwrap()).unwrap();
    let cp = Checkpoint::sign(&state, "2026-11-26T12:00:01+09:00", &signer).unwrap();
    let report = renkei_records::verify_entries(entries.clone().into_iter(), &[cp], &public)
        .expect("swept log verifies");
    assert_eq!(report.swept, 10);

    // A second sweep at the same time finds nothing more and adds no record.
    let again = records::retention::sweep_expired(store.as_ref(), "2026-11-26T12:00:00+09:00", 7)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(store.len(Tree::Records).unwrap(), 21);
}
