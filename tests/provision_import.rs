//! Bulk copy registration from a file (issue 13), over the real binary and simulator:
//! `POST /v1/copies:import` and `renkei copies import`. A good CSV file's versions are sealed,
//! recorded and transferred like single registrations and answer the simulator's provision
//! inquiries by date; the same file again makes nothing new; bad lines come back with their
//! line, stable code and field and leave nothing behind; a fixed-width Shift_JIS file is read
//! and converted; another system's business numbers are refused, and an item the system's
//! affairs may not provide refuses the whole file.

mod common;
mod provision_support;

use bytes::Bytes;
use common::{Api, Deployment};
use provision_support::{
    all_transferred, ask, ask_local_tax, field, second_system_provides_local_tax, versions,
    versions_of,
};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{
    CLIENT_SECOND, CLIENT_SUBSIDY, ITEM_LOCAL_TAX, ITEM_PUBLIC_FUND, PROC_PUBLIC_FUND,
};
use serde_json::{json, Value};

const CSV_HEADER: &str = "business_number,dataset,effective_from,effective_to,non_disclosure,fiscal_year,income_levy,per_capita_levy,taxable_income\n";

fn import_path(item: &str, format: &str) -> String {
    format!("/v1/copies:import?item_code={item}&format={format}")
}

async fn import(api: &Api, item: &str, format: &str, file: &[u8]) -> common::Reply {
    api.send(
        hyper::Method::POST,
        &import_path(item, format),
        &[("content-type", "application/octet-stream")],
        Bytes::copy_from_slice(file),
    )
    .await
}

/// `renkei copies import` as the subsidy system: its exit code, the summary it printed and
/// its standard error.
fn cli_import(
    d: &Deployment,
    file: &std::path::Path,
    item: &str,
    format: Option<&str>,
) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "copies",
        "import",
        file.to_str().expect("utf-8"),
        "--item",
        item,
        "--as",
        CLIENT_SUBSIDY,
    ];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    let out = d.cli(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let printed = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), printed, err)
}

