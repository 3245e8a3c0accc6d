//! Linking over real HTTPS: idempotency across two business systems, isolation between them,
//! staff lookups by individual number (recorded, answering only the unified number), searches
//! by the basic four facts, and merging two unified numbers.

mod common;

use bytes::Bytes;
use common::{link_body, sample_digits, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_isolation_lookup_match_and_merge() {
    let mut d = Deployment::new();
    d.start().await;
    let subsidy = d.client(CLIENT_SUBSIDY);
    let second = d.client(CLIENT_SECOND);

    // The same individual number linked by two systems gets one unified number.
    let a = subsidy
        .put_json(
            &format!("/v1/persons/{}", SAMPLES[0].business_number),
            &link_body(0),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let again = subsidy
        .put_json(
            &format!("/v1/persons/{}", SAMPLES[0].business_number),
            &link_body(0),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let b = second.put_json("/v1/persons/K000777", &link_body(0)).await;
    assert_eq!(b.status, 201, "{}", b.body);
    let u0 = a.body["unified_address_number"]
        .as_str()
        .expect("unified")
        .to_string();
    assert_eq!(again.body["unified_address_number"], u0.as_str());
    assert_eq!(b.body["unified_address_number"], u0.as_str());

    // Each system sees the person under its own number only.
    let own = subsidy
        .get(&format!(
            "/v1/persons:lookup?business_number={}",
            SAMPLES[0].business_number
        ))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["unified_address_number"], u0.as_str());
    assert_eq!(own.body["business_number"], SAMPLES[0].business_number);
    let by_u = second
        .get(&format!("/v1/persons:lookup?unified={u0}"))
        .await;
    assert_eq!(by_u.status, 200);
    assert_eq!(by_u.body["business_number"], "K000777", "{}", by_u.body);
    assert_eq!(
        second
            .get(&format!(
                "/v1/persons:lookup?business_number={}",
                SAMPLES[0].business_number
            ))
            .await
            .status,
        404,
        "system B cannot resolve system A's number"
    );
    // Sample 1 is linked by the subsidy system only: invisible to the second.
    let c = subsidy
        .put_json(
            &format!("/v1/persons/{}", SAMPLES[1].business_number),
            &link_body(1),
        )
        .await;
    let u1 = c.body["unified_address_number"]
        .as_str()
        .expect("unified")
        .to_string();
    assert_eq!(
        second
            .get(&format!("/v1/persons:lookup?unified={u1}"))
            .await
            .status,
        404
    );

    // Facts match (API-linked persons are indexed too); another system sees only its own.
    let q = json!({"kana": SAMPLES[1].kana, "birth_date": SAMPLES[1].birth_date,
                   "sex": SAMPLES[1].sex, "address": SAMPLES[1].address});
    let m = subsidy.post_json("/v1/persons:match", &[], &q).await;
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(m.body["persons"][0]["unified_address_number"], u1.as_str());
    let m2 = second.post_json("/v1/persons:match", &[], &q).await;
    assert_eq!(m2.body["persons"], json!([]), "{}", m2.body);
    let wrong = json!({"kana": SAMPLES[1].kana, "birth_date": "2021-02-15"});
    assert_eq!(
        subsidy
            .post_json("/v1/persons:match", &[], &wrong)
            .await
            .body["persons"],
        json!([])
    );

    // By individual number: staff only; the answer is the unified number; recorded.
    let n0 = sample_digits(0);
    let body = Bytes::from(format!("{{\"individual_number\":\"{n0}\"}}"));
    let ct = [("content-type", "application/json")];
    let denied = subsidy
        .send(
            hyper::Method::POST,
            "/v1/persons:by-individual-number",
            &ct,
            body.clone(),
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let staff = d.client("security-officer");
    let found = staff
        .send(
            hyper::Method::POST,
            "/v1/persons:by-individual-number",
            &ct,
            body.clone(),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["unified_address_number"], u0.as_str());
    assert!(!String::from_utf8_lossy(&found.raw).contains(&n0));

    // Merge u1 into u0: both resolve to u0, links move, history kept, recorded.
    let merged = staff
        .post_json("/v1/persons:merge", &[], &json!({"from": u1, "into": u0}))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["links_moved"], 1);
    let via_old = staff.get(&format!("/v1/persons:lookup?unified={u1}")).await;
    assert_eq!(via_old.status, 200, "{}", via_old.body);
    assert_eq!(via_old.body["unified_address_number"], u0.as_str());
    assert_eq!(via_old.body["merged_from"], u1.as_str());
    let moved = subsidy
        .get(&format!(
            "/v1/persons:lookup?business_number={}",
            SAMPLES[1].business_number
        ))
        .await;
    assert_eq!(
        moved.body["unified_address_number"],
        u0.as_str(),
        "{}",
        moved.body
    );
    let twice = staff
        .post_json("/v1/persons:merge", &[], &json!({"from": u1, "into": u0}))
        .await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert_eq!(twice.body["code"], "already_merged");
    assert_eq!(
        subsidy
            .post_json("/v1/persons:merge", &[], &json!({"from": u0, "into": u1}))
            .await
            .status,
        403
    );

    // Records: the lookup by individual number and the merge, both touching it.
    let rec = d
        .client("auditor")
        .get("/v1/audit/records?kind=staff_action&limit=100")
        .await;
    assert_eq!(rec.status, 200, "{}", rec.body);
    let actions: Vec<&Value> = rec.body["records"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for action in ["person.by_individual_number", "person.merge"] {
        let r = actions
            .iter()
            .find(|r| r["staff"]["action"] == action)
            .unwrap_or_else(|| panic!("no {action} record: {}", rec.body));
        assert_eq!(r["staff"]["touched_individual_number"], true);
        assert_eq!(r["staff"]["actor"], "security-officer");
    }
    assert!(!String::from_utf8_lossy(&rec.raw).contains(&n0));
    let log = d.gateway_log();
    assert!(
        !log.contains(&n0),
        "the gateway log holds an individual number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_status_pending_while_platform_fails_then_acquired_and_inquiry_proceeds() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.sim_mode("failing", 0).await;
    let api = d.client(CLIENT_SUBSIDY);
    let bn = SAMPLES[0].business_number;
    let r = api
        .put_json(&format!("/v1/persons/{bn}"), &link_body(0))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let look = format!("/v1/persons:lookup?business_number={bn}");
    assert_eq!(api.get(&look).await.body["code"]["status"], "pending");
    // An inquiry for a person without a code waits for it.
    let id = api.submit_ok("code-wait-1", &common::local_tax(bn)).await;
    common::wait_until(
        common::START_TIMEOUT,
        "the inquiry awaits the code",
        || async { api.status_of(&id).await == "awaiting_code" },
    )
    .await;
    assert_eq!(api.get(&look).await.body["code"]["status"], "pending");
    // The platform recovers: the automatic retry acquires the code and wakes the inquiry.
    d.sim_mode("open", 0).await;
    common::wait_until(common::START_TIMEOUT, "the code is acquired", || async {
        api.get(&look).await.body["code"]["status"] == "acquired"
    })
    .await;
    let done = api.wait_final(&id, common::START_TIMEOUT).await;
    assert_eq!(done["status"], "answered", "{done}");
}
