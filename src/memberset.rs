//! A set of keys with a stable cursor: the members of one tag.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Key and tag names are shared between the entries' index and the tag sets.
pub type Bytes = Arc<[u8]>;

/// Members in a vector (for cursors) plus their positions (for O(1) removal). Removal swaps the
/// last member into the hole; cursors walk from the end down, so a member present during a
/// whole scan is always returned, as SSCAN promises.
///
/// Members are the index's one shared copy of each key name, so positions are found by the
/// name's address: no hashing or comparing of key bytes, which cost a cache miss each on
/// large tags. Callers pass the index's own `Bytes`.
#[derive(Default)]
pub struct MemberSet {
    order: Vec<Bytes>,
    pos: HashMap<usize, u32, BuildHasherDefault<AddressHasher>>,
}

fn address(key: &Bytes) -> usize {
    key.as_ptr() as usize
}

/// Hashes an address (not attacker-chosen, unlike key bytes): multiply, then fold the high bits
/// into the low ones the table indexes by.
#[derive(Default)]
pub struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        let h = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl MemberSet {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, key: &Bytes) -> bool {
        self.pos.contains_key(&address(key))
    }

    pub fn insert(&mut self, key: Bytes) -> bool {
        if self.pos.contains_key(&address(&key)) {
            return false;
        }
        self.pos.insert(address(&key), self.order.len() as u32);
        self.order.push(key);
        true
    }

    pub fn remove(&mut self, key: &Bytes) -> bool {
        let Some(at) = self.pos.remove(&address(key)) else {
            return false;
        };
        let at = at as usize;
        self.order.swap_remove(at);
        if let Some(moved) = self.order.get(at) {
            if let Some(p) = self.pos.get_mut(&address(moved)) {
                *p = at as u32;
            }
        }
        true
    }

    /// Removes and returns some member; used to drain a detached set a little at a time.
    pub fn pop(&mut self) -> Option<Bytes> {
        let key = self.order.pop()?;
        self.pos.remove(&address(&key));
        Some(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.order.iter()
    }

    /// Up to `count` members below `cursor` (0 starts a scan), and the cursor to continue
    /// from (0 when the scan is over).
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, &[Bytes]) {
        let hi = if cursor == 0 {
            self.order.len()
        } else {
            usize::try_from(cursor)
                .unwrap_or(usize::MAX)
                .min(self.order.len())
        };
        let lo = hi.saturating_sub(count.max(1));
        (lo as u64, &self.order[lo..hi])
    }

    /// Bytes this set holds beyond the key names themselves.
    pub fn overhead_bytes(&self) -> usize {
        self.order.capacity() * std::mem::size_of::<Bytes>()
            + self.pos.capacity() * (std::mem::size_of::<(usize, u32)>() + 1)
    }

    /// Gives memory back after large removals.
    pub fn shrink(&mut self) {
        if self.order.capacity() > 64 && self.order.len() < self.order.capacity() / 4 {
            self.order.shrink_to_fit();
            self.pos.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn b(s: &str) -> Bytes {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn insert_remove_contains() {
        let mut s = MemberSet::default();
        let (a, bb, c) = (b("a"), b("b"), b("c"));
        assert!(s.insert(a.clone()));
        assert!(!s.insert(a.clone()));
        assert!(s.insert(bb.clone()));
        assert!(s.insert(c.clone()));
        assert!(s.remove(&a));
        assert!(!s.remove(&a));
        assert!(s.contains(&c) && s.contains(&bb) && !s.contains(&a));
        assert!(!s.contains(&b("c")), "members are the index's own copies");
        assert_eq!(s.len(), 2);
        assert!(s.remove(&c));
        assert!(s.remove(&bb));
        assert!(s.is_empty());
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut s = MemberSet::default();
        let keys: Vec<Bytes> = (0..100).map(|i| b(&format!("k{i}"))).collect();
        for k in &keys {
            s.insert(k.clone());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, page) = s.scan(cursor, 7);
            seen.extend(page.iter().cloned());
            // Churn between calls: remove some early members, add new ones.
            if let Some(k) = keys.get(step * 3) {
                s.remove(k);
            }
            s.insert(b(&format!("new{step}")));
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for k in &keys {
            if s.contains(k) {
                assert!(seen.contains(k), "{k:?} missed");
            }
        }
    }

    #[test]
    fn pop_drains() {
        let mut s = MemberSet::default();
        s.insert(b("x"));
        s.insert(b("y"));
        let mut got = vec![s.pop().unwrap(), s.pop().unwrap()];
        got.sort();
        assert_eq!(got, vec![b("x"), b("y")]);
        assert!(s.pop().is_none());
    }
}
