//! The entry as a Redis data type: RDB encoding (versioned), AOF rewrite, copy, memory usage,
//! digest, and the unlink hook that keeps the index right whenever a key leaves a database.

use crate::config;
use crate::entry::{Entry, FOREVER};
use crate::state;
use redis_module::{native_types::RedisType, raw, RedisString};
use std::os::raw::{c_int, c_void};

/// The RDB encoding written by this build. Version 1: value, fresh-until (ms), cost (ms),
/// flags (bit 0: dead), tag count, tags.
pub const ENCODING_VERSION: i32 = 1;
const FLAG_DEAD: u64 = 1;
/// A corrupted tag count must not size an allocation.
const MAX_LOADED_TAGS: u64 = 1 << 20;

pub static CACHE_TYPE: RedisType = RedisType::new(
    "cache-ent",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: Some(unlink2),
        copy2: Some(copy2),
        aux_save2: None,
    },
);

/// The entry as it should be persisted: with pending tag invalidations of its database applied.
fn persisted_view(key: &[u8], entry: &Entry, db: c_int) -> (bool, i64) {
    state::with(|s| s.db(db).effective(key, entry))
}

unsafe extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    let Some(entry) = value.cast::<Entry>().as_ref() else {
        return;
    };
    let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(io));
    let name = raw::RedisModule_GetKeyNameFromIO.map_or(std::ptr::null(), |f| f(io));
    let key = if name.is_null() {
        &[][..]
    } else {
        RedisString::string_as_slice(name.cast_mut())
    };
    let (dead, fresh_until) = persisted_view(key, entry, db);
    raw::save_slice(io, entry.value());
    raw::save_signed(io, fresh_until);
    raw::save_signed(io, i64::from(entry.cost_ms));
    raw::save_unsigned(io, if dead { FLAG_DEAD } else { 0 });
    raw::save_unsigned(io, entry.tags().count() as u64);
    for tag in entry.tags() {
        raw::save_slice(io, tag);
    }
}

fn load_entry(io: *mut raw::RedisModuleIO) -> Option<Entry> {
    let value = raw::load_string_buffer(io).ok()?.as_ref().to_vec();
    let fresh_until = raw::load_signed(io).ok()?;
    let cost_ms = raw::load_signed(io).ok()?;
    let flags = raw::load_unsigned(io).ok()?;
    let count = raw::load_unsigned(io).ok()?;
    if count > MAX_LOADED_TAGS {
        return None;
    }
    let mut tags: Vec<Vec<u8>> = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        tags.push(raw::load_string_buffer(io).ok()?.as_ref().to_vec());
    }
    let cost_ms = u32::try_from(cost_ms).ok()?;
    let mut entry = Entry::new(
        &value,
        tags.iter().map(|t| t.as_slice()),
        fresh_until,
        cost_ms,
    );
    entry.dead = flags & FLAG_DEAD != 0;
    Some(entry)
}

unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING_VERSION {
        redis_module::logging::log_warning(format!(
            "cache: can't load entry encoding version {encver} (this build reads {ENCODING_VERSION})"
        ));
        return std::ptr::null_mut();
    }
    match load_entry(io) {
        Some(entry) => Box::into_raw(Box::new(entry)).cast(),
        None => {
            redis_module::logging::log_warning("cache: truncated or corrupted entry in RDB");
            std::ptr::null_mut()
        }
    }
}

/// Emits one `CACHE.SETTAGGED` that recreates the entry; `KEEPTTL` because the server emits
/// the key's own expiry (PEXPIREAT) after it.
unsafe extern "C" fn aof_rewrite(
    io: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let Some(entry) = value.cast::<Entry>().as_ref() else {
        return;
    };
    let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(io));
    let key = RedisString::string_as_slice(key);
    let (dead, fresh_until) = persisted_view(key, entry, db);
    if dead {
        return;
    }
    let args = replication_args(key, entry, fresh_until, None, true);
    emit_aof(io, &args);
}

