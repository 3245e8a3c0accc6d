//! `renkei demo`: the whole thing on one machine in one command. It makes a fresh
//! deployment folder, starts the platform simulator and the gateway on loopback (real
//! mutual TLS, real sled store), registers sample residents as the child medical subsidy
//! system would, submits sample inquiries, shows each one go queued → sent → answered with
//! its converted result, then keeps serving and prints a ready-to-paste `curl` line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use renkei_ids::{individual_number_check_digit, IndividualNumber};

use crate::config::{GatewayConfig, SimConfig};
use crate::dev::init::{self, InitOptions, SeedResident};
use crate::tls::HttpsClient;

/// Where the demo puts its deployment unless told otherwise.
pub const DEFAULT_DEMO_DIR: &str = "renkei-demo";
/// A file that marks a folder as made by the demo (so it may be replaced).
const DEMO_MARKER: &str = ".renkei-demo";
/// How long the demo waits for its inquiries before giving up.
const FLOW_TIMEOUT: Duration = Duration::from_secs(60);

/// A sample resident: business number, name, kana, birth date, sex, address.
pub struct Sample {
    pub business_number: &'static str,
    pub serial11: &'static str,
    pub name: &'static str,
    pub kana: &'static str,
    pub birth_date: &'static str,
    pub sex: &'static str,
    pub address: &'static str,
}

/// The demo's residents. Their individual numbers are made from `serial11` plus the check
/// digit, so none is written out anywhere in the source.
pub const SAMPLES: [Sample; 3] = [
    Sample {
        business_number: "000000000012345",
        serial11: "31415926535",
        name: "札幌 花子",
        kana: "サッポロ ハナコ",
        birth_date: "2019-06-01",
        sex: "2",
        address: "北海道札幌市中央区北1条西2丁目",
    },
    Sample {
        business_number: "000000000012346",
        serial11: "27182818284",
        name: "札幌 太郎",
        kana: "サッポロ タロウ",
        birth_date: "2021-02-14",
        sex: "1",
        address: "北海道札幌市北区北8条西5丁目",
    },
    Sample {
        business_number: "000000000012347",
        serial11: "16180339887",
        name: "石狩 一郎",
        kana: "イシカリ イチロウ",
        birth_date: "2016-11-03",
        sex: "1",
        address: "北海道札幌市豊平区平岸3条",
    },
];

/// The individual number of a sample (valid check digit).
pub fn sample_number(s: &Sample) -> Option<IndividualNumber> {
    let mut d = [0u8; 11];
    for (i, b) in s.serial11.bytes().enumerate().take(11) {
        d[i] = b.wrapping_sub(b'0');
    }
    let check = individual_number_check_digit(&d);
    IndividualNumber::parse(&format!("{}{}", s.serial11, check)).ok()
}

/// Seeds for the simulator: the first sample has explicit local-tax figures for FY2026.
pub fn seeds() -> Vec<SeedResident> {
    SAMPLES
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let n = sample_number(s)?;
            let data = if i == 0 {
                vec![(
                    init::ITEM_LOCAL_TAX,
                    "2026".to_string(),
                    vec![
                        ("市町村民税均等割額".to_string(), "3500".to_string()),
                        ("市町村民税所得割額".to_string(), "123400".to_string()),
                    ],
                )]
            } else {
                Vec::new()
            };
            Some(SeedResident {
                individual_number: n,
                data,
            })
        })
        .collect()
}

