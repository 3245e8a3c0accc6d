//! Test harness for the end-to-end tests: a deployment folder made by `renkei init`, the
//! release binary's `sim` and `serve` run as child processes (output captured under the
//! deployment's `logs/`), mutual-TLS JSON clients per client certificate, and polling helpers.
//! Staff clients sign in once per deployment ([`Deployment::sign_in_staff`], with a TOTP
//! computed here by [`totp_now`], independent of `src/`) and send the token kept in
//! `clients/NAME/session`, the file `renkei login` writes, so the CLI uses it too.
//!
//! With `RENKEI_TEST_STORE=postgres`, every deployment runs on a PostgreSQL server of its own
//! ([`pg::PgServer`], started here and stopped with the deployment): the same tests prove the
//! same promises on either store (`scripts/test.sh` runs the spine, registry, records and
//! provision suites both ways).
//!
//! Each test file includes this module with `mod common;`; not every file uses every helper.
#![allow(dead_code)]

#[path = "../../crates/renkei-store/tests/pg/mod.rs"]
pub mod pg;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;
use renkei::tls::{HttpsClient, TlsError};
use renkei_store::Store;
use serde_json::{json, Value};

/// The release binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_renkei");
/// How often polling helpers look again.
pub const POLL: Duration = Duration::from_millis(20);
/// How long a server gets to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Polls `f` every [`POLL`] until it returns true; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = f();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `f` every [`POLL`] until it returns `Some`; panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A JSON answer: status and body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The raw body, for checks on what the server wrote.
    pub raw: Bytes,
}

/// The staff clients `renkei init` makes, each with a staff user of the same name.
pub const STAFF: [&str; 5] = [
    "security-officer",
    "security-officer-2",
    "auditor",
    "operator",
    "admin",
];

