//! Import benchmark (ignored by default): generates fixed-width Shift_JIS resident files of
//! 100,000 and 300,000 persons, imports each into a fresh gateway over HTTPS and reports rows
//! per second and the gateway's peak memory (VmHWM from /proc/<pid>/status).
//!
//! `cargo test --release -p renkei --test registry_bench -- --ignored --nocapture`
//! (`RENKEI_BENCH_ROWS=300000` runs one size only).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Deployment;
use renkei::dev::init::CLIENT_FEED;
use renkei_convert::{Layout, LayoutWriter, Record};

/// The aim stated in the issue for 300,000 persons on the 2-core machine.
const AIM: Duration = Duration::from_secs(15);

fn number(i: u64) -> String {
    let first = format!("{:011}", 30_000_000_000u64 + i);
    let mut d = [0u8; 11];
    for (k, b) in first.bytes().enumerate() {
        d[k] = b - b'0';
    }
    format!("{first}{}", renkei_ids::individual_number_check_digit(&d))
}

fn generate(rows: u64) -> Vec<u8> {
    let l = Layout::builtin("resident-fixed").expect("layout");
    let mut w = LayoutWriter::new(&l, Vec::with_capacity(rows as usize * (l.line_len + 2)));
    const KANA: [&str; 4] = [
        "サトウ　ハナコ",
        "スズキ　タロウ",
        "タカハシ　ユイ",
        "タナカ　ソウタ",
    ];
    const NAME: [&str; 4] = ["佐藤　花子", "鈴木　太郎", "高橋　結衣", "田中　颯太"];
    for i in 0..rows {
        let mut r = Record::new(&l);
        r.set("change_kind", "register");
        r.set("business_number", format!("B{i:09}"));
        r.set("individual_number", number(i));
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
        w.write(&r).expect("line");
    }
    w.into_inner()
}

/// The gateway process of deployment `d` (its command line names d's renkei.toml).
fn gateway_pid(d: &Deployment) -> Option<u32> {
    let cfg = d.dir.join("renkei.toml").display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains("serve") && cmd.contains(&cfg)).then_some(pid)
    })
}

/// CPU seconds (user + system) the process has used: under other load the wall time says
/// little, the CPU time says what the import costs.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of CPU; run with --ignored --nocapture"]
async fn import_300k_fixed_width() {
    let sizes: Vec<u64> = match std::env::var("RENKEI_BENCH_ROWS") {
        Ok(v) => vec![v.parse().expect("RENKEI_BENCH_ROWS")],
        Err(_) => vec![100_000, 300_000],
    };
    for rows in sizes {
        let t = Instant::now();
        let file = generate(rows);
        let mib = file.len() as f64 / (1024.0 * 1024.0);
        println!("generated {rows} rows, {mib:.1} MiB in {:?}", t.elapsed());
        let mut d = Deployment::new();
        d.start().await;
        let pid = gateway_pid(&d).expect("gateway pid");
        let before = status_kib(pid, "VmHWM:");
        // The harness client gives up after 15 s; a slow run must still report its figure.
        let cdir = d.dir.join("clients").join(CLIENT_FEED);
        let client = renkei::tls::HttpsClient::new(
            &d.dir.join("ca.pem"),
            &cdir.join("cert.pem"),
            &cdir.join("key.pem"),
            Duration::from_secs(600),
        )
        .expect("client");
        let url = format!(
            "https://{}/v1/persons:import?layout=resident-fixed",
            d.gw_addr.expect("gateway")
        );
        let cpu0 = cpu_secs(pid);
        let t = Instant::now();
        let resp = client
            .send(
                hyper::Method::POST,
                &url,
                &[("content-type", "application/octet-stream")],
                Bytes::from(file),
            )
            .await
            .expect("import");
        let took = t.elapsed();
        let cpu = cpu_secs(pid) - cpu0;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let r = common::Reply {
            status: resp.status.as_u16(),
            body,
            raw: resp.body,
        };
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["persons_created"], rows, "{}", r.body);
        assert_eq!(r.body["rejected_count"], 0, "{}", r.body);
        let peak = status_kib(pid, "VmHWM:");
        println!(
            "BENCH rows={rows} seconds={:.2} rows_per_sec={:.0} commits={} gateway_VmHWM_KiB={peak} (before import {before}) file_MiB={mib:.1}",
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64(),
            r.body["commits"],
        );
        println!("BENCH timing {}", r.body["timing"]);
        println!(
            "BENCH gateway_cpu_seconds={cpu:.1} ({:.0} rows per CPU-second) loadavg {}",
            rows as f64 / cpu.max(0.001),
            load.trim()
        );
        if rows >= 300_000 && took > AIM {
            println!("NOTE: above the {AIM:?} aim");
        }
    }
}
