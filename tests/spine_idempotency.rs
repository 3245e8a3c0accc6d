//! Idempotency of `POST /v1/inquiries`: a key names one inquiry, whatever the retries and
//! however many race.

mod common;

use std::collections::HashSet;

use common::{local_tax, public_fund, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_body_same_id_different_body_conflicts() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let body = local_tax(SAMPLES[0].business_number);
    let a = api.submit("idem-1", &body).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let b = api.submit("idem-1", &body).await;
    assert_eq!(b.status, 202, "{}", b.body);
    assert_eq!(a.body["id"], b.body["id"], "a retry answers the first id");

    let other = public_fund(SAMPLES[0].business_number);
    let c = api.submit("idem-1", &other).await;
    assert_eq!(c.status, 409, "{}", c.body);
    assert_eq!(c.body["code"], "idempotency_key_reused");

    // A different key makes a different inquiry.
    let e = api.submit("idem-2", &body).await;
    assert_eq!(e.status, 202, "{}", e.body);
    assert_ne!(e.body["id"], a.body["id"]);

    assert_eq!(d.ops_stats().await["inquiries"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_inquiry() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let before = d.ops_stats().await["inquiries"].as_u64().expect("count");
    let api = d.client(CLIENT_SUBSIDY);
    let body = local_tax(SAMPLES[1].business_number);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let api = api.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(
            async move { api.submit("race-key", &body).await },
        ));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status, 202, "{}", r.body);
        ids.insert(r.body["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 1, "32 racing requests with one key: {ids:?}");
    let after = d.ops_stats().await["inquiries"].as_u64().expect("count");
    assert_eq!(after, before + 1);

    // And it is sent once.
    let id = ids.into_iter().next().expect("one id");
    let v = api
        .wait_final(&id, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(v["status"], "answered", "{v}");
    let stats = d.sim_stats().await;
    assert_eq!(stats["inquiries_accepted"], 1);
    assert!(stats["effects"].get(id.as_str()).is_some());
}
