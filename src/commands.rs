//! Command handlers: parse, check the key's type, validate, act, reply, replicate, in that
//! order. The logic they call lives in `db`, `entry`, `leases` and `stats`.

use crate::args::{self, Freshness as Fresh};
use crate::channel::{self, Kind};
use crate::cluster;
use crate::config;
use crate::entry::{Entry, Freshness, FOREVER};
use crate::entry_point;
use crate::error;
use crate::invalidation::{
    invalidate_pattern, invalidate_tags, is_user_traffic, replicate_announcement,
    replicate_invalidation, reply_fields, reply_scan, tag_scan_local,
};
use crate::lookup::{lookup, reply_lookup, Lookup};
use crate::persist::SetReplication;
use crate::server::acl::Access;
use crate::server::command::{replicate_set, Args};
use crate::server::docs::{arg, keyword, word, Arg, Spec, Ty, ACCESS, RO, RW, SINCE, UPDATE};
use crate::server::keys::{
    notify_module_event, now_ms, selected_db, signal_modified_arg, Content, Key, Keyspace,
};
use crate::server::reply;
use crate::state::{self, parse_token};
use crate::stats::{stat_fields, Event, NamespaceStats, StatValue};
use crate::waiters;
use redis_module::{Context, RedisError, RedisResult, RedisValue};

/// Every command, in registration order.
pub static COMMANDS: [&Spec; 8] = [
    &SET_TAGGED,
    &GET_OR_MARK,
    &GET_SPEC,
    &INVALIDATE_SPEC,
    &INVALIDATE_TAG,
    &STATS_SPEC,
    &TAGS,
    &TAG_SCAN,
];

fn record(ctx: &Context, key: &[u8], events: &[Event]) {
    let db = selected_db(ctx);
    let (delimiter, max) = (config::delimiter(), config::max_namespaces());
    state::with(|s| {
        let stats = s.db(db).stats_mut();
        for &e in events {
            stats.record(key, e, delimiter, max);
        }
    });
}

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

entry_point!(set_tagged_entry, set_tagged);

pub const SET_TAGGED: Spec = Spec {
    name: c"cache.settagged",
    entry: set_tagged_entry,
    flags: c"write deny-oom",
    summary: c"Stores a value as a cache entry with tags, a fresh lifetime and a stale window, optionally only while a lease token is valid.",
    complexity: c"O(N) where N is the number of tags of the new entry and of the entry it replaces.",
    arity: -3,
    key: Some(RW | UPDATE),
    since: SINCE,
    tips: None,
    args: SETTAGGED,
};