/// The RFC 6238 code (HMAC-SHA-1, 30 s, 6 digits) of a base32 secret for Unix time `secs`.
pub fn totp_at(secret_b32: &str, secs: u64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.trim_end_matches('=').as_bytes())
        .expect("base32 TOTP secret");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let mac = ring::hmac::sign(&key, &(secs / 30).to_be_bytes());
    let m = mac.as_ref();
    let o = (m[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([m[o] & 0x7f, m[o + 1], m[o + 2], m[o + 3]]) % 1_000_000;
    format!("{n:06}")
}

/// The current TOTP code of a base32 secret.
pub fn totp_now(secret_b32: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    totp_at(secret_b32, secs)
}

/// A staff user's first-login secrets as `renkei init` wrote them: (password, TOTP secret).
pub fn first_login(dir: &Path, user: &str) -> (String, String) {
    let f = dir.join("staff").join(user).join("first-login.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&f).expect("first-login.json"))
        .expect("first-login JSON");
    (
        v["password"].as_str().expect("password").to_string(),
        v["totp_secret"].as_str().expect("totp_secret").to_string(),
    )
}

/// The session token file of a staff client.
pub fn session_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("clients").join(name).join("session")
}

/// A mutual-TLS JSON client for one client certificate against one server.
#[derive(Clone)]
pub struct Api {
    pub client: HttpsClient,
    pub base: String,
    /// `Bearer <token>` sent with every request, for a signed-in staff client.
    pub bearer: Option<String>,
}

impl Api {
    /// A client presenting `clients/<name>` of deployment `dir` to `addr`.
    /// A staff client sends the session token in `clients/<name>/session` when there is one.
    pub fn new(dir: &Path, name: &str, addr: SocketAddr) -> Api {
        let c = dir.join("clients").join(name);
        let mut api = Api::with_files(
            &dir.join("ca.pem"),
            &c.join("cert.pem"),
            &c.join("key.pem"),
            addr,
        );
        api.bearer = std::fs::read_to_string(session_file(dir, name))
            .ok()
            .map(|t| format!("Bearer {}", t.trim()));
        api
    }

    /// The same client sending `token` (or no token at all).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            bearer: token.map(|t| format!("Bearer {t}")),
            ..self.clone()
        }
    }

    /// `POST /v1/session` as `user` with a code computed now.
    pub async fn sign_in(&self, user: &str, password: &str, totp_secret: &str) -> Reply {
        self.with_token(None)
            .post_json(
                "/v1/session",
                &[],
                &json!({"user": user, "password": password, "totp": totp_now(totp_secret)}),
            )
            .await
    }

    /// A client with explicit trust anchor and certificate files.
    pub fn with_files(ca: &Path, cert: &Path, key: &Path, addr: SocketAddr) -> Api {
        renkei::tls::install_default_provider();
        let client = HttpsClient::new(ca, cert, key, REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("client for {}: {e}", cert.display()));
        Api {
            client,
            base: format!("https://{addr}"),
            bearer: None,
        }
    }

    /// Sends a request; transport failures come back as `Err`.
    pub async fn try_send(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, TlsError> {
        let url = format!("{}{path}", self.base);
        let mut all = headers.to_vec();
        if let Some(b) = &self.bearer {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                all.push(("authorization", b.as_str()));
            }
        }
        let r = self.client.send(method, &url, &all, body).await?;
        Ok(Reply {
            status: r.status.as_u16(),
            body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            raw: r.body,
        })
    }

    /// Sends a request; panics on transport failure.
    pub async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        self.try_send(method.clone(), path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `POST /v1/inquiries:batch` with a file as the body.
    pub async fn upload_batch(&self, file: &[u8]) -> Reply {
        self.send(
            hyper::Method::POST,
            "/v1/inquiries:batch",
            &[("content-type", "application/octet-stream")],
            Bytes::copy_from_slice(file),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(hyper::Method::GET, path, &[], Bytes::new()).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            hyper::Method::PUT,
            path,
            &[("content-type", "application/json")],
            Bytes::from(body.to_string()),
        )
        .await
    }

    /// `POST path` with a JSON body and extra headers.
    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.send(hyper::Method::POST, path, &h, Bytes::from(body.to_string()))
            .await
    }

    /// `POST /v1/inquiries` with an idempotency key; transport failures come back as `Err`.
    pub async fn try_submit(&self, key: &str, body: &Value) -> Result<Reply, TlsError> {
        self.try_send(
            hyper::Method::POST,
            "/v1/inquiries",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Bytes::from(body.to_string()),
        )
        .await
    }

    /// `POST /v1/inquiries` with an idempotency key.
    pub async fn submit(&self, key: &str, body: &Value) -> Reply {
        self.post_json("/v1/inquiries", &[("idempotency-key", key)], body)
            .await
    }

    /// Submits and returns the id of the accepted (202) inquiry.
    pub async fn submit_ok(&self, key: &str, body: &Value) -> String {
        let r = self.submit(key, body).await;
        assert_eq!(r.status, 202, "inquiry not accepted: {}", r.body);
        r.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", r.body))
            .to_string()
    }

    /// Submits a local-tax inquiry for `business_number` and waits until it is answered.
    pub async fn inquire_answered(&self, key: &str, business_number: &str) {
        let id = self.submit_ok(key, &local_tax(business_number)).await;
        let v = self.wait_final(&id, Duration::from_secs(60)).await;
        assert_eq!(v["status"], "answered", "{v}");
    }

    /// Polls an inquiry until it reaches a final status (answered or failed); returns it.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        let path = format!("/v1/inquiries/{id}");
        wait_for(timeout, &format!("inquiry {id} is final"), || async {
            let r = self
                .try_send(hyper::Method::GET, &path, &[], Bytes::new())
                .await;
            match r {
                Ok(r) if r.status == 200 => {
                    let s = r.body["status"].as_str().unwrap_or_default();
                    (s == "answered" || s == "failed").then_some(r.body)
                }
                _ => None,
            }
        })
        .await
    }

    /// The status string of an inquiry.
    pub async fn status_of(&self, id: &str) -> String {
        let r = self.get(&format!("/v1/inquiries/{id}")).await;
        assert_eq!(r.status, 200, "GET inquiry {id}: {}", r.body);
        r.body["status"].as_str().unwrap_or_default().to_string()
    }
}

/// The body linking sample `i` (its individual number as a JSON string).
pub fn link_body(i: usize) -> Value {
    let s = &renkei::dev::demo::SAMPLES[i];
    let n = renkei::dev::demo::sample_number(s).expect("sample number is valid");
    json!({
        "individual_number": n.expose_digits(),
        "name": s.name, "kana": s.kana, "birth_date": s.birth_date,
        "sex": s.sex, "address": s.address,
    })
}

/// The 12 digits of sample `i`'s individual number (never print them).
pub fn sample_digits(i: usize) -> String {
    renkei::dev::demo::sample_number(&renkei::dev::demo::SAMPLES[i])
        .expect("sample number is valid")
        .expose_digits()
        .to_string()
}

