//! End to end, batch inquiries by municipal file over real HTTPS: good and bad lines mixed,
//! the results file in CP932, re-uploads that create nothing, and isolation between systems.

mod common;

use std::time::Duration;

use common::{Api, Deployment};
use renkei::dev::batch_file::{fixed_line, line_values, pos};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
use renkei_convert::{Layout, LayoutReader, Record};
use serde_json::Value;

const DONE_TIMEOUT: Duration = Duration::from_secs(60);

async fn upload(api: &Api, file: &[u8]) -> common::Reply {
    api.upload_batch(file).await
}

async fn wait_done(api: &Api, id: &str) -> Value {
    let path = format!("/v1/batches/{id}");
    common::wait_for(DONE_TIMEOUT, &format!("batch {id} is done"), || async {
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        (r.body["done"] == true).then_some(r.body)
    })
    .await
}

fn line(values: &[String; 18]) -> Vec<u8> {
    fixed_line(values)
}

fn with(bn: &str, field: usize, value: &str) -> Vec<u8> {
    let mut v = line_values(bn);
    v[field] = value.to_string();
    line(&v)
}

/// Reads a results file with the inquiry-result layout (CP932): every line must decode.
fn read_results(raw: &[u8]) -> Vec<Record> {
    let layout = Layout::builtin("inquiry-result").expect("result layout");
    LayoutReader::new(&layout, raw)
        .map(|r| r.unwrap_or_else(|e| panic!("results file line does not decode: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_results_reupload_and_isolation() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let bn = |i: usize| SAMPLES[i].business_number;

    let mut file = Vec::new();
    file.extend(line(&line_values(bn(0)))); // 1 good
    file.extend(with(bn(0), pos::BUSINESS_NUMBER, "")); // 2 required
    file.extend(line(&line_values(bn(1)))); // 3 good
    file.extend(with(bn(1), pos::PROCEDURE, "XX01010000000214")); // 4 invalid_format
    file.extend(with("000000000099999", pos::FISCAL_YEAR_KIND, "1")); // 5 person_not_linked
    let mut v = line_values(bn(0));
    v[pos::PROCEDURE] = "JT09999999999999".into();
    v[pos::ITEM] = "TM09999999999999".into();
    file.extend(line(&v)); // 6 not_permitted
    let mut short = line(&line_values(bn(2)));
    short.drain(10..20);
    file.extend(short); // 7 line_length
    file.extend(line(&line_values(bn(2)))); // 8 good
    file.extend(with(bn(2), pos::INQUIRER_AGENCY, "0199999999999999")); // 9 agency_mismatch
    file.extend(with(bn(2), pos::FISCAL_YEAR_KIND, "7")); // 10 invalid_code
    file.extend(with(bn(2), pos::REQUESTED_AT, "20261301093000123")); // 11 invalid_timestamp
    file.extend(with(bn(2), pos::FROM_DATE, "20260231")); // 12 bad date

    let r = upload(&api, &file).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().expect("batch id").to_string();
    assert_eq!(r.body["new"], true);

    let v = wait_done(&api, &id).await;
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["status"], "accepted", "{v}");
    assert_eq!(v["total_lines"], 12, "{v}");
    assert_eq!(v["accepted"], 3, "{v}");
    assert_eq!(v["rejected_count"], 9, "{v}");
    assert_eq!(
        (v["answered"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(0)),
        "{v}"
    );
    assert_eq!(
        (v["queued"].as_u64(), v["sent"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    let rejected: Vec<(u64, String, String)> = v["rejected"]
        .as_array()
        .expect("rejected list")
        .iter()
        .map(|r| {
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
            (
                r["line"].as_u64().expect("line"),
                r["field"].as_str().unwrap_or("-").to_string(),
                r["code"].as_str().expect("code").to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String, String)> = [
        (2, "business_number", "required"),
        (4, "procedure_code", "invalid_format"),
        (5, "business_number", "person_not_linked"),
        (6, "item_code", "not_permitted"),
        (7, "-", "line_length"),
        (9, "inquirer_agency", "agency_mismatch"),
        (10, "fiscal_year_kind", "invalid_code"),
        (11, "requested_at", "invalid_timestamp"),
        (12, "from_date", "no_such_date"),
    ]
    .iter()
    .map(|(l, f, c)| (*l, f.to_string(), c.to_string()))
    .collect();
    assert_eq!(rejected, want, "{v}");

    // The results file: CP932 CSV in the inquiry-result layout, one line per input line in
    // line order — answered lines with their inquiry id, refused lines with their reason code.
    let r = api.get(&format!("/v1/batches/{id}/results")).await;
    assert_eq!(r.status, 200);
    let recs = read_results(&r.raw);
    let lines: Vec<u64> = recs
        .iter()
        .map(|r| r.get("line").and_then(|l| l.parse().ok()).expect("line"))
        .collect();
    assert_eq!(lines, (1..=12).collect::<Vec<u64>>());
    let by_line = |n: usize| &recs[n - 1];
    for (n, b) in [(1, bn(0)), (3, bn(1)), (8, bn(2))] {
        let rec = by_line(n);
        assert_eq!(rec.get("business_number"), Some(b), "{rec:?}");
        assert_eq!(rec.get("status_detail"), Some("09"), "{rec:?}");
        let iq = rec.get("inquiry_id").expect("inquiry id");
        let got = api.get(&format!("/v1/inquiries/{iq}")).await;
        assert_eq!(
            (got.status, got.body["business_number"].as_str()),
            (200, Some(b)),
            "the line's inquiry id names its inquiry"
        );
    }
    for (line, _, code) in &want {
        let rec = by_line(*line as usize);
        assert_eq!(rec.get("status_detail"), Some("98"), "{rec:?}");
        assert_eq!(rec.get("reason_code"), Some(code.as_str()), "{rec:?}");
        assert_eq!(rec.get("inquiry_id").unwrap_or_default(), "", "{rec:?}");
    }
    assert_eq!(by_line(1).get("municipal_tax_income_levy"), Some("123400"));
    assert_eq!(by_line(1).get("municipal_tax_per_capita"), Some("3500"));
    assert_ne!(by_line(3).get("municipal_tax_income_levy"), Some("123400"));
    assert!(r.raw.ends_with(b"\r\n"));

    // Re-uploading the same file: same batch, nothing new.
    let before = d.ops_stats().await["inquiries"].as_u64().expect("count");
    assert_eq!(before, 3);
    let again = upload(&api, &file).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(again.body["new"], false);
    assert_eq!(d.ops_stats().await["inquiries"].as_u64(), Some(before));

    // Isolation: kokuho sees neither the batch nor its results; its own batch is its own.
    let second = d.client(CLIENT_SECOND);
    for path in [
        format!("/v1/batches/{id}"),
        format!("/v1/batches/{id}/results"),
    ] {
        let r = second.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.body["code"], "not_found");
    }
    let kokuho_bn = "000000000099001";
    let r = second
        .put_json(&format!("/v1/persons/{kokuho_bn}"), &common::link_body(0))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // kokuho inquires under its own affair (national health insurance).
    let mut kv_line = line_values(kokuho_bn);
    kv_line[pos::AFFAIR] = renkei::dev::init::AFFAIR_NHI.into();
    let k = upload(&second, &line(&kv_line)).await;
    assert_eq!(k.status, 202, "{}", k.body);
    let kid = k.body["id"].as_str().expect("batch id").to_string();
    assert_ne!(kid, id);
    let kv = wait_done(&second, &kid).await;
    assert_eq!(
        (kv["accepted"].as_u64(), kv["answered"].as_u64()),
        (Some(1), Some(1)),
        "{kv}"
    );
    let r = api.get(&format!("/v1/batches/{kid}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // The same file from kokuho is kokuho's batch, and its lines are not kodomo-iryo's persons.
    let k2 = upload(&second, &file).await;
    assert_eq!(k2.status, 202, "{}", k2.body);
    assert_ne!(k2.body["id"], id.as_str());
    // Staff may not use batches; an unknown id is not found.
    let r = d.client("operator").get(&format!("/v1/batches/{id}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = api.get("/v1/batches/BT00000000000000000000000000").await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api.get("/v1/batches/..%2F..").await;
    assert_eq!(r.status, 404, "{}", r.body);
    // An empty upload is refused.
    let r = upload(&api, b"").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "empty_file");
}

/// `renkei inquiries submit --wait` against the running gateway writes the results file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_submit_waits_and_writes_results() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let file = renkei::dev::batch_file::generate_batch_file(4, &[SAMPLES[0].business_number]);
    let path = d.dir.join("P640R110_20260401093000");
    std::fs::write(&path, &file).expect("write batch");
    let out_path = d.dir.join("results.csv");
    let dir = d.dir.clone();
    let out = tokio::task::spawn_blocking({
        let path = path.clone();
        let out_path = out_path.clone();
        move || {
            std::process::Command::new(common::BIN)
                .args(["inquiries", "submit"])
                .arg(&path)
                .args(["--wait", "--timeout", "60", "--results"])
                .arg(&out_path)
                .arg("--dir")
                .arg(&dir)
                .output()
                .expect("run renkei inquiries submit")
        }
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "submit failed: {stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.starts_with("BT"), "stdout: {id}");
    assert!(stderr.contains("done"), "{stderr}");
    let recs = read_results(&std::fs::read(&out_path).expect("results written"));
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r.get("municipal_tax_income_levy"), Some("123400"));
    }
    // `status` prints the same batch.
    let out = std::process::Command::new(common::BIN)
        .args(["inquiries", "status", &id, "--dir"])
        .arg(&d.dir)
        .output()
        .expect("run status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(v["answered"], 4, "{v}");
}

#[test]
fn schemas_check_passes_on_the_repo_and_fails_on_a_broken_copy() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let out = std::process::Command::new(common::BIN)
        .args(["schemas", "check", "--dir"])
        .arg(&repo)
        .output()
        .expect("run schemas check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("schemas");
    copy_dir(&repo, &copy);
    let layout = copy.join("layouts/inquiry-batch.toml");
    let text = std::fs::read_to_string(&layout).expect("layout");
    std::fs::write(
        &layout,
        text.replacen("width = 15", "width = 0", 1) + "\nbogus_key = 1\n",
    )
    .expect("break layout");
    let out = std::process::Command::new(common::BIN)
        .args(["schemas", "check", "--dir"])
        .arg(&copy)
        .output()
        .expect("run schemas check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a broken layout passed: {stdout}");
    assert!(stdout.contains("inquiry-batch.toml"), "{stdout}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}
