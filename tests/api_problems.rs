//! Error answers are RFC 9457 problem documents over the real binary: a path that names
//! nothing (404), a method a route does not take (405) and a body over the limit (413) each
//! come as `application/problem+json` with `type`, `title`, `status`, `detail` and the stable
//! `code`.

mod common;

use bytes::Bytes;
use common::Deployment;
use hyper::Method;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_method_not_allowed_and_too_large_are_problems() {
    let mut d = Deployment::new();
    d.start_sim().await;
    d.start_gateway().await;
    let api = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let cases: [(Method, &str, Bytes, u16, &str); 3] = [
        (
            Method::GET,
            "/v1/nothing-here",
            Bytes::new(),
            404,
            "no_such_endpoint",
        ),
        (
            Method::DELETE,
            "/v1/inquiries",
            Bytes::new(),
            405,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/v1/inquiries",
            Bytes::from(big),
            413,
            "body_too_large",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let url = format!("{}{path}", api.base);
        let r = api
            .client
            .send(
                method.clone(),
                &url,
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "p-1"),
                ],
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(r.status.as_u16(), status, "{method} {path}");
        let ctype = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(ctype, "application/problem+json", "{method} {path}");
        let p: Value = serde_json::from_slice(&r.body).expect("a JSON problem");
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(p["type"], format!("urn:renkei:problem:{code}"), "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    }
}
