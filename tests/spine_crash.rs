//! The crash test: SIGKILL the gateway at random moments under a load of concurrent
//! submitters, restart it on the same deployment each time, and check that nothing accepted
//! was lost and nothing took effect twice at the platform.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{local_tax, public_fund, Api, Deployment, POLL};
use renkei::demo::SAMPLES;
use renkei::init::CLIENT_SUBSIDY;
use tokio::sync::RwLock;

/// Concurrent submitters.
const SUBMITTERS: usize = 16;
/// Gateway kills.
const KILLS: usize = 5;
/// Random delay between restarts and the next kill.
const KILL_DELAY_MS: std::ops::Range<u64> = 150..900;
/// Pause between one submitter's requests (keeps the count of inquiries bounded).
const PACE_MS: std::ops::Range<u64> = 40..120;
/// After the last restart, how long every accepted inquiry has to be answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(40);

/// key → id, for every 202 received.
type Accepted = Arc<Mutex<HashMap<String, String>>>;

async fn submitter(
    task: usize,
    slot: Arc<RwLock<Option<Api>>>,
    stop: Arc<AtomicBool>,
    accepted: Accepted,
    seed: u64,
) -> (usize, usize) {
    let mut rng = fastrand::Rng::with_seed(seed ^ task as u64);
    let mut n = 0usize;
    let mut retries = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("crash-{task}-{n}");
        let s = &SAMPLES[(task + n) % SAMPLES.len()];
        let body = if n % 4 == 3 {
            public_fund(s.business_number)
        } else {
            local_tax(s.business_number)
        };
        // Until acknowledged, retry the SAME key (across restarts).
        loop {
            let api = slot.read().await.clone();
            let Some(api) = api else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            match api.try_submit(&key, &body).await {
                Ok(r) if r.status == 202 => {
                    let id = r.body["id"].as_str().expect("id").to_string();
                    let mut g = accepted.lock().expect("lock");
                    if let Some(prev) = g.insert(key.clone(), id.clone()) {
                        assert_eq!(prev, id, "key {key} answered two ids");
                    }
                    break;
                }
                Ok(r) if r.status >= 500 => {
                    retries += 1;
                    tokio::time::sleep(POLL).await;
                }
                Ok(r) => panic!("key {key}: unexpected {} {}", r.status, r.body),
                Err(_) => {
                    retries += 1;
                    tokio::time::sleep(POLL).await;
                }
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(rng.u64(PACE_MS))).await;
    }
    (n, retries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("crash test seed {seed} (set CRASH_SEED to replay the timing)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;

    let slot = Arc::new(RwLock::new(Some(d.client(CLIENT_SUBSIDY))));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted: Accepted = Arc::default();
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            tokio::spawn(submitter(
                t,
                slot.clone(),
                stop.clone(),
                accepted.clone(),
                seed,
            ))
        })
        .collect();

    let mut before_kill = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.u64(KILL_DELAY_MS))).await;
        before_kill.push(accepted.lock().expect("lock").len());
        d.kill_gateway();
        *slot.write().await = None;
        d.start_gateway().await;
        *slot.write().await = Some(d.client(CLIENT_SUBSIDY));
    }
    tokio::time::sleep(Duration::from_millis(rng.u64(KILL_DELAY_MS))).await;
    stop.store(true, Ordering::SeqCst);
    let mut submitted = 0;
    let mut retries = 0;
    for t in tasks {
        let (n, r) = t.await.expect("submitter");
        submitted += n;
        retries += r;
    }
    let accepted = accepted.lock().expect("lock").clone();
    println!(
        "{} inquiries accepted over {KILLS} kills (accepted before each kill: {before_kill:?}); \
         {retries} retried requests",
        accepted.len()
    );
    assert_eq!(accepted.len(), submitted, "every key was acknowledged once");
    assert!(
        before_kill.windows(2).any(|w| w[1] > w[0]),
        "the load did not run across the kills: {before_kill:?}"
    );
    let ids: HashSet<String> = accepted.values().cloned().collect();
    assert_eq!(ids.len(), accepted.len(), "two keys share an id");

    // Every accepted inquiry gets answered by the last incarnation.
    let api = d.client(CLIENT_SUBSIDY);
    let drain = Instant::now();
    for id in &ids {
        let left = DRAIN_TIMEOUT.saturating_sub(drain.elapsed());
        let v = api.wait_final(id, left.max(POLL)).await;
        assert_eq!(v["status"], "answered", "inquiry {id}: {v}");
    }
    println!(
        "all answered {} ms after the last restart",
        drain.elapsed().as_millis()
    );

    let stats = d.sim_stats().await;
    let effects = stats["effects"].as_object().expect("effects");
    let missing: Vec<&String> = ids.iter().filter(|id| !effects.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "accepted but never took effect: {missing:?}"
    );
    let accepted_at_sim = stats["inquiries_accepted"].as_u64().expect("count");
    assert_eq!(
        accepted_at_sim,
        effects.len() as u64,
        "the platform accepted some record twice: {stats}"
    );
    let foreign: Vec<&String> = effects.keys().filter(|k| !ids.contains(*k)).collect();
    assert!(
        foreign.is_empty(),
        "effects for inquiries no client was told about: {foreign:?}"
    );
    let ops = d.ops_stats().await;
    assert_eq!(
        ops["inquiries"].as_u64(),
        Some(ids.len() as u64),
        "the gateway holds inquiries beyond those acknowledged: {ops}"
    );
    println!(
        "deduped resends at the platform: {}; total {} ms",
        stats["inquiry_resends_deduped"],
        started.elapsed().as_millis()
    );
    assert!(started.elapsed() < Duration::from_secs(90));
}
