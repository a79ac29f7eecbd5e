//! Leases: who may recompute a key, and which tokens are still good for storing.
//!
//! A token stays valid until a newer token is issued for its key, the key is written without it,
//! the key is invalidated (by key or pattern), or a tag that the storing set carries is
//! invalidated after the token was issued. Records are module memory only: a restart or a
//! failover forgets them, and an unknown token is refused.

use crate::pattern;
use std::collections::HashMap;

/// Lease records per database at most: past it an arbitrary one is dropped (its holder's set
/// is refused: one extra recompute), so a flood of distinct misses cannot grow memory.
pub const MAX_LEASES: usize = 1_000_000;
/// Tag-invalidation records kept for outstanding leases at most: past it every outstanding
/// lease is voided instead (sets refused, never a stale set), keeping checks and memory bounded.
pub const MAX_VOIDS: usize = 10_000;

/// How long a lease record outlives its protection window, at least. A client whose compute
/// takes longer than this past its lease loses the right to store (one extra recompute).
pub const MIN_RETENTION_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    /// The invalidation sequence number when issued: later tag invalidations void it.
    pub issued_seq: u64,
    /// Until then no other caller is granted a lease for the key.
    pub protect_until: i64,
    /// After this the record is dropped and the token is refused.
    pub keep_until: i64,
}

#[derive(Default)]
pub struct Leases {
    by_key: HashMap<Vec<u8>, Lease>,
    /// Tag -> sequence of its latest invalidation, kept while a lease issued before it exists.
    tag_voids: HashMap<Vec<u8>, u64>,
    /// Tag patterns invalidated, with their sequence, kept likewise.
    pattern_voids: Vec<(Vec<u8>, u64)>,
}

impl Leases {
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// True while another caller's lease still protects the key.
    pub fn is_protected(&self, key: &[u8], now: i64) -> bool {
        // On every lookup: skip hashing the key when no lease is outstanding.
        !self.by_key.is_empty()
            && self
                .by_key
                .get(key)
                .is_some_and(|lease| lease.protect_until > now)
    }

    pub fn grant(&mut self, key: &[u8], token: u64, seq: u64, now: i64, lease_ms: i64) {
        if self.by_key.len() >= MAX_LEASES && !self.by_key.contains_key(key) {
            if let Some(victim) = self.by_key.keys().next().cloned() {
                self.by_key.remove(&victim);
            }
        }
        let protect_until = now.saturating_add(lease_ms);
        let keep_until =
            protect_until.saturating_add(lease_ms.saturating_mul(10).max(MIN_RETENTION_MS));
        self.by_key.insert(
            key.to_vec(),
            Lease {
                token,
                issued_seq: seq,
                protect_until,
                keep_until,
            },
        );
    }

    /// Whether a set carrying `tags` may store with `token`; a valid token is consumed.
    pub fn redeem(&mut self, key: &[u8], token: u64, tags: &[impl AsRef<[u8]>]) -> bool {
        let Some(lease) = self.by_key.get(key).copied() else {
            return false;
        };
        if lease.token != token {
            return false;
        }
        self.by_key.remove(key);
        !tags
            .iter()
            .any(|tag| self.tag_voided_since(tag.as_ref(), lease.issued_seq))
    }

    fn tag_voided_since(&self, tag: &[u8], seq: u64) -> bool {
        self.tag_voids.get(tag).is_some_and(|&at| at > seq)
            || self
                .pattern_voids
                .iter()
                .any(|(pat, at)| *at > seq && pattern::matches(pat, tag))
    }

    pub fn void_key(&mut self, key: &[u8]) {
        // Every set calls this; most databases have no lease outstanding.
        if !self.by_key.is_empty() {
            self.by_key.remove(key);
        }
    }

    /// Voids the leases on keys matching `pat` that `allowed` lets the caller touch.
    pub fn void_pattern(&mut self, pat: &[u8], allowed: impl Fn(&[u8]) -> bool) {
        let matcher = pattern::Matcher::new(pat);
        self.by_key
            .retain(|key, _| !(matcher.matches(key) && allowed(key)));
    }

    /// Records a tag invalidation at `seq` (only needed while some lease may be voided by it).
    pub fn void_tag(&mut self, tag: &[u8], seq: u64) {
        if !self.by_key.is_empty() {
            self.tag_voids.insert(tag.to_vec(), seq);
            self.bound_voids();
        }
    }

    pub fn void_tag_pattern(&mut self, pat: &[u8], seq: u64) {
        if !self.by_key.is_empty() {
            self.pattern_voids.push((pat.to_vec(), seq));
            self.bound_voids();
        }
    }

