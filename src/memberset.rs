//! A set of keys with a stable cursor: the members of one tag.

use std::collections::HashMap;
use std::sync::Arc;

/// Key and tag names are shared between the entries' index and the tag sets.
pub type Bytes = Arc<[u8]>;

/// Members in a vector (for cursors) plus their positions (for O(1) removal). Removal swaps the
/// last member into the hole; cursors walk from the end down, so a member present during a
/// whole scan is always returned, as SSCAN promises.
#[derive(Default)]
pub struct MemberSet {
    order: Vec<Bytes>,
    pos: HashMap<Bytes, u32>,
}

impl MemberSet {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.pos.contains_key(key)
    }

    pub fn insert(&mut self, key: Bytes) -> bool {
        if self.pos.contains_key(&key) {
            return false;
        }
        self.pos.insert(key.clone(), self.order.len() as u32);
        self.order.push(key);
        true
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(at) = self.pos.remove(key) else {
            return false;
        };
        let at = at as usize;
        self.order.swap_remove(at);
        if let Some(moved) = self.order.get(at) {
            if let Some(p) = self.pos.get_mut(moved) {
                *p = at as u32;
            }
        }
        true
    }

    /// Removes and returns some member; used to drain a detached set a little at a time.
    pub fn pop(&mut self) -> Option<Bytes> {
        let key = self.order.pop()?;
        self.pos.remove(&key);
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
            + self.pos.capacity() * (std::mem::size_of::<(Bytes, u32)>() + 1)
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
        assert!(s.insert(b("a")));
        assert!(!s.insert(b("a")));
        assert!(s.insert(b("b")));
        assert!(s.insert(b("c")));
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert!(s.contains(b"c") && s.contains(b"b") && !s.contains(b"a"));
        assert_eq!(s.len(), 2);
        assert!(s.remove(b"c"));
        assert!(s.remove(b"b"));
        assert!(s.is_empty());
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut s = MemberSet::default();
        for i in 0..100 {
            s.insert(b(&format!("k{i}")));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, keys) = s.scan(cursor, 7);
            seen.extend(keys.iter().cloned());
            // Churn between calls: remove some early members, add new ones.
            s.remove(format!("k{}", step * 3).as_bytes());
            s.insert(b(&format!("new{step}")));
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            let k = format!("k{i}");
            if s.contains(k.as_bytes()) {
                assert!(seen.contains(k.as_bytes()), "{k} missed");
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
