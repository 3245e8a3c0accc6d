//! RFC 9162 Merkle tree hashing over leaf hashes: the incremental frontier, whole-tree
//! levels for bulk proofs, inclusion proofs (§2.1.3) and consistency proofs (§2.1.4), each
//! with its verification.

use ring::digest::{Context, SHA256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the RFC 9162 leaf hash.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    to_hash(ctx.finish().as_ref())
}

/// `SHA-256(0x01 || left || right)`: the RFC 9162 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    to_hash(ctx.finish().as_ref())
}

/// `SHA-256()`: the root of the empty tree.
pub fn empty_root() -> Hash {
    to_hash(ring::digest::digest(&SHA256, b"").as_ref())
}

pub(crate) fn to_hash(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[..32]);
    out
}

/// The right edge of a growing tree: one perfect-subtree root per set bit of the size,
/// largest first. O(log n) hashes; appending costs one leaf plus amortised one node hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its parts; `None` when `nodes` does not have one hash per
    /// set bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut m = self.size;
        while m & 1 == 1 {
            // Invariant: one node per set bit, so a set bit always has a node to pop.
            if let Some(left) = self.nodes.pop() {
                h = node_hash(&left, &h);
            }
            m >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The RFC 9162 root, `MTH(D[0:size])`.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        let mut h = *last;
        for left in iter {
            h = node_hash(left, &h);
        }
        h
    }
}

/// MTH over a slice of leaf hashes, by the RFC's recursive definition.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

fn largest_power_of_two_below(n: u64) -> u64 {
    // n >= 2: the largest power of two strictly less than n.
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// `MTH(D[start:end])` reading each leaf in the range exactly once: `end - start` leaf reads
/// and `end - start - 1` node hashes (recursion depth is the tree height, at most 64).
fn try_mth_range<E>(
    start: u64,
    end: u64,
    get_leaf: &impl Fn(u64) -> Result<Hash, ProofError<E>>,
) -> Result<Hash, ProofError<E>> {
    match end - start {
        0 => Ok(empty_root()),
        1 => get_leaf(start),
        n => {
            let k = largest_power_of_two_below(n);
            let left = try_mth_range(start, start + k, get_leaf)?;
            let right = try_mth_range(start + k, end, get_leaf)?;
            Ok(node_hash(&left, &right))
        }
    }
}

/// Why a proof could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    /// The sizes do not describe a proof (the old size is larger than the new one).
    #[error("no proof from tree size {old} to tree size {new}")]
    Sizes {
        /// The earlier tree size asked for.
        old: u64,
        /// The later tree size asked for.
        new: u64,
    },
    /// The leaf source failed.
    #[error("leaf {index} could not be read: {error}")]
    Leaf {
        /// The leaf (seq) being read.
        index: u64,
        /// The source's error.
        error: E,
    },
}

/// Why a consistency proof does not verify (RFC 9162 §2.1.4.2), named so a report can say
/// which part failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    /// The "new" tree is smaller than the old one: the log shrank.
    #[error("the new tree ({new} leaves) is smaller than the old one ({old})")]
    Shrunk {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// Both trees have the same size but different roots.
    #[error("same tree size with two different roots")]
    SameSizeDifferentRoots,
    /// A proof was given where none is needed (equal sizes or an empty old tree).
    #[error("a non-empty proof where the empty proof is expected")]
    UnexpectedProof,
    /// The proof has the wrong number of hashes for the two sizes.
    #[error("the proof has the wrong number of hashes for these sizes")]
    WrongLength,
    /// The proof does not rebuild the old root: the first `old` leaves are not what the old
    /// checkpoint signed (history was rewritten), or the proof is bad.
    #[error("the proof does not rebuild the old root")]
    OldRootMismatch,
    /// The proof rebuilds the old root but not the new one. (When the old size is a power
    /// of two the old root is the proof's starting node, so a wrong old root shows here.)
    #[error("the proof does not rebuild the new root")]
    NewRootMismatch,
}

