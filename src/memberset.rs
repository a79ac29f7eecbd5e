//! A set of key ids with a stable cursor: the members of one tag.
//!
//! Members are kept ordered by id, so a cursor is simply an id: a scan returns the members below
//! it, walking down. A member present during a whole scan is always returned, and never twice,
//! whatever is added or removed meanwhile (SSCAN promises less). The layout is chosen for
//! memory, since every entry is a member of each of its tags:
//! - up to `SMALL_MAX` members: one sorted vector of 4-byte ids;
//! - beyond: chunks of ids sharing their high 16 bits (the ids are small numbers handed out
//!   densely by the key index, so there are few chunks), each a sorted vector of 2-byte low
//!   halves, or a 8 KiB bitmap once it holds more than `ARRAY_MAX` (as Roaring bitmaps do).
//!
//! Every operation is bounded by those constants (a binary search, a move of at most a few
//! KiB), plus a binary search over the chunks.

use std::hash::Hasher;
use std::sync::Arc;

/// Key and tag names are shared between the entries' index and the tag sets.
pub type Bytes = Arc<[u8]>;

/// A key's number in its database's index: tag sets hold these 4-byte ids rather than names.
pub type KeyId = u32;

/// A set grows into chunks beyond this many members...
const SMALL_MAX: usize = 1024;
/// ...and goes back to one vector at this many.
const SMALL_BACK: usize = 512;
/// A chunk becomes a bitmap beyond this many members...
const ARRAY_MAX: usize = 4096;
/// ...and goes back to a vector at this many.
const ARRAY_BACK: usize = 2048;
const WORDS: usize = 1 << 10;

#[derive(Default)]
pub struct MemberSet {
    repr: Repr,
}

enum Repr {
    /// Sorted, distinct.
    Small(Vec<KeyId>),
    Chunked(Box<Chunked>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Small(Vec::new())
    }
}

struct Chunked {
    len: usize,
    /// Sorted by `hi`; none is empty.
    chunks: Vec<Chunk>,
}

struct Chunk {
    hi: u16,
    lows: Lows,
}

enum Lows {
    /// Sorted, distinct.
    Array(Vec<u16>),
    Bitmap(Box<[u64; WORDS]>, u32),
}

/// Makes room for one more by a quarter (at least 4), not by doubling: most tags are small and
/// many, and a quarter is jemalloc's spacing between size classes. Still amortized O(1).
fn grow<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 4).max(4));
    }
}

/// A binary search that first looks at the end: new keys get new (higher) ids, so most
/// inserts go last, and then only the last cache line of a large set is read.
fn search_from_end<T: Ord>(v: &[T], x: T) -> Result<usize, usize> {
    match v.last() {
        Some(last) if *last < x => Err(v.len()),
        None => Err(0),
        _ => v.binary_search(&x),
    }
}

fn split(id: KeyId) -> (u16, u16) {
    ((id >> 16) as u16, id as u16)
}

fn join(hi: u16, lo: u16) -> KeyId {
    (KeyId::from(hi) << 16) | KeyId::from(lo)
}

impl Lows {
    fn len(&self) -> usize {
        match self {
            Lows::Array(v) => v.len(),
            Lows::Bitmap(_, n) => *n as usize,
        }
    }

    fn contains(&self, lo: u16) -> bool {
        match self {
            Lows::Array(v) => v.binary_search(&lo).is_ok(),
            Lows::Bitmap(b, _) => b[usize::from(lo) >> 6] & (1 << (lo & 63)) != 0,
        }
    }

