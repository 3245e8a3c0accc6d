//! The web console (`/console/`) end to end over the release binary. First without a
//! browser: the security headers (strict CSP, no framing), that the page loads nothing from
//! elsewhere and runs no inline script, and who is served the files. Then in Debian's
//! chromium, headless, driven by chromedriver over WebDriver (plain JSON over HTTP on
//! loopback, spoken here): each staff member's client certificate imported into a fresh NSS
//! database of the browser's own home, chosen by the `AutoSelectCertificateForUrls` policy,
//! so the browser itself does the mutual TLS — sign-in with TOTP and failed ones (and a
//! lockout), an auditor's search, record, CSV, export and live verification (and a tampered
//! store failing it, naming the record), a saved checkpoint checked against today's in the
//! page itself (and a saved file with its root changed refused, and the same files through
//! `renkei audit verify --since`), a period's bundle downloaded as the browser saves it and
//! verified offline, a rotation approved by a second officer, an operator watching the queue
//! and the per-minute throughput grow, every role refused what it may not use, and no request
//! of the browser leaving 127.0.0.1 (from chromium's own network log). Screenshots go to
//! `target/tmp/console-screenshots/`. The chromium policy the browser test needs is a file of
//! this process's own, removed when the last test using it ends ([`PolicyGuard`]).

mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{first_login, totp_at, wait_for, wait_until, Deployment, START_TIMEOUT};
use http_body_util::{BodyExt, Full};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use serde_json::{json, Value};

/// The CSP the console must send (the same text as `renkei::api::console::CSP`, written out
/// here so a loosened policy in the source fails this test).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// How long a page step may take in the browser (generous: CI machines are loaded).
const STEP: Duration = Duration::from_secs(60);

/// chromium's policy folder (read only from here on Linux).
const POLICY_DIR: &str = "/etc/chromium/policies/managed";

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
    assert_eq!(queue.body["since_start"]["accepted"], 0);
    assert_eq!(
        queue.body["since_start"]["platform_requests"]["platform_fault"],
        0
    );
    assert_eq!(d.client("auditor").get("/v1/ops/queue").await.status, 403);
    // The per-minute ring: always the last 60 minutes, oldest first, nothing counted yet.
    let flow = ops.get("/v1/ops/throughput").await;
    assert_eq!(flow.status, 200, "{}", flow.body);
    let minutes = flow.body["series"].as_array().expect("series");
    assert_eq!(minutes.len(), 60);
    assert!(minutes
        .windows(2)
        .all(|w| w[1]["minute"].as_u64() == w[0]["minute"].as_u64().map(|m| m + 60)));
    assert!(minutes.iter().all(|m| m["accepted"] == 0));
    assert_eq!(
        d.client("auditor").get("/v1/ops/throughput").await.status,
        403
    );
}

// ---- WebDriver -------------------------------------------------------------------------

/// The WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One chromedriver process with one browser session, for one staff certificate.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    /// Where screenshots go.
    shots: PathBuf,
    /// Where the browser saves downloads.
    downloads: PathBuf,
    _home: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh NSS database under `home` holding `who`'s certificate and key, and trusting the
/// deployment's CA for the gateway's server certificate.
fn nss_with_certificate(d: &Deployment, who: &str, home: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("nssdb dir");
    let db = format!("sql:{}", db.display());
    run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]));
    let c = d.dir.join("clients").join(who);
    let p12 = home.join("staff.p12");
    run(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-passout",
            "pass:console",
            "-name",
            who,
        ])
        .arg("-in")
        .arg(c.join("cert.pem"))
        .arg("-inkey")
        .arg(c.join("key.pem"))
        .arg("-out")
        .arg(&p12));
    run(Command::new("pk12util")
        .args(["-d", &db, "-W", "console", "-i"])
        .arg(&p12));
    std::fs::remove_file(&p12).expect("remove p12");
    run(Command::new("certutil")
        .args(["-A", "-d", &db, "-n", "renkei-ca", "-t", "C,,", "-i"])
        .arg(d.dir.join("ca.pem")));
}

