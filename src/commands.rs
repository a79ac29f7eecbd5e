//! Command handlers: parse, check the key's type, validate, act, reply, replicate, in that
//! order. The logic they call lives in `db`, `entry`, `leases` and `stats`.

use crate::acl::{Access, Intent};
use crate::args::{self, Freshness as Fresh};
use crate::cachetype::replication_args;
use crate::channel::{self, Kind};
use crate::cluster;
use crate::config;
use crate::db::{TagWork, SYNC_LIMIT};
use crate::dispatch::Args;
use crate::entry::{xfetch, Entry, Freshness, FOREVER};
use crate::error::{self, ParseError};
use crate::keys::{now_ms, selected_db, signal_modified, Content, Key};
use crate::memberset::Bytes;
use crate::reply;
use crate::state::{self, format_token, parse_token};
use crate::stats::{Counters, Event, NamespaceStats};
use crate::waiters;
use redis_module::{Context, ContextFlags, NotifyEvent, RedisError, RedisResult, RedisValue};
use std::sync::Arc;

fn parse_error(e: ParseError) -> RedisError {
    match e {
        ParseError::Arity => RedisError::WrongArity,
        ParseError::Syntax => error::syntax(),
        ParseError::NotAnInteger => error::not_an_integer(),
        ParseError::InvalidExpire => error::invalid_expire(),
        ParseError::TooManyTags => error::too_many_tags(config::max_tags()),
        ParseError::InvalidLease => error::invalid_lease(),
        ParseError::InvalidWait => error::invalid_wait(),
        ParseError::InvalidCursor => error::invalid_cursor(),
    }
}

/// Commands applied from the primary or the AOF are not user traffic: they count nothing.
fn is_user_traffic(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
}

fn record(ctx: &Context, key: &[u8], events: &[Event]) {
    let db = selected_db(ctx);
    let (delimiter, max) = (config::delimiter(), config::max_namespaces());
    state::with(|s| {
        let stats = &mut s.db(db).stats;
        for &e in events {
            stats.record(key, e, delimiter, max);
        }
    });
}

/// Raises the `cache.settagged` keyspace event (class module) for a stored key.
fn notify(ctx: &Context, key: *mut redis_module::raw::RedisModuleString) {
    let class = NotifyEvent::MODULE.bits();
    unsafe {
        redis_module::raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
            ctx.ctx,
            class,
            c"cache.settagged".as_ptr(),
            key,
        );
    }
}

/// CACHE.SETTAGGED key value [EX s|PX ms|EXAT s|PXAT ms|PERSIST] [STALE s|PSTALE ms]
/// [COST ms] [LEASE token] [KEEPTTL] [TAGS tag ...]
pub fn set_tagged(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let max_tags = usize::try_from(config::max_tags()).unwrap_or(0);
    let cmd = args::set_tagged(&argv, max_tags).map_err(parse_error)?;
    let key = Key::open_arg(ctx, args.raw(1), true);
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
                parse_token(token).is_some_and(|t| d.leases.redeem(cmd.key, t, &cmd.tags))
            }
            None => {
                d.leases.void_key(cmd.key);
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
        return Err(RedisError::Str("ERR could not store the entry"));
    }
    key.set_expire_at(if cmd.keep_ttl { kept_expire } else { expire_at });
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    if let Content::Entry(entry) = key.content() {
        state::with(|s| {
            let d = s.db(db);
            d.add(cmd.key, entry, gen, delimiter, max_ns);
            if user {
                d.stats.record(cmd.key, Event::Set, delimiter, max_ns);
            }
        });
        let stale = (fresh_until != FOREVER && !cmd.keep_ttl).then_some(stale_ms);
        let replicated = replication_args(cmd.key, entry, fresh_until, stale, cmd.keep_ttl);
        let refs: Vec<&[u8]> = replicated.iter().map(|a| &**a).collect();
        crate::dispatch::replicate(ctx, c"CACHE.SETTAGGED", &refs);
    }
    drop(key);
    signal_modified(ctx, cmd.key);
    if let Some(name) = args.raw(1) {
        notify(ctx, name);
    }
    waiters::wake_on_set(ctx, db, cmd.key);
    reply::simple(ctx, c"OK");
    Ok(RedisValue::NoReply)
}

/// What a lookup found, decided under the state lock.
pub enum Lookup {
    Hit(Option<u64>),
    Stale(Option<u64>),
    Miss(u64),
    Pending,
}

