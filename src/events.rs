//! Keeping module memory in step with the keyspace: keyspace events for keys that arrive
//! (RENAME/MOVE/COPY targets, RESTORE, RDB loading) or are written by other commands, and
//! server events for what has no per-key event (FLUSHDB/FLUSHALL, SWAPDB, a replica's async
//! load). Removals come through the type's unlink hook. Callbacks only touch module memory,
//! never keys: an arriving key is never opened (opening it would reset its LRU idle time, bump
//! its LFU counter and count a keyspace hit). The type's own callbacks hand the arriving entry
//! over instead (see `server::arrivals`); a key no callback handed over is not an entry.

use crate::config;
use crate::entry::Entry;
use crate::server::arrivals::ARRIVALS;
use crate::server::events::{KeyEvent, KeyspaceEvents, ServerEvents};
use crate::server::keys::selected_db;
use crate::state;
use redis_module::Context;

/// The module's side of the keyspace events.
pub struct KeyEvents;

impl KeyspaceEvents for KeyEvents {
    fn key_event(ctx: &Context, event: KeyEvent, key: &[u8]) {
        let db = selected_db(ctx);
        let arriving = match event {
            // The moved slot names the source: kept only if it is this key's.
            KeyEvent::RenameFrom | KeyEvent::MoveFrom => {
                if !ARRIVALS.moved.matches(key, db) {
                    ARRIVALS.moved.clear();
                }
                None
            }
            KeyEvent::RenameTo | KeyEvent::MoveTo => ARRIVALS.moved.take_any(),
            KeyEvent::CopyTo => ARRIVALS.copied.take(key, db),
            KeyEvent::Restore | KeyEvent::Loaded => ARRIVALS.loaded.take(key, db),
            KeyEvent::Del | KeyEvent::Set => None,
        };
        if event != KeyEvent::Loaded {
            // The key was written by another command: an outstanding lease on it is void.
            state::with(|s| s.db(db).leases_mut().void_key(key));
        }
        if let Some(mut arriving) = arriving {
            if let Some(entry) = arriving.entry() {
                if event == KeyEvent::Restore {
                    // From another node (RESTORE, MIGRATE), maybe in flight while an
                    // invalidation ran on both nodes.
                    crate::cluster::on_arrival(ctx, db, key, entry, crate::server::keys::now_ms());
                }
                index_arrival(ctx, db, key, entry, event == KeyEvent::Loaded);
            }
        }
    }
}

/// Indexes an entry that arrived under `name`; `loaded`: by RDB loading, which during a
/// replica's async load goes to the staging index.
fn index_arrival(ctx: &Context, db: i32, name: &[u8], entry: &mut Entry, loaded: bool) {
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    let (dead, staged) = state::with(|s| {
        let gen = s.next_seq();
        let staged = loaded && s.async_loading();
        let d = if staged { s.staging_db(db) } else { s.db(db) };
        d.add(name, entry, gen, delimiter, max_ns);
        (entry.dead(), staged)
    });
    // Dead entries in the staging index wait for the swap.
    if dead && !staged {
        crate::sweep::start(ctx);
    }
}

/// The module's side of the server events.
pub struct Events;

impl ServerEvents for Events {
    /// FLUSHDB / FLUSHALL (also DEBUG RELOAD and a replica's full sync): the entries go without
    /// unlink hooks, so the index of the flushed databases is dropped at the start.
    fn flush_starting(dbnum: i32) {
        state::with(|s| {
            for (id, db) in s.dbs_mut() {
                if dbnum == -1 || dbnum == id {
                    db.flush();
                }
            }
        });
    }

    /// SWAPDB: the databases' entries trade places, and their module memory with them.
    fn swapped(a: i32, b: i32) {
        state::with(|s| s.swap(a, b));
    }

    /// A replica promoted to primary deletes the invalidated entries it was keeping for the old
    /// primary's DELs, which will not come now.
    fn promoted(ctx: &Context) {
        let any = state::with(|s| s.dbs_mut().fold(false, |any, (_, db)| db.promote() || any));
        if any {
            crate::sweep::start(ctx);
        }
    }

    /// A replica's full sync with `repl-diskless-load swapdb` starts loading into temporary
    /// databases while the old ones keep serving: what loads is indexed apart.
    fn async_load_started() {
        state::with(|s| s.begin_staging());
    }

    /// The async load failed: the server drops the temporary databases, and the index what it
    /// staged.
    fn async_load_aborted() {
        state::with(|s| s.abort_staging());
    }

    /// The server swapped the loaded databases in: so does the index.
    fn async_load_completed(ctx: &Context) {
        if state::with(|s| s.finish_staging()) {
            crate::sweep::start(ctx);
        }
    }
}
