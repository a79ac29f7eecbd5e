//! Key access: open a key, read or replace its entry, set its expiry, delete it. The only place
//! that touches `RedisModuleKey`.
//!
//! Borrowing follows what the server guarantees: an entry read from a key lives in the key's
//! value slot, which stays put while the key is open and nobody writes it. So
//! [`Key::content`] takes `&mut self` (the returned `&mut Entry` is the only way to the value
//! while it lives), [`Key::set_entry`] takes `&mut self` (no entry borrow may outlive a
//! replacement) and [`Key::delete`] takes `self` (nothing is used after the delete). Keys are
//! opened through a [`Keyspace`], one per server callback, which hands out one key at a time,
//! so two open handles can never alias one value.

use crate::entry::Entry;
use crate::server::datatype::CACHE_TYPE;
use redis_module::{raw, Context};
use std::marker::PhantomData;
use std::os::raw::c_void;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// A command argument as the server passed it (for opening a key without copying its name).
#[derive(Clone, Copy)]
pub struct ArgString(pub(crate) NonNull<raw::RedisModuleString>);

/// The keyspace of one server callback; opens keys one at a time.
pub struct Keyspace<'ctx> {
    ctx: &'ctx Context,
}

impl<'ctx> Keyspace<'ctx> {
    /// The keyspace seen from `ctx`. Create one per callback and open every key through it.
    pub fn of(ctx: &'ctx Context) -> Keyspace<'ctx> {
        Keyspace { ctx }
    }

    /// Opens `name` in the context's selected database.
    pub fn open(&mut self, name: &[u8], write: bool) -> Key<'_> {
        let ctx = self.ctx.ctx;
        // SAFETY: `ctx` is the live context of the current callback (the server thread holds
        // the GIL); the name is a valid slice for `len` bytes; the string is freed right after
        // OpenKey, which keeps its own reference to the name.
        let ptr = unsafe {
            let s = raw::RedisModule_CreateString.unwrap()(ctx, name.as_ptr().cast(), name.len());
            let ptr = raw::RedisModule_OpenKey.unwrap()(ctx, s, mode(write).bits());
            raw::RedisModule_FreeString.unwrap()(ctx, s);
            ptr
        };
        Key {
            ptr: NonNull::new(ptr.cast::<raw::RedisModuleKey>()),
            _keyspace: PhantomData,
        }
    }

    /// Opens `name` for the module's own bookkeeping (the sweeper, TAGSCAN's liveness check):
    /// no LRU/LFU touch, and where the server has the flags (7.2+, Valkey) no keyspace_hits/
    /// misses and no `keymiss` event. On 7.0 a read this way still counts a keyspace hit.
    pub fn open_quiet(&mut self, name: &[u8], write: bool) -> Key<'_> {
        let ctx = self.ctx.ctx;
        // SAFETY: as in `open`; the extra mode bits are only those the server reports knowing.
        let ptr = unsafe {
            let s = raw::RedisModule_CreateString.unwrap()(ctx, name.as_ptr().cast(), name.len());
            let ptr = raw::RedisModule_OpenKey.unwrap()(ctx, s, mode(write).bits() | quiet_flags());
            raw::RedisModule_FreeString.unwrap()(ctx, s);
            ptr
        };
        Key {
            ptr: NonNull::new(ptr.cast::<raw::RedisModuleKey>()),
            _keyspace: PhantomData,
        }
    }

    /// Opens the key named by a command argument (no copy of the name); a missing argument
    /// reads as an empty key.
    pub fn open_arg(&mut self, name: Option<ArgString>, write: bool) -> Key<'_> {
        let ptr = name.and_then(|name| {
            // SAFETY: `name` is one of the current call's argv strings, alive for the call;
            // `ctx` is the call's context.
            let ptr = unsafe {
                raw::RedisModule_OpenKey.unwrap()(self.ctx.ctx, name.0.as_ptr(), mode(write).bits())
            };
            NonNull::new(ptr.cast::<raw::RedisModuleKey>())
        });
        Key {
            ptr,
            _keyspace: PhantomData,
        }
    }
}