/// Decides HIT / STALE / MISS / PENDING for `key` and grants a lease where the contract says so.
pub fn decide(db: i32, key: &[u8], entry: Option<&Entry>, lease_ms: i64, now: i64) -> Lookup {
    let beta = config::early_beta();
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    state::with(|s| {
        let freshness = {
            let d = s.db(db);
            entry.map_or(Freshness::Dead, |e| d.freshness(key, e, now))
        };
        let protected = s.db(db).leases.is_protected(key, now);
        let mut events = Events::default();
        let grant = |s: &mut state::State, events: &mut Events| {
            let token = s.next_random();
            let seq = s.next_seq();
            s.db(db).leases.grant(key, token, seq, now, lease_ms);
            events.push(Event::LeaseGranted);
            token
        };
        let outcome = match (freshness, entry) {
            (Freshness::Fresh, Some(e)) => {
                let early = !protected && e.cost_ms > 0 && {
                    let r = s.next_unit();
                    xfetch(now, e.fresh_until, e.cost_ms, beta, r)
                };
                events.push(Event::Hit);
                if early {
                    events.push(Event::EarlyRefresh);
                    Lookup::Hit(Some(grant(s, &mut events)))
                } else {
                    Lookup::Hit(None)
                }
            }
            (Freshness::Stale, Some(_)) => {
                events.push(Event::StaleHit);
                Lookup::Stale((!protected).then(|| grant(s, &mut events)))
            }
            _ if protected => {
                events.push(Event::Pending);
                Lookup::Pending
            }
            _ => {
                events.push(Event::Miss);
                Lookup::Miss(grant(s, &mut events))
            }
        };
        let stats = &mut s.db(db).stats;
        for e in events.0.into_iter().flatten() {
            stats.record(key, e, delimiter, max_ns);
        }
        outcome
    })
}

/// The (at most three) counters one lookup moves, without allocating.
#[derive(Default)]
struct Events([Option<Event>; 3]);

impl Events {
    fn push(&mut self, event: Event) {
        if let Some(slot) = self.0.iter_mut().find(|e| e.is_none()) {
            *slot = Some(event);
        }
    }
}

pub fn reply_lookup(ctx: &Context, lookup: &Lookup, value: Option<&[u8]>) {
    reply::array(ctx, 3);
    let (state, value, token) = match *lookup {
        Lookup::Hit(t) => (&b"HIT"[..], value, t),
        Lookup::Stale(t) => (&b"STALE"[..], value, t),
        Lookup::Miss(t) => (&b"MISS"[..], None, Some(t)),
        Lookup::Pending => (&b"PENDING"[..], None, None),
    };
    reply::bulk(ctx, state);
    reply::bulk_or_null(ctx, value);
    match token {
        Some(t) => reply::bulk(ctx, format_token(t).as_bytes()),
        None => reply::null(ctx),
    }
}

/// CACHE.GETORMARK key [LEASE ms] [WAIT ms]
pub fn get_or_mark(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let cmd = args::get_or_mark(&argv).map_err(parse_error)?;
    let lease_ms = cmd.lease_ms.unwrap_or_else(config::lease_ms);
    let db = selected_db(ctx);
    let key = Key::open_arg(ctx, args.raw(1), false);
    let entry = read_entry(&key)?;
    let lookup = decide(db, cmd.key, entry, lease_ms, now_ms());
    if let (Lookup::Pending, true) = (&lookup, cmd.wait_ms > 0) {
        drop(key);
        return waiters::block(ctx, db, cmd.key, lease_ms, cmd.wait_ms);
    }
    reply_lookup(ctx, &lookup, entry.map(Entry::value));
    Ok(RedisValue::NoReply)
}

/// The entry a command's key holds, None for no key; WRONGTYPE for another type.
fn read_entry(key: &Key) -> Result<Option<&Entry>, RedisError> {
    match key.content() {
        Content::Other => Err(error::wrong_type()),
        Content::Empty => Ok(None),
        Content::Entry(e) => Ok(Some(e)),
    }
}

/// CACHE.GET key [WITHMETA]
pub fn get(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let cmd = args::get(&argv).map_err(parse_error)?;
    let db = selected_db(ctx);
    let key = Key::open_arg(ctx, args.raw(1), false);
    let entry = read_entry(&key)?;
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
        d.stats.record(cmd.key, event, delimiter, max_ns);
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
            reply::int(ctx, key.expire_at().unwrap_or(-1));
            let tags: Vec<&[u8]> = e.tags().collect();
            reply::array(ctx, tags.len());
            for tag in tags {
                reply::bulk(ctx, tag);
            }
        }
    }
    Ok(RedisValue::NoReply)
}

