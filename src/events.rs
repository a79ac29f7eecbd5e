//! Keeping module memory in step with the keyspace: keyspace events for keys that arrive
//! (RENAME/MOVE/COPY targets, RESTORE, RDB loading) or are written by other commands, and
//! server events for what has no per-key event (FLUSHDB/FLUSHALL, SWAPDB, a replica's async
//! load). Removals come through the type's unlink hook. Callbacks only touch module memory,
//! never keys: an arriving key is never opened (opening it would reset its LRU idle time, bump
//! its LFU counter and count a keyspace hit). The type's own callbacks hand the arriving entry
//! over instead (see [`Arrivals`]); a key no callback handed over is not an entry.

use crate::config;
use crate::entry::Entry;
use crate::server::events::ServerEvents;
use crate::server::keys::selected_db;
use crate::state;
use redis_module::{Context, NotifyEvent};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// An entry about to arrive under a name: its value pointer, the name and the database.
/// The pointer is cleared by `free` if the server frees the value instead (RESTORE of an
/// expired TTL, a key dropped while loading), so it never dangles; the name is only read and
/// written on the main thread.
pub struct Slot {
    value: AtomicPtr<Entry>,
    key: Mutex<(Vec<u8>, i32)>,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            value: AtomicPtr::new(ptr::null_mut()),
            key: Mutex::new((Vec::new(), 0)),
        }
    }

    pub fn put(&self, value: *mut Entry, name: &[u8], db: i32) {
        let mut key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        key.0.clear();
        key.0.extend_from_slice(name);
        key.1 = db;
        self.value.store(value, Ordering::Release);
    }

    /// The entry stashed for exactly `name` in `db`, taken out of the slot.
    fn take(&self, name: &[u8], db: i32) -> Option<*mut Entry> {
        let value = self.value.swap(ptr::null_mut(), Ordering::AcqRel);
        if value.is_null() {
            return None;
        }
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        (key.0 == name && key.1 == db).then_some(value)
    }

    /// Whatever entry is stashed, taken out of the slot.
    fn take_any(&self) -> Option<*mut Entry> {
        let value = self.value.swap(ptr::null_mut(), Ordering::AcqRel);
        (!value.is_null()).then_some(value)
    }

    fn matches(&self, name: &[u8], db: i32) -> bool {
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        key.0 == name && key.1 == db
    }

    fn clear(&self) {
        self.value.store(ptr::null_mut(), Ordering::Release);
    }

    /// `value` is being freed: forget it if it is the stashed one. Any thread.
    fn forget(&self, value: *mut Entry) {
        let _ = self.value.compare_exchange(
            value,
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// What the type callbacks tell the keyspace events about entries in flight.
pub struct Arrivals {
    /// `unlink2` of a key whose value may live on (RENAME/MOVE source): consumed by the
    /// `rename_to`/`move_to` that follows its `rename_from`/`move_from`.
    pub moved: Slot,
    /// `copy2`: the copy and its target name and database, consumed by `copy_to`.
    pub copied: Slot,
    /// `rdb_load`: the loaded entry and the name it loads under, consumed by `loaded`/`restore`.
    pub loaded: Slot,
}

pub static ARRIVALS: Arrivals = Arrivals {
    moved: Slot::new(),
    copied: Slot::new(),
    loaded: Slot::new(),
};

impl Arrivals {
    /// From the type's `free` (any thread): the value is gone.
    pub fn forget(&self, value: *mut Entry) {
        self.moved.forget(value);
        self.copied.forget(value);
        self.loaded.forget(value);
    }
}

/// The keyspace events the module subscribes to.
pub fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    let db = selected_db(ctx);
    let arriving = match event {
        // The moved slot names the source: kept only if it is this key's.
        "rename_from" | "move_from" => {
            if !ARRIVALS.moved.matches(key, db) {
                ARRIVALS.moved.clear();
            }
            None
        }
        "rename_to" | "move_to" => ARRIVALS.moved.take_any(),
        "copy_to" => ARRIVALS.copied.take(key, db),
        "restore" | "loaded" => ARRIVALS.loaded.take(key, db),
        _ => None,
    };
    let written = matches!(
        event,
        "rename_to"
            | "move_to"
            | "copy_to"
            | "restore"
            | "del"
            | "set"
            | "rename_from"
            | "move_from"
    );
    if written {
        // The key was written by another command: an outstanding lease on it is void.
        state::with(|s| s.db(db).leases_mut().void_key(key));
    }
    if let Some(entry) = arriving {
        // SAFETY: the pointer was stashed by a type callback for this very key in this command
        // (or this load), and `free` clears the slot if the server frees the value instead, so
        // it is the live value of `key` now; only the main thread dereferences it.
        if let Some(entry) = unsafe { entry.as_mut() } {
            if event == "restore" {
                // From another node (RESTORE, MIGRATE), maybe in flight while an invalidation
                // ran on both nodes.
                crate::cluster::on_arrival(ctx, db, key, entry, crate::server::keys::now_ms());
            }
            index_arrival(ctx, db, key, entry, event == "loaded");
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
        (entry.dead, staged)
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
