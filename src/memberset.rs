//! A set of key ids with a stable cursor: the members of one tag.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Key and tag names are shared between the entries' index and the tag sets.
pub type Bytes = Arc<[u8]>;

/// A key's number in its database's index: tag sets hold these 4-byte ids rather than names.
pub type KeyId = u32;

/// Members in a vector (for cursors) plus their positions (for O(1) removal). Removal swaps the
/// last member into the hole; cursors walk from the end down, so a member present during a
/// whole scan is always returned, as SSCAN promises. Ids are hashed and compared as numbers:
/// no key bytes are touched, which cost a cache miss each on large tags.
#[derive(Default)]
pub struct MemberSet {
    order: Vec<KeyId>,
    pos: HashMap<KeyId, u32, BuildHasherDefault<IdHasher>>,
}

/// Hashes a number the module assigned (not attacker-chosen, unlike key bytes): multiply, then
/// fold the high bits into the low ones the table indexes by.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, n: u32) {
        let h = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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

    pub fn contains(&self, id: KeyId) -> bool {
        self.pos.contains_key(&id)
    }

    pub fn insert(&mut self, id: KeyId) -> bool {
        if self.pos.contains_key(&id) {
            return false;
        }
        self.pos.insert(id, self.order.len() as u32);
        self.order.push(id);
        true
    }

    pub fn remove(&mut self, id: KeyId) -> bool {
        let Some(at) = self.pos.remove(&id) else {
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
    pub fn pop(&mut self) -> Option<KeyId> {
        let id = self.order.pop()?;
        self.pos.remove(&id);
        Some(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyId> {
        self.order.iter()
    }

    /// Up to `count` members below `cursor` (0 starts a scan), and the cursor to continue
    /// from (0 when the scan is over).
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, &[KeyId]) {
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
        self.order.capacity() * std::mem::size_of::<KeyId>()
            + self.pos.capacity() * (std::mem::size_of::<(KeyId, u32)>() + 1)
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

    #[test]
    fn insert_remove_contains() {
        let mut s = MemberSet::default();
        assert!(s.insert(1));
        assert!(!s.insert(1));
        assert!(s.insert(2));
        assert!(s.insert(3));
        assert!(s.remove(1));
        assert!(!s.remove(1));
        assert!(s.contains(3) && s.contains(2) && !s.contains(1));
        assert_eq!(s.len(), 2);
        assert!(s.remove(3));
        assert!(s.remove(2));
        assert!(s.is_empty());
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut s = MemberSet::default();
        for id in 0..100 {
            s.insert(id);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, page) = s.scan(cursor, 7);
            seen.extend(page.iter().copied());
            // Churn between calls: remove some early members, add new ones.
            s.remove(step * 3);
            s.insert(1000 + step);
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for id in 0..100 {
            if s.contains(id) {
                assert!(seen.contains(&id), "{id} missed");
            }
        }
    }

    #[test]
    fn pop_drains() {
        let mut s = MemberSet::default();
        s.insert(7);
        s.insert(9);
        let mut got = vec![s.pop().unwrap(), s.pop().unwrap()];
        got.sort();
        assert_eq!(got, vec![7, 9]);
        assert!(s.pop().is_none());
    }
}
