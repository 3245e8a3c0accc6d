//! Personal data at rest (issue 10, item 5), over the real binary: a full flow — persons linked
//! and imported by the resident-record feed (a death among them), inquiries answered, codes
//! (符号) acquired, a batch with results and rejected lines — then every file under the
//! gateway's `data_dir` (and its logs) is scanned byte-wise for every result value, 符号,
//! individual number and personal text field the flow used or read back, in each form it
//! could take (JSON as serde writes it, raw UTF-8, Shift_JIS, UTF-16): none is found. The
//! answers read back through the API are the same after a restart. Only labels and counts
//! are printed, never a value.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::{local_tax, public_fund, sample_digits, wait_until, Api, Deployment};
use renkei::dev::batch_file::{fixed_line, line_values, pos};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_FEED, CLIENT_SUBSIDY};
use renkei_convert::{Layout, LayoutReader};
use serde_json::Value;

const FINAL_TIMEOUT: Duration = Duration::from_secs(60);

/// One secret to look for: what it is (printed) and its value (never printed).
struct Secret {
    label: String,
    value: String,
    /// The JSON form it is stored in when not sealed, e.g. `["市町村民税所得割額","123400"]`.
    json: Option<String>,
}

fn secret(label: impl Into<String>, value: impl Into<String>) -> Secret {
    Secret {
        label: label.into(),
        value: value.into(),
        json: None,
    }
}