/// An inquiry body for local tax FY2026 of `business_number`.
pub fn local_tax(business_number: &str) -> Value {
    json!({
        "business_number": business_number,
        "procedure": renkei::dev::init::PROC_LOCAL_TAX,
        "item": renkei::dev::init::ITEM_LOCAL_TAX,
        "conditions": {"fiscal_year": 2026},
    })
}

/// An inquiry body for the public-fund account of `business_number`.
pub fn public_fund(business_number: &str) -> Value {
    json!({
        "business_number": business_number,
        "procedure": renkei::dev::init::PROC_PUBLIC_FUND,
        "item": renkei::dev::init::ITEM_PUBLIC_FUND,
        "conditions": {"fiscal_year": 2026},
    })
}

/// A field of an answered inquiry's first result item.
pub fn result_field(inquiry: &Value, name: &str) -> Option<String> {
    inquiry["result"]["items"]
        .as_array()?
        .iter()
        .flat_map(|it| it["fields"].as_array().cloned().unwrap_or_default())
        .find(|f| f[0].as_str() == Some(name))
        .and_then(|f| f[1].as_str().map(str::to_string))
}

/// A deployment folder with the simulator and gateway as child processes.
pub struct Deployment {
    /// Keeps the folder alive; removed on drop.
    pub tmp: tempfile::TempDir,
    /// The deployment folder.
    pub dir: PathBuf,
    sim: Option<Child>,
    gateway: Option<Child>,
    /// Where the simulator listens, once started.
    pub sim_addr: Option<SocketAddr>,
    /// Where the gateway listens, once started (changes on every restart).
    pub gw_addr: Option<SocketAddr>,
    /// Number of gateway starts so far (names the log files).
    pub gateway_starts: u32,
    /// Extra environment for the children (e.g. `RENKEI_LOG`).
    pub env: Vec<(String, String)>,
    /// `--capture` folder for the simulator.
    pub capture: Option<PathBuf>,
    /// The CA the simulator's admin client trusts for the simulator's server certificate
    /// (default: the deployment's platform CA).
    pub sim_trust: Option<PathBuf>,
    /// When set, the gateway runs with this soft and hard `RLIMIT_NOFILE` (via `prlimit`).
    pub gateway_nofile: Option<u64>,
    /// The deployment's own PostgreSQL server under `RENKEI_TEST_STORE=postgres` (declared
    /// last: dropped after the gateway is killed).
    pub pg: Option<pg::PgServer>,
}

/// True when the tests' deployments run on PostgreSQL (`RENKEI_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    match std::env::var("RENKEI_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sled") | Err(_) => false,
        Ok(other) => panic!("RENKEI_TEST_STORE={other}: say sled or postgres"),
    }
}

/// `GET /readyz` on the ops listener whose address the gateway wrote to `data/ops.addr`
/// (any status: the body is the checks).
pub async fn readyz(data: &Path) -> Option<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::fs::read_to_string(data.join("ops.addr")).ok()?;
    let mut s = tokio::net::TcpStream::connect(addr.trim()).await.ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

