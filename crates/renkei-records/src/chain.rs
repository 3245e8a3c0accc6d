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

/// Version byte of the first stored-entry encoding (still read; see [`StoredEntry::from_bytes`]).
const ENTRY_FORMAT_V1: u8 = 1;
/// Version byte of the compact stored-entry encoding written now.
const ENTRY_FORMAT_V2: u8 = 2;
/// Version byte of the chain-state encoding.
const STATE_FORMAT: u8 = 1;

/// v2 content flag: no content (swept); the leaf hash follows.
const SWEPT: u8 = 0;
/// v2 content flag: the canonical bytes follow as they are.
const RAW: u8 = 1;
/// v2 content flag: the canonical bytes follow packed with [`TOKENS`].
const PACKED: u8 = 2;

/// The fragments of canonical record JSON that the packed v2 content spells as one byte each:
/// byte `i + 1` stands for `TOKENS[i]`. Canonical JSON never holds a raw byte below 0x20 (it
/// escapes control characters), so these bytes cannot be confused with content; content that
/// does hold one is stored as it is. The table is on disk: extend it only with a new version.
const TOKENS: [&str; 28] = [
    "{\"kind\":",
    ",\"inquirer\":",
    ",\"provider\":",
    ",\"procedure\":",
    ",\"item\":",
    ",\"person\":",
    ",\"business_system\":",
    ",\"requested_at\":",
    ",\"provided_at\":",
    ",\"serial\":",
    ",\"result\":",
    ",\"reason\":",
    ",\"non_disclosure\":",
    ",\"staff\":",
    ",\"reference\":",
    "{\"actor\":",
    ",\"terminal\":",
    ",\"certificate_fingerprint\":",
    ",\"action\":",
    ",\"target\":",
    ",\"touched_individual_number\":",
    "null",
    "false",
    "true",
    "\"inquiry\"",
    "\"accepted\"",
    "\"answered\"",
    "+09:00\"",
];

