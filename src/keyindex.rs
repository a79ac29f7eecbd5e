//! A database's entry keys: ordered, so a pattern walks only the range of its literal prefix,
//! and numbered, so tag sets hold 4-byte ids instead of names.
//!
//! Each key name is stored once, in the id table. The order is kept by blocks of up to
//! `BLOCK_MAX` 4-byte ids sorted by name, in a B-tree keyed by a copy of a lower bound of each
//! block's names (its first name, or one removed since): about 23 bytes per key instead of a
//! tree slot and a second copy of the name. A lookup
//! by name is a search over the blocks then within one (O(log n)); an insert or a removal adds
//! a move of at most `BLOCK_MAX` ids; a lookup by id is O(1).
//!
//! Beside each id a block keeps 8 bytes of its name (the bytes after the prefix every name in
//! the block shares), in the same order: a search within a block compares those and reads a
//! name only on a tie. Reading names is what costs with many keys (each one a cache miss),
//! and with a million keys it was most of the time of a tagged set.

use crate::memberset::KeyId;
use std::collections::BTreeMap;
use std::ops::Bound;

/// A block splits in two when an id arrives while it holds this many...
const BLOCK_MAX: usize = 64;
/// ...and merges with the next one below this many, when both fit in one.
const BLOCK_MIN: usize = 16;
/// Slots per page of the id table.
const PAGE: usize = 1024;

type Name = Box<[u8]>;

/// Ids in name order, each with the 16 bytes of its name after `shared` (big-endian,
/// zero-padded): if a name sorts before another, its head is no greater.
///
/// A block's key in the tree (its `bound`) is a lower bound of its names, above every name of
/// the block before: its first name, or one removed since (removing the first name does not
/// re-key the block, so deleting a range in order stays cheap).
#[derive(Default)]
struct Block {
    ids: Vec<KeyId>,
    heads: Vec<u128>,
    /// How many leading bytes the bound and every name in the block have in common.
    shared: usize,
}

