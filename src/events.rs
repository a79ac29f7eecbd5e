//! Keeping module memory in step with the keyspace: keyspace events for keys that arrive
//! (RENAME/MOVE/COPY targets, RESTORE, RDB loading) or are written by other commands, and
//! server events for what has no per-key event (FLUSHDB/FLUSHALL, SWAPDB). Removals come
//! through the type's unlink hook. Callbacks only touch module memory, never keys.

use crate::config;
use crate::keys::{selected_db, Content, Key};
use crate::state;
use redis_module::{raw, Context, NotifyEvent};
use std::os::raw::c_void;

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
        state::with(|s| s.db(db).leases.void_key(key));
    }
    if arrived {
        index_arrival(ctx, db, key, event == "restore");
    }
}

/// `from_elsewhere`: the entry came from another node (RESTORE, MIGRATE), maybe in flight
/// while an invalidation ran on both nodes.
fn index_arrival(ctx: &Context, db: i32, name: &[u8], from_elsewhere: bool) {
    let key = Key::open(ctx, name, false);
    if let Content::Entry(entry) = key.content() {
        if from_elsewhere {
            crate::cluster::on_arrival(ctx, db, name, entry, crate::keys::now_ms());
        }
        let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
        let started_sweep = state::with(|s| {
            let gen = s.next_seq();
            let d = s.db(db);
            d.add(name, entry, gen, delimiter, max_ns);
            entry.dead
        });
        if started_sweep {
            crate::sweep::start(ctx);
        }
    }
}

const FLUSHDB: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_FLUSHDB,
    dataver: 1,
};
const SWAPDB: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_SWAPDB,
    dataver: 1,
};
const ROLE_CHANGED: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
    dataver: 1,
};

/// Subscribes to the server events that carry a database number.
pub fn subscribe(ctx: &Context) -> bool {
    let subscribe = unsafe { raw::RedisModule_SubscribeToServerEvent.unwrap() };
    unsafe {
        subscribe(ctx.ctx, FLUSHDB, Some(on_flush)) == raw::REDISMODULE_OK as i32
            && subscribe(ctx.ctx, SWAPDB, Some(on_swapdb)) == raw::REDISMODULE_OK as i32
            && subscribe(ctx.ctx, ROLE_CHANGED, Some(on_role_changed)) == raw::REDISMODULE_OK as i32
    }
}

/// FLUSHDB / FLUSHALL (also DEBUG RELOAD and a replica's full sync): the entries go without
/// unlink hooks, so the index of the flushed databases is dropped at the start.
unsafe extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    data: *mut c_void,
) {
    if sub != raw::REDISMODULE_SUBEVENT_FLUSHDB_START {
        return;
    }
    let Some(info) = data.cast::<raw::RedisModuleFlushInfo>().as_ref() else {
        return;
    };
    state::with(|s| {
        for (id, db) in s.dbs_mut() {
            if info.dbnum == -1 || info.dbnum == id {
                db.flush();
            }
        }
    });
}

/// SWAPDB: the databases' entries trade places, and their module memory with them.
unsafe extern "C" fn on_swapdb(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    _sub: u64,
    data: *mut c_void,
) {
    if let Some(info) = data.cast::<raw::RedisModuleSwapDbInfo>().as_ref() {
        state::with(|s| s.swap(info.dbnum_first, info.dbnum_second));
    }
}

/// A replica promoted to primary deletes the invalidated entries it was keeping for the old
/// primary's DELs, which will not come now.
unsafe extern "C" fn on_role_changed(
    ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    if sub != raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_MASTER {
        return;
    }
    let any = state::with(|s| s.dbs_mut().fold(false, |any, (_, db)| db.promote() || any));
    if any {
        crate::sweep::start(&Context::new(ctx));
    }
}