/// CACHE.SETTAGGED key value [EX s|PX ms|EXAT s|PXAT ms|PERSIST] [STALE s|PSTALE ms]
/// [COST ms] [LEASE token] [KEEPTTL] [TAGS tag ...]
pub fn set_tagged(ctx: &Context, args: &Args) -> RedisResult {
    let max_tags = usize::try_from(config::max_tags()).unwrap_or(0);
    let cmd = args.parse(|a| args::set_tagged(a, max_tags))?;
    let mut keyspace = Keyspace::of(ctx);
    let mut key = keyspace.open_arg(args.raw(1), true);
    if let Content::Other = key.content() {
        return Err(error::wrong_type());
    }
    let now = now_ms();
    let fresh_until = match cmd.fresh {
        Fresh::Default if config::default_ttl_ms() > 0 => now + config::default_ttl_ms(),
        Fresh::Default | Fresh::Persist => FOREVER,
        Fresh::For(ms) => now + ms,
        Fresh::Until(at) => at,
    };
    let stale_ms = cmd.stale_ms.unwrap_or_else(config::default_stale_ms);
    let expire_at = (fresh_until != FOREVER).then(|| fresh_until.saturating_add(stale_ms));
    let db = selected_db(ctx);
    let user = is_user_traffic(ctx);

    let accepted = state::with(|s| {
        let d = s.db(db);
        let ok = match cmd.lease {
            Some(token) => {
                parse_token(token).is_some_and(|t| d.leases_mut().redeem(cmd.key, t, &cmd.tags))
            }
            None => {
                d.leases_mut().void_key(cmd.key);
                true
            }
        };
        ok.then(|| s.next_seq())
    });
    let Some(gen) = accepted else {
        if user {
            record(ctx, cmd.key, &[Event::SetRefused]);
        }
        reply::null(ctx);
        return Ok(RedisValue::NoReply);
    };

    let kept_expire = if cmd.keep_ttl { key.expire_at() } else { None };
    let cost_ms = u32::try_from(cmd.cost_ms).unwrap_or(u32::MAX);
    let entry = Entry::new(cmd.value, cmd.tags.iter().copied(), fresh_until, cost_ms);
    if !key.set_entry(entry) {
        return Err(error::could_not_store());
    }
    key.set_expire_at(if cmd.keep_ttl { kept_expire } else { expire_at });
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    if let Content::Entry(entry) = key.content() {
        state::with(|s| {
            let d = s.db(db);
            d.add(cmd.key, entry, gen, delimiter, max_ns);
            if user {
                d.stats_mut().record(cmd.key, Event::Set, delimiter, max_ns);
            }
        });
        let stale = (fresh_until != FOREVER && !cmd.keep_ttl).then_some(stale_ms);
        let tags_at = cmd.tags_at.map(|at| at + 1);
        let replicated = SetReplication::new(fresh_until, stale, cost_ms, cmd.keep_ttl, tags_at);
        replicate_set(ctx, args, c"CACHE.SETTAGGED", &replicated);
    }
    drop(key);
    if let Some(name) = args.raw(1) {
        signal_modified_arg(ctx, name);
        notify_module_event(ctx, c"cache.settagged", name);
    }
    waiters::wake_on_set(ctx, db, cmd.key);
    reply::simple(ctx, c"OK");
    Ok(RedisValue::NoReply)
}

const GETORMARK: &[Arg] = &[
    arg(c"key", Ty::Key),
    keyword(c"lease", Ty::Int, c"LEASE", c"milliseconds").optional(),
    keyword(c"wait", Ty::Int, c"WAIT", c"milliseconds").optional(),
];

entry_point!(get_or_mark_entry, get_or_mark);

pub const GET_OR_MARK: Spec = Spec {
    name: c"cache.getormark",
    entry: get_or_mark_entry,
    flags: c"write fast",
    summary: c"Returns an entry's state, value and, when the caller should compute the value, a lease token; optionally waits for another client's lease.",
    complexity: c"O(1)",
    arity: -2,
    key: Some(RO | ACCESS),
    since: SINCE,
    tips: Some(c"nondeterministic_output"),
    args: GETORMARK,
};

/// CACHE.GETORMARK key [LEASE ms] [WAIT ms]
pub fn get_or_mark(ctx: &Context, args: &Args) -> RedisResult {
    let cmd = args.parse(args::get_or_mark)?;
    let lease_ms = cmd.lease_ms.unwrap_or_else(config::lease_ms);
    let db = selected_db(ctx);
    let mut keyspace = Keyspace::of(ctx);
    let mut key = keyspace.open_arg(args.raw(1), false);
    let entry = read_entry(&mut key)?;
    let lookup = lookup(db, cmd.key, entry, lease_ms, now_ms());
    if let (Lookup::Pending, true) = (&lookup, cmd.wait_ms > 0) {
        drop(key);
        return waiters::block(ctx, db, cmd.key, lease_ms, cmd.wait_ms);
    }
    reply_lookup(ctx, &lookup, entry.map(Entry::value));
    Ok(RedisValue::NoReply)
}

/// The entry a command's key holds, None for no key; WRONGTYPE for another type.
fn read_entry<'k>(key: &'k mut Key) -> Result<Option<&'k Entry>, RedisError> {
    match key.content() {
        Content::Other => Err(error::wrong_type()),
        Content::Empty => Ok(None),
        Content::Entry(e) => Ok(Some(e)),
    }
}

const GET: &[Arg] = &[
    arg(c"key", Ty::Key),
    word(c"withmeta", c"WITHMETA").optional(),
];

