//! One database's module memory: the index of entries by key and by tag, the tag
//! invalidations still being swept, leases and counters. All of it derives from the keyspace
//! except leases and counters, so it is rebuilt on load and kept right by the type callbacks
//! and keyspace events.

use crate::entry::{Entry, Freshness, TagInvalidation};
use crate::keyindex::KeyIndex;
use crate::leases::Leases;
use crate::memberset::{Bytes, IdHasher, KeyId, MemberSet};
use crate::pattern::{self, Matcher};
use crate::stats::Stats;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tag invalidations up to this many entries are done inside the command; larger ones return
/// at once and are swept by a timer.
pub const SYNC_LIMIT: usize = 1000;
/// A key pattern scans its range inside the command for at most this long (and this many
/// keys), counting matches; the rest of the range is swept by the timer.
pub const SCAN_BUDGET: Duration = Duration::from_millis(2);
pub const SCAN_LIMIT: usize = 200_000;

/// Keys awaiting the sweeper: the members a tag had when it was invalidated, or entries found
/// dead when they (re)entered the index.
pub struct Sweep {
    pub tag: Option<Bytes>,
    pub soft: bool,
    pub members: MemberSet,
}

/// A key-pattern invalidation too large for one command: keys after `next` (within the
/// pattern's literal prefix) are still to be swept; readers apply it to entries older than
/// `seq` whose key matches.
pub struct PatternSweep {
    matcher: Matcher,
    pub soft: bool,
    seq: u64,
    at: i64,
    /// The last key already handled; None: start at the prefix.
    next: Option<Bytes>,
    done: bool,
}

/// What a key pattern found inside the command.
pub struct PatternWork {
    /// Matches the command invalidates itself.
    pub now: Vec<Bytes>,
    /// Further matches seen in the scan, left to the sweep (counted in the reply).
    pub later: u64,
    pub sweep: Option<PatternSweep>,
}

/// One database's module memory, split by responsibility. The fields are private: the index
/// changes only through `add`/`remove`/`flush` (called from the type callbacks and keyspace
/// events), so it cannot disagree with the keyspace through a stray write from outside.
#[derive(Default)]
pub struct Db {
    index: Index,
    invalidations: Invalidations,
    leases: Leases,
    stats: Stats,
}

/// Entries by key (ordered, numbered) and by tag.
#[derive(Default)]
struct Index {
    keys: KeyIndex,
    tags: HashMap<Bytes, MemberSet>,
}

/// Invalidations still in progress: tag records readers apply before the sweep reaches an
/// entry, the sweeps themselves, and a replica's dead entries.
#[derive(Default)]
struct Invalidations {
    pending: HashMap<Bytes, TagInvalidation>,
    sweeps: VecDeque<Sweep>,
    pattern_sweeps: VecDeque<PatternSweep>,
    /// Entries a replica's sweeper found dead, waiting for the primary's DEL; deleted by this
    /// server's own sweeper if it is promoted first.
    dead_on_replica: HashSet<KeyId, BuildHasherDefault<IdHasher>>,
}

/// What a tag invalidation left to do.
pub enum TagWork {
    /// Small enough: the command processes these keys itself.
    Now(Vec<Bytes>),
    /// Detached for the sweeper; readers already see the effect. Holds the member count.
    Swept(usize),
}

impl Db {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    pub fn leases_mut(&mut self) -> &mut Leases {
        &mut self.leases
    }

    /// The members of `tag`, if any entry carries it.
    pub fn tag_members(&self, tag: &[u8]) -> Option<&MemberSet> {
        self.index.tags.get(tag)
    }

    /// How many distinct tags the entries carry.
    pub fn tag_count(&self) -> usize {
        self.index.tags.len()
    }

    /// Whether the sweeper has work here.
    pub fn has_sweeps(&self) -> bool {
        !self.invalidations.sweeps.is_empty() || !self.invalidations.pattern_sweeps.is_empty()
    }

