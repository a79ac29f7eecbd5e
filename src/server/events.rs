//! Server events (FLUSHDB/FLUSHALL, SWAPDB, replication role changes): the subscription and the
//! C callbacks, which hand plain values to an implementor of [`ServerEvents`].

use redis_module::{raw, Context};
use std::os::raw::c_void;

/// What the module does on the server events it subscribes to.
pub trait ServerEvents: 'static {
    /// A flush of database `db` (-1: every database) is starting.
    fn flush_starting(db: i32);
    /// Databases `a` and `b` traded contents.
    fn swapped(a: i32, b: i32);
    /// This server just became a primary.
    fn promoted(ctx: &Context);
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

/// Subscribes to the server events that carry a database number, and role changes.
pub fn subscribe<E: ServerEvents>(ctx: &Context) -> bool {
    // SAFETY: called from `init` with the load context; the API pointer is set at load; the
    // callbacks have the signature the server calls.
    unsafe {
        let subscribe = raw::RedisModule_SubscribeToServerEvent.unwrap();
        subscribe(ctx.ctx, FLUSHDB, Some(on_flush::<E>)) == raw::REDISMODULE_OK as i32
            && subscribe(ctx.ctx, SWAPDB, Some(on_swapdb::<E>)) == raw::REDISMODULE_OK as i32
            && subscribe(ctx.ctx, ROLE_CHANGED, Some(on_role_changed::<E>))
                == raw::REDISMODULE_OK as i32
    }
}

// SAFETY: the server calls this with the FLUSHDB event, whose data is a RedisModuleFlushInfo
// (null checked), valid for the call.
unsafe extern "C" fn on_flush<E: ServerEvents>(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    data: *mut c_void,
) {
    if sub != raw::REDISMODULE_SUBEVENT_FLUSHDB_START {
        return;
    }
    if let Some(info) = data.cast::<raw::RedisModuleFlushInfo>().as_ref() {
        E::flush_starting(info.dbnum);
    }
}

// SAFETY: the server calls this with the SWAPDB event, whose data is a RedisModuleSwapDbInfo
// (null checked), valid for the call.
unsafe extern "C" fn on_swapdb<E: ServerEvents>(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    _sub: u64,
    data: *mut c_void,
) {
    if let Some(info) = data.cast::<raw::RedisModuleSwapDbInfo>().as_ref() {
        E::swapped(info.dbnum_first, info.dbnum_second);
    }
}

// SAFETY: the server calls this with a live context; the event data is not read.
unsafe extern "C" fn on_role_changed<E: ServerEvents>(
    ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    if sub == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_MASTER {
        E::promoted(&Context::new(ctx));
    }
}