/// Arguments of the `CACHE.SETTAGGED` that recreates an entry exactly: absolute fresh-until,
/// stale window in ms, cost and tags.
pub fn replication_args<'a>(
    key: &'a [u8],
    entry: &'a Entry,
    fresh_until: i64,
    stale_ms: Option<i64>,
    keep_ttl: bool,
) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = vec![key.to_vec(), entry.value().to_vec()];
    if fresh_until == FOREVER {
        args.push(b"PERSIST".to_vec());
    } else {
        args.push(b"PXAT".to_vec());
        args.push(fresh_until.to_string().into_bytes());
    }
    if let Some(stale) = stale_ms {
        args.push(b"PSTALE".to_vec());
        args.push(stale.to_string().into_bytes());
    }
    if entry.cost_ms > 0 {
        args.push(b"COST".to_vec());
        args.push(entry.cost_ms.to_string().into_bytes());
    }
    if keep_ttl {
        args.push(b"KEEPTTL".to_vec());
    }
    if entry.tags().next().is_some() {
        args.push(b"TAGS".to_vec());
        args.extend(entry.tags().map(|t| t.to_vec()));
    }
    args
}

unsafe fn emit_aof(io: *mut raw::RedisModuleIO, args: &[Vec<u8>]) {
    let Some(emit) = raw::RedisModule_EmitAOF else {
        return;
    };
    let strings: Vec<*mut raw::RedisModuleString> = args
        .iter()
        .map(|a| {
            raw::RedisModule_CreateString.unwrap()(std::ptr::null_mut(), a.as_ptr().cast(), a.len())
        })
        .collect();
    emit(
        io,
        c"CACHE.SETTAGGED".as_ptr(),
        c"v".as_ptr(),
        strings.as_ptr(),
        strings.len(),
    );
    for s in strings {
        raw::RedisModule_FreeString.unwrap()(std::ptr::null_mut(), s);
    }
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    value.cast::<Entry>().as_ref().map_or(0, Entry::mem_usage)
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(entry) = value.cast::<Entry>().as_ref() else {
        return;
    };
    let add = raw::RedisModule_DigestAddStringBuffer.unwrap();
    add(
        md,
        entry.value().as_ptr().cast_mut().cast(),
        entry.value().len(),
    );
    for tag in entry.tags() {
        add(md, tag.as_ptr().cast_mut().cast(), tag.len());
    }
    raw::RedisModule_DigestAddLongLong.unwrap()(md, entry.fresh_until);
    raw::RedisModule_DigestEndSequence.unwrap()(md);
}

/// May run on a lazy-free thread (FLUSHALL ASYNC): touches nothing but the entry.
unsafe extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value.cast::<Entry>()));
    }
}

/// The key is leaving its database (DEL, expiry, eviction, overwrite, RENAME/MOVE source).
unsafe extern "C" fn unlink2(ctx: *mut raw::RedisModuleKeyOptCtx, value: *const c_void) {
    let Some(entry) = value.cast_mut().cast::<Entry>().as_mut() else {
        return;
    };
    let key = RedisString::string_as_slice(
        raw::RedisModule_GetKeyNameFromOptCtx.unwrap()(ctx).cast_mut(),
    );
    let db = raw::RedisModule_GetDbIdFromOptCtx.unwrap()(ctx);
    let delimiter = config::delimiter();
    state::with(|s| s.db(db).remove(key, entry, delimiter));
}

/// COPY: the copy carries the source's pending invalidations; it is indexed by the `copy_to`
/// event once it exists.
unsafe extern "C" fn copy2(
    ctx: *mut raw::RedisModuleKeyOptCtx,
    value: *const c_void,
) -> *mut c_void {
    let Some(entry) = value.cast::<Entry>().as_ref() else {
        return std::ptr::null_mut();
    };
    let from_db = raw::RedisModule_GetDbIdFromOptCtx.unwrap()(ctx);
    let from_key = RedisString::string_as_slice(
        raw::RedisModule_GetKeyNameFromOptCtx.unwrap()(ctx).cast_mut(),
    );
    let mut copy = entry.duplicate();
    state::with(|s| s.db(from_db).materialize(from_key, &mut copy));
    Box::into_raw(Box::new(copy)).cast()
}
