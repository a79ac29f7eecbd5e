//! Command metadata (`COMMAND DOCS`, `COMMAND INFO`, `COMMAND GETKEYS`, redis-cli hints): summary,
//! complexity, arity, key specs and the argument tree of every `CACHE.*` command, registered with
//! `RedisModule_SetCommandInfo` (Redis 7.0+, Valkey).
//!
//! The commands are described by the constant table [`COMMANDS`]; [`Built::new`] turns one entry
//! into the C structs. The server copies everything it is given (strings, key specs, argument
//! arrays), so the structs only live for the duration of the call.

use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr::null;
use std::ptr::null_mut;

/// Module version in which every command appeared.
const SINCE: &CStr = c"1.0.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Key,
    Str,
    Int,
    Pattern,
    UnixTime,
    Token,
    OneOf,
}

impl Ty {
    fn raw(self) -> raw::RedisModuleCommandArgType {
        match self {
            Ty::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            Ty::Str => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            Ty::Int => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            Ty::Pattern => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PATTERN,
            Ty::UnixTime => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME,
            Ty::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            Ty::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
        }
    }
}

const OPTIONAL: c_int = raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int;
const MULTIPLE: c_int = raw::REDISMODULE_CMD_ARG_MULTIPLE as c_int;

/// One argument of a command's syntax.
#[derive(Clone, Copy, Debug)]
struct Arg {
    name: &'static CStr,
    ty: Ty,
    /// The word that introduces the argument (`EX` in `EX seconds`).
    token: Option<&'static CStr>,
    /// What hints show instead of `name` (`milliseconds` for `COST milliseconds`).
    display: Option<&'static CStr>,
    flags: c_int,
    /// Alternatives of a ONEOF (no syntax here needs a BLOCK).
    sub: &'static [Arg],
}

const fn arg(name: &'static CStr, ty: Ty) -> Arg {
    Arg {
        name,
        ty,
        token: None,
        display: None,
        flags: 0,
        sub: &[],
    }
}

/// A bare option word, like `SOFT`.
const fn word(name: &'static CStr, token: &'static CStr) -> Arg {
    arg(name, Ty::Token).token(token)
}

/// `TOKEN value`, with `display` shown for the value.
const fn keyword(name: &'static CStr, ty: Ty, token: &'static CStr, display: &'static CStr) -> Arg {
    arg(name, ty).token(token).display(display)
}

impl Arg {
    const fn token(mut self, token: &'static CStr) -> Self {
        self.token = Some(token);
        self
    }
    const fn display(mut self, display: &'static CStr) -> Self {
        self.display = Some(display);
        self
    }
    const fn optional(mut self) -> Self {
        self.flags |= OPTIONAL;
        self
    }
    const fn multiple(mut self) -> Self {
        self.flags |= MULTIPLE;
        self
    }
    const fn sub(mut self, sub: &'static [Arg]) -> Self {
        self.sub = sub;
        self
    }
}

/// One command: what `COMMAND DOCS` / `COMMAND INFO` report about it.
#[derive(Debug)]
struct Spec {
    name: &'static CStr,
    summary: &'static CStr,
    complexity: &'static CStr,
    /// As in Redis: N exactly N words (command name included), -N at least N.
    arity: c_int,
    /// Key-spec flags of the single key at position 1, for commands that have one.
    key: Option<u64>,
    tips: Option<&'static CStr>,
    args: &'static [Arg],
}

// Key-spec flags (see "key specs" in the Redis docs). ACL checks read permission for ACCESS and
// write permission for INSERT/UPDATE/DELETE.
const RO: u64 = raw::REDISMODULE_CMD_KEY_RO as u64;
const RW: u64 = raw::REDISMODULE_CMD_KEY_RW as u64;
const ACCESS: u64 = raw::REDISMODULE_CMD_KEY_ACCESS as u64;
const UPDATE: u64 = raw::REDISMODULE_CMD_KEY_UPDATE as u64;

const EXPIRATION: &[Arg] = &[
    keyword(c"seconds", Ty::Int, c"EX", c"seconds"),
    keyword(c"milliseconds", Ty::Int, c"PX", c"milliseconds"),
    keyword(
        c"unix-time-seconds",
        Ty::UnixTime,
        c"EXAT",
        c"unix-time-seconds",
    ),
    keyword(
        c"unix-time-milliseconds",
        Ty::UnixTime,
        c"PXAT",
        c"unix-time-milliseconds",
    ),
    word(c"persist", c"PERSIST"),
];

