//! The append-only log state: sequence numbers, the hash chain and the Merkle frontier, and
//! the entry the gateway stores for each record. Pure logic: the gateway persists
//! `StoredEntry::to_bytes` and `ChainState::to_bytes` in one store transaction.

use ring::digest::{Context, SHA256};

use crate::merkle::{leaf_hash, to_hash, Frontier, Hash};
use crate::record::{canonical_bytes, Record};
use crate::RecordsError;

/// `chain_hash[-1]`: the chain starts from 32 zero bytes.
pub const CHAIN_GENESIS: Hash = [0u8; 32];

/// `SHA-256(previous_chain_hash || leaf_hash)`.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(previous);
    ctx.update(leaf);
    to_hash(ctx.finish().as_ref())
}

/// What the gateway stores per record, keyed by `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// `SHA-256(0x00 || canonical bytes)`.
    pub leaf_hash: Hash,
    /// `SHA-256(chain_hash[seq-1] || leaf_hash)`.
    pub chain_hash: Hash,
    /// The canonical record bytes; `None` once the retention sweep deleted them.
    pub content: Option<Vec<u8>>,
}

/// Version byte of the stored-entry encoding.
const ENTRY_FORMAT: u8 = 1;
/// Version byte of the chain-state encoding.
const STATE_FORMAT: u8 = 1;

impl StoredEntry {
    /// Compact binary: `1 | seq (u64 BE) | leaf (32) | chain (32) | has_content (0/1) | content`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.content.as_ref().map_or(0, |c| c.len());
        let mut out = Vec::with_capacity(74 + len);
        out.push(ENTRY_FORMAT);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.leaf_hash);
        out.extend_from_slice(&self.chain_hash);
        match &self.content {
            Some(c) => {
                out.push(1);
                out.extend_from_slice(c);
            }
            None => out.push(0),
        }
        out
    }

    /// Decodes [`StoredEntry::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredEntry, RecordsError> {
        const WHAT: &str = "stored_entry";
        if bytes.len() < 74 || bytes[0] != ENTRY_FORMAT {
            return Err(RecordsError::format(WHAT, "unknown version or too short"));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[1..9]);
        let content = match bytes[73] {
            0 if bytes.len() == 74 => None,
            1 => Some(bytes[74..].to_vec()),
            _ => return Err(RecordsError::format(WHAT, "bad content flag")),
        };
        Ok(StoredEntry {
            seq: u64::from_be_bytes(seq),
            leaf_hash: to_hash(&bytes[9..41]),
            chain_hash: to_hash(&bytes[41..73]),
            content,
        })
    }

    /// The key the gateway should store it under: `seq` big-endian, so keys sort by seq.
    pub fn key(&self) -> [u8; 8] {
        self.seq.to_be_bytes()
    }
}

/// The state of the log after `next_seq` entries: chain head and Merkle frontier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainState {
    /// The seq the next appended entry gets (= entries so far = tree size).
    pub next_seq: u64,
    /// `chain_hash[next_seq - 1]`, or zeros for the empty log.
    pub head: Hash,
    frontier: Frontier,
}

impl ChainState {
    /// The empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends canonical record bytes and returns the entry to store.
    pub fn append(&mut self, canonical: &[u8]) -> StoredEntry {
        let leaf = leaf_hash(canonical);
        let entry = self.append_leaf(leaf);
        StoredEntry {
            content: Some(canonical.to_vec()),
            ..entry
        }
    }

    /// Validates a record ([`Record::validate`]: RFC 3339 times, no individual number in free
    /// text), encodes it canonically and appends it. An invalid record leaves the state
    /// untouched. (A writer that appends bytes, as the gateway's batch does, gets the same
    /// check from [`crate::checked_canonical_bytes`].)
    pub fn append_record(&mut self, record: &Record) -> Result<StoredEntry, RecordsError> {
        record.validate()?;
        Ok(self.append(&canonical_bytes(record)))
    }

    fn append_leaf(&mut self, leaf: Hash) -> StoredEntry {
        let chain = chain_hash(&self.head, &leaf);
        let entry = StoredEntry {
            seq: self.next_seq,
            leaf_hash: leaf,
            chain_hash: chain,
            content: None,
        };
        self.head = chain;
        self.frontier.push(leaf);
        self.next_seq += 1;
        entry
    }