/// Runs `renkei ARGS` and panics with its error output unless it succeeds.
pub fn renkei_ok(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().expect("run renkei");
    assert!(
        out.status.success(),
        "renkei {}: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_init(dir: &Path) {
    let out = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0"])
        .output()
        .expect("run renkei init");
    assert!(
        out.status.success(),
        "renkei init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Deployment {
    /// A fresh deployment made by `renkei init` on ephemeral ports.
    pub fn new() -> Deployment {
        let tmp = tempfile::Builder::new()
            .prefix("renkei-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().join("deploy");
        run_init(&dir);
        std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
        let mut d = Deployment {
            tmp,
            dir,
            sim: None,
            gateway: None,
            sim_addr: None,
            gw_addr: None,
            gateway_starts: 0,
            env: Vec::new(),
            capture: None,
            sim_trust: None,
            gateway_nofile: None,
            pg: None,
        };
        if on_postgres() {
            let server = pg::start().expect(
                "RENKEI_TEST_STORE=postgres, but the PostgreSQL server binaries are not installed",
            );
            server.create_db("renkei");
            d.use_postgres(&server.url("renkei"));
            d.migrate_and_copy_init();
            d.pg = Some(server);
        }
        d
    }

    /// The path of `renkei.toml`, as the CLI's `--config` wants it.
    pub fn config_path(&self) -> String {
        self.dir.join("renkei.toml").display().to_string()
    }

    /// Points the deployment's gateway at the PostgreSQL database `url`.
    pub fn use_postgres(&self, url: &str) {
        self.set_in_table("renkei.toml", "store", "backend", "\"postgres\"");
        self.set_in_table("renkei.toml", "store", "url", &format!("\"{url}\""));
    }

    /// `renkei store migrate`, then moves what `renkei init` put in the embedded store (the
    /// staff users) into the database, as a deployment moving to PostgreSQL does.
    pub fn migrate_and_copy_init(&self) {
        let config = self.config_path();
        renkei_ok(&["store", "migrate", "--config", &config]);
        renkei_ok(&[
            "store", "copy", "--config", &config, "--from", "sled", "--to", "postgres",
        ]);
    }

    /// Opens the deployment's configured store directly (sled or PostgreSQL), as a tampering
    /// test does with the gateway stopped.
    pub fn open_store(&self) -> Arc<dyn Store> {
        let config = renkei::config::GatewayConfig::load(&self.dir.join("renkei.toml"))
            .expect("load renkei.toml");
        renkei::app::store::open(&config).expect("open the deployment's store")
    }

    /// Replaces the value of the first line `key = …` in `file` (a plain text edit: the
    /// harness does not depend on a TOML library). Panics if the key is not there.
    pub fn set_line(&self, file: &str, key: &str, value: &str) {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read config");
        let prefix = format!("{key} = ");
        let mut found = false;
        let out: Vec<String> = text
            .lines()
            .map(|l| {
                if !found && l.starts_with(&prefix) {
                    found = true;
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(found, "{file} has no line `{key} = …`");
        std::fs::write(&path, out.join("\n") + "\n").expect("write config");
    }

    /// Sets `key = value` inside table `[table]` of `file`: replaces the table's line for
    /// `key`, or adds one right after the table's header. Panics if there is no such table.
    pub fn set_in_table(&self, file: &str, table: &str, key: &str, value: &str) {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read config");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let header = format!("[{table}]");
        let at = lines
            .iter()
            .position(|l| l.trim() == header)
            .unwrap_or_else(|| panic!("{file} has no table [{table}]"));
        let prefix = format!("{key} = ");
        let line = format!("{key} = {value}");
        let existing = lines[at + 1..]
            .iter()
            .take_while(|l| !l.starts_with('['))
            .position(|l| l.starts_with(&prefix));
        match existing {
            Some(i) => lines[at + 1 + i] = line,
            None => lines.insert(at + 1, line),
        }
        std::fs::write(&path, lines.join("\n") + "\n").expect("write config");
    }

    /// Sets a value in the gateway's renkei.toml.
    pub fn set_gateway(&self, key: &str, value: &str) {
        self.set_line("renkei.toml", key, value);
    }

    /// Small backoff so fault tests finish fast.
    pub fn fast_backoff(&self) {
        self.set_gateway("backoff_base_ms", "20");
        self.set_gateway("backoff_max_ms", "200");
        self.set_gateway("poll_interval_ms", "50");
    }

    fn spawn(&self, args: &[&str], log: &str) -> Child {
        let logs = self.dir.join("logs");
        let out = std::fs::File::create(logs.join(format!("{log}.stdout"))).expect("log file");
        let err = std::fs::File::create(logs.join(format!("{log}.stderr"))).expect("log file");
        let mut cmd = match self.gateway_nofile.filter(|_| log.starts_with("gateway")) {
            // prlimit sets the limit on itself and then runs the gateway in the same process.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn renkei")
    }

    /// The stderr (log lines) of the gateway's latest run.
    pub fn gateway_log(&self) -> String {
        self.read_log(&format!("gateway-{}", self.gateway_starts))
    }

    /// Counts lines of the gateway's latest log containing every one of `parts`.
    pub fn gateway_log_lines(&self, parts: &[&str]) -> usize {
        self.gateway_log()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }

    /// Waits until the simulator has issued codes for `n` persons.
    pub async fn wait_codes(&self, n: u64) {
        let admin = self.sim_admin();
        wait_until(START_TIMEOUT, "codes are acquired", || async {
            let r = admin.get("/admin/stats").await;
            r.body["code_acquisitions"].as_u64().unwrap_or(0) >= n
        })
        .await;
    }

    fn read_log(&self, log: &str) -> String {
        let p = self.dir.join("logs").join(format!("{log}.stderr"));
        std::fs::read_to_string(p).unwrap_or_default()
    }

    async fn wait_addr(&self, file: &Path, child: &mut Child, log: &str) -> SocketAddr {
        let start = Instant::now();
        loop {
            if let Some(a) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "renkei {log} exited with {status} before listening:\n{}",
                    self.read_log(log)
                );
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "renkei {log} did not write {} in time",
                file.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts the simulator and rewrites the gateway's `platform.url` to its address.
    pub async fn start_sim(&mut self) -> SocketAddr {
        let addr_file = self.dir.join("sim/data/sim.addr");
        let _ = std::fs::remove_file(&addr_file);
        let cfg = self.dir.join("sim.toml").display().to_string();
        let mut args = vec!["sim", "--config", &cfg];
        let capture = self.capture.as_ref().map(|c| c.display().to_string());
        if let Some(c) = &capture {
            args.push("--capture");
            args.push(c);
        }
        let mut child = self.spawn(&args, "sim");
        let addr = self.wait_addr(&addr_file, &mut child, "sim").await;
        self.sim = Some(child);
        self.sim_addr = Some(addr);
        self.set_in_table(
            "renkei.toml",
            "platform",
            "url",
            &format!("\"https://{addr}\""),
        );
        // Serving once the admin endpoint answers.
        let admin = self.sim_admin();
        wait_until(START_TIMEOUT, "the simulator serves", || async {
            admin
                .try_send(hyper::Method::GET, "/admin/stats", &[], Bytes::new())
                .await
                .map(|r| r.status == 200)
                .unwrap_or(false)
        })
        .await;
        addr
    }

    /// Starts (or restarts) the gateway and waits until it serves.
    pub async fn start_gateway(&mut self) -> SocketAddr {
        assert!(self.gateway.is_none(), "gateway already running");
        let addr_file = self.dir.join("gateway/data/gateway.addr");
        let _ = std::fs::remove_file(&addr_file);
        let cfg = self.dir.join("renkei.toml").display().to_string();
        self.gateway_starts += 1;
        let log = format!("gateway-{}", self.gateway_starts);
        let mut child = self.spawn(&["serve", "--config", &cfg], &log);
        let addr = self.wait_addr(&addr_file, &mut child, &log).await;
        self.gateway = Some(child);
        self.gw_addr = Some(addr);
        let ops = self.client("operator");
        wait_until(START_TIMEOUT, "the gateway serves", || async {
            ops.try_send(hyper::Method::GET, "/healthz", &[], Bytes::new())
                .await
                .map(|r| r.status == 200)
                .unwrap_or(false)
        })
        .await;
        if self.pg.is_some() {
            // The PostgreSQL pass must really run there, not on a silently kept sled.
            let ready = readyz(&self.dir.join("gateway/data")).await;
            let backend = ready.as_ref().map(|r| r["store"]["backend"].clone());
            assert_eq!(
                backend,
                Some(json!("postgres")),
                "the gateway runs on PostgreSQL: {ready:?}"
            );
        }
        self.sign_in_staff().await;
        addr
    }

    /// Signs each staff user in once per deployment (a TOTP code is refused a second time
    /// in its step) and keeps the token where `renkei login` would.
    pub async fn sign_in_staff(&self) {
        for name in STAFF {
            let file = session_file(&self.dir, name);
            if file.exists() {
                continue;
            }
            let (password, secret) = first_login(&self.dir, name);
            let r = self.client(name).sign_in(name, &password, &secret).await;
            assert_eq!(r.status, 201, "sign in {name}: {}", r.body);
            let token = r.body["token"].as_str().expect("token");
            std::fs::write(&file, token).expect("write the session file");
        }
    }

    /// Starts the simulator then the gateway.
    pub async fn start(&mut self) {
        self.start_sim().await;
        self.start_gateway().await;
    }

    /// The process id of the running gateway (for CPU and memory readings in /proc).
    pub fn gateway_pid(&self) -> Option<u32> {
        self.gateway.as_ref().map(Child::id)
    }

    /// The process id of the running simulator.
    pub fn sim_pid(&self) -> Option<u32> {
        self.sim.as_ref().map(Child::id)
    }

    /// Kills the gateway with SIGKILL (no shutdown code runs) and reaps it.
    pub fn kill_gateway(&mut self) {
        if let Some(mut c) = self.gateway.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.gw_addr = None;
    }

    /// Kills the simulator.
    pub fn kill_sim(&mut self) {
        if let Some(mut c) = self.sim.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.sim_addr = None;
    }

    /// A business/staff client of the running gateway.
    pub fn client(&self, name: &str) -> Api {
        Api::new(&self.dir, name, self.gw_addr.expect("gateway started"))
    }

    /// Runs the `renkei` CLI against the running gateway (`--dir` and `--gateway` added).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let gw = format!("https://{}", self.gw_addr.expect("gateway started"));
        std::process::Command::new(BIN)
            .args(args)
            .args([
                "--dir",
                self.dir.to_str().expect("utf-8 dir"),
                "--gateway",
                &gw,
            ])
            .output()
            .expect("run renkei")
    }

    /// The auditor's checkpoint keys, as `renkei audit public-keys` prints them, in a file
    /// under the test's folder (for `renkei audit verify --public-key`).
    pub fn auditor_key_file(&self) -> PathBuf {
        let keys = self.cli(&["audit", "public-keys"]);
        assert!(
            keys.status.success(),
            "{}",
            String::from_utf8_lossy(&keys.stderr)
        );
        let file = self.tmp.path().join("checkpoint-keys.pem");
        std::fs::write(&file, &keys.stdout).expect("write keys");
        file
    }

    /// The simulator's admin client (its certificate is from the platform CA, as is the
    /// simulator's server certificate).
    pub fn sim_admin(&self) -> Api {
        let c = self
            .dir
            .join("clients")
            .join(renkei::dev::init::CLIENT_SIM_ADMIN);
        let ca = self
            .sim_trust
            .clone()
            .unwrap_or_else(|| self.dir.join("platform-ca.pem"));
        Api::with_files(
            &ca,
            &c.join("cert.pem"),
            &c.join("key.pem"),
            self.sim_addr.expect("sim started"),
        )
    }

    /// `GET /admin/stats` of the simulator.
    pub async fn sim_stats(&self) -> Value {
        let r = self.sim_admin().get("/admin/stats").await;
        assert_eq!(r.status, 200, "sim stats: {}", r.body);
        r.body
    }

    /// Sets the simulator's mode (`open`, `closed`, `slow`, `failing`, `dropping`).
    pub async fn sim_mode(&self, mode: &str, slow_ms: u64) {
        let r = self
            .sim_admin()
            .post_json(
                "/admin/mode",
                &[],
                &json!({"mode": mode, "slow_ms": slow_ms}),
            )
            .await;
        assert_eq!(r.status, 200, "sim mode {mode}: {}", r.body);
    }

    /// `GET /v1/ops/stats` of the gateway.
    pub async fn ops_stats(&self) -> Value {
        let r = self.client("operator").get("/v1/ops/stats").await;
        assert_eq!(r.status, 200, "ops stats: {}", r.body);
        r.body
    }

    /// Links the three samples as `kodomo-iryo`; returns their unified address numbers.
    pub async fn link_samples(&self) -> Vec<String> {
        let api = self.client(renkei::dev::init::CLIENT_SUBSIDY);
        let mut out = Vec::new();
        for (i, s) in renkei::dev::demo::SAMPLES.iter().enumerate() {
            let r = api
                .put_json(&format!("/v1/persons/{}", s.business_number), &link_body(i))
                .await;
            assert!(
                r.status == 201 || r.status == 200,
                "link sample {i}: {} {}",
                r.status,
                r.body
            );
            out.push(
                r.body["unified_address_number"]
                    .as_str()
                    .expect("unified address number")
                    .to_string(),
            );
        }
        out
    }

    /// Every file under the deployment folder.
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        // On PostgreSQL, the database's own files hold the state at rest: scanned too.
        if let Some(server) = &self.pg {
            walk(&server.data, &mut out);
        }
        if let Some(c) = &self.capture {
            if !c.starts_with(&self.dir) {
                walk(c, &mut out);
            }
        }
        out
    }
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment::new()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.kill_gateway();
        self.kill_sim();
        if std::env::var_os("RENKEI_TEST_KEEP").is_some() {
            // For debugging a failure: keep the folder (logs, store) and say where it is.
            let path =
                std::mem::replace(&mut self.tmp, tempfile::tempdir().expect("tempdir")).keep();
            eprintln!("kept deployment folder {}", path.display());
        }
    }
}
