//! Server events (FLUSHDB/FLUSHALL, SWAPDB, replication role changes) and keyspace events:
//! the subscriptions and the C callbacks, which hand plain values to an implementor of
//! [`ServerEvents`] or [`KeyspaceEvents`].

use redis_module::{raw, Context, NotifyEvent};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

/// The keyspace events the index follows. Every plain SET (and EXPIRE, ...) of the host
/// raises one of the classes these are in, so the rest are dropped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEvent {
    Del,
    Set,
    RenameFrom,
    RenameTo,
    MoveFrom,
    MoveTo,
    CopyTo,
    Restore,
    Loaded,
}

impl KeyEvent {
    fn parse(name: &[u8]) -> Option<KeyEvent> {
        Some(match name {
            b"del" => KeyEvent::Del,
            b"set" => KeyEvent::Set,
            b"rename_from" => KeyEvent::RenameFrom,
            b"rename_to" => KeyEvent::RenameTo,
            b"move_from" => KeyEvent::MoveFrom,
            b"move_to" => KeyEvent::MoveTo,
            b"copy_to" => KeyEvent::CopyTo,
            b"restore" => KeyEvent::Restore,
            b"loaded" => KeyEvent::Loaded,
            _ => return None,
        })
    }
}

/// What the module does on the keyspace events it follows.
pub trait KeyspaceEvents: 'static {
    /// `event` happened to `key` in the context's selected database.
    fn key_event(ctx: &Context, event: KeyEvent, key: &[u8]);
}

/// Subscribes to the classes of the events in [`KeyEvent`].
pub fn subscribe_keyspace<E: KeyspaceEvents>(ctx: &Context) -> bool {
    let classes = NotifyEvent::GENERIC | NotifyEvent::STRING | NotifyEvent::LOADED;
    // SAFETY: called from `init` with the load context; the callback has the signature the
    // server calls.
    unsafe {
        raw::RedisModule_SubscribeToKeyspaceEvents.unwrap()(
            ctx.ctx,
            classes.bits(),
            Some(on_keyspace::<E>),
        ) == raw::REDISMODULE_OK as c_int
    }
}

// SAFETY: the server calls this with a live context, a NUL-terminated event name and the
// key's string, all valid for the call (each checked for null).
unsafe extern "C" fn on_keyspace<E: KeyspaceEvents>(
    ctx: *mut raw::RedisModuleCtx,
    _class: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if event.is_null() || key.is_null() {
        return raw::REDISMODULE_OK as c_int;
    }
    // SAFETY: a NUL-terminated name, valid for the call.
    let Some(event) = KeyEvent::parse(unsafe { CStr::from_ptr(event) }.to_bytes()) else {
        return raw::REDISMODULE_OK as c_int;
    };
    let mut len = 0;
    let ptr = raw::string_ptr_len(key, &mut len);
    let name = if ptr.is_null() {
        &[][..]
    } else {
        // SAFETY: the key's `len` bytes, alive for the call.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
    };
    E::key_event(&Context::new(ctx), event, name);
    raw::REDISMODULE_OK as c_int
}

/// What the module does on the server events it subscribes to.
pub trait ServerEvents: 'static {
    /// A flush of database `db` (-1: every database) is starting.
    fn flush_starting(db: i32);
    /// Databases `a` and `b` traded contents.
    fn swapped(a: i32, b: i32);
    /// This server just became a primary.
    fn promoted(ctx: &Context);
    /// A replica's async (swapdb) load started, aborted or completed (ReplAsyncLoad event).
    fn async_load_started();
    fn async_load_aborted();
    fn async_load_completed(ctx: &Context);
}

const FLUSHDB: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_FLUSHDB,
    dataver: 1,
};
const SWAPDB: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_SWAPDB,
    dataver: 1,
};
const REPL_ASYNC_LOAD: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD,
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
            && subscribe(ctx.ctx, REPL_ASYNC_LOAD, Some(on_repl_async_load::<E>))
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

// SAFETY: the server calls this with a live context; the event has no data.
unsafe extern "C" fn on_repl_async_load<E: ServerEvents>(
    ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    match sub {
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_STARTED => E::async_load_started(),
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_ABORTED => E::async_load_aborted(),
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_COMPLETED => {
            E::async_load_completed(&Context::new(ctx))
        }
        _ => {}
    }
}