/// Invalidates the entries under `keys` now: deletes them, or turns them stale. Returns the
/// keys of the live entries it touched.
fn invalidate_keys(ctx: &Context, db: i32, keys: &[Bytes], soft: bool, now: i64) -> Vec<Bytes> {
    let mut touched = Vec::new();
    for name in keys {
        let key = Key::open(ctx, name, true);
        let Content::Entry(entry) = key.content() else {
            continue;
        };
        if state::with(|s| s.db(db).freshness(name, entry, now)) == Freshness::Dead {
            continue;
        }
        if soft {
            entry.make_stale(now);
            drop(key);
        } else {
            key.delete();
        }
        signal_modified(ctx, name);
        touched.push(name.clone());
    }
    touched
}

/// Counts the invalidation (`swept`: entries left to the sweeper); `command`: this node
/// received the command itself (a forwarded part of a cluster-wide one counts its entries,
/// not a second command).
fn finish_invalidation(
    ctx: &Context,
    db: i32,
    touched: &[Bytes],
    swept: u64,
    command: bool,
) -> i64 {
    if is_user_traffic(ctx) {
        let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
        state::with(|s| {
            let stats = &mut s.db(db).stats;
            if command {
                stats.record_command();
            }
            stats.total.invalidated += swept;
            for key in touched {
                stats.record(key, Event::Invalidated(1), delimiter, max_ns);
            }
        });
    }
    (touched.len() as u64 + swept) as i64
}

/// CACHE.INVALIDATE pattern [SOFT] [LOCAL]
pub fn invalidate(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let cmd = args::invalidate(&argv).map_err(parse_error)?;
    let scope = cluster::scope(ctx, cmd.local, "CACHE.INVALIDATE")?;
    let db = selected_db(ctx);
    let access = Access::of(ctx);
    let (count, touched) = invalidate_pattern(ctx, db, cmd.pattern, cmd.soft, &access, true);
    replicate_invalidation(ctx, &access, None, cmd.soft, &touched);
    channel::announce(ctx, db, Kind::Pattern, cmd.soft, cmd.pattern);
    let op = cluster::Op::Invalidate {
        pattern: cmd.pattern.to_vec(),
        soft: cmd.soft,
    };
    cluster::complete(ctx, scope, db, &access, op, cluster::Acc::Count(count))
}

/// Replicates an invalidation to replicas and the AOF. For a user with every key: the command
/// itself (`forwarded`: rebuilt from these arguments, for a part of a cluster-wide command),
/// so replicas apply the same invalidation to the same index. For a restricted user: one exact
/// invalidation per entry touched (all of them were handled in the command), since replicas
/// apply what they receive without a user and would reach other users' keys.
pub fn replicate_invalidation(
    ctx: &Context,
    access: &Access,
    forwarded: Option<(&std::ffi::CStr, &[u8])>,
    soft: bool,
    touched: &[Bytes],
) {
    if access.covers_all(ctx) {
        match forwarded {
            None => {
                ctx.replicate_verbatim();
            }
            Some((command, pattern)) => {
                let mut args: Vec<&[u8]> = vec![pattern];
                if soft {
                    args.push(b"SOFT");
                }
                args.push(b"LOCAL");
                crate::dispatch::replicate(ctx, command, &args);
            }
        }
        return;
    }
    for key in touched {
        if soft {
            let exact = crate::pattern::escape(key);
            let args: [&[u8]; 3] = [&exact, b"SOFT", b"LOCAL"];
            crate::dispatch::replicate(ctx, c"CACHE.INVALIDATE", &args);
        } else {
            crate::dispatch::replicate(ctx, c"DEL", &[&**key]);
        }
    }
}

