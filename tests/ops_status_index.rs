//! The inquiry status index behind `/v1/ops/stats`' `inquiries_by_status` and the
//! `renkei_inquiries{status}` metric: after accepts, delivery, answers, a failure and each
//! restart, the counts equal the statuses the inquiries themselves report; a store without the
//! index (written by an older build) gets it rebuilt at start-up.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use renkei::dev::demo::SAMPLES;
use renkei_store::{Batch, Tree};
use serde_json::Value;

/// How long an inquiry may take to reach a final status on a loaded machine.
const FINAL_TIMEOUT: Duration = Duration::from_secs(120);

/// `inquiries_by_status` of `/v1/ops/stats`, zero counts left out.
async fn by_status(d: &Deployment) -> BTreeMap<String, u64> {
    let stats = d.ops_stats().await;
    let counts = stats["inquiries_by_status"]
        .as_object()
        .unwrap_or_else(|| panic!("no inquiries_by_status: {stats}"));
    for s in ["queued", "awaiting_code", "sent", "answered", "failed"] {
        assert!(counts.contains_key(s), "{s} missing: {stats}");
    }
    let total: u64 = counts.values().map(|v| v.as_u64().expect("count")).sum();
    assert_eq!(stats["inquiries"].as_u64(), Some(total), "{stats}");
    counts
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The statuses the inquiries themselves report, counted.
async fn actual(d: &Deployment, ids: &[String]) -> BTreeMap<String, u64> {
    let api = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let mut out = BTreeMap::new();
    for id in ids {
        *out.entry(api.status_of(id).await).or_insert(0) += 1;
    }
    out
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

async fn submit(d: &Deployment, key: &str, i: usize) -> String {
    d.client(renkei::dev::init::CLIENT_SUBSIDY)
        .submit_ok(key, &local_tax(SAMPLES[i % SAMPLES.len()].business_number))
        .await
}

async fn wait_final(d: &Deployment, id: &str) -> Value {
    d.client(renkei::dev::init::CLIENT_SUBSIDY)
        .wait_final(id, FINAL_TIMEOUT)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_follow_every_change_and_survive_restarts() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    assert_eq!(by_status(&d).await, counts(&[]));

    // Accepted while the platform is closed: held, not final.
    d.sim_mode("closed", 0).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(submit(&d, &format!("index-{i}"), i).await);
    }
    let held = by_status(&d).await;
    assert_eq!(held, actual(&d, &ids).await);
    assert_eq!(held.values().sum::<u64>(), 3);
    assert!(!held.contains_key("answered") && !held.contains_key("failed"));

    // Delivered and answered.
    d.sim_mode("open", 0).await;
    for id in &ids {
        assert_eq!(wait_final(&d, id).await["status"], "answered");
    }
    assert_eq!(by_status(&d).await, counts(&[("answered", 3)]));

    // A restart keeps the counts; a deadline that passes fails one more.
    d.kill_gateway();
    d.set_gateway("inquiry_deadline_secs", "1");
    d.sim_mode("closed", 0).await;
    d.start_gateway().await;
    assert_eq!(by_status(&d).await, counts(&[("answered", 3)]));
    let late = submit(&d, "index-late", 0).await;
    ids.push(late.clone());
    assert_eq!(wait_final(&d, &late).await["status"], "failed");
    let after = by_status(&d).await;
    assert_eq!(after, counts(&[("answered", 3), ("failed", 1)]));
    assert_eq!(after, actual(&d, &ids).await);

    // A store without the index (as an older build left it): rebuilt at start-up.
    d.kill_gateway();
    {
        let store = d.open_store();
        let mut b = Batch::new();
        for tree in [Tree::InquiryStatus, Tree::Tallies] {
            for (k, _) in store.range(tree, &[], &[], usize::MAX).expect("scan") {
                b.delete(tree, k);
            }
        }
        b.delete(
            Tree::Meta,
            renkei::inquiry::repo::META_STATUS_INDEXED.to_vec(),
        );
        store.commit(b).await.expect("drop the index");
        assert!(renkei_store::tallies(store.as_ref(), Tree::InquiryStatus)
            .expect("tallies")
            .is_empty());
    }
    d.start_gateway().await;
    assert_eq!(
        by_status(&d).await,
        counts(&[("answered", 3), ("failed", 1)])
    );
}
