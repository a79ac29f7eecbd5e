//! The lookup policy, the heart of the product: HIT / STALE / MISS / PENDING, whether the caller
//! is granted the lease, and which counters move. Pure: everything it reads is passed in (the
//! entry as the database's pending invalidations make it, whether a lease protects the key,
//! now, a random source, a config snapshot) and it only returns a [`Decision`]. `lookup` runs
//! it against the module's state; the handlers and the WAIT machinery call `lookup`.
//!
//! | found                          | lease on the key | reply                  |
//! |--------------------------------|------------------|------------------------|
//! | fresh entry                    | any              | `HIT value nil`        |
//! | fresh entry, picked by XFetch  | none             | `HIT value token`      |
//! | stale entry                    | none             | `STALE value token`    |
//! | stale entry                    | another caller's | `STALE value nil`      |
//! | no entry, or a dead one        | none (or lapsed) | `MISS nil token`       |
//! | no entry, or a dead one        | another caller's | `PENDING nil nil`      |

use crate::db::Db;
use crate::entry::{xfetch, Entry, Freshness};
use crate::stats::Event;

/// The configs the decision reads, read once per lookup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// `cache.early-beta`: 0 turns early refresh off.
    pub early_beta: f64,
}

/// What the policy looks at: the entry's freshness as the database's pending (soft or hard)
/// tag and pattern invalidations make it, its XFetch inputs, and the key's lease state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// None: no entry (or a dead one, which reads the same).
    pub entry: Option<EntryView>,
    /// Another caller's lease still protects the key.
    pub protected: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntryView {
    pub fresh: bool,
    pub fresh_until: i64,
    pub cost_ms: u32,
}

impl View {
    /// The view of `key` (holding `entry`, if any) in `db` at `now`.
    pub fn of(db: &Db, key: &[u8], entry: Option<&Entry>, now: i64) -> View {
        let entry = entry.and_then(|e| {
            let fresh = match db.freshness(key, e, now) {
                Freshness::Dead => return None,
                Freshness::Fresh => true,
                Freshness::Stale => false,
            };
            Some(EntryView {
                fresh,
                fresh_until: e.fresh_until,
                cost_ms: e.cost_ms(),
            })
        });
        View {
            entry,
            protected: db.is_protected(key, now),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Stale,
    Miss,
    Pending,
}

/// The answer to one lookup: the state, whether the caller is granted the lease, and the (at
/// most three) counters it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub grant: bool,
    pub events: Events,
}

/// Decides one lookup. `random` is drawn from (uniform in (0, 1]) only for a fresh entry with a
/// cost, while no lease protects the key.
pub fn decide(view: View, now: i64, random: &mut impl FnMut() -> f64, config: Config) -> Decision {
    let mut events = Events::default();
    let (outcome, grant) = match view.entry {
        Some(e) if e.fresh => {
            events.push(Event::Hit);
            let early = !view.protected
                && e.cost_ms > 0
                && xfetch(now, e.fresh_until, e.cost_ms, config.early_beta, random());
            if early {
                events.push(Event::EarlyRefresh);
            }
            (Outcome::Hit, early)
        }
        Some(_) => {
            events.push(Event::StaleHit);
            (Outcome::Stale, !view.protected)
        }
        None if view.protected => {
            events.push(Event::Pending);
            (Outcome::Pending, false)
        }
        None => {
            events.push(Event::Miss);
            (Outcome::Miss, true)
        }
    };
    if grant {
        events.push(Event::LeaseGranted);
    }
    Decision {
        outcome,
        grant,
        events,
    }
}

/// The counters one lookup moves, in order, without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events([Option<Event>; 3]);

impl Events {
    fn push(&mut self, event: Event) {
        if let Some(slot) = self.0.iter_mut().find(|e| e.is_none()) {
            *slot = Some(event);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.0.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TagWork;
    use crate::entry::FOREVER;

    const NOW: i64 = 1_000_000;
    const BETA: Config = Config { early_beta: 1.0 };

    fn never() -> f64 {
        panic!("the policy drew a random number where it must not")
    }

    fn view(entry: Option<EntryView>, protected: bool) -> View {
        View { entry, protected }
    }

    fn fresh(cost_ms: u32, fresh_until: i64) -> Option<EntryView> {
        Some(EntryView {
            fresh: true,
            fresh_until,
            cost_ms,
        })
    }

    fn stale() -> Option<EntryView> {
        Some(EntryView {
            fresh: false,
            fresh_until: NOW - 1,
            cost_ms: 0,
        })
    }

    fn events(d: &Decision) -> Vec<Event> {
        d.events.iter().collect()
    }

    #[test]
    fn fresh_entry_is_a_hit_without_token() {
        for protected in [false, true] {
            let d = decide(view(fresh(0, NOW + 10), protected), NOW, &mut never, BETA);
            assert_eq!((d.outcome, d.grant), (Outcome::Hit, false));
            assert_eq!(events(&d), [Event::Hit]);
        }
    }

    #[test]
    fn fresh_entry_picked_for_early_refresh_gets_a_token() {
        // rand = 1e-9: ln is about -20.7, so 200 ms of cost reaches far past 10 ms to expiry.
        let d = decide(view(fresh(200, NOW + 10), false), NOW, &mut || 1e-9, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Hit, true));
        assert_eq!(
            events(&d),
            [Event::Hit, Event::EarlyRefresh, Event::LeaseGranted]
        );
    }

    #[test]
    fn early_refresh_follows_the_random_draw() {
        // rand = 1: ln 1 = 0, so nobody is picked before fresh_until.
        let d = decide(view(fresh(200, NOW + 10), false), NOW, &mut || 1.0, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Hit, false));
        assert_eq!(events(&d), [Event::Hit]);
    }