    /// Recounts the entries per namespace under a new delimiter.
    pub fn recount_namespaces(&mut self, delimiter: u8, max_ns: usize) {
        let keys: Vec<_> = self.index.keys.iter().map(<[u8]>::to_vec).collect();
        self.stats
            .recount(keys.iter().map(|k| &**k), delimiter, max_ns);
    }

    /// True while a caller's lease still protects `key`.
    pub fn is_protected(&self, key: &[u8], now: i64) -> bool {
        self.leases.is_protected(key, now)
    }

    /// Grants the lease on `key` to `token` for `lease_ms` from `now`.
    pub fn grant_lease(&mut self, key: &[u8], token: u64, seq: u64, now: i64, lease_ms: i64) {
        self.leases.grant(key, token, seq, now, lease_ms);
    }

    pub fn pending_for(&self, tag: &[u8]) -> Option<TagInvalidation> {
        if self.invalidations.pending.is_empty() {
            None
        } else {
            self.invalidations.pending.get(tag).copied()
        }
    }

    /// The entry under `key` as pending invalidations make it: dead, or fresh until when.
    pub fn effective(&self, key: &[u8], entry: &Entry) -> (bool, i64) {
        let (dead, mut fresh_until) = entry.effective(|t| self.pending_for(t));
        if dead {
            return (true, fresh_until);
        }
        for p in &self.invalidations.pattern_sweeps {
            if entry.gen < p.seq && p.matcher.matches(key) {
                if !p.soft {
                    return (true, fresh_until);
                }
                fresh_until = fresh_until.min(p.at);
            }
        }
        (false, fresh_until)
    }

    pub fn freshness(&self, key: &[u8], entry: &Entry, now: i64) -> Freshness {
        if self.invalidations.pending.is_empty() && self.invalidations.pattern_sweeps.is_empty() {
            return Freshness::of((entry.dead(), entry.fresh_until), now);
        }
        Freshness::of(self.effective(key, entry), now)
    }

    /// Writes pending invalidations into the entry, so they survive a move, a copy or a save.
    pub fn materialize(&self, key: &[u8], entry: &mut Entry) {
        if !self.invalidations.pending.is_empty() || !self.invalidations.pattern_sweeps.is_empty() {
            let effective = self.effective(key, entry);
            entry.apply(effective);
        }
    }

    /// Indexes `key` (now holding `entry`): stamps the entry with `gen`, and queues it for
    /// deletion if it arrived already dead.
    pub fn add(&mut self, key: &[u8], entry: &mut Entry, gen: u64, delimiter: u8, max_ns: usize) {
        let (id, added) = self.index.keys.insert(key);
        if added {
            self.stats.entry_added(key, delimiter, max_ns);
        }
        entry.gen = gen;
        for tag in entry.tags() {
            match self.index.tags.get_mut(tag) {
                Some(set) => {
                    set.insert(id);
                }
                None => {
                    let mut set = MemberSet::default();
                    set.insert(id);
                    self.index.tags.insert(Arc::from(tag), set);
                }
            }
        }
        if entry.dead() {
            self.doom(id);
        }
    }

    /// A replica keeps a dead entry until the primary's DEL; remember it in case of promotion.
    pub fn mark_dead_on_replica(&mut self, key: &[u8]) {
        if let Some(id) = self.index.keys.id(key) {
            self.invalidations.dead_on_replica.insert(id);
        }
    }

    /// This server became a primary: the dead entries it was keeping go to the sweeper.
    /// Returns whether there were any.
    pub fn promote(&mut self) -> bool {
        let ids = std::mem::take(&mut self.invalidations.dead_on_replica);
        let any = !ids.is_empty();
        for id in ids {
            self.doom(id);
        }
        any
    }

    fn doom(&mut self, id: KeyId) {
        if !matches!(
            self.invalidations.sweeps.back(),
            Some(Sweep { tag: None, .. })
        ) {
            self.invalidations.sweeps.push_back(Sweep {
                tag: None,
                soft: false,
                members: MemberSet::default(),
            });
        }
        if let Some(sweep) = self.invalidations.sweeps.back_mut() {
            sweep.members.insert(id);
        }
    }

