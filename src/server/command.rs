//! Command registration and dispatch without copying arguments: handlers see the server's
//! argument vector as byte slices (the crate's dispatcher builds a Vec of owned strings per
//! call, measurable on a path as short as a cache hit).

use crate::persist::{Part, SetReplication, Word};
use crate::server::docs::Spec;
use crate::server::keys::ArgString;
use redis_module::{raw, Context, RedisResult};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr::null_mut;

/// The arguments of one call, command name first.
pub struct Args<'a> {
    argv: &'a [*mut raw::RedisModuleString],
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }

    /// Argument `i` as bytes (the server keeps it alive for the call).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let s = *self.argv.get(i)?;
        let mut len = 0;
        let ptr = raw::string_ptr_len(s, &mut len);
        if ptr.is_null() {
            return Some(&[]);
        }
        // SAFETY: the server's strings are `len` valid bytes at `ptr`, alive (and unchanged)
        // for the whole call, which outlives `'a`.
        Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
    }

    /// Argument `i` as the server's string, for key access without a copy.
    pub fn raw(&self, i: usize) -> Option<ArgString> {
        self.argv
            .get(i)
            .and_then(|&s| std::ptr::NonNull::new(s))
            .map(ArgString)
    }

    /// Runs `parse` on the arguments after the command name, gathered on the stack for the
    /// usual short call (a Vec per call is measurable on a path as short as a cache hit).
    pub fn parse<T>(&self, parse: impl FnOnce(&[&'a [u8]]) -> T) -> T {
        const ON_STACK: usize = 16;
        let n = self.argv.len().saturating_sub(1);
        if n <= ON_STACK {
            let mut buf: [&'a [u8]; ON_STACK] = [&[]; ON_STACK];
            for (slot, i) in buf.iter_mut().zip(1..=n) {
                *slot = self.get(i).unwrap_or_default();
            }
            parse(&buf[..n])
        } else {
            let all: Vec<&'a [u8]> = (1..=n).filter_map(|i| self.get(i)).collect();
            parse(&all)
        }
    }
}

pub type Handler = fn(&Context, &Args) -> RedisResult;

/// Runs `handler` on a call from the server and replies with its result.
///
/// # Safety
/// `argv` holds `argc` valid strings, as the server passes them to a command.
pub unsafe fn run(
    handler: Handler,
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let argv = match usize::try_from(argc) {
        // SAFETY: the caller passes the server's argv, `argc` valid pointers.
        Ok(n) if !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, n) },
        _ => &[],
    };
    let result = handler(&context, &Args { argv });
    context.reply(result) as c_int
}

/// Defines the `extern "C"` entry point the server calls for a handler.
#[macro_export]
macro_rules! entry_point {
    ($name:ident, $handler:path) => {
        extern "C" fn $name(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::os::raw::c_int,
        ) -> std::os::raw::c_int {
            // SAFETY: the server calls a command with its context and `argc` argv strings.
            unsafe { $crate::server::command::run($handler, ctx, argv, argc) }
        }
    };
}

/// Registers one command; false if the server refused it.
pub fn register(ctx: &Context, c: &Spec) -> bool {
    let (first_key, last_key, key_step) = c.key_positions();
    // SAFETY: called from `init` with the load context; name and flags are NUL-terminated
    // statics; `entry` has the signature the server calls.
    unsafe {
        raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            c.name.as_ptr(),
            Some(c.entry),
            c.flags.as_ptr(),
            first_key,
            last_key,
            key_step,
        ) == raw::REDISMODULE_OK as c_int
    }
}