/// The RFC 9162 audit path `PATH(m, D[0:tree_size])` for leaf `leaf_index`, computed with the
/// RFC's recursion (O(n) leaf reads; use [`MerkleTree`] for many proofs). Empty when
/// `leaf_index >= tree_size`.
pub fn inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    get_leaf: impl Fn(u64) -> Hash,
) -> Vec<Hash> {
    try_inclusion_proof(leaf_index, tree_size, |i| {
        Ok::<Hash, std::convert::Infallible>(get_leaf(i))
    })
    .unwrap_or_default()
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of `tree_size`
/// leaves with root `root`?
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let mut fnode = index;
    let mut snode = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// The RFC 9162 §2.1.4.1 consistency proof `PROOF(old, D[new])`: the hashes that show the
/// tree of the first `old` leaves is a prefix of the tree of the first `new` leaves.
///
/// `get_leaf(i)` returns leaf hash `i` (for the gateway: `StoredEntry::leaf_hash` of seq `i`).
/// Every leaf below `new` is read at most once, in ascending order within each subtree; the
/// work is at most `new` leaf reads and `new` node hashes (no subtree is hashed twice).
/// Empty for `old == 0` and `old == new`; `ProofError::Sizes` when `old > new`.
pub fn consistency_proof<E>(
    old: u64,
    new: u64,
    get_leaf: impl Fn(u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, ProofError<E>> {
    if old > new {
        return Err(ProofError::Sizes { old, new });
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    let read = |i: u64| get_leaf(i).map_err(|error| ProofError::Leaf { index: i, error });
    subproof(old, 0, new, true, &read, &mut out)?;
    Ok(out)
}

/// [`consistency_proof`] over leaf hashes held in memory (`leaves.len()` is at least `new`).
pub fn consistency_proof_from_leaves(
    old: u64,
    new: u64,
    leaves: &[Hash],
) -> Result<Vec<Hash>, ProofError<std::convert::Infallible>> {
    if new > leaves.len() as u64 {
        return Err(ProofError::Sizes {
            old,
            new: leaves.len() as u64,
        });
    }
    consistency_proof(old, new, |i| Ok(leaves[i as usize]))
}

/// `SUBPROOF(m, D[start:end], b)` of RFC 9162 §2.1.4.1, appending to `out` in proof order.
fn subproof<E>(
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    get_leaf: &impl Fn(u64) -> Result<Hash, ProofError<E>>,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError<E>> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(try_mth_range(start, end, get_leaf)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(m, start, start + k, complete, get_leaf, out)?;
        out.push(try_mth_range(start + k, end, get_leaf)?);
    } else {
        subproof(m - k, start + k, end, false, get_leaf, out)?;
        out.push(try_mth_range(start, start + k, get_leaf)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old` leaves with root `old_root`
/// is a prefix of the tree of `new` leaves with root `new_root`? Equal sizes need equal
/// roots and an empty proof; an empty old tree is consistent with anything (empty proof).
pub fn verify_consistency(
    old: u64,
    old_root: &Hash,
    new: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    if new < old {
        return Err(ConsistencyError::Shrunk { old, new });
    }
    if old == new {
        if old_root != new_root {
            return Err(ConsistencyError::SameSizeDifferentRoots);
        }
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ConsistencyError::UnexpectedProof)
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ConsistencyError::UnexpectedProof)
        };
    }
    if proof.is_empty() {
        return Err(ConsistencyError::WrongLength);
    }
    // Step 2: when `old` is a power of two the old root is itself the first node.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    let mut fnode = old - 1;
    let mut snode = new - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = *path[0];
    let mut sr = *path[0];
    for c in &path[1..] {
        if snode == 0 {
            return Err(ConsistencyError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ConsistencyError::WrongLength);
    }
    if fr != *old_root {
        return Err(ConsistencyError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ConsistencyError::NewRootMismatch);
    }
    Ok(())
}

/// [`inclusion_proof`] over a fallible leaf source (a store): the audit path for
/// `leaf_index` in the tree of `tree_size` leaves, reading each other leaf at most once.
pub fn try_inclusion_proof<E>(
    leaf_index: u64,
    tree_size: u64,
    get_leaf: impl Fn(u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, ProofError<E>> {
    if leaf_index >= tree_size {
        return Err(ProofError::Sizes {
            old: leaf_index,
            new: tree_size,
        });
    }
    let read = |i: u64| get_leaf(i).map_err(|error| ProofError::Leaf { index: i, error });
    let mut out = Vec::new();
    try_path(leaf_index, 0, tree_size, &read, &mut out)?;
    Ok(out)
}

fn try_path<E>(
    m: u64,
    start: u64,
    end: u64,
    get_leaf: &impl Fn(u64) -> Result<Hash, ProofError<E>>,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError<E>> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        try_path(m, start, start + k, get_leaf, out)?;
        out.push(try_mth_range(start + k, end, get_leaf)?);
    } else {
        try_path(m - k, start + k, end, get_leaf, out)?;
        out.push(try_mth_range(start, start + k, get_leaf)?);
    }
    Ok(())
}

/// A whole tree held level by level (2n hashes), for exporting many proofs at once. A lone
/// last node is carried up unchanged, which gives exactly the RFC 9162 shape.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`.
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().map_or(0, |l| l.len()) > 1 {
            let below = levels.last().map(|l| l.as_slice()).unwrap_or(&[]);
            let up: Vec<Hash> = below
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            levels.push(up);
        }
        MerkleTree { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The root.
    pub fn root(&self) -> Hash {
        match self.levels.last() {
            Some(top) if top.len() == 1 => top[0],
            _ => empty_root(),
        }
    }

    /// The audit path for `index` (bottom-up, as RFC 9162 orders it); empty when out of range.
    pub fn proof(&self, index: u64) -> Vec<Hash> {
        let mut out = Vec::new();
        if index >= self.size() {
            return out;
        }
        let mut i = index as usize;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                out.push(level[sibling]);
            }
            i >>= 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn hand_computed_small_trees() {
        let l = leaves(3);
        assert_eq!(root_of(&[]), empty_root());
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root_of(&l[..1]), l[0]);
        assert_eq!(root_of(&l[..2]), node_hash(&l[0], &l[1]));
        // Three leaves: the left subtree holds two, the right one.
        assert_eq!(root_of(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        // RFC 9162 test vector style: leaf hash of the empty string.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn frontier_and_levels_agree_with_the_recursive_definition() {
        let all = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for n in 1..=70usize {
            f.push(all[n - 1]);
            assert_eq!(f.nodes().len(), (n as u64).count_ones() as usize);
            assert_eq!(f.root(), root_of(&all[..n]), "size {n}");
            assert_eq!(
                MerkleTree::new(all[..n].to_vec()).root(),
                root_of(&all[..n]),
                "size {n}"
            );
        }
        let again = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
        assert_eq!(again, f);
        assert!(Frontier::from_parts(71, f.nodes().to_vec()).is_none());
    }

    #[test]
    fn proofs_verify_and_both_constructions_agree() {
        let all = leaves(38);
        for size in 1..=37u64 {
            let tree = MerkleTree::new(all[..size as usize].to_vec());
            let root = tree.root();
            for i in 0..size {
                let p = inclusion_proof(i, size, |k| all[k as usize]);
                assert_eq!(p, tree.proof(i), "size {size} index {i}");
                assert!(verify_inclusion(&all[i as usize], i, size, &p, &root));
                // Wrong index, wrong leaf, wrong size, truncated proof all fail.
                if size > 1 {
                    assert!(!verify_inclusion(
                        &all[i as usize],
                        (i + 1) % size,
                        size,
                        &p,
                        &root
                    ));
                    assert!(!verify_inclusion(
                        &all[((i + 1) % size) as usize],
                        i,
                        size,
                        &p,
                        &root
                    ));
                    assert!(!verify_inclusion(
                        &all[i as usize],
                        i,
                        size,
                        &p[..p.len() - 1],
                        &root
                    ));
                }
                // A different root fails. (A root of one size presented with another size
                // can verify: the signed checkpoint binds the size to the root.)
                let other_root = root_of(&all[..size as usize + 1]);
                assert!(!verify_inclusion(
                    &all[i as usize],
                    i,
                    size,
                    &p,
                    &other_root
                ));
            }
        }
    }

    #[test]
    fn proof_for_three_leaves_is_hand_checked() {
        let l = leaves(3);
        let tree = MerkleTree::new(l.clone());
        assert_eq!(tree.proof(0), vec![l[1], l[2]]);
        assert_eq!(tree.proof(2), vec![node_hash(&l[0], &l[1])]);
        assert!(tree.proof(3).is_empty());
    }

    /// The RFC 6962 reference tree of eight leaves (as published in transparency-dev/merkle
    /// `testonly/constants.go` and `proof/verify_test.go`).
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap()))
        .collect()
    }

    fn h(s: &str) -> Hash {
        to_hash(&hex::decode(s).unwrap())
    }

    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let l = reference_leaves();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, r) in roots.iter().enumerate() {
            assert_eq!(root_of(&l[..=n]), h(r), "root of {} leaves", n + 1);
        }
        let vectors: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (m, n, want) in vectors {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            let got = consistency_proof_from_leaves(m, n, &l).unwrap();
            assert_eq!(got, want, "proof {m} -> {n}");
            let (rm, rn) = (h(roots[m as usize - 1]), h(roots[n as usize - 1]));
            assert_eq!(verify_consistency(m, &rm, n, &rn, &want), Ok(()));
        }
        // Published inclusion vectors agree with the existing inclusion proofs.
        assert_eq!(
            inclusion_proof(5, 8, |i| l[i as usize]),
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
    }

    /// xorshift64*: a fixed-seed generator, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_change_fails() {
        let mut rng = Rng(0x9162_2026_1126_0001);
        let all = leaves(300);
        let prefix_roots: Vec<Hash> = {
            let mut f = Frontier::new();
            let mut out = vec![f.root()];
            for l in &all {
                f.push(*l);
                out.push(f.root());
            }
            out
        };
        // Every size up to 40, then random sizes up to 300.
        let sizes: Vec<u64> = (1..=40)
            .chain((0..25).map(|_| 41 + rng.below(260)))
            .collect();
        for n in sizes {
            let rn = prefix_roots[n as usize];
            for m in 0..=n {
                let rm = prefix_roots[m as usize];
                let p = consistency_proof_from_leaves(m, n, &all).unwrap();
                assert_eq!(verify_consistency(m, &rm, n, &rn, &p), Ok(()), "{m} -> {n}");
                if m == 0 || m == n {
                    assert!(p.is_empty());
                    continue;
                }
                // A flipped byte anywhere in the proof fails.
                let mut bad = p.clone();
                let at = rng.below(bad.len() as u64) as usize;
                bad[at][rng.below(32) as usize] ^= 1 << rng.below(8);
                assert!(
                    verify_consistency(m, &rm, n, &rn, &bad).is_err(),
                    "{m} -> {n}"
                );
                // A wrong old or new root fails, naming which.
                let mut wrong = rm;
                wrong[rng.below(32) as usize] ^= 0x80;
                // (When m is a power of two the old root is the proof's first node, so a
                // wrong one shows as a new root that is not rebuilt.)
                let expected = if m.is_power_of_two() {
                    ConsistencyError::NewRootMismatch
                } else {
                    ConsistencyError::OldRootMismatch
                };
                assert_eq!(verify_consistency(m, &wrong, n, &rn, &p), Err(expected));
                let mut wrong = rn;
                wrong[rng.below(32) as usize] ^= 0x80;
                assert_eq!(
                    verify_consistency(m, &rm, n, &wrong, &p),
                    Err(ConsistencyError::NewRootMismatch)
                );
                // A shortened or lengthened proof fails. (A proof presented with a nearby
                // size can verify, as for inclusion: the signed checkpoint binds size to root.)
                assert!(verify_consistency(m, &rm, n, &rn, &p[..p.len() - 1]).is_err());
                let mut longer = p.clone();
                longer.push(rn);
                assert!(verify_consistency(m, &rm, n, &rn, &longer).is_err());
                // A rewritten leaf below m: the current log's proof no longer rebuilds rm.
                let mut rewritten = all[..n as usize].to_vec();
                rewritten[rng.below(m) as usize][0] ^= 1;
                let cur_root = root_of(&rewritten);
                let p2 = consistency_proof_from_leaves(m, n, &rewritten).unwrap();
                assert!(verify_consistency(m, &rm, n, &cur_root, &p2).is_err());
            }
        }
        assert_eq!(
            verify_consistency(3, &prefix_roots[3], 2, &prefix_roots[2], &[]),
            Err(ConsistencyError::Shrunk { old: 3, new: 2 })
        );
        assert_eq!(
            verify_consistency(2, &prefix_roots[2], 2, &prefix_roots[3], &[]),
            Err(ConsistencyError::SameSizeDifferentRoots)
        );
        assert_eq!(
            verify_consistency(0, &prefix_roots[0], 2, &prefix_roots[2], &[all[0]]),
            Err(ConsistencyError::UnexpectedProof)
        );
        assert!(matches!(
            consistency_proof_from_leaves(3, 2, &all),
            Err(ProofError::Sizes { old: 3, new: 2 })
        ));
    }

    #[test]
    fn proofs_read_each_leaf_at_most_once_and_report_source_errors() {
        use std::cell::RefCell;
        let all = leaves(1000);
        let reads = RefCell::new(vec![0u32; 1000]);
        let p = consistency_proof(377, 1000, |i| {
            reads.borrow_mut()[i as usize] += 1;
            Ok::<Hash, ()>(all[i as usize])
        })
        .unwrap();
        assert!(reads.borrow().iter().all(|&r| r <= 1));
        assert_eq!(p, consistency_proof_from_leaves(377, 1000, &all).unwrap());
        let err = consistency_proof(5, 10, |i| {
            if i == 7 {
                Err("gone")
            } else {
                Ok(all[i as usize])
            }
        })
        .unwrap_err();
        assert_eq!(
            err,
            ProofError::Leaf {
                index: 7,
                error: "gone"
            }
        );
        let ip = try_inclusion_proof(3, 10, |i| Ok::<Hash, ()>(all[i as usize])).unwrap();
        assert_eq!(ip, inclusion_proof(3, 10, |i| all[i as usize]));
        assert!(try_inclusion_proof(10, 10, |i| Ok::<Hash, ()>(all[i as usize])).is_err());
    }
}