const STALE_WINDOW: &[Arg] = &[
    keyword(c"stale-seconds", Ty::Int, c"STALE", c"seconds"),
    keyword(c"stale-milliseconds", Ty::Int, c"PSTALE", c"milliseconds"),
];

const SETTAGGED: &[Arg] = &[
    arg(c"key", Ty::Key),
    arg(c"value", Ty::Str),
    arg(c"expiration", Ty::OneOf).sub(EXPIRATION).optional(),
    arg(c"stale", Ty::OneOf).sub(STALE_WINDOW).optional(),
    keyword(c"cost", Ty::Int, c"COST", c"milliseconds").optional(),
    keyword(c"lease", Ty::Str, c"LEASE", c"token").optional(),
    word(c"keepttl", c"KEEPTTL").optional(),
    keyword(c"tag", Ty::Str, c"TAGS", c"tag")
        .optional()
        .multiple(),
];

const GETORMARK: &[Arg] = &[
    arg(c"key", Ty::Key),
    keyword(c"lease", Ty::Int, c"LEASE", c"milliseconds").optional(),
    keyword(c"wait", Ty::Int, c"WAIT", c"milliseconds").optional(),
];

const ONE_KEY: &[Arg] = &[arg(c"key", Ty::Key)];

const GET: &[Arg] = &[
    arg(c"key", Ty::Key),
    word(c"withmeta", c"WITHMETA").optional(),
];

const INVALIDATE: &[Arg] = &[
    arg(c"pattern", Ty::Pattern),
    word(c"soft", c"SOFT").optional(),
    word(c"local", c"LOCAL").optional(),
];

const INVALIDATETAG: &[Arg] = &[
    arg(c"tag", Ty::Pattern),
    word(c"soft", c"SOFT").optional(),
    word(c"local", c"LOCAL").optional(),
];

const STATS_SCOPE: &[Arg] = &[
    keyword(c"namespace", Ty::Str, c"NAMESPACE", c"name"),
    word(c"namespaces", c"NAMESPACES"),
    word(c"reset", c"RESET"),
];

const STATS: &[Arg] = &[
    arg(c"scope", Ty::OneOf).sub(STATS_SCOPE).optional(),
    word(c"local", c"LOCAL").optional(),
];

const TAGSCAN: &[Arg] = &[
    arg(c"tag", Ty::Str),
    arg(c"cursor", Ty::Int),
    keyword(c"pattern", Ty::Pattern, c"MATCH", c"pattern").optional(),
    keyword(c"count", Ty::Int, c"COUNT", c"count").optional(),
    word(c"local", c"LOCAL").optional(),
];

static COMMANDS: [Spec; 8] = [
    Spec {
        name: c"cache.settagged",
        summary: c"Stores a value as a cache entry with tags, a fresh lifetime and a stale window, optionally only while a lease token is valid.",
        complexity: c"O(N) where N is the number of tags of the new entry and of the entry it replaces.",
        arity: -3,
        key: Some(RW | UPDATE),
        tips: None,
        args: SETTAGGED,
    },
    Spec {
        name: c"cache.getormark",
        summary: c"Returns an entry's state, value and, when the caller should compute the value, a lease token; optionally waits for another client's lease.",
        complexity: c"O(1)",
        arity: -2,
        key: Some(RO | ACCESS),
        tips: Some(c"nondeterministic_output"),
        args: GETORMARK,
    },
    Spec {
        name: c"cache.get",
        summary: c"Returns the value of a fresh or stale entry, without granting a lease; with WITHMETA also its state, fresh-until and expiry times and tags.",
        complexity: c"O(1), O(T) with WITHMETA where T is the number of the entry's tags",
        arity: -2,
        key: Some(RO | ACCESS),
        tips: None,
        args: GET,
    },
    Spec {
        name: c"cache.invalidate",
        summary: c"Removes, or with SOFT marks stale, every entry whose key matches a glob-style pattern.",
        complexity: c"O(1) for a pattern without wildcards, else O(N) where N is the number of entries whose key starts with the pattern's literal prefix.",
        arity: -2,
        key: None,
        tips: None,
        args: INVALIDATE,
    },
    Spec {
        name: c"cache.invalidatetag",
        summary: c"Removes, or with SOFT marks stale, every entry carrying a tag, or any tag matching a glob-style pattern.",
        complexity: c"O(N) where N is the number of entries invalidated at once (large tags are swept in the background); a pattern adds O(T), T being the number of tags.",
        arity: -2,
        key: None,
        tips: None,
        args: INVALIDATETAG,
    },
    Spec {
        name: c"cache.stats",
        summary: c"Returns the cache counters of the selected database, of one namespace or of every namespace, or resets them.",
        complexity: c"O(1), or O(N) with NAMESPACES where N is the number of namespaces.",
        arity: -1,
        key: None,
        tips: Some(c"nondeterministic_output"),
        args: STATS,
    },
    Spec {
        name: c"cache.tags",
        summary: c"Returns the tags of an entry.",
        complexity: c"O(N) where N is the number of tags of the entry.",
        arity: 2,
        key: Some(RO | ACCESS),
        tips: None,
        args: ONE_KEY,
    },
    Spec {
        name: c"cache.tagscan",
        summary: c"Iterates the keys of the entries carrying a tag.",
        complexity: c"O(1) for every call. O(N) for a complete iteration, N being the number of entries carrying the tag.",
        arity: -3,
        key: None,
        tips: Some(c"nondeterministic_output"),
        args: TAGSCAN,
    },
];

