//! The bench's bulk phases: a municipal batch file (upload → every line accepted, the
//! platform closed) and a resident file import (fixed-width Shift_JIS, upload → answer), each
//! over real mutual TLS into the fsync'd store of a running gateway.

use std::time::{Duration, Instant};

use bytes::Bytes;
use renkei_convert::{Layout, LayoutWriter, Record};

use super::procs::Deployment;
use super::BenchError;
use crate::dev::demo::SAMPLES;
use crate::dev::init::{CLIENT_FEED, CLIENT_SUBSIDY};
use crate::tls::HttpsClient;

/// How long one bulk request (the upload, or the whole import) may take.
const BULK_TIMEOUT: Duration = Duration::from_secs(900);
/// How often the batch's status is read while its lines are accepted.
const BATCH_POLL: Duration = Duration::from_millis(200);
/// The first individual number of the generated residents (`30000000000` + row, with its
/// check digit): far from the samples'.
const FIRST_GENERATED_NUMBER: u64 = 30_000_000_000;

/// What one bulk phase measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Bulk {
    /// Lines or rows in the file.
    pub lines: u64,
    /// From the first byte of the upload to the last line accepted (batch) or the answer
    /// (import).
    pub secs: f64,
}

impl Bulk {
    pub fn rate(&self) -> f64 {
        self.lines as f64 / self.secs.max(f64::MIN_POSITIVE)
    }
}

fn client(d: &Deployment, name: &str) -> Result<HttpsClient, BenchError> {
    let c = d.client(name);
    Ok(HttpsClient::new(
        &d.dir.join("ca.pem"),
        &c.join("cert.pem"),
        &c.join("key.pem"),
        BULK_TIMEOUT,
    )?)
}

/// A batch file of `lines` inquiries about the sample residents, from upload to every line
/// accepted (`GET /v1/batches/{id}` says `accepted`).
pub async fn batch(d: &Deployment, base: &str, lines: usize) -> Result<Bulk, BenchError> {
    let persons: Vec<&str> = SAMPLES.iter().map(|s| s.business_number).collect();
    let file = crate::dev::batch_file::generate_batch_file(lines, &persons);
    let api = client(d, CLIENT_SUBSIDY)?;
    let started = Instant::now();
    let r = api
        .send(
            hyper::Method::POST,
            &format!("{base}/v1/inquiries:batch"),
            &[("content-type", "application/octet-stream")],
            Bytes::from(file),
        )
        .await?;
    if r.status != 202 {
        return Err(BenchError::Refused {
            what: "the batch upload",
            status: r.status.as_u16(),
        });
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let url = format!("{base}/v1/batches/{id}");
    loop {
        tokio::time::sleep(BATCH_POLL).await;
        let r = api
            .send(hyper::Method::GET, &url, &[], Bytes::new())
            .await?;
        if r.status != 200 {
            return Err(BenchError::Refused {
                what: "the batch status",
                status: r.status.as_u16(),
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        if v["status"] == "accepted" {
            if v["accepted"].as_u64() != Some(lines as u64) {
                return Err(BenchError::Init(format!(
                    "the batch accepted {} of {lines} lines",
                    v["accepted"]
                )));
            }
            return Ok(Bulk {
                lines: lines as u64,
                secs: started.elapsed().as_secs_f64(),
            });
        }
        if started.elapsed() > BULK_TIMEOUT {
            return Err(BenchError::Init(
                "the batch was not accepted in time".into(),
            ));
        }
    }
}

/// A valid individual number for generated resident `i`.
fn generated_number(i: u64) -> String {
    let first = format!("{:011}", FIRST_GENERATED_NUMBER + i);
    let mut d = [0u8; 11];
    for (k, b) in first.bytes().enumerate() {
        d[k] = b - b'0';
    }
    format!("{first}{}", renkei_ids::individual_number_check_digit(&d))
}

/// A fixed-width Shift_JIS resident file (`resident-fixed`) registering `rows` residents.
pub fn resident_file(rows: u64) -> Result<Vec<u8>, BenchError> {
    const KANA: [&str; 4] = [
        "サトウ　ハナコ",
        "スズキ　タロウ",
        "タカハシ　ユイ",
        "タナカ　ソウタ",
    ];
    const NAME: [&str; 4] = ["佐藤　花子", "鈴木　太郎", "高橋　結衣", "田中　颯太"];
    let l = Layout::builtin("resident-fixed")
        .map_err(|_| BenchError::Init("the built-in resident-fixed layout".into()))?;
    let mut w = LayoutWriter::new(&l, Vec::with_capacity(rows as usize * (l.line_len + 2)));
    for i in 0..rows {
        let mut r = Record::new(&l);
        r.set("change_kind", "register");
        r.set("business_number", format!("B{i:09}"));
        r.set("individual_number", generated_number(i));
        r.set("name", NAME[(i % 4) as usize]);
        r.set("kana", KANA[(i % 4) as usize]);
        r.set(
            "birth_date",
            format!("{}-{:02}-{:02}", 2008 + i % 18, 1 + i % 12, 1 + i % 28),
        );
        r.set("sex", if i % 2 == 0 { "1" } else { "2" });
        r.set(
            "address",
            format!("北海道札幌市中央区北{}条西{}丁目", 1 + i % 20, 1 + i % 30),
        );
        r.set("change_date", "2026-04-01");
        w.write(&r)
            .map_err(|_| BenchError::Init("a generated resident line".into()))?;
    }
    Ok(w.into_inner())
}

/// A resident file of `rows` new residents, from upload to the import's answer.
pub async fn import(d: &Deployment, base: &str, rows: u64) -> Result<Bulk, BenchError> {
    let file = resident_file(rows)?;
    let feed = client(d, CLIENT_FEED)?;
    let started = Instant::now();
    let r = feed
        .send(
            hyper::Method::POST,
            &format!("{base}/v1/persons:import?layout=resident-fixed"),
            &[("content-type", "application/octet-stream")],
            Bytes::from(file),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    if r.status != 200 {
        return Err(BenchError::Refused {
            what: "the resident import",
            status: r.status.as_u16(),
        });
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    if v["persons_created"].as_u64() != Some(rows) {
        return Err(BenchError::Init(format!(
            "the import created {} of {rows} residents",
            v["persons_created"]
        )));
    }
    Ok(Bulk { lines: rows, secs })
}
