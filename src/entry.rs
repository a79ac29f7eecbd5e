//! The cache entry: what one key of our data type holds, and how fresh it is.

use crate::memberset::Bytes;

/// `fresh_until` of an entry that never goes stale by itself.
pub const FOREVER: i64 = i64::MAX;

pub struct Entry {
    pub value: Vec<u8>,
    /// Distinct, in the order first given.
    pub tags: Vec<Bytes>,
    /// Unix ms after which the entry is stale (the key itself expires later, by Redis).
    pub fresh_until: i64,
    /// How long computing the value took (ms); 0: no early refresh.
    pub cost_ms: i64,
    /// Sequence number when the entry entered its database's index (module memory only): tag
    /// invalidations with a higher number do not touch it.
    pub gen: u64,
    /// Invalidated, awaiting deletion by the sweeper.
    pub dead: bool,
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

impl Entry {
    pub fn new(value: Vec<u8>, tags: Vec<Bytes>, fresh_until: i64, cost_ms: i64) -> Entry {
        Entry {
            value,
            tags,
            fresh_until,
            cost_ms,
            gen: 0,
            dead: false,
        }
    }

    /// The entry as pending tag invalidations make it: dead, or fresh until when.
    pub fn effective(&self, pending: impl Fn(&[u8]) -> Option<TagInvalidation>) -> (bool, i64) {
        let mut fresh_until = self.fresh_until;
        if self.dead {
            return (true, fresh_until);
        }
        for tag in &self.tags {
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

    pub fn freshness(
        &self,
        now: i64,
        pending: impl Fn(&[u8]) -> Option<TagInvalidation>,
    ) -> Freshness {
        match self.effective(pending) {
            (true, _) => Freshness::Dead,
            (false, until) if now < until => Freshness::Fresh,
            _ => Freshness::Stale,
        }
    }

    /// Writes pending invalidations into the entry itself, so they survive a move to another
    /// database, a copy, or a save.
    pub fn materialize(&mut self, pending: impl Fn(&[u8]) -> Option<TagInvalidation>) {
        let (dead, fresh_until) = self.effective(pending);
        self.dead = dead;
        self.fresh_until = fresh_until;
    }

    /// Turns a fresh entry stale now (soft invalidation).
    pub fn make_stale(&mut self, now: i64) {
        self.fresh_until = self.fresh_until.min(now);
    }

    pub fn carries(&self, tag: &[u8]) -> bool {
        self.tags.iter().any(|t| &**t == tag)
    }

    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.value.capacity()
            + self.tags.capacity() * std::mem::size_of::<Bytes>()
    }

    pub fn duplicate(&self) -> Entry {
        Entry {
            value: self.value.clone(),
            tags: self.tags.clone(),
            fresh_until: self.fresh_until,
            cost_ms: self.cost_ms,
            gen: 0,
            dead: self.dead,
        }
    }
}

/// XFetch (Vattani et al., VLDB 2015): refresh early when
/// `now - cost * beta * ln(rand) >= fresh_until`, `rand` uniform in (0, 1].
pub fn xfetch(now: i64, fresh_until: i64, cost_ms: i64, beta: f64, rand: f64) -> bool {
    if cost_ms <= 0 || beta <= 0.0 || fresh_until == FOREVER {
        return false;
    }
    let gap = -(cost_ms as f64) * beta * rand.max(f64::MIN_POSITIVE).ln();
    now as f64 + gap >= fresh_until as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(tags: &[&str], gen: u64) -> Entry {
        let mut e = Entry::new(
            b"v".to_vec(),
            tags.iter().map(|t| Arc::from(t.as_bytes())).collect(),
            1000,
            0,
        );
        e.gen = gen;
        e
    }

    #[test]
    fn freshness_by_time() {
        let e = entry(&[], 1);
        assert_eq!(e.freshness(999, |_| None), Freshness::Fresh);
        assert_eq!(e.freshness(1000, |_| None), Freshness::Stale);
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
            entry(&["u", "t"], 4).freshness(0, lookup(hard)),
            Freshness::Dead
        );
        assert_eq!(
            entry(&["t"], 6).freshness(0, lookup(hard)),
            Freshness::Fresh
        );
        assert_eq!(
            entry(&["t"], 4).freshness(600, lookup(soft)),
            Freshness::Stale
        );
        assert_eq!(
            entry(&["t"], 4).freshness(400, lookup(soft)),
            Freshness::Fresh
        );
        let mut e = entry(&["t"], 4);
        e.materialize(lookup(soft));
        assert_eq!(e.fresh_until, 500);
        e.materialize(lookup(hard));
        assert!(e.dead);
        assert_eq!(e.freshness(0, |_| None), Freshness::Dead);
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
