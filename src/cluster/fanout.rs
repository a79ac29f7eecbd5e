//! The cluster-wide commands in flight: one record per blocked client, keyed by request id,
//! holding the nodes still to answer and what the answers add up to so far. Pure (no server):
//! the glue in `cluster` turns its outcomes into replies and unblocks the client exactly once,
//! which this record makes possible by handing each client's handle back exactly once, on
//! completion, expiry or disconnection, whichever comes first; later answers find no record
//! and are dropped.

use super::message::{Answer, StatWords, STAT_WORDS};
use std::collections::{BTreeMap, HashMap};

pub type NodeId = [u8; 40];

/// Bounds the cluster-wide commands in flight on one node.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// What the answers add up to; starts as this node's own result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acc {
    Count(i64),
    Stats(StatWords),
    Namespaces(BTreeMap<Vec<u8>, StatWords>),
    Reset,
    /// TAGSCAN asks one shard: `shard` of `shards` in the cursor's order.
    Scan {
        shard: usize,
        shards: usize,
        page: Option<(u64, Vec<Vec<u8>>)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Count(i64),
    Stats(StatWords),
    Namespaces(Vec<(Vec<u8>, StatWords)>),
    Reset,
    Scan {
        next: u64,
        keys: Vec<Vec<u8>>,
    },
    /// Some slot owners did not answer (or answered an error): what the others gave.
    Incomplete {
        acc: Acc,
        answered: usize,
        total: usize,
        missing: Vec<NodeId>,
    },
}

struct Fanout<H> {
    handle: H,
    waiting: Vec<NodeId>,
    missing: Vec<NodeId>,
    /// Slot owners asked or counted missing, this node included when it owns slots.
    total: usize,
    acc: Acc,
}

pub struct Pending<H> {
    by_id: HashMap<u64, Fanout<H>>,
}

impl<H> Default for Pending<H> {
    fn default() -> Self {
        Pending {
            by_id: HashMap::new(),
        }
    }
}

pub enum Started {
    /// Nobody to wait for: reply now.
    Done(Outcome),
    Waiting,
    /// MAX_IN_FLIGHT reached (or the id is taken): nothing was recorded.
    Refused,
}

fn add_words(into: &mut StatWords, from: &StatWords) {
    for (a, b) in into.iter_mut().zip(from.iter()) {
        *a = a.saturating_add(*b);
    }
}

/// The bits of a TAGSCAN cursor that name the shard; the rest is that shard's own cursor.
pub const SHARD_BITS: u32 = 14;
const SHARD_MASK: u64 = (1 << SHARD_BITS) - 1;
/// A shard's own cursor must fit above the shard bits.
pub const MAX_LOCAL_CURSOR: u64 = u64::MAX >> SHARD_BITS;

/// Splits a cluster TAGSCAN cursor into (shard index, that shard's cursor).
pub fn split_cursor(cursor: u64) -> (usize, u64) {
    ((cursor & SHARD_MASK) as usize, cursor >> SHARD_BITS)
}

/// The cluster cursor after shard `shard` (of `shards`) answered `local_next`: on in the same
/// shard, on to the next shard's start, or 0 once the last shard is done. None: the shard's
/// cursor does not fit.
pub fn join_cursor(shard: usize, shards: usize, local_next: u64) -> Option<u64> {
    if local_next > MAX_LOCAL_CURSOR || shard as u64 > SHARD_MASK {
        return None;
    }
    if local_next != 0 {
        return Some(local_next << SHARD_BITS | shard as u64);
    }
    if shard + 1 < shards {
        return Some((shard + 1) as u64);
    }
    Some(0)
}