    #[test]
    fn early_refresh_never_while_a_lease_is_out_or_beta_is_zero_or_no_cost() {
        let d = decide(view(fresh(200, NOW + 10), true), NOW, &mut never, BETA);
        assert!(!d.grant);
        let off = Config { early_beta: 0.0 };
        let d = decide(view(fresh(200, NOW + 10), false), NOW, &mut || 1e-9, off);
        assert!(!d.grant);
        let d = decide(view(fresh(0, NOW + 10), false), NOW, &mut never, BETA);
        assert!(!d.grant);
        let d = decide(view(fresh(200, FOREVER), false), NOW, &mut || 1e-9, BETA);
        assert!(!d.grant);
    }

    #[test]
    fn stale_entry_without_lease_is_stale_with_token() {
        let d = decide(view(stale(), false), NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Stale, true));
        assert_eq!(events(&d), [Event::StaleHit, Event::LeaseGranted]);
    }

    #[test]
    fn stale_entry_under_another_lease_is_stale_without_token() {
        let d = decide(view(stale(), true), NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Stale, false));
        assert_eq!(events(&d), [Event::StaleHit]);
    }

    #[test]
    fn no_entry_without_lease_is_a_miss_with_token() {
        let d = decide(view(None, false), NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Miss, true));
        assert_eq!(events(&d), [Event::Miss, Event::LeaseGranted]);
    }

    #[test]
    fn no_entry_under_another_lease_is_pending() {
        let d = decide(view(None, true), NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Pending, false));
        assert_eq!(events(&d), [Event::Pending]);
    }

    fn db_with(key: &[u8], tags: &[&[u8]], fresh_until: i64) -> (Db, Entry) {
        let mut db = Db::default();
        let mut entry = Entry::new(b"v", tags.iter().copied(), fresh_until, 0);
        db.add(key, &mut entry, 1, b':', 1024);
        (db, entry)
    }

    #[test]
    fn view_reads_freshness_and_dead_entries() {
        let (db, entry) = db_with(b"k", &[], NOW + 10);
        assert_eq!(
            View::of(&db, b"k", Some(&entry), NOW)
                .entry
                .map(|e| e.fresh),
            Some(true)
        );
        assert_eq!(
            View::of(&db, b"k", Some(&entry), NOW + 10)
                .entry
                .map(|e| e.fresh),
            Some(false)
        );
        let mut dead = entry.clone();
        dead.set_dead(true);
        assert_eq!(View::of(&db, b"k", Some(&dead), NOW).entry, None);
        assert_eq!(View::of(&db, b"k", None, NOW).entry, None);
    }

    #[test]
    fn a_lease_protects_until_it_lapses() {
        let (mut db, _) = db_with(b"k", &[], NOW + 10);
        db.grant_lease(b"k", 7, 2, NOW, 100);
        assert!(View::of(&db, b"k", None, NOW).protected);
        assert!(View::of(&db, b"k", None, NOW + 99).protected);
        let lapsed = View::of(&db, b"k", None, NOW + 100);
        assert!(!lapsed.protected);
        let d = decide(lapsed, NOW + 100, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Miss, true));
        assert!(!View::of(&db, b"other", None, NOW).protected);
    }

    /// Large tags are invalidated by a pending record, not by touching the entries: the view
    /// must show the effect before the sweeper gets there.
    fn large_tag_db(soft: bool) -> (Db, Entry) {
        let mut db = Db::default();
        let mut target = Entry::new(b"v", [&b"big"[..]], NOW + 1000, 0);
        db.add(b"k", &mut target, 1, b':', 1024);
        for i in 0..=crate::db::SYNC_LIMIT {
            let mut e = Entry::new(b"v", [&b"big"[..]], NOW + 1000, 0);
            db.add(format!("other{i}").as_bytes(), &mut e, 1, b':', 1024);
        }
        let work = db.invalidate_tag(b"big", soft, 5, NOW, false);
        assert!(matches!(work, TagWork::Swept(_)));
        (db, target)
    }

    #[test]
    fn pending_soft_invalidation_turns_the_entry_stale() {
        let (db, target) = large_tag_db(true);
        let v = View::of(&db, b"k", Some(&target), NOW);
        assert_eq!(v.entry.map(|e| e.fresh), Some(false));
        let d = decide(v, NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Stale, true));
        // An entry set after the invalidation is not affected.
        let mut newer = Entry::new(b"v", [&b"big"[..]], NOW + 1000, 0);
        newer.gen = 6;
        let v = View::of(&db, b"k", Some(&newer), NOW);
        assert_eq!(v.entry.map(|e| e.fresh), Some(true));
    }

    #[test]
    fn pending_hard_invalidation_makes_the_entry_a_miss() {
        let (db, target) = large_tag_db(false);
        let v = View::of(&db, b"k", Some(&target), NOW);
        assert_eq!(v.entry, None);
        let d = decide(v, NOW, &mut never, BETA);
        assert_eq!((d.outcome, d.grant), (Outcome::Miss, true));
    }

    #[test]
    fn soft_invalidated_entry_is_stale() {
        let (db, mut entry) = db_with(b"k", &[b"t"], NOW + 1000);
        entry.make_stale(NOW);
        let d = decide(
            View::of(&db, b"k", Some(&entry), NOW),
            NOW,
            &mut never,
            BETA,
        );
        assert_eq!(d.outcome, Outcome::Stale);
    }
}
