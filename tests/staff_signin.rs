//! Staff sign-in end to end over the release binary: `renkei init`'s first-login files, `renkei
//! users add`, `renkei login` reading two lines from stdin, the CLI sending the session, wrong
//! password / wrong code / replayed code, lockout (423 even with the right password), sign-out
//! and the CLI's "sign in first" sentence, a disabled user's session ending at once, role
//! boundaries, the records of it all, and a scan of every file for the secrets.
//! (Timeouts and lockout expiry move an injected clock: `src/staff/tests.rs`.)

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{first_login, session_file, totp_now, Deployment, BIN};
use serde_json::{json, Value};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// Runs the CLI against the running gateway with `stdin` as its standard input.
fn cli_with_stdin(d: &Deployment, args: &[&str], stdin: &str) -> std::process::Output {
    let gw = format!("https://{}", d.gw_addr.expect("gateway started"));
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .args(["--dir", d.dir.to_str().expect("utf-8"), "--gateway", &gw])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run renkei");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("renkei output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_end_to_end() {
    let mut d = Deployment::new();
    // renkei init: one first-login file per staff client, 0600.
    for name in common::STAFF {
        let f = d.dir.join("staff").join(name).join("first-login.json");
        assert_eq!(mode(&f), 0o600, "{name}");
        let (pw, secret) = first_login(&d.dir, name);
        assert!(pw.len() >= 12 && secret.len() >= 32);
    }
    d.start().await; // signs every staff user in once (tests/common)
    let auditor_token = std::fs::read_to_string(session_file(&d.dir, "auditor")).expect("token");
    let mut secrets: Vec<String> = vec![auditor_token.clone()];
    for name in common::STAFF {
        let (pw, s) = first_login(&d.dir, name);
        secrets.extend([
            pw,
            s,
            std::fs::read_to_string(session_file(&d.dir, name)).unwrap(),
        ]);
    }

    // The admin adds a second auditor, bound to the auditor certificate.
    let out = d.cli(&[
        "users",
        "add",
        "kansa-2",
        "--certificate",
        "auditor",
        "--as",
        "admin",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("otpauth://totp/renkei:kansa-2?secret="));
    let (pw, secret) = first_login(&d.dir, "kansa-2");
    assert_eq!(mode(&d.dir.join("staff/kansa-2/first-login.json")), 0o600);
    secrets.extend([pw.clone(), secret.clone()]);

    // renkei login reads password and code from stdin; the token lands in the session file.
    let code = totp_now(&secret);
    let out = cli_with_stdin(
        &d,
        &["login", "--as", "auditor", "--user", "kansa-2"],
        &format!("{pw}\n{code}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = session_file(&d.dir, "auditor");
    assert_eq!(mode(&file), 0o600);
    secrets.push(std::fs::read_to_string(&file).unwrap());
    let out = d.cli(&["audit", "query", "--as", "auditor", "--limit", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Wrong password, wrong code, the used code again: one answer for all.
    let auditor = d.client("auditor");
    let attempt =
        |password: &str, totp: &str| json!({"user": "kansa-2", "password": password, "totp": totp});
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    for body in [
        attempt("not the password", &totp_now(&secret)),
        attempt(&pw, wrong_code),
        attempt(&pw, &code),
    ] {
        let r = auditor
            .with_token(None)
            .post_json("/v1/session", &[], &body)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (401, Some("sign_in_failed")),
            "{}",
            r.body
        );
    }
    // Another certificate signing in as kansa-2: refused too.
    let r = d.client("operator").sign_in("kansa-2", &pw, &secret).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Two more failures make five in a row: locked, and then even the right answer is 423.
    for _ in 0..2 {
        let _ = auditor
            .with_token(None)
            .post_json("/v1/session", &[], &attempt("not the password", "123456"))
            .await;
    }
    let r = auditor.sign_in("kansa-2", &pw, &secret).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (423, Some("account_locked")),
        "{}",
        r.body
    );

    // Sign-out ends the session at once; the CLI then says to sign in first.
    let out = d.cli(&["logout", "--as", "auditor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file.exists());
    let out = d.cli(&["audit", "query", "--as", "auditor", "--limit", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("sign in first: renkei login --as auditor"),
        "{}",
        text(&out.stderr)
    );

    // Role boundaries hold with a live session: an operator cannot reach keys or records.
    let op = d.client("operator");
    for path in ["/v1/keys", "/v1/audit/records", "/v1/staff/users"] {
        let r = op.get(path).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (403, Some("wrong_role")),
            "{path}"
        );
    }
    // A disabled user's session ends at once.
    let so2 = d.client("security-officer-2");
    assert_eq!(so2.get("/v1/keys").await.status, 200);
    let out = d.cli(&["users", "disable", "security-officer-2", "--as", "admin"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = so2.get("/v1/keys").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (401, Some("session_expired"))
    );
    let out = d.cli(&["users", "list", "--as", "admin"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed
        .lines()
        .any(|l| l.starts_with("security-officer-2") && l.contains("true")));

    // Every step is a staff-action record (the auditor user's first session still works).
    let rec = auditor
        .with_token(Some(&auditor_token))
        .get("/v1/audit/records?kind=staff_action&limit=200")
        .await;
    assert_eq!(rec.status, 200, "{}", rec.body);
    let rows = rec.body["records"].as_array().cloned().unwrap_or_default();
    let count = |action: &str, result: &str| {
        rows.iter()
            .filter(|r| r["staff"]["action"] == action && r["result"] == result)
            .count()
    };
    assert!(count("session.sign_in", "done") >= 6, "{}", rec.body);
    assert!(count("session.sign_in", "refused") >= 6, "{}", rec.body);
    assert_eq!(count("session.lockout", "done"), 1, "{}", rec.body);
    assert_eq!(count("session.sign_out", "done"), 1);
    assert_eq!(count("staff.user_add", "done"), 1);
    assert_eq!(count("staff.user_disable", "done"), 1);
    let kansa: Vec<&Value> = rows
        .iter()
        .filter(|r| r["staff"]["target"] == "staff-user:kansa-2")
        .collect();
    assert!(kansa.iter().any(|r| r["staff"]["actor"] == "kansa-2"));

    // No password, TOTP secret or token in plaintext in any file but the two made to hold
    // them (first-login.json, the session file), logs and the store included.
    d.kill_gateway();
    d.kill_sim();
    let mut scanned = 0;
    for f in d.all_files() {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "first-login.json" || name == "session" {
            continue;
        }
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        scanned += 1;
        let hay = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(
                !hay.contains(s.trim()),
                "a secret in plaintext in {}",
                f.display()
            );
        }
    }
    assert!(scanned > 20, "scanned only {scanned} files");
}