/// The open flags for quiet opens that this server knows (detected once, at first use):
/// `RedisModule_GetOpenKeyModesAll` exists from 7.2 on; 7.0 has only NOTOUCH.
fn quiet_flags() -> i32 {
    static FLAGS: OnceLock<i32> = OnceLock::new();
    *FLAGS.get_or_init(|| {
        let wanted = raw::REDISMODULE_OPEN_KEY_NOTOUCH
            | raw::REDISMODULE_OPEN_KEY_NONOTIFY
            | raw::REDISMODULE_OPEN_KEY_NOSTATS;
        // SAFETY: the API pointer is set at load (or absent, before 7.2); the call only
        // returns a bit mask.
        let known = unsafe { raw::RedisModule_GetOpenKeyModesAll }
            .map_or(raw::REDISMODULE_OPEN_KEY_NOTOUCH as i32, |f| unsafe { f() });
        (wanted as i32) & known
    })
}

fn mode(write: bool) -> raw::KeyMode {
    if write {
        raw::KeyMode::READ | raw::KeyMode::WRITE
    } else {
        raw::KeyMode::READ
    }
}

/// An open key; a missing key opened for reading has no handle and reads as empty.
pub struct Key<'ks> {
    ptr: Option<NonNull<raw::RedisModuleKey>>,
    /// Borrows the keyspace mutably: one open key at a time.
    _keyspace: PhantomData<&'ks mut ()>,
}

pub enum Content<'a> {
    Empty,
    Entry(&'a mut Entry),
    Other,
}

impl Key<'_> {
    pub fn content(&mut self) -> Content<'_> {
        let Some(key) = self.ptr else {
            return Content::Empty;
        };
        let key = key.as_ptr();
        // The type check comes first: on a hit (the common case) it is the only check.
        // SAFETY: `key` is an open handle (closed only in Drop). A value of our type was stored
        // by `set_entry` as a `Box<Entry>` (or by `rdb_load`/`copy2`, likewise), so the cast is
        // right; it stays valid while the key is open and unwritten, which the `&mut self`
        // borrow guarantees for the lifetime of the returned reference.
        unsafe {
            if raw::RedisModule_ModuleTypeGetType.unwrap()(key) != *CACHE_TYPE.raw_type.borrow() {
                if raw::RedisModule_KeyType.unwrap()(key) == raw::REDISMODULE_KEYTYPE_EMPTY as i32 {
                    return Content::Empty;
                }
                return Content::Other;
            }
            let value = raw::RedisModule_ModuleTypeGetValue.unwrap()(key).cast::<Entry>();
            match value.as_mut() {
                Some(entry) => Content::Entry(entry),
                None => Content::Other,
            }
        }
    }

    /// Replaces whatever the key holds (the old entry is unlinked and freed by the server).
    pub fn set_entry(&mut self, entry: Entry) -> bool {
        let Some(key) = self.ptr else {
            return false;
        };
        let value = Box::into_raw(Box::new(entry));
        // SAFETY: `key` is open for writing (a read-only open of a missing key has no handle);
        // on success the server owns `value` and frees it through the type's `free`, which
        // rebuilds the Box; `&mut self` means no reference into the old value is alive.
        let ok = unsafe {
            raw::RedisModule_ModuleTypeSetValue.unwrap()(
                key.as_ptr(),
                *CACHE_TYPE.raw_type.borrow(),
                value.cast::<c_void>(),
            ) == raw::REDISMODULE_OK as i32
        };
        if !ok {
            // SAFETY: the server refused the value, so `value` is still ours, from into_raw.
            drop(unsafe { Box::from_raw(value) });
        }
        ok
    }

    /// The key's absolute expiry in Unix ms, or None.
    pub fn expire_at(&self) -> Option<i64> {
        let key = self.ptr?;
        // SAFETY: `key` is an open handle.
        let at = unsafe { raw::RedisModule_GetAbsExpire.unwrap()(key.as_ptr()) };
        (at >= 0).then_some(at)
    }

    pub fn set_expire_at(&mut self, at: Option<i64>) {
        let at = at.unwrap_or(raw::REDISMODULE_NO_EXPIRE as i64);
        if let Some(key) = self.ptr {
            // SAFETY: `key` is an open handle; setting an expiry touches no module memory.
            unsafe { raw::RedisModule_SetAbsExpire.unwrap()(key.as_ptr(), at) };
        }
    }

    /// Deletes the key; the key is consumed, so nothing read from it outlives the delete.
    pub fn delete(self) {
        if let Some(key) = self.ptr {
            // SAFETY: `key` is open (for writing where it matters: the server refuses a
            // read-only delete); the entry is freed by the server through the type's `free`.
            unsafe { raw::RedisModule_DeleteKey.unwrap()(key.as_ptr()) };
        }
    }
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.ptr {
            // SAFETY: `key` was opened by this Key and is closed exactly once, here.
            unsafe { raw::RedisModule_CloseKey.unwrap()(key.as_ptr()) }
        }
    }
}