/// The version block the header calls `REDISMODULE_COMMAND_INFO_VERSION`. The header defines it
/// as a `static const` (not an exported symbol), so it is restated here; the sizes let the server
/// walk our arrays with our element sizes.
static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

fn ptr(s: Option<&'static CStr>) -> *const c_char {
    s.map_or(null(), CStr::as_ptr)
}

/// The all-zero element that ends an argument array (its `name` is NULL).
const END_ARG: raw::RedisModuleCommandArg = raw::RedisModuleCommandArg {
    name: null(),
    type_: 0,
    key_spec_index: 0,
    token: null(),
    summary: null(),
    since: null(),
    flags: 0,
    deprecated_since: null(),
    subargs: null_mut(),
    display_text: null(),
};

/// A key spec for the single key at argv[1]; `flags` 0 makes the terminator (BS_INVALID).
fn key_spec(flags: u64) -> raw::RedisModuleCommandKeySpec {
    let (begin, find) = if flags == 0 {
        (
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INVALID,
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_OMITTED,
        )
    } else {
        (
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
        )
    };
    raw::RedisModuleCommandKeySpec {
        notes: null(),
        flags,
        begin_search_type: begin,
        bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
            index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 {
                pos: if flags == 0 { 0 } else { 1 },
            },
        },
        find_keys_type: find,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        },
    }
}

/// The C structs for one [`Spec`]. The arrays are owned here; `info` points into them, and
/// moving a `Vec` does not move its buffer, so `info` stays valid as long as `self` lives.
struct Built {
    info: raw::RedisModuleCommandInfo,
    _key_specs: Vec<raw::RedisModuleCommandKeySpec>,
    _arrays: Vec<Vec<raw::RedisModuleCommandArg>>,
}

impl Built {
    fn new(spec: &Spec) -> Self {
        let mut arrays = Vec::new();
        let args = build_args(spec.args, &mut arrays);
        let mut key_specs: Vec<_> = spec.key.into_iter().map(key_spec).collect();
        let key_specs_ptr = if key_specs.is_empty() {
            null_mut()
        } else {
            key_specs.push(key_spec(0));
            key_specs.as_mut_ptr()
        };
        Built {
            info: raw::RedisModuleCommandInfo {
                version: &VERSION,
                summary: spec.summary.as_ptr(),
                complexity: spec.complexity.as_ptr(),
                since: SINCE.as_ptr(),
                history: null_mut(),
                tips: ptr(spec.tips),
                arity: spec.arity,
                key_specs: key_specs_ptr,
                args,
            },
            _key_specs: key_specs,
            _arrays: arrays,
        }
    }
}

