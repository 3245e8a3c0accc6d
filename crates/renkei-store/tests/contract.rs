//! Tests of the store contract: atomic batches, guards in commit order, ordered scans, the log.

use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::*;

struct CountingChain {
    next: u64,
}

impl LogChain for CountingChain {
    fn append(&mut self, entry: &[u8]) -> (u64, Vec<u8>) {
        let seq = self.next;
        self.next += 1;
        (seq, entry.to_vec())
    }
    fn state(&self) -> Vec<u8> {
        self.next.to_be_bytes().to_vec()
    }
    fn snapshot(&self) -> Box<dyn LogChain> {
        Box::new(CountingChain { next: self.next })
    }
}

fn open() -> (tempfile::TempDir, Arc<SledStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store"), Durability::Fsync).unwrap();
    (dir, store)
}

use std::sync::Arc;

#[tokio::test]
async fn committed_batch_is_readable_and_trees_are_separate() {
    let (_d, s) = open();
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
}

#[tokio::test]
async fn racing_guards_let_exactly_one_batch_through() {
    let (_d, s) = open();
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

#[tokio::test]
async fn ranges_are_ordered_and_bounded_by_tree() {
    let (_d, s) = open();
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
    let rev = s.range_rev(Tree::Due, &[], &[], 2).unwrap();
    assert_eq!(rev[0].0, 5u64.to_be_bytes().to_vec());
    assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
}

#[tokio::test]
async fn log_entries_get_consecutive_sequence_numbers_and_state_is_saved() {
    let (_d, s) = open();
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
}

#[tokio::test]
async fn a_barrier_resolves_only_after_every_commit_queued_before_it() {
    use std::task::{Context, Poll, Waker};
    let (_d, s) = open();
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
    assert_eq!(s.stats().batches, 501);
}
