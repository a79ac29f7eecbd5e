//! The entry as a Redis data type: RDB encoding (versioned), AOF rewrite, copy, memory usage,
//! digest, and the unlink hook that keeps the index right whenever a key leaves a database.

use crate::config;
use crate::entry::{Entry, FOREVER};
use crate::state;
use redis_module::{native_types::RedisType, raw, RedisBuffer, RedisString};
use std::borrow::Cow;
use std::os::raw::{c_int, c_void};

/// The RDB encoding written by this build. Version 1: value, fresh-until (ms), cost (ms),
/// flags (bit 0: dead), tag count, tags.
pub const ENCODING_VERSION: i32 = 1;
const FLAG_DEAD: u64 = 1;
/// A corrupted tag count must not size an allocation.
const MAX_LOADED_TAGS: u64 = 1 << 20;
/// Tags reserved for up front when loading (`cache.max-tags` defaults to 64); more grow the
/// vector as they are read.
const PREALLOCATED_TAGS: usize = 64;

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

/// The fields of a saved entry, read in order: from the server's RDB stream in `rdb_load`,
/// from plain bytes ([`SliceReader`]) in tests and fuzz targets. `None`: truncated or corrupted.
pub trait EntryReader {
    type Buf: AsRef<[u8]>;
    fn string(&mut self) -> Option<Self::Buf>;
    fn signed(&mut self) -> Option<i64>;
    fn unsigned(&mut self) -> Option<u64>;
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

/// Entry fields as plain bytes, for decoding outside a server: numbers are 8 bytes
/// little-endian, a string is its length as such a number, then its bytes.
pub struct SliceReader<'a>(pub &'a [u8]);

impl SliceReader<'_> {
    fn word(&mut self) -> Option<[u8; 8]> {
        let (word, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(*word)
    }
}

impl<'a> EntryReader for SliceReader<'a> {
    type Buf = &'a [u8];

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.unsigned()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }

    fn signed(&mut self) -> Option<i64> {
        self.word().map(i64::from_le_bytes)
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.word().map(u64::from_le_bytes)
    }
}

/// Decodes one entry (encoding version 1). The tag count is checked before it sizes anything,
/// and space is reserved only for as many tags as a sane entry has: the rest must really be
/// there to be read.
pub fn decode_entry(r: &mut impl EntryReader) -> Option<Entry> {
    let value = r.string()?.as_ref().to_vec();
    let fresh_until = r.signed()?;
    let cost_ms = r.signed()?;
    let flags = r.unsigned()?;
    let count = r.unsigned()?;
    if count > MAX_LOADED_TAGS {
        return None;
    }
    let reserve = usize::try_from(count).map_or(PREALLOCATED_TAGS, |c| c.min(PREALLOCATED_TAGS));
    let mut tags: Vec<Vec<u8>> = Vec::with_capacity(reserve);
    for _ in 0..count {
        tags.push(r.string()?.as_ref().to_vec());
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
    match decode_entry(&mut IoReader(io)) {
        Some(entry) => {
            let value = Box::into_raw(Box::new(entry));
            // The `loaded`/`restore` event that follows indexes it under this name without
            // opening the key (which would touch its LRU/LFU and count a keyspace hit).
            // SAFETY: `io` is the server's live IO context of this load.
            let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(io));
            let name = raw::RedisModule_GetKeyNameFromIO.map_or(std::ptr::null(), |f| f(io));
            if !name.is_null() {
                let key = RedisString::string_as_slice(name.cast_mut());
                crate::events::ARRIVALS.loaded.put(value, key, db);
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
/// stale window in ms, cost and tags. Key, value and tags are borrowed, not copied.
pub fn replication_args<'a>(
    key: &'a [u8],
    entry: &'a Entry,
    fresh_until: i64,
    stale_ms: Option<i64>,
    keep_ttl: bool,
) -> Vec<Cow<'a, [u8]>> {
    let word = |w: &'static [u8]| Cow::Borrowed(w);
    let number = |n: i64| Cow::Owned(n.to_string().into_bytes());
    let mut args = Vec::with_capacity(12 + entry.tags().count());
    args.extend([Cow::Borrowed(key), Cow::Borrowed(entry.value())]);
    if fresh_until == FOREVER {
        args.push(word(b"PERSIST"));
    } else {
        args.extend([word(b"PXAT"), number(fresh_until)]);
    }
    if let Some(stale) = stale_ms {
        args.extend([word(b"PSTALE"), number(stale)]);
    }
    if entry.cost_ms > 0 {
        args.extend([word(b"COST"), number(i64::from(entry.cost_ms))]);
    }
    if keep_ttl {
        args.push(word(b"KEEPTTL"));
    }
    if entry.tags().next().is_some() {
        args.push(word(b"TAGS"));
        args.extend(entry.tags().map(Cow::Borrowed));
    }
    args
}

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
        crate::events::ARRIVALS.forget(value.cast());
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
    // RENAME/MOVE: the value lives on under the target, indexed by its `rename_to`/`move_to`
    // event from here (any other removal frees it next, which clears this).
    crate::events::ARRIVALS.moved.put(entry, key, db);
}

/// COPY: the copy carries the source's pending invalidations; it is indexed by the `copy_to`
/// event once it exists (handed over here, so that event need not open the key).
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
        crate::events::ARRIVALS.copied.put(value, to_key, to_db);
    }
    value.cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &[u8], fresh_until: i64, cost: i64, flags: u64, tags: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &[u8]| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s);
        };
        string(&mut out, value);
        out.extend(fresh_until.to_le_bytes());
        out.extend(cost.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend((tags.len() as u64).to_le_bytes());
        for tag in tags {
            string(&mut out, tag);
        }
        out
    }

    #[test]
    fn decodes_what_was_saved() {
        let bytes = encode(b"val", 1234, 56, FLAG_DEAD, &[b"t1", b"", b"t3"]);
        let e = decode_entry(&mut SliceReader(&bytes)).unwrap();
        assert_eq!(e.value(), b"val");
        assert_eq!((e.fresh_until, e.cost_ms, e.dead), (1234, 56, true));
        let tags: Vec<&[u8]> = e.tags().collect();
        assert_eq!(tags, [&b"t1"[..], b"", b"t3"]);
    }

    #[test]
    fn refuses_every_truncation() {
        let bytes = encode(b"val", FOREVER, 0, 0, &[b"a", b"bc"]);
        for len in 0..bytes.len() {
            assert!(
                decode_entry(&mut SliceReader(&bytes[..len])).is_none(),
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_huge_counts_and_lengths() {
        let mut bytes = encode(b"v", 1, 0, 0, &[]);
        let at = bytes.len() - 8;
        bytes[at..].copy_from_slice(&(MAX_LOADED_TAGS + 1).to_le_bytes());
        assert!(decode_entry(&mut SliceReader(&bytes)).is_none());
        // A plausible count with no tags behind it reserves little and fails on the first read.
        bytes[at..].copy_from_slice(&MAX_LOADED_TAGS.to_le_bytes());
        assert!(decode_entry(&mut SliceReader(&bytes)).is_none());
        let mut long = u64::MAX.to_le_bytes().to_vec();
        long.extend(b"abc");
        assert!(decode_entry(&mut SliceReader(&long)).is_none());
    }
}