/// Invalidates the entries whose key matches `pattern` that `access` may touch; returns how
/// many, and the keys handled in the command. Replication is the caller's.
pub fn invalidate_pattern(
    ctx: &Context,
    db: i32,
    pattern: &[u8],
    soft: bool,
    access: &Access,
    command: bool,
) -> (i64, Vec<Bytes>) {
    let now = now_ms();
    let allowed = |k: &[u8]| access.allows(ctx, k, Intent::Invalidate);
    let seq = state::with(|s| s.next_seq());
    let mut work = state::with(|s| s.db(db).match_keys(pattern, soft, seq, now, false));
    if work.sweep.is_some() && !access.covers_all(ctx) {
        // The sweeper runs without a user: a restricted user's matches are all checked now.
        work = state::with(|s| s.db(db).match_keys(pattern, soft, seq, now, true));
    }
    work.now.retain(|k| allowed(k));
    state::with(|s| s.db(db).leases.void_pattern(pattern, allowed));
    let touched = invalidate_keys(ctx, db, &work.now, soft, now);
    if let Some(rest) = work.sweep {
        state::with(|s| s.db(db).start_pattern_sweep(rest));
        crate::sweep::start(ctx);
    }
    cluster::remember(
        ctx,
        db,
        cluster::Remembered::Keys(pattern),
        soft,
        access,
        now,
    );
    let count = finish_invalidation(ctx, db, &touched, 0, command) + work.later as i64;
    (count, touched)
}

/// CACHE.INVALIDATETAG tag [SOFT] [LOCAL]
pub fn invalidate_tag(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let cmd = args::invalidate(&argv).map_err(parse_error)?;
    let scope = cluster::scope(ctx, cmd.local, "CACHE.INVALIDATETAG")?;
    let db = selected_db(ctx);
    let access = Access::of(ctx);
    let (count, touched) = invalidate_tags(ctx, db, cmd.pattern, cmd.soft, &access, true);
    replicate_invalidation(ctx, &access, None, cmd.soft, &touched);
    channel::announce(ctx, db, Kind::Tag, cmd.soft, cmd.pattern);
    let op = cluster::Op::InvalidateTag {
        tag: cmd.pattern.to_vec(),
        soft: cmd.soft,
    };
    cluster::complete(ctx, scope, db, &access, op, cluster::Acc::Count(count))
}

/// Invalidates the entries carrying `tag` (or a tag matching it) that `access` may touch;
/// returns how many, and the keys handled in the command. Replication is the caller's.
pub fn invalidate_tags(
    ctx: &Context,
    db: i32,
    pattern: &[u8],
    soft: bool,
    access: &Access,
    command: bool,
) -> (i64, Vec<Bytes>) {
    let now = now_ms();
    let literal = crate::pattern::as_literal(pattern);
    let (tags, large) = state::with(|s| {
        let d = s.db(db);
        let tags: Vec<Bytes> = match &literal {
            Some(tag) => vec![Arc::from(tag.as_slice())],
            None => d.tags_matching(pattern),
        };
        let large = tags
            .iter()
            .any(|t| d.tags.get(t).is_some_and(|m| m.len() > SYNC_LIMIT));
        (tags, large)
    });
    // The sweeper runs without a user: a restricted user's members are all checked now.
    let keys_only = large && !access.covers_all(ctx);
    let (mut now_keys, swept) = state::with(|s| {
        let seq = s.next_seq();
        let d = s.db(db);
        if literal.is_none() {
            d.leases.void_tag_pattern(pattern, seq);
        }
        let mut now_keys = Vec::new();
        let mut swept = 0u64;
        for tag in tags {
            match d.invalidate_tag(&tag, soft, seq, now, keys_only) {
                TagWork::Now(keys) => now_keys.extend(keys),
                TagWork::Swept(n) => swept += n as u64,
            }
        }
        now_keys.sort_unstable();
        now_keys.dedup();
        (now_keys, swept)
    });
    now_keys.retain(|k| access.allows(ctx, k, Intent::Invalidate));
    if swept > 0 {
        crate::sweep::start(ctx);
    }
    let touched = invalidate_keys(ctx, db, &now_keys, soft, now);
    cluster::remember(
        ctx,
        db,
        cluster::Remembered::Tags(pattern),
        soft,
        access,
        now,
    );
    let count = finish_invalidation(ctx, db, &touched, swept, command);
    (count, touched)
}

const FIELDS: [&str; 17] = [
    "hits",
    "stale_hits",
    "misses",
    "pending",
    "hit_ratio",
    "sets",
    "sets_refused",
    "leases_granted",
    "invalidations",
    "invalidated",
    "entries",
    "tags",
    "waits",
    "wait_woken_by_set",
    "wait_handovers",
    "wait_timeouts",
    "early_refreshes",
];

