//! The FFI edge for key access: open a key, read or replace its entry, set its expiry, delete
//! it. The only place that touches `RedisModuleKey`.

use crate::cachetype::CACHE_TYPE;
use crate::entry::Entry;
use redis_module::{raw, Context};
use std::os::raw::c_void;
use std::ptr::NonNull;

/// An open key; a missing key opened for reading has no handle and reads as empty.
pub struct Key {
    ptr: Option<NonNull<raw::RedisModuleKey>>,
}

pub enum Content<'a> {
    Empty,
    Entry(&'a mut Entry),
    Other,
}

fn create_string(ctx: *mut raw::RedisModuleCtx, bytes: &[u8]) -> *mut raw::RedisModuleString {
    unsafe { raw::RedisModule_CreateString.unwrap()(ctx, bytes.as_ptr().cast(), bytes.len()) }
}

impl Key {
    /// Opens `name` in the context's selected database.
    pub fn open(ctx: &Context, name: &[u8], write: bool) -> Key {
        let mode = if write {
            raw::KeyMode::READ | raw::KeyMode::WRITE
        } else {
            raw::KeyMode::READ
        };
        unsafe {
            let s = create_string(ctx.ctx, name);
            let ptr = raw::RedisModule_OpenKey.unwrap()(ctx.ctx, s, mode.bits());
            raw::RedisModule_FreeString.unwrap()(ctx.ctx, s);
            Key {
                ptr: NonNull::new(ptr.cast::<raw::RedisModuleKey>()),
            }
        }
    }

    /// Opens the key named by a command argument (no copy of the name); a missing argument
    /// reads as an empty key.
    pub fn open_arg(ctx: &Context, name: Option<*mut raw::RedisModuleString>, write: bool) -> Key {
        let Some(name) = name else {
            return Key { ptr: None };
        };
        let mode = if write {
            raw::KeyMode::READ | raw::KeyMode::WRITE
        } else {
            raw::KeyMode::READ
        };
        let ptr = unsafe { raw::RedisModule_OpenKey.unwrap()(ctx.ctx, name, mode.bits()) };
        Key {
            ptr: NonNull::new(ptr.cast::<raw::RedisModuleKey>()),
        }
    }

    pub fn content(&self) -> Content<'_> {
        let Some(key) = self.ptr else {
            return Content::Empty;
        };
        let key = key.as_ptr();
        unsafe {
            if raw::RedisModule_KeyType.unwrap()(key) == raw::REDISMODULE_KEYTYPE_EMPTY as i32 {
                return Content::Empty;
            }
            if raw::RedisModule_ModuleTypeGetType.unwrap()(key) != *CACHE_TYPE.raw_type.borrow() {
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
    pub fn set_entry(&self, entry: Entry) -> bool {
        let Some(key) = self.ptr else {
            return false;
        };
        let value = Box::into_raw(Box::new(entry));
        let ok = unsafe {
            raw::RedisModule_ModuleTypeSetValue.unwrap()(
                key.as_ptr(),
                *CACHE_TYPE.raw_type.borrow(),
                value.cast::<c_void>(),
            ) == raw::REDISMODULE_OK as i32
        };
        if !ok {
            drop(unsafe { Box::from_raw(value) });
        }
        ok
    }

    /// The key's absolute expiry in Unix ms, or None.
    pub fn expire_at(&self) -> Option<i64> {
        let key = self.ptr?;
        let at = unsafe { raw::RedisModule_GetAbsExpire.unwrap()(key.as_ptr()) };
        (at >= 0).then_some(at)
    }

    pub fn set_expire_at(&self, at: Option<i64>) {
        let at = at.unwrap_or(raw::REDISMODULE_NO_EXPIRE as i64);
        if let Some(key) = self.ptr {
            unsafe { raw::RedisModule_SetAbsExpire.unwrap()(key.as_ptr(), at) };
        }
    }

    pub fn delete(&self) {
        if let Some(key) = self.ptr {
            unsafe { raw::RedisModule_DeleteKey.unwrap()(key.as_ptr()) };
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let Some(key) = self.ptr {
            unsafe { raw::RedisModule_CloseKey.unwrap()(key.as_ptr()) }
        }
    }
}

/// Tells the server that `name`'s visible value or freshness changed (client-side caching
/// invalidates it, WATCH aborts): the module declares NO_IMPLICIT_SIGNAL_MODIFIED, so a key
/// opened for writing and left unchanged signals nothing.
pub fn signal_modified(ctx: &Context, name: &[u8]) {
    unsafe {
        let s = create_string(ctx.ctx, name);
        raw::RedisModule_SignalModifiedKey.unwrap()(ctx.ctx, s);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, s);
    }
}

/// PUBLISH `message` on `channel`.
pub fn publish(ctx: &Context, channel: &[u8], message: &[u8]) {
    unsafe {
        let c = create_string(ctx.ctx, channel);
        let m = create_string(ctx.ctx, message);
        raw::RedisModule_PublishMessage.unwrap()(ctx.ctx, c, m);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, c);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, m);
    }
}

/// The database selected in `ctx`.
pub fn selected_db(ctx: &Context) -> i32 {
    unsafe { raw::RedisModule_GetSelectedDb.unwrap()(ctx.ctx) }
}

pub fn select_db(ctx: &Context, db: i32) -> bool {
    unsafe { raw::RedisModule_SelectDb.unwrap()(ctx.ctx, db) == raw::REDISMODULE_OK as i32 }
}

/// Unix time in ms, the clock Redis expires keys by.
pub fn now_ms() -> i64 {
    unsafe { raw::RedisModule_Milliseconds.unwrap()() }
}