    /// Unindexes `key`, which held `entry`; first writes pending invalidations into the entry,
    /// since it may live on under another name or database.
    pub fn remove(&mut self, key: &[u8], entry: &mut Entry, delimiter: u8) {
        self.materialize(key, entry);
        let Some(id) = self.index.keys.remove(key) else {
            return;
        };
        if !self.invalidations.dead_on_replica.is_empty() {
            self.invalidations.dead_on_replica.remove(&id);
        }
        self.stats.entry_removed(key, delimiter);
        for tag in entry.tags() {
            if let Some(set) = self.index.tags.get_mut(tag) {
                set.remove(id);
                if set.is_empty() {
                    self.index.tags.remove(tag);
                } else {
                    set.shrink();
                }
            }
        }
        if self.index.tags.is_empty() && self.index.tags.capacity() > 0 {
            self.index.tags = HashMap::new();
        }
    }

    /// Finds the entries whose key matches `pat` through the pattern's literal prefix. The
    /// command invalidates up to SYNC_LIMIT matches itself; the scan goes on counting within
    /// SCAN_BUDGET, and whatever is left is described by a sweep, to be recorded with
    /// `start_pattern_sweep` once `now` is processed. `keys_only`: every match now, no sweep.
    pub fn match_keys(
        &self,
        pat: &[u8],
        soft: bool,
        seq: u64,
        now: i64,
        keys_only: bool,
    ) -> PatternWork {
        let mut work = PatternWork {
            now: Vec::new(),
            later: 0,
            sweep: None,
        };
        if let Some(key) = pattern::as_literal(pat) {
            let name = self
                .index
                .keys
                .id(&key)
                .and_then(|id| self.index.keys.name(id));
            work.now.extend(name.map(Bytes::from));
            return work;
        }
        let matcher = Matcher::new(pat);
        let started = Instant::now();
        let mut handled: Option<Bytes> = None;
        let mut finished = true;
        for (examined, key) in self
            .index
            .keys
            .range(Bound::Included(matcher.prefix()))
            .take_while(|k| k.starts_with(matcher.prefix()))
            .enumerate()
        {
            let out_of_budget = examined % 256 == 255 && started.elapsed() > SCAN_BUDGET;
            if !keys_only && (examined == SCAN_LIMIT || out_of_budget) {
                finished = false;
                break;
            }
            if !matcher.matches(key) {
                continue;
            }
            if keys_only || work.now.len() < SYNC_LIMIT {
                work.now.push(Bytes::from(key));
                handled = work.now.last().cloned();
            } else {
                work.later += 1;
            }
        }
        if !finished || work.later > 0 {
            work.sweep = Some(PatternSweep {
                matcher,
                soft,
                seq,
                at: now,
                next: handled,
                done: false,
            });
        }
        work
    }

    pub fn start_pattern_sweep(&mut self, sweep: PatternSweep) {
        self.invalidations.pattern_sweeps.push_back(sweep);
    }

    /// Takes the next keys of the oldest pattern sweep that match its pattern. A finished
    /// sweep is dropped on the call after its last keys were handed out.
    pub fn next_pattern_batch(&mut self, n: usize) -> Option<(bool, u64, Vec<Bytes>)> {
        while self
            .invalidations
            .pattern_sweeps
            .front()
            .is_some_and(|p| p.done)
        {
            self.invalidations.pattern_sweeps.pop_front();
        }
        let sweep = self.invalidations.pattern_sweeps.front_mut()?;
        let from = match &sweep.next {
            Some(key) => Bound::Excluded(&**key),
            None => Bound::Included(sweep.matcher.prefix()),
        };
        let range: Vec<Bytes> = self
            .index
            .keys
            .range(from)
            .take_while(|k| k.starts_with(sweep.matcher.prefix()))
            .take(n)
            .map(Bytes::from)
            .collect();
        sweep.done = range.len() < n;
        if let Some(last) = range.last() {
            sweep.next = Some(last.clone());
        }
        let matching = range
            .into_iter()
            .filter(|k| sweep.matcher.matches(k))
            .collect();
        Some((sweep.soft, sweep.seq, matching))
    }

