//! A database's entry keys: ordered, so a pattern walks only the range of its literal prefix,
//! and numbered, so tag sets hold 4-byte ids instead of names.
//!
//! Each key name is stored once, in one allocation behind a thin pointer (its length, then its
//! bytes); the id table points at these. The order is kept by blocks of up to `BLOCK_MAX`
//! 4-byte ids sorted by name, in a B-tree keyed by each block's first name: about 8 bytes per
//! key instead of a tree slot per key. A lookup by name is a search over the blocks then
//! within one (O(log n)); an insert or a removal adds a move of at most `BLOCK_MAX` ids; by
//! id, O(1).

use crate::memberset::KeyId;
use std::alloc::{self, Layout};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::ptr::NonNull;

/// Bytes before the name in its allocation: its length (u32).
const HEADER: usize = 4;
/// A block splits in two beyond this many ids...
const BLOCK_MAX: usize = 64;
/// ...and merges with the next one below this many, when both fit in one.
const BLOCK_MIN: usize = 16;

/// A pointer to a key name's allocation, `[len: u32][name bytes]`, made by
/// `Name::alloc` and freed by `Name::free`; the index frees each exactly once, when its key
/// leaves (or the index is dropped). Compared by the name's bytes.
#[derive(Clone, Copy)]
struct Name(NonNull<u8>);

fn layout(len: usize) -> Layout {
    // A key is at most 512 MB: the size never overflows.
    Layout::from_size_align(HEADER + len, 4).unwrap_or(Layout::new::<u32>())
}

impl Name {
    fn alloc(key: &[u8]) -> Name {
        let layout = layout(key.len());
        // SAFETY: the layout has a non-zero size (the header); every byte is written below.
        unsafe {
            let Some(p) = NonNull::new(alloc::alloc(layout)) else {
                alloc::handle_alloc_error(layout)
            };
            // A Redis key is at most 512 MB: its length fits.
            p.cast::<u32>().write(key.len() as u32);
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.as_ptr().add(HEADER), key.len());
            Name(p)
        }
    }

    /// # Safety
    /// The name must be live, and never used again.
    unsafe fn free(self) {
        let layout = layout(self.bytes().len());
        alloc::dealloc(self.0.as_ptr(), layout)
    }

    fn bytes<'a>(&self) -> &'a [u8] {
        // SAFETY: the index only holds live names, and hands out their bytes borrowed from
        // itself, so they live as long as the borrow.
        unsafe {
            let len = self.0.cast::<u32>().read() as usize;
            std::slice::from_raw_parts(self.0.as_ptr().add(HEADER), len)
        }
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.bytes().cmp(other.bytes())
    }
}

#[derive(Default)]
pub struct KeyIndex {
    /// Ids sorted by name, in blocks keyed by the name of their first id. No block is empty.
    blocks: BTreeMap<Name, Vec<KeyId>>,
    /// Per id: its name (owned), or None for a free id.
    names: Table,
    free: Vec<KeyId>,
    len: usize,
}

// SAFETY: the index owns every name it points at; nothing is shared outside it.
unsafe impl Send for KeyIndex {}
unsafe impl Sync for KeyIndex {}

impl Drop for KeyIndex {
    fn drop(&mut self) {
        for name in self.names.pages.drain(..).flatten().flatten() {
            // SAFETY: each live name is in the table once, and the index goes away.
            unsafe { name.free() }
        }
    }
}

/// Slots per page of the id table.
const PAGE: usize = 1024;

/// The id table, in pages of `PAGE` slots (the first grows up to a page): never more than a
/// page unused, and growing never copies the whole table.
#[derive(Default)]
struct Table {
    pages: Vec<Vec<Option<Name>>>,
}

impl Table {
    fn get(&self, id: KeyId) -> Option<&Option<Name>> {
        let id = id as usize;
        self.pages.get(id / PAGE)?.get(id % PAGE)
    }

