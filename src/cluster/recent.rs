//! Recent tag and key-pattern invalidations, so that an entry in flight between two nodes
//! while one ran (MIGRATE, resharding: dumped on the source before the source applied it,
//! restored on the target after the target applied it) is invalidated when it arrives
//! instead of surviving on the target. An entry carries no write time, so every matching
//! arrival within the window is invalidated, also one written after the invalidation: a cache
//! miss, never a stale hit. Pure; bounded in count and age.

use crate::pattern::Matcher;
use std::collections::VecDeque;

/// At most this many invalidations are remembered (the oldest go first).
pub const MAX_RECORDS: usize = 4096;

pub enum Target {
    /// A tag, or a pattern over tags.
    Tag(Matcher),
    /// A pattern over key names.
    Key(Matcher),
}

pub struct Record {
    pub at: i64,
    pub db: i32,
    pub target: Target,
    pub soft: bool,
    /// The restricted user who ran it (the arrival is checked against its ACL); None: a user
    /// with every key.
    pub user: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct Recent {
    records: VecDeque<Record>,
}

impl Recent {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn prune(&mut self, now: i64, window_ms: i64) {
        while self
            .records
            .front()
            .is_some_and(|r| r.at < now.saturating_sub(window_ms))
        {
            self.records.pop_front();
        }
    }

    pub fn record(&mut self, record: Record, window_ms: i64) {
        self.prune(record.at, window_ms);
        if self.records.len() >= MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// The recent invalidations of `db` that cover an entry under `key` with `tags`.
    pub fn covering<'a, 't>(
        &'a mut self,
        db: i32,
        key: &'a [u8],
        tags: impl Iterator<Item = &'t [u8]> + Clone + 'a,
        now: i64,
        window_ms: i64,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        self.prune(now, window_ms);
        self.records.iter().filter(move |r| {
            r.db == db
                && match &r.target {
                    Target::Key(m) => m.matches(key),
                    Target::Tag(m) => tags.clone().any(|t| m.matches(t)),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: i64, target: Target, soft: bool) -> Record {
        Record {
            at,
            db: 0,
            target,
            soft,
            user: None,
        }
    }

    #[test]
    fn arrivals_matching_a_recent_invalidation_are_found() {
        let mut r = Recent::default();
        r.record(
            rec(1000, Target::Tag(Matcher::new(b"report:*")), false),
            500,
        );
        r.record(rec(1100, Target::Key(Matcher::new(b"user:*")), true), 500);
        let tags = [b"report:sales".as_slice(), b"x"];
        let found: Vec<_> = r
            .covering(0, b"k", tags.iter().copied(), 1200, 500)
            .map(|x| x.soft)
            .collect();
        assert_eq!(found, vec![false]);
        let found: Vec<_> = r
            .covering(0, b"user:1", [].iter().copied(), 1200, 500)
            .map(|x| x.soft)
            .collect();
        assert_eq!(found, vec![true]);
        assert_eq!(
            r.covering(1, b"user:1", [].iter().copied(), 1200, 500)
                .count(),
            0,
            "other database"
        );
        assert_eq!(
            r.covering(0, b"k", tags.iter().copied(), 1550, 500).count(),
            0,
            "too old"
        );
        assert_eq!(r.len(), 1, "pruned");
        assert_eq!(
            r.covering(0, b"user:1", [].iter().copied(), 1700, 500)
                .count(),
            0
        );
        assert!(r.is_empty());
    }

    #[test]
    fn bounded() {
        let mut r = Recent::default();
        for i in 0..MAX_RECORDS + 10 {
            r.record(
                rec(i as i64, Target::Tag(Matcher::new(b"t")), false),
                1 << 40,
            );
        }
        assert_eq!(r.len(), MAX_RECORDS);
    }
}
