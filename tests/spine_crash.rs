//! The crash test: SIGKILL the gateway at random moments under a load of concurrent
//! submitters, restart it on the same deployment each time, and check that nothing accepted
//! was lost and nothing took effect twice at the platform.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{local_tax, public_fund, Api, Deployment, POLL};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
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
    let phantoms = crash_scenario().await;
    if !phantoms.is_empty() {
        // Checked by `sigkill_never_lets_an_undurable_inquiry_reach_the_platform` (ignored
        // until the bug it names is fixed); reported here so that it is not missed.
        println!(
            "WARNING: {} effects at the platform for inquiries the gateway never acknowledged",
            phantoms.len()
        );
    }
}

/// An inquiry must not reach the platform before it is durable at the gateway: otherwise a
/// crash leaves an effect (and a national inquiry log entry) with no inquiry, no linkage
/// record and no answer at the city, and the client's retry inquires the person again.
/// Intermittent, so the scenario runs several times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_lets_an_undurable_inquiry_reach_the_platform() {
    for round in 0..PHANTOM_ROUNDS {
        let phantoms = crash_scenario().await;
        assert!(
            phantoms.is_empty(),
            "round {round}: effects for inquiries no client was told about and the gateway \
             does not hold: {phantoms:?}"
        );
    }
}

/// Rounds of the crash scenario the phantom-effect test runs.
const PHANTOM_ROUNDS: usize = 4;

/// Runs the load with kills and checks everything but phantom effects; returns the record
/// ids the platform took effect for that no client was told about.
async fn crash_scenario() -> Vec<String> {
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
    let mut open: Vec<String> = ids.iter().cloned().collect();
    let mut last: HashMap<String, String> = HashMap::new();
    let mut checked = 0usize;
    while !open.is_empty() && drain.elapsed() < DRAIN_TIMEOUT {
        let mut still = Vec::new();
        for id in open {
            let r = api.get(&format!("/v1/inquiries/{id}")).await;
            if r.status == 429 {
                // Asked too fast for the fair share: ask again next round.
                last.entry(id.clone())
                    .or_insert_with(|| "rate_limited".into());
                still.push(id);
                continue;
            }
            assert_eq!(r.status, 200, "inquiry {id} lost: {}", r.body);
            let status = r.body["status"].as_str().unwrap_or_default().to_string();
            match status.as_str() {
                "answered" => {
                    // A crash never garbles an answer: sample 0's local tax is its seeded figure.
                    if r.body["business_number"] == SAMPLES[0].business_number
                        && r.body["item"] == renkei::dev::init::ITEM_LOCAL_TAX
                    {
                        assert_eq!(
                            common::result_field(&r.body, "市町村民税所得割額").as_deref(),
                            Some("123400"),
                            "inquiry {id}: {}",
                            r.body
                        );
                        checked += 1;
                    }
                }
                "failed" => panic!("inquiry {id} failed: {}", r.body),
                _ => {
                    last.insert(id.clone(), status);
                    still.push(id);
                }
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(POLL * 5).await;
        }
    }
    if !open.is_empty() {
        let mut by_status: HashMap<&str, usize> = HashMap::new();
        for id in &open {
            *by_status.entry(last[id].as_str()).or_default() += 1;
        }
        let sim_alive = tokio::time::timeout(
            Duration::from_secs(3),
            d.sim_admin()
                .try_send(hyper::Method::GET, "/admin/stats", &[], bytes::Bytes::new()),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let sample: Vec<(&String, &String)> =
            open.iter().take(5).map(|id| (id, &last[id])).collect();
        panic!(
            "{} of {} inquiries not answered {DRAIN_TIMEOUT:?} after the last restart: \
             {by_status:?}, e.g. {sample:?}; the simulator {}",
            open.len(),
            ids.len(),
            if sim_alive {
                "still answers /admin/stats"
            } else {
                "no longer answers /admin/stats (hung)"
            }
        );
    }
    assert!(checked > 0, "no answer of sample 0 was checked");
    println!(
        "all answered {} ms after the last restart ({checked} answers of sample 0 checked)",
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
    let foreign: Vec<String> = effects
        .keys()
        .filter(|k| !ids.contains(*k))
        .cloned()
        .collect();
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
    foreign
}

/// The situation a crash leaves behind, made deterministic: the platform accepted an
/// inquiry but the gateway died before saving the receipt, so it sends the very same message
/// (same message id) again. The platform must answer with the same receipt, count one
/// effect, and keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_answers_a_resent_inquiry_with_the_same_receipt() {
    use renkei_platform::{Condition, Message, ReceiptOutcome, TargetPayload};

    let mut d = Deployment::new();
    d.start().await;
    let unified = d.link_samples().await;
    d.wait_codes(3).await;
    // Take the gateway's place, with its own store and keys.
    d.kill_gateway();
    let cfg = renkei::config::GatewayConfig::load(&d.dir.join("renkei.toml")).expect("config");
    let gw = renkei::app::build(cfg).expect("gateway state");
    let uplink = &gw.uplink;
    let id = "IQRESENDTEST0000000000000001".to_string();
    let target = TargetPayload {
        unified: renkei_ids::UnifiedAddressNumber::parse(&unified[0]).expect("unified"),
    }
    .to_xml();
    let sealed = uplink
        .keys
        .seal_to(
            uplink.platform.as_str(),
            "InquiryRequest",
            &id,
            target.as_bytes(),
        )
        .expect("seal");
    let msg = Message::InquiryRequest {
        header: uplink.header(id.clone()),
        record_id: id.clone(),
        affair: renkei::dev::init::AFFAIR_CHILD_MEDICAL
            .parse()
            .expect("affair"),
        procedure: renkei::dev::init::PROC_LOCAL_TAX
            .parse()
            .expect("procedure"),
        item: renkei::dev::init::ITEM_LOCAL_TAX.parse().expect("item"),
        inquirer: uplink.keys.agency.clone(),
        provider: None,
        non_disclosure: false,
        condition: Condition::FiscalYear(2026),
        sealed,
    };
    let serial = |m: Message| match m {
        Message::InquiryReceipt {
            outcome: ReceiptOutcome::Accepted { serial },
            ..
        } => serial.to_string(),
        other => panic!("expected an accepted receipt, got {}", other.type_name()),
    };
    let exchange = |m: &Message, what: &'static str| {
        let m = m.clone();
        let up = uplink.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(5), up.exchange(&m))
                .await
                .unwrap_or_else(|_| panic!("the platform does not answer the {what} within 5 s"))
                .unwrap_or_else(|e| panic!("{what}: {e}"))
        }
    };
    let first = serial(exchange(&msg, "first send").await);
    let second = serial(exchange(&msg, "resend").await);
    assert_eq!(first, second, "a resend gets the first receipt");
    let stats = tokio::time::timeout(Duration::from_secs(5), d.sim_stats())
        .await
        .expect("the platform still serves after a resend");
    assert_eq!(stats["inquiries_accepted"], 1, "{stats}");
    assert_eq!(stats["inquiry_resends_deduped"], 1, "{stats}");
    assert_eq!(stats["effects"][id.as_str()], first.as_str(), "{stats}");
}
