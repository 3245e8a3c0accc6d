//! `renkei bench`: measures, on this machine, how many inquiries per second the gateway
//! durably accepts with many mutual-TLS clients (and their latency), and how many it carries
//! end to end through the platform simulator. Real parts throughout: a fresh deployment,
//! the sled store with fsync, TLS on loopback.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{GatewayConfig, SimConfig, SimMode};
use crate::tls::HttpsClient;

/// Clients (each its own TLS connection) for the accept benchmark: the target load.
pub const DEFAULT_CLIENTS: usize = 1000;
/// How long each phase runs.
pub const DEFAULT_SECONDS: u64 = 10;

/// Options of `renkei bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent mutual-TLS clients submitting inquiries.
    #[arg(long, default_value_t = DEFAULT_CLIENTS)]
    pub clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    pub seconds: u64,
    /// Run the end-to-end phase (1) or not (0).
    #[arg(long, default_value_t = 1)]
    pub e2e: usize,
    /// Deployment folder to create (default: a fresh one under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Store durability for the run: fsync (default, the real thing) or flush-only.
    #[arg(long, default_value = "fsync")]
    pub durability: String,
    /// Run on this PostgreSQL database (a libpq url; migrated first) instead of sled, to
    /// compare the two stores on the same machine.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs the benchmark and prints a report.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(crate::util::new_id("renkei-bench-")));
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().map_err(err)?;
    crate::dev::init::init(
        &crate::dev::init::InitOptions {
            dir: dir.clone(),
            listen: any,
            sim_listen: any,
        },
        &crate::dev::demo::seeds(),
    )?;
    crate::app::logging::init(
        crate::config::LogFormat::Text,
        Some(&dir.join("logs/renkei.log")),
    );
    let mut sim_cfg = SimConfig::load(&dir.join("sim.toml")).map_err(err)?;
    sim_cfg.result_delay_ms = 0;
    let (sim, sim_state) = crate::app::start_sim(sim_cfg, None).await.map_err(err)?;
    let mut gw_cfg = GatewayConfig::load(&dir.join("renkei.toml")).map_err(err)?;
    gw_cfg.platform.url = format!("https://{}", sim.addr);
    gw_cfg.platform.poll_interval_ms = 20;
    gw_cfg.durability = match args.durability.as_str() {
        "flush-only" => renkei_store::sled_store::Durability::FlushOnly,
        _ => renkei_store::sled_store::Durability::Fsync,
    };
    if let Some(url) = &args.postgres {
        gw_cfg.store.backend = crate::config::StoreBackend::Postgres;
        gw_cfg.store.url = Some(url.clone());
        crate::app::store::migrate(&gw_cfg).map_err(err)?;
    }
    // The bench measures what the gateway can take, not one client's fair share: its one
    // client (up to 1,000 connections at >10,000 requests a second) is let past `[limits]`.
    if let Some(c) = gw_cfg
        .clients
        .iter_mut()
        .find(|c| c.name.as_str() == crate::dev::init::CLIENT_SUBSIDY)
    {
        c.limits = crate::config::ClientLimits {
            rate_per_sec: Some(u32::MAX / 2),
            burst: Some(u32::MAX / 2),
            max_in_flight: Some(args.clients.max(1) * 2),
        };
    }
    let gw_state = crate::app::build(gw_cfg).map_err(err)?;
    let gw = crate::app::start(&gw_state).await.map_err(err)?;
    let base = format!("https://{}", gw.addr);
    let cdir = dir.join("clients").join(crate::dev::init::CLIENT_SUBSIDY);
    let mk = || {
        HttpsClient::new(
            &dir.join("ca.pem"),
            &cdir.join("cert.pem"),
            &cdir.join("key.pem"),
            Duration::from_secs(60),
        )
        .map_err(err)
    };
    // Link the sample persons.
    let setup = mk()?;
    for s in &crate::dev::demo::SAMPLES {
        let n = crate::dev::demo::sample_number(s).ok_or("sample")?;
        let body = serde_json::json!({"individual_number": n.expose_digits(), "name": s.name, "kana": s.kana,
            "birth_date": s.birth_date, "sex": s.sex, "address": s.address});
        setup
            .send(
                hyper::Method::PUT,
                &format!("{base}/v1/persons/{}", s.business_number),
                &[("content-type", "application/json")],
                Bytes::from(body.to_string()),
            )
            .await
            .map_err(err)?;
    }
    let store = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "sled"
    };
    println!(
        "renkei bench — {} clients, {} s per phase, store {store}, durability {}",
        args.clients, args.seconds, args.durability
    );
    println!("deployment: {}", dir.display());

    // Phase 1: durable accept (with linkage records, as always). The platform is closed so
    // that the gateway only accepts.
    sim_state.set_mode(SimMode::Closed, 0);
    let mk_client = || mk();
    let mut accepted_total = 0u64;
    let mut rates = Vec::new();
    for round in 0..3 {
        let r = accept_phase(&args, &base, round, &gw_state, &mk_client).await?;
        accepted_total += r.0;
        rates.push(r.1);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    // What records cost: the CPU one record takes to build, validate, encode and chain
    // (measured here on one thread), times the accept rate, as a share of both cores. The
    // law requires the records, so the gateway cannot run without them to compare.
    let per_record = record_cost_secs();
    println!(
        "\nrecords cost: {:.1} µs of CPU per record; at the median {:.0} accepts/s that is {:.1} % of the 2 cores",
        per_record * 1e6,
        median,
        per_record * median / 2.0 * 100.0
    );
    let n = accepted_total;
    if args.e2e == 0 {
        gw.stop().await;
        sim.stop().await;
        return Ok(());
    }
    // Phase 2: end to end. Open the platform and time how fast the backlog drains.
    sim_state.set_mode(SimMode::Open, 0);
    gw_state.wake.notify();
    let drain_start = Instant::now();
    wait_drained(&gw_state, Duration::from_secs(600)).await;
    let drained = drain_start.elapsed().as_secs_f64();
    println!("\nend to end (sign, seal, platform receipt, result fetch, open, verify, record):");
    println!(
        "  backlog of {} drained in {:.1} s: {:.0} inquiries/s",
        n,
        drained,
        n as f64 / drained.max(0.001)
    );
    println!(
        "  peak memory (this process: gateway + simulator + clients): {:.0} MiB",
        peak_rss_mib()
    );
    gw.stop().await;
    sim.stop().await;
    Ok(())
}

