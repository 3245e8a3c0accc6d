//! Tests of the store contract, one suite run against every backend (sled always; PostgreSQL
//! with `--features postgres`, on a throwaway server): atomic batches, guards in commit order,
//! ordered scans, the log.

mod common;
#[cfg(feature = "postgres")]
mod pg;

use std::sync::Arc;

use common::CountingChain;
use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::*;

/// Something that must outlive the store (a temp folder, a server).
type Guard = Box<dyn std::any::Any>;

fn open_sled() -> Option<(Guard, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store"), Durability::Fsync).unwrap();
    Some((Box::new(dir), store))
}

#[cfg(feature = "postgres")]
fn open_pg() -> Option<(Guard, Arc<dyn Store>)> {
    use renkei_store::postgres::{PgOptions, PgStore};
    let server = pg::start()?;
    server.create_db("renkei");
    let url = server.url("renkei");
    PgStore::migrate(&url).unwrap();
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    Some((Box::new(server), store))
}

mod suite {
    use super::*;

    pub async fn committed_batch_is_readable_and_trees_are_separate(s: Arc<dyn Store>) {
        let mut b = Batch::new();
        b.put(Tree::Inquiries, b"a".to_vec(), b"1".to_vec());
        b.put(Tree::Persons, b"a".to_vec(), b"2".to_vec());
        s.commit(b).await.unwrap();
        assert_eq!(s.get(Tree::Inquiries, b"a").unwrap().unwrap(), b"1");
        assert_eq!(s.get(Tree::Persons, b"a").unwrap().unwrap(), b"2");
        assert_eq!(s.get(Tree::Due, b"a").unwrap(), None);
        assert_eq!(s.len(Tree::Inquiries).unwrap(), 1);
        let mut d = Batch::new();
        d.delete(Tree::Inquiries, b"a".to_vec());
        s.commit(d).await.unwrap();
        assert_eq!(s.get(Tree::Inquiries, b"a").unwrap(), None);
        assert_eq!(s.get(Tree::Persons, b"a").unwrap().unwrap(), b"2");
        // Last write in a batch wins; a put after a delete of the same key stays.
        let mut b = Batch::new();
        b.put(Tree::Batches, b"k".to_vec(), b"1".to_vec());
        b.delete(Tree::Batches, b"k".to_vec());
        b.put(Tree::Batches, b"k".to_vec(), b"3".to_vec());
        b.put(Tree::Batches, b"gone".to_vec(), b"x".to_vec());
        b.delete(Tree::Batches, b"gone".to_vec());
        s.commit(b).await.unwrap();
        assert_eq!(s.get(Tree::Batches, b"k").unwrap().unwrap(), b"3");
        assert_eq!(s.get(Tree::Batches, b"gone").unwrap(), None);
        // An empty batch is a barrier that succeeds.
        s.commit(Batch::new()).await.unwrap();
    }

