//! The permission table by law, over the real binary: an inquiry outside the table is 403
//! `not_permitted` with a denied-request record and nothing reaches the platform (single and
//! batch); `renkei schemas check` names every problem; `renkei config reload` and SIGHUP put a
//! changed table and client list in force while requests keep flowing, all or nothing; a
//! client removed by a reload is refused at its next connection; readiness warns of a
//! certificate expiring within 30 days.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use renkei::dev::batch_file::{fixed_line, line_values, pos};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY, PROC_LOCAL_TAX};
use serde_json::{json, Value};

/// An item no affair of the development table may inquire.
const UNLISTED_ITEM: &str = "TM00000000000099";
const WAIT: Duration = Duration::from_secs(30);

fn unlisted(business_number: &str) -> Value {
    json!({
        "business_number": business_number,
        "procedure": PROC_LOCAL_TAX,
        "item": UNLISTED_ITEM,
        "conditions": {"fiscal_year": 2026},
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn repo_schemas() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// A row letting the child medical subsidy inquire [`UNLISTED_ITEM`].
fn extra_row() -> String {
    format!(
        "\n[[rows]]\nprocedure = \"{PROC_LOCAL_TAX}\"\nitem = \"{UNLISTED_ITEM}\"\ndirection = \"inquiry\"\nlegal_basis = \"市個人番号利用条例 別表第2 (試験)\"\n"
    )
}

/// A table file with three problems: a duplicate row, an empty legal basis, a bad code.
const BROKEN: &str = r#"
affair = "JM01000000121000"
[[rows]]
procedure = "JT01010000000214"
item = "TM00000000000002"
direction = "inquiry"
legal_basis = "again"
[[rows]]
procedure = "JT01010000000001"
item = "TM00000000000077"
direction = "inquiry"
legal_basis = " "
[[rows]]
procedure = "JT0101000000000X"
item = "TM00000000000078"
direction = "inquiry"
legal_basis = "x"
"#;

/// The problems [`BROKEN`] must be reported with, as `file: row.field: code` fragments.
const BROKEN_PROBLEMS: &[&str] = &[
    "zz-broken.toml: rows[0]: duplicate_row",
    "zz-broken.toml: rows[1].legal_basis: empty_legal_basis",
    "zz-broken.toml: rows[2].procedure: bad_code",
];

/// `GET /readyz` of the ops listener (plain HTTP).
async fn readyz(d: &Deployment) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::fs::read_to_string(d.dir.join("gateway/data/ops.addr")).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr.trim()).await.unwrap();
    s.write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_table_is_refused_recorded_and_never_sent() {
    let mut d = Deployment::new();
    // kokuho's certificate is renewed with 12 days left: readiness warns, stays ready.
    let ca = renkei::keys::pki::DevCa::load(&d.dir).unwrap();
    let mut p = renkei::keys::pki::client_params(CLIENT_SECOND).unwrap();
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(12);
    ca.issue_with(
        &d.dir.join("clients").join(CLIENT_SECOND),
        p,
        "cert.pem",
        "key.pem",
    )
    .unwrap();
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;
    let before = d.sim_stats().await;
    let api = d.client(CLIENT_SUBSIDY);

    let r = api
        .submit("deny-1", &unlisted(SAMPLES[0].business_number))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "not_permitted", "{}", r.body);
    assert_eq!(r.body["field"], "item", "{}", r.body);

    // The denial is a record naming the system, procedure and item.
    let recs = d
        .client("auditor")
        .get("/v1/audit/records?kind=denied_request&limit=100")
        .await;
    assert_eq!(recs.status, 200, "{}", recs.body);
    let denied: Vec<&Value> = recs.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["item"] == UNLISTED_ITEM)
        .collect();
    assert_eq!(denied.len(), 1, "{}", recs.body);
    assert_eq!(denied[0]["business_system"], CLIENT_SUBSIDY);
    assert_eq!(denied[0]["procedure"], PROC_LOCAL_TAX);
    assert_eq!(denied[0]["result"], "refused");
    assert_eq!(denied[0]["reason"], "not_permitted");

    // A batch: the line outside the table is rejected, the others accepted.
    let mut file = Vec::new();
    file.extend(fixed_line(&line_values(SAMPLES[0].business_number)));
    let mut v = line_values(SAMPLES[1].business_number);
    v[pos::ITEM] = UNLISTED_ITEM.into();
    file.extend(fixed_line(&v));
    file.extend(fixed_line(&line_values(SAMPLES[2].business_number)));
    // Nothing has been sent for either refusal: the simulator saw no new message.
    let after = d.sim_stats().await;
    assert_eq!(
        after["messages_received"], before["messages_received"],
        "{after}"
    );
    assert_eq!(after["inquiries_accepted"], 0, "{after}");

    let up = api.upload_batch(&file).await;
    assert_eq!(up.status, 202, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    let b = wait_for(WAIT, "the batch is accepted", || async {
        let r = api.get(&format!("/v1/batches/{id}")).await;
        (r.body["status"] == "accepted").then_some(r.body)
    })
    .await;
    assert_eq!(b["accepted"], 2, "{b}");
    assert_eq!(b["rejected_count"], 1, "{b}");
    assert_eq!(b["rejected"][0]["line"], 2, "{b}");
    assert_eq!(b["rejected"][0]["code"], "not_permitted", "{b}");
    assert_eq!(b["rejected"][0]["field"], "item_code", "{b}");
    // The two accepted lines reach the platform; the refused one never does.
    wait_until(
        WAIT,
        "the two accepted lines reach the platform",
        || async { d.sim_stats().await["inquiries_accepted"].as_u64() >= Some(2) },
    )
    .await;
    let after_batch = d.sim_stats().await;
    assert_eq!(after_batch["inquiries_accepted"], 2, "{after_batch}");

    // Readiness: a warning for kokuho's certificate, and still ready.
    let ready = readyz(&d).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let w: Vec<&Value> = ready["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["client"] == CLIENT_SECOND)
        .collect();
    assert_eq!(w.len(), 1, "{ready}");
    assert_eq!(w[0]["check"], "certificate_expiry");
    let days = w[0]["days_left"].as_i64().unwrap();
    assert!((11..=12).contains(&days), "{ready}");
    assert!(
        !ready["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["client"] == CLIENT_SUBSIDY),
        "a certificate with a year left is no warning: {ready}"
    );
}

#[test]
fn schemas_check_passes_the_repository_and_names_every_problem() {
    let ok = Command::new(BIN)
        .args(["schemas", "check", "--schemas"])
        .arg(repo_schemas())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("schemas");
    copy_dir(&repo_schemas(), &dir);
    std::fs::write(dir.join("permissions/zz-broken.toml"), BROKEN).unwrap();
    let kokuho = dir.join("permissions/kokuho.toml");
    let text = std::fs::read_to_string(&kokuho).unwrap();
    std::fs::write(
        &kokuho,
        text.replace(
            "direction = \"inquiry\"",
            "direction = \"inquiry\"\nsurprise = 1",
        ),
    )
    .unwrap();
    let bad = Command::new(BIN)
        .args(["schemas", "check", "--schemas"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    for p in BROKEN_PROBLEMS
        .iter()
        .copied()
        .chain(["kokuho.toml: rows[0]: unknown_field"])
    {
        assert!(out.contains(p), "{p} not named in:\n{out}");
    }
    assert_eq!(out.lines().count(), 4, "{out}");
}

/// renkei.toml without the `[[clients]]` entry named `name`.
fn without_client(text: &str, name: &str) -> String {
    let marker = "[[clients]]";
    let mut parts = text.split(marker);
    let mut out = parts.next().unwrap_or_default().to_string();
    for p in parts {
        if !p.contains(&format!("name = \"{name}\"")) {
            out.push_str(marker);
            out.push_str(p);
        }
    }
    out
}

/// The `config.reload` staff records, oldest first, as their results.
async fn reload_records(d: &Deployment) -> Vec<String> {
    let r = d
        .client("auditor")
        .get("/v1/audit/records?kind=staff_action&limit=1000")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut out: Vec<String> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["staff"]["action"] == "config.reload")
        .map(|r| r["result"].as_str().unwrap_or_default().to_string())
        .collect();
    out.reverse();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_and_sighup_apply_all_or_nothing_without_dropping_requests() {
    let mut d = Deployment::new();
    let schemas = d.dir.join("schemas");
    copy_dir(&repo_schemas(), &schemas);
    let cfg = d.dir.join("renkei.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("listen = ", "schemas_dir = \"schemas\"\nlisten = ", 1),
    )
    .unwrap();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let bn = SAMPLES[0].business_number;
    let r = api.submit("before", &unlisted(bn)).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // A steady stream of inquiries for the whole test: none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stream = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let api = d.client(CLIENT_SUBSIDY);
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = api.submit(&format!("stream-{i}"), &local_tax(bn)).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if r.status != 202 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    wait_until(WAIT, "the stream runs", || async {
        sent.load(Ordering::Relaxed) >= 5
    })
    .await;

    // A new row through `renkei config reload`: the refused inquiry is accepted now.
    let table = schemas.join("permissions/child-medical.toml");
    let original = std::fs::read_to_string(&table).unwrap();
    std::fs::write(&table, format!("{original}{}", extra_row())).unwrap();
    let out = d.cli(&["config", "reload"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = api.submit("after", &unlisted(bn)).await;
    assert_eq!(r.status, 202, "{}", r.body);

    // A broken table and a broken client entry: nothing changes, every problem is named.
    let broken = schemas.join("permissions/zz-broken.toml");
    std::fs::write(&broken, BROKEN).unwrap();
    let good_cfg = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good_cfg.replacen(
            "role = \"operator\"",
            "role = \"operator\"\nsurprise = 1",
            1,
        ),
    )
    .unwrap();
    let out = d.cli(&["config", "reload"]);
    assert!(!out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("surprise"), "{printed}");
    std::fs::write(&cfg, &good_cfg).unwrap();
    let out = d.cli(&["config", "reload"]);
    assert!(!out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    for p in BROKEN_PROBLEMS {
        assert!(printed.contains(p), "{p} not named in:\n{printed}");
    }
    let r = api.submit("after-bad", &unlisted(bn)).await;
    assert_eq!(r.status, 202, "the table in force stays: {}", r.body);

    // SIGHUP: the row taken out again and kokuho removed from the client list.
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(&table, &original).unwrap();
    std::fs::write(&cfg, without_client(&good_cfg, CLIENT_SECOND)).unwrap();
    let kokuho_before = d.client(CLIENT_SECOND).get("/healthz").await;
    assert_eq!(kokuho_before.status, 200, "{}", kokuho_before.body);
    let pid = d.gateway_pid().unwrap().to_string();
    let hup = || {
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success())
    };
    hup();
    let mut n = 0;
    wait_until(WAIT, "SIGHUP puts the old table back", || {
        n += 1;
        let api = &api;
        let key = format!("hup-{n}");
        async move { api.submit(&key, &unlisted(bn)).await.status == 403 }
    })
    .await;
    let fresh = d
        .client(CLIENT_SECOND)
        .try_send(hyper::Method::GET, "/healthz", &[], bytes::Bytes::new())
        .await;
    assert!(
        fresh.is_err(),
        "a client removed by the reload is refused at the handshake: {:?}",
        fresh.map(|r| r.status)
    );

    // A bad SIGHUP changes nothing either; it is recorded as refused.
    std::fs::write(&broken, BROKEN).unwrap();
    hup();
    wait_until(WAIT, "the refused SIGHUP reload is recorded", || async {
        reload_records(&d).await.len() == 5
    })
    .await;
    assert_eq!(
        reload_records(&d).await,
        ["done", "refused", "refused", "done", "refused"]
    );
    let r = api.submit("after-bad-hup", &unlisted(bn)).await;
    assert_eq!(r.status, 403, "{}", r.body);

    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(sent >= 10, "only {sent} requests in the stream");
    assert_eq!(failed, 0, "{failed} of {sent} stream requests failed");
}