/// Options of `renkei demo`.
pub struct DemoOptions {
    pub dir: PathBuf,
    /// Exit after the sample flow instead of serving until Ctrl-C.
    pub exit_after_flow: bool,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} exists and was not made by the demo; choose another --dir")]
    NotADemoFolder(PathBuf),
    #[error(transparent)]
    Init(#[from] super::init::InitError),
    #[error("inquiry refused: {0}")]
    Refused(serde_json::Value),
    #[error("inquiries did not finish within a minute")]
    Unfinished,
    #[error("the sample residents' individual numbers do not parse")]
    SampleNumber,
    /// A step failed: files, TLS, the gateway or the simulator.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

fn err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> DemoError {
    DemoError::Failed(e.into())
}

async fn free_or_ephemeral(preferred: &str) -> SocketAddr {
    let fallback: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let Ok(addr) = preferred.parse::<SocketAddr>() else {
        return fallback;
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(_) => addr,
        Err(_) => {
            // Taken (another demo?): use a free port instead of failing.
            match tokio::net::TcpListener::bind(fallback).await {
                Ok(l) => l.local_addr().unwrap_or(fallback),
                Err(_) => fallback,
            }
        }
    }
}

fn prepare_dir(dir: &Path) -> Result<(), DemoError> {
    if dir.exists() {
        if dir.join(DEMO_MARKER).exists() {
            std::fs::remove_dir_all(dir).map_err(err)?;
        } else if std::fs::read_dir(dir).map_err(err)?.next().is_some() {
            return Err(DemoError::NotADemoFolder(dir.to_path_buf()));
        }
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        b"made by renkei demo; safe to delete\n",
    )
    .map_err(err)
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let dir = &opts.dir;
    prepare_dir(dir)?;
    let listen = free_or_ephemeral(crate::config::DEFAULT_LISTEN).await;
    let sim_listen = free_or_ephemeral(crate::config::DEFAULT_SIM_LISTEN).await;
    println!(
        "renkei demo — the gateway between a city's business systems and the national platform\n"
    );
    println!("1. Making a deployment folder in {}/", dir.display());
    init::init(
        &InitOptions {
            dir: dir.clone(),
            listen,
            sim_listen,
        },
        &seeds(),
    )?;
    println!(
        "   development CA, server and client certificates, both sides' signing and sealing keys"
    );
    crate::app::logging::init(
        crate::config::LogFormat::Text,
        Some(&dir.join("logs/renkei.log")),
    );

    let sim_cfg = SimConfig::load(&dir.join("sim.toml")).map_err(err)?;
    let (sim, _sim_state) = crate::app::start_sim(sim_cfg, None).await.map_err(err)?;
    let mut gw_cfg = GatewayConfig::load(&dir.join("renkei.toml")).map_err(err)?;
    gw_cfg.platform.url = format!("https://{}", sim.addr);
    let gw_state = crate::app::build(gw_cfg).map_err(err)?;
    let gw = crate::app::start(&gw_state).await.map_err(err)?;
    println!(
        "2. Platform simulator on https://{} and gateway on https://{} (mutual TLS)",
        sim.addr, gw.addr
    );
    println!("   logs: {}/logs/renkei.log\n", dir.display());

    let client_dir = dir.join("clients").join(init::CLIENT_SUBSIDY);
    let client = HttpsClient::new(
        &dir.join("ca.pem"),
        &client_dir.join("cert.pem"),
        &client_dir.join("key.pem"),
        Duration::from_secs(30),
    )
    .map_err(err)?;
    let base = format!("https://{}", gw.addr);
    let flow = sample_flow(&client, &base).await;
    if let Err(e) = &flow {
        println!("\nThe sample flow did not complete: {e}");
    }
    let curl = format!(
        "curl --cacert {d}/ca.pem --cert {c}/cert.pem --key {c}/key.pem \\\n  -H 'Content-Type: application/json' -H \"Idempotency-Key: $(date +%s%N)\" \\\n  -d '{{\"business_number\":\"{bn}\",\"procedure\":\"{p}\",\"item\":\"{i}\",\"conditions\":{{\"fiscal_year\":2026}}}}' \\\n  {base}/v1/inquiries",
        d = dir.display(),
        c = client_dir.display(),
        bn = SAMPLES[1].business_number,
        p = init::PROC_LOCAL_TAX,
        i = init::ITEM_LOCAL_TAX,
    );
    println!("\nSubmit another inquiry yourself (as the subsidy system):\n\n{curl}\n");
    println!(
        "and read it back with: curl --cacert {d}/ca.pem --cert {c}/cert.pem --key {c}/key.pem {base}/v1/inquiries/<id>\n",
        d = dir.display(),
        c = client_dir.display()
    );
    if !opts.exit_after_flow {
        println!("Serving. Press Ctrl-C to stop.");
        crate::app::wait_for_signal().await;
        println!("Stopping…");
    }
    gw.stop().await;
    sim.stop().await;
    flow
}

async fn call(
    client: &HttpsClient,
    method: hyper::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> Result<(u16, serde_json::Value), DemoError> {
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(serde_json::to_vec(&body).map_err(err)?)
    };
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    let r = client.send(method, url, &h, bytes).await.map_err(err)?;
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    Ok((r.status.as_u16(), v))
}

async fn sample_flow(client: &HttpsClient, base: &str) -> Result<(), DemoError> {
    println!("3. The subsidy system (kodomo-iryo) links its recipients: PUT /v1/persons/{{business_number}}");
    for s in &SAMPLES {
        let n = sample_number(s).ok_or(DemoError::SampleNumber)?;
        let body = serde_json::json!({
            "individual_number": n.expose_digits(),
            "name": s.name, "kana": s.kana, "birth_date": s.birth_date,
            "sex": s.sex, "address": s.address,
        });
        let (status, v) = call(
            client,
            hyper::Method::PUT,
            &format!("{base}/v1/persons/{}", s.business_number),
            &[],
            body,
        )
        .await?;
        println!(
            "   {} → HTTP {status}: unified address number {}, code {}",
            s.business_number,
            v["unified_address_number"].as_str().unwrap_or("?"),
            v["code_status"].as_str().unwrap_or("?")
        );
    }
    println!(
        "   (the individual number went to the platform only sealed, in the code acquisition)\n"
    );

    println!("4. It submits inquiries: POST /v1/inquiries (202 once durable)");
    let asks = [
        (
            SAMPLES[0].business_number,
            init::PROC_LOCAL_TAX,
            init::ITEM_LOCAL_TAX,
            "local tax FY2026 (income screening)",
        ),
        (
            SAMPLES[1].business_number,
            init::PROC_LOCAL_TAX,
            init::ITEM_LOCAL_TAX,
            "local tax FY2026",
        ),
        (
            SAMPLES[2].business_number,
            init::PROC_PUBLIC_FUND,
            init::ITEM_PUBLIC_FUND,
            "public-fund receipt account",
        ),
    ];
    let mut ids = Vec::new();
    for (i, (bn, p, item, what)) in asks.iter().enumerate() {
        let key = format!("demo-{i}-{}", crate::util::now_ms());
        let (status, v) = call(
            client,
            hyper::Method::POST,
            &format!("{base}/v1/inquiries"),
            &[("idempotency-key", &key)],
            serde_json::json!({"business_number": bn, "procedure": p, "item": item, "conditions": {"fiscal_year": 2026}}),
        )
        .await?;
        let id = v["id"].as_str().unwrap_or_default().to_string();
        println!(
            "   {what} for {bn} → HTTP {status} id {id} ({})",
            v["status"].as_str().unwrap_or("?")
        );
        if status != 202 {
            return Err(DemoError::Refused(v));
        }
        ids.push(id);
    }
    let (status, v) = call(
        client,
        hyper::Method::POST,
        &format!("{base}/v1/inquiries"),
        &[("idempotency-key", "demo-denied")],
        serde_json::json!({"business_number": SAMPLES[0].business_number, "procedure": "JT09999999999999", "item": "TM09999999999999", "conditions": {"fiscal_year": 2026}}),
    )
    .await?;
    println!(
        "   an item the law does not permit this system → HTTP {status} {}\n",
        v["code"].as_str().unwrap_or("?")
    );

    println!("5. Following each inquiry: GET /v1/inquiries/{{id}}");
    let start = Instant::now();
    let mut last: Vec<String> = vec![String::new(); ids.len()];
    let mut done = vec![false; ids.len()];
    while done.iter().any(|d| !d) {
        if start.elapsed() > FLOW_TIMEOUT {
            return Err(DemoError::Unfinished);
        }
        for (i, id) in ids.iter().enumerate() {
            if done[i] {
                continue;
            }
            let (_, v) = call(
                client,
                hyper::Method::GET,
                &format!("{base}/v1/inquiries/{id}"),
                &[],
                serde_json::Value::Null,
            )
            .await?;
            let status = v["status"].as_str().unwrap_or("?").to_string();
            if status != last[i] {
                println!("   {id}: {status}");
                last[i] = status.clone();
            }
            if status == "answered" || status == "failed" {
                done[i] = true;
                if let Some(items) = v["result"]["items"].as_array() {
                    for it in items {
                        let fields = it["fields"]
                            .as_array()
                            .map(|f| {
                                f.iter()
                                    .map(|p| {
                                        format!(
                                            "{}={}",
                                            p[0].as_str().unwrap_or(""),
                                            p[1].as_str().unwrap_or("")
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default();
                        println!(
                            "      result {}: {fields}",
                            it["item"].as_str().unwrap_or("?")
                        );
                    }
                }
                if status == "failed" {
                    println!("      error: {}", v["error"]);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "\n   All sample inquiries finished in {} ms.",
        start.elapsed().as_millis()
    );
    Ok(())
}
