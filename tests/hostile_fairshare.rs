//! One business system bursting cannot starve its neighbour: with `[limits]` set tight,
//! kodomo-iryo hammering the gateway from many concurrent requests gets 429s with
//! `Retry-After`, while kokuho's quiet requests keep their latency (p99 within twice the
//! quiet p99, plus a small absolute allowance for this shared two-core machine).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{link_body, local_tax, Api, Deployment};
use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};

/// Requests the quiet client times in each phase.
const SAMPLES: usize = 200;
/// Pause between the quiet client's requests: about 60 a second, under its own rate.
const QUIET_GAP: Duration = Duration::from_millis(15);
/// Concurrent requesters of the bursting client (four times its in-flight cap).
const BURSTERS: usize = 16;
/// Absolute allowance on top of twice the quiet p99: the machine's two cores are shared
/// with the test's own TLS clients (the bursters and the quiet one) and with other builds,
/// so a quiet p99 of a millisecond or two can move by some milliseconds from scheduling
/// alone, unrelated to the gateway's fairness.
const NOISE_FLOOR: Duration = Duration::from_millis(25);

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * 0.99).round() as usize]
}

/// Times `SAMPLES` sequential cheap requests on a thread and runtime of their own, so that
/// the bursters' tasks in this test's runtime do not queue ahead of the quiet client's.
async fn quiet_p99(d: &Deployment, path: &str) -> Duration {
    let (dir, addr, path) = (d.dir.clone(), d.gw_addr.expect("gateway"), path.to_string());
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let api = Api::new(&dir, CLIENT_SECOND, addr);
            quiet_samples(&api, &path).await
        })
    })
    .await
    .expect("quiet client")
}

async fn quiet_samples(api: &Api, path: &str) -> Duration {
    let mut lat = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let r = api.get(path).await;
        lat.push(t.elapsed());
        assert_eq!(r.status, 200, "quiet client refused: {}", r.body);
        tokio::time::sleep(QUIET_GAP).await;
    }
    p99(lat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bursting_client_is_refused_and_its_neighbour_keeps_its_latency() {
    let mut d = Deployment::new();
    d.set_in_table("renkei.toml", "limits", "rate_per_sec", "100");
    d.set_in_table("renkei.toml", "limits", "burst", "20");
    d.set_in_table("renkei.toml", "limits", "max_in_flight", "4");
    d.start().await;
    // Only accepting: nothing dispatched to the platform adds load of its own.
    d.sim_mode("closed", 0).await;
    d.link_samples().await;

    let quiet = d.client(CLIENT_SECOND);
    let bn = renkei::dev::demo::SAMPLES[0].business_number;
    let r = quiet
        .put_json(&format!("/v1/persons/{bn}"), &link_body(0))
        .await;
    assert!(r.status == 200 || r.status == 201, "link: {}", r.body);
    let id = quiet.submit_ok("quiet-1", &local_tax(bn)).await;
    let path = format!("/v1/inquiries/{id}");

    let alone = quiet_p99(&d, &path).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, limited, bad_retry) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let burster = d.client(CLIENT_SUBSIDY);
    let mut tasks = Vec::new();
    let burst_start = Instant::now();
    for w in 0..BURSTERS {
        let (api, stop) = (burster.clone(), stop.clone());
        let (ok, limited, bad_retry) = (ok.clone(), limited.clone(), bad_retry.clone());
        let body =
            Bytes::from(local_tax(renkei::dev::demo::SAMPLES[w % 3].business_number).to_string());
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/v1/inquiries", api.base);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = format!("burst-{w}-{i}");
                let h = [
                    ("content-type", "application/json"),
                    ("idempotency-key", key.as_str()),
                ];
                let Ok(r) = api
                    .client
                    .send(hyper::Method::POST, &url, &h, body.clone())
                    .await
                else {
                    continue;
                };
                match r.status.as_u16() {
                    202 => ok.fetch_add(1, Ordering::Relaxed),
                    429 => {
                        let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                            .ok()
                            .and_then(|v| v["code"].as_str().map(str::to_string))
                            .unwrap_or_default();
                        let retry = r
                            .headers
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        let known = code == "rate_limited" || code == "too_many_in_flight";
                        if !known || retry.is_none_or(|s| s < 1) {
                            bad_retry.fetch_add(1, Ordering::Relaxed);
                        }
                        limited.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("bursting client got {other}"),
                };
            }
        }));
    }
    // Let the burst reach its steady state before timing.
    common::wait_until(Duration::from_secs(10), "the burst is refused", || async {
        limited.load(Ordering::Relaxed) > 100
    })
    .await;
    let under_burst = quiet_p99(&d, &path).await;
    stop.store(true, Ordering::Relaxed);
    let burst_secs = burst_start.elapsed().as_secs_f64();
    for t in tasks {
        t.await.expect("burster");
    }
    let (ok, limited) = (ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
    println!(
        "quiet client p99 alone: {:.2} ms; under a burst from its neighbour: {:.2} ms",
        alone.as_secs_f64() * 1e3,
        under_burst.as_secs_f64() * 1e3
    );
    println!(
        "bursting client: {ok} accepted, {limited} refused with 429 in {burst_secs:.1} s ({:.0} accepted/s)",
        ok as f64 / burst_secs
    );
    assert!(limited > 0, "the bursting client was never refused");
    assert_eq!(
        bad_retry.load(Ordering::Relaxed),
        0,
        "a 429 without a stable code or a Retry-After of at least one second"
    );
    let bound = alone * 2 + NOISE_FLOOR;
    assert!(
        under_burst <= bound,
        "quiet p99 {under_burst:?} under burst exceeds 2 × {alone:?} + {NOISE_FLOOR:?}"
    );
}
