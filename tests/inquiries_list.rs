//! End to end over mutual TLS: `GET /v1/inquiries` lists only the caller's own inquiries
//! (another business system sees none of them), newest first, filtered by status and paged
//! by cursor; and every 201 and 202 names its resource in `Location`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{link_body, local_tax, public_fund, Api, Deployment};
use hyper::Method;
use renkei::dev::batch_file::{fixed_line, line_values};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
use serde_json::Value;

const FINAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a request and returns its status, `Location` header and JSON body.
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Option<String>, Value) {
    let url = format!("{}{path}", api.base);
    let r = api
        .client
        .send(method, &url, headers, Bytes::from(body))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let location = r
        .headers
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status.as_u16(), location, v)
}

/// The ids of one page of `GET /v1/inquiries?query`, and its cursor.
async fn page(api: &Api, query: &str) -> (Vec<String>, Option<String>) {
    let r = api.get(&format!("/v1/inquiries?{query}")).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let ids = r.body["inquiries"]
        .as_array()
        .expect("inquiries")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    (ids, r.body["next_cursor"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_system_lists_its_own_inquiries_and_every_creation_has_a_location() {
    let mut d = Deployment::new();
    d.start().await;
    let api = d.client(CLIENT_SUBSIDY);

    // 201 Location: a new link names where the person can be looked up.
    let bn0 = SAMPLES[0].business_number;
    let (status, at, v) = send(
        &api,
        Method::PUT,
        &format!("/v1/persons/{bn0}"),
        &[("content-type", "application/json")],
        link_body(0).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let at = at.expect("Location on 201");
    assert_eq!(at, format!("/v1/persons:lookup?business_number={bn0}"));
    assert_eq!(api.get(&at).await.status, 200);
    d.link_samples().await;

    // 202 Location: an accepted inquiry names itself.
    let mut ids = Vec::new();
    for (i, body) in [
        local_tax(SAMPLES[0].business_number),
        local_tax(SAMPLES[1].business_number),
        public_fund(SAMPLES[2].business_number),
        local_tax(SAMPLES[2].business_number),
        local_tax(SAMPLES[1].business_number),
    ]
    .iter()
    .enumerate()
    {
        let key = format!("list-{i}");
        let (status, at, v) = send(
            &api,
            Method::POST,
            "/v1/inquiries",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", &key),
            ],
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 202, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        assert_eq!(at.as_deref(), Some(format!("/v1/inquiries/{id}").as_str()));
        ids.push(id);
    }
    // 202 Location: an accepted batch names its status.
    let file = fixed_line(&line_values(SAMPLES[0].business_number));
    let (status, at, v) = send(
        &api,
        Method::POST,
        "/v1/inquiries:batch",
        &[("content-type", "application/octet-stream")],
        file,
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let batch = v["id"].as_str().expect("batch id");
    assert_eq!(at.as_deref(), Some(format!("/v1/batches/{batch}").as_str()));
    assert_eq!(api.get(at.as_deref().unwrap_or_default()).await.status, 200);

    for id in &ids {
        let v = api.wait_final(id, FINAL_TIMEOUT).await;
        assert_eq!(v["status"], "answered", "{v}");
    }
    // The batch's one line is an inquiry too: wait until it is final, so counts are stable.
    common::wait_until(FINAL_TIMEOUT, "the batch is done", || async {
        api.get(&format!("/v1/batches/{batch}")).await.body["done"] == true
    })
    .await;

    // Newest first: the five submitted here, after the batch's own (submitted last).
    let (all, cursor) = page(&api, "limit=100").await;
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(cursor, None);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(&all[1..], &newest_first[..]);

    // Cursor paging: pages of two cover the same list, once each.
    let mut paged = Vec::new();
    let mut next = None::<String>;
    loop {
        let q = match &next {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_string(),
        };
        let (ids, c) = page(&api, &q).await;
        assert!(ids.len() <= 2);
        paged.extend(ids);
        match c {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // Status filter: every one is answered; none is queued.
    let (answered, _) = page(&api, "status=answered").await;
    assert_eq!(answered, all);
    let (queued, _) = page(&api, "status=queued").await;
    assert!(queued.is_empty(), "{queued:?}");
    // since: a date after today lists nothing; a date long ago lists all.
    let (future, _) = page(&api, "since=2999-01-01").await;
    assert!(future.is_empty(), "{future:?}");
    let (past, _) = page(&api, "since=2000-01-01").await;
    assert_eq!(past, all);

    // The CLI lists the same: every page followed with --all, filtered by --status.
    let out = d.cli(&[
        "inquiries",
        "list",
        "--as",
        CLIENT_SUBSIDY,
        "--all",
        "--limit",
        "2",
        "--status",
        "answered",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "inquiries list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON listing");
    let cli_ids: Vec<String> = listed["inquiries"]
        .as_array()
        .expect("inquiries")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(cli_ids, all, "the CLI's --all listing is the API's");
    let out = d.cli(&[
        "inquiries",
        "list",
        "--as",
        CLIENT_SUBSIDY,
        "--status",
        "queued",
        "--output",
        "csv",
    ]);
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        csv.lines().count(),
        1,
        "only the header: nothing is queued: {csv}"
    );
    assert!(csv.starts_with("id,status,business_number"), "{csv}");
    // A status the gateway does not know is a usage error naming the valid ones.
    let out = d.cli(&[
        "inquiries",
        "list",
        "--as",
        CLIENT_SUBSIDY,
        "--status",
        "lost",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("awaiting_code"));

    // Refusals: an unknown status or parameter, a bad limit or cursor.
    for q in [
        "status=lost",
        "colour=red",
        "limit=0",
        "limit=1001",
        "cursor=x",
        "since=yesterday",
    ] {
        let r = api.get(&format!("/v1/inquiries?{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
    }

    // Another business system sees none of them, even with a cursor from this one.
    let other = d.client(CLIENT_SECOND);
    let (theirs, c) = page(&other, "limit=100").await;
    assert!(theirs.is_empty(), "{theirs:?}");
    assert_eq!(c, None);
    let (theirs, _) = page(&other, &format!("cursor={}", all[0])).await;
    assert!(theirs.is_empty(), "{theirs:?}");
    // And staff roles may not list at all.
    let r = d.client("auditor").get("/v1/inquiries").await;
    assert_eq!(r.status, 403, "{}", r.body);
}