    fn insert(&mut self, lo: u16) -> bool {
        match self {
            Lows::Array(v) => {
                let Err(at) = search_from_end(v, lo) else {
                    return false;
                };
                if v.len() < ARRAY_MAX {
                    grow(v);
                    v.insert(at, lo);
                    return true;
                }
                let mut bits = Box::new([0u64; WORDS]);
                for &l in v.iter() {
                    bits[usize::from(l) >> 6] |= 1 << (l & 63);
                }
                bits[usize::from(lo) >> 6] |= 1 << (lo & 63);
                *self = Lows::Bitmap(bits, ARRAY_MAX as u32 + 1);
                true
            }
            Lows::Bitmap(b, n) => {
                let (w, bit) = (usize::from(lo) >> 6, 1u64 << (lo & 63));
                if b[w] & bit != 0 {
                    return false;
                }
                b[w] |= bit;
                *n += 1;
                true
            }
        }
    }

    fn remove(&mut self, lo: u16) -> bool {
        match self {
            Lows::Array(v) => match v.binary_search(&lo) {
                Ok(at) => {
                    v.remove(at);
                    true
                }
                Err(_) => false,
            },
            Lows::Bitmap(b, n) => {
                let (w, bit) = (usize::from(lo) >> 6, 1u64 << (lo & 63));
                if b[w] & bit == 0 {
                    return false;
                }
                b[w] &= !bit;
                *n -= 1;
                if *n as usize <= ARRAY_BACK {
                    let v: Vec<u16> = bitmap_iter(b).collect();
                    *self = Lows::Array(v);
                }
                true
            }
        }
    }

    fn max(&self) -> Option<u16> {
        match self {
            Lows::Array(v) => v.last().copied(),
            Lows::Bitmap(b, _) => below(b, 1 << 16).next(),
        }
    }

    fn shrink(&mut self) {
        if let Lows::Array(v) = self {
            if v.capacity() > 8 && v.len() < v.capacity() / 2 {
                v.shrink_to_fit();
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Lows::Array(v) => v.capacity() * 2,
            Lows::Bitmap(..) => WORDS * 8,
        }
    }
}

/// The set bits of a bitmap, ascending.
fn bitmap_iter(b: &[u64; WORDS]) -> impl Iterator<Item = u16> + '_ {
    b.iter().enumerate().flat_map(|(w, &word)| {
        let mut word = word;
        std::iter::from_fn(move || {
            if word == 0 {
                return None;
            }
            let bit = word.trailing_zeros();
            word &= word - 1;
            Some((w as u32 * 64 + bit) as u16)
        })
    })
}

/// The set bits of a bitmap below `bound` (at most 65,536), descending.
fn below(b: &[u64; WORDS], bound: u32) -> impl Iterator<Item = u16> + '_ {
    let mut w = (bound as usize).div_ceil(64);
    let mut word = 0u64;
    if !bound.is_multiple_of(64) {
        w -= 1;
        word = b[w] & ((1u64 << (bound % 64)) - 1);
    }
    std::iter::from_fn(move || loop {
        if word != 0 {
            let bit = 63 - word.leading_zeros();
            word &= !(1u64 << bit);
            return Some((w as u32 * 64 + bit) as u16);
        }
        if w == 0 {
            return None;
        }
        w -= 1;
        word = b[w];
    })
}

impl Chunked {
    fn find(&self, hi: u16) -> Result<usize, usize> {
        self.chunks.binary_search_by_key(&hi, |c| c.hi)
    }

    fn from_sorted(ids: &[KeyId]) -> Chunked {
        let mut chunks: Vec<Chunk> = Vec::new();
        for &id in ids {
            let (hi, lo) = split(id);
            match chunks.last_mut() {
                Some(c) if c.hi == hi => {
                    c.lows.insert(lo);
                }
                _ => chunks.push(Chunk {
                    hi,
                    lows: Lows::Array(vec![lo]),
                }),
            }
        }
        Chunked {
            len: ids.len(),
            chunks,
        }
    }

    fn iter(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.chunks.iter().flat_map(|c| {
            let hi = c.hi;
            let lows: Box<dyn Iterator<Item = u16>> = match &c.lows {
                Lows::Array(v) => Box::new(v.iter().copied()),
                Lows::Bitmap(b, _) => Box::new(bitmap_iter(b)),
            };
            lows.map(move |lo| join(hi, lo))
        })
    }
}

