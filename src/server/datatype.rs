//! The entry as a Redis data type: RDB save/load, AOF rewrite, copy, memory usage, digest,
//! and the unlink hook that keeps the index right whenever a key leaves a database. The field
//! layout and the recreating command are in `persist`; this file is the server's side.

use crate::config;
use crate::entry::Entry;
use crate::persist::{
    decode_versioned, reads_version, replication_args, EntryReader, ENCODING_VERSION, FLAG_DEAD,
};
use crate::state;
use redis_module::{native_types::RedisType, raw, RedisBuffer, RedisString};
use std::borrow::Cow;
use std::os::raw::{c_int, c_void};

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

// SAFETY: called by the server with an open save stream and a value of this type (a
// `Box<Entry>` stored by `Key::set_entry`, `rdb_load` or `copy2`), only read here; the key
// name from the stream is a live server string or null (checked).
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
    raw::save_signed(io, i64::from(entry.cost_ms()));
    raw::save_unsigned(io, if dead { FLAG_DEAD } else { 0 });
    raw::save_unsigned(io, entry.tags().count() as u64);
    for tag in entry.tags() {
        raw::save_slice(io, tag);
    }
}

/// The server's RDB stream; with HANDLE_IO_ERRORS a failed read comes back as an error.
struct IoReader(*mut raw::RedisModuleIO);

impl EntryReader for IoReader {
    type Buf = RedisBuffer;

    fn string(&mut self) -> Option<RedisBuffer> {
        raw::load_string_buffer(self.0).ok()
    }

    fn signed(&mut self) -> Option<i64> {
        raw::load_signed(self.0).ok()
    }

    fn unsigned(&mut self) -> Option<u64> {
        raw::load_unsigned(self.0).ok()
    }
}

// SAFETY: called by the server with an open load stream; reads go through the crate's
// checked wrappers (HANDLE_IO_ERRORS), and the value handed back is a `Box<Entry>`, which
// the server later passes to `free`.
unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if !reads_version(encver) {
        redis_module::logging::log_warning(format!(
            "cache: can't load entry encoding version {encver} (this build reads 1 to {ENCODING_VERSION})"
        ));
        return std::ptr::null_mut();
    }
    match decode_versioned(&mut IoReader(io), encver) {
        Some(entry) => {
            let value = Box::into_raw(Box::new(entry));
            // The `loaded`/`restore` event that follows indexes it under this name without
            // opening the key (which would touch its LRU/LFU and count a keyspace hit).
            // SAFETY: `io` is the server's live IO context of this load.
            let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(io));
            let name = raw::RedisModule_GetKeyNameFromIO.map_or(std::ptr::null(), |f| f(io));
            if !name.is_null() {
                let key = RedisString::string_as_slice(name.cast_mut());
                super::arrivals::ARRIVALS.loaded.put(value, key, db);
            }
            value.cast()
        }
        None => {
            redis_module::logging::log_warning("cache: truncated or corrupted entry in RDB");
            std::ptr::null_mut()
        }
    }
}

/// Emits one `CACHE.SETTAGGED` that recreates the entry; `KEEPTTL` because the server emits
/// the key's own expiry (PEXPIREAT) after it.
// SAFETY: called by the server with an open rewrite stream, the key's live name and a value
// of this type, only read here.
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

// SAFETY: (for callers) `io` is the rewrite stream the server passed to `aof_rewrite`. The
// strings are created with no context (the caller frees them, right after EmitAOF, which
// keeps its own copies with format "v").
unsafe fn emit_aof(io: *mut raw::RedisModuleIO, args: &[Cow<[u8]>]) {
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

// SAFETY: the server passes a value of this type (or null, checked), only read here.
unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    value.cast::<Entry>().as_ref().map_or(0, Entry::mem_usage)
}

// SAFETY: the server passes an open digest and a value of this type (null checked), only
// read; the buffers passed to DigestAdd are read by the server, never written.
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
// SAFETY: the server passes each value exactly once, when it drops it; every value of this
// type is a `Box<Entry>` made by `Box::into_raw`, so rebuilding the box frees it once.
unsafe extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        super::arrivals::ARRIVALS.forget(value.cast());
        drop(Box::from_raw(value.cast::<Entry>()));
    }
}

/// The key is leaving its database (DEL, expiry, eviction, overwrite, RENAME/MOVE source).
// SAFETY: called on the main thread with a live key-option context and the value leaving
// the keyspace, which no open `Key` borrows at that moment (unlinks happen inside server
// writes, which `Key` only makes through `&mut self`/`self`).
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
    // RENAME/MOVE: the value lives on under the target, indexed by its `rename_to`/`move_to`
    // event from here (any other removal frees it next, which clears this).
    super::arrivals::ARRIVALS.moved.put(entry, key, db);
}

/// COPY: the copy carries the source's pending invalidations; it is indexed by the `copy_to`
/// event once it exists (handed over here, so that event need not open the key).
// SAFETY: called on the main thread with a live key-option context and the source value,
// only read; the copy is returned as a new `Box<Entry>`, owned by the server from then on.
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
    let value = Box::into_raw(Box::new(copy));
    // SAFETY: the server's key-option context of this COPY; it names the target.
    let to_db = raw::RedisModule_GetToDbIdFromOptCtx.map_or(from_db, |f| f(ctx));
    let to_key = raw::RedisModule_GetToKeyNameFromOptCtx.map_or(std::ptr::null(), |f| f(ctx));
    if !to_key.is_null() {
        let to_key = RedisString::string_as_slice(to_key.cast_mut());
        super::arrivals::ARRIVALS.copied.put(value, to_key, to_db);
    }
    value.cast()
}
