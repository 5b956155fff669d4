//! RFC 9162 hashes, the tree frontier and inclusion paths, as keel/audit/merkle.py has them.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// `Frontier.append`: the right edge after one more leaf.
pub fn append(size: &mut u64, hashes: &mut Vec<Hash>, leaf: Hash) {
    hashes.push(leaf);
    *size += 1;
    let mut n = *size;
    while n % 2 == 0 {
        let right = hashes.pop().expect("a pair to merge");
        let last = hashes.last_mut().expect("a pair to merge");
        *last = node_hash(last, &right);
        n /= 2;
    }
}

/// `Frontier.root`.
pub fn root(hashes: &[Hash]) -> Hash {
    let Some((last, rest)) = hashes.split_last() else {
        return empty_root();
    };
    let mut r = *last;
    for h in rest.iter().rev() {
        r = node_hash(h, &r);
    }
    r
}

/// `merkle.root_from_inclusion`.
pub fn root_from_inclusion(index: u64, size: u64, leaf: Hash, proof: &[&[u8]]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, leaf);
    for p in proof {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// `merkle.tree_paths`: the root and every leaf's inclusion path, level by level.
pub fn tree_paths(leaves: Vec<Hash>) -> (Hash, Vec<Vec<Hash>>) {
    if leaves.is_empty() {
        return (empty_root(), vec![]);
    }
    let n = leaves.len();
    let mut levels = vec![leaves];
    while levels.last().map_or(0, Vec::len) > 1 {
        let cur = levels.last().unwrap();
        let mut up: Vec<Hash> = cur
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
        if cur.len() % 2 == 1 {
            up.push(*cur.last().unwrap());
        }
        levels.push(up);
    }
    let below = &levels[..levels.len() - 1];
    let paths = (0..n)
        .map(|mut m| {
            let mut path = Vec::new();
            for level in below {
                if let Some(s) = level.get(m ^ 1) {
                    path.push(*s);
                }
                m >>= 1;
            }
            path
        })
        .collect();
    (levels.last().unwrap()[0], paths)
}
