//! Server-side cache toolkit for Redis: tagged entries, anti-stampede leases,
//! stale-while-revalidate, pattern and tag invalidation without scanning the keyspace, and
//! hit/miss statistics per database and namespace.

pub mod args;
pub mod channel;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod entry;
pub mod error;
pub mod events;
pub mod info;
pub mod invalidation;
pub mod keyindex;
pub mod leases;
pub mod lookup;
pub mod memberset;
pub mod pattern;
pub mod persist;
pub mod policy;
pub mod server;
pub mod state;
pub mod stats;
pub mod sweep;
pub mod waiters;

use redis_module::configuration::ConfigurationFlags;
use redis_module::{redis_module, Context, ModuleOptions, RedisString, Status};
use server::command as dispatch;
use server::datatype::CACHE_TYPE;
use server::startup::STARTUP_QUIET;
use std::time::Duration;

// Unit tests and fuzz targets run without a server, so without its allocator.
#[cfg(not(any(test, feature = "system-alloc")))]
use redis_module::alloc::RedisAlloc as Allocator;
#[cfg(any(test, feature = "system-alloc"))]
use std::alloc::System as Allocator;

/// How often lapsed lease records are collected.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    // HANDLE_REPL_ASYNC_LOAD: the index follows a replica's swapdb load (events::on_repl_async_load).
    ctx.set_module_options(
        ModuleOptions::HANDLE_IO_ERRORS
            | ModuleOptions::NO_IMPLICIT_SIGNAL_MODIFIED
            | ModuleOptions::HANDLE_REPL_ASYNC_LOAD,
    );
    if let Err(e) = config::apply_module_args(ctx, args) {
        ctx.log_warning(&format!("cache: {e}"));
        return Status::Err;
    }
    state::with(|s| s.seed(state::os_seed()));
    if !server::events::subscribe::<events::Events>(ctx)
        || !server::events::subscribe_keyspace::<events::KeyEvents>(ctx)
    {
        ctx.log_warning("cache: could not subscribe to server events");
        return Status::Err;
    }
    if !register_commands(ctx) {
        ctx.log_warning("cache: could not register the commands");
        return Status::Err;
    }
    server::docs::register(ctx, &commands::COMMANDS);
    if !cluster::init(ctx) {
        ctx.log_warning("cache: could not register the cluster bus receiver");
        return Status::Err;
    }
    server::info::register::<info::Info>(ctx);
    ctx.create_timer(HOUSEKEEPING, housekeeping, ());
    Status::Ok
}

fn register_commands(ctx: &Context) -> bool {
    let commands = &commands::COMMANDS;
    commands.iter().all(|c| dispatch::register(ctx, c)) && dispatch::add_acl_category(ctx, commands)
}

/// A new `cache.namespace-delimiter` recounts the entries per namespace.
fn delimiter_changed(
    _: &redis_module::configuration::ConfigurationContext,
    _: &str,
    delimiter: &'static config::Delimiter,
) {
    if let Some(byte) = delimiter.take_change() {
        let max = config::max_namespaces();
        state::with(|s| {
            for (_, db) in s.dbs_mut() {
                db.recount_namespaces(byte, max);
            }
        });
    }
}

fn housekeeping(ctx: &Context, _: ()) {
    let now = server::keys::now_ms();
    state::with(|s| {
        for (_, db) in s.dbs_mut() {
            db.leases_mut().collect(now);
        }
    });
    ctx.create_timer(HOUSEKEEPING, housekeeping, ());
}

redis_module! {
    name: "cache",
    version: 1,
    allocator: (Allocator, Allocator),
    data_types: [CACHE_TYPE, STARTUP_QUIET],
    init: init,
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
            ["namespace-delimiter", &config::DELIMITER, ":", ConfigurationFlags::DEFAULT, Some(Box::new(delimiter_changed))],
            ["early-beta", &config::EARLY_BETA, "1.0", ConfigurationFlags::DEFAULT, None],
        ],
        bool: [],
        enum: [],
        module_args_as_configuration: false,
    ]
}
