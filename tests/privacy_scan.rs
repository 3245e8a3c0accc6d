//! Privacy scan: after a full flow (links, inquiries, refused requests, a restart), no file
//! of the deployment — configs, keys, the sled store, logs, the messages the platform
//! received — holds a sample's individual number in plaintext, as ASCII digits or as
//! full-width digits. Every captured message is valid against the platform's XML schema.
//! Only counts are printed, never a number.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{link_body, local_tax, public_fund, sample_digits, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
use serde_json::json;

/// The forms an individual number could take in a file.
fn patterns(digits: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("ascii", digits.as_bytes().to_vec()),
        (
            "full-width",
            renkei::sim::fullwidth_digits(digits).into_bytes(),
        ),
    ]
}

/// Occurrences of `needle` in `hay`.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// (pattern kind, sample index, file) of every hit.
fn scan(files: &[PathBuf], numbers: &[String]) -> Vec<(&'static str, usize, PathBuf)> {
    let mut hits = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for (i, n) in numbers.iter().enumerate() {
            for (kind, p) in patterns(n) {
                if count(&bytes, &p) > 0 {
                    hits.push((kind, i, f.clone()));
                }
            }
        }
    }
    hits
}

fn require_xmllint() {
    let ok = Command::new("xmllint")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "xmllint is required for this test: apt-get install -y libxml2-utils"
    );
}

#[test]
fn the_scanner_finds_planted_numbers() {
    // The scan must be able to fail: plant each form in a file and find it.
    let dir = tempfile::tempdir().expect("tempdir");
    let n = sample_digits(0);
    let ascii = dir.path().join("ascii.bin");
    std::fs::write(&ascii, format!("xx{n}yy")).expect("write");
    let wide = dir.path().join("wide.txt");
    std::fs::write(&wide, renkei::sim::fullwidth_digits(&n)).expect("write");
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, &n[..11]).expect("write");
    let hits = scan(&[ascii.clone(), wide.clone(), clean], &[n]);
    let kinds: Vec<(&str, &Path)> = hits.iter().map(|(k, _, f)| (*k, f.as_path())).collect();
    assert_eq!(
        kinds,
        vec![("ascii", ascii.as_path()), ("full-width", wide.as_path())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_individual_number_in_any_file_and_messages_match_the_schema() {
    require_xmllint();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/platform/messages.xsd");
    assert!(schema.exists(), "{} is missing", schema.display());

    let mut d = Deployment::new();
    d.env
        .push(("RENKEI_LOG".into(), "debug,renkei=trace".into()));
    let capture = d.dir.join("capture");
    d.capture = Some(capture.clone());
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let second = d.client(CLIENT_SECOND);
    // The second system links the same person, and inquires.
    let r = second.put_json("/v1/persons/K0001", &link_body(0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut ids = vec![
        (
            api.clone(),
            api.submit_ok("p-0", &local_tax(SAMPLES[0].business_number))
                .await,
        ),
        (
            api.clone(),
            api.submit_ok("p-1", &local_tax(SAMPLES[1].business_number))
                .await,
        ),
        (
            api.clone(),
            api.submit_ok("p-2", &public_fund(SAMPLES[2].business_number))
                .await,
        ),
        (
            second.clone(),
            second.submit_ok("p-3", &local_tax("K0001")).await,
        ),
    ];
    // Refused requests that carry a number in the wrong shape.
    let mut bad = link_body(1);
    bad["individual_number"] = json!(sample_digits(1).parse::<u64>().expect("digits"));
    assert_eq!(api.put_json("/v1/persons/B0001", &bad).await.status, 422);
    let mut bad = link_body(2);
    bad["individual_number"] = json!(format!("{} ", sample_digits(2)));
    assert_eq!(api.put_json("/v1/persons/B0002", &bad).await.status, 422);
    let mut bad = link_body(0);
    bad["sex"] = json!("x");
    assert_eq!(api.put_json("/v1/persons/B0003", &bad).await.status, 422);
    for (c, id) in &ids {
        let v = c.wait_final(id, Duration::from_secs(20)).await;
        assert_eq!(v["status"], "answered", "{v}");
    }
    // A restart, and one more inquiry after it (the store is reopened and written again).
    d.kill_gateway();
    d.start_gateway().await;
    let api = d.client(CLIENT_SUBSIDY);
    ids.push((
        api.clone(),
        api.submit_ok("p-4", &local_tax(SAMPLES[0].business_number))
            .await,
    ));
    let (c, id) = ids.last().expect("id");
    assert_eq!(
        c.wait_final(id, Duration::from_secs(20)).await["status"],
        "answered"
    );
    d.kill_gateway();
    d.kill_sim();

    let files = d.all_files();
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let captured: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.starts_with(&capture) && f.extension().is_some_and(|e| e == "xml"))
        .cloned()
        .collect();
    let store_files = files
        .iter()
        .filter(|f| f.starts_with(d.dir.join("gateway/data/store")))
        .count();
    let log_bytes: u64 = files
        .iter()
        .filter(|f| f.starts_with(d.dir.join("logs")))
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "scanned {} files, {bytes} bytes ({store_files} store files, {} captured messages, \
         {log_bytes} bytes of logs)",
        files.len(),
        captured.len()
    );
    // The scan covered what it should.
    assert!(store_files > 0, "no store files scanned");
    assert!(log_bytes > 0, "no logs scanned");
    assert!(
        captured.len() >= 3 + 5 * 2,
        "expected code acquisitions, inquiries and result fetches in the capture, got {}",
        captured.len()
    );

    let numbers: Vec<String> = (0..SAMPLES.len()).map(sample_digits).collect();
    let hits = scan(&files, &numbers);
    let report: Vec<String> = hits
        .iter()
        .map(|(kind, i, f)| {
            format!(
                "sample {i} ({kind}) in {}",
                f.strip_prefix(&d.dir).unwrap_or(f).display()
            )
        })
        .collect();
    println!("plaintext individual numbers found: {}", hits.len());
    assert!(
        report.is_empty(),
        "plaintext individual numbers: {report:#?}"
    );

    // Every captured message is valid against the platform's schema.
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .args(&captured)
        .output()
        .expect("run xmllint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let invalid: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.ends_with(" validates"))
        .collect();
    assert!(
        out.status.success() && invalid.is_empty(),
        "captured messages fail the schema: {invalid:#?}"
    );
    let valid = stderr.lines().filter(|l| l.ends_with(" validates")).count();
    assert_eq!(valid, captured.len());
    println!("{valid} captured messages validate against messages.xsd");
}
