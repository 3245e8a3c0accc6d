//! The gateway on PostgreSQL, end to end against real servers this test starts (initdb in a
//! temporary folder): `[store] backend = "postgres"`, `renkei store migrate`, the spine and
//! a SIGKILL restart on PostgreSQL; two gateways on one database with the dispatcher moving
//! to the survivor when the one dispatching is killed; the primary SIGKILLed and its
//! synchronous standby promoted under load; and `renkei store copy` sled → PostgreSQL → sled
//! with the records verifying. Skipped (with a message) when PostgreSQL is not installed.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    local_tax, pg, readyz, renkei_ok, wait_for, wait_until, Api, Deployment, BIN, POLL,
    START_TIMEOUT,
};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;

/// How long every accepted inquiry has to reach its final state after the last disruption.
const DRAIN: Duration = Duration::from_secs(60);

/// A PostgreSQL server with a `renkei` database, or `None` when PostgreSQL is missing.
fn database() -> Option<pg::PgServer> {
    let s = pg::start()?;
    s.create_db("renkei");
    Some(s)
}

fn renkei(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run renkei")
}

fn migrate(d: &Deployment) {
    renkei_ok(&["store", "migrate", "--config", &d.config_path()]);
}

async fn dispatching(data: &Path) -> bool {
    readyz(data)
        .await
        .is_some_and(|v| v["store"]["dispatching"] == true)
}

/// key → id of every 202.
type Accepted = Arc<Mutex<HashMap<String, String>>>;

