//! The bench's load: the subsidy system's clients (each its own mutual-TLS connection), the
//! closed-loop and open-loop accept phases, and the end-to-end drain, with latency
//! percentiles.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::procs::{Deployment, Ops, REQUEST_TIMEOUT};
use super::{BenchError, Plan};
use crate::dev::demo::{sample_number, SAMPLES};
use crate::dev::init::{CLIENT_SUBSIDY, ITEM_LOCAL_TAX, PROC_LOCAL_TAX};
use crate::tls::HttpsClient;

/// How often the drain looks at the gateway's counts.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Makes the subsidy system's clients.
pub struct Clients {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Clients {
    pub fn new(d: &Deployment) -> Clients {
        let c = d.client(CLIENT_SUBSIDY);
        Clients {
            ca: d.dir.join("ca.pem"),
            cert: c.join("cert.pem"),
            key: c.join("key.pem"),
        }
    }

    /// A client with a pool of its own (so, its own connection).
    pub fn make(&self) -> Result<HttpsClient, BenchError> {
        Ok(HttpsClient::new(
            &self.ca,
            &self.cert,
            &self.key,
            REQUEST_TIMEOUT,
        )?)
    }

    /// `n` clients, each connected (handshake done) before a phase's clock starts.
    pub async fn connect(&self, base: &str, n: usize) -> Result<Vec<HttpsClient>, BenchError> {
        let mut made = Vec::with_capacity(n);
        for _ in 0..n {
            let c = self.make()?;
            let _ = c
                .send(
                    hyper::Method::GET,
                    &format!("{base}/healthz"),
                    &[],
                    Bytes::new(),
                )
                .await;
            made.push(c);
        }
        Ok(made)
    }
}

/// Links the sample residents as the subsidy system.
pub async fn link_samples(clients: &Clients, base: &str) -> Result<(), BenchError> {
    let c = clients.make()?;
    for s in &SAMPLES {
        let Some(n) = sample_number(s) else {
            return Err(BenchError::Init("a sample's number".into()));
        };
        let body = serde_json::json!({"individual_number": n.expose_digits(), "name": s.name,
            "kana": s.kana, "birth_date": s.birth_date, "sex": s.sex, "address": s.address});
        let r = c
            .send(
                hyper::Method::PUT,
                &format!("{base}/v1/persons/{}", s.business_number),
                &[("content-type", "application/json")],
                Bytes::from(body.to_string()),
            )
            .await?;
        if !r.status.is_success() {
            return Err(BenchError::Refused {
                what: "linking a sample resident",
                status: r.status.as_u16(),
            });
        }
    }
    Ok(())
}

fn inquiry_body(i: usize) -> Bytes {
    let s = &SAMPLES[i % SAMPLES.len()];
    Bytes::from(
        serde_json::json!({"business_number": s.business_number, "procedure": PROC_LOCAL_TAX,
            "item": ITEM_LOCAL_TAX, "conditions": {"fiscal_year": 2026}})
        .to_string(),
    )
}

/// Sends one inquiry; true when it was durably accepted (202).
async fn submit(client: &HttpsClient, base: &str, key: &str, body: Bytes) -> bool {
    client
        .send(
            hyper::Method::POST,
            &format!("{base}/v1/inquiries"),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            body,
        )
        .await
        .is_ok_and(|r| r.status.as_u16() == 202)
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From latencies in microseconds.
    fn of(mut us: Vec<u64>) -> Latency {
        us.sort_unstable();
        let at = |p: f64| {
            if us.is_empty() {
                return 0.0;
            }
            let idx = ((us.len() as f64 - 1.0) * p).round() as usize;
            us[idx.min(us.len() - 1)] as f64 / 1000.0
        };
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

/// What one accept phase measured.
#[derive(Debug, Clone)]
pub struct Phase {
    pub accepted: u64,
    pub errors: u64,
    pub secs: f64,
    /// Accepts per second.
    pub rate: f64,
    pub latency: Latency,
}

/// Collects the tasks' latencies into a phase.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    started: Instant,
    errors: &AtomicU64,
) -> Result<Phase, BenchError> {
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let accepted = lat.len() as u64;
    Ok(Phase {
        accepted,
        errors: errors.load(Ordering::Relaxed),
        secs,
        rate: accepted as f64 / secs.max(f64::MIN_POSITIVE),
        latency: Latency::of(lat),
    })
}

/// Closed loop: `plan.clients` clients, each sending its next inquiry when the last is
/// answered, for `plan.seconds` (or until `plan.max_accepts`).
pub async fn closed_loop(
    clients: &Clients,
    base: &str,
    plan: &Plan,
    round: usize,
) -> Result<Phase, BenchError> {
    let errors = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let max = plan.max_accepts.unwrap_or(u64::MAX);
    let made = clients.connect(base, plan.clients).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(plan.seconds);
    let mut tasks = Vec::with_capacity(plan.clients);
    for (c, client) in made.into_iter().enumerate() {
        let (base, errors, accepted) = (base.to_string(), errors.clone(), accepted.clone());
        let body = inquiry_body(c);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline && accepted.load(Ordering::Relaxed) < max {
                let key = format!("closed-{round}-{c}-{i}");
                i += 1;
                let t = Instant::now();
                if submit(&client, &base, &key, body.clone()).await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    finish(tasks, started, &errors).await
}

/// Open loop: request `i` is due at `start + i / rate`, on connection `i mod C`; its latency
/// runs from when it was due, so time spent waiting behind a slow answer counts.
pub async fn open_loop(clients: &Clients, base: &str, plan: &Plan) -> Result<Phase, BenchError> {
    let errors = Arc::new(AtomicU64::new(0));
    let conns = plan.open_connections;
    let total = u64::from(plan.open_rate) * plan.seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(plan.open_rate));
    let made = clients.connect(base, conns).await?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for (c, client) in made.into_iter().enumerate() {
        let (base, errors) = (base.to_string(), errors.clone());
        let body = inquiry_body(c);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c as u64;
            while i < total {
                let due = started + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                if submit(&client, &base, &format!("open-{i}"), body.clone()).await {
                    lat.push(due.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                i += conns as u64;
            }
            lat
        }));
    }
    finish(tasks, started, &errors).await
}

/// What the drain measured.
#[derive(Debug, Clone)]
pub struct Drain {
    /// Inquiries answered (or failed) while draining.
    pub answered: u64,
    pub secs: f64,
    pub rate: f64,
    /// False when `limit` passed with inquiries still pending.
    pub complete: bool,
}

/// Waits until nothing is pending; the rate is what finished over the time from the first
/// finished inquiry (the platform's "closed" pause ends within its Retry-After) to the last.
pub async fn drain(ops: &Ops, limit: Duration) -> Result<Drain, BenchError> {
    let first = ops.counts().await?;
    let done = |c: &super::procs::Counts| c.answered + c.failed;
    let begun = Instant::now();
    let mut moving: Option<(Instant, u64)> = None;
    loop {
        tokio::time::sleep(DRAIN_POLL).await;
        let c = ops.counts().await?;
        let finished = done(&c).saturating_sub(done(&first));
        if moving.is_none() && finished > 0 {
            moving = Some((Instant::now(), finished));
        }
        let complete = c.pending == 0;
        if complete || begun.elapsed() > limit {
            let (since, at_start) = moving.unwrap_or((begun, 0));
            let secs = since.elapsed().as_secs_f64().max(DRAIN_POLL.as_secs_f64());
            let counted = finished.saturating_sub(at_start);
            return Ok(Drain {
                answered: finished,
                secs,
                rate: counted as f64 / secs,
                complete,
            });
        }
    }
}
