//! The operations listener over the real binary: `/healthz` answers, `/readyz` is 200 with
//! everything up and 503 naming the platform when the simulator is gone (but 200 inside the
//! platform's closed hours), and `/metrics` counters move when traffic does.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{local_tax, wait_for, wait_until, Deployment, START_TIMEOUT};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The ops listener's address, as the gateway wrote it.
fn ops_addr(d: &Deployment) -> SocketAddr {
    let p = d.dir.join("gateway/data/ops.addr");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .expect("an address")
}

/// A plain HTTP GET: status, content type and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// The sum of every sample of `name` whose labels contain each of `labels` (0 when none).
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let (status, _, body) = get(addr, "/readyz").await;
    (status, serde_json::from_str(&body).expect("JSON"))
}

async fn wait_ready(addr: SocketAddr) {
    wait_until(START_TIMEOUT, "/readyz says ready", || async {
        readyz(addr).await.0 == 200
    })
    .await;
}

fn has_twelve_digits(text: &str) -> bool {
    text.as_bytes()
        .split(|b| !b.is_ascii_digit())
        .any(|run| run.len() == 12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_counters_follow_traffic() {
    let mut d = Deployment::new();
    d.start().await;
    let ops = ops_addr(&d);
    assert!(ops.ip().is_loopback(), "ops listens on {ops}");

    let (status, _, body) = get(ops, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    wait_ready(ops).await;
    let (_, ready) = readyz(ops).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["failing"].as_array().map(Vec::len),
        Some(0),
        "{ready}"
    );

    let (status, ctype, before) = get(ops, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");

    let persons = d.link_samples().await;
    assert_eq!(persons.len(), 3);
    let api = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let mut ids = Vec::new();
    for (i, s) in renkei::dev::demo::SAMPLES.iter().enumerate() {
        ids.push(
            api.submit_ok(&format!("ops-{i}"), &local_tax(s.business_number))
                .await,
        );
    }
    for id in &ids {
        let inq = api.wait_final(id, Duration::from_secs(30)).await;
        assert_eq!(inq["status"], "answered", "{inq}");
    }
    // An answer is visible a moment before its commit returns and is counted.
    let after = wait_for(START_TIMEOUT, "three answers are counted", || async {
        let (_, _, text) = get(ops, "/metrics").await;
        let answered = |t: &str| {
            sample(
                t,
                "renkei_inquiries_finished_total",
                &["status=\"answered\""],
            )
        };
        (answered(&text) - answered(&before) >= 3.0).then_some(text)
    })
    .await;

    let moved =
        |name: &str, labels: &[&str]| sample(&after, name, labels) - sample(&before, name, labels);
    assert_eq!(
        moved("renkei_inquiries_accepted_total", &[]),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved("renkei_inquiries_finished_total", &["status=\"answered\""]),
        3.0
    );
    assert!(
        sample(&after, "renkei_inquiries", &["status=\"answered\""]) >= 3.0,
        "{after}"
    );
    // Each inquiry is at least one submission and one result fetch.
    assert!(moved("renkei_platform_requests_total", &["outcome=\"ok\""]) >= 6.0);
    assert!(moved("renkei_records_written_total", &[]) >= 6.0);
    assert!(moved("renkei_store_commit_group_batches_count", &[]) >= 6.0);
    assert!(moved("renkei_store_commit_sync_seconds_count", &[]) >= 6.0);
    let route = [
        "route=\"/v1/inquiries\"",
        "method=\"POST\"",
        "status=\"202\"",
    ];
    assert_eq!(
        moved("renkei_http_request_duration_seconds_count", &route),
        3.0
    );
    // Reads of one inquiry are counted under the template, never the id itself.
    assert!(
        sample(
            &after,
            "renkei_http_request_duration_seconds_count",
            &["route=\"/v1/inquiries/{id}\""]
        ) >= 3.0
    );
    assert!(!after.contains(ids[0].as_str()), "an inquiry id in metrics");
    assert!(!has_twelve_digits(&after), "a 12-digit run in metrics");
    assert!(sample(&after, "renkei_key_version", &["purpose=\"signing\""]) >= 1.0);
    assert!(
        sample(
            &after,
            "renkei_certificate_expiry_timestamp",
            &["certificate=\"server\""]
        ) > 0.0
    );
    assert!(
        sample(
            &after,
            "renkei_certificate_expiry_timestamp",
            &["certificate=\"client:kodomo-iryo\""]
        ) > 0.0
    );

    // Logs: one access line per request, under its request id (also a response header),
    // naming the route template; no colour codes in a file, no personal numbers.
    let url = format!("{}/v1/inquiries/{}", api.base, ids[0]);
    let r = api
        .client
        .send(hyper::Method::GET, &url, &[], bytes::Bytes::new())
        .await
        .expect("GET inquiry");
    let rid = r
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an x-request-id header")
        .to_string();
    assert!(
        rid.len() == 28 && rid.starts_with("RQ") && rid.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{rid}"
    );
    let log = d.gateway_log();
    assert!(!log.contains("\x1b["), "colour codes in the log file");
    let access = log
        .lines()
        .filter(|l| l.contains("Request.") && l.contains(&rid))
        .collect::<Vec<_>>();
    assert_eq!(access.len(), 1, "one access line for request {rid}");
    for part in [
        "route=\"/v1/inquiries/{id}\"",
        "client=\"kodomo-iryo\"",
        "status=200",
    ] {
        assert!(access[0].contains(part), "{part} not in {}", access[0]);
    }
    assert!(
        d.gateway_log_lines(&["Request.", "route=\"/v1/persons/"]) >= 3,
        "access lines for the person links"
    );
    for s in renkei::dev::demo::SAMPLES.iter() {
        assert!(
            !log.contains(s.business_number),
            "a business number in the log"
        );
    }
    // Where a run is, by the text before it (the run itself is never printed).
    let before_run: Vec<String> = log
        .lines()
        .filter(|l| has_twelve_digits(l))
        .map(|l| l.chars().take(60).collect())
        .collect();
    assert!(
        before_run.is_empty(),
        "12-digit runs in lines starting {before_run:?}"
    );

    // The platform gone, inside its operating hours: not ready, and the check is named.
    d.kill_sim();
    let (status, body) = readyz(ops).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["platform"]), "{body}");
    // Still alive.
    assert_eq!(get(ops, "/healthz").await.0, 200);
}

/// A window of operating hours that is closed now (it opens in two hours, JST).
fn closed_window() -> String {
    let jst_hour = (renkei::util::now_ms() / 3_600_000 + 9) % 24;
    let open = (jst_hour + 2) % 24;
    format!("\"{open:02}:00-{open:02}:30\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_down_in_its_closed_hours_keeps_the_gateway_ready() {
    let mut d = Deployment::new();
    d.set_gateway("operating_hours", &closed_window());
    d.start().await;
    let ops = ops_addr(&d);
    wait_ready(ops).await;
    d.kill_sim();
    let (status, body) = readyz(ops).await;
    assert_eq!(status, 200, "{body}");
    let platform = body["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "platform"))
        .cloned()
        .expect("a platform check");
    assert_eq!(platform["ok"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_sets_the_filter() {
    let mut d = Deployment::new();
    d.env.push(("RUST_LOG".into(), "warn".into()));
    d.start().await;
    let r = d.client("operator").get("/v1/ops/stats").await;
    assert_eq!(r.status, 200);
    assert_eq!(d.gateway_log_lines(&["Request."]), 0, "{}", d.gateway_log());
    assert_eq!(d.gateway_log_lines(&["Gateway listening."]), 0);
}