/// Seconds of CPU one inquiry's "queued" record takes: built, validated, canonically encoded
/// and appended to a hash chain (the work the store's writer does per record).
fn record_cost_secs() -> f64 {
    const N: u32 = 20_000;
    let mut chain = renkei_records::ChainState::new();
    let start = Instant::now();
    for i in 0..N {
        let mut r = crate::records::base(
            renkei_records::RecordKind::Inquiry,
            renkei_records::RecordResult::Accepted,
        );
        r.reason = Some("queued".into());
        r.reference = Some(format!("IQ{i:026}"));
        // What `records::append` does (validate and encode), then the writer's chain step.
        if let Ok(bytes) = renkei_records::checked_canonical_bytes(&r) {
            chain.append(&bytes);
        }
    }
    start.elapsed().as_secs_f64() / f64::from(N)
}

async fn wait_drained(gw: &crate::app::Gateway, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        let due = gw.store.len(renkei_store::Tree::Due).unwrap_or(0);
        if due == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One accept phase: returns (accepted, inquiries per second).
async fn accept_phase(
    args: &BenchArgs,
    base: &str,
    round: usize,
    gw_state: &crate::app::Gateway,
    mk: &dyn Fn() -> Result<HttpsClient, String>,
) -> Result<(u64, f64), String> {
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let seconds = args.seconds.max(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let groups_before = gw_state.store.stats();
    let start = Instant::now();
    for c in 0..args.clients {
        let client = mk()?;
        let base = base.to_string();
        let accepted = accepted.clone();
        let errors = errors.clone();
        let s = &crate::dev::demo::SAMPLES[c % crate::dev::demo::SAMPLES.len()];
        let body = Bytes::from(
            serde_json::json!({"business_number": s.business_number, "procedure": crate::dev::init::PROC_LOCAL_TAX,
                "item": crate::dev::init::ITEM_LOCAL_TAX, "conditions": {"fiscal_year": 2026}})
            .to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let key = format!("bench-{round}-{c}-{i}");
                i += 1;
                let t = Instant::now();
                match client
                    .send(
                        hyper::Method::POST,
                        &format!("{base}/v1/inquiries"),
                        &[
                            ("content-type", "application/json"),
                            ("idempotency-key", &key),
                        ],
                        body.clone(),
                    )
                    .await
                {
                    Ok(r) if r.status.as_u16() == 202 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat: Vec<u64> = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(err)?);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let n = accepted.load(Ordering::Relaxed);
    let groups = gw_state.store.stats();
    let rate = n as f64 / secs;
    println!(
        "\naccept round {}, durable (fsync per group commit), with records:",
        round + 1
    );
    println!(
        "  {:>8.0} inquiries/s   ({} accepted in {:.1} s, {} errors)",
        rate,
        n,
        secs,
        errors.load(Ordering::Relaxed)
    );
    println!(
        "  latency p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(&lat, 0.50) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    let g = groups.groups.saturating_sub(groups_before.groups).max(1);
    let b = groups.batches.saturating_sub(groups_before.batches);
    println!(
        "  group commit: {} batches in {} groups ({:.1} per fsync)",
        b,
        g,
        b as f64 / g as f64
    );
    Ok((n, rate))
}
