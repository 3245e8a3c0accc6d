//! Manual provision (手動提供) end to end (issue 13), over the real binary and simulator: an
//! item the national table marks manual is not answered from copies; the simulator hands the
//! request to the city, the gateway fetches it and maps it to the business system holding the
//! person, which lists it in its own numbers and answers it — provide (checked against the
//! item's copy layout), not held, refuse — and the simulator's inquiry ends `answered`,
//! `not_held` or `refused`; a person nobody holds is answered `not_held` automatically; a
//! deadline passing is `timed_out` on both sides and a late answer is refused; another system
//! neither sees nor answers the request; an answer made while the platform is closed reaches
//! it when it opens; every step is a `provision` record; nothing personal in plaintext.

mod common;
mod provision_support;

use common::{sample_digits, wait_for, Deployment};
use provision_support::{
    ask_manual, export_person, field, inquiry_becomes, plaintext_hits, provision_inquiry, TIMEOUT,
};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY, ITEM_LOCAL_TAX, PROC_MANUAL_LOCAL_TAX};
use serde_json::{json, Value};

fn request_path(id: &str) -> String {
    format!("/v1/provision-requests/{id}")
}

fn answer_path(id: &str) -> String {
    format!("/v1/provision-requests/{id}/answer")
}

/// The request as the holding system sees it, once the gateway has fetched it.
async fn fetched(api: &common::Api, id: &str) -> Value {
    wait_for(TIMEOUT, "the gateway fetched the request", || async {
        let r = api.get(&request_path(id)).await;
        (r.status == 200).then_some(r.body)
    })
    .await
}