/// Turns `args` (and, recursively, their sub-arguments) into a NULL-terminated C array kept in
/// `arrays`; returns its address.
fn build_args(
    args: &[Arg],
    arrays: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> *mut raw::RedisModuleCommandArg {
    let mut out = Vec::with_capacity(args.len() + 1);
    for a in args {
        let subargs = if a.sub.is_empty() {
            null_mut()
        } else {
            build_args(a.sub, arrays)
        };
        out.push(raw::RedisModuleCommandArg {
            name: a.name.as_ptr(),
            type_: a.ty.raw(),
            // The only key spec, when there is one.
            key_spec_index: if a.ty == Ty::Key { 0 } else { -1 },
            token: ptr(a.token),
            flags: a.flags,
            subargs,
            display_text: ptr(a.display),
            ..END_ARG
        });
    }
    out.push(END_ARG);
    let at = out.as_mut_ptr();
    arrays.push(out);
    at
}

/// Registers the metadata of every command. Call from `init`, after the commands exist. Missing
/// API (Redis before 7.0) or a refusal is logged; the module works without its docs.
pub fn register(ctx: &Context) {
    // SAFETY: the API pointers are filled in once at load, before `init` runs.
    let (Some(get_command), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        ctx.log_notice(
            "cache: this server has no RedisModule_SetCommandInfo; command docs skipped",
        );
        return;
    };
    for spec in &COMMANDS {
        let name = spec.name.to_string_lossy();
        // SAFETY: `ctx.ctx` is the load context; the name is NUL-terminated.
        let command = unsafe { get_command(ctx.ctx, spec.name.as_ptr()) };
        if command.is_null() {
            ctx.log_warning(&format!("cache: {name} is not registered; no docs set"));
            continue;
        }
        let built = Built::new(spec);
        // SAFETY: `built.info` and everything it points to live until the end of this iteration;
        // the server copies what it keeps.
        if unsafe { set_info(command, &built.info) } != raw::REDISMODULE_OK as c_int {
            ctx.log_warning(&format!("cache: the server refused the docs of {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(args: &[Arg], f: &mut impl FnMut(&Arg)) {
        for a in args {
            f(a);
            walk(a.sub, f);
        }
    }

    /// The checks the server makes in `moduleValidateCommandInfo`, so a mistake in the table
    /// fails here rather than as a warning at load.
    #[test]
    fn table_is_valid() {
        for spec in &COMMANDS {
            walk(spec.args, &mut |a| {
                let groups = a.ty == Ty::OneOf;
                assert_eq!(groups, !a.sub.is_empty(), "{:?}", a.name);
                if a.ty == Ty::Token {
                    assert!(a.token.is_some(), "{:?}", a.name);
                }
                assert_eq!(a.flags & !(OPTIONAL | MULTIPLE), 0);
            });
            if let Some(flags) = spec.key {
                assert_eq!((flags & (RO | RW)).count_ones(), 1, "{:?}", spec.name);
            }
        }
    }

    /// Arity agrees with the syntax: the required top-level arguments plus the command name.
    #[test]
    fn arity_matches_syntax() {
        for spec in &COMMANDS {
            let required = spec.args.iter().filter(|a| a.flags & OPTIONAL == 0).count() as c_int;
            assert_eq!(spec.arity.abs(), required + 1, "{:?}", spec.name);
            let variadic = spec
                .args
                .iter()
                .any(|a| a.flags & (OPTIONAL | MULTIPLE) != 0);
            assert_eq!(spec.arity < 0, variadic, "{:?}", spec.name);
        }
    }

    /// Exactly the commands that name a key in argv[1] have a key spec and a KEY argument there.
    #[test]
    fn key_specs_match_key_arguments() {
        for spec in &COMMANDS {
            let first_is_key = spec.args.first().map(|a| a.ty) == Some(Ty::Key);
            assert_eq!(spec.key.is_some(), first_is_key, "{:?}", spec.name);
            let keys = spec.args.iter().filter(|a| a.ty == Ty::Key).count();
            assert!(keys <= 1);
        }
    }

    #[test]
    fn built_arrays_are_terminated() {
        for spec in &COMMANDS {
            let built = Built::new(spec);
            let mut n = 0;
            // SAFETY: `built` owns the array, which ends with a NULL name.
            unsafe {
                while !(*built.info.args.add(n)).name.is_null() {
                    n += 1;
                }
            }
            assert_eq!(n, spec.args.len());
            if spec.key.is_some() {
                // SAFETY: one key spec plus the terminator.
                let second = unsafe { *built.info.key_specs.add(1) };
                assert_eq!(second.begin_search_type, 0);
            } else {
                assert!(built.info.key_specs.is_null());
            }
        }
    }

    #[test]
    fn every_command_is_documented_once() {
        let mut names: Vec<_> = COMMANDS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
    }
}