/// Puts the commands in an ACL category `cache` (`ACL SETUSER app +@cache`) where the server
/// supports module categories (7.2+, Valkey); on 7.0 it does nothing. False on a refusal.
pub fn add_acl_category(ctx: &Context, commands: &[&Spec]) -> bool {
    // SAFETY: the API pointers are filled in once at load, before `init` runs.
    let api = unsafe {
        (
            raw::RedisModule_AddACLCategory,
            raw::RedisModule_SetCommandACLCategories,
            raw::RedisModule_GetCommand,
        )
    };
    let (Some(add), Some(set), Some(get)) = api else {
        return true;
    };
    // SAFETY: the load context; NUL-terminated static names; a command handle is checked for
    // null before use.
    unsafe {
        if add(ctx.ctx, c"cache".as_ptr()) != raw::REDISMODULE_OK as c_int {
            return false;
        }
        commands.iter().all(|c| {
            let command = get(ctx.ctx, c.name.as_ptr());
            !command.is_null() && set(command, c"cache".as_ptr()) == raw::REDISMODULE_OK as c_int
        })
    }
}

/// Replicates a set as `command` made of `plan`'s parts, to replicas and the AOF, without
/// copying what the call already holds: the server takes a reference to each string it is
/// given, so the call's own arguments and kept strings are passed as they are; only numbers
/// are made.
pub fn replicate_set(ctx: &Context, args: &Args, command: &CStr, plan: &SetReplication) {
    let parts = plan.parts();
    let mut argv: Vec<*mut raw::RedisModuleString> = Vec::with_capacity(parts.len() + args.len());
    let mut made = [null_mut(); SetReplication::CAPACITY];
    let mut made_len = 0;
    for part in parts {
        match *part {
            Part::Arg(i) => argv.extend(args.argv.get(i)),
            Part::ArgsFrom(i) => argv.extend(args.argv.get(i..).unwrap_or_default()),
            Part::Word(w) => argv.push(KEPT.with(|kept| kept[w as usize])),
            Part::Int(0) => argv.push(KEPT.with(|kept| kept[Word::ALL.len()])),
            Part::Int(n) => {
                // SAFETY: a string made outside any context (NULL), freed below.
                let s =
                    unsafe { raw::RedisModule_CreateStringFromLongLong.unwrap()(null_mut(), n) };
                argv.push(s);
                // Never full: there are no more numbers than parts.
                if let Some(slot) = made.get_mut(made_len) {
                    *slot = s;
                    made_len += 1;
                }
            }
        }
    }
    // SAFETY: `ctx` is the call's context; the name and format are NUL-terminated; the "v"
    // format takes an array of `len` strings, each valid (the call's argv, kept strings, or
    // made here), which the server references (incrRefCount), so freeing ours afterwards is
    // sound.
    unsafe {
        raw::RedisModule_Replicate.unwrap()(
            ctx.ctx,
            command.as_ptr(),
            c"v".as_ptr(),
            argv.as_ptr(),
            argv.len(),
        );
        for &s in &made[..made_len] {
            raw::RedisModule_FreeString.unwrap()(null_mut(), s);
        }
    }
}

thread_local! {
    /// One string per replicated word, then "0" (the usual stale window), made once on the
    /// main thread (where commands run) and kept for the life of the process: the server only
    /// ever adds references to them.
    static KEPT: [*mut raw::RedisModuleString; Word::ALL.len() + 1] = {
        let make = |text: &[u8]| {
            // SAFETY: a string made outside any context from a static slice; never freed.
            unsafe {
                raw::RedisModule_CreateString.unwrap()(null_mut(), text.as_ptr().cast(), text.len())
            }
        };
        let mut kept = [null_mut(); Word::ALL.len() + 1];
        for (slot, w) in kept.iter_mut().zip(Word::ALL) {
            *slot = make(w.text());
        }
        kept[Word::ALL.len()] = make(b"0");
        kept
    };
}

/// Replicates `command args...` to replicas and the AOF (the crate's `Context::replicate`).
pub fn replicate(ctx: &Context, command: &CStr, args: &[&[u8]]) {
    if let Ok(name) = command.to_str() {
        ctx.replicate(name, args);
    }
}