impl MemberSet {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len(),
            Repr::Chunked(c) => c.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: KeyId) -> bool {
        match &self.repr {
            Repr::Small(v) => v.binary_search(&id).is_ok(),
            Repr::Chunked(c) => {
                let (hi, lo) = split(id);
                c.find(hi).is_ok_and(|at| c.chunks[at].lows.contains(lo))
            }
        }
    }

    pub fn insert(&mut self, id: KeyId) -> bool {
        match &mut self.repr {
            Repr::Small(v) => {
                let Err(at) = search_from_end(v, id) else {
                    return false;
                };
                grow(v);
                v.insert(at, id);
                if v.len() > SMALL_MAX {
                    self.repr = Repr::Chunked(Box::new(Chunked::from_sorted(v)));
                }
                true
            }
            Repr::Chunked(c) => {
                let (hi, lo) = split(id);
                let added = match c.find(hi) {
                    Ok(at) => c.chunks[at].lows.insert(lo),
                    Err(at) => {
                        c.chunks.insert(
                            at,
                            Chunk {
                                hi,
                                lows: Lows::Array(vec![lo]),
                            },
                        );
                        true
                    }
                };
                c.len += usize::from(added);
                added
            }
        }
    }

    pub fn remove(&mut self, id: KeyId) -> bool {
        match &mut self.repr {
            Repr::Small(v) => match v.binary_search(&id) {
                Ok(at) => {
                    v.remove(at);
                    if v.is_empty() {
                        // Back to the baseline: an empty set holds no memory.
                        *v = Vec::new();
                    }
                    true
                }
                Err(_) => false,
            },
            Repr::Chunked(c) => {
                let (hi, lo) = split(id);
                let Ok(at) = c.find(hi) else {
                    return false;
                };
                if !c.chunks[at].lows.remove(lo) {
                    return false;
                }
                c.len -= 1;
                if c.chunks[at].lows.len() == 0 {
                    c.chunks.remove(at);
                }
                if c.len <= SMALL_BACK {
                    self.repr = Repr::Small(c.iter().collect());
                }
                true
            }
        }
    }

    /// Removes and returns the highest member; used to drain a detached set a little at a time.
    pub fn pop(&mut self) -> Option<KeyId> {
        let top = match &self.repr {
            Repr::Small(v) => *v.last()?,
            Repr::Chunked(c) => {
                let last = c.chunks.last()?;
                join(last.hi, last.lows.max()?)
            }
        };
        self.remove(top);
        Some(top)
    }

    /// The members, ascending.
    pub fn iter(&self) -> Box<dyn Iterator<Item = KeyId> + '_> {
        match &self.repr {
            Repr::Small(v) => Box::new(v.iter().copied()),
            Repr::Chunked(c) => Box::new(c.iter()),
        }
    }

    /// Up to `count` members below `cursor` (0 starts a scan), highest first, and the cursor to
    /// continue from: the lowest member returned, or 0 when no member is left below it.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<KeyId>) {
        let bound = if cursor == 0 || cursor > u64::from(KeyId::MAX) {
            1u64 << 32
        } else {
            cursor
        };
        let count = count.max(1);
        // One more than asked, to know whether any is left.
        let mut page: Vec<KeyId> = Vec::with_capacity(count.min(4096) + 1);
        match &self.repr {
            Repr::Small(v) => {
                let end = v.partition_point(|&id| u64::from(id) < bound);
                page.extend(v[..end].iter().rev().take(count + 1));
            }
            Repr::Chunked(c) => {
                let top_hi = ((bound - 1) >> 16) as u16;
                let end = match c.find(top_hi) {
                    Ok(at) => at + 1,
                    Err(at) => at,
                };
                for chunk in c.chunks[..end].iter().rev() {
                    let lo_bound = if chunk.hi == top_hi {
                        (bound - (u64::from(top_hi) << 16)) as u32
                    } else {
                        1 << 16
                    };
                    let want = count + 1 - page.len();
                    match &chunk.lows {
                        Lows::Array(v) => {
                            let end = v.partition_point(|&lo| u32::from(lo) < lo_bound);
                            page.extend(
                                v[..end]
                                    .iter()
                                    .rev()
                                    .take(want)
                                    .map(|&lo| join(chunk.hi, lo)),
                            );
                        }
                        Lows::Bitmap(b, _) => {
                            page.extend(below(b, lo_bound).take(want).map(|lo| join(chunk.hi, lo)))
                        }
                    }
                    if page.len() > count {
                        break;
                    }
                }
            }
        }
        if page.len() > count {
            page.truncate(count);
            let next = page.last().map_or(0, |&id| u64::from(id));
            (next, page)
        } else {
            (0, page)
        }
    }

    /// Bytes this set holds beyond the key names themselves.
    pub fn overhead_bytes(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.capacity() * std::mem::size_of::<KeyId>(),
            Repr::Chunked(c) => {
                std::mem::size_of::<Chunked>()
                    + c.chunks.capacity() * std::mem::size_of::<Chunk>()
                    + c.chunks.iter().map(|c| c.lows.bytes()).sum::<usize>()
            }
        }
    }

    /// Gives memory back after removals.
    pub fn shrink(&mut self) {
        match &mut self.repr {
            Repr::Small(v) => {
                if v.capacity() > 8 && v.len() < v.capacity() / 2 {
                    v.shrink_to_fit();
                }
            }
            Repr::Chunked(c) => {
                if c.chunks.capacity() > 4 && c.chunks.len() < c.chunks.capacity() / 2 {
                    c.chunks.shrink_to_fit();
                }
                for chunk in &mut c.chunks {
                    chunk.lows.shrink();
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    /// A small deterministic PRNG (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check(set: &MemberSet, model: &BTreeSet<KeyId>) {
        assert_eq!(set.len(), model.len());
        assert_eq!(set.is_empty(), model.is_empty());
        assert!(
            set.iter().eq(model.iter().copied()),
            "members or order differ"
        );
    }

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
        assert_eq!(s.overhead_bytes(), 0, "an emptied set holds no memory");
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
            for id in page {
                assert!(seen.insert(id), "{id} returned twice");
            }
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
        let got = vec![s.pop().unwrap(), s.pop().unwrap()];
        assert_eq!(got, vec![9, 7]);
        assert!(s.pop().is_none());
    }

    #[test]
    fn bitmap_bounds() {
        let mut b = Box::new([0u64; WORDS]);
        for lo in [0u16, 1, 63, 64, 65, 127, 128, 65_535] {
            b[usize::from(lo) >> 6] |= 1 << (lo & 63);
        }
        let all: Vec<u16> = below(&b, 1 << 16).collect();
        assert_eq!(all, vec![65_535, 128, 127, 65, 64, 63, 1, 0]);
        assert_eq!(below(&b, 64).collect::<Vec<_>>(), vec![63, 1, 0]);
        assert_eq!(below(&b, 65).collect::<Vec<_>>(), vec![64, 63, 1, 0]);
        assert_eq!(below(&b, 0).count(), 0);
        assert_eq!(below(&b, 1).collect::<Vec<_>>(), vec![0]);
        let up: Vec<u16> = bitmap_iter(&b).collect();
        assert_eq!(up, vec![0, 1, 63, 64, 65, 127, 128, 65_535]);
    }

    /// Random operations against a BTreeSet, with ids drawn so the set passes through every
    /// layout: small, chunked arrays, bitmaps, and back.
    #[test]
    fn model_random_operations() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        // Which layouts the runs passed through: small, chunked, a bitmap chunk.
        let mut saw = [false; 3];
        for round in 0..6u64 {
            let mut set = MemberSet::default();
            let mut model = BTreeSet::new();
            // Id ranges: dense in one chunk (bitmaps), across a few chunks, and sparse.
            let span: u64 = [12_000, 200_000, 1 << 32, 70_000, 3_000, 140_000][round as usize];
            let steps = 40_000;
            let mut scan: Option<(u64, HashSet<KeyId>, BTreeSet<KeyId>)> = None;
            for step in 0..steps {
                // Grow for the first half, shrink for the second.
                let grow = if step < steps / 2 { 4 } else { 1 };
                let id = rng.below(span) as KeyId;
                match rng.below(8) {
                    0..=3 if rng.below(4) < grow => {
                        assert_eq!(set.insert(id), model.insert(id));
                    }
                    0..=4 => {
                        // Remove a member half of the time, an arbitrary id otherwise.
                        let id = if rng.below(2) == 0 {
                            model
                                .iter()
                                .nth(rng.below(model.len().max(1) as u64) as usize % 64)
                                .copied()
                                .unwrap_or(id)
                        } else {
                            id
                        };
                        assert_eq!(set.remove(id), model.remove(&id));
                        if let Some((_, _, throughout)) = scan.as_mut() {
                            throughout.remove(&id);
                        }
                    }
                    5 => {
                        let got = set.pop();
                        assert_eq!(got, model.iter().next_back().copied());
                        if let Some(id) = got {
                            model.remove(&id);
                            if let Some((_, _, throughout)) = scan.as_mut() {
                                throughout.remove(&id);
                            }
                        }
                    }
                    6 => set.shrink(),
                    _ => {
                        let (cursor, seen, _) =
                            scan.get_or_insert_with(|| (0, HashSet::new(), model.clone()));
                        let count = 1 + rng.below(300) as usize;
                        let (next, page) = set.scan(*cursor, count);
                        assert!(page.len() <= count);
                        for id in &page {
                            assert!(model.contains(id), "scan returned a non-member");
                            assert!(seen.insert(*id), "scan returned {id} twice");
                        }
                        *cursor = next;
                        if next == 0 {
                            let (_, seen, throughout) = scan.take().unwrap();
                            assert!(
                                throughout.iter().all(|id| seen.contains(id)),
                                "scan missed members"
                            );
                        }
                    }
                }
                assert_eq!(set.contains(id), model.contains(&id));
                match &set.repr {
                    Repr::Small(_) => saw[0] = true,
                    Repr::Chunked(c) => {
                        saw[1] = true;
                        saw[2] |= c.chunks.iter().any(|c| matches!(c.lows, Lows::Bitmap(..)));
                    }
                }
                if step % 997 == 0 {
                    check(&set, &model);
                }
            }
            check(&set, &model);
            while let Some(id) = set.pop() {
                assert!(model.remove(&id));
            }
            assert!(model.is_empty());
            assert_eq!(set.overhead_bytes(), 0, "drained back to baseline");
        }
        assert_eq!(saw, [true; 3], "every layout exercised");
    }

    #[test]
    fn layouts_convert_both_ways() {
        let mut set = MemberSet::default();
        let mut model = BTreeSet::new();
        // 10,000 ids in one chunk: becomes chunked, then a bitmap.
        for id in 0..10_000u32 {
            let id = id * 3 % 30_000;
            set.insert(id);
            model.insert(id);
        }
        assert!(
            matches!(&set.repr, Repr::Chunked(c) if matches!(c.chunks[0].lows, Lows::Bitmap(..)))
        );
        check(&set, &model);
        let big = set.overhead_bytes();
        assert!(
            big <= 8192 + 256,
            "a bitmap chunk, not 4 B per member: {big}"
        );
        for id in model.clone().iter().skip(100) {
            set.remove(*id);
            model.remove(id);
        }
        set.shrink();
        assert!(matches!(set.repr, Repr::Small(_)));
        check(&set, &model);
        assert!(set.overhead_bytes() <= 100 * 4 * 2);
    }
}
