//! Linkage records end to end (issue 6): every inquiry produces exactly its records; auditors
//! query them (JSON and CSV), export a bundle that verifies offline with `renkei audit verify`
//! across a signing-key rotation, detect a flipped byte, export one person alone, verify the
//! live store, and detect an edit made to the store on disk while the gateway was down.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::Value;

fn cli(d: &Deployment, args: &[&str]) -> std::process::Output {
    let gw = format!("https://{}", d.gw_addr.expect("gateway"));
    Command::new(BIN)
        .args(args)
        .args(["--dir", d.dir.to_str().unwrap(), "--gateway", &gw])
        .output()
        .expect("run renkei")
}

fn records(v: &Value) -> Vec<Value> {
    v["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_complete_exportable_verifiable_and_tamper_evident() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    let unified = d.link_samples().await;
    d.wait_codes(3).await;
    let business = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let auditor = d.client("auditor");
    let officer = d.client("security-officer");

    let mut ids = Vec::new();
    for (i, s) in renkei::dev::demo::SAMPLES.iter().enumerate() {
        let id = business
            .submit_ok(&format!("a-{i}"), &local_tax(s.business_number))
            .await;
        ids.push(id);
    }
    for id in &ids {
        let v = business.wait_final(id, Duration::from_secs(30)).await;
        assert_eq!(v["status"], "answered");
    }
    let denied = business
        .submit(
            "denied",
            &serde_json::json!({"business_number": renkei::dev::demo::SAMPLES[0].business_number,
                "procedure": "JT09999999999999", "item": "TM09999999999999",
                "conditions": {"fiscal_year": 2026}}),
        )
        .await;
    assert_eq!(denied.status, 403);

    // Exactly the records each inquiry should have: queued, sent, answered.
    let q = auditor
        .get("/v1/audit/records?kind=inquiry&limit=1000")
        .await;
    assert_eq!(q.status, 200, "{}", q.body);
    let mut by_id: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for r in records(&q.body) {
        by_id
            .entry(r["reference"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push((
                r["result"].as_str().unwrap_or_default().to_string(),
                r["reason"].as_str().map(str::to_string),
            ));
    }
    assert_eq!(by_id.len(), 3, "{by_id:?}");
    for id in &ids {
        let mut got = by_id[id].clone();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("accepted".to_string(), Some("queued".to_string())),
                ("accepted".to_string(), Some("sent".to_string())),
                ("answered".to_string(), None),
            ],
            "records of {id}"
        );
    }
    let answered: Vec<Value> = records(&q.body)
        .into_iter()
        .filter(|r| r["result"] == "answered")
        .collect();
    assert!(answered
        .iter()
        .all(|r| r["provided_at"].is_string() && r["serial"].is_string()));
    let d_q = auditor.get("/v1/audit/records?kind=denied_request").await;
    let d_r = records(&d_q.body);
    assert_eq!(d_r.len(), 1);
    assert_eq!(d_r[0]["reason"], "not_permitted");
    assert_eq!(d_r[0]["business_system"], "kodomo-iryo");
    // By person, by business number, and CSV.
    let p = auditor
        .get(&format!("/v1/audit/records?person={}", unified[1]))
        .await;
    assert!(!records(&p.body).is_empty());
    assert!(records(&p.body)
        .iter()
        .all(|r| r["person"] == unified[1].as_str()));
    let by_bn = auditor
        .get(&format!(
            "/v1/audit/records?business_number={}&system=kodomo-iryo&kind=inquiry",
            renkei::dev::demo::SAMPLES[1].business_number
        ))
        .await;
    assert_eq!(records(&by_bn.body).len(), 3);
    let csv = auditor
        .get("/v1/audit/records?format=csv&kind=inquiry")
        .await;
    let text = String::from_utf8_lossy(&csv.raw).to_string();
    assert!(text.starts_with("seq,kind,requested_at,"), "{text}");
    assert_eq!(text.lines().count(), 1 + 9);
    // A business system may not read records.
    assert_eq!(business.get("/v1/audit/records").await.status, 403);

    // Rotate the signing key, then make more records: the log now spans two key versions.
    let r = officer
        .send(
            hyper::Method::POST,
            "/v1/keys/signing/rotate",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // This one asks for non-disclosure (照会側不開示): carried into its records.
    let mut late_body = public_fund(renkei::dev::demo::SAMPLES[2].business_number);
    late_body["non_disclosure"] = serde_json::json!(true);
    let late = business.submit_ok("late", &late_body).await;
    business.wait_final(&late, Duration::from_secs(30)).await;
    let late_records: Vec<Value> = records(
        &auditor
            .get("/v1/audit/records?kind=inquiry&limit=1000")
            .await
            .body,
    )
    .into_iter()
    .filter(|r| r["reference"] == late.as_str())
    .collect();
    assert_eq!(late_records.len(), 3);
    assert!(late_records.iter().all(|r| r["non_disclosure"] == true));

    // Offline: public keys, export, verify with the CLI.
    let keys = cli(&d, &["audit", "public-keys"]);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let key_file = d.tmp.path().join("keys.pem");
    std::fs::write(&key_file, &keys.stdout).unwrap();
    let bundle = d.tmp.path().join("bundle");
    let out = cli(&d, &["audit", "export", "--out", bundle.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |b: &std::path::Path| {
        Command::new(BIN)
            .args(["audit", "verify", b.to_str().unwrap(), "--public-key"])
            .arg(&key_file)
            .output()
            .unwrap()
    };
    let ok = verify(&bundle);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK:"));
    // Flip one byte of one record: detected, located.
    let rec_path = bundle.join("records.jsonl");
    let original = std::fs::read_to_string(&rec_path).unwrap();
    let tampered = original.replacen("\"answered\"", "\"refused\"", 1);
    assert_ne!(tampered, original);
    std::fs::write(&rec_path, tampered).unwrap();
    let bad = verify(&bundle);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(err.contains("altered"), "{err}");

    // One person's records alone, with proofs; nobody else's content.
    let pb = d.tmp.path().join("person");
    let out = cli(
        &d,
        &[
            "audit",
            "export",
            "--person",
            &unified[0],
            "--out",
            pb.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verify(&pb).status.success());
    let all_text: String = std::fs::read_dir(&pb)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(all_text.contains(&unified[0]));
    for other in &unified[1..] {
        assert!(
            !all_text.contains(other.as_str()),
            "another person leaked into the bundle"
        );
    }

    // Live: the stored log verifies in place, across both key versions.
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], true, "{}", live.body);
    let before = d.ops_stats().await["records"].as_u64().unwrap();

    // Edit the store on disk while the gateway is down: detected on the next live check.
    d.kill_gateway();
    let seq = {
        use renkei_store::{Batch, Tree};
        let store = d.open_store();
        // The first record naming the business system (staff sign-ins come before it).
        let (seq, mut entry) = (0u64..)
            .map_while(|s| {
                store
                    .get(Tree::Records, &s.to_be_bytes())
                    .unwrap()
                    .map(|raw| (s, renkei_records::StoredEntry::from_bytes(&raw).unwrap()))
            })
            .find(|(_, e)| {
                e.content
                    .as_deref()
                    .is_some_and(|c| String::from_utf8_lossy(c).contains("kodomo-iryo"))
            })
            .expect("a record of kodomo-iryo");
        let content = String::from_utf8(entry.content.clone().unwrap()).unwrap();
        entry.content = Some(content.replacen("kodomo-iryo", "kokuho", 1).into_bytes());
        let mut b = Batch::new();
        b.put(Tree::Records, seq.to_be_bytes().to_vec(), entry.to_bytes());
        store.commit(b).await.unwrap();
        seq
    };
    d.start_gateway().await;
    let auditor = d.client("auditor");
    assert!(
        d.ops_stats().await["records"].as_u64().unwrap() >= before,
        "records survive SIGKILL and restart"
    );
    let live = auditor.get("/v1/audit/verify").await;
    assert_eq!(live.body["ok"], false, "{}", live.body);
    assert_eq!(live.body["problem"]["kind"], "altered", "{}", live.body);
    let detail = live.body["problem"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("seq Some({seq})")),
        "names the record: {detail}"
    );
}