entry_point!(get_entry, get);

pub const GET_SPEC: Spec = Spec {
    name: c"cache.get",
    entry: get_entry,
    flags: c"readonly fast",
    summary: c"Returns the value of a fresh or stale entry, without granting a lease; with WITHMETA also its state, fresh-until and expiry times and tags.",
    complexity: c"O(1), O(T) with WITHMETA where T is the number of the entry's tags",
    arity: -2,
    key: Some(RO | ACCESS),
    since: SINCE,
    tips: None,
    args: GET,
};

/// CACHE.GET key [WITHMETA]
pub fn get(ctx: &Context, args: &Args) -> RedisResult {
    let cmd = args.parse(args::get)?;
    let db = selected_db(ctx);
    let mut keyspace = Keyspace::of(ctx);
    let mut key = keyspace.open_arg(args.raw(1), false);
    let expire_at = cmd.with_meta.then(|| key.expire_at()).flatten();
    let entry = read_entry(&mut key)?;
    let now = now_ms();
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    let served = state::with(|s| {
        let d = s.db(db);
        let freshness = entry.map(|e| (e, d.freshness(cmd.key, e, now)));
        let event = match freshness {
            Some((_, Freshness::Fresh)) => Event::Hit,
            Some((_, Freshness::Stale)) => Event::StaleHit,
            _ => Event::Miss,
        };
        d.stats_mut().record(cmd.key, event, delimiter, max_ns);
        let served = freshness.filter(|(_, f)| *f != Freshness::Dead);
        // The fresh-until time after pending soft invalidations, only when asked for.
        served.map(|(e, f)| (e, f, cmd.with_meta.then(|| d.effective(cmd.key, e).1)))
    });
    match served {
        None => reply::null(ctx),
        Some((e, _, None)) => reply::bulk(ctx, e.value()),
        Some((e, freshness, Some(until))) => {
            reply::array(ctx, 5);
            reply::bulk(ctx, e.value());
            let state: &[u8] = if freshness == Freshness::Fresh {
                b"HIT"
            } else {
                b"STALE"
            };
            reply::bulk(ctx, state);
            reply::int(ctx, if until == FOREVER { -1 } else { until });
            reply::int(ctx, expire_at.unwrap_or(-1));
            let tags: Vec<&[u8]> = e.tags().collect();
            reply::array(ctx, tags.len());
            for tag in tags {
                reply::bulk(ctx, tag);
            }
        }
    }
    Ok(RedisValue::NoReply)
}

const INVALIDATE: &[Arg] = &[
    arg(c"pattern", Ty::Pattern),
    word(c"soft", c"SOFT").optional(),
    word(c"local", c"LOCAL").optional(),
];

entry_point!(invalidate_entry, invalidate);

pub const INVALIDATE_SPEC: Spec = Spec {
    name: c"cache.invalidate",
    entry: invalidate_entry,
    flags: c"write",
    summary: c"Removes, or with SOFT marks stale, every entry whose key matches a glob-style pattern.",
    complexity: c"O(1) for a pattern without wildcards, else O(N) where N is the number of entries whose key starts with the pattern's literal prefix.",
    arity: -2,
    key: None,
    since: SINCE,
    tips: None,
    args: INVALIDATE,
};

/// CACHE.INVALIDATE pattern [SOFT] [LOCAL]
pub fn invalidate(ctx: &Context, args: &Args) -> RedisResult {
    invalidation_command(ctx, args, Kind::Pattern)
}

const INVALIDATETAG: &[Arg] = &[
    arg(c"tag", Ty::Pattern),
    word(c"soft", c"SOFT").optional(),
    word(c"local", c"LOCAL").optional(),
];

entry_point!(invalidate_tag_entry, invalidate_tag);

pub const INVALIDATE_TAG: Spec = Spec {
    name: c"cache.invalidatetag",
    entry: invalidate_tag_entry,
    flags: c"write",
    summary: c"Removes, or with SOFT marks stale, every entry carrying a tag, or any tag matching a glob-style pattern.",
    complexity: c"O(N) where N is the number of entries invalidated at once (large tags are swept in the background); a pattern adds O(T), T being the number of tags.",
    arity: -2,
    key: None,
    since: SINCE,
    tips: None,
    args: INVALIDATETAG,
};

