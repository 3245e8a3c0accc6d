//! Router tests without a socket: the `app()` router over a real store, driven with
//! `oneshot` and a `Peer` extension in place of the client certificate — every route's role
//! check and the API's error mapping, asserted on status and JSON body fields only.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use common::{link_body, local_tax, public_fund, sample_digits};
use hyper::{Method, Request};
use renkei::api::{app, AppState};
use renkei::config::{GatewayConfig, Role};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{
    InitOptions, CLIENT_FEED, CLIENT_SECOND, CLIENT_SIM_ADMIN, CLIENT_SUBSIDY,
};
use renkei::tls::Peer;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A gateway built from a fresh `renkei init` folder, with its router (nothing listens).
struct Gw {
    router: Router,
    config: std::sync::Arc<GatewayConfig>,
    /// The deployment folder (first-login secrets under `staff/`).
    dir: std::path::PathBuf,
    /// Each staff user's token, signed in on first use (once: a code is refused twice).
    tokens: tokio::sync::Mutex<std::collections::HashMap<String, String>>,
    _gateway: renkei::app::Gateway,
    _tmp: tempfile::TempDir,
}

/// An answer: status, the JSON body (`Null` when not JSON) and the raw bytes.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    raw: Bytes,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

fn gateway() -> Gw {
    renkei::tls::install_default_provider();
    let tmp = tempfile::Builder::new()
        .prefix("renkei-router-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path().join("deploy");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    renkei::dev::init::init(
        &InitOptions {
            dir: dir.clone(),
            listen: any,
            sim_listen: any,
        },
        &renkei::dev::demo::seeds(),
    )
    .expect("renkei init");
    let cfg = GatewayConfig::load(&dir.join("renkei.toml")).expect("load renkei.toml");
    let gw = renkei::app::build(cfg).expect("build the gateway");
    let state = AppState {
        config: gw.config.clone(),
        store: gw.store.clone(),
        registry: gw.registry.clone(),
        inquiries: gw.inquiries.clone(),
        copies: gw.copies.clone(),
        manual: gw.manual.clone(),
        keys: gw.keys.clone(),
        master: gw.master.clone(),
        settings: gw.settings.clone(),
        reloader: None,
        config_path: None,
        staff: gw.staff.clone(),
        readiness: renkei::ops::Readiness {
            store: gw.store.clone(),
            keyring: gw.keyring.clone(),
            master: gw.master.clone(),
            policy: gw.policy.clone(),
            platform_url: gw.config.platform.url.clone(),
            backend: gw.config.store.backend,
            leadership: renkei::lease::Leadership::sole(),
            own_certificates: Vec::new(),
            clients_dir: None,
            settings: gw.settings.clone(),
        },
    };
    Gw {
        router: app(state),
        config: gw.config.clone(),
        dir,
        tokens: Default::default(),
        _gateway: gw,
        _tmp: tmp,
    }
}

impl Gw {
    /// `name`'s session token (staff users sign in on first use).
    async fn token(&self, name: &str) -> String {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(name) {
            return t.clone();
        }
        let (password, secret) = common::first_login(&self.dir, name);
        let body = json!({"user": name, "password": password, "totp": common::totp_now(&secret)});
        let r = self
            .raw(
                Some(name),
                Method::POST,
                "/v1/session",
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "sign in {name}: {}", r.text());
        let t = r.body["token"].as_str().expect("token").to_string();
        tokens.insert(name.to_string(), t.clone());
        t
    }

    /// Sends one request as `who` (`None`: no client certificate); a staff client sends its
    /// session token unless `headers` carry an `authorization` of their own.
    async fn call(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut h = headers.to_vec();
        let bearer;
        if let Some(name) = who.filter(|n| common::STAFF.contains(n)) {
            if !headers.iter().any(|(k, _)| *k == "authorization") {
                bearer = format!("Bearer {}", self.token(name).await);
                h.push(("authorization", bearer.as_str()));
            }
        }
        self.raw(who, method, path, &h, body).await
    }