/// The byte forms `s` could take in a file. Short ASCII values are looked for only quoted (as
/// a JSON string) or in their JSON pair, so that digits inside other numbers do not count.
fn forms(s: &Secret) -> Vec<(&'static str, Vec<u8>)> {
    let v = s.value.as_str();
    let mut out = vec![("json", serde_json::to_vec(v).unwrap_or_default())];
    if let Some(j) = &s.json {
        out.push(("json pair", j.as_bytes().to_vec()));
    }
    if !v.is_ascii() || v.len() >= 7 {
        out.push(("utf-8", v.as_bytes().to_vec()));
    }
    if !v.is_ascii() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(v);
        out.push(("shift_jis", sjis.into_owned()));
        out.push((
            "utf-16le",
            v.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ));
        out.push((
            "utf-16be",
            v.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// "label (form) in file" for every secret found in a file.
fn scan(files: &[PathBuf], secrets: &[Secret]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for s in secrets {
            for (kind, needle) in forms(s) {
                if contains(&bytes, &needle) {
                    hits.push(format!("{} ({kind}) in {}", s.label, f.display()));
                }
            }
        }
    }
    hits
}

/// A valid individual number for a person the feed registers (check digit computed).
fn feed_number(i: u64) -> String {
    let first = format!("{:011}", 58_000_000_000u64 + i * 104_729);
    let d: Vec<u8> = first.bytes().map(|b| b - b'0').collect();
    let d: [u8; 11] = d.try_into().expect("11 digits");
    format!("{first}{}", renkei_ids::individual_number_check_digit(&d))
}

/// The result values of an answered inquiry, as secrets.
fn result_secrets(id: &str, v: &Value, out: &mut Vec<Secret>) {
    for item in v["result"]["items"].as_array().into_iter().flatten() {
        for f in item["fields"].as_array().into_iter().flatten() {
            let (Some(name), Some(value)) = (f[0].as_str(), f[1].as_str()) else {
                continue;
            };
            out.push(Secret {
                label: format!("result {name} of {id}"),
                value: value.to_string(),
                json: Some(serde_json::to_string(&(name, value)).unwrap_or_default()),
            });
        }
    }
}

#[test]
fn the_scanner_finds_each_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Secret {
        label: "x".into(),
        value: "札幌 花子".into(),
        json: Some(r#"["氏名","札幌 花子"]"#.into()),
    };
    let mut files = Vec::new();
    for (kind, bytes) in forms(&s) {
        let f = dir.path().join(kind.replace(' ', "-"));
        let mut content = b"xx".to_vec();
        content.extend(bytes);
        std::fs::write(&f, content).expect("write");
        files.push(f);
    }
    let clean = dir.path().join("clean");
    std::fs::write(&clean, "札幌").expect("write");
    files.push(clean);
    let hits = scan(&files, &[s]);
    // Every form's file is found (the JSON ones contain the UTF-8 form too), the clean one not.
    assert!(hits.iter().all(|h| !h.ends_with("clean")), "{hits:?}");
    for kind in [
        "json",
        "json-pair",
        "utf-8",
        "shift_jis",
        "utf-16le",
        "utf-16be",
    ] {
        assert!(
            hits.iter().any(|h| h.ends_with(&format!("/{kind}"))),
            "{kind}: {hits:?}"
        );
    }
    // Short numbers count only as JSON strings or pairs, not as digits inside other numbers.
    let short = secret("short", "3500");
    let f = dir.path().join("number");
    std::fs::write(&f, b"{\"ms\":1764350012}").expect("write");
    assert!(scan(&[f], &[short]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_result_code_or_personal_text_in_plaintext_under_data_dir() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    let api = d.client(CLIENT_SUBSIDY);
    let feed = d.client(CLIENT_FEED);
    let mut secrets: Vec<Secret> = Vec::new();

    // Persons: the three samples linked by the business system; two more registered by the
    // resident-record feed, one of whom then dies.
    d.link_samples().await;
    for (i, s) in SAMPLES.iter().enumerate() {
        for (what, v) in [
            ("name", s.name),
            ("kana", s.kana),
            ("address", s.address),
            ("birth date", s.birth_date),
        ] {
            secrets.push(secret(format!("sample {i} {what}"), v));
        }
        secrets.push(secret(
            format!("sample {i} individual number"),
            sample_digits(i),
        ));
    }
    let fed = [
        (
            "J0001",
            "当別 四郎",
            "トウベツ シロウ",
            "平成28年11月3日",
            "北海道石狩郡当別町白樺町",
        ),
        (
            "J0002",
            "当別 五月",
            "トウベツ サツキ",
            "昭和55年5月5日",
            "北海道石狩郡当別町末広",
        ),
    ];
    let mut csv = String::from(
        "change_kind,business_number,individual_number,name,kana,birth_date,sex,address,change_date\n",
    );
    for (i, (bn, name, kana, birth, address)) in fed.iter().enumerate() {
        let n = feed_number(i as u64 + 1);
        csv.push_str(&format!(
            "01,{bn},{n},{name},{kana},{birth},1,{address},20260401\n"
        ));
        for (what, v) in [("name", *name), ("kana", *kana), ("address", *address)] {
            secrets.push(secret(format!("fed {bn} {what}"), v));
        }
        secrets.push(secret(format!("fed {bn} individual number"), n));
    }
    let (bn2, name2, kana2, birth2, address2) = fed[1];
    csv.push_str(&format!(
        "05,{bn2},,{name2},{kana2},{birth2},1,{address2},20260402\n"
    ));
    let r = feed
        .send(
            hyper::Method::POST,
            "/v1/persons:import?layout=resident-csv",
            &[("content-type", "application/octet-stream")],
            Bytes::from(csv.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["applied_changes"], 3, "{}", r.body);
    let dead = |feed: Api| async move {
        feed.get("/v1/persons:lookup?business_number=J0002")
            .await
            .body["status"]
            .clone()
    };
    assert_eq!(dead(feed.clone()).await, "deceased");

    // Inquiries answered, one by one and in a batch with rejected lines.
    let mut ids = Vec::new();
    for (i, s) in SAMPLES.iter().enumerate() {
        ids.push(
            api.submit_ok(&format!("tax-{i}"), &local_tax(s.business_number))
                .await,
        );
    }
    ids.push(
        api.submit_ok("fund-0", &public_fund(SAMPLES[0].business_number))
            .await,
    );
    let mut file = Vec::new();
    for s in &SAMPLES {
        file.extend(fixed_line(&line_values(s.business_number)));
    }
    let mut bad = line_values(SAMPLES[0].business_number);
    bad[pos::PROCEDURE] = "XX01010000000214".into();
    file.extend(fixed_line(&bad));
    file.extend(fixed_line(&line_values("000000000099999")));
    let r = api.upload_batch(&file).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let batch = r.body["id"].as_str().expect("batch id").to_string();
    let status = common::wait_for(FINAL_TIMEOUT, "the batch is done", || async {
        let r = api.get(&format!("/v1/batches/{batch}")).await;
        (r.body["done"] == true).then_some(r.body)
    })
    .await;
    assert_eq!(status["accepted"], 3, "{status}");
    assert_eq!(status["rejected_count"], 2, "{status}");
    assert_eq!(status["answered"], 3, "{status}");

    let mut answers = Vec::new();
    for id in &ids {
        let v = api.wait_final(id, FINAL_TIMEOUT).await;
        assert_eq!(v["status"], "answered", "{v}");
        result_secrets(id, &v, &mut secrets);
        answers.push(v);
    }
    let results = api.get(&format!("/v1/batches/{batch}/results")).await;
    assert_eq!(results.status, 200);
    let layout = Layout::builtin("inquiry-result").expect("result layout");
    let recs: Vec<_> = LayoutReader::new(&layout, &results.raw[..])
        .map(|r| r.expect("results line decodes"))
        // Rejected lines are in the file too (line number and reason code, no inquiry id).
        .filter(|r| r.get("inquiry_id").is_some_and(|v| !v.is_empty()))
        .collect();
    assert_eq!(recs.len(), 3);
    for (i, rec) in recs.iter().enumerate() {
        for col in ["municipal_tax_income_levy", "municipal_tax_per_capita"] {
            let v = rec.get(col).expect("result column");
            assert!(!v.is_empty(), "line {i} {col}");
            secrets.push(secret(format!("batch line {i} {col}"), v));
        }
    }
    let result_values = secrets.iter().filter(|s| s.json.is_some()).count();
    assert!(
        result_values >= 7,
        "result values collected: {result_values}"
    );

    // Codes (符号): acquired for the samples (their inquiries were answered); the simulator
    // says which it issued.
    wait_until(FINAL_TIMEOUT, "codes are acquired", || async {
        d.sim_stats().await["code_acquisitions"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    let codes = d.sim_admin().get("/admin/codes").await;
    assert_eq!(codes.status, 200, "{}", codes.body);
    let codes = codes.body.as_array().cloned().unwrap_or_default();
    assert!(codes.len() >= 3, "codes issued: {}", codes.len());
    for c in &codes {
        let fugo = c["fugo"].as_str().expect("fugo").to_string();
        secrets.push(secret(format!("code of {}", c["unified"]), fugo));
    }
    let lookups: Vec<Value> = {
        let mut out = Vec::new();
        for s in &SAMPLES {
            let r = api
                .get(&format!(
                    "/v1/persons:lookup?business_number={}",
                    s.business_number
                ))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            out.push(r.body);
        }
        out
    };

    // Stopped, then every file under data_dir and the gateway's logs scanned.
    d.kill_gateway();
    let data_dir = d.dir.join("gateway/data");
    let files: Vec<PathBuf> = d
        .all_files()
        .into_iter()
        .filter(|f| {
            f.starts_with(&data_dir)
                || (f.starts_with(d.dir.join("logs"))
                    && f.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("gateway")))
        })
        .collect();
    let store_bytes: u64 = files
        .iter()
        .filter(|f| f.starts_with(data_dir.join("store")))
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "scanning {} files ({store_bytes} bytes of store) for {} secrets",
        files.len(),
        secrets.len()
    );
    assert!(store_bytes > 0, "no store files scanned");
    // The scan can see into the store: the business numbers are stored plainly (they are
    // lookup keys), and it finds them.
    let visible = scan(
        &files,
        &[secret(
            "business number (a plain lookup key)",
            "000000000012345",
        )],
    );
    assert!(!visible.is_empty(), "the scan does not see into the store");
    let hits = scan(&files, &secrets);
    println!("plaintext secrets found: {}", hits.len());
    assert!(hits.is_empty(), "in plaintext at rest: {hits:#?}");

    // After a restart, the answers read back are the same.
    d.start_gateway().await;
    let api = d.client(CLIENT_SUBSIDY);
    for (id, before) in ids.iter().zip(&answers) {
        let r = api.get(&format!("/v1/inquiries/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["result"], before["result"],
            "inquiry {id} after restart"
        );
        assert_eq!(r.body["status"], "answered");
    }
    let again = api.get(&format!("/v1/batches/{batch}/results")).await;
    assert_eq!(again.raw, results.raw, "the results file after a restart");
    for (s, before) in SAMPLES.iter().zip(&lookups) {
        let r = api
            .get(&format!(
                "/v1/persons:lookup?business_number={}",
                s.business_number
            ))
            .await;
        assert_eq!(&r.body, before, "person after restart");
    }
    let feed = d.client(CLIENT_FEED);
    assert_eq!(dead(feed).await, "deceased");
}