    /// Tags whose name matches `pat`.
    pub fn tags_matching(&self, pat: &[u8]) -> Vec<Bytes> {
        let matcher = Matcher::new(pat);
        self.index
            .tags
            .keys()
            .filter(|t| matcher.matches(t))
            .cloned()
            .collect()
    }

    /// Invalidates one tag at sequence `seq`: small tags hand their keys back, large ones are
    /// detached whole (O(1)) and recorded so readers see the effect before the sweep.
    /// `keys_only`: the caller may touch only some keys, so every member is handed back.
    pub fn invalidate_tag(
        &mut self,
        tag: &[u8],
        soft: bool,
        seq: u64,
        now: i64,
        keys_only: bool,
    ) -> TagWork {
        self.leases.void_tag(tag, seq);
        let Some(set) = self.index.tags.get(tag) else {
            return TagWork::Now(Vec::new());
        };
        if keys_only || set.len() <= SYNC_LIMIT {
            return TagWork::Now(self.names(set.iter()));
        }
        let Some((name, members)) = self.index.tags.remove_entry(tag) else {
            return TagWork::Now(Vec::new());
        };
        let count = members.len();
        let record = self.invalidations.pending.entry(name.clone()).or_default();
        if soft {
            record.soft_seq = seq;
            record.soft_at = now;
        } else {
            record.hard_seq = seq;
        }
        record.sweeps += 1;
        self.invalidations.sweeps.push_back(Sweep {
            tag: Some(name),
            soft,
            members,
        });
        TagWork::Swept(count)
    }

    /// Takes up to `n` keys from the oldest sweep. A sweep is retired (its record dropped) on
    /// the call after its last keys were handed out, so those were processed under it.
    pub fn next_to_sweep(&mut self, n: usize) -> Option<(Option<Bytes>, bool, Vec<Bytes>)> {
        while self
            .invalidations
            .sweeps
            .front()
            .is_some_and(|s| s.members.is_empty())
        {
            if let Some(Sweep {
                tag: Some(name), ..
            }) = self.invalidations.sweeps.pop_front()
            {
                self.retire(&name);
            }
        }
        let sweep = self.invalidations.sweeps.front_mut()?;
        let ids: Vec<KeyId> = std::iter::from_fn(|| sweep.members.pop()).take(n).collect();
        let (tag, soft) = (sweep.tag.clone(), sweep.soft);
        // An id whose key left since names nothing, or a newer entry the sweep will find live.
        Some((tag, soft, self.names(ids)))
    }

    /// The current names of `ids`.
    pub fn names(&self, ids: impl IntoIterator<Item = KeyId>) -> Vec<Bytes> {
        ids.into_iter()
            .filter_map(|id| self.index.keys.name(id).map(Bytes::from))
            .collect()
    }

    fn retire(&mut self, tag: &[u8]) {
        if let Some(record) = self.invalidations.pending.get_mut(tag) {
            record.sweeps = record.sweeps.saturating_sub(1);
            if record.sweeps == 0 {
                self.invalidations.pending.remove(tag);
            }
        }
        if self.invalidations.pending.is_empty() && self.invalidations.pending.capacity() > 0 {
            self.invalidations.pending = HashMap::new();
        }
    }

    /// Puts a soft-swept key back among its tag's members, if it is still an indexed entry.
    pub fn restore_member(&mut self, tag: &Bytes, key: &[u8]) {
        if let Some(id) = self.index.keys.id(key) {
            self.index.tags.entry(tag.clone()).or_default().insert(id);
        }
    }