    fn get_mut(&mut self, id: KeyId) -> Option<&mut Option<Name>> {
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
        self.pages.capacity() * std::mem::size_of::<Vec<Option<Name>>>()
            + self
                .pages
                .iter()
                .map(|p| p.capacity() * std::mem::size_of::<Option<Name>>())
                .sum::<usize>()
    }
}

/// Where `key` is or would go in a block: Ok(found at) or Err(insert at).
fn search(names: &Table, block: &[KeyId], key: &[u8]) -> Result<usize, usize> {
    block.binary_search_by(|&id| name_of(names, id).cmp(key))
}

fn name_of(names: &Table, id: KeyId) -> &[u8] {
    match names.get(id) {
        Some(Some(n)) => n.bytes(),
        _ => &[],
    }
}

/// Makes room for one more by a quarter (at least 4), up to a full block. Only called on a
/// block that is not full.
fn grow(block: &mut Vec<KeyId>) {
    if block.len() == block.capacity() {
        let more = (block.len() / 4).max(4).min(BLOCK_MAX - block.len()).max(1);
        block.reserve_exact(more);
    }
}

impl KeyIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block `key` is in or would go in: the last one starting at or before it, or the
    /// first block.
    fn block_of(&self, key: &[u8]) -> Option<Name> {
        self.blocks
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .or_else(|| self.blocks.iter().next())
            .map(|(first, _)| *first)
    }

    pub fn id(&self, key: &[u8]) -> Option<KeyId> {
        let first = self.block_of(key)?;
        let block = self.blocks.get(first.bytes())?;
        let at = search(&self.names, block, key).ok()?;
        block.get(at).copied()
    }

    /// The name of a live id. An id of a removed key may since name another key.
    pub fn name(&self, id: KeyId) -> Option<&[u8]> {
        Some(self.names.get(id)?.as_ref()?.bytes())
    }

    /// A new id for `key`, and its name.
    fn new_name(&mut self, key: &[u8]) -> (KeyId, Name) {
        // Ids never run out: 2^32 entries would take far more memory than a server has.
        let id = match self.free.pop() {
            Some(id) => id,
            None => self.names.push(),
        };
        let name = Name::alloc(key);
        if let Some(slot) = self.names.get_mut(id) {
            *slot = Some(name);
        }
        self.len += 1;
        (id, name)
    }

    /// The key's id, and whether it was added now.
    pub fn insert(&mut self, key: &[u8]) -> (KeyId, bool) {
        let Some(first) = self.block_of(key) else {
            let (id, name) = self.new_name(key);
            self.blocks.insert(name, vec![id]);
            return (id, true);
        };
        let at = match self
            .blocks
            .get(first.bytes())
            .map(|block| search(&self.names, block, key))
        {
            Some(Ok(at)) => {
                let block = &self.blocks[first.bytes()];
                return (block[at], false);
            }
            Some(Err(at)) => at,
            None => return (KeyId::MAX, false),
        };
        let (id, name) = self.new_name(key);
        let Some(block) = self.blocks.get_mut(first.bytes()) else {
            return (id, true);
        };
        if at > 0 && block.len() < BLOCK_MAX {
            // The common case: in place.
            grow(block);
            block.insert(at, id);
            return (id, true);
        }
        // The block is re-keyed (the key goes first, only in the first block) or split first
        // (so no block's vector ever holds more than BLOCK_MAX).
        let Some(mut block) = self.blocks.remove(first.bytes()) else {
            return (id, true);
        };
        let first = if at == 0 { name } else { first };
        if block.len() >= BLOCK_MAX {
            let half = block.len() / 2;
            let mut upper = block.split_off(half);
            // Both halves with the same room, a quarter: the lower one kept a full block's.
            block.shrink_to(half + half / 4);
            if at > half {
                upper.insert(at - half, id);
            } else {
                block.insert(at, id);
            }
            if let Some(Some(head_name)) = upper.first().and_then(|&h| self.names.get(h)) {
                self.blocks.insert(*head_name, upper);
            }
        } else {
            grow(&mut block);
            block.insert(at, id);
        }
        self.blocks.insert(first, block);
        (id, true)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<KeyId> {
        let first = self.block_of(key)?;
        let at = search(&self.names, self.blocks.get(first.bytes())?, key).ok()?;
        let id = match self.blocks.get_mut(first.bytes()) {
            Some(block) if at > 0 && block.len() > BLOCK_MIN => {
                // The common case: in place.
                let id = block.remove(at);
                if block.capacity() > block.len() * 2 + 4 {
                    block.shrink_to_fit();
                }
                id
            }
            _ => self.remove_rebuilding(first, at)?,
        };
        if let Some(name) = self.names.get_mut(id).and_then(Option::take) {
            // SAFETY: its id and block entry are gone: nothing points at it any more.
            unsafe { name.free() }
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

    /// Removes the id at `at` of the block starting at `first`, re-keying the block (its first
    /// name may be the one that goes), dropping it if empty, merging it with the next if small.
    fn remove_rebuilding(&mut self, first: Name, at: usize) -> Option<KeyId> {
        // Out of the map while it changes: its key may be the name that goes.
        let mut block = self.blocks.remove(first.bytes())?;
        let id = block.remove(at);
        if let Some(&head) = block.first() {
            if block.len() < BLOCK_MIN {
                let next = self
                    .blocks
                    .range::<[u8], _>((Bound::Excluded(first.bytes()), Bound::Unbounded))
                    .next()
                    .filter(|(_, b)| b.len() + block.len() <= BLOCK_MAX)
                    .map(|(n, _)| *n);
                if let Some(next) = next.and_then(|n| self.blocks.remove(n.bytes())) {
                    block.reserve_exact(next.len());
                    block.extend_from_slice(&next);
                }
            }
            if block.capacity() > block.len() * 2 + 4 {
                block.shrink_to_fit();
            }
            if let Some(Some(head_name)) = self.names.get(head) {
                self.blocks.insert(*head_name, block);
            }
        }
        Some(id)
    }

    /// Keys from `from` on, in order.
    pub fn range<'a>(&'a self, from: Bound<&'a [u8]>) -> impl Iterator<Item = &'a [u8]> + 'a {
        let start = match from {
            Bound::Included(k) | Bound::Excluded(k) => self.block_of(k),
            Bound::Unbounded => None,
        };
        let blocks = match start {
            Some(first) => self
                .blocks
                .range::<[u8], _>((Bound::Included(first.bytes()), Bound::Unbounded)),
            None => self.blocks.range::<[u8], _>(..),
        };
        let names = &self.names;
        blocks.enumerate().flat_map(move |(i, (_, block))| {
            let skip = match from {
                _ if i > 0 => 0,
                Bound::Included(k) => block.partition_point(|&id| name_of(names, id) < k),
                Bound::Excluded(k) => block.partition_point(|&id| name_of(names, id) <= k),
                Bound::Unbounded => 0,
            };
            block[skip..].iter().map(move |&id| name_of(names, id))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.range(Bound::Unbounded)
    }

    /// Memory this index holds, names included (estimated: the tree of blocks is small).
    pub fn overhead_bytes(&self) -> usize {
        const TREE_SLOT: usize = 48;
        let names: usize = self
            .names
            .pages
            .iter()
            .flatten()
            .flatten()
            .map(|n| (HEADER + n.bytes().len()).next_multiple_of(8))
            .sum();
        let blocks: usize = self
            .blocks
            .values()
            .map(|b| TREE_SLOT + b.capacity() * std::mem::size_of::<KeyId>())
            .sum();
        blocks + names + self.names.bytes() + self.free.capacity() * std::mem::size_of::<KeyId>()
    }

    /// Checks the blocks' invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        for (first, block) in &self.blocks {
            assert!(!block.is_empty() && block.capacity() <= BLOCK_MAX);
            assert_eq!(first.bytes(), name_of(&self.names, block[0]));
            assert!(block
                .windows(2)
                .all(|w| name_of(&self.names, w[0]) < name_of(&self.names, w[1])));
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
