//! The two-person rule for key actions (issue 5, optional by config): with it on, a rotation
//! asked by one security officer waits; the same officer cannot approve it; a second officer's
//! approval carries it out once; request and approval are both in the linkage records.

mod common;

use bytes::Bytes;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_officer_must_approve() {
    let mut d = Deployment::new();
    d.set_line("renkei.toml", "two_person_rule", "true");
    d.start().await;
    let first = d.client("security-officer");
    let second = d.client("security-officer-2");
    let post = |api: &Api, path: &str| {
        let api = api.clone();
        let path = path.to_string();
        async move {
            api.send(hyper::Method::POST, &path, &[], Bytes::new())
                .await
        }
    };

    let asked = post(&first, "/v1/keys/signing/rotate").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending_approval");
    let id = asked.body["id"].as_str().unwrap().to_string();
    // Nothing happened yet.
    let keys = first.get("/v1/keys").await.body;
    let signing: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["purpose"] == "signing")
        .collect();
    assert_eq!(signing.len(), 1, "no new version before approval");
    let pending = first.get("/v1/keys/requests").await.body;
    assert_eq!(pending.as_array().unwrap().len(), 1);

    // The requester cannot approve it.
    let own = post(&first, &format!("/v1/keys/requests/{id}/approve")).await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert_eq!(own.body["code"], "same_officer");

    // A second officer can, once.
    let ok = post(&second, &format!("/v1/keys/requests/{id}/approve")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["version"], 2);
    let again = post(&second, &format!("/v1/keys/requests/{id}/approve")).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(
        first
            .get("/v1/keys/requests")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The request, the refused self-approval and the approval are all recorded.
    let recs = d
        .client("auditor")
        .get("/v1/audit/records?kind=key_action&limit=100")
        .await
        .body;
    let actions: Vec<String> = recs["records"]
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
    assert!(
        actions.iter().any(|a| a == "keys.request rotate signing"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a
            == "keys.rotate signing -> v2 (requested by security-officer, approved by security-officer-2)"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == &format!("keys.approve {id}")),
        "{actions:?}"
    );
}
