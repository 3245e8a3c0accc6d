//! End to end, the happy path and its isolation rules: link the samples, inquire, read the
//! converted answers; a second business system shares the unified number but not inquiries.

mod common;

use std::time::Duration;

use common::{link_body, local_tax, public_fund, result_field, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY, ITEM_LOCAL_TAX, ITEM_PUBLIC_FUND};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiries_are_answered_with_converted_results() {
    let mut d = Deployment::new();
    d.start().await;
    let unified = d.link_samples().await;
    assert_eq!(unified.len(), 3);
    let mut distinct = unified.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "each sample gets its own unified number");

    let api = d.client(CLIENT_SUBSIDY);
    let ids = [
        api.submit_ok("happy-0", &local_tax(SAMPLES[0].business_number))
            .await,
        api.submit_ok("happy-1", &local_tax(SAMPLES[1].business_number))
            .await,
        api.submit_ok("happy-2", &public_fund(SAMPLES[2].business_number))
            .await,
    ];
    let mut answers = Vec::new();
    for id in &ids {
        let v = api.wait_final(id, ANSWER_TIMEOUT).await;
        assert_eq!(v["status"], "answered", "inquiry {id}: {v}");
        assert_eq!(v["id"], id.as_str());
        assert!(v["timestamps"]["sent_at"].is_string(), "{v}");
        assert!(v["timestamps"]["finished_at"].is_string(), "{v}");
        answers.push(v);
    }
    // Sample 0: the seeded figures of FY2026.
    let a0 = &answers[0];
    assert_eq!(a0["business_number"], SAMPLES[0].business_number);
    assert_eq!(a0["result"]["detail_status"], "09");
    assert_eq!(a0["result"]["items"][0]["item"], ITEM_LOCAL_TAX);
    assert_eq!(
        result_field(a0, "市町村民税所得割額").as_deref(),
        Some("123400")
    );
    assert_eq!(
        result_field(a0, "市町村民税均等割額").as_deref(),
        Some("3500")
    );
    // Sample 1 has no seeded figures: still an answer, for the same item, and not sample 0's.
    let a1 = &answers[1];
    assert_eq!(a1["result"]["items"][0]["item"], ITEM_LOCAL_TAX);
    assert_ne!(
        result_field(a1, "市町村民税所得割額").as_deref(),
        Some("123400")
    );
    // Sample 2: the public-fund account.
    assert_eq!(answers[2]["result"]["items"][0]["item"], ITEM_PUBLIC_FUND);

    // The platform saw each inquiry take effect once, keyed by the inquiry id.
    let stats = d.sim_stats().await;
    for id in &ids {
        assert!(
            stats["effects"].get(id.as_str()).is_some(),
            "{id} not in effects"
        );
    }
    assert_eq!(stats["inquiries_accepted"], 3);
    assert_eq!(stats["code_acquisitions"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_and_isolation_between_business_systems() {
    let mut d = Deployment::new();
    d.start().await;
    let unified = d.link_samples().await;
    let subsidy = d.client(CLIENT_SUBSIDY);
    let second = d.client(CLIENT_SECOND);

    // Re-sending the same link: 200 with the same number.
    let r = subsidy
        .put_json(
            &format!("/v1/persons/{}", SAMPLES[0].business_number),
            &link_body(0),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["unified_address_number"], unified[0].as_str());

    // A second system linking the same individual number under its own business number.
    let kokuho_bn = "000000000099001";
    let r = second
        .put_json(&format!("/v1/persons/{kokuho_bn}"), &link_body(0))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["unified_address_number"],
        unified[0].as_str(),
        "same person, same unified address number"
    );
    // The same business number linked by the first system to another person is refused.
    let r = subsidy
        .put_json(
            &format!("/v1/persons/{}", SAMPLES[0].business_number),
            &link_body(1),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "business_number_linked_elsewhere");

    // kokuho cannot ask about kodomo-iryo's business number: it is not linked for kokuho.
    let r = second
        .submit("iso-1", &local_tax(SAMPLES[0].business_number))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "person_not_linked");
    assert_eq!(r.body["field"], "business_number");

    // An item kokuho is not permitted.
    let r = second.submit("iso-2", &public_fund(kokuho_bn)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "not_permitted");

    // kokuho's own inquiry about its own number works and gives the same person's data.
    let kid = second.submit_ok("iso-3", &local_tax(kokuho_bn)).await;
    let sid = subsidy
        .submit_ok("iso-3", &local_tax(SAMPLES[0].business_number))
        .await;
    assert_ne!(kid, sid, "the same key in two systems makes two inquiries");
    let kv = second.wait_final(&kid, ANSWER_TIMEOUT).await;
    assert_eq!(kv["status"], "answered", "{kv}");
    assert_eq!(
        result_field(&kv, "市町村民税所得割額").as_deref(),
        Some("123400")
    );

    // Another system's inquiry id is "not found", both ways.
    let r = second.get(&format!("/v1/inquiries/{sid}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["code"], "not_found");
    assert!(!r.raw.is_empty() && !String::from_utf8_lossy(&r.raw).contains("answered"));
    let r = subsidy.get(&format!("/v1/inquiries/{kid}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // An unknown id too.
    let r = subsidy
        .get("/v1/inquiries/IQ0000000000000000000000000")
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Staff clients may not use business endpoints.
    let r = d
        .client("operator")
        .submit("iso-4", &local_tax(SAMPLES[0].business_number))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}
