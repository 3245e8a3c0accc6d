//! A consistent copy of a serving store: `SledStore::export` while commits keep arriving, then
//! `import` into a new folder. Every batch acknowledged before the export began is in the copy,
//! and the copy is one point in commit order (each batch writes an entry and a counter
//! together: the copy's counter equals its entries). Prints the pause on a realistic size.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use renkei_store::sled_store::{import, Durability, SledStore};
use renkei_store::{Batch, Store, Tree};

/// Entries written before the export: 100,000 inquiries of 1 KB (about the gateway's sealed
/// inquiry) make a store of about 100 MB.
const PRELOAD: u64 = 100_000;
const VALUE: usize = 1_000;
const COUNTER: &[u8] = b"count";

fn put(b: &mut Batch, i: u64) {
    b.put(
        Tree::Inquiries,
        i.to_be_bytes().to_vec(),
        vec![(i % 251) as u8; VALUE],
    );
    b.put(Tree::Meta, COUNTER.to_vec(), (i + 1).to_be_bytes().to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_under_load_is_consistent_and_complete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(&tmp.path().join("store"), Durability::Fsync).expect("open");
    // Preload in large batches (one counter update each, still atomic with its entries).
    let mut next = 0u64;
    while next < PRELOAD {
        let mut b = Batch::new();
        for _ in 0..1000 {
            put(&mut b, next);
            next += 1;
        }
        store.commit(b).await.expect("preload");
    }
    // Load: one batch after another, as the gateway's acceptances do.
    let acked = Arc::new(AtomicU64::new(next));
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, acked, stop, worst) =
            (store.clone(), acked.clone(), stop.clone(), worst.clone());
        tokio::spawn(async move {
            let mut i = next;
            while !stop.load(Ordering::Relaxed) {
                let mut b = Batch::new();
                put(&mut b, i);
                let t = Instant::now();
                store.commit(b).await.expect("commit under load");
                worst.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                i += 1;
                acked.store(i, Ordering::Release);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = acked.load(Ordering::Acquire);
    let dump_path = tmp.path().join("store.dump");
    let report = {
        let store = store.clone();
        let path = dump_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("dump file"));
            store.export(&mut out).expect("export")
        })
        .await
        .expect("join")
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let dump_bytes = std::fs::metadata(&dump_path).expect("dump").len();
    eprintln!(
        "export: {} entries, {:.1} MB, commits paused {:?} (waited {:?} for the group in flight); \
         slowest commit under load {} ms",
        report.entries,
        dump_bytes as f64 / 1e6,
        report.pause,
        report.waited,
        worst.load(Ordering::Relaxed) / 1000
    );
    // Commits went on after the export.
    assert!(acked.load(Ordering::Acquire) > before);

    let copy_dir = tmp.path().join("restored");
    let mut input = std::io::BufReader::new(std::fs::File::open(&dump_path).expect("open dump"));
    let n = import(&copy_dir, &mut input).expect("import");
    assert_eq!(n, report.entries);
    drop(store);
    let copy = SledStore::open(&copy_dir, Durability::Fsync).expect("open copy");
    let count = copy
        .get(Tree::Meta, COUNTER)
        .expect("read")
        .map(|v| u64::from_be_bytes(v.try_into().expect("8 bytes")))
        .expect("counter");
    assert_eq!(
        copy.len(Tree::Inquiries).expect("len") as u64,
        count,
        "the copy is one point in commit order"
    );
    assert!(
        count >= before,
        "every batch acknowledged before the export is in the copy"
    );
    for i in [0, PRELOAD / 2, before - 1] {
        assert!(copy
            .get(Tree::Inquiries, &i.to_be_bytes())
            .expect("get")
            .is_some());
    }
}

#[test]
fn a_changed_dump_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cut = [renkei_store::sled_store::DUMP_MAGIC, &[0, 0, 0, 3, b'a']].concat();
    let err = import(&tmp.path().join("a"), &mut cut.as_slice()).expect_err("cut short");
    assert!(err.to_string().contains("cut short"), "{err}");
    let err = import(
        &tmp.path().join("b"),
        &mut &b"this is not a dump of any store at all"[..],
    )
    .expect_err("magic");
    assert!(err.to_string().contains("not a renkei store dump"), "{err}");
}