    /// Forgets every entry (FLUSHDB); counters stay.
    pub fn flush(&mut self) {
        self.index.keys = KeyIndex::default();
        self.index.tags = HashMap::new();
        self.invalidations.pending = HashMap::new();
        self.invalidations.sweeps = VecDeque::new();
        self.invalidations.pattern_sweeps = VecDeque::new();
        self.invalidations.dead_on_replica = HashSet::default();
        self.leases.clear();
        self.stats.clear_entries();
    }

    /// Takes over the index of `staged` (a replica's async load, now swapped in); counters
    /// stay, leases go as in a flush.
    pub fn adopt(&mut self, staged: Db) {
        let Db {
            index,
            invalidations,
            leases: _,
            stats,
        } = staged;
        self.index = index;
        self.invalidations = invalidations;
        self.leases.clear();
        self.stats.adopt_entries(&stats);
    }

    pub fn entries(&self) -> usize {
        self.index.keys.len()
    }

    /// Module memory held by this database's index, estimated from its structures.
    pub fn index_bytes(&self) -> usize {
        const ARC_HEADER: usize = 16;
        let keys = self.index.keys.overhead_bytes();
        let tags: usize = self
            .index
            .tags
            .iter()
            .map(|(t, set)| {
                t.len() + ARC_HEADER + std::mem::size_of::<MemberSet>() + set.overhead_bytes()
            })
            .sum();
        let sweeps: usize = self
            .invalidations
            .sweeps
            .iter()
            .map(|s| s.members.overhead_bytes())
            .sum();
        keys + tags + sweeps + self.leases.approx_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tags: &[&str]) -> Entry {
        Entry::new(b"v", tags.iter().map(|t| t.as_bytes()), i64::MAX, 0)
    }

    #[test]
    fn add_remove_keeps_tags_exact() {
        let mut db = Db::default();
        let mut a = entry(&["t", "u"]);
        let mut b = entry(&["t"]);
        db.add(b"a", &mut a, 1, b':', 10);
        db.add(b"b", &mut b, 2, b':', 10);
        assert_eq!(db.index.tags.len(), 2);
        assert_eq!(db.index.tags[b"t".as_slice()].len(), 2);
        db.remove(b"a", &mut a, b':');
        assert_eq!(db.index.tags.len(), 1);
        db.remove(b"b", &mut b, b':');
        assert!(db.index.tags.is_empty() && db.index.keys.is_empty());
        assert_eq!(db.index_bytes(), 0, "memory back to baseline");
    }

    #[test]
    fn patterns_use_the_prefix() {
        let mut db = Db::default();
        for k in ["user:1", "user:2", "users", "post:1"] {
            db.add(k.as_bytes(), &mut entry(&[]), 1, b':', 10);
        }
        let run = |p: &[u8]| db.match_keys(p, false, 2, 0, false);
        let got: Vec<_> = run(b"user:*").now.iter().map(|k| k.to_vec()).collect();
        assert_eq!(got, vec![b"user:1".to_vec(), b"user:2".to_vec()]);
        assert_eq!(run(b"*1").now.len(), 2);
        assert_eq!(run(b"users").now.len(), 1);
        assert_eq!(run(b"nope").now.len(), 0);
        assert!(
            run(b"*").sweep.is_none(),
            "small ranges are done in the command"
        );
    }

