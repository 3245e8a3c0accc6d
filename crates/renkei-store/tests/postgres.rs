//! PostgreSQL-only behaviour, each test on its own throwaway server: migrations and version
//! checks, url forms and password hygiene, two stores on one database keeping one chain,
//! outage and reconnect, failover to a synchronous standby losing no acknowledged batch, and
//! group-commit throughput beside sled's (printed, not asserted).

#![cfg(feature = "postgres")]

mod common;
mod pg;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::CountingChain;
use renkei_store::postgres::{Migrated, PgError, PgOptions, PgStore, SCHEMA_VERSION};
use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Batch, Store, StoreError, Tree};

const PASSWORD: &str = "s3cr3t-pw-never-shown";

fn migrated_server() -> Option<(pg::PgServer, String)> {
    let server = pg::start()?;
    server.create_db("renkei");
    let url = server.url("renkei");
    PgStore::migrate(&url).unwrap();
    Some((server, url))
}

fn quick_reconnect() -> PgOptions {
    PgOptions {
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..PgOptions::default()
    }
}

/// Retries `f` until it returns true or `limit` passes (async wait-until).
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn put(key: &[u8], value: &[u8]) -> Batch {
    let mut b = Batch::new();
    b.put(Tree::Inquiries, key.to_vec(), value.to_vec());
    b
}