    fn bound_voids(&mut self) {
        if self.tag_voids.len() + self.pattern_voids.len() > MAX_VOIDS {
            self.clear();
        }
    }

    /// Drops lapsed records and the void records no remaining lease can be affected by.
    pub fn collect(&mut self, now: i64) {
        self.by_key.retain(|_, lease| lease.keep_until > now);
        let oldest = self.by_key.values().map(|l| l.issued_seq).min();
        match oldest {
            None => {
                self.tag_voids = HashMap::new();
                self.pattern_voids = Vec::new();
            }
            Some(oldest) => {
                self.tag_voids.retain(|_, at| *at > oldest);
                self.pattern_voids.retain(|(_, at)| *at > oldest);
            }
        }
        if self.by_key.capacity() > 64 && self.by_key.len() < self.by_key.capacity() / 4 {
            self.by_key.shrink_to_fit();
        }
    }

    pub fn clear(&mut self) {
        *self = Leases::default();
    }

    pub fn approx_bytes(&self) -> usize {
        self.by_key.capacity() * (std::mem::size_of::<(Vec<u8>, Lease)>() + 1)
            + self.by_key.keys().map(|k| k.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&[u8]; 0] = [];

    #[test]
    fn protection_and_redeem() {
        let mut l = Leases::default();
        l.grant(b"k", 7, 1, 1000, 500);
        assert!(l.is_protected(b"k", 1499));
        assert!(!l.is_protected(b"k", 1500));
        assert!(!l.redeem(b"k", 8, &NONE), "wrong token");
        assert!(l.redeem(b"k", 7, &NONE), "valid past its protection window");
        assert!(!l.redeem(b"k", 7, &NONE), "consumed");
    }

    #[test]
    fn newer_token_voids_older() {
        let mut l = Leases::default();
        l.grant(b"k", 1, 1, 0, 10);
        l.grant(b"k", 2, 1, 20, 10);
        assert!(!l.redeem(b"k", 1, &NONE));
        assert!(l.redeem(b"k", 2, &NONE));
    }

    #[test]
    fn tag_invalidation_after_issue_voids() {
        let mut l = Leases::default();
        l.grant(b"k", 1, 5, 0, 10);
        l.void_tag(b"t", 4);
        assert!(
            l.redeem(b"k", 1, &[b"t".as_slice()]),
            "invalidated before issue"
        );
        l.grant(b"k", 2, 5, 0, 10);
        l.void_tag(b"t", 6);
        assert!(!l.redeem(b"k", 2, &[b"u".as_slice(), b"t".as_slice()]));
        l.grant(b"k", 3, 7, 0, 10);
        l.void_tag_pattern(b"user:*", 8);
        assert!(!l.redeem(b"k", 3, &[b"user:1".as_slice()]));
        l.grant(b"k", 4, 9, 0, 10);
        assert!(l.redeem(b"k", 4, &[b"user:1".as_slice()]));
    }

    #[test]
    fn key_and_pattern_voids() {
        let mut l = Leases::default();
        l.grant(b"a:1", 1, 0, 0, 10);
        l.grant(b"b:1", 2, 0, 0, 10);
        l.grant(b"a:2", 3, 0, 0, 10);
        l.void_pattern(b"a:*", |k| k != b"a:2");
        assert!(
            l.redeem(b"a:2", 3, &NONE),
            "a lease the caller may not touch stays"
        );
        assert!(!l.redeem(b"a:1", 1, &NONE));
        l.void_key(b"b:1");
        assert!(!l.redeem(b"b:1", 2, &NONE));
    }

    #[test]
    fn void_records_are_bounded_by_voiding_everything() {
        let mut l = Leases::default();
        l.grant(b"k", 1, 0, 0, 10);
        for i in 0..=MAX_VOIDS {
            l.void_tag(format!("t{i}").as_bytes(), 1);
        }
        assert!(l.is_empty() && l.tag_voids.is_empty());
        assert!(!l.redeem(b"k", 1, &NONE), "refused, never a stale set");
    }

    #[test]
    fn collect_drops_lapsed_and_unneeded_voids() {
        let mut l = Leases::default();
        l.grant(b"k", 1, 3, 0, 10);
        l.void_tag(b"t", 2);
        l.void_tag(b"u", 4);
        l.collect(1);
        assert_eq!(
            l.tag_voids.len(),
            1,
            "only the void after the oldest lease stays"
        );
        l.collect(MIN_RETENTION_MS + 100);
        assert_eq!(l.len(), 0);
        assert!(l.tag_voids.is_empty());
    }
}