impl Browser {
    /// chromedriver + headless chromium presenting `who`'s certificate.
    async fn open(d: &Deployment, who: &str, shots: &Path) -> Browser {
        let home = tempfile::Builder::new()
            .prefix("renkei-browser-")
            .tempdir()
            .expect("tempdir");
        nss_with_certificate(d, who, home.path());
        let port = free_port();
        // Its own process group, so that the browser it starts goes with it (see `Drop`).
        let driver = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let downloads = home.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            shots: shots.to_path_buf(),
            downloads,
            _home: home,
        };
        wait_until(START_TIMEOUT, "chromedriver answers", || async {
            b.call(hyper::Method::GET, "/status", None)
                .await
                .is_some_and(|v| v["value"]["ready"] == true)
        })
        .await;
        let data = b._home.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000", "--lang=ja",
                    format!("--user-data-dir={}", data.display()),
                ],
                "prefs": {
                    "download.default_directory": b.downloads.to_str().expect("utf-8"),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let s = b
            .call(hyper::Method::POST, "/session", Some(caps))
            .await
            .expect("new WebDriver session");
        b.session = s["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {s}"))
            .to_string();
        // Downloads go to the folder without asking (also in headless mode).
        b.cmd(
            hyper::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Browser.setDownloadBehavior", "params": {
                "behavior": "allow",
                "downloadPath": b.downloads.to_str().expect("utf-8"),
            }})),
        )
        .await;
        b
    }

    /// Chooses `file` in the file input `css` (as the file dialog would).
    async fn choose_file(&self, css: &str, file: &Path) {
        self.js(&format!(
            "document.querySelector({}).value = ''; return true;",
            json!(css)
        ))
        .await;
        let e = self.element(css).await;
        self.cmd(
            hyper::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": file.to_str().expect("utf-8") })),
        )
        .await;
    }

    /// The file ending in `ext` the browser has finished saving, once there is one.
    async fn downloaded(&self, ext: &str) -> PathBuf {
        wait_for(STEP, "the browser saved the file", || async {
            let names: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            let partial = names
                .iter()
                .any(|p| p.extension().is_some_and(|x| x == "crdownload"));
            let done: Vec<&PathBuf> = names
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect();
            match done.as_slice() {
                [one] if !partial => Some((*one).clone()),
                _ => None,
            }
        })
        .await
    }

    /// The outcome of the page's checkpoint check: `data-ok` and `data-failure`.
    async fn consistency_outcome(&self) -> (String, String) {
        let v = self
            .until(
                "the checkpoint check ends",
                "const e = document.getElementById('consistency-outcome'); return e ? [e.dataset.ok, e.dataset.failure || ''] : null;",
            )
            .await;
        (
            v[0].as_str().unwrap_or_default().to_string(),
            v[1].as_str().unwrap_or_default().to_string(),
        )
    }

    async fn call(&self, method: hyper::Method, path: &str, body: Option<Value>) -> Option<Value> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .ok()?;
        let resp = tokio::time::timeout(STEP, self.http.request(req))
            .await
            .ok()?
            .ok()?;
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&bytes).ok()
    }

    /// A command of this session; panics on a WebDriver error.
    async fn cmd(&self, method: hyper::Method, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        let v = self
            .call(method, &p, body)
            .await
            .unwrap_or_else(|| panic!("WebDriver {p}: no answer"));
        if v["value"]["error"].is_string() {
            panic!("WebDriver {p}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(hyper::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body) in the page and returns its value.
    async fn js(&self, script: &str) -> Value {
        self.cmd(
            hyper::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` returns something other than null/false/"" and returns it.
    async fn until(&self, what: &str, script: &str) -> Value {
        wait_for(STEP, what, || async {
            let v = self.js(script).await;
            let empty = v.is_null() || v == json!(false) || v == json!("");
            (!empty).then_some(v)
        })
        .await
    }

    /// The text of the first element matching `css`, once there is one and it is visible.
    async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e && e.offsetParent !== null ? e.textContent : null;",
            json!(css)
        );
        self.until(&format!("{css} shows"), &script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn element(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return !!(e && e.offsetParent !== null);",
            json!(css)
        );
        self.until(&format!("{css} is visible"), &script).await;
        let v = self
            .cmd(
                hyper::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            hyper::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clears a field and types `text` into it (as keystrokes).
    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            hyper::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            hyper::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The error box's stable code, once one shows.
    async fn error_code(&self) -> String {
        self.until(
            "an error shows",
            "const e = document.getElementById('error'); return e.hidden ? null : e.dataset.code;",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.cmd(hyper::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 png"))
            .expect("png");
        std::fs::create_dir_all(&self.shots).expect("screenshot folder");
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).expect("write screenshot");
    }

    /// Every http(s)/ws URL the browser requested so far, from its performance log.
    async fn requested_urls(&self) -> Vec<String> {
        let log = self
            .cmd(
                hyper::Method::POST,
                "/se/log",
                Some(json!({"type": "performance"})),
            )
            .await;
        let mut out = Vec::new();
        for entry in log.as_array().expect("log entries") {
            let Ok(m) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or(""))
            else {
                continue;
            };
            if m["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(u) = m["message"]["params"]["request"]["url"].as_str() {
                    out.push(u.to_string());
                }
            }
        }
        out
    }

    /// Opens the console and signs in as `user` with a code for the next TOTP step (the
    /// harness already used the current one; one step of skew is accepted).
    async fn sign_in(&self, origin: &str, d: &Deployment, user: &str) {
        self.goto(&format!("{origin}/console/")).await;
        self.until(
            "the page is ready",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
        let (password, secret) = first_login(&d.dir, user);
        self.type_into("#user", user).await;
        self.type_into("#password", &password).await;
        let code = totp_at(&secret, now_secs() + 30);
        // The keyboard alone: Enter in the code field submits the form.
        self.type_into("#totp", &format!("{code}\u{E007}")).await;
        self.until(
            "signed in",
            "return !document.getElementById('signout').hidden;",
        )
        .await;
    }

    /// Ends the WebDriver session (the browser quits), then chromedriver (`Drop`).
    async fn close(self) {
        let _ = self
            .call(
                hyper::Method::DELETE,
                &format!("/session/{}", self.session),
                None,
            )
            .await;
    }
}

impl Drop for Browser {
    /// Also when a step panics: chromedriver and the browser it started (its process group).
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.wait();
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The chromium policy file of this test process (`/etc/chromium/policies/managed/`), which
/// lets headless chromium present the (only) certificate of its NSS database to the gateway
/// on loopback without asking. Written when the first browser test of the process takes it,
/// removed when the last one ends (also when a test panics): the count is the process's, and
/// the file name carries the process id, so tests here and in other processes running at the
/// same time never remove each other's file.
struct PolicyGuard;

/// Browser tests of this process holding the policy.
static POLICY_USERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

fn policy_file() -> PathBuf {
    Path::new(POLICY_DIR).join(format!("renkei-console-test-{}.json", std::process::id()))
}

impl PolicyGuard {
    fn take() -> Result<PolicyGuard, String> {
        let mut users = POLICY_USERS.lock().unwrap_or_else(|p| p.into_inner());
        if *users == 0 {
            // The one file name earlier versions of this test wrote, and left behind.
            let _ = std::fs::remove_file(Path::new(POLICY_DIR).join("renkei-console-test.json"));
            let text = json!({"AutoSelectCertificateForUrls": [
                json!({"pattern": "https://127.0.0.1", "filter": {}}).to_string()
            ]})
            .to_string();
            std::fs::create_dir_all(POLICY_DIR).map_err(|e| e.to_string())?;
            std::fs::write(policy_file(), text).map_err(|e| e.to_string())?;
        }
        *users += 1;
        Ok(PolicyGuard)
    }
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        let mut users = POLICY_USERS.lock().unwrap_or_else(|p| p.into_inner());
        *users = users.saturating_sub(1);
        if *users == 0 {
            let _ = std::fs::remove_file(policy_file());
        }
    }
}

/// Whether the browser test can run here (installs chromium as root when it is missing);
/// the policy it needs, held while the guard lives.
fn browser_ready() -> Result<PolicyGuard, String> {
    let have = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> = ["chromium", "chromedriver", "pk12util", "certutil", "tar"]
        .into_iter()
        .filter(|c| !have(c))
        .collect();
    if !root {
        return Err(format!(
            "not root: the chromium policy goes under {POLICY_DIR} (scripts/test.sh runs as \
             root; missing here: {missing:?})"
        ));
    }
    if !missing.is_empty() {
        run(Command::new("apt-get").args(["update", "-qq"]));
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "chromium",
                "chromium-driver",
                "libnss3-tools",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"));
    }
    PolicyGuard::take()
}

/// No request the browser made left 127.0.0.1: every URL of a network scheme it requested
/// is the gateway's (`data:`, `blob:` and chromium's own `chrome:` pages stay in the browser).
async fn assert_loopback_only(b: &Browser, addr: SocketAddr) {
    let urls = b.requested_urls().await;
    let origin = format!("https://{addr}/");
    let network: Vec<&String> = urls
        .iter()
        .filter(|u| {
            ["http:", "https:", "ws:", "wss:", "ftp:"]
                .iter()
                .any(|s| u.starts_with(s))
        })
        .collect();
    assert!(
        network.iter().any(|u| u.starts_with(&origin)),
        "the network log has none of the console's requests: {urls:?}"
    );
    for u in network {
        assert!(u.starts_with(&origin), "the browser requested {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let _policy = match browser_ready() {
        Ok(guard) => guard,
        Err(why) => {
            eprintln!("SKIPPED the_console_in_a_real_browser: {why}");
            return;
        }
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut d = Deployment::new();
    d.set_line("renkei.toml", "two_person_rule", "true");
    d.start().await;
    let addr = d.gw_addr.expect("started");
    let origin = format!("https://{addr}");

    // Records of one person, made here: link the samples, one inquiry answered.
    let unified = d.link_samples().await;
    let subsidy = d.client(CLIENT_SUBSIDY);
    subsidy
        .inquire_answered("console-1", SAMPLES[0].business_number)
        .await;
    // The auditor's own copy of the checkpoint keys, and a checkpoint saved now (the CLI's
    // `audit checkpoint`); then the log grows. A copy of the saved file with one byte of its
    // root changed.
    let key_file = d.auditor_key_file();
    let saved = d.tmp.path().join("saved.checkpoint");
    let said = d.cli(&[
        "audit",
        "checkpoint",
        "--out",
        saved.to_str().expect("utf-8"),
        "--public-key",
        key_file.to_str().expect("utf-8"),
    ]);
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let saved_size = renkei_records::Checkpoint::parse_signed_note(
        &std::fs::read_to_string(&saved).expect("saved"),
    )
    .expect("a signed note")
    .tree_size;
    let changed_root = d.tmp.path().join("root-changed.checkpoint");
    std::fs::write(&changed_root, with_root_byte_changed(&saved)).expect("write");
    subsidy
        .inquire_answered("console-2", SAMPLES[1].business_number)
        .await;

    // ---- auditor ----
    let b = Browser::open(&d, "auditor", &shots).await;
    b.goto(&format!("{origin}/console/")).await;
    b.until(
        "the page is ready",
        "return document.body.dataset.ready === 'true';",
    )
    .await;
    // The browser presented the auditor's certificate: the page knows it before sign-in.
    assert!(b.text("#cert").await.contains("auditor"));
    assert_eq!(b.js("return document.documentElement.lang;").await, "ja");
    b.type_into("#user", "auditor").await;
    b.type_into("#password", "not-the-password").await;
    b.type_into("#totp", "000000").await;
    b.click("#signin-button").await;
    assert_eq!(b.error_code().await, "sign_in_failed");
    assert!(b
        .text("#error")
        .await
        .contains("サインインできませんでした"));
    b.screenshot("01-sign-in-failed").await;
    b.sign_in(&origin, &d, "auditor").await;
    assert!(b.text("#who").await.contains("監査担当"));

    // Search by person: every row is that person's; open one; its Japanese labels.
    b.goto(&format!("{origin}/console/#audit")).await;
    b.type_into("#q-person", &unified[0]).await;
    b.click("#audit-search").await;
    b.text("#records").await;
    let persons = b
        .js("return [...document.querySelectorAll('#records tbody tr')].map(r => r.children[6].textContent);")
        .await;
    let persons = persons.as_array().expect("rows").clone();
    assert!(!persons.is_empty());
    assert!(
        persons.iter().all(|p| p == &json!(unified[0])),
        "{persons:?}"
    );
    let kinds = b
        .js("return [...document.querySelectorAll('#records tbody tr')].map(r => r.children[1].textContent);")
        .await;
    assert!(
        kinds
            .as_array()
            .expect("kinds")
            .contains(&json!("情報照会")),
        "{kinds}"
    );
    b.screenshot("02-auditor-search").await;
    b.click("#records a.open").await;
    assert_eq!(b.text("dd[data-field=person]").await, unified[0]);
    let labels = b
        .js("return [...document.querySelectorAll('#record-fields dt')].map(e => e.textContent);")
        .await;
    for l in [
        "団体内統合宛名番号",
        "事務手続コード",
        "特定個人情報名コード",
        "要求日時",
    ] {
        assert!(
            labels.as_array().expect("labels").contains(&json!(l)),
            "{labels}"
        );
    }
    // 西暦 and 和暦 side by side.
    assert!(b
        .text("dd[data-field=requested_at]")
        .await
        .contains("(令和"));
    b.screenshot("03-auditor-record").await;

    // CSV and the person's bundle, which verifies offline with the auditor's keys.
    b.goto(&format!("{origin}/console/#audit")).await;
    b.click("#audit-csv").await;
    let lines = b
        .until(
            "the CSV is made",
            "return document.getElementById('audit-export-result').dataset.csvLines || null;",
        )
        .await;
    assert!(
        lines.as_str().unwrap_or("0").parse::<u32>().unwrap_or(0) >= 2,
        "{lines}"
    );
    b.click("#audit-export").await;
    b.text("#export-done").await;
    let files = b.js("return lastExport.files;").await;
    let bundle = d.tmp.path().join("console-bundle");
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    for (name, text) in files.as_object().expect("files") {
        assert!(!name.contains('/'), "{name}");
        std::fs::write(bundle.join(name), text.as_str().expect("text")).expect("write");
    }
    assert_verifies_offline(&bundle, &key_file);

    // Live verification.
    b.goto(&format!("{origin}/console/#verify")).await;
    b.click("#verify-live").await;
    assert_eq!(
        b.until(
            "verified",
            "const e = document.getElementById('verify-outcome'); return e && e.dataset.ok;"
        )
        .await,
        "true"
    );
    b.screenshot("04-auditor-verify").await;

    // The saved checkpoint against today's, checked by the page itself with the auditor's
    // key file; the CLI agrees on the same files.
    b.choose_file("#c-file", &saved).await;
    b.choose_file("#c-keys", &key_file).await;
    b.click("#consistency-check").await;
    assert_eq!(b.consistency_outcome().await, ("true".into(), "".into()));
    let sizes = b
        .js("const e = document.getElementById('consistency-outcome'); return [Number(e.dataset.old), Number(e.dataset.new)];")
        .await;
    assert_eq!(sizes[0], json!(saved_size), "{sizes}");
    assert!(
        sizes[1].as_u64().unwrap_or(0) > saved_size,
        "more records since: {sizes}"
    );
    b.screenshot("04a-auditor-checkpoint-consistent").await;
    let cli = since(&d, &saved, &key_file);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    // One byte of the saved root changed: refused, naming the saved checkpoint's signature.
    b.js("document.getElementById('consistency-result').replaceChildren(); return true;")
        .await;
    b.choose_file("#c-file", &changed_root).await;
    b.click("#consistency-check").await;
    assert_eq!(
        b.consistency_outcome().await,
        ("false".into(), "saved_checkpoint".into())
    );
    assert!(b
        .text("#consistency-problem")
        .await
        .contains("保存したチェックポイントの署名"));
    b.screenshot("04b-auditor-checkpoint-refused").await;
    let cli = since(&d, &changed_root, &key_file);
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("the saved checkpoint does NOT verify"),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // A period's bundle (yesterday to tomorrow, JST), saved by the browser as one tar file,
    // verifies offline once unpacked.
    b.goto(&format!("{origin}/console/#audit")).await;
    b.js("const day = (n) => new Date(Date.now() + 9 * 3600e3 + n * 86400e3).toISOString().slice(0, 10); document.getElementById('q-from').value = day(-1); document.getElementById('q-to').value = day(1); return true;")
        .await;
    // (The person's export above is cleared first, so the page's answer is the period's.)
    b.js("document.getElementById('audit-export-result').replaceChildren(); return true;")
        .await;
    b.click("#audit-export-period").await;
    let records = b
        .until(
            "the period is exported",
            "const e = document.getElementById('export-done'); return e ? Number(e.dataset.records) : null;",
        )
        .await;
    assert!(records.as_u64().unwrap_or(0) >= 2, "{records}");
    b.click("#export-save").await;
    let tar = b.downloaded("tar").await;
    let period = d.tmp.path().join("console-period");
    std::fs::create_dir_all(&period).expect("period dir");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&period));
    assert_verifies_offline(&period, &key_file);
    b.screenshot("04c-auditor-period-export").await;
    b.goto(&format!("{origin}/console/#verify")).await;

    // Refused what an auditor may not see: the API says so, the page shows it.
    b.goto(&format!("{origin}/console/#ops")).await;
    assert_eq!(b.error_code().await, "wrong_role");
    b.js("document.getElementById('error').hidden = true; return true;")
        .await;
    b.goto(&format!("{origin}/console/#keys")).await;
    assert_eq!(b.error_code().await, "wrong_role");
    assert_loopback_only(&b, addr).await;

    // A store edited on disk: the live verification fails and names the record. The gateway
    // comes back on the same address, so the page's session goes on.
    d.kill_gateway();
    let seq = tamper(&d).await;
    d.set_gateway("listen", &format!("\"{addr}\""));
    d.start_gateway().await;
    assert_eq!(d.gw_addr, Some(addr));
    b.goto(&format!("{origin}/console/#verify")).await;
    b.click("#verify-live").await;
    assert_eq!(
        b.until(
            "verification fails",
            "const e = document.getElementById('verify-outcome'); return e && e.dataset.ok === 'false' ? 'false' : null;"
        )
        .await,
        "false"
    );
    let problem = b.text("#verify-problem").await;
    assert!(problem.contains("altered"), "{problem}");
    assert!(
        problem.contains(&format!("seq Some({seq})")),
        "names the record: {problem}"
    );
    b.screenshot("05-auditor-verify-failed").await;
    // The saved checkpoint against the edited log: the page's own check and the CLI's agree.
    // (Both signed roots are genuine; the proof is rebuilt from the edited leaves, so it fails
    // unless the edited record lies wholly inside the old tree's one node, when the saved size
    // is a power of two.)
    b.js("document.getElementById('consistency-result').replaceChildren(); return true;")
        .await;
    b.choose_file("#c-file", &saved).await;
    b.choose_file("#c-keys", &key_file).await;
    b.click("#consistency-check").await;
    let (ok, failure) = b.consistency_outcome().await;
    let cli = since(&d, &saved, &key_file);
    assert_eq!(
        ok == "true",
        cli.status.success(),
        "the page says {ok}/{failure}, the CLI: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    if ok != "true" {
        assert_eq!(failure, "proof");
        assert!(String::from_utf8_lossy(&cli.stderr).contains("did NOT only grow"));
    }
    b.screenshot("05a-auditor-checkpoint-after-edit").await;
    // Signing out ends the session at once.
    b.click("#signout").await;
    b.until(
        "signed out",
        "return !document.getElementById('view-signin').hidden;",
    )
    .await;
    b.close().await;

    // ---- security officers: a rotation, approved by the second ----
    let s1 = Browser::open(&d, "security-officer", &shots).await;
    s1.sign_in(&origin, &d, "security-officer").await;
    s1.goto(&format!("{origin}/console/#keys")).await;
    s1.click("button.rotate[data-purpose=signing]").await;
    assert_eq!(
        s1.until(
            "the request waits",
            "const e = document.getElementById('key-outcome'); return e && e.dataset.status;"
        )
        .await,
        "pending_approval"
    );
    // Its own request shows no approve button.
    s1.text("#key-requests .own").await;
    assert_eq!(
        s1.js("return document.querySelectorAll('#key-requests button.approve').length;")
            .await,
        0
    );
    assert_loopback_only(&s1, addr).await;
    s1.close().await;

    let s2 = Browser::open(&d, "security-officer-2", &shots).await;
    s2.sign_in(&origin, &d, "security-officer-2").await;
    s2.goto(&format!("{origin}/console/#keys")).await;
    s2.text("#key-requests").await;
    s2.screenshot("06-security-requests").await;
    s2.click("#key-requests button.approve").await;
    assert_eq!(
        s2.until(
            "the rotation is done",
            "const e = document.getElementById('key-outcome'); return e && e.dataset.status;"
        )
        .await,
        "active"
    );
    s2.until(
        "signing v2 is listed as active",
        "return !!document.querySelector('#keys tr[data-purpose=signing][data-version=\"2\"][data-state=active]');",
    )
    .await;
    s2.goto(&format!("{origin}/console/#audit")).await;
    s2.click("#audit-search").await;
    assert_eq!(s2.error_code().await, "wrong_role");
    s2.close().await;

    // ---- operator: readiness, and the queue growing under a load ----
    let o = Browser::open(&d, "operator", &shots).await;
    o.sign_in(&origin, &d, "operator").await;
    o.goto(&format!("{origin}/console/#ops")).await;
    o.text("#readiness-checks").await;
    let before = wait_for(STEP, "the queue shows", || unfinished(&o)).await;
    let accepted_before = wait_for(STEP, "the throughput chart shows", || {
        chart_total(&o, "accepted")
    })
    .await;
    d.sim_mode("closed", 0).await;
    for i in 0..5 {
        let body = common::local_tax(SAMPLES[1].business_number);
        subsidy.submit_ok(&format!("console-load-{i}"), &body).await;
    }
    wait_until(STEP, "the page shows the queue grow", || async {
        unfinished(&o).await.is_some_and(|n| n >= before + 5)
    })
    .await;
    // The flow since the gateway (re)started: the load's five inquiries were accepted, and
    // the platform exchanges are counted by outcome.
    wait_until(STEP, "the page counts the load as accepted", || async {
        o.js("const e = document.getElementById('flow-accepted'); return e ? Number(e.textContent) : null;")
            .await
            .as_u64()
            .is_some_and(|n| n >= 5)
    })
    .await;
    assert_eq!(
        o.js("return document.querySelectorAll('#flow [data-outcome]').length;")
            .await,
        5
    );
    // The last hour per minute: the series counts the load, and the chart has one point per
    // minute of the series on each line.
    wait_until(STEP, "the chart counts the load", || async {
        chart_total(&o, "accepted")
            .await
            .is_some_and(|n| n >= accepted_before + 5)
    })
    .await;
    let series = d.client("operator").get("/v1/ops/throughput").await;
    assert_eq!(series.status, 200, "{}", series.body);
    let minutes = series.body["series"].as_array().expect("series").clone();
    assert_eq!(minutes.len(), 60);
    let accepted: u64 = minutes
        .iter()
        .map(|m| m["accepted"].as_u64().expect("count"))
        .sum();
    assert!(accepted >= accepted_before + 5, "{}", series.body);
    let points = o
        .js("return [...document.querySelectorAll('#throughput-chart polyline')].map(l => l.getAttribute('points').split(' ').length);")
        .await;
    assert_eq!(points, json!([60, 60, 60]));
    o.screenshot("07-operator").await;
    o.js("document.getElementById('ops-throughput').previousElementSibling.scrollIntoView(); return true;")
        .await;
    o.screenshot("07a-operator-throughput").await;
    // Business statistics of this month: the answered inquiry is counted.
    o.click("#stats-form button").await;
    o.text("#business-stats").await;
    // English on request.
    o.click("#lang").await;
    o.until("English labels", "return document.documentElement.lang === 'en' && document.querySelector('nav a[href=\"#ops\"]').textContent === 'Operations';")
        .await;
    o.goto(&format!("{origin}/console/#audit")).await;
    o.click("#audit-search").await;
    assert_eq!(o.error_code().await, "wrong_role");
    assert_loopback_only(&o, addr).await;
    o.close().await;

    // ---- lockout: five failures, then even the right password is refused ----
    let a = Browser::open(&d, "admin", &shots).await;
    a.goto(&format!("{origin}/console/")).await;
    a.until(
        "the page is ready",
        "return document.body.dataset.ready === 'true';",
    )
    .await;
    let (password, secret) = first_login(&d.dir, "admin");
    for _ in 0..5 {
        a.type_into("#user", "admin").await;
        a.type_into("#password", "wrong-password-here").await;
        a.type_into("#totp", "000000").await;
        a.js("document.getElementById('error').hidden = true; return true;")
            .await;
        a.click("#signin-button").await;
        a.error_code().await;
    }
    a.type_into("#user", "admin").await;
    a.type_into("#password", &password).await;
    a.type_into("#totp", &totp_at(&secret, now_secs() + 30))
        .await;
    a.js("document.getElementById('error').hidden = true; return true;")
        .await;
    a.click("#signin-button").await;
    assert_eq!(a.error_code().await, "account_locked");
    a.screenshot("08-locked").await;
    a.close().await;

    // Every console page view that showed records is a staff-action record of the auditor.
    let r = d
        .client("auditor")
        .get("/v1/audit/records?kind=staff_action&limit=1000")
        .await;
    let actions: Vec<String> = r.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|x| x["staff"]["actor"] == "auditor")
        .filter_map(|x| x["staff"]["action"].as_str().map(str::to_string))
        .collect();
    for a in ["audit.query", "audit.export", "audit.verify_live"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// The total of one flow (`accepted`, `answered`, `failed`) over the hour the operator's
/// throughput chart shows.
async fn chart_total(b: &Browser, flow: &str) -> Option<u64> {
    b.js(&format!(
        "const l = document.querySelector('#throughput-chart polyline[data-flow={flow}]'); return l ? Number(l.dataset.total) : null;"
    ))
    .await
    .as_u64()
}

/// `renkei audit verify FOLDER` with the auditor's key file succeeds (offline: no gateway).
fn assert_verifies_offline(bundle: &Path, key_file: &Path) {
    let out = Command::new(common::BIN)
        .args(["audit", "verify"])
        .arg(bundle)
        .arg("--public-key")
        .arg(key_file)
        .output()
        .expect("renkei audit verify");
    assert!(
        out.status.success(),
        "the bundle {} verifies: {}",
        bundle.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `renkei audit verify --since FILE` with the auditor's key file.
fn since(d: &Deployment, file: &Path, key_file: &Path) -> std::process::Output {
    d.cli(&[
        "audit",
        "verify",
        "--since",
        file.to_str().expect("utf-8"),
        "--public-key",
        key_file.to_str().expect("utf-8"),
    ])
}

/// The saved checkpoint note with the first byte of its root (line 3) changed, re-encoded.
fn with_root_byte_changed(saved: &Path) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let note = std::fs::read_to_string(saved).expect("saved");
    let mut lines: Vec<String> = note.split('\n').map(str::to_string).collect();
    let mut root = b64.decode(&lines[2]).expect("the root line");
    root[0] ^= 0x01;
    lines[2] = b64.encode(root);
    lines.join("\n")
}

/// Inquiries not finished yet, as the operator's page shows them (queued, awaiting a code,
/// sent).
async fn unfinished(b: &Browser) -> Option<u64> {
    b.js("const n = ['queued', 'awaiting_code', 'sent'].map(s => document.querySelector('#queue [data-status=' + s + ']')); return n.every(e => e) ? n.reduce((a, e) => a + Number(e.textContent), 0) : null;")
        .await
        .as_u64()
}

/// Edits the first record naming the business system, in the deployment's store (the gateway
/// is down); returns its seq.
async fn tamper(d: &Deployment) -> u64 {
    use renkei_store::{Batch, Tree};
    let store = d.open_store();
    let (seq, mut entry) = (0u64..)
        .map_while(|s| {
            store
                .get(Tree::Records, &s.to_be_bytes())
                .expect("read")
                .map(|raw| {
                    (
                        s,
                        renkei_records::StoredEntry::from_bytes(&raw).expect("entry"),
                    )
                })
        })
        .find(|(_, e)| {
            e.content
                .as_deref()
                .is_some_and(|c| String::from_utf8_lossy(c).contains(CLIENT_SUBSIDY))
        })
        .expect("a record of the subsidy system");
    let content = String::from_utf8(entry.content.clone().expect("content")).expect("utf-8");
    entry.content = Some(content.replacen(CLIENT_SUBSIDY, "kokuho", 1).into_bytes());
    let mut b = Batch::new();
    b.put(Tree::Records, seq.to_be_bytes().to_vec(), entry.to_bytes());
    store.commit(b).await.expect("commit");
    seq
}