    /// Sends one request exactly as given.
    async fn raw(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.into())).expect("request builds");
        if let Some(name) = who {
            req.extensions_mut().insert(Peer {
                name: name.to_string(),
                fingerprint: "ab".repeat(32),
                addr: "127.0.0.1:40000".parse().expect("addr"),
            });
        }
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {});
        let status = resp.status().as_u16();
        let raw = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("read the body");
        Reply {
            status,
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw,
        }
    }

    async fn get(&self, who: &str, path: &str) -> Reply {
        self.call(Some(who), Method::GET, path, &[], Bytes::new())
            .await
    }

    async fn json(
        &self,
        who: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.call(Some(who), method, path, &h, body.to_string())
            .await
    }

    async fn submit(&self, who: &str, key: &str, body: &Value) -> Reply {
        self.json(
            who,
            Method::POST,
            "/v1/inquiries",
            &[("idempotency-key", key)],
            body,
        )
        .await
    }
}

/// One route of the API: its template as written in `src/api`, a concrete path that reaches
/// it without side effects worth mentioning, and the roles it serves.
struct Route {
    method: Method,
    template: &'static str,
    path: &'static str,
    roles: &'static [Role],
}

const BUSINESS: &[Role] = &[Role::Business];
const SEARCH: &[Role] = &[Role::Business, Role::Security, Role::ResidentFeed];
const FEED: &[Role] = &[Role::ResidentFeed];
const SECURITY: &[Role] = &[Role::Security];
const AUDITOR: &[Role] = &[Role::Auditor];
const OPERATOR: &[Role] = &[Role::Operator];
const ADMIN: &[Role] = &[Role::Admin];
const STAFF_ROLES: &[Role] = &[Role::Security, Role::Auditor, Role::Operator, Role::Admin];
const EVERYONE: &[Role] = &[
    Role::Business,
    Role::Security,
    Role::Auditor,
    Role::Operator,
    Role::Admin,
    Role::ResidentFeed,
    Role::Admin,
];

