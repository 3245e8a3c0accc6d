//! The platform's master information decides which platform keys the gateway trusts, over
//! the real binary with the simulator: a document that re-publishes an existing version with
//! a different key is refused (the error surfaces in the master status) and the old key stays
//! trusted; a document that drops a key replaces the trusted set, and once the overlap ends a
//! platform answer signed with the dropped key is refused.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{local_tax, wait_until, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use serde_json::{json, Value};

fn b64_key() -> String {
    let key = renkei_crypto::SigningKey::generate().expect("key");
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_sec1())
}

async fn master(d: &Deployment) -> Value {
    d.ops_stats().await["master_info"].clone()
}

/// Sets the simulator's master-information control (`/admin/master`).
async fn control(d: &Deployment, body: Value) {
    let r = d.sim_admin().post_json("/admin/master", &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn lists(v: &Value, what: &str) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(what)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_information_replaces_the_platform_keys_and_never_changes_a_version() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.set_gateway("master_refresh_secs", "1");
    d.set_gateway("master_key_overlap_secs", "3");
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;
    let api = d.client(CLIENT_SUBSIDY);
    api.inquire_answered("master-1", SAMPLES[0].business_number)
        .await;
    assert!(lists(
        &master(&d).await["platform_key_versions"],
        "signing v1"
    ));

    // Version 1 re-published with another key: refused, v1 still trusted.
    control(&d, json!({"replace_signing": {"1": b64_key()}})).await;
    wait_until(
        Duration::from_secs(20),
        "the changed key is refused",
        || async { master(&d).await["last_error"] == "master_key_changed" },
    )
    .await;
    api.inquire_answered("master-2", SAMPLES[1].business_number)
        .await;
    assert!(lists(
        &master(&d).await["platform_key_versions"],
        "signing v1"
    ));

    // The platform publishes a new version 2 and drops version 1, yet keeps signing with 1.
    control(
        &d,
        json!({"replace_signing": {"2": b64_key()}, "drop_signing": [1]}),
    )
    .await;
    wait_until(Duration::from_secs(20), "v1 is in its overlap", || async {
        let m = master(&d).await;
        lists(&m["platform_keys_dropping"], "signing v1") && m["last_error"].is_null()
    })
    .await;
    wait_until(
        Duration::from_secs(20),
        "v1 is no longer trusted",
        || async {
            let m = master(&d).await;
            !lists(&m["platform_key_versions"], "signing v1")
                && lists(&m["platform_key_versions"], "signing v2")
        },
    )
    .await;
    // An answer signed with v1 is refused: the gateway sends again and again (the simulator
    // replays the same v1-signed answer), and the inquiry is never taken as answered.
    let before = d.sim_stats().await["inquiry_resends_deduped"]
        .as_u64()
        .unwrap_or(0);
    let id = api
        .submit_ok("master-3", &local_tax(SAMPLES[2].business_number))
        .await;
    wait_until(
        Duration::from_secs(30),
        "the gateway refused the v1-signed answers",
        || async {
            d.sim_stats().await["inquiry_resends_deduped"]
                .as_u64()
                .unwrap_or(0)
                >= before + 3
        },
    )
    .await;
    assert_ne!(api.status_of(&id).await, "answered");
}