/// Tells the server that `name`'s visible value or freshness changed (client-side caching
/// invalidates it, WATCH aborts): the module declares NO_IMPLICIT_SIGNAL_MODIFIED, so a key
/// opened for writing and left unchanged signals nothing.
pub fn signal_modified(ctx: &Context, name: &[u8]) {
    // SAFETY: `ctx` is the live context of the current callback; the string is created from
    // a valid slice and freed right after the call, which does not keep it.
    unsafe {
        let s = raw::RedisModule_CreateString.unwrap()(ctx.ctx, name.as_ptr().cast(), name.len());
        raw::RedisModule_SignalModifiedKey.unwrap()(ctx.ctx, s);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, s);
    }
}

/// [`signal_modified`] for a key named by a command argument (no string to create).
pub fn signal_modified_arg(ctx: &Context, name: ArgString) {
    // SAFETY: `ctx` is the call's context, `name` one of its argv strings, alive for the
    // call; the server does not keep it.
    unsafe { raw::RedisModule_SignalModifiedKey.unwrap()(ctx.ctx, name.0.as_ptr()) };
}

/// PUBLISH `message` on `channel`.
pub fn publish(ctx: &Context, channel: &[u8], message: &[u8]) {
    // SAFETY: `ctx` is the live context of the current callback; both strings are created
    // from valid slices and freed after PublishMessage, which copies what it sends.
    unsafe {
        let create = raw::RedisModule_CreateString.unwrap();
        let c = create(ctx.ctx, channel.as_ptr().cast(), channel.len());
        let m = create(ctx.ctx, message.as_ptr().cast(), message.len());
        raw::RedisModule_PublishMessage.unwrap()(ctx.ctx, c, m);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, c);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, m);
    }
}

/// The database selected in `ctx`.
pub fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: `ctx` is the live context of the current callback.
    unsafe { raw::RedisModule_GetSelectedDb.unwrap()(ctx.ctx) }
}

pub fn select_db(ctx: &Context, db: i32) -> bool {
    // SAFETY: `ctx` is the live context of the current callback; a bad number is refused.
    unsafe { raw::RedisModule_SelectDb.unwrap()(ctx.ctx, db) == raw::REDISMODULE_OK as i32 }
}

/// Unix time in ms, the clock Redis expires keys by.
pub fn now_ms() -> i64 {
    // SAFETY: reads the server's clock; no arguments.
    unsafe { raw::RedisModule_Milliseconds.unwrap()() }
}

/// Raises the keyspace event `event` (class module) for a key named by a command argument.
pub fn notify_module_event(ctx: &Context, event: &std::ffi::CStr, key: ArgString) {
    let class = redis_module::NotifyEvent::MODULE.bits();
    // SAFETY: `ctx` is the call's context, `event` is NUL-terminated, `key` is an argv string
    // alive for the call; the server copies what it keeps.
    unsafe {
        raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
            ctx.ctx,
            class,
            event.as_ptr(),
            key.0.as_ptr(),
        );
    }
}
