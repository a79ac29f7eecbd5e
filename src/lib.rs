//! Server-side cache toolkit for Redis: tagged entries, anti-stampede leases,
//! stale-while-revalidate, pattern and tag invalidation without scanning the keyspace, and
//! hit/miss statistics per database and namespace.

pub mod acl;
pub mod args;
pub mod cachetype;
pub mod channel;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod docs;
pub mod entry;
pub mod error;
pub mod events;
pub mod info;
pub mod keyindex;
pub mod keys;
pub mod leases;
pub mod memberset;
pub mod pattern;
pub mod reply;
pub mod server;
pub mod state;
pub mod stats;
pub mod sweep;
pub mod waiters;

use cachetype::CACHE_TYPE;
use dispatch::Command;
use redis_module::configuration::ConfigurationFlags;
use redis_module::{raw, redis_module, Context, ModuleOptions, RedisString, Status};
use std::ffi::CStr;
use std::time::Duration;

// Unit tests and fuzz targets run without a server, so without its allocator.
#[cfg(not(any(test, feature = "system-alloc")))]
use redis_module::alloc::RedisAlloc as Allocator;
#[cfg(any(test, feature = "system-alloc"))]
use std::alloc::System as Allocator;

/// How often lapsed lease records are collected.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    ctx.set_module_options(
        ModuleOptions::HANDLE_IO_ERRORS | ModuleOptions::NO_IMPLICIT_SIGNAL_MODIFIED,
    );
    if let Err(e) = config::apply_module_args(ctx, args) {
        ctx.log_warning(&format!("cache: {e}"));
        return Status::Err;
    }
    state::with(|s| s.seed(state::os_seed()));
    if !events::subscribe(ctx) {
        ctx.log_warning("cache: could not subscribe to server events");
        return Status::Err;
    }
    if !register_commands(ctx) {
        ctx.log_warning("cache: could not register the commands");
        return Status::Err;
    }
    docs::register(ctx);
    if !cluster::init(ctx) {
        ctx.log_warning("cache: could not register the cluster bus receiver");
        return Status::Err;
    }
    // Replaces the macro's default INFO callback (which would need two more crates).
    raw::register_info_function(ctx.ctx, Some(info::info_callback));
    ctx.create_timer(HOUSEKEEPING, housekeeping, ());
    Status::Ok
}

entry_point!(set_tagged, commands::set_tagged);
entry_point!(get_or_mark, commands::get_or_mark);
entry_point!(get, commands::get);
entry_point!(invalidate, commands::invalidate);
entry_point!(invalidate_tag, commands::invalidate_tag);
entry_point!(stats, commands::stats);
entry_point!(tags, commands::tags);
entry_point!(tag_scan, commands::tag_scan);

/// Every command: name, entry point, flags, key positions (first, last, step).
const COMMANDS: [Command; 8] = [
    command(c"cache.settagged", set_tagged, c"write deny-oom", 1),
    command(c"cache.getormark", get_or_mark, c"write fast", 1),
    command(c"cache.get", get, c"readonly fast", 1),
    command(c"cache.invalidate", invalidate, c"write", 0),
    command(c"cache.invalidatetag", invalidate_tag, c"write", 0),
    command(c"cache.stats", stats, c"readonly", 0),
    command(c"cache.tags", tags, c"readonly fast", 1),
    command(c"cache.tagscan", tag_scan, c"readonly", 0),
];

/// A command whose only key, if any, is at `key` (0: none).
const fn command(
    name: &'static CStr,
    entry: dispatch::EntryPoint,
    flags: &'static CStr,
    key: i32,
) -> Command {
    Command {
        name,
        entry,
        flags,
        first_key: key,
        last_key: key,
        key_step: key,
    }
}

fn register_commands(ctx: &Context) -> bool {
    COMMANDS.iter().all(|c| dispatch::register(ctx, c))
        && dispatch::add_acl_category(ctx, &COMMANDS)
}

fn housekeeping(ctx: &Context, _: ()) {
    let now = keys::now_ms();
    state::with(|s| {
        for (_, db) in s.dbs_mut() {
            db.leases.collect(now);
        }
    });
    ctx.create_timer(HOUSEKEEPING, housekeeping, ());
}

redis_module! {
    name: "cache",
    version: 1,
    allocator: (Allocator, Allocator),
    data_types: [CACHE_TYPE],
    init: init,
    event_handlers: [
        [@GENERIC @STRING @LOADED: events::on_keyspace_event],
    ],
    configurations: [
        i64: [
            ["default-ttl", &config::DEFAULT_TTL, 0, 0, config::MAX_DEFAULT_SECONDS, ConfigurationFlags::DEFAULT, None],
            ["default-stale", &config::DEFAULT_STALE, 0, 0, config::MAX_DEFAULT_SECONDS, ConfigurationFlags::DEFAULT, None],
            ["lease-ms", &config::LEASE_MS, 10_000, 1, args::MAX_LEASE_MS, ConfigurationFlags::DEFAULT, None],
            ["max-tags", &config::MAX_TAGS, 64, 1, config::MAX_TAGS_LIMIT, ConfigurationFlags::DEFAULT, None],
            ["max-namespaces", &config::MAX_NAMESPACES, 1024, 1, config::MAX_NAMESPACES_LIMIT, ConfigurationFlags::DEFAULT, None],
            ["cluster-timeout-ms", &config::CLUSTER_TIMEOUT_MS, 2000, 1, config::MAX_CLUSTER_TIMEOUT_MS, ConfigurationFlags::DEFAULT, None],
        ],
        string: [
            ["namespace-delimiter", &config::DELIMITER, ":", ConfigurationFlags::DEFAULT, None],
            ["early-beta", &config::EARLY_BETA, "1.0", ConfigurationFlags::DEFAULT, None],
        ],
        bool: [],
        enum: [],
        module_args_as_configuration: false,
    ]
}
