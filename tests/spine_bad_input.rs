//! Bad input at the door: every malformed, oversized or unauthenticated request is refused
//! with a clear code, stores nothing, never echoes an individual number, and leaves the
//! gateway serving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{link_body, local_tax, sample_digits, Api, Deployment};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SUBSIDY, ITEM_LOCAL_TAX, PROC_LOCAL_TAX};
use serde_json::json;

fn person_path(i: usize) -> String {
    format!("/v1/persons/{}", SAMPLES[i].business_number)
}

/// Sample `i`'s digits with a wrong check digit.
fn wrong_check_digit(i: usize) -> String {
    let mut d = sample_digits(i).into_bytes();
    d[11] = b'0' + (d[11] - b'0' + 1) % 10;
    String::from_utf8(d).expect("ascii")
}

/// A request over TLS without a client certificate: must not get any HTTP answer.
async fn request_without_client_cert(d: &Deployment) -> Result<u16, String> {
    renkei::tls::install_default_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in renkei::tls::load_certs(&d.dir.join("ca.pem")).expect("ca") {
        roots.add(c).expect("root");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(renkei::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cfg)
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let url = format!("https://{}/healthz", d.gw_addr.expect("gateway"));
    let req = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Ok(Ok(r)) => Ok(r.status().as_u16()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_store_nothing() {
    let mut d = Deployment::new();
    d.start().await;
    let api = d.client(CLIENT_SUBSIDY);
    let digits: Vec<String> = (0..SAMPLES.len()).map(sample_digits).collect();
    let no_digits = |raw: &Bytes, what: &str| {
        let text = String::from_utf8_lossy(raw);
        for n in &digits {
            assert!(
                !text.contains(n.as_str()) && !text.contains(&n[..11]),
                "{what}: the answer echoes an individual number"
            );
        }
    };

    // Malformed JSON.
    let r = api
        .send(
            hyper::Method::POST,
            "/v1/inquiries",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "b-1"),
            ],
            Bytes::from_static(b"{\"business_number\": "),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "malformed_json");
    let r = api
        .send(
            hyper::Method::PUT,
            &person_path(0),
            &[("content-type", "application/json")],
            Bytes::from_static(b"not json at all"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "malformed_json");

    // Unknown field.
    let mut body = local_tax(SAMPLES[0].business_number);
    body["priority"] = json!("high");
    let r = api.submit("b-2", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "unknown_field");
    assert_eq!(r.body["field"], "priority");
    let mut link = link_body(0);
    link["nickname"] = json!("x");
    let r = api.put_json(&person_path(0), &link).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "unknown_field");
    assert_eq!(r.body["field"], "nickname");
    no_digits(&r.raw, "unknown field in a link");

    // Wrong check digit.
    let mut link = link_body(0);
    link["individual_number"] = json!(wrong_check_digit(0));
    let r = api.put_json(&person_path(0), &link).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "invalid_check_digit", "{}", r.body);
    assert!(
        !String::from_utf8_lossy(&r.raw).contains(&wrong_check_digit(0)[..11]),
        "wrong check digit: the answer echoes the number"
    );
    no_digits(&r.raw, "wrong check digit");

    // The individual number as a JSON number instead of a string.
    let mut link = link_body(1);
    let n: u64 = digits[1].parse().expect("digits");
    link["individual_number"] = json!(n);
    let r = api.put_json(&person_path(1), &link).await;
    assert_eq!(r.status, 422, "{}", r.body);
    no_digits(&r.raw, "number as a JSON number");
    // Padded inside a longer string, or with separators: still refused, still not echoed.
    let mut link = link_body(2);
    link["individual_number"] = json!(format!("{}-", digits[2]));
    let r = api.put_json(&person_path(2), &link).await;
    assert_eq!(r.status, 422, "{}", r.body);
    no_digits(&r.raw, "number with a trailing dash");

    // Malformed item code (and procedure code).
    let mut body = local_tax(SAMPLES[0].business_number);
    body["item"] = json!("TM12");
    let r = api.submit("b-3", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap_or("").contains("item"),
        "the answer names item: {}",
        r.body
    );
    let mut body = local_tax(SAMPLES[0].business_number);
    body["procedure"] = json!("XX01010000000214");
    let r = api.submit("b-4", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("procedure"),
        "the answer names procedure: {}",
        r.body
    );
    // Malformed business number in the path.
    let r = api.put_json("/v1/persons/12-AB", &link_body(0)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["field"], "business_number");

    // Body over 64 KiB.
    let mut body = local_tax(SAMPLES[0].business_number);
    body["business_number"] = json!("9".repeat(70 * 1024));
    let r = api.submit("b-5", &body).await;
    assert_eq!(r.status, 413, "{}", r.body);
    no_digits(&r.raw, "oversized body");
    let mut link = link_body(0);
    link["address"] = json!("あ".repeat(30 * 1024));
    let r = api.put_json(&person_path(0), &link).await;
    assert_eq!(r.status, 413, "{}", r.body);
    no_digits(&r.raw, "oversized link");

    // Missing Idempotency-Key.
    let r = api
        .post_json("/v1/inquiries", &[], &local_tax(SAMPLES[0].business_number))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "missing_idempotency_key");

    // No client certificate: no HTTP answer at all.
    let r = request_without_client_cert(&d).await;
    assert!(
        r.is_err(),
        "a request without a client certificate got HTTP {r:?}"
    );

    // A client certificate from another CA (another deployment's), trusting ours.
    let other = Deployment::new();
    let foreign = Api::with_files(
        &d.dir.join("ca.pem"),
        &other
            .dir
            .join("clients")
            .join(CLIENT_SUBSIDY)
            .join("cert.pem"),
        &other
            .dir
            .join("clients")
            .join(CLIENT_SUBSIDY)
            .join("key.pem"),
        d.gw_addr.expect("gateway"),
    );
    let r = foreign
        .try_submit("b-6", &local_tax(SAMPLES[0].business_number))
        .await;
    assert!(
        r.is_err(),
        "a foreign certificate got HTTP {:?}",
        r.map(|r| r.status)
    );
    let r = foreign
        .try_send(
            hyper::Method::PUT,
            &person_path(0),
            &[("content-type", "application/json")],
            Bytes::from(link_body(0).to_string()),
        )
        .await;
    assert!(
        r.is_err(),
        "a foreign certificate got HTTP {:?}",
        r.map(|r| r.status)
    );
    no_digits(&Bytes::from(d.gateway_log()), "gateway log");

    // Nothing was stored.
    let stats = d.ops_stats().await;
    assert_eq!(stats["inquiries"], 0, "{stats}");
    assert_eq!(stats["persons"], 0, "{stats}");

    // And the gateway still serves a good request.
    let r = api.put_json(&person_path(0), &link_body(0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let body = json!({
        "business_number": SAMPLES[0].business_number,
        "procedure": PROC_LOCAL_TAX,
        "item": ITEM_LOCAL_TAX,
        "conditions": {"from": "2026-04-01", "to": "2027-03-31"},
    });
    let id = api.submit_ok("b-good", &body).await;
    let v = api.wait_final(&id, Duration::from_secs(20)).await;
    assert_eq!(v["status"], "answered", "{v}");
    let stats = d.ops_stats().await;
    assert_eq!(stats["inquiries"], 1, "{stats}");
    assert_eq!(stats["persons"], 1, "{stats}");
}

/// The `field` of a 422 names the offending request field (not a word of serde's message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_errors_name_the_field() {
    let mut d = Deployment::new();
    d.start().await;
    let api = d.client(CLIENT_SUBSIDY);
    let mut found = Vec::new();

    let mut link = link_body(0);
    link["individual_number"] = json!(wrong_check_digit(0));
    let r = api.put_json(&person_path(0), &link).await;
    found.push(("wrong check digit", "individual_number", r.status, r.body));

    let mut link = link_body(1);
    let n: u64 = sample_digits(1).parse().expect("digits");
    link["individual_number"] = json!(n);
    let r = api.put_json(&person_path(1), &link).await;
    found.push((
        "number as a JSON number",
        "individual_number",
        r.status,
        r.body,
    ));

    let mut body = local_tax(SAMPLES[0].business_number);
    body["item"] = json!("TM12");
    let r = api.submit("f-1", &body).await;
    found.push(("malformed item code", "item", r.status, r.body));

    let mut body = local_tax(SAMPLES[0].business_number);
    body.as_object_mut().expect("object").remove("procedure");
    let r = api.submit("f-2", &body).await;
    found.push(("missing procedure code", "procedure", r.status, r.body));

    let wrong: Vec<String> = found
        .iter()
        .filter(|(_, field, status, body)| *status != 422 || body["field"] != *field)
        .map(|(what, field, status, body)| {
            format!(
                "{what}: expected 422 with field {field}, got {status} field {}",
                body["field"]
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
