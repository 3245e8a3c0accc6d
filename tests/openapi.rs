//! The OpenAPI document (`openapi/renkei.json`) and the router agree: every route written in
//! `src/api` is in the document with the same methods, and every operation of the document is
//! a route; the gateway serves the committed document at `GET /openapi.json`; and schemathesis
//! (from PyPI) drives the business and audit operations against a live gateway over mutual
//! TLS: no 5xx, and every answer matches its documented status, content type and schema.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Deployment;
use renkei::dev::init::CLIENT_SUBSIDY;
use serde_json::Value;

/// Routes of the operations listener (`api::ops::probes`), not on the API port; `/healthz`
/// is on both.
const OPS_LISTENER_ONLY: &[&str] = &["/readyz", "/metrics"];
/// The web console's page and files (`api::console`): HTML, script and style for a browser,
/// not operations of the API (the page calls the documented operations); tests/console.rs
/// and tests/api_router.rs cover them.
const CONSOLE_PREFIX: &str = "/console";
const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document() -> Value {
    let text = std::fs::read_to_string(root().join("openapi/renkei.json")).expect("read document");
    serde_json::from_str(&text).expect("the document is JSON")
}

/// The methods named in one `.route(…)` call's handler expression (`get(h)`, `post(h).get(g)`,
/// `axum::routing::get(…)`).
fn methods_in(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    for m in METHODS {
        for (i, _) in expr.match_indices(&format!("{m}(")) {
            let before = if i == 0 { b' ' } else { b[i - 1] };
            if !(before.is_ascii_alphanumeric() || before == b'_') {
                out.push(m.to_string());
            }
        }
    }
    out
}

/// `(METHOD, template)` of every `.route("…", …)` in `src/api/*.rs`, read from the source the
/// way tests/api_router.rs reads the templates.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(root().join("src/api"))
        .expect("src/api")
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).expect("read source");
        for (i, _) in text.match_indices(".route(") {
            let start = i + ".route(".len();
            let Some(rest) = text[start..].trim_start().strip_prefix('"') else {
                continue;
            };
            let lit = rest
                .split('"')
                .next()
                .expect("a string literal")
                .to_string();
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1usize;
            let mut end = start;
            for (j, c) in text[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = start + j;
                    break;
                }
            }
            if OPS_LISTENER_ONLY.contains(&lit.as_str()) || lit.starts_with(CONSOLE_PREFIX) {
                continue;
            }
            let methods = methods_in(&text[start..end]);
            assert!(!methods.is_empty(), "no method found for route {lit}");
            for m in methods {
                out.insert((m.to_uppercase(), lit.clone()));
            }
        }
    }
    out
}

fn operations_in_document(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, _) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&m.as_str()), "{path}: unexpected key {m}");
            out.insert((m.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_document_and_the_router_name_the_same_operations() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let source = routes_in_source();
    assert!(source.len() >= 28, "found too few routes: {source:?}");
    let documented = operations_in_document(&doc);
    let undocumented: Vec<_> = source.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&source).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi/renkei.json: {undocumented:?}; operations in the document \
         that no route serves: {unrouted:?}"
    );
}

#[test]
fn every_operation_documents_its_errors_and_every_reference_resolves() {
    let doc = document();
    let text = doc.to_string();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            for code in ["401", "403", "429", "503"] {
                assert!(responses.contains_key(code), "{m} {path}: no {code}");
            }
            let created = responses.contains_key("201") || responses.contains_key("202");
            if created {
                let with_location = ["201", "202"].iter().all(|c| {
                    responses
                        .get(*c)
                        .is_none_or(|r| r["headers"]["Location"].is_object())
                });
                assert!(with_location, "{m} {path}: 201/202 without Location");
            }
            if op
                .get("requestBody")
                .is_some_and(|b| b["content"].get("application/json").is_some())
            {
                for code in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(code), "{m} {path}: no {code}");
                }
            }
        }
    }
    for (i, _) in text.match_indices("\"#/components/") {
        let reference = text[i + 3..].split('"').next().expect("a reference");
        let mut at = &doc["components"];
        for part in reference.split('/').skip(1) {
            at = &at[part];
        }
        assert!(
            !at.is_null(),
            "unresolved reference #/components/{reference}"
        );
    }
}

/// Where schemathesis is, installing it from PyPI when missing; `None` (with the reason
/// printed) only when pip cannot reach the index.
fn schemathesis() -> Option<PathBuf> {
    let found = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let bin = PathBuf::from("schemathesis");
    if found(&bin) {
        return Some(bin);
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "schemathesis"])
        .output()
        .expect("python3 runs");
    if !pip.status.success() {
        let err = String::from_utf8_lossy(&pip.stderr);
        let offline = [
            "Could not find a version",
            "No matching distribution",
            "Network",
            "connection",
            "resolve",
        ]
        .iter()
        .any(|s| err.contains(s));
        assert!(offline, "pip install schemathesis failed: {err}");
        eprintln!("SKIPPED: schemathesis cannot be installed from PyPI (offline?): {err}");
        return None;
    }
    assert!(found(&bin), "schemathesis installed but not on PATH");
    Some(bin)
}

/// Runs schemathesis as `client` on the operations tagged `tag`; panics with its report when
/// it finds a failure.
fn run_schemathesis(bin: &Path, d: &Deployment, base: &str, client: &str, tag: &str) {
    let c = d.dir.join("clients").join(client);
    let out = Command::new(bin)
        .arg("run")
        .arg(root().join("openapi/renkei.json"))
        .args(["--url", base])
        .arg("--request-cert")
        .arg(c.join("cert.pem"))
        .arg("--request-cert-key")
        .arg(c.join("key.pem"))
        .arg("--tls-verify")
        .arg(d.dir.join("ca.pem"))
        .args(["--include-tag", tag])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "--seed", "1", "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--no-color", "--request-timeout", "10"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis as {client} on {tag} found failures:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_document_and_schemathesis_finds_nothing() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let r = api.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    let committed = std::fs::read(root().join("openapi/renkei.json")).expect("read document");
    assert_eq!(r.raw.as_ref(), committed.as_slice(), "served = committed");
    assert_eq!(d.client("auditor").get("/openapi.json").await.status, 200);

    let Some(bin) = schemathesis() else {
        return;
    };
    let base = api.base.clone();
    let started = std::time::Instant::now();
    run_schemathesis(&bin, &d, &base, CLIENT_SUBSIDY, "business");
    run_schemathesis(&bin, &d, &base, "auditor", "audit");
    eprintln!(
        "schemathesis ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