/// Outside any runtime, on purpose: open and migrate work from plain threads too.
#[test]
fn open_refuses_unmigrated_and_unknown_schema_versions() {
    let Some(server) = pg::start() else {
        return;
    };
    server.create_db("renkei");
    let url = server.url("renkei");
    assert!(matches!(
        PgStore::open(&url, PgOptions::default()),
        Err(PgError::NotMigrated)
    ));
    assert_eq!(PgStore::schema_version(&url).unwrap(), None);
    assert_eq!(
        PgStore::migrate(&url).unwrap(),
        Migrated {
            from: 0,
            to: SCHEMA_VERSION
        }
    );
    assert_eq!(
        PgStore::migrate(&url).unwrap(),
        Migrated {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    assert_eq!(PgStore::schema_version(&url).unwrap(), Some(SCHEMA_VERSION));
    drop(PgStore::open(&url, PgOptions::default()).unwrap());

    server.psql(
        "renkei",
        "INSERT INTO renkei_schema_version (version, description) VALUES (99, 'from the future')",
    );
    match PgStore::open(&url, PgOptions::default()) {
        Err(PgError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (99, SCHEMA_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(matches!(
        PgStore::migrate(&url),
        Err(PgError::SchemaTooNew { found: 99, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_with_several_hosts_reach_the_live_server_and_never_show_the_password() {
    let Some((server, _)) = migrated_server() else {
        return;
    };
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = server.port;
    let uri = format!(
        "postgresql://renkei:{PASSWORD}@127.0.0.1:{dead},127.0.0.1:{port}/renkei?target_session_attrs=read-write&connect_timeout=2"
    );
    let a = PgStore::open(&uri, PgOptions::default()).unwrap();
    a.commit(put(b"k", b"v")).await.unwrap();
    assert!(!format!("{a:?}").contains(PASSWORD));

    let kv = format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{port} user=renkei password={PASSWORD} dbname=renkei target_session_attrs=read-write"
    );
    let b = PgStore::open(&kv, PgOptions::default()).unwrap();
    assert_eq!(b.get(Tree::Inquiries, b"k").unwrap().unwrap(), b"v");

    let unreachable = format!(
        "host=127.0.0.1 port={dead} user=renkei password={PASSWORD} dbname=renkei connect_timeout=2"
    );
    match PgStore::open(&unreachable, PgOptions::default()) {
        Err(e @ PgError::Connect { .. }) => {
            assert!(!e.to_string().contains(PASSWORD));
            assert!(!format!("{e:?}").contains(PASSWORD));
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    let broken = format!("postgresql://renkei:{PASSWORD}@[127.0.0.1/renkei");
    match PgStore::open(&broken, PgOptions::default()) {
        Err(e @ PgError::Url) => assert!(!e.to_string().contains(PASSWORD)),
        other => panic!("expected Url, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_keep_one_chain_and_one_guard_order() {
    let Some((_server, url)) = migrated_server() else {
        return;
    };
    let stores = [
        PgStore::open(&url, PgOptions::default()).unwrap(),
        PgStore::open(&url, PgOptions::default()).unwrap(),
    ];
    for s in &stores {
        s.set_log_chain(CountingChain::resume(s.log_chain_state().unwrap()))
            .unwrap();
    }

    let mut handles = Vec::new();
    for t in 0..32u32 {
        let s = stores[(t % 2) as usize].clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..20u32 {
                let mut b = Batch::new();
                let entries = 1 + (i % 2);
                let mut mine = Vec::new();
                for e in 0..entries {
                    let entry = format!("{t}/{i}/{e}").into_bytes();
                    b.append_log(entry.clone());
                    mine.push(entry);
                }
                let r = s.commit(b).await.unwrap();
                assert_eq!(r.log_seqs.len(), mine.len());
                got.extend(r.log_seqs.into_iter().zip(mine).map(|(q, e)| (q, t % 2, e)));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    let n = all.len() as u64;
    let seqs: Vec<u64> = all.iter().map(|(q, _, _)| *q).collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "one gap-free chain");
    assert!(all.iter().any(|(_, s, _)| *s == 0) && all.iter().any(|(_, s, _)| *s == 1));
    for (seq, _, entry) in &all {
        assert_eq!(
            &stores[0]
                .get(Tree::Records, &seq.to_be_bytes())
                .unwrap()
                .unwrap(),
            entry
        );
    }
    assert_eq!(stores[1].len(Tree::Records).unwrap() as u64, n);
    assert_eq!(
        stores[1].log_chain_state().unwrap().unwrap(),
        n.to_be_bytes()
    );

    // require_absent across the two processes: exactly one wins.
    let mut handles = Vec::new();
    for i in 0..32u8 {
        let s = stores[(i % 2) as usize].clone();
        handles.push(tokio::spawn(async move {
            let mut b = Batch::new();
            b.require_absent(Tree::Idempotency, b"once".to_vec());
            b.put(Tree::Idempotency, b"once".to_vec(), vec![i]);
            b.put(Tree::Persons, vec![i], vec![i]);
            s.commit(b).await
        }));
    }
    let mut won = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(stores[0].len(Tree::Persons).unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_commits_and_the_store_reconnects_after_it() {
    let Some((mut server, url)) = migrated_server() else {
        return;
    };
    let s = PgStore::open(&url, quick_reconnect()).unwrap();
    s.commit(put(b"before", b"1")).await.unwrap();

    tokio::task::block_in_place(|| server.stop());
    assert!(matches!(
        s.commit(put(b"during", b"2")).await,
        Err(StoreError::Io(_))
    ));
    assert!(matches!(
        s.get(Tree::Inquiries, b"before"),
        Err(StoreError::Io(_))
    ));

    let port = server.port;
    tokio::task::block_in_place(|| server.start_server());
    assert_eq!(server.port, port, "restarted on another port");
    let back = eventually(Duration::from_secs(30), || {
        let s = s.clone();
        async move { s.commit(put(b"after", b"3")).await.is_ok() }
    })
    .await;
    assert!(back, "store never reconnected");
    let read_back = eventually(Duration::from_secs(30), || {
        let s = s.clone();
        async move { s.get(Tree::Inquiries, b"before").is_ok() }
    })
    .await;
    assert!(read_back, "reads never reconnected");
    assert_eq!(s.get(Tree::Inquiries, b"before").unwrap().unwrap(), b"1");
    assert_eq!(s.get(Tree::Inquiries, b"during").unwrap(), None);
    assert_eq!(s.get(Tree::Inquiries, b"after").unwrap().unwrap(), b"3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_batches_survive_killing_the_primary_and_promoting_the_standby() {
    let Some((mut primary, _)) = migrated_server() else {
        return;
    };
    let standby = primary.start_sync_standby();
    let url = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=renkei dbname=renkei target_session_attrs=read-write connect_timeout=2",
        primary.port, standby.port
    );
    let s = PgStore::open(&url, quick_reconnect()).unwrap();
    s.set_log_chain(CountingChain::resume(None)).unwrap();

    let acked: Arc<Mutex<Vec<(u32, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU32::new(0));
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (s, acked, failed, stop, next_id) = (
            s.clone(),
            acked.clone(),
            failed.clone(),
            stop.clone(),
            next_id.clone(),
        );
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let mut b = put(&id.to_be_bytes(), b"acked");
                b.append_log(id.to_be_bytes().to_vec());
                match s.commit(b).await {
                    Ok(r) => acked.lock().unwrap().push((id, r.log_seqs[0])),
                    Err(StoreError::Io(_)) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        // Outage: the store answers at once; do not spin on it.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }));
    }
    let count = || acked.lock().unwrap().len();
    assert!(
        eventually(Duration::from_secs(60), || async { count() >= 300 }).await,
        "committers made no progress"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failures before the kill"
    );

    tokio::task::block_in_place(|| primary.kill());
    assert!(
        eventually(Duration::from_secs(30), || async {
            failed.load(Ordering::Relaxed) > 0
        })
        .await,
        "commits kept succeeding with the primary dead"
    );
    let at_promotion = count();
    tokio::task::block_in_place(|| standby.promote());
    // The same store finds the promoted standby through target_session_attrs=read-write.
    assert!(
        eventually(Duration::from_secs(60), || async {
            count() >= at_promotion + 100
        })
        .await,
        "store never reconnected to the promoted standby"
    );
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }

    let fresh = PgStore::open(&standby.url("renkei"), PgOptions::default()).unwrap();
    let acked = acked.lock().unwrap().clone();
    for (id, seq) in &acked {
        assert_eq!(
            fresh
                .get(Tree::Inquiries, &id.to_be_bytes())
                .unwrap()
                .as_deref(),
            Some(&b"acked"[..]),
            "acknowledged batch {id} lost"
        );
        assert_eq!(
            fresh
                .get(Tree::Records, &seq.to_be_bytes())
                .unwrap()
                .unwrap(),
            id.to_be_bytes()
        );
    }
    // One gap-free chain across the failover, even if a group whose COMMIT was cut off
    // reached the standby without being acknowledged.
    let records = fresh.range(Tree::Records, &[], &[], usize::MAX).unwrap();
    let n = records.len() as u64;
    let seqs: Vec<u64> = records
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k.as_slice().try_into().unwrap()))
        .collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
    assert_eq!(fresh.log_chain_state().unwrap().unwrap(), n.to_be_bytes());
    println!(
        "failover: {} acknowledged, {} refused during the outage, {} records on the promoted standby",
        acked.len(),
        failed.load(Ordering::Relaxed),
        n
    );
}

/// 64 committers of small batches (two puts and one log entry), on each backend.
async fn committers(s: Arc<dyn Store>, per_task: u32, run: &str) -> (f64, u64, u64) {
    s.set_log_chain(CountingChain::resume(s.log_chain_state().unwrap()))
        .unwrap();
    let before = s.stats();
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..64u32 {
        let s = s.clone();
        let run = run.to_string();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let key = format!("{run}-{t:02}-{i:06}");
                let mut b = Batch::new();
                b.put(Tree::Inquiries, key.clone().into_bytes(), vec![7u8; 64]);
                b.put(
                    Tree::Due,
                    [&i.to_be_bytes()[..], key.as_bytes()].concat(),
                    [],
                );
                b.append_log(vec![1u8; 96]);
                s.commit(b).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let after = s.stats();
    let batches = after.batches - before.batches;
    let groups = after.groups - before.groups;
    assert_eq!(batches, 64 * u64::from(per_task));
    (batches as f64 / secs, batches, groups)
}

/// Mean time of one synchronous `get` of an existing key, from an async task.
fn read_latency_us(s: &dyn Store, reads: u32) -> f64 {
    let start = Instant::now();
    for i in 0..reads {
        let key = format!("local-{:02}-{:06}", i % 64, i % 100);
        assert!(s.get(Tree::Inquiries, key.as_bytes()).unwrap().is_some());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_64_committers_beside_sled() {
    let Some((server, url)) = migrated_server() else {
        return;
    };
    const PER_TASK: u32 = 150;
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(&dir.path().join("store"), Durability::Fsync).unwrap();
    let (rate, batches, groups) = committers(sled.clone(), PER_TASK, "local").await;
    println!(
        "sled (fsync):            {rate:>8.0} batches/s  ({batches} batches in {groups} groups, {:.1} per group)",
        batches as f64 / groups as f64
    );
    println!(
        "sled get:                {:>8.1} µs per read",
        read_latency_us(sled.as_ref(), 2000)
    );
    let pg = PgStore::open(&url, PgOptions::default()).unwrap();
    let (rate, batches, groups) = committers(pg.clone(), PER_TASK, "local").await;
    println!(
        "postgres (no standby):   {rate:>8.0} batches/s  ({batches} batches in {groups} groups, {:.1} per group)",
        batches as f64 / groups as f64
    );
    println!(
        "postgres get:            {:>8.1} µs per read",
        read_latency_us(pg.as_ref(), 2000)
    );
    let _standby = tokio::task::block_in_place(|| server.start_sync_standby());
    let (rate, batches, groups) = committers(pg, PER_TASK, "sync").await;
    println!(
        "postgres (sync standby): {rate:>8.0} batches/s  ({batches} batches in {groups} groups, {:.1} per group)",
        batches as f64 / groups as f64
    );
}