fn routes() -> Vec<Route> {
    let r = |method: Method, template, path, roles| Route {
        method,
        template,
        path,
        roles,
    };
    vec![
        // business::routes
        r(
            Method::PUT,
            "/v1/persons/{business_number}",
            "/v1/persons/000000000012345",
            BUSINESS,
        ),
        r(Method::POST, "/v1/inquiries", "/v1/inquiries", BUSINESS),
        r(Method::GET, "/v1/inquiries", "/v1/inquiries", BUSINESS),
        r(
            Method::GET,
            "/v1/inquiries/{id}",
            "/v1/inquiries/IQ-none",
            BUSINESS,
        ),
        // copies::routes
        r(
            Method::PUT,
            "/v1/copies/{business_number}/{item_code}",
            "/v1/copies/000000000012345/TM00000000000002",
            BUSINESS,
        ),
        r(
            Method::GET,
            "/v1/copies/{business_number}/{item_code}",
            "/v1/copies/000000000012345/TM00000000000002",
            BUSINESS,
        ),
        r(
            Method::DELETE,
            "/v1/copies/{business_number}/{item_code}",
            "/v1/copies/000000000012345/TM00000000000002",
            BUSINESS,
        ),
        r(
            Method::POST,
            "/v1/copies:import",
            "/v1/copies:import",
            BUSINESS,
        ),
        // provision_requests::routes
        r(
            Method::GET,
            "/v1/provision-requests",
            "/v1/provision-requests",
            BUSINESS,
        ),
        r(
            Method::GET,
            "/v1/provision-requests/{id}",
            "/v1/provision-requests/PQ-none",
            BUSINESS,
        ),
        r(
            Method::POST,
            "/v1/provision-requests/{id}/answer",
            "/v1/provision-requests/PQ-none/answer",
            BUSINESS,
        ),
        // batch::routes
        r(
            Method::POST,
            "/v1/inquiries:batch",
            "/v1/inquiries:batch",
            BUSINESS,
        ),
        r(
            Method::GET,
            "/v1/batches/{id}",
            "/v1/batches/BT-none",
            BUSINESS,
        ),
        r(
            Method::GET,
            "/v1/batches/{id}/results",
            "/v1/batches/BT-none/results",
            BUSINESS,
        ),
        // registry::feed_routes
        r(
            Method::POST,
            "/v1/persons:import",
            "/v1/persons:import",
            FEED,
        ),
        // registry::search_routes
        r(
            Method::GET,
            "/v1/persons:lookup",
            "/v1/persons:lookup",
            SEARCH,
        ),
        r(
            Method::POST,
            "/v1/persons:match",
            "/v1/persons:match",
            SEARCH,
        ),
        // registry::security_routes
        r(
            Method::POST,
            "/v1/persons:by-individual-number",
            "/v1/persons:by-individual-number",
            SECURITY,
        ),
        r(
            Method::POST,
            "/v1/persons:merge",
            "/v1/persons:merge",
            SECURITY,
        ),
        // security::routes (an unknown purpose: nothing is rotated or retired)
        r(Method::GET, "/v1/keys", "/v1/keys", SECURITY),
        r(Method::GET, "/v1/keys/status", "/v1/keys/status", SECURITY),
        r(
            Method::POST,
            "/v1/keys/{purpose}/rotate",
            "/v1/keys/no-such-purpose/rotate",
            SECURITY,
        ),
        r(
            Method::POST,
            "/v1/keys/{purpose}/{version}/retire",
            "/v1/keys/no-such-purpose/1/retire",
            SECURITY,
        ),
        r(
            Method::GET,
            "/v1/keys/requests",
            "/v1/keys/requests",
            SECURITY,
        ),
        r(
            Method::POST,
            "/v1/keys/requests/{id}/approve",
            "/v1/keys/requests/KR-none/approve",
            SECURITY,
        ),
        // audit::routes
        r(
            Method::GET,
            "/v1/audit/records",
            "/v1/audit/records",
            AUDITOR,
        ),
        r(
            Method::POST,
            "/v1/audit/export",
            "/v1/audit/export",
            AUDITOR,
        ),
        r(Method::GET, "/v1/audit/verify", "/v1/audit/verify", AUDITOR),
        r(
            Method::GET,
            "/v1/audit/public-keys",
            "/v1/audit/public-keys",
            AUDITOR,
        ),
        r(
            Method::GET,
            "/v1/audit/consistency",
            "/v1/audit/consistency?from=0",
            AUDITOR,
        ),
        r(
            Method::GET,
            "/v1/audit/checkpoints",
            "/v1/audit/checkpoints",
            AUDITOR,
        ),
        r(
            Method::GET,
            "/v1/audit/leaves",
            "/v1/audit/leaves?from=0&to=1",
            AUDITOR,
        ),
        // ops::routes
        r(Method::GET, "/v1/ops/stats", "/v1/ops/stats", OPERATOR),
        r(
            Method::GET,
            "/v1/ops/business-stats",
            "/v1/ops/business-stats?from=2026-01-01&to=2026-01-31",
            OPERATOR,
        ),
        r(Method::GET, "/v1/ops/batches", "/v1/ops/batches", OPERATOR),
        r(
            Method::GET,
            "/v1/ops/readiness",
            "/v1/ops/readiness",
            OPERATOR,
        ),
        r(Method::GET, "/v1/ops/queue", "/v1/ops/queue", OPERATOR),
        r(
            Method::GET,
            "/v1/ops/throughput",
            "/v1/ops/throughput",
            OPERATOR,
        ),
        // console::routes (the page's files: no session; tests/console.rs drives them)
        r(Method::GET, "/console", "/console", STAFF_ROLES),
        r(Method::GET, "/console/", "/console/", STAFF_ROLES),
        r(
            Method::GET,
            "/console/app.js",
            "/console/app.js",
            STAFF_ROLES,
        ),
        r(
            Method::GET,
            "/console/app.css",
            "/console/app.css",
            STAFF_ROLES,
        ),
        r(
            Method::GET,
            "/console/whoami",
            "/console/whoami",
            STAFF_ROLES,
        ),
        r(
            Method::GET,
            "/console/eras.json",
            "/console/eras.json",
            STAFF_ROLES,
        ),
        // admin::routes
        r(
            Method::POST,
            "/v1/admin/config/reload",
            "/v1/admin/config/reload",
            ADMIN,
        ),
        // (started without a configuration file: 409 backup_unavailable, nothing taken)
        r(Method::POST, "/v1/admin/backup", "/v1/admin/backup", ADMIN),
        // session::admin_routes (a user that does not exist: nothing changes)
        r(Method::GET, "/v1/staff/users", "/v1/staff/users", ADMIN),
        r(Method::POST, "/v1/staff/users", "/v1/staff/users", ADMIN),
        r(
            Method::POST,
            "/v1/staff/users/{name}/disable",
            "/v1/staff/users/nobody/disable",
            ADMIN,
        ),
        r(
            Method::POST,
            "/v1/staff/users/{name}/enable",
            "/v1/staff/users/nobody/enable",
            ADMIN,
        ),
        r(
            Method::POST,
            "/v1/staff/users/{name}/reset",
            "/v1/staff/users/nobody/reset",
            ADMIN,
        ),
        // session::routes (an empty body: nothing is signed in or changed)
        r(Method::POST, "/v1/session", "/v1/session", STAFF_ROLES),
        r(
            Method::POST,
            "/v1/session/password",
            "/v1/session/password",
            STAFF_ROLES,
        ),
        // api::app
        r(Method::GET, "/healthz", "/healthz", EVERYONE),
        // openapi::routes
        r(Method::GET, "/openapi.json", "/openapi.json", EVERYONE),
        // Last: signing out ends each staff user's session.
        r(Method::DELETE, "/v1/session", "/v1/session", STAFF_ROLES),
    ]
}

