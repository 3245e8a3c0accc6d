//! `renkei clients` over the real binary: a client added (issued here, or signed from a
//! request whose key was made by `openssl req` elsewhere) is served after a restart; revoked
//! while the gateway serves, it is refused within 5 s while the others are still served;
//! `clients list` shows roles, expiry and the revocation.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{wait_until, Api, Deployment, BIN};
use renkei::dev::init::{AFFAIR_CHILD_MEDICAL, CLIENT_SUBSIDY};

/// Runs `renkei clients ARGS --dir D`; returns stdout, panics with stderr on failure.
fn clients(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("clients")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run renkei clients");
    assert!(
        out.status.success(),
        "renkei clients {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn served(api: &Api) -> bool {
    api.try_send(hyper::Method::GET, "/healthz", &[], bytes::Bytes::new())
        .await
        .map(|r| r.status == 200)
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_added_signed_from_a_request_listed_and_revoked_while_serving() {
    let mut d = Deployment::new();
    d.start().await;

    // Issued here: key and certificate in D/clients/kaigo/.
    clients(
        &d.dir,
        &[
            "add",
            "kaigo",
            "--role",
            "business",
            "--affair",
            AFFAIR_CHILD_MEDICAL,
        ],
    );
    assert!(d.dir.join("clients/kaigo/key.pem").exists());

    // Signed from a request: the key is made by openssl on "the business system's machine".
    let machine = d.tmp.path().join("tokutei-machine");
    std::fs::create_dir_all(&machine).expect("dir");
    let req = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=tokutei"])
        .arg("-keyout")
        .arg(machine.join("key.pem"))
        .arg("-out")
        .arg(machine.join("req.csr"))
        .output()
        .expect("run openssl req");
    assert!(
        req.status.success(),
        "{}",
        String::from_utf8_lossy(&req.stderr)
    );
    let csr = machine.join("req.csr").display().to_string();
    clients(
        &d.dir,
        &["add", "tokutei", "--role", "operator", "--csr", &csr],
    );
    let cert = d.dir.join("clients/tokutei/cert.pem");
    assert!(
        !d.dir.join("clients/tokutei/key.pem").exists(),
        "no key is made for a request"
    );
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(d.dir.join("ca.pem"))
        .arg(&cert)
        .output()
        .expect("run openssl verify");
    assert!(
        verify.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // Served after a restart (the client list is read at start).
    d.kill_gateway();
    let addr = d.start_gateway().await;
    let kaigo = d.client("kaigo");
    let tokutei = Api::with_files(&d.dir.join("ca.pem"), &cert, &machine.join("key.pem"), addr);
    let kodomo = d.client(CLIENT_SUBSIDY);
    assert!(served(&kaigo).await, "the added client is served");
    assert!(
        served(&tokutei).await,
        "the client signed from a request is served"
    );
    // The operator role applies: a staff route asks this certificate for a staff session
    // (a business role would get 403, an unknown client never gets this far).
    let r = tokutei.get("/v1/ops/stats").await;
    assert_eq!(r.status, 401, "the operator role applies: {}", r.body);
    assert_eq!(r.body["code"], "session_required", "{}", r.body);

    let listed = clients(&d.dir, &["list", "--output", "table"]);
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"))
            .to_string()
    };
    assert!(line("kaigo").contains("business") && line("kaigo").contains("valid"));
    assert!(line("tokutei").contains("operator"));

    // Revoked while serving: refused within 5 s, without a restart; the others still served.
    clients(&d.dir, &["revoke", "kaigo"]);
    wait_until(
        Duration::from_secs(5),
        "the revoked client is refused",
        || async { !served(&kaigo).await },
    )
    .await;
    assert!(
        !served(&d.client("kaigo")).await,
        "a new connection was served"
    );
    assert!(served(&kodomo).await, "another client is still served");
    assert!(served(&tokutei).await, "the signed client is still served");
    assert!(clients(&d.dir, &["list", "--output", "table"])
        .lines()
        .any(|l| l.starts_with("kaigo") && l.contains("revoked")));
}
