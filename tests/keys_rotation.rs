//! Key rotation while serving (issue 5): under a steady load of inquiries, a security officer
//! rotates the signing, sealing and at-rest keys; not one inquiry fails, stored data stays
//! readable (also after a restart), re-encryption finishes, old versions can then be retired,
//! the active one cannot, and every key action is in the linkage records.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::Value;

async fn post(api: &Api, path: &str) -> Reply {
    api.send(hyper::Method::POST, path, &[], Bytes::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_every_key_under_load_loses_nothing() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;
    let business = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let officer = d.client("security-officer");

    // A steady load: 4 submitters until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let api = business.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let bn = renkei::dev::demo::SAMPLES[(w + i) % 3].business_number;
                ids.push(api.submit_ok(&format!("rot-{w}-{i}"), &local_tax(bn)).await);
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        }));
    }
    let wait_more = |n: usize| {
        let d = &d;
        async move {
            wait_until(
                Duration::from_secs(20),
                "more inquiries are accepted",
                || async { d.ops_stats().await["inquiries"].as_u64().unwrap_or(0) as usize >= n },
            )
            .await
        }
    };
    wait_more(20).await;
    for (i, purpose) in ["signing", "sealing", "at-rest"].iter().enumerate() {
        let r = post(&officer, &format!("/v1/keys/{purpose}/rotate")).await;
        assert_eq!(r.status, 200, "rotate {purpose}: {}", r.body);
        assert_eq!(r.body["version"], 2, "{purpose} is now at version 2");
        wait_more(40 + 20 * i).await;
    }
    // Right after the at-rest rotation, v1 still protects data: retiring it must be refused.
    let status = officer.get("/v1/keys/status").await;
    if status.body["remaining"].as_u64().unwrap_or(0) > 0 {
        let r = post(&officer, "/v1/keys/at-rest/1/retire").await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.body["code"], "key_in_use");
    }
    stop.store(true, Ordering::Relaxed);
    let mut ids = Vec::new();
    for t in load {
        ids.extend(t.await.unwrap());
    }
    assert!(ids.len() >= 60, "the load ran through all rotations");
    for id in &ids {
        let v = business.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(
            v["status"], "answered",
            "inquiry {id} across rotations: {v}"
        );
    }

    // Re-encryption onto at-rest v2 finishes by itself.
    wait_until(Duration::from_secs(30), "re-encryption is done", || async {
        officer.get("/v1/keys/status").await.body["remaining"] == 0
    })
    .await;
    // What v2 protects now counts every sealed value: each inquiry (results and all) and each
    // person's individual number, basic facts and code (符号).
    let status = officer.get("/v1/keys/status").await;
    let on_v2 = status.body["at_rest_usage"]["2"].as_u64().unwrap_or(0);
    assert!(
        on_v2 >= ids.len() as u64 + 3 * 3,
        "at-rest v2 protects {on_v2} values for {} inquiries and 3 persons",
        ids.len()
    );
    let list = officer.get("/v1/keys").await;
    let rows = list.body.as_array().expect("key list").clone();
    let state = |p: &str, v: u64| -> String {
        rows.iter()
            .find(|r| r["purpose"] == p && r["version"] == v)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(state("signing", 2), "active");
    assert_eq!(state("signing", 1), "verify-only");
    let at_rest_v1 = rows
        .iter()
        .find(|r| r["purpose"] == "at-rest" && r["version"] == 1)
        .expect("at-rest v1 listed");
    assert_eq!(at_rest_v1["protects"], 0, "nothing left on at-rest v1");

    // The active version cannot be retired; old ones can, and then they are gone.
    let r = post(&officer, "/v1/keys/signing/2/retire").await;
    assert_eq!(r.status, 409, "retiring the active signing key: {}", r.body);
    for purpose in ["at-rest", "sealing", "signing"] {
        let r = post(&officer, &format!("/v1/keys/{purpose}/1/retire")).await;
        assert_eq!(r.status, 200, "retire {purpose} v1: {}", r.body);
    }
    let rows: Vec<Value> = officer
        .get("/v1/keys")
        .await
        .body
        .as_array()
        .unwrap()
        .clone();
    let retired = ["at-rest", "sealing", "signing"];
    let v1: Vec<&Value> = rows
        .iter()
        .filter(|r| r["version"] == 1 && retired.iter().any(|p| r["purpose"] == *p))
        .collect();
    assert_eq!(v1.len(), 3, "{rows:?}");
    assert!(v1.iter().all(|r| r["status"] == "retired"), "{v1:?}");

    // Only business systems' persons on at-rest v2 now: a restart (keys loaded from disk)
    // still reads them — a new link of a known person resolves through the blind index and
    // a new person's code acquisition decrypts its individual number.
    d.kill_gateway();
    d.start_gateway().await;
    let business = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    // Every inquiry made across the rotations still opens with v1 retired: none was left on it.
    for id in &ids {
        let r = business.get(&format!("/v1/inquiries/{id}")).await;
        assert_eq!(
            r.status, 200,
            "inquiry {id} with at-rest v1 retired: {}",
            r.body
        );
        assert_eq!(r.body["status"], "answered", "{}", r.body);
        assert!(r.body["result"]["items"].is_array(), "{}", r.body);
    }
    let again = business
        .put_json(
            &format!(
                "/v1/persons/{}",
                renkei::dev::demo::SAMPLES[0].business_number
            ),
            &link_body(0),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let other = d.client(renkei::dev::init::CLIENT_SECOND);
    let linked = other.put_json("/v1/persons/K000001", &link_body(1)).await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    let id = business
        .submit_ok(
            "after-restart",
            &local_tax(renkei::dev::demo::SAMPLES[2].business_number),
        )
        .await;
    let v = business.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(v["status"], "answered", "{v}");

    // The security officer's command line shows the same state.
    let out = std::process::Command::new(BIN)
        .args([
            "keys",
            "list",
            "--output",
            "table",
            "--dir",
            d.dir.to_str().unwrap(),
            "--gateway",
        ])
        .arg(format!("https://{}", d.gw_addr.unwrap()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let signing_rows: Vec<&str> = table.lines().filter(|l| l.starts_with("signing")).collect();
    assert_eq!(signing_rows.len(), 2, "{table}");
    assert!(signing_rows.iter().any(|l| l.contains("active")), "{table}");
    assert!(
        signing_rows.iter().any(|l| l.contains("retired")),
        "{table}"
    );

    // Every key action is in the linkage records, with who did it.
    let auditor = d.client("auditor");
    let recs = auditor
        .get("/v1/audit/records?kind=key_action&limit=100")
        .await;
    assert_eq!(recs.status, 200, "{}", recs.body);
    let actions: Vec<String> = recs.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["staff"]["action"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for want in [
        "keys.rotate signing -> v2",
        "keys.rotate sealing -> v2",
        "keys.rotate at-rest -> v2",
        "keys.retire signing v1",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    assert!(recs.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["staff"]["actor"] == "security-officer"));
}
