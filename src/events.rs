//! Keeping module memory in step with the keyspace: keyspace events for keys that arrive
//! (RENAME/MOVE/COPY targets, RESTORE, RDB loading) or are written by other commands, and
//! server events for what has no per-key event (FLUSHDB/FLUSHALL, SWAPDB). Removals come
//! through the type's unlink hook. Callbacks only touch module memory, never keys.

use crate::config;
use crate::server::events::ServerEvents;
use crate::server::keys::{selected_db, Content, Keyspace};
use crate::state;
use redis_module::{Context, NotifyEvent};

/// The keyspace events the module subscribes to.
pub fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    let db = selected_db(ctx);
    let arrived = matches!(
        event,
        "rename_to" | "move_to" | "copy_to" | "restore" | "loaded"
    );
    let written = arrived || matches!(event, "del" | "set" | "rename_from" | "move_from");
    if written && event != "loaded" {
        // The key was written by another command: an outstanding lease on it is void.
        state::with(|s| s.db(db).leases_mut().void_key(key));
    }
    if arrived {
        index_arrival(ctx, db, key, event == "restore");
    }
}

/// `from_elsewhere`: the entry came from another node (RESTORE, MIGRATE), maybe in flight
/// while an invalidation ran on both nodes.
fn index_arrival(ctx: &Context, db: i32, name: &[u8], from_elsewhere: bool) {
    let mut keyspace = Keyspace::of(ctx);
    let mut key = keyspace.open(name, false);
    if let Content::Entry(entry) = key.content() {
        if from_elsewhere {
            crate::cluster::on_arrival(ctx, db, name, entry, crate::server::keys::now_ms());
        }
        let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
        let started_sweep = state::with(|s| {
            let gen = s.next_seq();
            let d = s.db(db);
            d.add(name, entry, gen, delimiter, max_ns);
            entry.dead()
        });
        if started_sweep {
            crate::sweep::start(ctx);
        }
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
}
