//! Hit/miss counters per database and per key namespace, bounded in memory.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: namespaces are short and hashed on every lookup. Their number is bounded by
/// `cache.max-namespaces`, so crafted collisions can cost at most a bounded probe.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NamespaceMap = HashMap<Vec<u8>, usize, BuildHasherDefault<Fnv>>;

/// Where namespaces past `cache.max-namespaces` are counted.
pub const OTHER: &[u8] = b"(other)";
/// The namespace of keys without the delimiter.
pub const NONE: &[u8] = b"(none)";

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counters {
    pub hits: u64,
    pub stale_hits: u64,
    pub misses: u64,
    pub pending: u64,
    pub sets: u64,
    pub sets_refused: u64,
    pub leases_granted: u64,
    pub invalidations: u64,
    pub invalidated: u64,
    pub waits: u64,
    pub wait_woken_by_set: u64,
    pub wait_handovers: u64,
    pub wait_timeouts: u64,
    pub early_refreshes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Hit,
    StaleHit,
    Miss,
    Pending,
    Set,
    SetRefused,
    LeaseGranted,
    Invalidated(u64),
    Wait,
    WokenBySet,
    Handover,
    WaitTimeout,
    EarlyRefresh,
}

impl Counters {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Hit => self.hits += 1,
            Event::StaleHit => self.stale_hits += 1,
            Event::Miss => self.misses += 1,
            Event::Pending => self.pending += 1,
            Event::Set => self.sets += 1,
            Event::SetRefused => self.sets_refused += 1,
            Event::LeaseGranted => self.leases_granted += 1,
            Event::Invalidated(n) => self.invalidated += n,
            Event::Wait => self.waits += 1,
            Event::WokenBySet => self.wait_woken_by_set += 1,
            Event::Handover => self.wait_handovers += 1,
            Event::WaitTimeout => self.wait_timeouts += 1,
            Event::EarlyRefresh => self.early_refreshes += 1,
        }
    }

    /// (hits + stale_hits) / lookups, with at most 4 decimals and no trailing zeros.
    pub fn hit_ratio(&self) -> String {
        let served = self.hits + self.stale_hits;
        let lookups = served + self.misses;
        if lookups == 0 {
            return "0".to_string();
        }
        let text = format!("{:.4}", served as f64 / lookups as f64);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[derive(Clone, Copy, Default, Debug)]
pub struct NamespaceStats {
    pub counters: Counters,
    pub entries: u64,
}

/// The counters of one database.
#[derive(Default)]
pub struct Stats {
    pub total: Counters,
    /// Each namespace's record, at its slot in `records` (records are never dropped singly).
    slots: NamespaceMap,
    records: Vec<NamespaceStats>,
    /// The namespace updated last, and its slot: lookups in a row mostly share a namespace, and
    /// comparing a few bytes is cheaper than hashing them (this runs on every lookup).
    last: Option<(Vec<u8>, usize)>,
}

/// The namespace of `key`: the bytes before the first `delimiter`.
pub fn namespace_of(key: &[u8], delimiter: u8) -> &[u8] {
    match key.iter().position(|&b| b == delimiter) {
        Some(at) => &key[..at],
        None => NONE,
    }
}

impl Stats {
    /// The slot of namespace `ns`, remembered as the last one.
    fn slot_of(&mut self, ns: &[u8]) -> Option<usize> {
        if let Some((name, slot)) = &self.last {
            if name.as_slice() == ns {
                return Some(*slot);
            }
        }
        let slot = *self.slots.get(ns)?;
        match &mut self.last {
            // The name's buffer is reused: no allocation when namespaces alternate.
            Some((name, last)) => {
                name.clear();
                name.extend_from_slice(ns);
                *last = slot;
            }
            None => self.last = Some((ns.to_vec(), slot)),
        }
        Some(slot)
    }

    /// Applies `change` to the namespace record of `key` (OTHER once `max` namespaces exist).
    /// Allocates only when a namespace is first seen.
    fn update(
        &mut self,
        key: &[u8],
        delimiter: u8,
        max: usize,
        change: impl Fn(&mut NamespaceStats),
    ) {
        self.update_namespace(namespace_of(key, delimiter), max, change);
    }

    fn update_namespace(&mut self, ns: &[u8], max: usize, change: impl Fn(&mut NamespaceStats)) {
        let slot = match self.slot_of(ns) {
            Some(slot) => slot,
            None => {
                let name = if self.slots.len() < max { ns } else { OTHER };
                match self.slot_of(name) {
                    Some(slot) => slot,
                    None => {
                        self.slots.insert(name.to_vec(), self.records.len());
                        self.records.push(NamespaceStats::default());
                        self.records.len() - 1
                    }
                }
            }
        };
        if let Some(record) = self.records.get_mut(slot) {
            change(record);
        }
    }

    pub fn record(&mut self, key: &[u8], event: Event, delimiter: u8, max: usize) {
        self.total.apply(event);
        self.update(key, delimiter, max, |slot| slot.counters.apply(event));
    }

    /// A command-level event with no single key (an invalidation command itself).
    pub fn record_command(&mut self) {
        self.total.invalidations += 1;
    }

    pub fn entry_added(&mut self, key: &[u8], delimiter: u8, max: usize) {
        self.update(key, delimiter, max, |slot| slot.entries += 1);
    }

    pub fn entry_removed(&mut self, key: &[u8], delimiter: u8) {
        let ns = namespace_of(key, delimiter);
        let slot = self.slot_of(ns).or_else(|| self.slot_of(OTHER));
        if let Some(record) = slot.and_then(|slot| self.records.get_mut(slot)) {
            record.entries = record.entries.saturating_sub(1);
        }
    }

    pub fn namespace(&self, name: &[u8]) -> NamespaceStats {
        self.slots
            .get(name)
            .and_then(|&slot| self.records.get(slot))
            .copied()
            .unwrap_or_default()
    }

    pub fn namespaces(&self) -> Vec<(&[u8], NamespaceStats)> {
        let mut all: Vec<_> = self
            .slots
            .iter()
            .filter_map(|(name, &slot)| Some((name.as_slice(), *self.records.get(slot)?)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Zeroes every counter; entry counts stay.
    pub fn reset(&mut self) {
        self.total = Counters::default();
        for ns in &mut self.records {
            ns.counters = Counters::default();
        }
    }

    /// Forgets entry counts (after a flush); counters stay.
    pub fn clear_entries(&mut self) {
        for ns in &mut self.records {
            ns.entries = 0;
        }
    }

    /// Takes the entry counts of `other` (an index built apart and swapped in); counters stay.
    pub fn adopt_entries(&mut self, other: &Stats) {
        self.clear_entries();
        for (name, ns) in other.namespaces() {
            // No bound here: `other` was built under the same one.
            self.update_namespace(name, usize::MAX, |slot| slot.entries += ns.entries);
        }
    }

    /// Recounts entries per namespace from the keys (after the delimiter changes).
    pub fn recount<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>, delimiter: u8, max: usize) {
        self.slots = NamespaceMap::default();
        self.records = Vec::new();
        self.last = None;
        for key in keys {
            self.entry_added(key, delimiter, max);
        }
    }
}

/// The names of the counters CACHE.STATS and INFO report, in order: the one list.
pub const FIELDS: [&str; 17] = [
    "hits",
    "stale_hits",
    "misses",
    "pending",
    "hit_ratio",
    "sets",
    "sets_refused",
    "leases_granted",
    "invalidations",
    "invalidated",
    "entries",
    "tags",
    "waits",
    "wait_woken_by_set",
    "wait_handovers",
    "wait_timeouts",
    "early_refreshes",
];

/// The fields of CACHE.STATS and INFO, in order; `hit_ratio` is text, the rest integers.
pub fn stat_fields(c: &Counters, entries: u64, tags: u64) -> [(&'static str, StatValue); 17] {
    use StatValue::{Int, Text};
    let values = [
        Int(c.hits),
        Int(c.stale_hits),
        Int(c.misses),
        Int(c.pending),
        Text(c.hit_ratio()),
        Int(c.sets),
        Int(c.sets_refused),
        Int(c.leases_granted),
        Int(c.invalidations),
        Int(c.invalidated),
        Int(entries),
        Int(tags),
        Int(c.waits),
        Int(c.wait_woken_by_set),
        Int(c.wait_handovers),
        Int(c.wait_timeouts),
        Int(c.early_refreshes),
    ];
    let mut i = 0;
    values.map(|v| {
        let field = FIELDS[i];
        i += 1;
        (field, v)
    })
}

pub enum StatValue {
    Int(u64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_format() {
        let mut c = Counters::default();
        assert_eq!(c.hit_ratio(), "0");
        c.hits = 1;
        assert_eq!(c.hit_ratio(), "1");
        c.misses = 1;
        assert_eq!(c.hit_ratio(), "0.5");
        c.stale_hits = 1;
        assert_eq!(c.hit_ratio(), "0.6667");
    }

    #[test]
    fn namespaces_are_bounded() {
        let mut s = Stats::default();
        s.record(b"a:1", Event::Hit, b':', 2);
        s.record(b"b:1", Event::Miss, b':', 2);
        s.record(b"c:1", Event::Hit, b':', 2);
        s.record(b"plain", Event::Hit, b':', 3);
        assert_eq!(s.namespace(b"a").counters.hits, 1);
        assert_eq!(s.namespace(b"b").counters.misses, 1);
        assert_eq!(s.namespace(OTHER).counters.hits, 2, "c and (none) overflow");
        assert_eq!(s.total.hits, 3);
    }

    #[test]
    fn entries_follow_adds_and_removes() {
        let mut s = Stats::default();
        s.entry_added(b"a:1", b':', 10);
        s.entry_added(b"a:2", b':', 10);
        s.entry_removed(b"a:1", b':');
        assert_eq!(s.namespace(b"a").entries, 1);
        s.reset();
        assert_eq!(s.namespace(b"a").entries, 1);
        s.recount([b"x|1".as_slice(), b"x|2"].into_iter(), b'|', 10);
        assert_eq!(s.namespace(b"x").entries, 2);
        assert_eq!(s.namespace(b"a").entries, 0);
    }

    #[test]
    fn adopted_counts_keep_their_namespaces() {
        let mut built = Stats::default();
        built.entry_added(b"a\0b:1", b':', 10);
        built.entry_added(b"plain", b':', 10);
        let mut live = Stats::default();
        live.record(b"a\0b:9", Event::Hit, b':', 10);
        live.entry_added(b"gone:1", b':', 10);
        live.adopt_entries(&built);
        assert_eq!(live.namespace(b"a\0b").entries, 1);
        assert_eq!(live.namespace(b"a\0b").counters.hits, 1, "counters stay");
        assert_eq!(live.namespace(NONE).entries, 1);
        assert_eq!(live.namespace(b"gone").entries, 0);
    }

    #[test]
    fn the_last_namespace_is_remembered_right() {
        let mut s = Stats::default();
        for key in [&b"a:1"[..], b"a:2", b"b:1", b"a:3", b"b:2"] {
            s.record(key, Event::Hit, b':', 10);
        }
        assert_eq!(s.namespace(b"a").counters.hits, 3);
        assert_eq!(s.namespace(b"b").counters.hits, 2);
        s.recount([b"b|1".as_slice()].into_iter(), b'|', 10);
        s.record(b"b|2", Event::Miss, b'|', 10);
        assert_eq!(s.namespace(b"b").counters.misses, 1);
        assert_eq!(s.namespace(b"b").entries, 1);
    }
}
