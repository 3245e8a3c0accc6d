//! Shared by the test files: a log chain that numbers entries and stores them unchanged.

#![allow(dead_code)]

use renkei_store::{LogChain, StoreError};

pub struct CountingChain {
    pub next: u64,
}

impl CountingChain {
    /// Resumes from a persisted state (`None`: a fresh chain).
    pub fn resume(state: Option<Vec<u8>>) -> Box<dyn LogChain> {
        let mut c = CountingChain { next: 0 };
        if let Some(s) = state {
            c.restore(&s).unwrap();
        }
        Box::new(c)
    }
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
    fn restore(&mut self, state: &[u8]) -> Result<(), StoreError> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| StoreError::Corrupt {
            tree: "meta",
            detail: "chain state".into(),
        })?;
        self.next = u64::from_be_bytes(bytes);
        Ok(())
    }
}
