//! The cache entry: what one key of our data type holds, and how fresh it is.

/// `fresh_until` of an entry that never goes stale by itself.
pub const FOREVER: i64 = i64::MAX;

/// One entry, in two allocations (this 32-byte struct and `data`): the cost of an entry in
/// memory is mostly its allocations.
#[derive(Clone)]
pub struct Entry {
    /// Whether the entry is dead (one byte, 0 or 1: invalidated, awaiting deletion by the
    /// sweeper), how long computing the value took (ms, LEB128; 0: no early refresh), the
    /// value's length (LEB128), the value, then each tag as its length (LEB128) and bytes. Tags
    /// are distinct, in the order first given. The flag and the cost live here rather than in
    /// fields so the struct fits a 32-byte allocation.
    data: Box<[u8]>,
    /// Unix ms after which the entry is stale (the key itself expires later, by Redis).
    pub fresh_until: i64,
    /// Sequence number when the entry entered its database's index (module memory only): tag
    /// invalidations with a higher number do not touch it.
    pub gen: u64,
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// How many bytes `put_len` writes for `n`.
fn len_size(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).max(1).div_ceil(7) as usize
}

/// Reads a length written by `put_len` at `*at`, moving past it.
fn take_len(data: &[u8], at: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&byte) = data.get(*at) {
        *at += 1;
        n |= usize::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    n
}

/// The tags of an entry, in order.
pub struct Tags<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.data.len() {
            return None;
        }
        let len = take_len(self.data, &mut self.at);
        let tag = self.data.get(self.at..self.at.saturating_add(len))?;
        self.at += len;
        Some(tag)
    }
}

/// A tag invalidation whose sweep has not finished: readers apply it to entries older than it.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct TagInvalidation {
    pub hard_seq: u64,
    pub soft_seq: u64,
    pub soft_at: i64,
    pub sweeps: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Stale,
    Dead,
}

impl Freshness {
    /// The freshness at `now` of an effective state (dead, fresh-until).
    pub fn of((dead, fresh_until): (bool, i64), now: i64) -> Freshness {
        match (dead, fresh_until) {
            (true, _) => Freshness::Dead,
            (false, until) if now < until => Freshness::Fresh,
            _ => Freshness::Stale,
        }
    }
}

impl Entry {
    pub fn new<'t>(
        value: &[u8],
        tags: impl IntoIterator<Item = &'t [u8]> + Clone,
        fresh_until: i64,
        cost_ms: u32,
    ) -> Entry {
        // Sized exactly up front: one allocation, no growth.
        let tag_bytes: usize = tags
            .clone()
            .into_iter()
            .map(|t| len_size(t.len()) + t.len())
            .sum();
        let cost = cost_ms as usize;
        let mut data = Vec::with_capacity(
            1 + len_size(cost) + len_size(value.len()) + value.len() + tag_bytes,
        );
        data.push(0);
        put_len(&mut data, cost);
        put_len(&mut data, value.len());
        data.extend_from_slice(value);
        for tag in tags {
            put_len(&mut data, tag.len());
            data.extend_from_slice(tag);
        }
        Entry {
            data: data.into_boxed_slice(),
            fresh_until,
            gen: 0,
        }
    }

    /// Invalidated, awaiting deletion by the sweeper.
    pub fn dead(&self) -> bool {
        self.data.first().is_some_and(|&b| b != 0)
    }

    pub fn set_dead(&mut self, dead: bool) {
        if let Some(b) = self.data.first_mut() {
            *b = u8::from(dead);
        }
    }

    /// How long computing the value took (ms); 0: no early refresh.
    pub fn cost_ms(&self) -> u32 {
        let mut at = 1;
        u32::try_from(take_len(&self.data, &mut at)).unwrap_or(u32::MAX)
    }

    fn value_range(&self) -> (usize, usize) {
        let mut at = 1;
        take_len(&self.data, &mut at);
        let len = take_len(&self.data, &mut at);
        (at, at.saturating_add(len).min(self.data.len()))
    }

    pub fn value(&self) -> &[u8] {
        let (start, end) = self.value_range();
        self.data.get(start..end).unwrap_or_default()
    }

    pub fn tags(&self) -> Tags<'_> {
        let (_, end) = self.value_range();
        Tags {
            data: &self.data,
            at: end,
        }
    }

    /// The entry as pending tag invalidations make it: dead, or fresh until when.
    pub fn effective(&self, pending: impl Fn(&[u8]) -> Option<TagInvalidation>) -> (bool, i64) {
        let mut fresh_until = self.fresh_until;
        if self.dead() {
            return (true, fresh_until);
        }
        for tag in self.tags() {
            if let Some(inv) = pending(tag) {
                if self.gen < inv.hard_seq {
                    return (true, fresh_until);
                }
                if self.gen < inv.soft_seq {
                    fresh_until = fresh_until.min(inv.soft_at);
                }
            }
        }
        (false, fresh_until)
    }

    /// Writes pending invalidations into the entry itself, so they survive a move to another
    /// database, a copy, or a save.
    pub fn materialize(&mut self, pending: impl Fn(&[u8]) -> Option<TagInvalidation>) {
        let effective = self.effective(pending);
        self.apply(effective);
    }

    /// Writes an effective state (dead, fresh-until), as `effective` computes it, into the entry.
    pub fn apply(&mut self, (dead, fresh_until): (bool, i64)) {
        self.set_dead(dead);
        self.fresh_until = fresh_until;
    }

    /// Turns a fresh entry stale now (soft invalidation).
    pub fn make_stale(&mut self, now: i64) {
        self.fresh_until = self.fresh_until.min(now);
    }

    pub fn carries(&self, tag: &[u8]) -> bool {
        self.tags().any(|t| t == tag)
    }

    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Entry>() + self.data.len()
    }

    /// A copy for COPY: not yet in any index.
    pub fn duplicate(&self) -> Entry {
        Entry {
            gen: 0,
            ..self.clone()
        }
    }
}

