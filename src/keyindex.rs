//! A database's entry keys: ordered, so a pattern walks only the range of its literal prefix,
//! and numbered, so tag sets hold 4-byte ids instead of names.

use crate::memberset::{Bytes, KeyId};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

#[derive(Default)]
pub struct KeyIndex {
    ordered: BTreeMap<Bytes, KeyId>,
    names: Vec<Option<Bytes>>,
    free: Vec<KeyId>,
}

impl KeyIndex {
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    pub fn id(&self, key: &[u8]) -> Option<KeyId> {
        self.ordered.get(key).copied()
    }

    /// The name of a live id. An id of a removed key may since name another key.
    pub fn name(&self, id: KeyId) -> Option<&Bytes> {
        self.names.get(id as usize)?.as_ref()
    }

    /// The key's id, and whether it was added now.
    pub fn insert(&mut self, key: &[u8]) -> (KeyId, bool) {
        // One tree search: a key is indexed after its previous value was unlinked, so it is
        // almost always new and the name is allocated anyway.
        let name: Bytes = Arc::from(key);
        let next = self
            .free
            .last()
            .copied()
            .unwrap_or(self.names.len() as KeyId);
        let slot = match self.ordered.entry(name.clone()) {
            Entry::Occupied(found) => return (*found.get(), false),
            Entry::Vacant(slot) => slot,
        };
        slot.insert(next);
        if self.free.pop().is_none() {
            self.names.push(None);
        }
        if let Some(entry) = self.names.get_mut(next as usize) {
            *entry = Some(name);
        }
        (next, true)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<KeyId> {
        let id = self.ordered.remove(key)?;
        if let Some(slot) = self.names.get_mut(id as usize) {
            *slot = None;
        }
        if self.ordered.is_empty() {
            // Back to the baseline: no table of free slots outlives the entries.
            *self = KeyIndex::default();
        } else {
            self.free.push(id);
        }
        Some(id)
    }

    /// Keys from `from` on, in order.
    pub fn range<'a>(&'a self, from: Bound<&'a [u8]>) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.ordered
            .range::<[u8], _>((from, Bound::Unbounded))
            .map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.ordered.keys()
    }

    /// Memory held beyond the key names: tree slots, the id table, free ids.
    pub fn overhead_bytes(&self) -> usize {
        const TREE_SLOT: usize = std::mem::size_of::<(Bytes, KeyId)>() + 8;
        const ARC_HEADER: usize = 16;
        let names: usize = self.ordered.keys().map(|k| k.len() + ARC_HEADER).sum();
        self.ordered.len() * TREE_SLOT
            + names
            + self.names.capacity() * std::mem::size_of::<Option<Bytes>>()
            + self.free.capacity() * std::mem::size_of::<KeyId>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_reused_and_memory_resets() {
        let mut k = KeyIndex::default();
        let (a, new) = k.insert(b"a");
        assert!(new);
        assert_eq!(k.insert(b"a"), (a, false));
        let (b, _) = k.insert(b"b");
        assert_eq!(k.name(b).map(|n| &**n), Some(b"b".as_slice()));
        assert_eq!(k.remove(b"a"), Some(a));
        assert!(k.name(a).is_none());
        let (c, _) = k.insert(b"c");
        assert_eq!(c, a, "a freed id is reused");
        assert_eq!(k.id(b"c"), Some(c));
        k.remove(b"b");
        k.remove(b"c");
        assert!(k.is_empty());
        assert_eq!(k.overhead_bytes(), 0);
    }

    #[test]
    fn ordered_ranges() {
        let mut k = KeyIndex::default();
        for key in ["b", "a", "c"] {
            k.insert(key.as_bytes());
        }
        let from_b: Vec<_> = k
            .range(Bound::Included(b"b".as_slice()))
            .map(|n| n.to_vec())
            .collect();
        assert_eq!(from_b, vec![b"b".to_vec(), b"c".to_vec()]);
    }
}