impl Acc {
    /// Adds one node's answer; false when it does not fit this command (an error included).
    fn add(&mut self, answer: Answer) -> bool {
        match (self, answer) {
            (Acc::Count(n), Answer::Count(m)) => {
                *n = n.saturating_add(m.max(0));
                true
            }
            (Acc::Stats(w), Answer::Stats(m)) => {
                add_words(w, &m);
                true
            }
            (Acc::Namespaces(all), Answer::Namespaces(list)) => {
                for (name, words) in list {
                    add_words(all.entry(name).or_insert([0; STAT_WORDS]), &words);
                }
                true
            }
            (Acc::Reset, Answer::Reset) => true,
            (Acc::Scan { page, .. }, Answer::Scan { next, keys }) if page.is_none() => {
                *page = Some((next, keys));
                true
            }
            _ => false,
        }
    }

    fn finish(self) -> Option<Outcome> {
        Some(match self {
            Acc::Count(n) => Outcome::Count(n),
            Acc::Stats(w) => Outcome::Stats(w),
            Acc::Namespaces(all) => Outcome::Namespaces(all.into_iter().collect()),
            Acc::Reset => Outcome::Reset,
            Acc::Scan {
                shard,
                shards,
                page: Some((next, keys)),
            } => Outcome::Scan {
                next: join_cursor(shard, shards, next)?,
                keys,
            },
            Acc::Scan { page: None, .. } => return None,
        })
    }
}

impl<H> Fanout<H> {
    fn outcome(self) -> Outcome {
        let Fanout {
            mut waiting,
            mut missing,
            total,
            acc,
            ..
        } = self;
        missing.append(&mut waiting);
        if missing.is_empty() {
            let fallback = acc.clone();
            if let Some(done) = acc.finish() {
                return done;
            }
            // A scan page whose cursor does not fit: as if the shard had not answered.
            return Outcome::Incomplete {
                acc: fallback,
                answered: total.saturating_sub(1),
                total,
                missing,
            };
        }
        missing.sort_unstable();
        missing.dedup();
        Outcome::Incomplete {
            acc,
            answered: total.saturating_sub(missing.len()),
            total,
            missing,
        }
    }
}

impl<H: Copy + PartialEq> Pending<H> {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// True while request `id` awaits `node`.
    pub fn awaits(&self, id: u64, node: &NodeId) -> bool {
        self.by_id
            .get(&id)
            .is_some_and(|f| f.waiting.contains(node))
    }

    /// Records a command that asked `targets` (and counts `missing` as not answering), with
    /// `acc` holding this node's own result; `own` tells whether this node's result counts as
    /// one of the slot owners.
    pub fn start(
        &mut self,
        id: u64,
        handle: H,
        acc: Acc,
        targets: Vec<NodeId>,
        missing: Vec<NodeId>,
        own: bool,
    ) -> Started {
        let total = targets.len() + missing.len() + usize::from(own);
        let fanout = Fanout {
            handle,
            waiting: targets,
            missing,
            total,
            acc,
        };
        if fanout.waiting.is_empty() {
            return Started::Done(fanout.outcome());
        }
        if self.by_id.len() >= MAX_IN_FLIGHT || self.by_id.contains_key(&id) {
            return Started::Refused;
        }
        self.by_id.insert(id, fanout);
        Started::Waiting
    }

    /// `from` answered request `id`. Returns the client to unblock and its reply once the last
    /// awaited node has answered; None for a request no longer pending, a node not awaited
    /// (a duplicate or a stranger), or while others are still awaited.
    pub fn answer(&mut self, id: u64, from: &NodeId, answer: Answer) -> Option<(H, Outcome)> {
        let fanout = self.by_id.get_mut(&id)?;
        let at = fanout.waiting.iter().position(|n| n == from)?;
        fanout.waiting.swap_remove(at);
        if !fanout.acc.add(answer) {
            fanout.missing.push(*from);
        }
        if !fanout.waiting.is_empty() {
            return None;
        }
        let fanout = self.by_id.remove(&id)?;
        let handle = fanout.handle;
        Some((handle, fanout.outcome()))
    }

    /// Sending to `node` failed: it counts as not answering.
    pub fn unreachable(&mut self, id: u64, node: &NodeId) -> Option<(H, Outcome)> {
        self.answer(id, node, Answer::Error(String::new()))
    }

