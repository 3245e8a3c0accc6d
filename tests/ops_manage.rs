//! System management against the real binary: the business statistics (`renkei ops stats`)
//! count what was submitted, by procedure and result; `renkei ops batches` lists a batch.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{local_tax, public_fund, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SUBSIDY, PROC_LOCAL_TAX, PROC_PUBLIC_FUND};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

fn today_jst() -> String {
    renkei::util::rfc3339_jst(renkei::util::now_ms())[..10].to_string()
}

/// `(procedure, result) → count` from `ops stats --output json`, for `system`.
fn stats_by(v: &serde_json::Value, system: &str) -> HashMap<(String, String), u64> {
    let mut out = HashMap::new();
    for r in v["rows"].as_array().cloned().unwrap_or_default() {
        if r["business_system"] == system {
            let key = (
                r["procedure"].as_str().unwrap_or("").to_string(),
                r["result"].as_str().unwrap_or("").to_string(),
            );
            *out.entry(key).or_default() += r["count"].as_u64().unwrap_or(0);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_was_submitted_and_batches_are_listed() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let from = today_jst();
    let api = d.client(CLIENT_SUBSIDY);
    let mut submitted: Vec<(&str, String)> = Vec::new();
    for i in 0..5 {
        let s = SAMPLES[i % SAMPLES.len()].business_number;
        let id = api.submit_ok(&format!("stats-lt-{i}"), &local_tax(s)).await;
        submitted.push((PROC_LOCAL_TAX, id));
    }
    for i in 0..3 {
        let s = SAMPLES[i % SAMPLES.len()].business_number;
        let id = api
            .submit_ok(&format!("stats-pf-{i}"), &public_fund(s))
            .await;
        submitted.push((PROC_PUBLIC_FUND, id));
    }
    // What the business system saw: final statuses by procedure.
    let mut expected: HashMap<(String, String), u64> = HashMap::new();
    for (procedure, id) in &submitted {
        let v = api.wait_final(id, ANSWER_TIMEOUT).await;
        let status = v["status"].as_str().unwrap_or("").to_string();
        *expected.entry((procedure.to_string(), status)).or_default() += 1;
    }
    let to = today_jst();

    let out = d.cli(&[
        "ops", "stats", "--from", &from, "--to", &to, "--output", "json",
    ]);
    assert!(
        out.status.success(),
        "ops stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json stats");
    let got = stats_by(&v, CLIENT_SUBSIDY);
    // An answered inquiry is recorded as `answered` or `not_held` (the provider held nothing);
    // a failed one as `failed` or `refused`.
    for procedure in [PROC_LOCAL_TAX, PROC_PUBLIC_FUND] {
        let sum = |results: &[&str]| -> u64 {
            results
                .iter()
                .map(|r| {
                    got.get(&(procedure.to_string(), r.to_string()))
                        .copied()
                        .unwrap_or(0)
                })
                .sum()
        };
        let want = |status: &str| {
            expected
                .get(&(procedure.to_string(), status.to_string()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            sum(&["answered", "not_held"]),
            want("answered"),
            "{procedure}: {v}"
        );
        assert_eq!(
            sum(&["failed", "refused"]),
            want("failed"),
            "{procedure}: {v}"
        );
    }
    let total: u64 = got.values().sum();
    assert_eq!(total, submitted.len() as u64, "{v}");
    for r in v["rows"].as_array().cloned().unwrap_or_default() {
        assert!(
            r["date"] == from.as_str() || r["date"] == to.as_str(),
            "{r}"
        );
        assert!(r.get("person").is_none(), "operators see counts only: {r}");
    }

    // CSV: the header and one line per cell.
    let out = d.cli(&["ops", "stats", "--from", &from, "--to", &to]);
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().next(), Some(renkei::cli::ops::STATS_CSV_HEADER));
    assert_eq!(
        csv.lines().count(),
        1 + v["rows"].as_array().map_or(0, Vec::len)
    );

    // A day with nothing: no rows. A malformed date: refused.
    let out = d.cli(&[
        "ops",
        "stats",
        "--from",
        "2001-01-01",
        "--to",
        "2001-01-02",
        "--output",
        "json",
    ]);
    let empty: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(empty["rows"].as_array().map(Vec::len), Some(0));
    let out = d.cli(&["ops", "stats", "--from", "2001-13-01", "--to", "2001-01-02"]);
    assert!(!out.status.success());

    // A batch upload shows in `ops batches`.
    let file = renkei::dev::batch_file::generate_batch_file(3, &[SAMPLES[0].business_number]);
    let r = api.upload_batch(&file).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let batch_id = r.body["id"]
        .as_str()
        .or(r.body["batch_id"].as_str())
        .expect("batch id")
        .to_string();
    common::wait_until(ANSWER_TIMEOUT, "the batch is listed as done", || async {
        let out = d.cli(&["ops", "batches", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array().is_some_and(|a| {
            a.iter().any(|b| {
                b["id"] == batch_id.as_str()
                    && b["business_system"] == CLIENT_SUBSIDY
                    && b["lines"] == 3
                    && b["progress"]["done"] == true
            })
        })
    })
    .await;
    let out = d.cli(&["ops", "batches"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&batch_id));
}