/// XFetch (Vattani et al., VLDB 2015): refresh early when
/// `now - cost * beta * ln(rand) >= fresh_until`, `rand` uniform in (0, 1].
pub fn xfetch(now: i64, fresh_until: i64, cost_ms: u32, beta: f64, rand: f64) -> bool {
    if cost_ms == 0 || beta <= 0.0 || fresh_until == FOREVER {
        return false;
    }
    let gap = -(cost_ms as f64) * beta * rand.max(f64::MIN_POSITIVE).ln();
    now as f64 + gap >= fresh_until as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tags: &[&str], gen: u64) -> Entry {
        let mut e = Entry::new(b"v", tags.iter().map(|t| t.as_bytes()), 1000, 0);
        e.gen = gen;
        e
    }

    #[test]
    fn entry_is_small_and_keeps_its_flags() {
        assert_eq!(
            std::mem::size_of::<Entry>(),
            32,
            "a 32-byte allocation class"
        );
        for cost in [0u32, 1, 127, 128, 200, u32::MAX] {
            let mut e = Entry::new(&[7u8; 100], [b"t:1".as_slice(), b"t:22"], 5, cost);
            assert_eq!((e.cost_ms(), e.dead()), (cost, false));
            e.set_dead(true);
            assert_eq!((e.cost_ms(), e.dead()), (cost, true));
            assert_eq!(e.value(), &[7u8; 100]);
            assert_eq!(
                e.tags().collect::<Vec<_>>(),
                vec![b"t:1".as_slice(), b"t:22"]
            );
            let copy = e.duplicate();
            e.set_dead(false);
            assert!(copy.dead() && !e.dead());
        }
        let e = Entry::new(&[1u8; 100], [b"t:1".as_slice(), b"t:22"], 5, 0);
        assert_eq!(e.mem_usage(), 32 + 1 + 1 + 1 + 100 + 4 + 5);
    }

    #[test]
    fn length_sizes() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, usize::MAX] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            assert_eq!(out.len(), len_size(n), "{n}");
        }
    }

    #[test]
    fn value_and_tags_round_trip() {
        let long = vec![7u8; 300];
        let e = Entry::new(&long, [b"a".as_slice(), b"", &[0u8, 1], &long[..200]], 5, 9);
        assert_eq!(e.value(), long.as_slice());
        let tags: Vec<&[u8]> = e.tags().collect();
        assert_eq!(tags, vec![b"a".as_slice(), b"", &[0u8, 1], &long[..200]]);
        assert!(e.carries(b"") && !e.carries(b"b"));
        let empty = Entry::new(b"", [], 0, 0);
        assert_eq!((empty.value(), empty.tags().count()), (b"".as_slice(), 0));
    }

    fn freshness(
        e: &Entry,
        now: i64,
        pending: impl Fn(&[u8]) -> Option<TagInvalidation>,
    ) -> Freshness {
        Freshness::of(e.effective(pending), now)
    }

    #[test]
    fn freshness_by_time() {
        let e = entry(&[], 1);
        assert_eq!(freshness(&e, 999, |_| None), Freshness::Fresh);
        assert_eq!(freshness(&e, 1000, |_| None), Freshness::Stale);
    }

    #[test]
    fn pending_invalidations_apply_to_older_entries_only() {
        let hard = TagInvalidation {
            hard_seq: 5,
            ..Default::default()
        };
        let soft = TagInvalidation {
            soft_seq: 5,
            soft_at: 500,
            ..Default::default()
        };
        let lookup = |inv: TagInvalidation| move |t: &[u8]| (t == b"t").then_some(inv);
        assert_eq!(
            freshness(&entry(&["u", "t"], 4), 0, lookup(hard)),
            Freshness::Dead
        );
        assert_eq!(
            freshness(&entry(&["t"], 6), 0, lookup(hard)),
            Freshness::Fresh
        );
        assert_eq!(
            freshness(&entry(&["t"], 4), 600, lookup(soft)),
            Freshness::Stale
        );
        assert_eq!(
            freshness(&entry(&["t"], 4), 400, lookup(soft)),
            Freshness::Fresh
        );
        let mut e = entry(&["t"], 4);
        e.materialize(lookup(soft));
        assert_eq!(e.fresh_until, 500);
        e.materialize(lookup(hard));
        assert!(e.dead());
        assert_eq!(freshness(&e, 0, |_| None), Freshness::Dead);
    }

    #[test]
    fn xfetch_rule() {
        assert!(!xfetch(0, 1000, 0, 1.0, 0.5), "no cost, no early refresh");
        assert!(!xfetch(0, 1000, 100, 0.0, 1e-9), "beta 0 disables");
        assert!(!xfetch(0, FOREVER, 100, 1.0, 1e-9));
        // ln(0.5) = -0.693: gap 69 ms.
        assert!(xfetch(940, 1000, 100, 1.0, 0.5));
        assert!(!xfetch(900, 1000, 100, 1.0, 0.5));
        assert!(!xfetch(0, 1000, 100, 1.0, 1.0), "rand 1 gives no gap");
    }
}
