//! Memory bounded by design: four large batch uploads at once are spooled to disk as they
//! arrive and read back line by line, so the gateway's peak resident memory stays far below
//! the files' total; a system with two batches in progress is told to wait (429
//! `too_many_batches`) for a third; spool files are gone once the batches are accepted.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{wait_until, Api, Deployment};
use renkei::dev::batch_file::generate_batch_file;
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};

/// Size of each upload: four of them are ~140 MB in all, more than the memory bound.
const FILE_BYTES: usize = 35 * 1024 * 1024;
/// The promise: peak resident memory of the gateway process.
const MAX_RSS_MIB: u64 = 300;

/// A file of about [`FILE_BYTES`] whose lines name business numbers no one linked (every
/// line is read, checked and rejected: acceptance is quick, the upload is the point);
/// `tag` makes each file, and so each batch, distinct.
fn big_file(tag: usize) -> Bytes {
    let a = format!("{:015}", 900_000_000 + tag * 2);
    let b = format!("{:015}", 900_000_001 + tag * 2);
    let line = generate_batch_file(1, &[&a]).len();
    Bytes::from(generate_batch_file(FILE_BYTES / line, &[&a, &b]))
}

/// Status, body, `Retry-After` and whether the answer closes the connection.
async fn upload(api: &Api, file: Bytes) -> (u16, serde_json::Value, Option<u64>, bool) {
    let url = format!("{}/v1/inquiries:batch", api.base);
    let r = api
        .client
        .send(
            hyper::Method::POST,
            &url,
            &[("content-type", "text/plain")],
            file,
        )
        .await
        .expect("upload");
    let retry = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let closes = r
        .headers
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or_default(),
        retry,
        closes,
    )
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_uploads_stay_within_memory_and_the_per_system_cap() {
    let mut d = Deployment::new();
    d.start().await;
    d.sim_mode("closed", 0).await;
    let pid = d.gateway_pid().expect("gateway pid");
    let before = peak_rss_mib(pid);
    let clients = [
        d.client(CLIENT_SUBSIDY),
        d.client(CLIENT_SUBSIDY),
        d.client(CLIENT_SECOND),
        d.client(CLIENT_SECOND),
    ];
    let mut uploads = Vec::new();
    for (i, api) in clients.iter().enumerate() {
        let api = api.clone();
        let file = big_file(i);
        uploads.push(tokio::spawn(async move { upload(&api, file).await }));
    }
    let mut ids = Vec::new();
    for u in uploads {
        let (status, body, _, _) = u.await.expect("upload task");
        assert_eq!(status, 202, "upload: {body}");
        ids.push(body["id"].as_str().expect("batch id").to_string());
    }

    // kokuho's two batches are being accepted: a third waits.
    let third = big_file(9).slice(..FILE_BYTES / 100);
    let (status, body, retry, closes) = upload(&clients[2], third.clone()).await;
    assert_eq!(status, 429, "third concurrent batch: {body}");
    assert_eq!(body["code"], "too_many_batches", "{body}");
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After: {retry:?}");
    // Refused before its body was read: the connection cannot be reused, and says so.
    assert!(closes, "a refused upload's answer closes the connection");

    for (i, id) in ids.iter().enumerate() {
        let api = &clients[i];
        wait_until(
            Duration::from_secs(80),
            &format!("batch {i} is accepted"),
            || async {
                let r = api.get(&format!("/v1/batches/{id}")).await;
                r.body["status"] == "accepted"
            },
        )
        .await;
    }
    let peak = peak_rss_mib(pid);
    println!(
        "gateway peak RSS (VmHWM): {before} MiB after start, {peak} MiB after four concurrent {} MiB uploads were received and accepted",
        FILE_BYTES / (1024 * 1024)
    );
    assert!(
        peak < MAX_RSS_MIB,
        "peak RSS {peak} MiB, promised under {MAX_RSS_MIB} MiB"
    );
    let spool = d.dir.join("gateway/data/spool");
    // The acceptance task removes its file right after saving the final state.
    wait_until(
        Duration::from_secs(5),
        "the spool folder is empty",
        || async { std::fs::read_dir(&spool).expect("spool folder").count() == 0 },
    )
    .await;

    // With kokuho's batches done, the third is taken.
    let (status, body, _, closes) = upload(&clients[2], third).await;
    assert!(!closes, "an upload read whole keeps its connection");
    assert_eq!(status, 202, "third batch once the others are done: {body}");
}
