//! Reading the stored record log: entries in order (paged, errors reported, never skipped),
//! their decoded records, and the stored checkpoints.

use renkei_records::{Checkpoint, Record, StoredEntry};
use renkei_store::{Store, Tree, META_CHAIN_STATE};

use super::Error;

/// All checkpoints, oldest first.
pub fn checkpoints(store: &dyn Store) -> Result<Vec<Checkpoint>, Error> {
    store
        .range(Tree::Checkpoints, &[], &[], usize::MAX)?
        .into_iter()
        .map(|(_, v)| Checkpoint::from_json_line(&String::from_utf8_lossy(&v)).map_err(Error::from))
        .collect()
}

/// Stored entries from `from` (inclusive) in order, read in pages.
pub fn entries(
    store: &dyn Store,
    from: u64,
) -> impl Iterator<Item = Result<StoredEntry, Error>> + '_ {
    const PAGE: usize = 4096;
    let mut next = from;
    let mut buf: std::collections::VecDeque<Result<StoredEntry, Error>> = Default::default();
    let mut done = false;
    std::iter::from_fn(move || {
        if buf.is_empty() && !done {
            match store.range(Tree::Records, &next.to_be_bytes(), &[], PAGE) {
                Ok(page) => {
                    if page.len() < PAGE {
                        done = true;
                    }
                    for (_, v) in page {
                        let e = StoredEntry::from_bytes(&v).map_err(Error::from);
                        if let Ok(entry) = &e {
                            next = entry.seq + 1;
                        }
                        buf.push_back(e);
                    }
                }
                Err(e) => {
                    done = true;
                    buf.push_back(Err(e.into()));
                }
            }
        }
        buf.pop_front()
    })
}

/// Decodes a stored entry's record, if its content is still there.
pub fn decode(entry: &StoredEntry) -> Option<Record> {
    entry
        .content
        .as_ref()
        .and_then(|c| serde_json::from_slice::<Record>(c).ok())
}

/// Key of the chain state, for tests that tamper with the store.
pub const CHAIN_STATE_KEY: &[u8] = META_CHAIN_STATE;