    #[test]
    fn large_pattern_ranges_are_swept() {
        let mut db = Db::default();
        let total = 3 * SYNC_LIMIT;
        let mut entries: Vec<(String, Entry)> = (0..total)
            .map(|i| (format!("k{i:06}"), entry(&[])))
            .collect();
        for (k, e) in entries.iter_mut() {
            db.add(k.as_bytes(), e, 1, b':', 10);
        }
        let work = db.match_keys(b"k*", false, 2, 0, false);
        assert_eq!(
            work.now.len(),
            SYNC_LIMIT,
            "the command deletes at most SYNC_LIMIT itself"
        );
        assert_eq!(
            work.later,
            (total - SYNC_LIMIT) as u64,
            "but counts every match it scanned"
        );
        db.start_pattern_sweep(work.sweep.expect("the rest is swept"));
        let (last_key, last) = &entries[total - 1];
        assert_eq!(
            db.freshness(last_key.as_bytes(), last, 0),
            Freshness::Dead,
            "readers see it at once"
        );
        let mut later = 0;
        while let Some((soft, _, keys)) = db.next_pattern_batch(16) {
            assert!(!soft);
            later += keys.len();
        }
        assert_eq!(
            later,
            total - SYNC_LIMIT,
            "the sweep starts after the last key handled"
        );
        assert!(db.invalidations.pattern_sweeps.is_empty());
        let all = db.match_keys(b"k*", false, 3, 0, true);
        assert_eq!(
            (all.now.len(), all.sweep.is_none()),
            (total, true),
            "keys_only finds every match"
        );
    }

    #[test]
    fn large_tag_invalidation_is_detached_and_swept() {
        let mut db = Db::default();
        let mut entries: Vec<Entry> = (0..SYNC_LIMIT + 5)
            .map(|_| entry(&["big", "other"]))
            .collect();
        for (i, e) in entries.iter_mut().enumerate() {
            db.add(format!("k{i}").as_bytes(), e, 1, b':', 10);
        }
        let TagWork::Swept(n) = db.invalidate_tag(b"big", false, 2, 0, false) else {
            panic!("expected a sweep")
        };
        assert_eq!(n, SYNC_LIMIT + 5);
        assert!(!db.index.tags.contains_key(b"big".as_slice()));
        assert_eq!(db.freshness(b"k0", &entries[0], 0), Freshness::Dead);
        let mut newer = entry(&["big"]);
        db.add(b"new", &mut newer, 3, b':', 10);
        assert_eq!(db.freshness(b"new", &newer, 0), Freshness::Fresh);
        let mut swept = 0;
        while let Some((tag, soft, keys)) = db.next_to_sweep(100) {
            assert_eq!(tag.as_deref(), Some(b"big".as_slice()));
            assert!(!soft);
            swept += keys.len();
        }
        assert_eq!(swept, SYNC_LIMIT + 5);
        assert!(
            db.invalidations.pending.is_empty(),
            "record retired after its last batch"
        );
    }

    #[test]
    fn small_tag_invalidation_hands_keys_back() {
        let mut db = Db::default();
        db.add(b"a", &mut entry(&["t"]), 1, b':', 10);
        match db.invalidate_tag(b"t", true, 2, 0, false) {
            TagWork::Now(keys) => assert_eq!(keys.len(), 1),
            TagWork::Swept(_) => panic!("small tags are done in the command"),
        }
        assert!(
            matches!(db.invalidate_tag(b"none", false, 3, 0, false), TagWork::Now(k) if k.is_empty())
        );
    }

    #[test]
    fn a_promoted_replica_sweeps_what_it_kept() {
        let mut db = Db::default();
        for k in ["a", "b"] {
            db.add(k.as_bytes(), &mut entry(&[]), 1, b':', 10);
            db.mark_dead_on_replica(k.as_bytes());
        }
        db.remove(b"b", &mut entry(&[]), b':');
        assert!(db.promote());
        let (_, _, keys) = db.next_to_sweep(10).expect("queued");
        assert_eq!(
            keys,
            vec![Bytes::from(b"a".as_slice())],
            "b was deleted by the primary meanwhile"
        );
        assert!(!db.promote());
    }

    #[test]
    fn dead_arrivals_are_queued() {
        let mut db = Db::default();
        let mut e = entry(&["t"]);
        e.set_dead(true);
        db.add(b"x", &mut e, 1, b':', 10);
        let (tag, _, keys) = db.next_to_sweep(10).expect("queued");
        assert!(tag.is_none());
        assert_eq!(&*keys[0], b"x");
    }
}