/// The fields of CACHE.STATS and INFO, in order; `hit_ratio` is text, the rest integers.
pub fn stat_fields(c: &Counters, entries: u64, tags: u64) -> [(&'static str, StatValue); 17] {
    use StatValue::{Int, Text};
    let values = [
        Int(c.hits),
        Int(c.stale_hits),
        Int(c.misses),
        Int(c.pending),
        Text(c.hit_ratio()),
        Int(c.sets),
        Int(c.sets_refused),
        Int(c.leases_granted),
        Int(c.invalidations),
        Int(c.invalidated),
        Int(entries),
        Int(tags),
        Int(c.waits),
        Int(c.wait_woken_by_set),
        Int(c.wait_handovers),
        Int(c.wait_timeouts),
        Int(c.early_refreshes),
    ];
    let mut i = 0;
    values.map(|v| {
        let field = FIELDS[i];
        i += 1;
        (field, v)
    })
}

pub enum StatValue {
    Int(u64),
    Text(String),
}

pub fn reply_fields(ctx: &Context, fields: &[(&str, StatValue)]) {
    reply::map(ctx, fields.len());
    for (name, value) in fields {
        reply::bulk(ctx, name.as_bytes());
        match value {
            StatValue::Int(n) => reply::int(ctx, i64::try_from(*n).unwrap_or(i64::MAX)),
            StatValue::Text(t) => reply::bulk(ctx, t.as_bytes()),
        }
    }
}

fn namespace_fields(ns: &NamespaceStats) -> [(&'static str, StatValue); 17] {
    stat_fields(&ns.counters, ns.entries, 0)
}

/// CACHE.STATS [NAMESPACE name | NAMESPACES | RESET] [LOCAL]
pub fn stats(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let (query, local) = args::stats(&argv).map_err(parse_error)?;
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
                stat_fields(&d.stats.total, d.entries() as u64, d.tags.len() as u64)
            });
            reply_fields(ctx, &fields);
        }
        args::StatsQuery::Namespace(name) => {
            let ns = state::with(|s| s.db(db).stats.namespace(name));
            reply_fields(ctx, &namespace_fields(&ns));
        }
        args::StatsQuery::Namespaces => {
            let all: Vec<(Vec<u8>, NamespaceStats)> = state::with(|s| {
                s.db(db)
                    .stats
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
            state::with(|s| s.db(db).stats.reset());
            reply::simple(ctx, c"OK");
        }
    }
    Ok(RedisValue::NoReply)
}

/// CACHE.TAGS key
pub fn tags(ctx: &Context, args: &Args) -> RedisResult {
    let (Some(name), 2) = (args.get(1), args.len()) else {
        return Err(RedisError::WrongArity);
    };
    let db = selected_db(ctx);
    let key = Key::open_arg(ctx, args.raw(1), false);
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

/// CACHE.TAGSCAN tag cursor [MATCH pattern] [COUNT count] [LOCAL]
pub fn tag_scan(ctx: &Context, args: &Args) -> RedisResult {
    let argv = args.rest();
    let cmd = args::tag_scan(&argv).map_err(parse_error)?;
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

pub fn reply_scan<K: AsRef<[u8]>>(ctx: &Context, next: u64, keys: &[K]) {
    reply::array(ctx, 2);
    reply::bulk(ctx, next.to_string().as_bytes());
    reply::array(ctx, keys.len());
    for k in keys {
        reply::bulk(ctx, k.as_ref());
    }
}

/// One page of this node's keys carrying `tag` that `access` may read: (next cursor, keys).
pub fn tag_scan_local(
    ctx: &Context,
    db: i32,
    access: &Access,
    tag: &[u8],
    cursor: u64,
    count: usize,
    pattern: Option<&[u8]>,
) -> (u64, Vec<Bytes>) {
    let (next, candidates) = state::with(|s| {
        let d = s.db(db);
        match d.tags.get(tag) {
            Some(set) => {
                let (next, ids) = set.scan(cursor, count);
                let mut keys = d.names(ids.iter().copied());
                if let Some(p) = pattern {
                    let matcher = crate::pattern::Matcher::new(p);
                    keys.retain(|k| matcher.matches(k));
                }
                (next, keys)
            }
            None => (0, Vec::new()),
        }
    });
    let now = now_ms();
    let live: Vec<Bytes> = candidates
        .into_iter()
        .filter(|name| access.allows(ctx, name, Intent::Read))
        .filter(|name| {
            let key = Key::open(ctx, name, false);
            match key.content() {
                Content::Entry(e) => {
                    state::with(|s| s.db(db).freshness(name, e, now) != Freshness::Dead)
                }
                _ => false,
            }
        })
        .collect();
    (next, live)
}
