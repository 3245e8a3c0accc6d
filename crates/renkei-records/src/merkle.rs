//! RFC 9162 Merkle tree hashing over leaf hashes: the incremental frontier, whole-tree
//! levels for bulk proofs, inclusion proofs and their verification (RFC 9162 §2.1.3).

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

fn mth_range(start: u64, end: u64, get_leaf: &impl Fn(u64) -> Hash) -> Hash {
    match end - start {
        0 => empty_root(),
        1 => get_leaf(start),
        n => {
            let k = largest_power_of_two_below(n);
            node_hash(
                &mth_range(start, start + k, get_leaf),
                &mth_range(start + k, end, get_leaf),
            )
        }
    }
}

/// The RFC 9162 audit path `PATH(m, D[0:tree_size])` for leaf `leaf_index`, computed with the
/// RFC's recursion (O(n) leaf reads; use [`MerkleTree`] for many proofs). Empty when
/// `leaf_index >= tree_size`.
pub fn inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    get_leaf: impl Fn(u64) -> Hash,
) -> Vec<Hash> {
    let mut out = Vec::new();
    if leaf_index >= tree_size {
        return out;
    }
    path(leaf_index, 0, tree_size, &get_leaf, &mut out);
    out
}

fn path(m: u64, start: u64, end: u64, get_leaf: &impl Fn(u64) -> Hash, out: &mut Vec<Hash>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(m, start, start + k, get_leaf, out);
        out.push(mth_range(start + k, end, get_leaf));
    } else {
        path(m - k, start + k, end, get_leaf, out);
        out.push(mth_range(start, start + k, get_leaf));
    }
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
}
