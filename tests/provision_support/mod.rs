//! What the provision tests (`tests/provision.rs`, `tests/provision_import.rs`) share: the
//! second business system given provision rights, a copy's versions as its system sees them,
//! and the simulator's provision inquiries (answered from copies, or handed to the city for a
//! manual item).

// Each test file uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use super::common::{wait_for, wait_until, Api, Deployment};
use renkei::dev::init::{
    AFFAIR_LOCAL_TAX, AFFAIR_NHI, ITEM_LOCAL_TAX, PROC_LOCAL_TAX, PROC_MANUAL_LOCAL_TAX,
};
use serde_json::{json, Value};

pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn copy_path(bn: &str, item: &str) -> String {
    format!("/v1/copies/{bn}/{item}")
}

/// Lets the second business system (`kokuho`, owner of no sample's business number) provide
/// local-tax copies: it names the local-tax affair too, whose permission-table rows have
/// `direction = "provision"`.
pub fn second_system_provides_local_tax(d: &Deployment) {
    let path = d.dir.join("renkei.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let line = format!("affairs = [\"{AFFAIR_NHI}\"]");
    assert!(text.contains(&line), "second client's affairs in config");
    let text = text.replacen(
        &line,
        &format!("affairs = [\"{AFFAIR_NHI}\", \"{AFFAIR_LOCAL_TAX}\"]"),
        1,
    );
    std::fs::write(&path, text).expect("write config");
}

/// The status of `GET` on a copy and its versions.
pub async fn versions_of(api: &Api, bn: &str, item: &str) -> (u16, Vec<Value>) {
    let r = api.get(&copy_path(bn, item)).await;
    let v = r.body["versions"].as_array().cloned().unwrap_or_default();
    (r.status, v)
}

/// A copy's versions (the copy must exist).
pub async fn versions(api: &Api, bn: &str, item: &str) -> Vec<Value> {
    let (status, v) = versions_of(api, bn, item).await;
    assert_eq!(status, 200, "GET {}", copy_path(bn, item));
    v
}

/// Waits until a copy has `n` versions, all transferred.
pub async fn all_transferred(api: &Api, bn: &str, item: &str, n: usize) {
    wait_until(TIMEOUT, "copy versions transferred", || async {
        let (_, v) = versions_of(api, bn, item).await;
        v.len() == n && v.iter().all(|x| x["status"] == "transferred")
    })
    .await;
}

/// Another agency's provision inquiry at the simulator, and its answer.
pub async fn ask(
    d: &Deployment,
    unified: &str,
    procedure: &str,
    item: &str,
    as_of: Option<&str>,
) -> Value {
    let admin = d.sim_admin();
    let mut body =
        json!({"unified_address_number": unified, "procedure_code": procedure, "item_code": item});
    if let Some(a) = as_of {
        body["as_of"] = json!(a);
    }
    let r = admin
        .post_json("/admin/provision-inquiries", &[], &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    let r = admin.get(&format!("/admin/provision-inquiries/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    r.body
}

/// Another agency's inquiry for local-tax information on `as_of`, and its answer.
pub async fn ask_local_tax(d: &Deployment, unified: &str, as_of: &str) -> Value {
    ask(d, unified, PROC_LOCAL_TAX, ITEM_LOCAL_TAX, Some(as_of)).await
}

/// Exports one person's records with the CLI (as the auditor) into a folder under the
/// deployment's temporary directory; returns the folder and its `records.jsonl`.
pub fn export_person(d: &Deployment, unified: &str) -> (std::path::PathBuf, String) {
    let pb = d.tmp.path().join("person");
    let out = d.cli(&[
        "audit",
        "export",
        "--person",
        unified,
        "--out",
        pb.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(pb.join("records.jsonl")).expect("records");
    (pb, text)
}

/// Every (needle label, file) where one of `needles` is found in plaintext under the
/// deployment (its logs, store and, on PostgreSQL, the database's files).
pub fn plaintext_hits(d: &Deployment, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let contains = |hay: &[u8], n: &[u8]| !n.is_empty() && hay.windows(n.len()).any(|w| w == n);
    let mut hits = Vec::new();
    for f in d.all_files() {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for (label, n) in needles {
            if contains(&bytes, n) {
                hits.push(format!("{label} in {}", f.display()));
            }
        }
    }
    hits
}

/// A field of a provision answer, by the platform's name.
pub fn field(answer: &Value, name: &str) -> Option<String> {
    answer["answer"]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .map(str::to_string)
}

/// Another agency's inquiry for local-tax information under the procedure a person answers
/// (手動提供): the simulator hands it to the city, `pending`; `deadline_ms` overrides the
/// simulator's deadline. Returns its id.
pub async fn ask_manual(d: &Deployment, unified: &str, deadline_ms: Option<u64>) -> String {
    let mut body = json!({
        "unified_address_number": unified,
        "procedure_code": PROC_MANUAL_LOCAL_TAX,
        "item_code": ITEM_LOCAL_TAX,
        "as_of": "2026-06-01",
    });
    if let Some(ms) = deadline_ms {
        body["deadline_ms"] = json!(ms);
    }
    let r = d
        .sim_admin()
        .post_json("/admin/provision-inquiries", &[], &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

/// The simulator's provision inquiry `id` as it stands.
pub async fn provision_inquiry(d: &Deployment, id: &str) -> Value {
    let r = d
        .sim_admin()
        .get(&format!("/admin/provision-inquiries/{id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Waits until the simulator's provision inquiry `id` is in `status`; returns it.
pub async fn inquiry_becomes(d: &Deployment, id: &str, status: &str) -> Value {
    wait_for(TIMEOUT, &format!("provision inquiry {status}"), || async {
        let q = provision_inquiry(d, id).await;
        (q["status"] == status).then_some(q)
    })
    .await
}