    /// The Merkle root over all entries so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The Merkle frontier.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Rebuilds the state by replaying stored entries from seq 0, checking each one's seq,
    /// chain hash and (when present) content hash on the way.
    pub fn rebuild(
        entries: impl IntoIterator<Item = StoredEntry>,
    ) -> Result<ChainState, RecordsError> {
        let mut state = ChainState::new();
        for e in entries {
            if e.seq != state.next_seq {
                return Err(RecordsError::format(
                    "chain_state",
                    format!("expected seq {}, found {}", state.next_seq, e.seq),
                ));
            }
            if let Some(c) = &e.content {
                if leaf_hash(c) != e.leaf_hash {
                    return Err(RecordsError::format(
                        "chain_state",
                        format!("content of seq {} does not match its leaf hash", e.seq),
                    ));
                }
            }
            let made = state.append_leaf(e.leaf_hash);
            if made.chain_hash != e.chain_hash {
                return Err(RecordsError::format(
                    "chain_state",
                    format!("chain hash of seq {} does not match", e.seq),
                ));
            }
        }
        Ok(state)
    }

    /// `1 | next_seq (u64 BE) | head (32) | frontier hashes (32 each, one per set bit of next_seq)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41 + 32 * self.frontier.nodes().len());
        out.push(STATE_FORMAT);
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        out.extend_from_slice(&self.head);
        for n in self.frontier.nodes() {
            out.extend_from_slice(n);
        }
        out
    }

    /// Decodes [`ChainState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ChainState, RecordsError> {
        const WHAT: &str = "chain_state";
        if bytes.len() < 41 || bytes[0] != STATE_FORMAT || !(bytes.len() - 41).is_multiple_of(32) {
            return Err(RecordsError::format(WHAT, "unknown version or bad length"));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[1..9]);
        let next_seq = u64::from_be_bytes(seq);
        let nodes: Vec<Hash> = bytes[41..].chunks(32).map(to_hash).collect();
        let frontier = Frontier::from_parts(next_seq, nodes)
            .ok_or_else(|| RecordsError::format(WHAT, "frontier does not fit the size"))?;
        let head = to_hash(&bytes[9..41]);
        if next_seq == 0 && head != CHAIN_GENESIS {
            return Err(RecordsError::format(WHAT, "empty log with a non-zero head"));
        }
        Ok(ChainState {
            next_seq,
            head,
            frontier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::root_of;

    #[test]
    fn chain_follows_the_definition_and_round_trips() {
        let mut s = ChainState::new();
        let mut leaves = vec![];
        let mut prev = CHAIN_GENESIS;
        let mut stored = vec![];
        for i in 0..13u64 {
            let content = format!("record {i}");
            let e = s.append(content.as_bytes());
            assert_eq!(e.seq, i);
            assert_eq!(e.leaf_hash, leaf_hash(content.as_bytes()));
            assert_eq!(e.chain_hash, chain_hash(&prev, &e.leaf_hash));
            prev = e.chain_hash;
            leaves.push(e.leaf_hash);
            assert_eq!(StoredEntry::from_bytes(&e.to_bytes()).unwrap(), e);
            stored.push(e);
            assert_eq!(s.root(), root_of(&leaves));
            let again = ChainState::from_bytes(&s.to_bytes()).unwrap();
            assert_eq!(again, s);
        }
        assert_eq!(ChainState::rebuild(stored.clone()).unwrap(), s);
        let mut bad = stored.clone();
        bad[5].chain_hash[0] ^= 1;
        assert!(ChainState::rebuild(bad).is_err());
        let mut swept = stored[3].clone();
        swept.content = None;
        assert_eq!(StoredEntry::from_bytes(&swept.to_bytes()).unwrap(), swept);
        assert!(StoredEntry::from_bytes(&[1, 2, 3]).is_err());
        assert!(ChainState::from_bytes(&s.to_bytes()[..60]).is_err());
    }

    #[test]
    fn golden_first_chain_hash() {
        // chain_hash[0] = SHA-256(32 zero bytes || SHA-256(0x00 || "")).
        let mut s = ChainState::new();
        let e = s.append(b"");
        assert_eq!(
            hex::encode(e.leaf_hash),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let mut buf = [0u8; 64];
        buf[32..].copy_from_slice(&e.leaf_hash);
        assert_eq!(
            e.chain_hash,
            to_hash(ring::digest::digest(&SHA256, &buf).as_ref())
        );
    }
}