    /// The client's timeout fired: its record goes, with what was gathered. None if the
    /// client was already handed back.
    pub fn expire(&mut self, handle: H) -> Option<Outcome> {
        let id = self.id_of(handle)?;
        self.by_id.remove(&id).map(Fanout::outcome)
    }

    /// The client disconnected: true if it was still pending (the caller unblocks it).
    pub fn forget(&mut self, handle: H) -> bool {
        match self.id_of(handle) {
            Some(id) => self.by_id.remove(&id).is_some(),
            None => false,
        }
    }

    fn id_of(&self, handle: H) -> Option<u64> {
        self.by_id
            .iter()
            .find(|(_, f)| f.handle == handle)
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        [b'a' + n; 40]
    }

    #[test]
    fn counts_add_up_once_every_node_answered() {
        let mut p: Pending<u32> = Pending::default();
        let Started::Waiting = p.start(1, 7, Acc::Count(3), vec![node(1), node(2)], vec![], true)
        else {
            panic!("should wait");
        };
        assert!(p.awaits(1, &node(1)) && !p.awaits(1, &node(9)) && !p.awaits(2, &node(1)));
        assert_eq!(p.answer(1, &node(1), Answer::Count(4)), None);
        assert!(!p.awaits(1, &node(1)));
        assert_eq!(p.answer(1, &node(1), Answer::Count(4)), None, "duplicate");
        assert_eq!(p.answer(1, &node(9), Answer::Count(4)), None, "stranger");
        assert_eq!(p.answer(2, &node(2), Answer::Count(4)), None, "other id");
        assert_eq!(
            p.answer(1, &node(2), Answer::Count(5)),
            Some((7, Outcome::Count(12)))
        );
        assert!(p.is_empty());
        assert_eq!(p.answer(1, &node(2), Answer::Count(5)), None, "late");
        assert_eq!(p.expire(7), None, "already handed back");
        assert!(!p.forget(7));
    }

    #[test]
    fn nobody_to_wait_for() {
        let mut p: Pending<u32> = Pending::default();
        match p.start(1, 7, Acc::Count(3), vec![], vec![], true) {
            Started::Done(Outcome::Count(3)) => {}
            _ => panic!("done at once"),
        }
        match p.start(2, 7, Acc::Count(3), vec![], vec![node(1)], true) {
            Started::Done(Outcome::Incomplete {
                acc: Acc::Count(3),
                answered: 1,
                total: 2,
                missing,
            }) => assert_eq!(missing, vec![node(1)]),
            _ => panic!("incomplete at once"),
        }
        assert!(p.is_empty());
    }

