//! Reclaims what large invalidations left behind (detached tag members, the rest of a large
//! key-pattern range): a timer that works in short slices so the event loop never stalls. On a
//! primary it deletes dead entries and replicates the deletions; on a replica it only marks
//! them dead (the primary's DELs follow) and never writes keys.

use crate::config;
use crate::entry::Freshness;
use crate::memberset::Bytes;
use crate::server::keys::{now_ms, select_db, signal_modified, Content, Keyspace};
use crate::state;
use crate::stats::Event;
use redis_module::{Context, ContextFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Work per timer tick, and the pause between ticks, keep other clients' latency low. The key
/// cap also bounds what a replica applies at once: the server wraps a timer's replicated DELs
/// in one MULTI/EXEC per tick.
const SLICE: Duration = Duration::from_millis(1);
const MAX_KEYS_PER_TICK: usize = 512;
const PAUSE: Duration = Duration::from_millis(1);
const BATCH: usize = 64;

static ARMED: AtomicBool = AtomicBool::new(false);

/// Starts the sweeper if it is not running.
pub fn start(ctx: &Context) {
    if !ARMED.swap(true, Ordering::Relaxed) {
        ctx.create_timer(PAUSE, tick, ());
    }
}

/// One batch of keys to reclaim.
struct Batch {
    db: i32,
    keys: Vec<Bytes>,
    soft: bool,
    /// The soft-invalidated tag the keys go back under.
    tag: Option<Bytes>,
    /// Pattern sweeps count the entries older than their sequence number as they find them.
    count_before: Option<u64>,
}

fn next_batch() -> Option<Batch> {
    state::with(|s| {
        let busy: Vec<i32> = s
            .dbs()
            .filter(|(_, d)| d.has_sweeps())
            .map(|(i, _)| i)
            .collect();
        busy.into_iter().find_map(|db| {
            let d = s.db(db);
            if let Some((tag, soft, keys)) = d.next_to_sweep(BATCH) {
                return Some(Batch {
                    db,
                    keys,
                    soft,
                    tag,
                    count_before: None,
                });
            }
            d.next_pattern_batch(BATCH).map(|(soft, seq, keys)| Batch {
                db,
                keys,
                soft,
                tag: None,
                count_before: Some(seq),
            })
        })
    })
}

fn tick(ctx: &Context, _: ()) {
    let started = Instant::now();
    let primary = !ctx.get_flags().contains(ContextFlags::SLAVE);
    let mut more = true;
    let mut done = 0;
    while started.elapsed() < SLICE && done < MAX_KEYS_PER_TICK {
        let Some(batch) = next_batch() else {
            more = false;
            break;
        };
        done += batch.keys.len().max(1);
        if select_db(ctx, batch.db) {
            reclaim(ctx, &batch, primary);
        }
    }
    if more {
        ctx.create_timer(PAUSE, tick, ());
    } else {
        ARMED.store(false, Ordering::Relaxed);
    }
}

fn reclaim(ctx: &Context, batch: &Batch, primary: bool) {
    let now = now_ms();
    let db = batch.db;
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    let mut keyspace = Keyspace::of(ctx);
    for name in &batch.keys {
        let mut key = keyspace.open_quiet(name, primary);
        let Content::Entry(entry) = key.content() else {
            continue;
        };
        let counted = batch
            .count_before
            .is_some_and(|seq| entry.gen < seq && !entry.dead());
        let freshness = state::with(|s| {
            let d = s.db(db);
            if counted && primary {
                d.stats_mut()
                    .record(name, Event::Invalidated(1), delimiter, max_ns);
            }
            d.freshness(name, entry, now)
        });
        if freshness == Freshness::Dead {
            if primary {
                key.delete();
                ctx.replicate("DEL", &[&**name][..]);
                signal_modified(ctx, name);
            } else {
                // The primary's DEL follows, and signals the key here.
                entry.set_dead(true);
                state::with(|s| s.db(db).mark_dead_on_replica(name));
            }
            continue;
        }
        let fresh_until = entry.fresh_until;
        state::with(|s| {
            let d = s.db(db);
            d.materialize(name, entry);
            if let Some(tag) = batch
                .tag
                .as_ref()
                .filter(|t| batch.soft && entry.carries(t))
            {
                d.restore_member(tag, name);
            }
        });
        if entry.fresh_until != fresh_until {
            signal_modified(ctx, name);
        }
    }
}