/// The ids on every page of the caller's requests (with `query`), following the cursor.
async fn listed_ids(api: &common::Api, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/provision-requests?limit=2&cursor={c}{query}"),
            None => format!("/v1/provision-requests?limit=2{query}"),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for x in r.body["provision_requests"].as_array().expect("list") {
            ids.push(x["id"].as_str().expect("id").to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_requests_are_answered_by_the_holding_system_with_deadlines_and_records() {
    let mut d = Deployment::new();
    d.set_in_table("renkei.toml", "platform", "provision_fetch_ms", "200");
    d.fast_backoff();
    d.start().await;
    let unified = d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let other = d.client(CLIENT_SECOND);

    // Another agency asks for a manual item about each sample, and about a person nobody
    // here holds.
    let q: Vec<String> = {
        let mut v = Vec::new();
        for u in &unified {
            v.push(ask_manual(&d, u, None).await);
        }
        v
    };
    let nobody = renkei_ids::UnifiedAddressNumber::from_serial(987_654)
        .expect("unified")
        .to_string();
    let q_nobody = ask_manual(&d, &nobody, None).await;
    for id in q.iter().chain([&q_nobody]) {
        let s = provision_inquiry(&d, id).await;
        assert_eq!(s["status"], "pending", "not answered from copies: {s}");
        assert!(s["deadline"].is_string(), "{s}");
    }

    // The holding system sees each request in its own business number.
    for (i, id) in q.iter().enumerate() {
        let r = fetched(&api, id).await;
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["business_number"], SAMPLES[i].business_number, "{r}");
        assert_eq!(r["procedure"], PROC_MANUAL_LOCAL_TAX);
        assert_eq!(r["item"], ITEM_LOCAL_TAX);
        assert_eq!(r["as_of"], "2026-06-01");
        assert!(
            r["deadline"].is_string() && r["inquirer"].is_string(),
            "{r}"
        );
        assert!(
            r.get("unified_address_number").is_none(),
            "own numbers only: {r}"
        );
    }
    let mut pending = listed_ids(&api, "&status=pending").await;
    pending.sort();
    let mut want = q.clone();
    want.sort();
    assert_eq!(pending, want, "paged list of the caller's pending requests");

    // Nobody holds the last person: answered "not held" by the gateway, listed to no one.
    inquiry_becomes(&d, &q_nobody, "not_held").await;
    assert_eq!(api.get(&request_path(&q_nobody)).await.status, 404);

    // Another business system neither lists, reads nor answers them.
    assert!(listed_ids(&other, "").await.is_empty());
    assert_eq!(other.get(&request_path(&q[0])).await.status, 404);
    let r = other
        .post_json(&answer_path(&q[0]), &[], &json!({"decision": "not_held"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Bad answers are refused with a stable code and the field, and change nothing.
    let bad = [
        (
            json!({"decision": "provide", "data": {"fiscal_year": "2026", "income_levy": "12x", "per_capita_levy": "1"}}),
            "data.income_levy",
        ),
        (json!({"decision": "provide"}), "data"),
        (
            json!({"decision": "refuse", "reason": "Not A Code 1234"}),
            "reason",
        ),
        (json!({"decision": "refuse"}), "reason"),
        (json!({"decision": "not_held", "reason": "x"}), "reason"),
        (json!({"decision": "maybe"}), "decision"),
    ];
    for (body, field_name) in &bad {
        let r = api.post_json(&answer_path(&q[0]), &[], body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["field"], *field_name, "{body}: {}", r.body);
        assert!(r.body["code"].is_string(), "{}", r.body);
    }
    assert_eq!(fetched(&api, &q[0]).await["status"], "pending");

    // Provide (full-width digits converted, as copies are), not held, refuse.
    let r = api
        .post_json(
            &answer_path(&q[0]),
            &[],
            &json!({"decision": "provide", "data": {"fiscal_year": "2026", "income_levy": "９１２３４５", "per_capita_levy": "3500"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["id"], q[0].as_str());
    assert_eq!(r.body["status"], "answered");
    let again = api
        .post_json(&answer_path(&q[0]), &[], &json!({"decision": "not_held"}))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body["code"], "already_answered");
    let r = api
        .post_json(&answer_path(&q[1]), &[], &json!({"decision": "not_held"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = api
        .post_json(
            &answer_path(&q[2]),
            &[],
            &json!({"decision": "refuse", "reason": "ordinance-forbids"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    let a = inquiry_becomes(&d, &q[0], "answered").await;
    assert_eq!(
        field(&a, "市町村民税所得割額").as_deref(),
        Some("912345"),
        "{a}"
    );
    assert_eq!(
        field(&a, "市町村民税均等割額").as_deref(),
        Some("3500"),
        "{a}"
    );
    inquiry_becomes(&d, &q[1], "not_held").await;
    let a = inquiry_becomes(&d, &q[2], "refused").await;
    assert_eq!(a["answer"]["reason"], "ordinance-forbids", "{a}");
    wait_for(TIMEOUT, "the answer delivered", || async {
        let r = api.get(&request_path(&q[0])).await;
        (r.body["answer"]["delivery"] == "delivered").then_some(())
    })
    .await;
    let r = api.get(&request_path(&q[0])).await;
    assert_eq!(r.body["status"], "answered", "{}", r.body);
    assert_eq!(r.body["answer"]["decision"], "provide", "{}", r.body);
    let answered = listed_ids(&api, "&status=answered").await;
    assert_eq!(answered.len(), 3, "{answered:?}");

    // A deadline passing: timed out at the platform and here, and a late answer refused.
    let late = ask_manual(&d, &unified[0], Some(1)).await;
    inquiry_becomes(&d, &late, "timed_out").await;
    wait_for(TIMEOUT, "the gateway saw the timeout", || async {
        let r = api.get(&request_path(&late)).await;
        (r.status == 200 && r.body["status"] == "timed_out").then_some(())
    })
    .await;
    let r = api
        .post_json(&answer_path(&late), &[], &json!({"decision": "not_held"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "deadline_passed");
    assert_eq!(provision_inquiry(&d, &late).await["status"], "timed_out");

    // An answer made while the platform is closed reaches it once it opens.
    let closed = ask_manual(&d, &unified[1], None).await;
    fetched(&api, &closed).await;
    d.sim_mode("closed", 0).await;
    let refused_before = d.sim_stats().await["refused_closed"].as_u64().unwrap_or(0);
    let r = api
        .post_json(&answer_path(&closed), &[], &json!({"decision": "not_held"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for(
        TIMEOUT,
        "the closed platform refused the answer",
        || async {
            let n = d.sim_stats().await["refused_closed"].as_u64().unwrap_or(0);
            (n > refused_before).then_some(())
        },
    )
    .await;
    assert_eq!(provision_inquiry(&d, &closed).await["status"], "pending");
    d.sim_mode("open", 0).await;
    inquiry_becomes(&d, &closed, "not_held").await;

    // Records: every answer, the automatic "not held" and the timeout, kind provision.
    let auditor = d.client("auditor");
    let recs = wait_for(TIMEOUT, "manual provision records", || async {
        let r = auditor
            .get("/v1/audit/records?kind=provision&limit=1000")
            .await;
        let recs = r.body["records"].as_array().cloned().unwrap_or_default();
        let has = |id: &str| recs.iter().any(|x| x["reference"] == id);
        (has(&late) && has(&q_nobody) && has(&closed)).then_some(recs)
    })
    .await;
    let reason_of = |id: &str| -> Vec<String> {
        recs.iter()
            .filter(|x| x["reference"] == id)
            .filter_map(|x| x["reason"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        reason_of(&q[0]).contains(&"manual provision: provided".to_string()),
        "{:?}",
        reason_of(&q[0])
    );
    assert!(reason_of(&q[1]).contains(&"manual provision: not held".to_string()));
    assert!(reason_of(&q[2]).contains(&"manual provision: refused (ordinance-forbids)".to_string()));
    assert!(
        reason_of(&q_nobody)
            .iter()
            .any(|r| r.contains("no business system holds the person")),
        "{:?}",
        reason_of(&q_nobody)
    );
    assert!(
        reason_of(&late)
            .iter()
            .any(|r| r.starts_with("manual provision: timed out")),
        "{:?}",
        reason_of(&late)
    );
    let provided = recs
        .iter()
        .find(|x| x["reference"] == q[0].as_str())
        .expect("record of the provision");
    assert_eq!(provided["person"], unified[0].as_str(), "{provided}");
    assert_eq!(provided["business_system"], CLIENT_SUBSIDY, "{provided}");
    assert_eq!(provided["procedure"], PROC_MANUAL_LOCAL_TAX, "{provided}");
    let out = d.cli(&[
        "audit",
        "query",
        "--kind",
        "provision",
        "--limit",
        "1000",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(q[0].as_str()),
        "the CLI lists the manual provision"
    );

    // The person's export holds the manual provisions.
    let (_, text) = export_person(&d, &unified[0]);
    assert!(text.contains(q[0].as_str()), "the provision in the export");
    assert!(text.contains(late.as_str()), "the timeout in the export");

    // Privacy: neither the provided value nor an individual number in plaintext anywhere on
    // disk or in the logs.
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("provided value (JSON)".into(), b"\"912345\"".to_vec()),
        ("provided value (XML)".into(), b">912345<".to_vec()),
        (
            "provided value (full-width)".into(),
            "９１２３４５".as_bytes().to_vec(),
        ),
    ];
    for i in 0..SAMPLES.len() {
        needles.push((
            format!("individual number {i}"),
            sample_digits(i).into_bytes(),
        ));
    }
    let hits = plaintext_hits(&d, &needles);
    assert!(hits.is_empty(), "plaintext found: {hits:?}");
}