fn summary_counts(v: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    (
        n("lines"),
        n("accepted"),
        n("created"),
        n("unchanged"),
        n("rejected_count"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_registers_versions_that_are_transferred_answered_and_replay_safe() {
    let mut d = Deployment::new();
    d.start().await;
    let unified = d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let (bn0, bn1) = (SAMPLES[0].business_number, SAMPLES[1].business_number);
    let file = format!(
        "{CSV_HEADER}{bn0},D2025,2025-04-01,2026-03-31,0,2025,811111,3500,\n\
         {bn0},D2026,2026-04-01,,,2026,822222,3500,4100000\n\
         {bn1},D2026,2026-04-01,,1,2026,833333,3500,\n"
    );

    let r = import(&api, ITEM_LOCAL_TAX, "csv", file.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(summary_counts(&r.body), (3, 3, 3, 0, 0), "{}", r.body);
    assert_eq!(r.body["item"], ITEM_LOCAL_TAX);
    assert_eq!(r.body["format"], "csv");

    // Versions in file order, transferred by the dispatcher like single registrations.
    all_transferred(&api, bn0, ITEM_LOCAL_TAX, 2).await;
    all_transferred(&api, bn1, ITEM_LOCAL_TAX, 1).await;
    let v = versions(&api, bn0, ITEM_LOCAL_TAX).await;
    assert_eq!(
        (v[0]["version"].clone(), v[0]["effective_from"].clone()),
        (json!(1), json!("2025-04-01"))
    );
    assert_eq!(v[0]["effective_to"], "2026-03-31");
    assert_eq!(v[1]["version"], 2);
    let v1 = versions(&api, bn1, ITEM_LOCAL_TAX).await;
    assert_eq!(v1[0]["non_disclosure"], true);

    // The platform answers from the version in force on the asked date.
    let a = ask_local_tax(&d, &unified[0], "2025-06-01").await;
    assert_eq!(a["status"], "answered", "{a}");
    assert_eq!(a["answer"]["version"], 1, "{a}");
    assert_eq!(field(&a, "市町村民税所得割額").as_deref(), Some("811111"));
    let a = ask_local_tax(&d, &unified[0], "2026-06-01").await;
    assert_eq!(a["answer"]["version"], 2, "{a}");
    assert_eq!(field(&a, "課税標準額").as_deref(), Some("4100000"));
    let a = ask_local_tax(&d, &unified[1], "2026-06-01").await;
    assert_eq!(a["answer"]["withheld"], true, "{a}");

    // The same file again, over the API and through the CLI: nothing new.
    let r = import(&api, ITEM_LOCAL_TAX, "csv", file.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(summary_counts(&r.body), (3, 3, 0, 3, 0), "{}", r.body);
    let path = d.tmp.path().join("copies.csv");
    std::fs::write(&path, &file).expect("write file");
    let (code, printed, _) = cli_import(&d, &path, ITEM_LOCAL_TAX, None);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary_counts(&printed), (3, 3, 0, 3, 0), "{printed}");
    let v = versions(&api, bn0, ITEM_LOCAL_TAX).await;
    assert_eq!(v.len(), 2, "no duplicate versions");
    let stats = d.sim_stats().await;
    assert_eq!(stats["copies_registered"], 3, "{stats}");

    // Each version recorded as a single registration is.
    let auditor = d.client("auditor");
    let r = auditor
        .get(&format!(
            "/v1/audit/records?kind=provision&person={}&limit=1000",
            unified[0]
        ))
        .await;
    let reasons: Vec<&str> = r.body["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["reason"].as_str())
        .collect();
    for want in ["copy v1 queued", "copy v2 queued"] {
        assert_eq!(
            reasons.iter().filter(|r| **r == want).count(),
            1,
            "{want:?} in {reasons:?}"
        );
    }

    // Privacy: the file's values are sealed at rest and never logged.
    for f in d.all_files() {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for v in ["811111", "822222", "833333", "4100000"] {
            if let Some(at) = bytes.windows(v.len()).position(|w| w == v.as_bytes()) {
                // Where it was, with the value itself masked (for the diagnosis).
                let from = at.saturating_sub(80);
                let to = (at + v.len() + 80).min(bytes.len());
                let around = String::from_utf8_lossy(&bytes[from..to]).replace(v, "<VALUE>");
                panic!(
                    "a copy value in plaintext in {} at byte {at}: …{around}…",
                    f.display()
                );
            }
        }
    }
}

/// One fixed-width Shift_JIS line of a public-fund account copy (183 bytes and CRLF).
fn account_line(bn: &str, from: &str, kind: &str, number: &str, kana: &str) -> Vec<u8> {
    let mut line = format!(
        "{bn:<15}{:<16}{from}{:<8}{}{:<4}{:<3}{kind}{number:<7}",
        "D2026", "", "0", "0001", "123"
    )
    .into_bytes();
    let (holder, _, bad) = encoding_rs::SHIFT_JIS.encode(kana);
    assert!(!bad, "kana encodes in Shift_JIS");
    line.extend_from_slice(&holder);
    line.resize(183, b' ');
    line.extend_from_slice(b"\r\n");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_fixed_width_shift_jis_and_other_systems_numbers() {
    let mut d = Deployment::new();
    second_system_provides_local_tax(&d);
    d.start().await;
    let unified = d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let (bn0, bn1, bn2) = (
        SAMPLES[0].business_number,
        SAMPLES[1].business_number,
        SAMPLES[2].business_number,
    );

    // Good and bad lines: each bad one named by line (the header is line 1), code and field;
    // the good one registered.
    let file = format!(
        "{CSV_HEADER}{bn2},D2026,2026-04-01,,0,2026,800001,3500,\n\
         {bn1},D2026,2026-04-01,,0,2026,,3500,\n\
         {bn1},D2026,2026-04-01,,0,2026,12a,3500,\n\
         {bn1},D2026,2026-13-01,,0,2026,800002,3500,\n\
         {bn1},D2026,2026-04-01,2026-03-31,0,2026,800003,3500,\n\
         999999999999999,D2026,2026-04-01,,0,2026,800004,3500,\n\
         {bn1},D2026,2026-04-01,,2,2026,800005,3500,\n\
         {bn1},D2026\n"
    );
    let r = import(&api, ITEM_LOCAL_TAX, "csv", file.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(summary_counts(&r.body), (8, 1, 1, 0, 7), "{}", r.body);
    let got: Vec<(u64, String, String)> = r.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|x| {
            (
                x["line"].as_u64().unwrap_or(0),
                x["field"].as_str().unwrap_or("-").to_string(),
                x["code"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, &str, &str)> = vec![
        (3, "income_levy", "required"),
        (4, "income_levy", "not_digits"),
        (5, "effective_from", "no_such_date"),
        (6, "effective_to", "invalid_period"),
        (7, "business_number", "business_number_not_found"),
        (8, "non_disclosure", "unknown_code"),
    ];
    for (i, (line, field, code)) in want.iter().enumerate() {
        assert_eq!(
            (got[i].0, got[i].1.as_str(), got[i].2.as_str()),
            (*line, *field, *code),
            "{}",
            r.body
        );
    }
    assert_eq!(got[6].0, 9, "the short line: {}", r.body);
    for x in r.body["rejected"].as_array().into_iter().flatten() {
        let m = x["message"].as_str().unwrap_or_default();
        assert!(!m.contains("800002") && !m.contains("12a"), "{m}");
    }
    // Nothing half-written: the refused lines' person has no copy; the good line has one.
    let (status, _) = versions_of(&api, bn1, ITEM_LOCAL_TAX).await;
    assert_eq!(status, 404);
    all_transferred(&api, bn2, ITEM_LOCAL_TAX, 1).await;
    // The CLI says so with exit code 3 and lists the lines on stderr.
    let path = d.tmp.path().join("bad.csv");
    std::fs::write(&path, &file).expect("write file");
    let (code, _, err) = cli_import(&d, &path, ITEM_LOCAL_TAX, Some("csv"));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("line 3: income_levy: required"), "{err}");
    let v = versions(&api, bn2, ITEM_LOCAL_TAX).await;
    assert_eq!(v.len(), 1, "the good line again is no new version");

    // A fixed-width Shift_JIS file: half-width kana widened, the system's account kind
    // converted to the platform's code; a line of the wrong length refused.
    let mut fixed = account_line(bn2, "20260401", "9", "1234567", "ﾌﾟﾛﾋﾞｼﾞｮﾝ ﾊﾅｺ");
    fixed.extend_from_slice(b"000000000012346 short\r\n");
    let path = d.tmp.path().join("accounts.dat");
    std::fs::write(&path, &fixed).expect("write file");
    let (code, printed, err) = cli_import(&d, &path, ITEM_PUBLIC_FUND, Some("fixed"));
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(summary_counts(&printed), (2, 1, 1, 0, 1), "{printed}");
    assert_eq!(printed["rejected"][0]["line"], 2, "{printed}");
    all_transferred(&api, bn2, ITEM_PUBLIC_FUND, 1).await;
    let a = ask(
        &d,
        &unified[2],
        PROC_PUBLIC_FUND,
        ITEM_PUBLIC_FUND,
        Some("2026-06-01"),
    )
    .await;
    assert_eq!(a["status"], "answered", "{a}");
    assert_eq!(field(&a, "預金種目").as_deref(), Some("4"), "{a}");
    assert_eq!(
        field(&a, "口座名義人（カナ）").as_deref(),
        Some("プロビジョン ハナコ"),
        "{a}"
    );

    // Another system: its file naming the first system's business numbers registers nothing.
    let other = d.client(CLIENT_SECOND);
    let theirs = format!("{CSV_HEADER}{bn0},D2026,2026-04-01,,0,2026,800006,3500,\n");
    let r = import(&other, ITEM_LOCAL_TAX, "csv", theirs.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(summary_counts(&r.body), (1, 0, 0, 0, 1), "{}", r.body);
    assert_eq!(r.body["rejected"][0]["code"], "business_number_not_found");
    assert_eq!(r.body["rejected"][0]["field"], "business_number");
    let (status, _) = versions_of(&api, bn0, ITEM_LOCAL_TAX).await;
    assert_eq!(status, 404, "the first system's number has no copy");
    let stats = d.sim_stats().await;
    assert_eq!(stats["copies_registered"], 2, "{stats}");
    // An item its affairs may not provide: the whole file is refused before it is read,
    // with a denied-request record.
    let r = import(&other, ITEM_PUBLIC_FUND, "fixed", &fixed).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "not_permitted");
    assert_eq!(r.body["field"], "item_code");
    let auditor = d.client("auditor");
    let recs = auditor
        .get("/v1/audit/records?kind=denied_request&limit=100")
        .await;
    assert!(
        recs.body["records"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["business_system"] == CLIENT_SECOND && x["reason"] == "copy_not_permitted"),
        "{}",
        recs.body
    );
    // A query without the item is a usage error naming the field.
    let r = other
        .send(
            hyper::Method::POST,
            "/v1/copies:import?format=csv",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["field"], "item_code");

    // The older per-client `provides` list is refused with a pointer to the table (a reload
    // names it and changes nothing).
    let cfg = d.dir.join("renkei.toml");
    let good = std::fs::read_to_string(&cfg).expect("config");
    let line = format!("name = \"{CLIENT_SECOND}\"");
    std::fs::write(
        &cfg,
        good.replacen(
            &line,
            &format!("{line}\nprovides = [\"{ITEM_PUBLIC_FUND}\"]"),
            1,
        ),
    )
    .expect("write config");
    let out = d.cli(&["config", "reload"]);
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        err.contains("provides: no longer read") && err.contains("schemas/permissions/"),
        "{err}"
    );
    let r = import(&other, ITEM_PUBLIC_FUND, "fixed", &fixed).await;
    assert_eq!(r.status, 403, "still refused: {}", r.body);
}
