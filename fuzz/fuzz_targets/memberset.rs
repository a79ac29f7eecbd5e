//! MemberSet (src/memberset.rs) against a HashSet model: random insert / remove / contains /
//! pop / shrink / scan steps. After every step the set has the model's members; every page a
//! scan returns holds current members only; when a scan ends, every member present for the
//! whole scan has been returned (SSCAN's guarantee).
//!
//! Input: a byte per operation (low 3 bits: the operation, high bits: the key among a pool of
//! 32, or the scan COUNT).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rediscache::memberset::{KeyId, MemberSet};
use std::collections::HashSet;

const POOL: usize = 32;

struct Scan {
    cursor: u64,
    seen: HashSet<usize>,
    /// Members at the start not removed since.
    throughout: HashSet<usize>,
}

fuzz_target!(|data: &[u8]| {
    // Key ids as the index hands them out, spread so hashing sees large numbers too.
    let pool: Vec<KeyId> = (0..POOL as KeyId)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let index_of = |k: &KeyId| pool.iter().position(|p| p == k).expect("not a pool key");
    let mut set = MemberSet::default();
    let mut model: HashSet<usize> = HashSet::new();
    let mut scan: Option<Scan> = None;

    for &op in data {
        let k = usize::from(op >> 3) % POOL;
        match op & 7 {
            0 | 1 => assert_eq!(set.insert(pool[k]), model.insert(k)),
            2 | 3 => {
                assert_eq!(set.remove(pool[k]), model.remove(&k));
                if let Some(s) = scan.as_mut() {
                    s.throughout.remove(&k);
                }
            }
            4 => {
                let got = set.pop().map(|b| index_of(&b));
                match got {
                    Some(i) => {
                        assert!(model.remove(&i), "popped a non-member");
                        if let Some(s) = scan.as_mut() {
                            s.throughout.remove(&i);
                        }
                    }
                    None => assert!(model.is_empty()),
                }
            }
            5 => set.shrink(),
            _ => {
                let s = scan.get_or_insert_with(|| Scan {
                    cursor: 0,
                    seen: HashSet::new(),
                    throughout: model.clone(),
                });
                let count = usize::from(op >> 3) % 9; // 0 is read as 1
                let (next, page) = set.scan(s.cursor, count);
                assert!(page.len() <= count.max(1));
                for m in &page {
                    let i = index_of(m);
                    assert!(!s.seen.contains(&i), "scan returned a member twice");
                    assert!(model.contains(&i), "scan returned a non-member");
                    s.seen.insert(i);
                }
                s.cursor = next;
                if next == 0 {
                    let missed: Vec<_> = s.throughout.difference(&s.seen).collect();
                    assert!(missed.is_empty(), "scan missed {missed:?}");
                    scan = None;
                }
            }
        }
        assert_eq!(set.len(), model.len());
        assert_eq!(set.is_empty(), model.is_empty());
        assert_eq!(set.contains(pool[k]), model.contains(&k));
    }
    let members: HashSet<usize> = set.iter().map(|m| index_of(&m)).collect();
    assert_eq!(members, model);
    assert_eq!(set.iter().count(), model.len(), "a member listed twice");
    // Drain the set fully, the way a detached tag set is freed.
    while let Some(b) = set.pop() {
        assert!(model.remove(&index_of(&b)));
    }
    assert!(model.is_empty());
});