/// CACHE.INVALIDATETAG tag [SOFT] [LOCAL]
pub fn invalidate_tag(ctx: &Context, args: &Args) -> RedisResult {
    invalidation_command(ctx, args, Kind::Tag)
}

/// INVALIDATE (`Kind::Pattern`) and INVALIDATETAG (`Kind::Tag`): here, then cluster-wide.
fn invalidation_command(ctx: &Context, args: &Args, kind: Kind) -> RedisResult {
    let cmd = args.parse(args::invalidate)?;
    let name = match kind {
        Kind::Pattern => "CACHE.INVALIDATE",
        Kind::Tag => "CACHE.INVALIDATETAG",
    };
    let scope = cluster::scope(ctx, cmd.local, name)?;
    let db = selected_db(ctx);
    let access = Access::of(ctx);
    // Announced first: a near cache drops the matching copies before the per-key signals.
    channel::announce(ctx, db, kind, cmd.soft, cmd.pattern);
    let apply = match kind {
        Kind::Pattern => invalidate_pattern,
        Kind::Tag => invalidate_tags,
    };
    let (count, touched) = apply(ctx, db, cmd.pattern, cmd.soft, &access, true);
    replicate_invalidation(ctx, &access, None, cmd.soft, &touched);
    replicate_announcement(ctx, &access, db, kind, cmd.soft, cmd.pattern);
    let (argument, soft) = (cmd.pattern.to_vec(), cmd.soft);
    let op = match kind {
        Kind::Pattern => cluster::Op::Invalidate {
            pattern: argument,
            soft,
        },
        Kind::Tag => cluster::Op::InvalidateTag {
            tag: argument,
            soft,
        },
    };
    cluster::complete(ctx, scope, db, &access, op, cluster::Acc::Count(count))
}

