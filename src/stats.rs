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

type NamespaceMap = HashMap<Vec<u8>, NamespaceStats, BuildHasherDefault<Fnv>>;

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
    namespaces: NamespaceMap,
}

/// The namespace of `key`: the bytes before the first `delimiter`.
pub fn namespace_of(key: &[u8], delimiter: u8) -> &[u8] {
    match key.iter().position(|&b| b == delimiter) {
        Some(at) => &key[..at],
        None => NONE,
    }
}

impl Stats {
    /// Applies `change` to the namespace record of `key` (OTHER once `max` namespaces exist).
    /// Hashes once and allocates only when a namespace is first seen: this runs on every lookup.
    fn update(
        &mut self,
        key: &[u8],
        delimiter: u8,
        max: usize,
        change: impl Fn(&mut NamespaceStats),
    ) {
        let ns = namespace_of(key, delimiter);
        if let Some(slot) = self.namespaces.get_mut(ns) {
            change(slot);
            return;
        }
        let name = if self.namespaces.len() < max {
            ns
        } else {
            OTHER
        };
        change(self.namespaces.entry(name.to_vec()).or_default());
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
        let name = if self.namespaces.contains_key(ns) {
            ns
        } else {
            OTHER
        };
        if let Some(slot) = self.namespaces.get_mut(name) {
            slot.entries = slot.entries.saturating_sub(1);
        }
    }

    pub fn namespace(&self, name: &[u8]) -> NamespaceStats {
        self.namespaces.get(name).copied().unwrap_or_default()
    }

    pub fn namespaces(&self) -> Vec<(&[u8], NamespaceStats)> {
        let mut all: Vec<_> = self
            .namespaces
            .iter()
            .map(|(k, v)| (k.as_slice(), *v))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Zeroes every counter; entry counts stay.
    pub fn reset(&mut self) {
        self.total = Counters::default();
        for ns in self.namespaces.values_mut() {
            ns.counters = Counters::default();
        }
    }

    /// Forgets entry counts (after a flush); counters stay.
    pub fn clear_entries(&mut self) {
        for ns in self.namespaces.values_mut() {
            ns.entries = 0;
        }
    }

    /// Recounts entries per namespace from the keys (after the delimiter changes).
    pub fn recount<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>, delimiter: u8, max: usize) {
        self.namespaces = NamespaceMap::default();
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
}
