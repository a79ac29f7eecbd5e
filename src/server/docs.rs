//! Command metadata (`COMMAND DOCS`, `COMMAND INFO`, `COMMAND GETKEYS`, redis-cli hints): summary,
//! complexity, arity, key specs and the argument tree of every `CACHE.*` command, registered with
//! `RedisModule_SetCommandInfo` (Redis 7.0+, Valkey).
//!
//! Each command is described once, by a [`Spec`] declared beside its handler (`commands.rs`),
//! which feeds both `RedisModule_CreateCommand` (name, flags, key positions) and
//! `RedisModule_SetCommandInfo`; [`Built::new`] turns one into the C structs. The server
//! copies everything it is given (strings, key specs, argument arrays), so the structs only
//! live for the duration of the call.

use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr::null;
use std::ptr::null_mut;

/// Module version in which every command so far appeared.
pub const SINCE: &CStr = c"1.0.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
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
pub struct Arg {
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

pub const fn arg(name: &'static CStr, ty: Ty) -> Arg {
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
pub const fn word(name: &'static CStr, token: &'static CStr) -> Arg {
    arg(name, Ty::Token).token(token)
}

/// `TOKEN value`, with `display` shown for the value.
pub const fn keyword(
    name: &'static CStr,
    ty: Ty,
    token: &'static CStr,
    display: &'static CStr,
) -> Arg {
    arg(name, ty).token(token).display(display)
}

impl Arg {
    pub const fn token(mut self, token: &'static CStr) -> Self {
        self.token = Some(token);
        self
    }
    pub const fn display(mut self, display: &'static CStr) -> Self {
        self.display = Some(display);
        self
    }
    pub const fn optional(mut self) -> Self {
        self.flags |= OPTIONAL;
        self
    }
    pub const fn multiple(mut self) -> Self {
        self.flags |= MULTIPLE;
        self
    }
    pub const fn sub(mut self, sub: &'static [Arg]) -> Self {
        self.sub = sub;
        self
    }
}

/// The `extern "C"` function the server calls for a command (made by `entry_point!`).
pub type EntryPoint =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// One command, declared once: what registration needs (name, entry point, flags, key
/// positions) and what `COMMAND DOCS` / `COMMAND INFO` report about it.
pub struct Spec {
    pub name: &'static CStr,
    pub entry: EntryPoint,
    /// The flags of `RedisModule_CreateCommand` (`write deny-oom`, `readonly fast`...).
    pub flags: &'static CStr,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    /// As in Redis: N exactly N words (command name included), -N at least N.
    pub arity: c_int,
    /// Key-spec flags of the single key at position 1, for commands that have one (which
    /// also makes first/last/step keys 1/1/1; 0/0/0 without).
    pub key: Option<u64>,
    pub tips: Option<&'static CStr>,
    pub args: &'static [Arg],
}

impl Spec {
    /// First key, last key, key step, as `RedisModule_CreateCommand` takes them.
    pub fn key_positions(&self) -> (c_int, c_int, c_int) {
        if self.key.is_some() {
            (1, 1, 1)
        } else {
            (0, 0, 0)
        }
    }
}

// Key-spec flags (see "key specs" in the Redis docs). ACL checks read permission for ACCESS and
// write permission for INSERT/UPDATE/DELETE.
pub const RO: u64 = raw::REDISMODULE_CMD_KEY_RO as u64;
pub const RW: u64 = raw::REDISMODULE_CMD_KEY_RW as u64;
pub const ACCESS: u64 = raw::REDISMODULE_CMD_KEY_ACCESS as u64;
pub const UPDATE: u64 = raw::REDISMODULE_CMD_KEY_UPDATE as u64;

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
                since: spec.since.as_ptr(),
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
pub fn register(ctx: &Context, commands: &[&Spec]) {
    // SAFETY: the API pointers are filled in once at load, before `init` runs.
    let (Some(get_command), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        ctx.log_notice(
            "cache: this server has no RedisModule_SetCommandInfo; command docs skipped",
        );
        return;
    };
    for spec in commands {
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

/// Checks a command table the way the server would (`moduleValidateCommandInfo`, arity
/// against the syntax, key specs against key arguments, unique names) and that the C arrays
/// built from it are terminated; panics on the first mistake. For unit tests of the table.
#[cfg(test)]
pub fn check_table(commands: &[&Spec]) {
    fn walk(args: &[Arg], f: &mut impl FnMut(&Arg)) {
        for a in args {
            f(a);
            walk(a.sub, f);
        }
    }
    for spec in commands {
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
        // Arity agrees with the syntax: the required top-level arguments plus the name.
        let required = spec.args.iter().filter(|a| a.flags & OPTIONAL == 0).count() as c_int;
        assert_eq!(spec.arity.abs(), required + 1, "{:?}", spec.name);
        let variadic = spec
            .args
            .iter()
            .any(|a| a.flags & (OPTIONAL | MULTIPLE) != 0);
        assert_eq!(spec.arity < 0, variadic, "{:?}", spec.name);
        // Exactly the commands that name a key in argv[1] have a key spec and a KEY there.
        let first_is_key = spec.args.first().map(|a| a.ty) == Some(Ty::Key);
        assert_eq!(spec.key.is_some(), first_is_key, "{:?}", spec.name);
        assert!(spec.args.iter().filter(|a| a.ty == Ty::Key).count() <= 1);
        // Flags the server knows, and a write flag exactly where the key is written.
        let flags = spec.flags.to_str().unwrap_or("");
        for f in flags.split(' ') {
            assert!(
                ["write", "readonly", "fast", "deny-oom"].contains(&f),
                "{f}"
            );
        }
        if spec.key.is_some_and(|key| key & RW != 0) {
            assert!(flags.contains("write"), "{:?}", spec.name);
        }
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
    let mut names: Vec<_> = commands.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), commands.len());
}