    pub async fn racing_guards_let_exactly_one_batch_through(s: Arc<dyn Store>) {
        let mut handles = Vec::new();
        for i in 0..64u8 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut b = Batch::new();
                b.require_absent(Tree::Idempotency, b"k".to_vec());
                b.put(Tree::Idempotency, b"k".to_vec(), vec![i]);
                b.put(Tree::Inquiries, vec![i], vec![i]);
                s.commit(b).await
            }));
        }
        let mut won = Vec::new();
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => won.push(()),
                Err(StoreError::Conflict { existing, .. }) => assert_eq!(existing.len(), 1),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(won.len(), 1);
        // The losers wrote nothing at all: the whole batch is refused.
        assert_eq!(s.len(Tree::Inquiries).unwrap(), 1);
    }

    /// Read-modify-write with `require_equal` from many tasks: every success is one
    /// increment, none is lost.
    pub async fn compare_and_swap_under_concurrency_loses_no_update(s: Arc<dyn Store>) {
        let mut handles = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut done = 0u64;
                while done < 10 {
                    let current = s.get(Tree::Meta, b"counter").unwrap();
                    let n = current
                        .as_deref()
                        .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                        .unwrap_or(0);
                    let mut b = Batch::new();
                    match &current {
                        Some(v) => b.require_equal(Tree::Meta, b"counter".to_vec(), v.clone()),
                        None => b.require_absent(Tree::Meta, b"counter".to_vec()),
                    }
                    b.put(
                        Tree::Meta,
                        b"counter".to_vec(),
                        (n + 1).to_be_bytes().to_vec(),
                    );
                    match s.commit(b).await {
                        Ok(_) => done += 1,
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let v = s.get(Tree::Meta, b"counter").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), 160);
    }

    pub async fn ranges_are_ordered_and_bounded_by_tree(s: Arc<dyn Store>) {
        let mut b = Batch::new();
        for i in [5u64, 1, 3, 2, 4] {
            b.put(Tree::Due, i.to_be_bytes().to_vec(), Vec::new());
        }
        b.put(Tree::AwaitingCode, b"zzz".to_vec(), Vec::new());
        s.commit(b).await.unwrap();
        let all = s.range(Tree::Due, &[], &[], 100).unwrap();
        let keys: Vec<u64> = all
            .iter()
            .map(|(k, _)| u64::from_be_bytes(k[..8].try_into().unwrap()))
            .collect();
        assert_eq!(keys, vec![1, 2, 3, 4, 5]);
        let upto3 = s.range(Tree::Due, &[], &4u64.to_be_bytes(), 100).unwrap();
        assert_eq!(upto3.len(), 3);
        let from2 = s
            .range(Tree::Due, &2u64.to_be_bytes(), &[], 2)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>();
        assert_eq!(
            from2,
            vec![2u64.to_be_bytes().to_vec(), 3u64.to_be_bytes().to_vec()]
        );
        let rev = s.range_rev(Tree::Due, &[], &[], 2).unwrap();
        assert_eq!(rev.len(), 2);
        assert_eq!(rev[0].0, 5u64.to_be_bytes().to_vec());
        assert_eq!(rev[1].0, 4u64.to_be_bytes().to_vec());
        let rev_bounded = s
            .range_rev(Tree::Due, &2u64.to_be_bytes(), &4u64.to_be_bytes(), 10)
            .unwrap();
        assert_eq!(rev_bounded[0].0, 3u64.to_be_bytes().to_vec());
        assert_eq!(rev_bounded.len(), 2);
        assert!(s.range(Tree::Due, &[], &[], 0).unwrap().is_empty());
        assert_eq!(s.len(Tree::Due).unwrap(), 5);
        assert_eq!(s.len(Tree::AwaitingCode).unwrap(), 1);
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
    }

    pub async fn prefix_scans_order_bytewise_and_stop_at_the_prefix(s: Arc<dyn Store>) {
        let mut b = Batch::new();
        for k in [
            key2("a", "y"),
            key2("a", "x"),
            key2("ab", "z"),
            b"a".to_vec(),
            vec![0xff, 0x01],
            vec![0xff, 0xff, 0x00],
            vec![0xfe],
        ] {
            b.put(Tree::BusinessLinks, k, b"v".to_vec());
        }
        b.put(Tree::ReverseLinks, key2("a", "w"), b"other tree".to_vec());
        s.commit(b).await.unwrap();
        let keys = |e: Entries| e.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(s.scan_prefix(Tree::BusinessLinks, b"a\0", 100).unwrap()),
            vec![key2("a", "x"), key2("a", "y")]
        );
        // "a" < "a\0…" < "ab…": shorter prefix first, as bytes.
        assert_eq!(
            keys(s.scan_prefix(Tree::BusinessLinks, b"a", 100).unwrap()),
            vec![
                b"a".to_vec(),
                key2("a", "x"),
                key2("a", "y"),
                key2("ab", "z")
            ]
        );
        assert_eq!(
            keys(s.scan_prefix(Tree::BusinessLinks, b"a", 2).unwrap()).len(),
            2
        );
        assert_eq!(
            keys(s.scan_prefix(Tree::BusinessLinks, &[0xff], 100).unwrap()),
            vec![vec![0xff, 0x01], vec![0xff, 0xff, 0x00]]
        );
        assert_eq!(
            s.scan_prefix(Tree::BusinessLinks, &[], 100).unwrap().len(),
            7
        );
    }

    pub async fn log_entries_get_consecutive_sequence_numbers_and_state_is_saved(
        s: Arc<dyn Store>,
    ) {
        let mut b = Batch::new();
        b.append_log(b"x".to_vec());
        assert!(
            s.commit(b.clone()).await.is_err(),
            "no chain installed yet: refuse"
        );
        s.set_log_chain(Box::new(CountingChain { next: 0 }))
            .unwrap();
        let r1 = s.commit(b.clone()).await.unwrap();
        let mut b2 = Batch::new();
        b2.append_log(b"y".to_vec());
        b2.append_log(b"z".to_vec());
        let r2 = s.commit(b2).await.unwrap();
        assert_eq!(r1.log_seqs, vec![0]);
        assert_eq!(r2.log_seqs, vec![1, 2]);
        assert_eq!(
            s.get(Tree::Records, &2u64.to_be_bytes()).unwrap().unwrap(),
            b"z"
        );
        assert_eq!(s.log_chain_state().unwrap().unwrap(), 3u64.to_be_bytes());
        // A batch refused by its guard consumes no sequence number.
        let mut refused = Batch::new();
        refused.require_absent(Tree::Records, 0u64.to_be_bytes().to_vec());
        refused.append_log(b"never".to_vec());
        assert!(matches!(
            s.commit(refused).await,
            Err(StoreError::Conflict { .. })
        ));
        let mut b3 = Batch::new();
        b3.append_log(b"w".to_vec());
        assert_eq!(s.commit(b3).await.unwrap().log_seqs, vec![3]);
        assert_eq!(s.len(Tree::Records).unwrap(), 4);
        assert_eq!(s.log_chain_state().unwrap().unwrap(), 4u64.to_be_bytes());
    }

    /// Many concurrent appenders: sequence numbers are unique, gap-free, and each stored
    /// entry is the one its receipt names.
    pub async fn concurrent_log_appends_form_one_gap_free_sequence(s: Arc<dyn Store>) {
        s.set_log_chain(Box::new(CountingChain { next: 0 }))
            .unwrap();
        let mut handles = Vec::new();
        for t in 0..32u32 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..10u32 {
                    let mut b = Batch::new();
                    let entry = format!("{t}/{i}").into_bytes();
                    b.append_log(entry.clone());
                    b.put(Tree::Inquiries, entry.clone(), Vec::new());
                    let r = s.commit(b).await.unwrap();
                    got.push((r.log_seqs[0], entry));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        let seqs: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (0..320).collect::<Vec<_>>());
        for (seq, entry) in &all {
            assert_eq!(
                &s.get(Tree::Records, &seq.to_be_bytes()).unwrap().unwrap(),
                entry
            );
        }
        assert_eq!(s.log_chain_state().unwrap().unwrap(), 320u64.to_be_bytes());
    }
    pub async fn a_barrier_resolves_only_after_every_commit_queued_before_it(s: Arc<dyn Store>) {
        use std::task::{Context, Poll, Waker};
        let before = s.stats().batches;
        // Unconstrained: tokio's cooperative budget would make the one-off polls below report
        // `Pending` for futures that are ready (or not yet queued).
        tokio::task::unconstrained(async {
            let mut cx = Context::from_waker(Waker::noop());
            let mut queued = Vec::new();
            for i in 0..500u32 {
                let mut b = Batch::new();
                b.put(Tree::Inquiries, i.to_be_bytes().to_vec(), b"v".to_vec());
                let mut f = s.commit(b);
                // One poll queues the batch (the channel has room) without waiting for it.
                let _ = f.as_mut().poll(&mut cx);
                queued.push(f);
            }
            s.commit(Batch::new()).await.unwrap();
            for (i, mut f) in queued.into_iter().enumerate() {
                assert!(
                    matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(_))),
                    "commit {i}, queued before the barrier, was not yet acknowledged"
                );
            }
        })
        .await;
        assert_eq!(s.len(Tree::Inquiries).unwrap(), 500);
        assert!(s.health().is_ok());
        assert_eq!(s.stats().batches - before, 501);
    }

    fn counts(s: &dyn Store) -> std::collections::BTreeMap<Vec<u8>, u64> {
        tallies(s, Tree::InquiryStatus)
            .unwrap()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub async fn tallied_writes_count_values_exactly_under_racing_batches(s: Arc<dyn Store>) {
        // Within one batch: a new key, a change, a rewrite of the same value, a delete.
        let mut b = Batch::new();
        b.put_tallied(Tree::InquiryStatus, b"a".to_vec(), b"queued".to_vec());
        b.put_tallied(Tree::InquiryStatus, b"b".to_vec(), b"queued".to_vec());
        b.put_tallied(Tree::InquiryStatus, b"b".to_vec(), b"sent".to_vec());
        b.put_tallied(Tree::InquiryStatus, b"c".to_vec(), b"sent".to_vec());
        b.put_tallied(Tree::InquiryStatus, b"c".to_vec(), b"sent".to_vec());
        s.commit(b).await.unwrap();
        let want = |pairs: &[(&[u8], u64)]| {
            pairs
                .iter()
                .map(|(k, n)| (k.to_vec(), *n))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(counts(&*s), want(&[(b"queued", 1), (b"sent", 2)]));
        let mut d = Batch::new();
        d.delete_tallied(Tree::InquiryStatus, b"a".to_vec());
        d.delete_tallied(Tree::InquiryStatus, b"never-written".to_vec());
        s.commit(d).await.unwrap();
        assert_eq!(counts(&*s), want(&[(b"sent", 2)]));
        // A refused batch changes no count.
        let mut r = Batch::new();
        r.require_absent(Tree::InquiryStatus, b"b".to_vec());
        r.put_tallied(Tree::InquiryStatus, b"b".to_vec(), b"failed".to_vec());
        assert!(s.commit(r).await.is_err());
        assert_eq!(counts(&*s), want(&[(b"sent", 2)]));
        // Many racing batches moving the same keys (each computing nothing itself): the
        // counts always equal the values stored.
        let mut tasks = Vec::new();
        for t in 0..16u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..40u32 {
                    let key = format!("k{}", (t * 7 + i) % 24);
                    let value = ["queued", "sent", "answered"][((t + i) % 3) as usize];
                    let mut b = Batch::new();
                    b.put_tallied(
                        Tree::InquiryStatus,
                        key.into_bytes(),
                        value.as_bytes().to_vec(),
                    );
                    s.commit(b).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut stored = std::collections::BTreeMap::new();
        for (_, v) in s.range(Tree::InquiryStatus, &[], &[], usize::MAX).unwrap() {
            *stored.entry(v).or_insert(0u64) += 1;
        }
        assert_eq!(counts(&*s), stored);
    }
}

macro_rules! backend_suite {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            backend_suite!(@case $open, committed_batch_is_readable_and_trees_are_separate);
            backend_suite!(@case $open, racing_guards_let_exactly_one_batch_through);
            backend_suite!(@case $open, compare_and_swap_under_concurrency_loses_no_update);
            backend_suite!(@case $open, ranges_are_ordered_and_bounded_by_tree);
            backend_suite!(@case $open, prefix_scans_order_bytewise_and_stop_at_the_prefix);
            backend_suite!(@case $open, log_entries_get_consecutive_sequence_numbers_and_state_is_saved);
            backend_suite!(@case $open, concurrent_log_appends_form_one_gap_free_sequence);
            backend_suite!(@case $open, a_barrier_resolves_only_after_every_commit_queued_before_it);
            backend_suite!(@case $open, tallied_writes_count_values_exactly_under_racing_batches);
        }
    };
    (@case $open:path, $name:ident) => {
        // current_thread: the reads' blocking path must work without block_in_place too.
        #[tokio::test]
        async fn $name() {
            let Some((_guard, store)) = $open() else {
                return;
            };
            suite::$name(store).await;
        }
    };
}

backend_suite!(sled, open_sled);
#[cfg(feature = "postgres")]
backend_suite!(postgres, open_pg);