fn head(name: &[u8], shared: usize) -> u128 {
    let mut bytes = [0u8; 16];
    let tail = name.get(shared..).unwrap_or_default();
    let n = tail.len().min(16);
    bytes[..n].copy_from_slice(&tail[..n]);
    u128::from_be_bytes(bytes)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Block {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Recomputes the shared prefix and every head (after the block's range widened).
    fn rebuild(&mut self, names: &Table, bound: &[u8]) {
        let last = self.ids.last().map_or(bound, |&id| name_of(names, id));
        self.shared = common_prefix(bound, last);
        self.heads.clear();
        self.heads.extend(
            self.ids
                .iter()
                .map(|&id| head(name_of(names, id), self.shared)),
        );
    }

    /// Inserts `id` (named `key`, not below `bound`) at `at`.
    fn insert(&mut self, names: &Table, bound: &[u8], at: usize, id: KeyId, key: &[u8]) {
        grow(&mut self.ids);
        grow(&mut self.heads);
        self.ids.insert(at, id);
        if key.get(..self.shared) == bound.get(..self.shared) {
            self.heads.insert(at, head(key, self.shared));
        } else {
            self.rebuild(names, bound);
        }
    }

    /// Inserts `id`, named `key`, first: the block's new bound.
    fn insert_first(&mut self, names: &Table, id: KeyId, key: &[u8]) {
        grow(&mut self.ids);
        self.ids.insert(0, id);
        self.rebuild(names, key);
    }

    /// Where `key` is or would go: Ok(found at) or Err(insert at).
    fn search(&self, names: &Table, bound: &[u8], key: &[u8]) -> Result<usize, usize> {
        // A name outside the shared prefix sorts before or after the whole block.
        if key.get(..self.shared) != bound.get(..self.shared) {
            return Err(if key < bound { 0 } else { self.len() });
        }
        let h = head(key, self.shared);
        let mut at = self.heads.partition_point(|&x| x < h);
        while self.heads.get(at) == Some(&h) {
            match self.ids.get(at).map(|&id| name_of(names, id).cmp(key)) {
                Some(std::cmp::Ordering::Equal) => return Ok(at),
                Some(std::cmp::Ordering::Greater) | None => break,
                Some(std::cmp::Ordering::Less) => at += 1,
            }
        }
        Err(at)
    }

    fn remove(&mut self, at: usize) -> KeyId {
        self.heads.remove(at);
        self.ids.remove(at)
    }

    /// The upper half, moved out, and its bound (its first name); both halves keep a full
    /// block's room by a quarter.
    fn split(&mut self, names: &Table, bound: &[u8]) -> (Block, Name) {
        let half = self.len() / 2;
        let mut upper = Block {
            ids: self.ids.split_off(half),
            heads: self.heads.split_off(half),
            shared: self.shared,
        };
        self.ids.shrink_to(half + half / 4);
        self.heads.shrink_to(half + half / 4);
        // Each half's names may share more: longer prefixes leave fewer ties.
        self.rebuild(names, bound);
        let upper_bound = Name::from(upper.ids.first().map_or(bound, |&id| name_of(names, id)));
        upper.rebuild(names, &upper_bound);
        (upper, upper_bound)
    }

    fn append(&mut self, names: &Table, bound: &[u8], next: Block) {
        self.ids.reserve_exact(next.len());
        self.ids.extend_from_slice(&next.ids);
        self.rebuild(names, bound);
    }

    fn shrink(&mut self) {
        if self.ids.capacity() > self.len() * 2 + 4 {
            self.ids.shrink_to_fit();
            self.heads.shrink_to_fit();
        }
    }

    fn bytes(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<KeyId>()
            + self.heads.capacity() * std::mem::size_of::<u128>()
    }
}

/// The id table, in pages of `PAGE` slots (the first grows up to a page): never more than a
/// page unused, and growing never copies the whole table.
#[derive(Default)]
struct Table {
    pages: Vec<Vec<Option<Name>>>,
}

impl Table {
    fn get(&self, id: KeyId) -> Option<&[u8]> {
        let id = id as usize;
        self.pages.get(id / PAGE)?.get(id % PAGE)?.as_deref()
    }

    fn slot(&mut self, id: KeyId) -> Option<&mut Option<Name>> {
        let id = id as usize;
        self.pages.get_mut(id / PAGE)?.get_mut(id % PAGE)
    }

    /// A new free slot at the end; its id.
    fn push(&mut self) -> KeyId {
        if self.pages.last().is_none_or(|p| p.len() == PAGE) {
            let cap = if self.pages.is_empty() { 8 } else { PAGE };
            self.pages.push(Vec::with_capacity(cap));
        }
        let pages = self.pages.len();
        let Some(page) = self.pages.last_mut() else {
            return KeyId::MAX;
        };
        if page.len() == page.capacity() {
            page.reserve_exact(page.len().min(PAGE - page.len()));
        }
        page.push(None);
        // Ids never run out: 2^32 entries would take far more memory than a server has.
        ((pages - 1) * PAGE + page.len() - 1) as KeyId
    }

    fn bytes(&self) -> usize {
        let names: usize = self
            .pages
            .iter()
            .flatten()
            .flatten()
            .map(|n| n.len().next_multiple_of(8))
            .sum();
        self.pages.capacity() * std::mem::size_of::<Vec<Option<Name>>>()
            + self
                .pages
                .iter()
                .map(|p| p.capacity() * std::mem::size_of::<Option<Name>>())
                .sum::<usize>()
            + names
    }
}

#[derive(Default)]
pub struct KeyIndex {
    /// Ids sorted by name, in blocks keyed by a copy of their first id's name. None is empty.
    blocks: BTreeMap<Name, Block>,
    /// Per id: its name, or None for a free id.
    names: Table,
    free: Vec<KeyId>,
    len: usize,
}

fn name_of(names: &Table, id: KeyId) -> &[u8] {
    names.get(id).unwrap_or_default()
}

/// Makes room for one more by a quarter (at least 4), up to a full block. Only called on a
/// block that is not full.
fn grow<T>(block: &mut Vec<T>) {
    if block.len() == block.capacity() {
        let more = (block.len() / 4)
            .max(4)
            .min(BLOCK_MAX.saturating_sub(block.len()))
            .max(1);
        block.reserve_exact(more);
    }
}

/// The block `key` is in or would go in: the last one starting at or before it, or the first.
fn block_of<'a>(blocks: &'a BTreeMap<Name, Block>, key: &[u8]) -> Option<(&'a Name, &'a Block)> {
    blocks
        .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
        .next_back()
        .or_else(|| blocks.iter().next())
}

fn block_of_mut<'a>(
    blocks: &'a mut BTreeMap<Name, Block>,
    key: &[u8],
) -> Option<(&'a Name, &'a mut Block)> {
    // One descent comparing names: whether a block starts at or before `key` is a look at
    // the first block only.
    let before = blocks
        .first_key_value()
        .is_some_and(|(first, _)| **first <= *key);
    if before {
        blocks
            .range_mut::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
    } else {
        blocks.iter_mut().next()
    }
}