/// `content` with every [`TOKENS`] fragment replaced by its byte (greedy, longest first at
/// each position); `None` when the content holds a byte below 0x20.
fn pack(content: &[u8]) -> Option<Vec<u8>> {
    if content.iter().any(|&b| b < 0x20) {
        return None;
    }
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let rest = &content[i..];
        // Most bytes start no token: only these few are worth comparing against the table.
        let best = matches!(content[i], b'{' | b',' | b'n' | b'f' | b't' | b'"' | b'+')
            .then(|| {
                TOKENS
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| rest.starts_with(t.as_bytes()))
                    .max_by_key(|(_, t)| t.len())
            })
            .flatten();
        match best {
            Some((n, t)) => {
                out.push(n as u8 + 1);
                i += t.len();
            }
            None => {
                out.push(content[i]);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Reverses [`pack`].
fn unpack(packed: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::with_capacity(packed.len() * 2);
    for &b in packed {
        if b < 0x20 {
            let t = TOKENS
                .get(usize::from(b).wrapping_sub(1))
                .ok_or_else(|| RecordsError::format("stored_entry", "unknown packed token"))?;
            out.extend_from_slice(t.as_bytes());
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

impl StoredEntry {
    /// Compact binary (v2): `2 | seq (u64 BE) | chain (32) | flag | …` where the flag is
    /// `0` (swept: the leaf hash follows), `1` (the canonical bytes follow) or `2` (they follow
    /// packed, see [`TOKENS`]). With content the leaf hash is not stored: it is
    /// `SHA-256(0x00 || content)` by definition, recomputed on reading, so a changed content
    /// shows as a broken chain.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.content.as_ref().map_or(32, |c| c.len());
        let mut out = Vec::with_capacity(42 + len);
        out.push(ENTRY_FORMAT_V2);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.chain_hash);
        match &self.content {
            Some(c) => match pack(c) {
                Some(p) => {
                    out.push(PACKED);
                    out.extend_from_slice(&p);
                }
                None => {
                    out.push(RAW);
                    out.extend_from_slice(c);
                }
            },
            None => {
                out.push(SWEPT);
                out.extend_from_slice(&self.leaf_hash);
            }
        }
        out
    }

    /// Decodes [`StoredEntry::to_bytes`], and the v1 encoding written by earlier builds:
    /// `1 | seq (u64 BE) | leaf (32) | chain (32) | has_content (0/1) | content`.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredEntry, RecordsError> {
        const WHAT: &str = "stored_entry";
        match bytes.first() {
            Some(&ENTRY_FORMAT_V1) => Self::from_v1(bytes),
            Some(&ENTRY_FORMAT_V2) if bytes.len() >= 42 => {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&bytes[1..9]);
                let chain_hash = to_hash(&bytes[9..41]);
                let rest = &bytes[42..];
                let (leaf_hash, content) = match bytes[41] {
                    SWEPT if rest.len() == 32 => (to_hash(rest), None),
                    RAW => (leaf_hash(rest), Some(rest.to_vec())),
                    PACKED => {
                        let c = unpack(rest)?;
                        (leaf_hash(&c), Some(c))
                    }
                    _ => return Err(RecordsError::format(WHAT, "bad content flag")),
                };
                Ok(StoredEntry {
                    seq: u64::from_be_bytes(seq),
                    leaf_hash,
                    chain_hash,
                    content,
                })
            }
            _ => Err(RecordsError::format(WHAT, "unknown version or too short")),
        }
    }

    /// The v1 bytes of this entry (what earlier builds wrote), for tests of old stores.
    #[doc(hidden)]
    pub fn to_bytes_v1(&self) -> Vec<u8> {
        let len = self.content.as_ref().map_or(0, |c| c.len());
        let mut out = Vec::with_capacity(74 + len);
        out.push(ENTRY_FORMAT_V1);
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

    fn from_v1(bytes: &[u8]) -> Result<StoredEntry, RecordsError> {
        const WHAT: &str = "stored_entry";
        if bytes.len() < 74 {
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
        assert!(StoredEntry::from_bytes(&[2, 2, 3]).is_err());
        assert!(ChainState::from_bytes(&s.to_bytes()[..60]).is_err());
    }

    #[test]
    fn every_token_starts_with_a_byte_pack_looks_at() {
        for t in TOKENS {
            assert!(
                matches!(
                    t.as_bytes()[0],
                    b'{' | b',' | b'n' | b'f' | b't' | b'"' | b'+'
                ),
                "{t}"
            );
        }
    }

    #[test]
    fn stored_entries_are_compact_and_old_ones_still_read() {
        let mut s = ChainState::new();
        let record = "{\"kind\":\"inquiry\",\"inquirer\":\"0112345678900000\",\"provider\":null,\
\"procedure\":\"JT01010000000214\",\"item\":\"TM00000000000002\",\"person\":\"000000000000042\",\
\"business_system\":\"kodomo-iryo\",\"requested_at\":\"2026-11-26T09:00:00.000+09:00\",\
\"provided_at\":null,\"serial\":null,\"result\":\"accepted\",\
\"reason\":\"sent\",\"non_disclosure\":false,\"staff\":null,\"reference\":\"inq-1\"}";
        let e = s.append(record.as_bytes());
        let v2 = e.to_bytes();
        assert_eq!(v2[0], ENTRY_FORMAT_V2);
        assert!(
            v2.len() + 120 < e.to_bytes_v1().len(),
            "v2 {} bytes, v1 {}",
            v2.len(),
            e.to_bytes_v1().len()
        );
        assert_eq!(StoredEntry::from_bytes(&v2).unwrap(), e);
        // What earlier builds wrote reads back the same.
        assert_eq!(StoredEntry::from_bytes(&e.to_bytes_v1()).unwrap(), e);
        let mut swept = e.clone();
        swept.content = None;
        assert_eq!(
            StoredEntry::from_bytes(&swept.to_bytes_v1()).unwrap(),
            swept
        );
        assert_eq!(StoredEntry::from_bytes(&swept.to_bytes()).unwrap(), swept);
        // Content with a control byte is stored as it is; the tokens stay unambiguous.
        let odd = s.append(b"null\x01{\"kind\":");
        assert_eq!(odd.to_bytes()[41], RAW);
        assert_eq!(StoredEntry::from_bytes(&odd.to_bytes()).unwrap(), odd);
        // A changed stored content no longer matches the chain.
        let mut tampered = v2.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x40;
        let t = StoredEntry::from_bytes(&tampered).unwrap();
        assert_ne!(t.leaf_hash, e.leaf_hash);
        assert_ne!(chain_hash(&CHAIN_GENESIS, &t.leaf_hash), t.chain_hash);
        // An unknown token byte is refused.
        let mut bad = v2.clone();
        bad.push(0x1f);
        assert!(StoredEntry::from_bytes(&bad).is_err());
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