/// The clients `renkei init` configures, with the role each must have.
const CLIENTS: &[(&str, Role)] = &[
    (CLIENT_SUBSIDY, Role::Business),
    (CLIENT_SECOND, Role::Business),
    (CLIENT_FEED, Role::ResidentFeed),
    ("security-officer", Role::Security),
    ("security-officer-2", Role::Security),
    ("auditor", Role::Auditor),
    ("operator", Role::Operator),
    ("admin", Role::Admin),
];

/// Every route template written in `src/api/*.rs` (`.route("…"`), read from the source so
/// that a new route without a row in [`routes`] fails the test.
fn routes_in_source() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(&dir).expect("src/api").flatten() {
        let text = std::fs::read_to_string(e.path()).expect("read source");
        for (i, _) in text.match_indices(".route(") {
            let rest = text[i + ".route(".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let lit = rest.split('"').next().expect("a string literal");
            out.insert(lit.to_string());
        }
    }
    out
}

/// Routes of the operations listener (`api::ops::probes`): plain HTTP on `[ops] listen`, no
/// client certificate, no role — tests/ops_probes.rs drives them.
const OPS_LISTENER_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics"];

#[test]
fn the_table_lists_every_route_in_the_source() {
    let mut table: BTreeSet<String> = routes().iter().map(|r| r.template.to_string()).collect();
    table.extend(OPS_LISTENER_ROUTES.iter().map(|r| r.to_string()));
    let source = routes_in_source();
    assert!(
        source.len() >= 20,
        "found too few routes in src/api: {source:?}"
    );
    assert_eq!(
        table, source,
        "the role matrix must list exactly the routes of src/api"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_serves_only_its_roles() {
    let gw = gateway();
    for (name, role) in CLIENTS {
        let c = gw
            .config
            .client(name)
            .unwrap_or_else(|| panic!("renkei init does not configure {name}"));
        assert_eq!(c.role, *role, "the role renkei init gives {name}");
    }
    for route in routes() {
        for (name, role) in CLIENTS {
            let r = gw
                .call(
                    Some(name),
                    route.method.clone(),
                    route.path,
                    &[],
                    Bytes::new(),
                )
                .await;
            let what = format!("{} {} as {name} ({role:?})", route.method, route.path);
            if route.roles.contains(role) {
                assert!(
                    ![
                        "wrong_role",
                        "no_such_endpoint",
                        "unknown_client",
                        "no_client_certificate"
                    ]
                    .contains(&r.code()),
                    "{what}: an allowed role must reach the handler, got {} {}",
                    r.status,
                    r.text()
                );
                assert_ne!(r.status, 401, "{what}: {}", r.text());
                assert!(r.status < 500, "{what}: {} {}", r.status, r.text());
            } else {
                assert_eq!(
                    (r.status, r.code()),
                    (403, "wrong_role"),
                    "{what}: {}",
                    r.text()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_configured_certificate_are_refused_everywhere() {
    let gw = gateway();
    let mut paths: Vec<(Method, &str)> = routes()
        .iter()
        .map(|r| (r.method.clone(), r.path))
        .collect();
    paths.push((Method::GET, "/v1/no-such-thing"));
    for (method, path) in paths {
        let r = gw.call(None, method.clone(), path, &[], Bytes::new()).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "no_client_certificate"),
            "{method} {path} without a certificate: {}",
            r.text()
        );
        // The simulator's admin certificate is signed by the same CA but is not a client
        // of the gateway; nor is a made-up name.
        for name in [CLIENT_SIM_ADMIN, "nobody", ""] {
            let r = gw
                .call(Some(name), method.clone(), path, &[], Bytes::new())
                .await;
            assert_eq!(
                (r.status, r.code()),
                (403, "unknown_client"),
                "{method} {path} as {name:?}: {}",
                r.text()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_no_such_endpoint_for_everyone() {
    let gw = gateway();
    for (name, _) in CLIENTS {
        for (method, path) in [
            (Method::GET, "/v1/no-such-thing"),
            (Method::POST, "/v2/inquiries"),
            (Method::GET, "/"),
            (Method::DELETE, "/v1/persons/000000000012345/extra"),
        ] {
            let r = gw
                .call(Some(name), method.clone(), path, &[], Bytes::new())
                .await;
            assert_eq!(
                (r.status, r.code()),
                (404, "no_such_endpoint"),
                "{method} {path} as {name}: {}",
                r.text()
            );
        }
    }
}

/// Sample `i`'s digits with a wrong check digit.
fn wrong_check_digit(i: usize) -> String {
    let mut d = sample_digits(i).into_bytes();
    d[11] = b'0' + (d[11] - b'0' + 1) % 10;
    String::from_utf8(d).expect("ascii")
}

/// Asserts that `r` is a 422 with `code` and `field`.
fn assert_invalid(r: &Reply, code: &str, field: &str, what: &str) {
    assert_eq!(
        (r.status, r.code(), r.body["field"].as_str()),
        (422, code, Some(field)),
        "{what}: {}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_map_to_stable_codes_naming_the_field() {
    let gw = gateway();
    let bn = SAMPLES[0].business_number;
    let person = format!("/v1/persons/{bn}");

    // Unknown field, in an inquiry and in a link.
    let mut body = local_tax(bn);
    body["priority"] = json!("high");
    let r = gw.submit(CLIENT_SUBSIDY, "u-1", &body).await;
    assert_invalid(&r, "unknown_field", "priority", "unknown field");
    let mut link = link_body(0);
    link["nickname"] = json!("x");
    let r = gw
        .json(CLIENT_SUBSIDY, Method::PUT, &person, &[], &link)
        .await;
    assert_invalid(&r, "unknown_field", "nickname", "unknown field in a link");

    // Missing field.
    for missing in ["business_number", "item", "conditions"] {
        let mut body = local_tax(bn);
        body.as_object_mut().expect("object").remove(missing);
        let r = gw.submit(CLIENT_SUBSIDY, "m-1", &body).await;
        assert_invalid(&r, "missing_field", missing, "missing field");
    }
    let mut link = link_body(0);
    link.as_object_mut().expect("object").remove("kana");
    let r = gw
        .json(CLIENT_SUBSIDY, Method::PUT, &person, &[], &link)
        .await;
    assert_invalid(&r, "missing_field", "kana", "missing field in a link");

    // Wrong check digit: named, and the number is not echoed.
    let mut link = link_body(0);
    let wrong = wrong_check_digit(0);
    link["individual_number"] = json!(wrong);
    let r = gw
        .json(CLIENT_SUBSIDY, Method::PUT, &person, &[], &link)
        .await;
    assert_invalid(
        &r,
        "invalid_check_digit",
        "individual_number",
        "wrong check digit",
    );
    assert!(!r.text().contains(&wrong[..11]), "echoes the number");

    // A JSON key that looks like an individual number is never shown back.
    for (path, method, mut body) in [
        ("/v1/inquiries", Method::POST, local_tax(bn)),
        (person.as_str(), Method::PUT, link_body(0)),
    ] {
        body["1234-5678-9018"] = json!(1);
        let r = gw
            .json(
                CLIENT_SUBSIDY,
                method.clone(),
                path,
                &[("idempotency-key", "n-1")],
                &body,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "unknown_field"),
            "{method} {path}: {}",
            r.text()
        );
        let text = r.text();
        for part in ["1234", "5678", "9018"] {
            assert!(
                !text.contains(part),
                "{method} {path}: the number-like key is echoed: {text}"
            );
        }
        for d in (0..SAMPLES.len()).map(sample_digits) {
            assert!(!text.contains(&d[..11]), "{method} {path}: echoes a number");
        }
    }

    // Not JSON at all, or cut short.
    for raw in [
        &b"{\"business_number\": "[..],
        &b"not json"[..],
        &b"{\"item\" 1}"[..],
        &b""[..],
    ] {
        let r = gw
            .call(
                Some(CLIENT_SUBSIDY),
                Method::POST,
                "/v1/inquiries",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "j-1"),
                ],
                Bytes::copy_from_slice(raw),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "malformed_json"),
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            r.text()
        );
    }

    // Not declared as JSON.
    let valid = local_tax(bn).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut h = vec![("idempotency-key", "c-1")];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        let r = gw
            .call(
                Some(CLIENT_SUBSIDY),
                Method::POST,
                "/v1/inquiries",
                &h,
                valid.clone(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (415, "content_type"),
            "content type {ct:?}: {}",
            r.text()
        );
    }
    // A charset parameter is still JSON.
    let r = gw
        .call(
            Some(CLIENT_SUBSIDY),
            Method::POST,
            "/v1/inquiries",
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("idempotency-key", "c-2"),
            ],
            valid.clone(),
        )
        .await;
    assert_ne!(r.status, 415, "{}", r.text());

    // Larger than max_body_bytes.
    let limit = gw.config.max_body_bytes;
    let mut big = local_tax(bn);
    big["padding"] = json!("x".repeat(limit));
    let r = gw.submit(CLIENT_SUBSIDY, "big-1", &big).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "body_too_large"),
        "{} bytes: {}",
        big.to_string().len(),
        r.text()
    );

    // No idempotency key.
    let r = gw
        .json(
            CLIENT_SUBSIDY,
            Method::POST,
            "/v1/inquiries",
            &[],
            &local_tax(bn),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.body["field"].as_str()),
        (400, "missing_idempotency_key", Some("Idempotency-Key")),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_refusals_map_to_stable_codes() {
    let gw = gateway();
    let bn = SAMPLES[0].business_number;

    // Not linked yet: the person is unknown to this system.
    let r = gw.submit(CLIENT_SUBSIDY, "nl-1", &local_tax(bn)).await;
    assert_invalid(
        &r,
        "person_not_linked",
        "business_number",
        "before the link",
    );

    let r = gw
        .json(
            CLIENT_SUBSIDY,
            Method::PUT,
            &format!("/v1/persons/{bn}"),
            &[],
            &link_body(0),
        )
        .await;
    assert_eq!(r.status, 201, "link: {}", r.text());
    let r = gw.submit(CLIENT_SUBSIDY, "ok-1", &local_tax(bn)).await;
    assert_eq!(r.status, 202, "accepted: {}", r.text());
    assert_eq!(r.body["status"], "queued", "{}", r.text());
    let id = r.body["id"].as_str().expect("id").to_string();
    let own = gw.get(CLIENT_SUBSIDY, &format!("/v1/inquiries/{id}")).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.body["status"], "queued", "{}", own.text());

    // The same key and body: the same inquiry; the same key and another body: 409.
    let again = gw.submit(CLIENT_SUBSIDY, "ok-1", &local_tax(bn)).await;
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (202, Some(id.as_str())),
        "replay: {}",
        again.text()
    );
    let mut other = local_tax(bn);
    other["conditions"]["fiscal_year"] = json!(2025);
    let r = gw.submit(CLIENT_SUBSIDY, "ok-1", &other).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "idempotency_key_reused"),
        "{}",
        r.text()
    );

    // Another system's inquiry, an id of the wrong shape, a well-shaped unknown id: 404.
    let mut unknown = id.clone();
    let last = unknown.pop().expect("non-empty id");
    unknown.push(if last == '0' { '1' } else { '0' });
    for (who, path) in [
        (CLIENT_SECOND, format!("/v1/inquiries/{id}")),
        (CLIENT_SUBSIDY, "/v1/inquiries/not-an-id".to_string()),
        (CLIENT_SUBSIDY, "/v1/inquiries/..%2F..%2Fstore".to_string()),
        (CLIENT_SUBSIDY, format!("/v1/inquiries/{unknown}")),
    ] {
        let r = gw.get(who, &path).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found"),
            "{path} as {who}: {}",
            r.text()
        );
        assert!(!r.text().contains(&id), "{path}: names the inquiry");
    }

    // kokuho may inquire local tax but not the public-fund account (its affair's rows in
    // schemas/permissions/).
    let kokuho = gw.config.client(CLIENT_SECOND).expect("kokuho");
    let fund = public_fund(bn);
    let settings = gw._gateway.settings.current();
    assert!(
        kokuho.affairs.iter().all(|a| !settings.table.permits(
            a,
            &fund["procedure"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .expect("JT"),
            &fund["item"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .expect("TM"),
            renkei::schemas::permissions::Direction::Inquiry,
        )),
        "the permission table gives kokuho the public-fund item; pick another refused item"
    );
    let r = gw.submit(CLIENT_SECOND, "np-1", &fund).await;
    assert_eq!((r.status, r.code()), (403, "not_permitted"), "{}", r.text());
    // Permitted, but the person is linked only to kodomo-iryo.
    let r = gw.submit(CLIENT_SECOND, "nl-2", &local_tax(bn)).await;
    assert_invalid(
        &r,
        "person_not_linked",
        "business_number",
        "another system's person",
    );
}

/// Every route a staff role may use, except signing in itself, `/healthz` and the console's
/// files (they hold no data; the page's API calls carry the session).
fn staff_routes() -> Vec<Route> {
    routes()
        .into_iter()
        .filter(|r| r.roles.iter().any(|role| STAFF_ROLES.contains(role)))
        .filter(|r| {
            r.template != "/healthz"
                && !r.template.starts_with("/console")
                && !(r.template == "/v1/session" && r.method == Method::POST)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_route_needs_a_session_of_the_same_certificate() {
    let gw = gateway();
    // Sign every staff user in first (each once), then take each route as each staff client
    // with the role: no token, a garbage token, and another user's token (that user is bound
    // to another certificate, so it is also a token presented with another certificate).
    let mut tokens = std::collections::HashMap::new();
    for name in common::STAFF {
        tokens.insert(name, gw.token(name).await);
    }
    for route in staff_routes() {
        for (name, role) in CLIENTS {
            if !role.is_staff() || !route.roles.contains(role) {
                continue;
            }
            let what = format!("{} {} as {name}", route.method, route.path);
            let none = gw
                .raw(
                    Some(name),
                    route.method.clone(),
                    route.path,
                    &[],
                    Bytes::new(),
                )
                .await;
            assert_eq!(
                (none.status, none.code()),
                (401, "session_required"),
                "{what}"
            );
            let garbage = gw
                .raw(
                    Some(name),
                    route.method.clone(),
                    route.path,
                    &[("authorization", "Bearer rks_not-a-session")],
                    Bytes::new(),
                )
                .await;
            assert_eq!(
                (garbage.status, garbage.code()),
                (401, "session_expired"),
                "{what}"
            );
            let other = if *name == "auditor" {
                "operator"
            } else {
                "auditor"
            };
            let bearer = format!("Bearer {}", tokens[other]);
            let theirs = gw
                .raw(
                    Some(name),
                    route.method.clone(),
                    route.path,
                    &[("authorization", bearer.as_str())],
                    Bytes::new(),
                )
                .await;
            assert_eq!(
                (theirs.status, theirs.code()),
                (401, "session_mismatch"),
                "{what} with {other}'s token"
            );
        }
    }
    // Business systems and the feed stay certificate-only: no token, still served.
    let r = gw
        .raw(
            Some(CLIENT_FEED),
            Method::GET,
            "/v1/persons:lookup",
            &[],
            Bytes::new(),
        )
        .await;
    assert!(!r.code().starts_with("session"), "{}", r.text());
    // The sessions still work after all that, and sign-out ends one at once.
    let ops = gw.get("operator", "/v1/ops/stats").await;
    assert_eq!(ops.status, 200, "{}", ops.text());
    let out = gw
        .call(
            Some("operator"),
            Method::DELETE,
            "/v1/session",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.text());
    let after = gw.get("operator", "/v1/ops/stats").await;
    assert_eq!((after.status, after.code()), (401, "session_expired"));
}