impl KeyIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn id(&self, key: &[u8]) -> Option<KeyId> {
        let (first, block) = block_of(&self.blocks, key)?;
        let at = block.search(&self.names, first, key).ok()?;
        block.ids.get(at).copied()
    }

    /// The name of a live id. An id of a removed key may since name another key.
    pub fn name(&self, id: KeyId) -> Option<&[u8]> {
        self.names.get(id)
    }

    /// The key's id, and whether it was added now.
    pub fn insert(&mut self, key: &[u8]) -> (KeyId, bool) {
        let KeyIndex {
            blocks,
            names,
            free,
            len,
        } = self;
        let new_id = |names: &mut Table, free: &mut Vec<KeyId>, len: &mut usize| {
            let id = free.pop().unwrap_or_else(|| names.push());
            if let Some(slot) = names.slot(id) {
                *slot = Some(Name::from(key));
            }
            *len += 1;
            id
        };
        let Some((bound, block)) = block_of_mut(blocks, key) else {
            let id = new_id(names, free, len);
            let mut block = Block {
                ids: vec![id],
                ..Block::default()
            };
            block.rebuild(names, key);
            blocks.insert(Name::from(key), block);
            return (id, true);
        };
        let at = match block.search(names, bound, key) {
            Ok(at) => return (block.ids[at], false),
            Err(at) => at,
        };
        let id = new_id(names, free, len);
        let below = *key < **bound;
        if !below && block.len() < BLOCK_MAX {
            // The common case: in place.
            block.insert(names, bound, at, id, key);
            return (id, true);
        }
        // The block is re-keyed (a name below every block's: only in the first block) or
        // split first, so no block's vector ever holds more than BLOCK_MAX.
        let old = bound.clone();
        let Some((bound, mut block)) = blocks.remove_entry(&old) else {
            return (id, true);
        };
        let half = block.len() / 2;
        let to_upper = block.len() >= BLOCK_MAX && at > half;
        if block.len() >= BLOCK_MAX {
            let (mut upper, upper_bound) = block.split(names, &bound);
            if to_upper {
                upper.insert(names, &upper_bound, at - half, id, key);
            }
            blocks.insert(upper_bound, upper);
        }
        let bound = if to_upper {
            bound
        } else if below {
            block.insert_first(names, id, key);
            Name::from(key)
        } else {
            block.insert(names, &bound, at, id, key);
            bound
        };
        blocks.insert(bound, block);
        (id, true)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<KeyId> {
        let KeyIndex { blocks, names, .. } = self;
        let (bound, block) = block_of_mut(blocks, key)?;
        let at = block.search(names, bound, key).ok()?;
        let id = if block.len() > BLOCK_MIN {
            // The common case: in place, even the first name (the bound stays a lower bound,
            // and the shared prefix stays shared by fewer names).
            let id = block.remove(at);
            block.shrink();
            id
        } else {
            let bound = bound.clone();
            self.remove_merging(&bound, at)?
        };
        if let Some(slot) = self.names.slot(id) {
            *slot = None;
        }
        self.len -= 1;
        if self.len == 0 {
            // Back to the baseline: no table of free slots outlives the entries.
            *self = KeyIndex::default();
        } else {
            self.free.push(id);
        }
        Some(id)
    }

    /// Removes the id at `at` of the small block keyed `bound`, dropping the block if empty,
    /// merging it with the next if both fit in one.
    fn remove_merging(&mut self, bound: &[u8], at: usize) -> Option<KeyId> {
        let (bound, mut block) = self.blocks.remove_entry(bound)?;
        let id = block.remove(at);
        if block.is_empty() {
            return Some(id);
        }
        if block.len() < BLOCK_MIN {
            let next = self
                .blocks
                .range::<[u8], _>((Bound::Excluded(&*bound), Bound::Unbounded))
                .next()
                .filter(|(_, b)| b.len() + block.len() <= BLOCK_MAX)
                .map(|(n, _)| n.clone());
            if let Some(next) = next.and_then(|n| self.blocks.remove(&n)) {
                block.append(&self.names, &bound, next);
            }
        }
        block.shrink();
        self.blocks.insert(bound, block);
        Some(id)
    }

    /// Keys from `from` on, in order.
    pub fn range<'a>(&'a self, from: Bound<&'a [u8]>) -> impl Iterator<Item = &'a [u8]> + 'a {
        let start = match from {
            Bound::Included(k) | Bound::Excluded(k) => block_of(&self.blocks, k).map(|(f, _)| f),
            Bound::Unbounded => None,
        };
        let blocks = match start {
            Some(first) => self
                .blocks
                .range::<[u8], _>((Bound::Included(&**first), Bound::Unbounded)),
            None => self.blocks.range::<[u8], _>(..),
        };
        let names = &self.names;
        blocks.enumerate().flat_map(move |(i, (_, block))| {
            let ids = &block.ids;
            let skip = match from {
                _ if i > 0 => 0,
                Bound::Included(k) => ids.partition_point(|&id| name_of(names, id) < k),
                Bound::Excluded(k) => ids.partition_point(|&id| name_of(names, id) <= k),
                Bound::Unbounded => 0,
            };
            ids[skip..].iter().map(move |&id| name_of(names, id))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.range(Bound::Unbounded)
    }

    /// Memory this index holds, names included (estimated: each block also costs a slot in
    /// the tree and a copy of its first name).
    pub fn overhead_bytes(&self) -> usize {
        const TREE_SLOT: usize = 16;
        let blocks: usize = self
            .blocks
            .iter()
            .map(|(first, b)| TREE_SLOT + std::mem::size_of::<Block>() + first.len() + b.bytes())
            .sum();
        blocks + self.names.bytes() + self.free.capacity() * std::mem::size_of::<KeyId>()
    }

    /// Checks the blocks' invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        let mut before: Option<&[u8]> = None;
        for (first, block) in &self.blocks {
            let ids = &block.ids;
            assert!(!block.is_empty() && ids.capacity() <= BLOCK_MAX);
            assert!(**first <= *name_of(&self.names, ids[0]), "a lower bound");
            assert!(
                before.is_none_or(|last| last < &**first),
                "above the block before"
            );
            before = ids.last().map(|&id| name_of(&self.names, id));
            assert!(ids
                .windows(2)
                .all(|w| name_of(&self.names, w[0]) < name_of(&self.names, w[1])));
            assert_eq!(block.heads.len(), ids.len());
            for (&id, &h) in ids.iter().zip(&block.heads) {
                let name = name_of(&self.names, id);
                assert_eq!(name.get(..block.shared), first.get(..block.shared));
                assert_eq!(h, head(name, block.shared));
            }
            total += block.len();
        }
        assert_eq!(total, self.len);
        assert!(self.iter().zip(self.iter().skip(1)).all(|(a, b)| a < b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ids_are_reused_and_memory_resets() {
        let mut k = KeyIndex::default();
        let (a, new) = k.insert(b"a");
        assert!(new);
        assert_eq!(k.insert(b"a"), (a, false));
        let (b, _) = k.insert(b"b");
        assert_eq!(k.name(b), Some(b"b".as_slice()));
        assert_eq!(k.remove(b"a"), Some(a));
        assert!(k.name(a).is_none());
        assert_eq!(k.remove(b"a"), None);
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
        for key in ["b", "a", "c", ""] {
            k.insert(key.as_bytes());
        }
        let from_b: Vec<_> = k.range(Bound::Included(b"b".as_slice())).collect();
        assert_eq!(from_b, vec![b"b".as_slice(), b"c"]);
        let after_b: Vec<_> = k.range(Bound::Excluded(b"b".as_slice())).collect();
        assert_eq!(after_b, vec![b"c".as_slice()]);
        assert_eq!(
            k.iter().next(),
            Some(b"".as_slice()),
            "the empty name sorts first"
        );
    }

    #[test]
    fn many_keys_span_pages_and_blocks() {
        let mut k = KeyIndex::default();
        let n = 5 * PAGE as u32 + 7;
        // Descending, then ascending: every insert goes first, or last, in its block.
        for i in (0..n).rev().chain(n..2 * n) {
            let (id, added) = k.insert(format!("k{i:06}").as_bytes());
            assert!(added);
            assert_eq!(k.name(id), Some(format!("k{i:06}").as_bytes()));
        }
        k.check();
        assert_eq!(k.len(), 2 * n as usize);
        assert!(k.names.pages.len() > 5);
        let tail: Vec<&[u8]> = k.range(Bound::Excluded(b"k000100")).take(2).collect();
        assert_eq!(tail, vec![b"k000101".as_slice(), b"k000102"]);
        // Remove every other key, then the rest from the front.
        for i in (0..2 * n).step_by(2) {
            assert!(k.remove(format!("k{i:06}").as_bytes()).is_some());
        }
        k.check();
        for i in (1..2 * n).step_by(2) {
            assert!(k.remove(format!("k{i:06}").as_bytes()).is_some());
            if i % 1001 == 0 {
                k.check();
            }
        }
        assert!(k.is_empty());
        assert_eq!(k.overhead_bytes(), 0);
    }

    /// A small deterministic PRNG (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    /// Random inserts, removals and range walks against a BTreeMap of name -> id.
    #[test]
    fn model_random_operations() {
        let mut rng = Rng(0x0dd_ba11_cafe_f00d);
        let mut k = KeyIndex::default();
        let mut model: BTreeMap<Vec<u8>, KeyId> = BTreeMap::new();
        let key = |rng: &mut Rng| -> Vec<u8> {
            // Short names over a small alphabet, so prefixes and duplicates are common; some
            // long, some binary.
            let len = match rng.below(10) {
                0 => 0,
                1 => 40 + rng.below(200) as usize,
                _ => 1 + rng.below(6) as usize,
            };
            (0..len)
                .map(|_| match rng.below(20) {
                    0 => 0u8,
                    1 => 0xff,
                    _ => b"ab:c"[rng.below(4) as usize],
                })
                .collect()
        };
        let mut max_blocks = 0;
        for step in 0..60_000u32 {
            let name = key(&mut rng);
            let grow = step % 20_000 < 12_000;
            match rng.below(10) {
                0..=4 if grow || rng.below(2) == 0 => {
                    let (id, added) = k.insert(&name);
                    match model.get(&name) {
                        Some(&old) => assert_eq!((id, added), (old, false)),
                        None => {
                            assert!(added);
                            assert!(model.values().all(|&v| v != id), "id {id} handed out twice");
                            model.insert(name.clone(), id);
                        }
                    }
                }
                0..=6 => {
                    // Remove a present key most of the time.
                    let victim = if rng.below(4) > 0 && !model.is_empty() {
                        let at = rng.below(model.len() as u64) as usize;
                        model.keys().nth(at).cloned().unwrap_or(name)
                    } else {
                        name
                    };
                    assert_eq!(k.remove(&victim), model.remove(&victim));
                    assert_eq!(k.id(&victim), None);
                }
                7 => {
                    let got: Vec<&[u8]> = k.range(Bound::Included(&name)).take(20).collect();
                    let want: Vec<&[u8]> = model
                        .range::<[u8], _>((Bound::Included(name.as_slice()), Bound::Unbounded))
                        .take(20)
                        .map(|(n, _)| n.as_slice())
                        .collect();
                    assert_eq!(got, want);
                    let got: Vec<&[u8]> = k.range(Bound::Excluded(&name)).take(5).collect();
                    let want: Vec<&[u8]> = model
                        .range::<[u8], _>((Bound::Excluded(name.as_slice()), Bound::Unbounded))
                        .take(5)
                        .map(|(n, _)| n.as_slice())
                        .collect();
                    assert_eq!(got, want);
                }
                _ => {
                    assert_eq!(k.id(&name), model.get(&name).copied());
                    if let Some(&id) = model.get(&name) {
                        assert_eq!(k.name(id), Some(name.as_slice()));
                    }
                }
            }
            assert_eq!(k.len(), model.len());
            max_blocks = max_blocks.max(k.blocks.len());
            if step % 4999 == 0 || step % 20_000 > 19_900 {
                k.check();
            }
            if step % 4999 == 0 {
                assert!(k.iter().eq(model.keys().map(|n| n.as_slice())));
                for (n, &id) in &model {
                    assert_eq!(k.name(id), Some(n.as_slice()));
                }
            }
        }
        assert!(
            max_blocks > 20,
            "blocks split and merge: at most {max_blocks}"
        );
        let names: Vec<Vec<u8>> = model.keys().cloned().collect();
        for n in names {
            assert_eq!(k.remove(&n), model.remove(&n));
        }
        assert!(k.is_empty());
        assert_eq!(k.overhead_bytes(), 0, "back to baseline");
    }
}
