//! Reclaims what large tag invalidations detached: a timer that works in short slices so the
//! event loop never stalls. On a primary it deletes dead entries and replicates the deletions;
//! on a replica it only marks them dead (the primary's DELs follow) and never writes keys.

use crate::entry::Freshness;
use crate::keys::{now_ms, select_db, Content, Key};
use crate::state;
use redis_module::{Context, ContextFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Work per timer tick, and the pause between ticks, keep other clients' latency low.
const SLICE: Duration = Duration::from_millis(2);
const PAUSE: Duration = Duration::from_millis(1);
const BATCH: usize = 64;

static ARMED: AtomicBool = AtomicBool::new(false);

/// Starts the sweeper if it is not running.
pub fn start(ctx: &Context) {
    if !ARMED.swap(true, Ordering::Relaxed) {
        ctx.create_timer(PAUSE, tick, ());
    }
}

fn tick(ctx: &Context, _: ()) {
    let started = Instant::now();
    let primary = !ctx.get_flags().contains(ContextFlags::SLAVE);
    let mut more = true;
    while started.elapsed() < SLICE {
        let batch = state::with(|s| {
            let ids: Vec<i32> = s
                .dbs()
                .filter(|(_, d)| !d.sweeps.is_empty())
                .map(|(i, _)| i)
                .collect();
            ids.into_iter()
                .find_map(|id| s.db(id).next_to_sweep(BATCH).map(|work| (id, work)))
        });
        let Some((db, (tag, soft, keys))) = batch else {
            more = false;
            break;
        };
        if !select_db(ctx, db) {
            continue;
        }
        let now = now_ms();
        for name in keys {
            let key = Key::open(ctx, &name, primary);
            let Content::Entry(entry) = key.content() else {
                continue;
            };
            let freshness = state::with(|s| s.db(db).freshness(entry, now));
            if freshness == Freshness::Dead {
                if primary {
                    key.delete();
                    drop(key);
                    ctx.replicate("DEL", &[&*name][..]);
                } else {
                    entry.dead = true;
                }
                continue;
            }
            state::with(|s| {
                let d = s.db(db);
                d.materialize(entry);
                if let Some(tag) = tag.as_ref().filter(|t| soft && entry.carries(t)) {
                    d.restore_member(tag, &name);
                }
            });
        }
    }
    if more {
        ctx.create_timer(PAUSE, tick, ());
    } else {
        ARMED.store(false, Ordering::Relaxed);
    }
}
