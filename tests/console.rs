//! The web console (`/console/`) end to end over the release binary, without a browser yet:
//! the security headers (strict CSP, no framing), that the page loads nothing from elsewhere
//! and runs no inline script, and who is served the files.

mod common;

use bytes::Bytes;
use common::Deployment;
use renkei::dev::init::CLIENT_SUBSIDY;
use serde_json::{json, Value};

/// The CSP the console must send (the same text as `renkei::api::console::CSP`, written out
/// here so a loosened policy in the source fails this test).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

// ---- without a browser -----------------------------------------------------------------

/// One answer with its headers, over mutual TLS as `who`.
async fn fetch(d: &Deployment, who: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let dir = d.dir.join("clients").join(who);
    renkei::tls::install_default_provider();
    let client = renkei::tls::HttpsClient::new(
        &d.dir.join("ca.pem"),
        &dir.join("cert.pem"),
        &dir.join("key.pem"),
        common::REQUEST_TIMEOUT,
    )
    .expect("client");
    let url = format!("https://{}{path}", d.gw_addr.expect("started"));
    let r = client
        .send(hyper::Method::GET, &url, &[], Bytes::new())
        .await
        .expect("request");
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    (
        r.status.as_u16(),
        headers,
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Every `src="…"` / `href="…"` value in an HTML text.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            out.push(rest.split('"').next().unwrap_or("").to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_files_are_served_strictly_and_only_to_staff() {
    let mut d = Deployment::new();
    d.start().await;
    for who in ["auditor", "security-officer", "operator", "admin"] {
        for (path, kind) in [
            ("/console/", "text/html"),
            ("/console/app.js", "text/javascript"),
            ("/console/app.css", "text/css"),
            ("/console/whoami", "application/json"),
            ("/console/eras.json", "application/json"),
        ] {
            // No session needed: the files hold no data.
            let (status, h, _) = fetch(&d, who, path).await;
            assert_eq!(status, 200, "{who} {path}");
            assert!(
                header(&h, "content-type").starts_with(kind),
                "{path}: {h:?}"
            );
            assert_eq!(header(&h, "content-security-policy"), CSP, "{path}");
            assert_eq!(header(&h, "x-frame-options"), "DENY", "{path}");
            assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
            assert_eq!(header(&h, "cache-control"), "no-store", "{path}");
        }
    }
    let (_, _, who) = fetch(&d, "security-officer-2", "/console/whoami").await;
    let who: Value = serde_json::from_str(&who).expect("json");
    assert_eq!(
        who,
        json!({"client": "security-officer-2", "role": "security"})
    );
    let (_, _, eras) = fetch(&d, "auditor", "/console/eras.json").await;
    let eras: Value = serde_json::from_str(&eras).expect("json");
    assert!(eras["eras"]
        .as_array()
        .expect("eras")
        .iter()
        .any(|e| e["name"] == "令和" && e["start"] == "2019-05-01"));

    // The page: scripts only from files of its own, nothing from another origin.
    let (_, _, html) = fetch(&d, "auditor", "/console/").await;
    for (i, _) in html.match_indices("<script") {
        let tag = html[i..].split('>').next().unwrap_or("");
        assert!(tag.contains("src=\"/console/"), "an inline script: {tag}");
    }
    for r in references(&html) {
        assert!(
            r.starts_with("/console/") || r.starts_with('#'),
            "the page refers to {r}"
        );
    }
    assert!(!html.contains("style=\""), "inline style");
    let (_, _, js) = fetch(&d, "auditor", "/console/app.js").await;
    for (i, _) in js.match_indices("://") {
        let s = &js[i.saturating_sub(4)..];
        assert!(
            s.starts_with("http://www.w3.org/2000/svg"),
            "the script names an outside address: {}",
            &s[..s.len().min(40)]
        );
    }

    // Business systems and the feed are not served the console; a redirect for the bare path.
    for who in [CLIENT_SUBSIDY, renkei::dev::init::CLIENT_FEED] {
        let (status, h, body) = fetch(&d, who, "/console/").await;
        assert_eq!(status, 403, "{who}");
        assert!(body.contains("wrong_role"), "{body}");
        assert_eq!(header(&h, "x-frame-options"), "DENY");
    }
    let (status, h, _) = fetch(&d, "auditor", "/console").await;
    assert_eq!(status, 308);
    assert_eq!(header(&h, "location"), "/console/");

    // The two operator routes the console reads (counts and checks only).
    let ops = d.client("operator");
    let ready = ops.get("/v1/ops/readiness").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body["checks"]
        .as_array()
        .is_some_and(|c| c.len() >= 4));
    let queue = ops.get("/v1/ops/queue").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert_eq!(queue.body["inquiries_by_status"]["queued"], 0);
    assert_eq!(d.client("auditor").get("/v1/ops/queue").await.status, 403);
}