fn namespace_fields(ns: &NamespaceStats) -> [(&'static str, StatValue); 17] {
    stat_fields(&ns.counters, ns.entries, 0)
}

const STATS_SCOPE: &[Arg] = &[
    keyword(c"namespace", Ty::Str, c"NAMESPACE", c"name"),
    word(c"namespaces", c"NAMESPACES"),
    word(c"reset", c"RESET"),
];

const STATS: &[Arg] = &[
    arg(c"scope", Ty::OneOf).sub(STATS_SCOPE).optional(),
    word(c"local", c"LOCAL").optional(),
];

entry_point!(stats_entry, stats);

pub const STATS_SPEC: Spec = Spec {
    name: c"cache.stats",
    entry: stats_entry,
    flags: c"readonly",
    summary: c"Returns the cache counters of the selected database, of one namespace or of every namespace, or resets them.",
    complexity: c"O(1), or O(N) with NAMESPACES where N is the number of namespaces.",
    arity: -1,
    key: None,
    since: SINCE,
    tips: Some(c"nondeterministic_output"),
    args: STATS,
};

/// CACHE.STATS [NAMESPACE name | NAMESPACES | RESET] [LOCAL]
pub fn stats(ctx: &Context, args: &Args) -> RedisResult {
    let (query, local) = args.parse(args::stats)?;
    let scope = cluster::scope(ctx, local, "CACHE.STATS")?;
    let access = Access::of(ctx);
    if !access.covers_all(ctx) {
        return Err(error::no_permission());
    }
    let db = selected_db(ctx);
    if let cluster::Scope::Wide(_) = scope {
        let wanted = cluster::stats_scope(&query);
        let acc = cluster::local_stats_acc(db, &wanted, &scope);
        return cluster::complete(ctx, scope, db, &access, cluster::Op::Stats(wanted), acc);
    }
    match query {
        args::StatsQuery::Totals => {
            let fields = state::with(|s| {
                let d = s.db(db);
                stat_fields(&d.stats().total, d.entries() as u64, d.tag_count() as u64)
            });
            reply_fields(ctx, &fields);
        }
        args::StatsQuery::Namespace(name) => {
            let ns = state::with(|s| s.db(db).stats().namespace(name));
            reply_fields(ctx, &namespace_fields(&ns));
        }
        args::StatsQuery::Namespaces => {
            let all: Vec<(Vec<u8>, NamespaceStats)> = state::with(|s| {
                s.db(db)
                    .stats()
                    .namespaces()
                    .into_iter()
                    .map(|(name, ns)| (name.to_vec(), ns))
                    .collect()
            });
            reply::map(ctx, all.len());
            for (name, ns) in &all {
                reply::bulk(ctx, name);
                reply_fields(ctx, &namespace_fields(ns));
            }
        }
        args::StatsQuery::Reset => {
            state::with(|s| s.db(db).stats_mut().reset());
            reply::simple(ctx, c"OK");
        }
    }
    Ok(RedisValue::NoReply)
}

const ONE_KEY: &[Arg] = &[arg(c"key", Ty::Key)];

entry_point!(tags_entry, tags);

pub const TAGS: Spec = Spec {
    name: c"cache.tags",
    entry: tags_entry,
    flags: c"readonly fast",
    summary: c"Returns the tags of an entry.",
    complexity: c"O(N) where N is the number of tags of the entry.",
    arity: 2,
    key: Some(RO | ACCESS),
    since: SINCE,
    tips: None,
    args: ONE_KEY,
};

/// CACHE.TAGS key
pub fn tags(ctx: &Context, args: &Args) -> RedisResult {
    let name = args.parse(args::key_only)?;
    let db = selected_db(ctx);
    let mut keyspace = Keyspace::of(ctx);
    let mut key = keyspace.open_arg(args.raw(1), false);
    let tags: Vec<&[u8]> = match key.content() {
        Content::Entry(e) => {
            let dead = state::with(|s| s.db(db).freshness(name, e, now_ms()) == Freshness::Dead);
            if dead {
                Vec::new()
            } else {
                e.tags().collect()
            }
        }
        _ => Vec::new(),
    };
    reply::array(ctx, tags.len());
    for t in tags {
        reply::bulk(ctx, t);
    }
    Ok(RedisValue::NoReply)
}

const TAGSCAN: &[Arg] = &[
    arg(c"tag", Ty::Str),
    arg(c"cursor", Ty::Int),
    keyword(c"pattern", Ty::Pattern, c"MATCH", c"pattern").optional(),
    keyword(c"count", Ty::Int, c"COUNT", c"count").optional(),
    word(c"local", c"LOCAL").optional(),
];

entry_point!(tag_scan_entry, tag_scan);

pub const TAG_SCAN: Spec = Spec {
    name: c"cache.tagscan",
    entry: tag_scan_entry,
    flags: c"readonly",
    summary: c"Iterates the keys of the entries carrying a tag.",
    complexity: c"O(1) for every call. O(N) for a complete iteration, N being the number of entries carrying the tag.",
    arity: -3,
    key: None,
    since: SINCE,
    tips: Some(c"nondeterministic_output"),
    args: TAGSCAN,
};

/// CACHE.TAGSCAN tag cursor [MATCH pattern] [COUNT count] [LOCAL]
pub fn tag_scan(ctx: &Context, args: &Args) -> RedisResult {
    let cmd = args.parse(args::tag_scan)?;
    let scope = cluster::scope(ctx, cmd.local, "CACHE.TAGSCAN")?;
    let db = selected_db(ctx);
    let access = Access::of(ctx);
    if let cluster::Scope::Wide(plan) = scope {
        return cluster::tag_scan(ctx, plan, db, &access, &cmd);
    }
    let (next, live) = tag_scan_local(
        ctx,
        db,
        &access,
        cmd.tag,
        cmd.cursor,
        cmd.count,
        cmd.pattern,
    );
    reply_scan(ctx, next, &live);
    Ok(RedisValue::NoReply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table_is_valid() {
        crate::server::docs::check_table(&COMMANDS);
    }
}