/// Submits local-tax inquiries from `tasks` tasks until `stop`; retries a key (the same
/// key) on 5xx or transport errors, so every 202 is one inquiry. Returns key → id.
fn load(
    api: Arc<Mutex<Api>>,
    tasks: usize,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
) -> (Accepted, Vec<tokio::task::JoinHandle<()>>) {
    let accepted: Accepted = Arc::default();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (api, stop, accepted, refused) =
            (api.clone(), stop.clone(), accepted.clone(), refused.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("{prefix}-{t}-{n}");
                let body = local_tax(SAMPLES[(t + n) % SAMPLES.len()].business_number);
                loop {
                    let client = api.lock().expect("lock").clone();
                    match client.try_submit(&key, &body).await {
                        Ok(r) if r.status == 202 => {
                            let id = r.body["id"].as_str().expect("id").to_string();
                            accepted.lock().expect("lock").insert(key.clone(), id);
                            break;
                        }
                        Ok(r) if r.status == 503 => {
                            assert_eq!(r.body["code"], "store_unavailable", "{}", r.body);
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("key {key}: unexpected {} {}", r.status, r.body),
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    (accepted, handles)
}

/// Waits until at least `n` inquiries are accepted.
async fn accepted_at_least(accepted: &Accepted, n: usize, what: &str) {
    wait_until(START_TIMEOUT, what, || {
        let got = accepted.lock().expect("lock").len();
        async move { got >= n }
    })
    .await;
}

/// Stops the submitters, waits for them and returns the ids they got.
async fn stop_load(
    stop: &AtomicBool,
    handles: Vec<tokio::task::JoinHandle<()>>,
    accepted: &Accepted,
) -> Vec<String> {
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.await.expect("submitter");
    }
    let ids = accepted.lock().expect("lock").values().cloned().collect();
    ids
}

/// Waits until every id is answered; returns how many there were.
async fn all_answered(api: &Api, ids: &[String]) -> usize {
    for id in ids {
        let v = api.wait_final(id, DRAIN).await;
        assert_eq!(v["status"], "answered", "inquiry {id}: {v}");
    }
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_spine_runs_on_postgres_and_survives_sigkill() {
    let Some(server) = database() else { return };
    let mut d = Deployment::new();
    d.use_postgres(&server.url("renkei"));

    // Not migrated: serve refuses to start and says what to run.
    let out = renkei(&["serve", "--config", &d.config_path()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("renkei store migrate"), "{err}");
    d.migrate_and_copy_init();
    // Migrating again changes nothing.
    migrate(&d);

    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    api.inquire_answered("pg-first", SAMPLES[0].business_number)
        .await;
    let ready = readyz(&d.dir.join("gateway/data")).await.expect("readyz");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["store"]["backend"], "postgres", "{ready}");
    assert!(
        ready["store"]["node"]
            .as_str()
            .is_some_and(|n| n.ends_with("(primary)")),
        "{ready}"
    );
    assert_eq!(ready["store"]["dispatching"], true, "{ready}");

    // A load, a SIGKILL in the middle of it, a restart: every 202 is there and answered.
    let slot = Arc::new(Mutex::new(api.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let (accepted, handles) = load(slot.clone(), 8, "pg-kill", stop.clone(), refused);
    accepted_at_least(&accepted, 40, "some inquiries are accepted").await;
    d.kill_gateway();
    d.start_gateway().await;
    *slot.lock().expect("lock") = d.client(CLIENT_SUBSIDY);
    accepted_at_least(&accepted, 80, "accepts continue after the restart").await;
    let ids = stop_load(&stop, handles, &accepted).await;
    let api = d.client(CLIENT_SUBSIDY);
    let n = all_answered(&api, &ids).await;
    // Each took effect at the platform once (plus the first one).
    let stats = d.sim_stats().await;
    assert_eq!(
        stats["inquiries_accepted"].as_u64(),
        Some(n as u64 + 1),
        "{stats}"
    );
    let v = d.client("auditor").get("/v1/audit/verify").await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["ok"], true, "{}", v.body);
}

/// A second gateway process on the same deployment and database: its own data folder and
/// ports, the same keys and clients.
struct SecondGateway {
    child: Child,
    data: PathBuf,
    addr: SocketAddr,
}

impl Drop for SecondGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_second(d: &Deployment) -> SecondGateway {
    let text = std::fs::read_to_string(d.dir.join("renkei.toml")).expect("config");
    let text = text.replacen(
        "data_dir = \"gateway/data\"",
        "data_dir = \"gateway/data-2\"",
        1,
    );
    assert!(text.contains("gateway/data-2"), "data_dir line not found");
    let cfg = d.dir.join("renkei-2.toml");
    std::fs::write(&cfg, text).expect("write config");
    let data = d.dir.join("gateway/data-2");
    let log = std::fs::File::create(d.dir.join("logs/gateway-second.stderr")).expect("log");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn second gateway");
    let addr: SocketAddr = wait_for(START_TIMEOUT, "the second gateway listens", || {
        let f = data.join("gateway.addr");
        async move {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        }
    })
    .await;
    SecondGateway { child, data, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_share_one_state_and_the_survivor_takes_dispatching_over() {
    let Some(server) = database() else { return };
    let mut d = Deployment::new();
    d.use_postgres(&server.url("renkei"));
    d.set_in_table("renkei.toml", "store", "dispatch_lease_secs", "3");
    d.migrate_and_copy_init();
    d.start().await;
    let second = start_second(&d).await;
    d.link_samples().await;
    let first_data = d.dir.join("gateway/data");

    // Exactly one of the two dispatches.
    wait_until(START_TIMEOUT, "one gateway holds the lease", || async {
        dispatching(&first_data).await != dispatching(&second.data).await
    })
    .await;
    let first_dispatches = dispatching(&first_data).await;

    // Both accept; every inquiry is answered whichever gateway took it.
    let a = d.client(CLIENT_SUBSIDY);
    let b = Api::new(&d.dir, CLIENT_SUBSIDY, second.addr);
    let mut ids = Vec::new();
    for i in 0..10 {
        let api = if i % 2 == 0 { &a } else { &b };
        let s = SAMPLES[i % SAMPLES.len()].business_number;
        ids.push(api.submit_ok(&format!("two-{i}"), &local_tax(s)).await);
    }
    all_answered(&a, &ids).await;
    all_answered(&b, &ids).await;

    // Kill the one that dispatches, mid-load on the other; the survivor takes over.
    let (survivor_api, survivor_data, mut second) = if first_dispatches {
        d.kill_gateway();
        (b.clone(), second.data.clone(), Some(second))
    } else {
        let mut s = second;
        let _ = s.child.kill();
        let _ = s.child.wait();
        (a.clone(), first_data.clone(), None)
    };
    let slot = Arc::new(Mutex::new(survivor_api.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let (accepted, handles) = load(slot, 4, "two-after", stop.clone(), refused);
    let killed = std::time::Instant::now();
    wait_until(
        Duration::from_secs(15),
        "the survivor dispatches",
        || async { dispatching(&survivor_data).await },
    )
    .await;
    let took_over = killed.elapsed();
    assert!(
        took_over <= Duration::from_secs(10),
        "takeover took {took_over:?}"
    );
    accepted_at_least(&accepted, 20, "the survivor accepts").await;
    let after = stop_load(&stop, handles, &accepted).await;
    let n = all_answered(&survivor_api, &ids).await + all_answered(&survivor_api, &after).await;
    // Nothing took effect twice at the platform.
    let stats = d.sim_stats().await;
    assert_eq!(
        stats["inquiries_accepted"].as_u64(),
        Some(n as u64),
        "{stats}"
    );
    drop(second.take());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promoted_standby_has_every_acknowledged_inquiry() {
    let Some(mut primary) = database() else {
        return;
    };
    let standby = primary.start_sync_standby();
    let url = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user={} dbname=renkei target_session_attrs=read-write connect_timeout=2",
        primary.port,
        standby.port,
        pg::USER
    );
    let mut d = Deployment::new();
    d.use_postgres(&url);
    d.migrate_and_copy_init();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let slot = Arc::new(Mutex::new(api.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let (accepted, handles) = load(slot, 8, "failover", stop.clone(), refused.clone());
    accepted_at_least(&accepted, 40, "some inquiries are accepted").await;
    // The primary dies; the standby is promoted; the gateway finds it and goes on.
    tokio::task::block_in_place(|| {
        primary.kill();
        standby.promote();
    });
    let before = accepted.lock().expect("lock").len();
    wait_until(
        Duration::from_secs(30),
        "accepts resume on the promoted standby",
        || {
            let n = accepted.lock().expect("lock").len();
            async move { n >= before + 40 }
        },
    )
    .await;
    let ids = stop_load(&stop, handles, &accepted).await;
    all_answered(&api, &ids).await;
    let ready = wait_for(START_TIMEOUT, "readiness names the new primary", || {
        let data = d.dir.join("gateway/data");
        let port = standby.port;
        async move {
            readyz(&data).await.filter(|v| {
                v["store"]["node"].as_str() == Some(&format!("127.0.0.1:{port} (primary)"))
            })
        }
    })
    .await;
    assert_eq!(ready["store"]["dispatching"], true, "{ready}");
    eprintln!(
        "failover: {} acknowledged, {} attempts refused (503 or transport) during the switch",
        ids.len(),
        refused.load(Ordering::Relaxed)
    );
    d.kill_gateway();
    let _keep = POLL;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_copy_moves_a_deployment_to_postgres_and_back() {
    let Some(server) = database() else { return };
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let mut ids = Vec::new();
    for (i, s) in SAMPLES.iter().enumerate() {
        let id = api
            .submit_ok(&format!("copy-{i}"), &local_tax(s.business_number))
            .await;
        api.wait_final(&id, DRAIN).await;
        ids.push(id);
    }
    d.kill_gateway();

    // sled → PostgreSQL.
    d.set_in_table(
        "renkei.toml",
        "store",
        "url",
        &format!("\"{}\"", server.url("renkei")),
    );
    migrate(&d);
    let cfg = d.config_path();
    let copy = |from: &str, to: &str| {
        renkei(&[
            "store", "copy", "--config", &cfg, "--from", from, "--to", to,
        ])
    };
    let out = copy("sled", "postgres");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second copy into the now non-empty database is refused.
    let again = copy("sled", "postgres");
    assert!(!again.status.success());
    d.set_in_table("renkei.toml", "store", "backend", "\"postgres\"");
    d.start_gateway().await;
    let api = d.client(CLIENT_SUBSIDY);
    for id in &ids {
        assert_eq!(api.status_of(id).await, "answered");
    }
    let v = d.client("auditor").get("/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    // A new inquiry on PostgreSQL extends the same chain.
    api.inquire_answered("copy-on-pg", SAMPLES[0].business_number)
        .await;
    // While a gateway holds the database, copying from it is refused.
    let busy = copy("postgres", "sled");
    assert!(!busy.status.success());
    d.kill_gateway();

    // PostgreSQL → a new sled store (the old one moved aside).
    let store = d.dir.join("gateway/data/store");
    std::fs::rename(&store, d.dir.join("gateway/data/store.before")).expect("move old store");
    // The killed gateway's lease runs out first (dispatch_lease_secs, 6 s by default).
    wait_until(Duration::from_secs(15), "the lease runs out", || async {
        copy("postgres", "sled").status.success()
    })
    .await;
    d.set_in_table("renkei.toml", "store", "backend", "\"sled\"");
    d.start_gateway().await;
    let api = d.client(CLIENT_SUBSIDY);
    for id in &ids {
        assert_eq!(api.status_of(id).await, "answered");
    }
    let v = d.client("auditor").get("/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}