    #[test]
    fn timeout_gives_incomplete_exactly_once() {
        let mut p: Pending<u32> = Pending::default();
        p.start(
            1,
            7,
            Acc::Count(3),
            vec![node(1), node(2)],
            vec![node(3)],
            true,
        );
        assert_eq!(p.answer(1, &node(2), Answer::Count(10)), None);
        match p.expire(7) {
            Some(Outcome::Incomplete {
                acc: Acc::Count(13),
                answered: 2,
                total: 4,
                missing,
            }) => assert_eq!(missing, vec![node(1), node(3)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.expire(7), None);
        assert_eq!(p.answer(1, &node(1), Answer::Count(1)), None, "late answer");
        assert!(p.is_empty());
    }

    #[test]
    fn errors_and_wrong_answers_count_as_missing() {
        let mut p: Pending<u32> = Pending::default();
        p.start(1, 7, Acc::Count(0), vec![node(1), node(2)], vec![], true);
        p.answer(1, &node(1), Answer::Error("ERR not a primary".into()));
        let (_, out) = p.answer(1, &node(2), Answer::Reset).expect("done");
        assert!(
            matches!(out, Outcome::Incomplete { ref missing, answered: 1, .. } if missing.len() == 2)
        );
        p.start(2, 8, Acc::Count(0), vec![node(1)], vec![], false);
        assert!(matches!(
            p.unreachable(2, &node(1)),
            Some((8, Outcome::Incomplete { answered: 0, .. }))
        ));
    }

    #[test]
    fn disconnect_forgets() {
        let mut p: Pending<u32> = Pending::default();
        p.start(1, 7, Acc::Reset, vec![node(1)], vec![], true);
        assert!(p.forget(7));
        assert!(!p.forget(7));
        assert_eq!(p.answer(1, &node(1), Answer::Reset), None);
    }

    #[test]
    fn stats_and_namespaces_sum() {
        let mut p: Pending<u32> = Pending::default();
        let mut a = [1u64; STAT_WORDS];
        a[0] = u64::MAX;
        p.start(1, 1, Acc::Stats(a), vec![node(1)], vec![], true);
        let (_, out) = p
            .answer(1, &node(1), Answer::Stats([2; STAT_WORDS]))
            .unwrap();
        let mut want = [3u64; STAT_WORDS];
        want[0] = u64::MAX;
        assert_eq!(out, Outcome::Stats(want), "saturating");
        let mine = BTreeMap::from([(b"a".to_vec(), [1; STAT_WORDS])]);
        p.start(2, 1, Acc::Namespaces(mine), vec![node(1)], vec![], true);
        let theirs = vec![
            (b"b".to_vec(), [5; STAT_WORDS]),
            (b"a".to_vec(), [2; STAT_WORDS]),
        ];
        let (_, out) = p.answer(2, &node(1), Answer::Namespaces(theirs)).unwrap();
        assert_eq!(
            out,
            Outcome::Namespaces(vec![
                (b"a".to_vec(), [3; STAT_WORDS]),
                (b"b".to_vec(), [5; STAT_WORDS])
            ])
        );
    }

    #[test]
    fn scan_cursor_walks_the_shards() {
        assert_eq!(split_cursor(0), (0, 0));
        assert_eq!(join_cursor(0, 3, 0), Some(1));
        assert_eq!(split_cursor(1), (1, 0));
        assert_eq!(join_cursor(1, 3, 42), Some(42 << SHARD_BITS | 1));
        assert_eq!(split_cursor(42 << SHARD_BITS | 1), (1, 42));
        assert_eq!(join_cursor(2, 3, 0), Some(0), "last shard done");
        assert_eq!(join_cursor(0, 1, 0), Some(0));
        assert_eq!(join_cursor(0, 3, u64::MAX), None);
        let mut p: Pending<u32> = Pending::default();
        let acc = Acc::Scan {
            shard: 1,
            shards: 3,
            page: None,
        };
        p.start(1, 1, acc, vec![node(1)], vec![], false);
        let ans = Answer::Scan {
            next: 0,
            keys: vec![b"k".to_vec()],
        };
        let (_, out) = p.answer(1, &node(1), ans).unwrap();
        assert_eq!(
            out,
            Outcome::Scan {
                next: 2,
                keys: vec![b"k".to_vec()]
            }
        );
        let acc = Acc::Scan {
            shard: 0,
            shards: 3,
            page: None,
        };
        p.start(2, 1, acc, vec![node(1)], vec![], false);
        let ans = Answer::Scan {
            next: u64::MAX,
            keys: vec![],
        };
        let (_, out) = p.answer(2, &node(1), ans).unwrap();
        assert!(matches!(out, Outcome::Incomplete { .. }), "bad cursor");
    }

    #[test]
    fn in_flight_is_bounded() {
        let mut p: Pending<usize> = Pending::default();
        for i in 0..MAX_IN_FLIGHT {
            assert!(matches!(
                p.start(i as u64, i, Acc::Reset, vec![node(1)], vec![], true),
                Started::Waiting
            ));
        }
        assert!(matches!(
            p.start(u64::MAX, 0, Acc::Reset, vec![node(1)], vec![], true),
            Started::Refused
        ));
        assert_eq!(p.len(), MAX_IN_FLIGHT);
    }
}
